import re,sys,collections
# q6_windows.py DISASM LO HI: for shifts 0/16/32/48 of the loop LO..HI (hex), instructions crossing 64/32-byte lines,
# 64-byte windows spanned, and windows holding > 8 instructions.
f,lo,hi=sys.argv[1],int(sys.argv[2],16),int(sys.argv[3],16)
ins=[]
for l in open(f):
    m=re.match(r'\s*([0-9a-f]+):\s+(.*)',l)
    if m: ins.append((int(m.group(1),16),m.group(2).strip()))
ins=[(a,t) for a,t in ins]
L=[(ins[i][0],ins[i+1][0]-ins[i][0],ins[i][1]) for i in range(len(ins)-1) if lo<=ins[i][0]<=hi]
for s in (0,16,32,48):
    c64=sum(1 for a,n,t in L if (a+s)//64!=(a+s+n-1)//64)
    c32=sum(1 for a,n,t in L if (a+s)//32!=(a+s+n-1)//32)
    w=collections.Counter((a+s)//64 for a,n,t in L)
    w32=collections.Counter((a+s)//32 for a,n,t in L)
    br=[(a+s)%64 for a,n,t in L if t.startswith('j')]
    print(f"shift {s}: cross64={c64} cross32={c32} lines64={len(w)} max/64={max(w.values())} >8/64:{sum(v>8 for v in w.values())} max/32={max(w32.values())} jumps%64={br}")
