import re,sys,statistics as st
d={}; runs={}
for l in open(sys.argv[1]):
    b=l.split()[0]; v=[]
    for s,bw,x in re.findall(r'([\d.]+)@(\d+)(x?)',l):
        if not x and float(bw)<40: d.setdefault(b,[]).append(float(s)); v.append(float(s))
    runs.setdefault(b,[]).append('%.1f'%(100*st.median(v)) if v else 'n/a')
for b,v in d.items(): print(b,len(v),'windows, median %.1f%% (%.1f-%.1f); per run %s'%(100*st.median(v),100*min(v),100*max(v),' '.join(runs[b])))
