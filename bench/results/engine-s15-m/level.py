"""level.py MODEL [files...]: every window of every bench_decode_paired run: tok/s by the level of its reads."""
import json, sys, statistics
m = sys.argv[1]
B = json.load(open("/tmp/M/models.json"))[m]["bytes"]
wins = []
def add(r):
    for w in r["windows"]:
        if w["held"]:
            wins.append(((w["read_before_gb_s"] + w["read_after_gb_s"]) / 2, w["tok_s"], w["share"]))
for line in open("/tmp/M/runs.jsonl"):
    d = json.loads(line)
    if d["m"] == m and d.get("k", 16) == 16 and d.get("args", "").strip() in ("", "-k 16"):
        add(d["r"])
for line in open("/tmp/M/ab.jsonl"):
    d = json.loads(line)
    if d["m"] == m and d["k"] == 16:
        for r in d["new"]["runs"]:
            add(r)
edges = [0, 30, 34, 38, 42, 46, 50, 55, 60, 200]
print(f"{m}: {len(wins)} held 16-token windows; limit tok/s = GB/s*1e9/{B}")
for lo, hi in zip(edges, edges[1:]):
    sel = [w for w in wins if lo <= w[0] < hi]
    if sel:
        print(f"  reads {lo:3d}-{hi:3d} GB/s: {len(sel):3d} windows, tok/s median {statistics.median(x[1] for x in sel):6.1f}, "
              f"share median {statistics.median(x[2] for x in sel):.3f} (q25 {statistics.quantiles([x[2] for x in sel], n=4)[0] if len(sel) > 1 else sel[0][2]:.3f})")
