# summ.py FILE [steps]: per binary medians of each step, and per round (pairs with the first binary) differences
import re,sys,statistics as st
rows=[]
for l in open(sys.argv[1]):
    d={k:float(v) for k,v in re.findall(r'(\w+)=([\d.]+)',l)}; d['b']=l.split()[0]
    if 'down' in d and 'quantd' in d and d['b']!='x': pass
    d['gujob']=d.get('gu',0)+(d.get('quantd',0) if d.get('gu',0)>0 and False else 0)
    d['serial']=d.get('n1',0)+d.get('n2',0)+d.get('quant',0)+d.get('quantd',0)
    d['other']=d['layers']-d['qkv']-d['attn']-d['wo']-d['ffn']-d['n1']-d['n2']
    rows.append(d)
bins=list(dict.fromkeys(r['b'] for r in rows)); base=bins[0]; nb=len(bins)
keys=sys.argv[2].split(',') if len(sys.argv)>2 else ['n1','qkv','attn','wo','n2','ffn','gu','down','quant','quantd','serial','layers','logits','total','tok_s','bw']
slow=float(sys.argv[3]) if len(sys.argv)>3 else 1e9
grp=[rows[i:i+nb] for i in range(0,len(rows)-nb+1,nb)]
grp=[g for g in grp if all(r['bw']<slow for r in g)]
print('rounds used', len(grp))
for k in keys:
    line='%-7s'%k
    for b in bins:
        v=[r[k] for g in grp for r in g if r['b']==b and k in r]
        line+='  %s med %8.1f'%(b,st.median(v)) if v else ''
    for b in bins[1:]:
        d=[ [r for r in g if r['b']==b][0].get(k,0)-[r for r in g if r['b']==base][0].get(k,0) for g in grp]
        line+='  | %s-%s med %7.1f lower %d/%d'%(b,base,st.median(d),sum(x<0 for x in d),len(d))
    print(line)
