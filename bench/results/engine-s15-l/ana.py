import re,sys,statistics as st
rows=[]
for f in sys.argv[1:]:
    for line in open(f):
        d=dict(re.findall(r'(\w+)=([\d.]+)',line))
        if 'rest' in d: rows.append(d)
for lvl,cond in (('slow',lambda b:b<40),('fast',lambda b:b>=40)):
  for a in sorted(set(r['A'] for r in rows)):
    sel=[r for r in rows if r['A']==a and cond(float(r['bw']))]
    if not sel: continue
    rest=[float(r['rest']) for r in sel]; tot=[float(r['total']) for r in sel]
    share=[66.36e6/(float(r['rest'])*1e-6)/ (float(r['bw'])*1e9) for r in sel]
    print(lvl,'A=',a,'n',len(sel),'rest med',st.median(rest),'total med',st.median(tot),'rest share of read med %.3f'%st.median(share))
