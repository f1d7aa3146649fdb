import re,collections,sys
d=collections.defaultdict(list); vs=[]
for l in open(sys.argv[1]):
    m=re.match(r'(\S+) r(\d+): (.*?)\s+\d+ x .*per pass\s+([\d.]+)%',l)
    if m:
        d[(m.group(3),m.group(1))].append(float(m.group(4)))
        if m.group(1) not in vs: vs.append(m.group(1))
for s in sorted(set(k[0] for k in d)):
    print(f"{s:16s}", " | ".join(f"{v}: {' '.join('%.1f'%x for x in d[(s,v)])}" for v in vs))
