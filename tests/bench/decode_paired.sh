#!/usr/bin/env bash
# decode_paired.sh TOOL WRITE_MODEL - bench_decode_paired on a two-layer seeded model (SmolLM2's shape, Q4_0):
# the JSON is complete, every time and read is positive, and each window's share, hold and the medians follow
# from the numbers the tool printed. Runs 1, 2 and 3 threads, a last window shorter than k.
set -u
tool=$1 write_model=$2
dir=$(mktemp -d /tmp/pc-decode-paired-XXXXXX)
trap 'rm -rf "$dir"' EXIT
"$write_model" --shape smollm2-135m --type q4_0 --layers 2 --seed 7 --out "$dir/m.gguf" >/dev/null || exit 1
printf 'The streaming read and the decode windows alternate; this prompt only has to be a few tokens long.' \
  >"$dir/p.txt"
fail=0
for t in 1 2 3; do
  "$tool" -m "$dir/m.gguf" --prompt-file "$dir/p.txt" --bytes 6000000 -t "$t" -n 20 -k 8 --reads 3 -c 256 \
    >"$dir/out.json" || { echo "FAIL: tool exited $? with -t $t" >&2; fail=1; continue; }
  python3 - "$dir/out.json" "$t" <<'PY' || fail=1
import json, math, statistics, sys
d = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
t = int(sys.argv[2])
errs = []
def check(cond, what):
    if not cond:
        errs.append(what)
for k in ("threads", "tokens", "k", "reads", "bytes", "read_bytes", "windows", "pauses", "n_windows", "n_held",
          "median_share_held", "median_share_all", "decode_tok_s", "first_over_rest_median", "held_spread", "check"):
    check(k in d, f"key {k} missing")
if errs:
    print("FAIL:", errs, file=sys.stderr); sys.exit(1)
check(d["threads"] == t and d["tokens"] == 20 and d["k"] == 8, "settings echoed")
check(d["read_bytes"] >= d["bytes"] and d["read_bytes"] % (2 << 20) == 0, "read buffer whole 2 MiB pages")
w, p = d["windows"], d["pauses"]
check([x["tokens"] for x in w] == [8, 8, 4] and d["n_windows"] == 3, f"window sizes {[x['tokens'] for x in w]}")
check([x["step"] for x in p] == [0, 8, 16, 20], f"pause steps {[x['step'] for x in p]}")
for x in p:
    check(len(x["samples"]) == 3 and all(s > 0 for s in x["samples"]), "three positive reads a pause")
    check(math.isclose(x["gb_s"], statistics.median(x["samples"]), rel_tol=1e-3, abs_tol=2e-3), "pause = median")
    check(x["quiet"] and x["wait_before_ms"] >= 0 and x["wait_after_ms"] >= 0, "quiet pauses")
held = []
for i, x in enumerate(w):
    a, b = p[i]["gb_s"], p[i + 1]["gb_s"]
    check(x["seconds"] > 0 and x["first_token_s"] > 0 and x["rest_token_s"] > 0, f"window {i} times positive")
    check(math.isclose(x["first_token_s"] + x["rest_token_s"] * (x["tokens"] - 1), x["seconds"], rel_tol=1e-3),
          f"window {i}: first + rest = seconds")
    check(x["read_before_gb_s"] == a and x["read_after_gb_s"] == b, f"window {i} paired with its own pauses")
    share = x["tokens"] / x["seconds"] * d["bytes"] / ((a + b) / 2 * 1e9)
    check(math.isclose(share, x["share"], rel_tol=1e-4, abs_tol=2e-6), f"window {i} share {x['share']} != {share}")
    check(x["held"] == (abs(a - b) <= d["held_spread"] * min(a, b) + 2e-3), f"window {i} held flag")
    if x["held"]:
        held.append(x["share"])
check(d["n_held"] == len(held), "n_held")
if held:
    check(math.isclose(d["median_share_held"], statistics.median(held), rel_tol=2e-3), "median of held")
check(math.isclose(d["median_share_all"], statistics.median(x["share"] for x in w), rel_tol=2e-3), "median of all")
tok_s = sum(x["tokens"] for x in w) / sum(x["seconds"] for x in w)
check(math.isclose(d["decode_tok_s"], tok_s, rel_tol=2e-3), "decode tok/s")
if errs:
    print(f"FAIL (-t {t}):", errs, json.dumps(d)[:2000], file=sys.stderr)
    sys.exit(1)
print(f"-t {t}: ok, {d['n_held']}/{d['n_windows']} held, median share {d['median_share_all']:.3f}")
PY
done
# bad arguments: a usage error, not a run
"$tool" -m "$dir/m.gguf" --prompt-file "$dir/p.txt" 2>/dev/null; [ $? = 2 ] ||
  { echo "FAIL: no --bytes accepted" >&2; fail=1; }
"$tool" -m "$dir/m.gguf" --prompt-file "$dir/p.txt" --bytes 6000000 -k 0 2>/dev/null; [ $? = 2 ] ||
  { echo "FAIL: -k 0 accepted" >&2; fail=1; }
exit $fail
