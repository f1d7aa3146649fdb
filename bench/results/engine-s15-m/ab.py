"""ab.py MODEL ROUNDS [k] [window_runs]: alternate bench_engine's two pcache decode pairings, one reported figure each
per round (run brackets: --decode-runs 5 runs; windows: --window-runs runs of bench_decode_paired pooled)."""
import sys, json, types, time, statistics
sys.path.insert(0, "/work/wt/sched/bench")
import bench_engine as be
m = sys.argv[1]; rounds = int(sys.argv[2]); k = int(sys.argv[3]) if len(sys.argv) > 3 else 16
wr = int(sys.argv[4]) if len(sys.argv) > 4 else 3
d = json.load(open("/tmp/M/models.json"))[m]
B = "/work/wt/sched/build/"
args = types.SimpleNamespace(pcache=B + "pcache", membw=B + "bench_membw", decode_paired=B + "bench_decode_paired",
                             threads=2, n_decode=128, timeout=900, bw_samples=5, decode_runs=5, window_runs=wr,
                             window_tokens=k, window_reads=3)
for r in range(rounds):
    t0 = time.time()
    if len(sys.argv) > 5 and sys.argv[5] == "windows-first":  # order reversed (11:10 on)
        new = be.pcache_decode_windows(args, d["path"], d["prompt"], 128, d["bytes"])
        t1 = time.time()
        old, _ = be.pcache_decode_brackets(args, d["path"], d["prompt"], 128, d["bytes"])
        t2 = time.time()
    else:
        old, _ = be.pcache_decode_brackets(args, d["path"], d["prompt"], 128, d["bytes"])
        t1 = time.time()
        new = be.pcache_decode_windows(args, d["path"], d["prompt"], 128, d["bytes"])
        t2 = time.time()
    rec = {"m": m, "k": k, "t": time.strftime("%H:%M:%S"), "old": old, "new": new, "old_s": t1 - t0, "new_s": t2 - t1}
    with open("/tmp/M/ab.jsonl", "a") as f:
        f.write(json.dumps(rec) + "\n")
    runs = [(s["share"], s["bw_gb_s"]["held"], s["decode_tok_s"], s["bw_gb_s"]["before"]["median_gb_s"],
             s["bw_gb_s"]["after"]["median_gb_s"]) for s in old["samples"]]
    print(f"{m} k={k} round {r} {rec['t']}: BRACKETS {100 * old['paired_share']:.1f}% ({old['paired_runs']} counted) "
          f"runs " + " ".join(f"{100 * a:.1f}{'' if h else '*'}[{tk:.0f} {b:.0f}/{c:.0f}]" for a, h, tk, b, c in runs)
          + f" | WINDOWS {be.fmt(None if new['paired_share'] is None else 100 * new['paired_share'])}% "
          f"({new['held']}/{new['windows']}) per run "
          + " ".join(f"{100 * x['median_share_held']:.1f}[{x['decode_tok_s']:.0f} f/r {x['first_over_rest_median']:.2f}]"
                     for x in new["runs"]) + f" | {t1 - t0:.0f}s/{t2 - t1:.0f}s", flush=True)
