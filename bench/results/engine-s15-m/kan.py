import json, statistics as st, sys
since = sys.argv[1] if len(sys.argv) > 1 else "10:49:00"
m = sys.argv[2] if len(sys.argv) > 2 else "smollm2"
g = {}
for l in open("/tmp/M/runs.jsonl"):
    d = json.loads(l)
    if d["m"] != m or "args" not in d or d["t"] < since: continue
    a = d["args"] or "-k 16"
    x = g.setdefault(a, {"slow": [], "fast": [], "fr": [], "rslow": [], "rfast": [], "first": [], "rest": []})
    r = d["r"]
    for w in r["windows"]:
        bw = (w["read_before_gb_s"] + w["read_after_gb_s"]) / 2
        if w["held"]:
            x["slow" if bw < 42 else "fast"].append(w["share"])
        if w["tokens"] > 1: x["fr"].append(w["first_token_s"] / w["rest_token_s"])
    for p in r["pauses"]:
        x["rslow" if p["gb_s"] < 42 else "rfast"].append(p["gb_s"])
        x["first"].append(p["samples"][0]); x["rest"] += p["samples"][1:]
def md(v): return f"{st.median(v):.3f} (n={len(v)})" if v else "-"
for a, x in g.items():
    print(f"{a:24s} slow-level share {md(x['slow'])}  fast {md(x['fast'])}  first/rest tok {md(x['fr'])}  "
          f"pause reads slow {md(x['rslow'])} fast {md(x['rfast'])}; 1st sample {st.median(x['first']):.1f} others {st.median(x['rest']):.1f}")
