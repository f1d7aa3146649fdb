# pool.py VAR FILE...: per round, VAR minus the mean of main and mainb (the same binary twice), pooled over files; and the placebo main - mainb
import re,sys,statistics as st
var=sys.argv[1]
def rounds(f):
    rows=[]
    for l in open(f):
        d={'b':l.split()[0]}
        for k,v in re.findall(r'(\w+)=([\d.]+)',re.sub(r'\[.*?\]','',l)): d[k]=float(v)
        for m,t in re.findall(r'\[TW (m\d) (.*?)\]',l):
            for k,v in re.findall(r'(\w+)=([\d.]+)',t): d[m+k]=float(v)
        rows.append(d)
    nb=len(dict.fromkeys(r['b'] for r in rows))
    return [{r['b']:r for r in rows[i:i+nb]} for i in range(0,len(rows)-nb+1,nb)]
R=[g for f in sys.argv[2:] for g in rounds(f) if var in g and 'main' in g and 'mainb' in g]
for lv in ('all','slow'):
    S=[g for g in R if lv=='all' or all(g[x]['bw']<45 for x in (var,'main','mainb'))]
    for k in ('layers','total','m0team','m0attn'):
        d=[g[var][k]-(g['main'][k]+g['mainb'][k])/2 for g in S]; p=[g['main'][k]-g['mainb'][k] for g in S]
        rel=[g[var][k]/((g['main'][k]+g['mainb'][k])/2) for g in S]
        print('%-4s %-7s %s - main/mainb: median %+5.0f us (ratio %.3f), lower in %d of %d | placebo main - mainb: median %+5.0f, lower in %d of %d'%(lv,k,var,st.median(d),st.median(rel),sum(x<0 for x in d),len(d),st.median(p),sum(x<0 for x in p),len(p)))
