import sys,re,collections
# SmolLM2 steps' rates (MB: Q4_1 ffn gate+up+down 49.77, qkv 10.37, wo 6.22; Q8_0 head 30.08) as % of the paired read, and head/ffn
M=dict(ffn=49.77,qkv=10.37,wo=6.22,hmat=30.08)
by=collections.defaultdict(list)
for line in open(sys.argv[1]):
    d={k:float(v) for k,v in re.findall(r'(\w+)=([\d.]+)',line)}
    b=line.split()[0]; r={k:M[k]*1e3/d[k]/d['bw']*100 for k in M}; r['head/ffn']=r['hmat']/r['ffn']*100; r['bw']=d['bw']; r['total']=d['total']
    by[b].append(r)
    print(f"{b:12s} bw={d['bw']:5.1f} "+" ".join(f"{k}={v:5.1f}" for k,v in r.items() if k not in('bw',)))
