#!/usr/bin/env python3
"""bench_gpu.py - pcache's CUDA backend against HF transformers and llama.cpp's CUDA
llama-bench on the same shapes and the same GPU, side by side in one run.

    bench/bench_gpu.py --bin BUILD_DIR [--llama-bench PATH] [--models DIR] [--json OUT.json]

Writes seeded random-weight GGUFs with pc_write_model (Llama-2-7B shape in f16 and
Q4_0; SmolLM2-135M in Q4_1 and Qwen2.5-1.5B in Q4_K for the small-model rows), then:
  pcache     bench_gpu (build dir): TTFT of a plain prefill, of --fresh tokens over
             --cached tokens of module KV in GPU memory and in pinned host memory, and
             decode per token at that context;
  HF         bench_gpu_hf.py beside this file (bf16, SDPA, a DynamicCache, as the
             Prompt Cache prototype uses transformers);
  llama.cpp  llama-bench -ngl 99 -fa 1: -p 2048,8192; -p FRESH -d CACHED (its prefix
             cache); -n 32 -d CACHED (decode at that depth).
Prints a table with ratios (ours / theirs: below 1 is faster) and the issue's targets.
The peers stay outside the product and CI; this runs on a GPU machine only."""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def run_jsonl(cmd, timeout, env=None):
    log("+ " + " ".join(cmd))
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        log(f"  timed out after {timeout} s")
        return []
    if p.returncode != 0:
        log(f"  exit {p.returncode}: {p.stderr[-2000:]}")
    rows = []
    for line in p.stdout.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    return rows


def write_model(bin_dir, models, shape, typ):
    path = os.path.join(models, f"{shape}-{typ}.gguf")
    if not os.path.exists(path):
        cmd = [os.path.join(bin_dir, "pc_write_model"), "--shape", shape, "--type", typ, "--out", path]
        log("+ " + " ".join(cmd))
        subprocess.run(cmd, check=True, stdout=sys.stderr)
    return path


def product_rows(bin_dir, model, cached, fresh, reps, typ):
    """The product path: `pcache run --backend cuda` on a schema of about `cached` tokens
    (one module of letters without spaces: the seeded vocabulary has no letter pieces, so
    each letter is one byte token) and a prompt of `fresh` tokens: TTFT median of `reps`, with the module KV resident in GPU memory
    (the store's device tier) and with --no-cache-gpu (streamed from pinned host memory)."""
    d = os.path.join(os.path.dirname(model), "run")
    os.makedirs(d, exist_ok=True)
    schema, prompt = os.path.join(d, "long.xml"), os.path.join(d, "long_p.xml")
    with open(schema, "w") as f:
        f.write('<schema name="long"><module name="doc">' + "".join(chr(97 + i * 7 % 26) for i in range(cached - 4)) +
                "</module></schema>")
    # the prompt's text starts with SentencePiece's space marker U+2581, three byte tokens in the
    # seeded vocabulary (no piece for it): fresh - 3 letters make the request's `fresh` tokens,
    # the shape of the forward API's row (35 tokens would take another attention kernel)
    with open(prompt, "w") as f:
        f.write('<prompt schema="long"><doc/>' + "".join(chr(97 + i * 5 % 26) for i in range(fresh - 3)) + "</prompt>")
    rows = []
    for case, extra in (("run_gpu", []), ("run_host", ["--no-cache-gpu"])):
        cmd = [os.path.join(bin_dir, "pcache"), "run", "-m", model, "--backend", "cuda", "--schema", schema,
               "--prompt", prompt, "--repeat", str(reps), "--json", "-n", "1", "--temp", "0", "--quiet"] + extra
        for r in run_jsonl(cmd, 600):
            if "ttft_ms" in r:
                rows.append({"engine": "pcache", "case": case, "n_new": fresh, "type": typ, "ms": r["ttft_ms"],
                             "cached_tokens": r.get("cached_tokens"), "fresh_tokens": r.get("fresh_tokens"),
                             "all_ms": r.get("ttft_all_ms")})
                log(f"  {case}: TTFT {r['ttft_ms']:.2f} ms (all {r.get('ttft_all_ms')}), prefill {r.get('prefill_ms')}, "
                    f"cached {r.get('cached_tokens')}, fresh {r.get('fresh_tokens')}")
                if r.get("fresh_tokens") != fresh:
                    log(f"  {case}: WARNING: {r.get('fresh_tokens')} fresh tokens, not {fresh}: not the forward API's shape")
    return rows


def llama_rows(bench, model, args, label, timeout=600):
    out = []
    for r in run_jsonl([bench, "-m", model, "-ngl", "99", "-fa", "1", "-o", "jsonl"] + args, timeout):
        n_p, n_g, d = r.get("n_prompt", 0), r.get("n_gen", 0), r.get("n_depth", 0)
        ms = r["avg_ns"] / 1e6
        if n_g:
            out.append({"engine": "llama.cpp", "type": label, "case": "decode", "n_cached": d + n_p, "n_new": 1,
                        "ms": ms / n_g})
        elif d:
            out.append({"engine": "llama.cpp", "type": label, "case": "cached_gpu", "n_cached": d, "n_new": n_p, "ms": ms})
        else:
            out.append({"engine": "llama.cpp", "type": label, "case": "prefill", "n_cached": 0, "n_new": n_p, "ms": ms})
    return out


def find(rows, engine, case, n_new, typ=None):
    for r in rows:
        if r["engine"] == engine and r["case"] == case and r["n_new"] == n_new and (typ is None or r["type"] == typ):
            return r["ms"]
    return None


def fmt(x):
    return "-" if x is None else f"{x:.2f}"


def ratio(a, b):
    return "-" if a is None or b is None else f"{a / b:.2f}"


def table(rows, cached, fresh):
    lines = []
    lines.append(f"{'case':34} {'pcache ms':>10} {'HF ms':>9} {'llama.cpp':>10} {'/llama':>7} {'/HF':>6}")
    cases = [("prefill 2048", "prefill", 2048), ("prefill 8192", "prefill", 8192),
             (f"{cached} cached on GPU + {fresh}", "cached_gpu", fresh),
             (f"{cached} cached in pinned host + {fresh}", "cached_pinned", fresh),
             ("  same, `pcache run`, KV on GPU", "run_gpu", fresh),
             ("  same, `pcache run`, --no-cache-gpu", "run_host", fresh),
             (f"decode at {cached + fresh} (per token)", "decode", 1)]
    for typ_p, typ_l, title in (("F16", "F16", "Llama-2-7B shape, f16 weights (HF bf16)"),
                                ("Q4_0", "Q4_0", "Llama-2-7B shape, Q4_0 weights")):
        lines.append(title)
        for name, case, n in cases:
            p = find(rows, "pcache", case, n, typ_p)
            h = find(rows, "hf", case, n) if typ_p == "F16" else None
            l = find(rows, "llama.cpp", case, n, typ_l)
            lines.append(f"  {name:32} {fmt(p):>10} {fmt(h):>9} {fmt(l):>10} {ratio(p, l):>7} {ratio(p, h):>6}")
    for typ, title in (("Q4_1", "SmolLM2-135M shape, Q4_1"), ("Q4_K", "Qwen2.5-1.5B shape, Q4_K")):
        lines.append(title)
        for name, case, n in [(f"prefill {cached + fresh}", "prefill", cached + fresh), cases[2], cases[6]]:
            p = find(rows, "pcache", case, n, typ)
            l = find(rows, "llama.cpp", case, n, typ)
            lines.append(f"  {name:32} {fmt(p):>10} {'-':>9} {fmt(l):>10} {ratio(p, l):>7} {'-':>6}")
    g = find(rows, "pcache", "cached_gpu", fresh, "F16")
    run_g = find(rows, "pcache", "run_gpu", fresh, "F16")
    pin = find(rows, "pcache", "cached_pinned", fresh, "F16")
    dec = find(rows, "pcache", "decode", 1, "F16")
    lines.append("targets (issue 12, Llama-2-7B shape):")
    lines.append(f"  cached TTFT, KV on GPU <= 7 ms: {fmt(g)} ms; >= 2x below llama.cpp: x{ratio(find(rows, 'llama.cpp', 'cached_gpu', fresh, 'F16'), g)};"
                 f" >= 6x below HF's reuse: x{ratio(find(rows, 'hf', 'cached_gpu', fresh), g)};"
                 f" >= 35x below HF's full prefill (8192): x{ratio(find(rows, 'hf', 'prefill', 8192), g)}")
    lines.append(f"  the same through the product path (`pcache run --backend cuda`, device tier): {fmt(run_g)} ms")
    lines.append(f"  cached TTFT from pinned host memory <= 86 ms: {fmt(pin)} ms")
    for n in (2048, 8192):
        lines.append(f"  full prefill {n} within 1.1x of HF: x{ratio(find(rows, 'pcache', 'prefill', n, 'F16'), find(rows, 'hf', 'prefill', n))}")
    lines.append(f"  decode at {cached + fresh} <= 6 ms per token: {fmt(dec)} ms")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True, help="build dir with bench_gpu and pc_write_model")
    ap.add_argument("--llama-bench", default=None)
    ap.add_argument("--models", default="/tmp/pcache-gpu-models")
    ap.add_argument("--cached", type=int, default=8192)
    ap.add_argument("--fresh", type=int, default=32)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--skip", default="", help="comma list of: big (the 7B rows), f16 (the 7B f16 rows), hf, llama, small, "
                    "q4 (the 7B Q4_0 rows), run")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    skip = set(s for s in a.skip.split(",") if s)
    os.makedirs(a.models, exist_ok=True)
    rows = []
    pc = os.path.join(a.bin, "bench_gpu")
    common = ["--cached", str(a.cached), "--fresh", str(a.fresh), "--reps", str(a.reps)]
    big_types = () if "big" in skip else tuple(t for t, key in (("f16", "f16"), ("q4_0", "q4")) if key not in skip)
    big = {t: write_model(a.bin, a.models, "llama2-7b", t) for t in big_types}
    for t, path in big.items():
        rows += run_jsonl([pc, path, "--prefill", "2048,8192"] + common, 900)
        if t == "f16" and "run" not in skip:
            rows += product_rows(a.bin, path, a.cached, a.fresh, a.reps, "F16")
    if "hf" not in skip and big:
        rows += run_jsonl([sys.executable, os.path.join(HERE, "bench_gpu_hf.py"), "--prefill", "2048,8192",
                           "--cached", str(a.cached), "--fresh", str(a.fresh), "--reps", str(a.reps)], 900)
    small = {}
    if "small" not in skip:
        small = {"Q4_1": write_model(a.bin, a.models, "smollm2-135m", "q4_1"),
                 "Q4_K": write_model(a.bin, a.models, "qwen2.5-1.5b", "q4_k")}
        for t, path in small.items():
            rows += run_jsonl([pc, path, "--prefill", str(a.cached + a.fresh)] + common, 600)
    lb = a.llama_bench
    if lb and os.path.exists(lb) and "llama" not in skip:
        for label, path in (("F16", big.get("f16")), ("Q4_0", big.get("q4_0"))):
            if not path:
                continue
            rows += llama_rows(lb, path, ["-p", "2048,8192", "-n", "0", "-r", "3"], label)
            rows += llama_rows(lb, path, ["-p", str(a.fresh), "-n", "0", "-d", str(a.cached), "-r", str(a.reps)], label)
            rows += llama_rows(lb, path, ["-p", "0", "-n", "32", "-d", str(a.cached + a.fresh), "-r", "3"], label)
        for label, path in small.items():
            rows += llama_rows(lb, path, ["-p", str(a.cached + a.fresh), "-n", "0", "-r", "3"], label)
            rows += llama_rows(lb, path, ["-p", str(a.fresh), "-n", "0", "-d", str(a.cached), "-r", str(a.reps)], label)
            rows += llama_rows(lb, path, ["-p", "0", "-n", "32", "-d", str(a.cached + a.fresh), "-r", "3"], label)
    elif "llama" not in skip:
        log(f"bench_gpu: no llama-bench at {lb}: llama.cpp columns left empty")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)
    print(table(rows, a.cached, a.fresh))


if __name__ == "__main__":
    main()
