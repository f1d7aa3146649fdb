import re,sys,statistics as st
rows=[]
for l in open(sys.argv[1]):
    d=dict(re.findall(r'(\w+)=([\d.]+)',re.sub(r'\[.*?\]','',l))); d['b']=l.split()[0]
    tw=re.findall(r'\[TW (m\d) (.*?)\]',l)
    for m,t in tw:
        for k,v in re.findall(r'(\w+)=([\d.]+)',t): d[m+k]=v
    rows.append(d)
bins=list(dict.fromkeys(r['b'] for r in rows))
base=sys.argv[3] if len(sys.argv)>3 else bins[0]
lv=sys.argv[4] if len(sys.argv)>4 else ''
if lv: rows=[r for r in rows if (float(r['bw'])<45)==(lv=='slow')] if False else rows
keys=sys.argv[2].split(',') if len(sys.argv)>2 else ['layers','logits','total','tok_s']
for k in keys:
  for b in bins:
    v=[float(r[k]) for r in rows if r['b']==b and k in r]
    if v: print('%-8s %-6s median %7.0f  min %7.0f max %7.0f n=%d'%(k,b,st.median(v),min(v),max(v),len(v)))
# pairwise per round vs first
nb=len(bins)
for b in [x for x in bins if x!=base]:
  d=[]
  for i in range(0,len(rows)-nb+1,nb):
    grp={r['b']:r for r in rows[i:i+nb]}
    if base in grp and b in grp and (not lv or all((float(grp[x]['bw'])<45)==(lv=='slow') for x in (b,base))): d.append(float(grp[b]['layers'])-float(grp[base]['layers']))
  if d: print('%s-%s layers per round: median %.0f, lower in %d of %d'%(b,base,st.median(d),sum(x<0 for x in d),len(d)))
