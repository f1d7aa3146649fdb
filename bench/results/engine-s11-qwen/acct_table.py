import sys, statistics, re
# bytes per step (MB) per model; KV: layers*kvdim*2(K,V)*2 bytes*ctx(191: 127 prompt + 64)
M = {'05': dict(qkv=17.55, wo=13.25, gateup=143.82, down6=42.90, down4=29.42, hmat=144.64, attn=24*128*2*2*191/1e6),
     '15': dict(qkv=50.97, wo=37.16, gateup=433.52, down6=158.05, down4=108.38, hmat=191.44, attn=28*256*2*2*191/1e6)}
model, f = sys.argv[1], sys.argv[2]
rows = []
for line in open(f):
    d = dict(re.findall(r'(\w+)=([\d.]+)', line))
    if not d: continue
    rows.append({k: float(v) for k, v in d.items()})
slow = [r for r in rows if r['bw'] < 45 and r['quantK'] < (120 if model == '05' else 300)]
print(f"{model}: {len(slow)} of {len(rows)} runs at the slow level, bw {[r['bw'] for r in slow]}")
tot_ideal = []
for k in ['qkv', 'attn', 'wo', 'gateup', 'down6', 'down4', 'hmat']:
    us = [r[k] for r in slow]; share = [M[model][k] * 1e3 / r['bw'] / r[k] * 100 for r in slow]
    lost = [r[k] - M[model][k] * 1e3 / r['bw'] for r in slow]
    print(f"  {k:7s} {M[model][k]:7.2f} MB  {statistics.median(us):8.1f} us  ideal-share {statistics.median(share):5.1f}% ({min(share):.0f}-{max(share):.0f})  lost {statistics.median(lost):6.0f} us")
for k in ['norm1', 'norm2', 'hnorm', 'quantd', 'quantK', 'embed']:
    print(f"  {k:7s} {statistics.median([r[k] for r in slow]):8.1f} us (serial)")
allb = sum(M[model].values())
sh = [allb * 1e3 / r['bw'] / r['total'] * 100 for r in slow]
print(f"  total   {allb:7.2f} MB  {statistics.median([r['total'] for r in slow]):8.1f} us  share {statistics.median(sh):5.1f}% ({min(sh):.0f}-{max(sh):.0f})")
