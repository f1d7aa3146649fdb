import sys, statistics as st, collections
# lines: variant round kgbs rgbs shape
d=collections.defaultdict(list)
for f in sys.argv[1:]:
    for l in open(f):
        v,r,k,rd,sh=l.split(); k=float(k); rd=float(rd)
        lvl='slow' if rd<45 else 'fast'
        d[(sh,lvl,v)].append(k/rd)
        d[(sh,'all',v)].append(k/rd)
shapes=sorted({k[0] for k in d}); vs=sorted({k[2] for k in d})
for sh in shapes:
    for lvl in ('slow','fast','all'):
        row=[f"{v}:{100*st.median(d[(sh,lvl,v)]):5.1f}({len(d[(sh,lvl,v)])})" for v in vs if (sh,lvl,v) in d]
        print(f"{sh:22s} {lvl:4s} "+"  ".join(row))
