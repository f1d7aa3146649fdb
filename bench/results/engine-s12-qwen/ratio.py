import sys,re
# Q6_K steps' rate as a share of the same run's Q4_K gate/up rate (and Q4_K down); 1.5B bytes
M={'15':dict(gateup=433.52,down6=158.05,down4=108.38,hmat=191.44,qkv=50.97,wo=37.16),
   '05':dict(gateup=143.82,down6=42.90,down4=29.42,hmat=144.64,qkv=17.55,wo=13.25)}[sys.argv[1]]
for line in open(sys.argv[2]):
    d={k:float(v) for k,v in re.findall(r'(\w+)=([\d.]+)',line)}
    if not d: continue
    g=M['gateup']/d['gateup']
    print(f"{line.split()[0]:16s} bw={d['bw']:6.1f} gateup={g*1e3:5.1f}GB/s " + " ".join(f"{k}={M[k]/d[k]/g*100:5.1f}%" for k in ['down6','hmat','down4','qkv','wo']) + f" total={d['total']:.0f} q={d['quantK']:.0f}")
