import re,sys
# q6_loops.py DISASM: the backward branches of an objdump -d listing whose body holds vpdpbusd; the Q6_K one-token
# loop is the 3808-byte one with ~145 embedded-broadcast ({1to16}) operands. start%64: where its first instruction sits.
lines=open(sys.argv[1]).read().splitlines()
ins=[]
for l in lines:
    m=re.match(r'\s*([0-9a-f]+):\s+(.*)',l)
    if m: ins.append((int(m.group(1),16),m.group(2)))
addrs=[a for a,_ in ins]
for i,(a,t) in enumerate(ins):
    m=re.match(r'(j\w+)\s+([0-9a-f]+)',t)
    if m:
        tgt=int(m.group(2),16)
        if tgt<a:
            body=[x for x in ins if tgt<=x[0]<=a]
            nb=sum('1to16' in x[1] for x in body)
            nd=sum('vpdpbusd' in x[1] for x in body)
            if nd: print(f"loop {tgt:x}-{a:x} len {a-tgt+6} start%64={tgt%64} br%64={a%64} n={len(body)} dpb={nd} bcast={nb}")
