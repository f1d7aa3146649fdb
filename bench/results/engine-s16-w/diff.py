# diff.py FILE BASE [slow|fast|all]: per-round differences (variant - BASE) of each timer, median and how often lower
import re,sys,statistics as st
rows=[]
for l in open(sys.argv[1]):
    d={'b':l.split()[0]}
    for k,v in re.findall(r'(\w+)=([\d.]+)',re.sub(r'\[.*?\]','',l)): d[k]=float(v)
    for m,t in re.findall(r'\[TW (m\d) (.*?)\]',l):
        for k,v in re.findall(r'(\w+)=([\d.]+)',t): d[m+k]=float(v)
    rows.append(d)
bins=list(dict.fromkeys(r['b'] for r in rows)); nb=len(bins); base=sys.argv[2]; lv=sys.argv[3] if len(sys.argv)>3 else 'all'
keys=['layers','total','m0attn','m0team','m0b_wo','m0b_gu','m0b_down','m1b_wo','m1b_gu','m1b_down']
ok=lambda r: lv=='all' or (r['bw']<45)==(lv=='slow')
print('%-8s'%'', ' '.join('%9s'%k[:9] for k in keys))
for b in bins:
    if b==base: continue
    ds={k:[] for k in keys}
    for i in range(0,len(rows)-nb+1,nb):
        g={r['b']:r for r in rows[i:i+nb]}
        if b in g and base in g and ok(g[b]) and ok(g[base]):
            for k in keys:
                if k in g[b] and k in g[base]: ds[k].append(g[b][k]-g[base][k])
    n=len(ds['layers'])
    print('%-8s'%b, ' '.join('%5.0f %2d/%-2d'%(st.median(ds[k]),sum(x<0 for x in ds[k]),len(ds[k])) if ds[k] else '%9s'%'-' for k in keys))
