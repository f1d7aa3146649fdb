import sys, statistics as st, collections
# per round, per shape: median ratio per variant; then the median over rounds of (variant - ref) in points
ref=sys.argv[1]; d=collections.defaultdict(list)
for f in sys.argv[2:]:
    for l in open(f):
        v,r,k,rd,sh=l.split(); d[(sh,r,v)].append(float(k)/float(rd))
shapes=sorted({k[0] for k in d}); vs=sorted({k[2] for k in d}); rs=sorted({k[1] for k in d})
for sh in shapes:
    out=[]
    for v in vs:
        if v==ref: continue
        diffs=[100*(st.median(d[(sh,r,v)])-st.median(d[(sh,r,ref)])) for r in rs if (sh,r,v) in d and (sh,r,ref) in d]
        if diffs: out.append(f"{v}: {st.median(diffs):+5.1f} ({sum(x>0 for x in diffs)}/{len(diffs)} ahead)")
    print(f"{sh:22s} vs {ref}: "+"  ".join(out))
