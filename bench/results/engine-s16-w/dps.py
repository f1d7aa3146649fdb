# dps.py FILE: per run, median share of held windows at the slow (<45 GB/s) and fast levels; per binary medians
import json,sys,statistics as st
rs={}
for l in open(sys.argv[1]):
    if len(l.split(" ",1))<2 or not l.split(" ",1)[1].strip(): continue
    b,js=l.split(' ',1); d=json.loads(js)
    w=[x for x in d['windows'] if x['held']]
    slow=[x['share'] for x in w if (x['read_before_gb_s']+x['read_after_gb_s'])/2<45]
    fast=[x['share'] for x in w if (x['read_before_gb_s']+x['read_after_gb_s'])/2>=45]
    rs.setdefault(b,[]).append((slow,fast))
    print('%-6s slow %s (%d)  fast %s (%d)'%(b, '%.1f'%(100*st.median(slow)) if slow else '-', len(slow), '%.1f'%(100*st.median(fast)) if fast else '-', len(fast)))
for b,v in rs.items():
    s=[x for r in v for x in r[0]]; f=[x for r in v for x in r[1]]
    ms=[st.median(r[0]) for r in v if r[0]]
    print('%-6s all slow windows %s (%d), run medians %s; fast %s (%d)'%(b,'%.1f'%(100*st.median(s)) if s else '-',len(s),' '.join('%.1f'%(100*x) for x in ms),'%.1f'%(100*st.median(f)) if f else '-',len(f)))
