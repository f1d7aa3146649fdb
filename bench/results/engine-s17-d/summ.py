# summ.py FILE [SLOW_BW_MAX] [FAST_BW_MIN]: per round (pairs of lines, same process) differences B - A of each key
import re,sys,statistics as st
rows=[]
for l in open(sys.argv[1]):
    if not l.strip() or '=' not in l: continue
    d={k:float(v) for k,v in re.findall(r'(\w+)=([\d.]+)',l)}; d['b']=l.split()[0]
    d['waits']=sum(d.get('m%d_b_%s'%(m,k),0) for m in (0,1) for k in ('wo','gu','down'))
    d['steal']=d.get('m0_steals',0)+d.get('m1_steals',0)
    for k in ('m0_team','m0_steals','m1_steals'): d.setdefault(k,0)
    rows.append(d)
lo=float(sys.argv[2]) if len(sys.argv)>2 else 0; hi=float(sys.argv[3]) if len(sys.argv)>3 else 1e9
grp=[rows[i:i+2] for i in range(0,len(rows)-1,2)]
grp=[g for g in grp if lo<=g[0]['bw']<hi]
bins=sorted(set(r['b'] for r in rows)); base=rows[0]['b'] if rows else ''
A=bins[0] if len(sys.argv)<5 else sys.argv[4]; B=[b for b in bins if b!=A][0]
print('rounds', len(grp), 'base', A, 'vs', B)
for k in ['m0_team','layers','total','attn','waits','steal','bw']:
    a=[[r for r in g if r['b']==A][0][k] for g in grp]; b=[[r for r in g if r['b']==B][0][k] for g in grp]
    dd=[y-x for x,y in zip(a,b)]
    print('%-8s %s med %8.1f  %s med %8.1f  | diff med %7.1f mean %7.1f lower %d/%d  ratio med %.4f'%(k,A,st.median(a),B,st.median(b),st.median(dd),st.mean(dd),sum(x<0 for x in dd),len(dd), st.median([y/x if x else 0 for x,y in zip(a,b)])))
