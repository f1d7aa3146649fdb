#!/usr/bin/env python3
"""Evidence report: TTFT, memory and answer quality of Prompt Cache (pcache) side by side with llama.cpp.

  python3 bench/report.py [--quick] [--pcache build/pcache] [--threads N] [--out bench/results]

Regenerates bench/results/REPORT.md, report.json and the PNG plots (ttft_sweep.png, nonprefix.png, quality.png).
Documents: real license texts from Debian's base-files package (/usr/share/common-licenses). Sections:
  1. TTFT sweep, the prefix case: 512..~8k cached tokens x 16..128-token questions; llama.cpp full prefill,
     llama.cpp reusing its own prompt cache (its best case), pcache without and with the cache.
  2. The non-prefix case: 10 documents, prompts importing 2-4 of them in shuffled order.
  3. Memory: KV bytes per token against 2 x layers x kv_heads x head_dim x 2, KV held, peak RSS.
  4. Encoding cost and payback.
  5. Quality: pcache cached vs uncached (first token, KL, identical 32-token greedy answers, cloze accuracy with a
     paired bootstrap interval and McNemar's test), and vs llama.cpp's plain prefill at contiguous positions.

Invariants: every engine run is its own process (peak RSS = its ru_maxrss, via wait4); pcache and llama.cpp get
the same token ids (llama.cpp is fed pcache's input_tokens); the orchestrator needs the standard library only
(matplotlib for the plots); llama.cpp runs in the peer's venv (PEER_PYTHON or .venv-peer, tools/setup_peer.sh).
"""

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from bench_engine import machine_info, pcache_version, resolve_model, run_measured  # noqa: E402
from report import render, texts  # noqa: E402

DEFAULT_MODEL = os.path.join(REPO, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
T0 = time.monotonic()


def log(msg):
    el = time.monotonic() - T0
    print(f"[{time.strftime('%H:%M:%S')} +{el / 60:4.1f} min] {msg}", file=sys.stderr, flush=True)


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="a small run for development (a few minutes)")
    ap.add_argument("--model", default=DEFAULT_MODEL,
                    help="a GGUF path or a scripts/get_model.sh name (smollm2, qwen2.5-coder-0.5b, qwen2.5-coder-1.5b)")
    ap.add_argument("--pcache", default=os.path.join(REPO, "build", "pcache"))
    ap.add_argument("--peer-python", default=os.environ.get("PEER_PYTHON", os.path.join(REPO, ".venv-peer", "bin",
                                                                                          "python")),
                    help="python of the peer's venv (tools/setup_peer.sh; default $PEER_PYTHON or .venv-peer)")
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    ap.add_argument("--sizes", help="cached tokens of the sweep, comma separated (multiples of 512)")
    ap.add_argument("--qlens", help="question lengths in tokens, comma separated")
    ap.add_argument("--questions", type=int, help="quality questions (subset prompts)")
    ap.add_argument("--render-only", action="store_true",
                    help="rewrite REPORT.md and the plots from OUT/report.json without measuring")
    ap.add_argument("--repeat", type=int, default=5, help="runs per cached TTFT (median)")
    ap.add_argument("--omp-active", dest="omp_passive", action="store_false",
                    help="leave llama.cpp's OpenMP workers spinning (by default OMP_WAIT_POLICY=PASSIVE, which "
                         "halved its prefill time on this shared 2-core machine)")
    a = ap.parse_args()
    if not a.render_only:
        a.model = resolve_model(a.model)
    sizes = "512,1024" if a.quick else "512,1024,2048,4096,7680"
    a.sizes = [int(x) for x in (a.sizes or sizes).split(",")]
    a.qlens = [int(x) for x in (a.qlens or "16,128").split(",")]
    a.questions = a.questions or (12 if a.quick else 100)
    a.n_scaffold = 4
    a.n_predict = 32
    a.n_ctx = 8192
    return a


# ---------------------------------------------------------------- running the engines

def peer_job(args, kind, job, work):
    jpath, rpath = os.path.join(work, f"{kind}.job.json"), os.path.join(work, f"{kind}.result.json")
    with open(jpath, "w", encoding="utf-8") as f:
        json.dump(job, f)
    argv = [args.peer_python, os.path.join(HERE, "report", "peer_worker.py"), kind, jpath, rpath]
    if args.omp_passive:  # sleeping, not spinning, OpenMP workers: llama.cpp's best case on a shared machine
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    t = time.monotonic()
    rc, _, _, rss = run_measured(argv, 3600, live_stderr=True)
    os.environ.pop("OMP_WAIT_POLICY", None)
    if rc != 0:
        raise SystemExit(f"report: llama.cpp job '{kind}' failed with exit status {rc} (messages above)")
    with open(rpath, encoding="utf-8") as f:
        res = json.load(f)
    res["peak_rss_mib"] = rss
    res["wall_s"] = time.monotonic() - t
    return res


def parse_schema_line(err):
    """The stats line `pcache run` prints per schema: tokens encoded, encode ms, KV MiB, bytes/token."""
    import re
    m = re.search(r"schema '[^']+': (\d+) tokens encoded in (\d+) ms, KV ([\d.]+) MiB \((\d+) bytes/token\)", err)
    if not m:
        return None
    return {"encoded_tokens": int(m.group(1)), "encode_ms": float(m.group(2)), "kv_mib": float(m.group(3)),
            "kv_bytes_per_token": int(m.group(4))}


def run_with_progress(argv, what, total, marker):
    """Runs argv, returns (rc, stdout, stderr, peak RSS MiB); logs every tenth stderr line starting with marker."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace")
    err_lines = []

    def pump():
        done = 0
        for line in proc.stderr:
            err_lines.append(line)
            if line.startswith(marker):
                done += 1
                if done % 10 == 0 or done == total:
                    log(f"  {what}: {done}/{total} prompts")

    th = threading.Thread(target=pump, daemon=True)
    th.start()
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    th.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, out, "".join(err_lines), usage.ru_maxrss / 1024.0


def pcache_batch(args, schema, prompts, mode, repeat=1):
    """One `pcache run` process over prompts (paths). mode: 'compare' | 'cached'. Returns per-prompt JSON objects
    in order, the schema stats and the process's peak RSS."""
    argv = [args.pcache, "run", "-m", args.model, "--schema", schema, "--json", "-n", str(args.n_predict),
            "--temp", "0", "-t", str(args.threads), "-c", str(args.n_ctx), "--repeat", str(repeat)]
    if mode == "compare":
        argv.append("--compare")
    for p in prompts:
        argv += ["--prompt", p]
    marker = "quality:" if mode == "compare" else "cached:"
    rc, out, err, rss = run_with_progress(argv, f"pcache {mode} {os.path.basename(schema)}", len(prompts), marker)
    if rc != 0:
        raise SystemExit(f"report: `{' '.join(argv[:12])} ...` exited with {rc}:\n{err[-2000:]}")
    objs = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    if len(objs) != len(prompts):
        raise SystemExit(f"report: pcache printed {len(objs)} JSON objects for {len(prompts)} prompts; "
                         "this report needs `pcache run` with repeatable --prompt")
    by_path = {o.get("prompt"): o for o in objs}
    if all(p in by_path for p in prompts):
        objs = [by_path[p] for p in prompts]
    return objs, parse_schema_line(err), rss


def pcache_many(args, schema, prompts, mode, repeat=1, per_process=64):
    objs, stats, rss = [], [], []
    for i in range(0, len(prompts), per_process):
        o, s, r = pcache_batch(args, schema, prompts[i:i + per_process], mode, repeat)
        objs += o
        stats.append(s)
        rss.append(r)
    return objs, stats, rss


def write(path, text):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


# ---------------------------------------------------------------- the sections

def prepare(args, work):
    log("preparing texts with the model's tokenizer (llama.cpp peer)")
    cat = os.path.join(work, "sweep_source.txt")
    parts = []
    for name in texts.SWEEP_FILES:
        with open(os.path.join(texts.LICENSES, name), encoding="utf-8") as f:
            parts.append(f.read())
    write(cat, "\n\n".join(parts))
    n_chunks = max(args.sizes) // texts.SWEEP_CHUNK
    cuts = {"sweep": {"path": cat, "sizes": [texts.SWEEP_CHUNK] * n_chunks}}
    for name, fname, _, start in texts.DOCS:
        cuts[name] = {"path": os.path.join(texts.LICENSES, fname), "start": start, "sizes": [texts.DOC_TOKENS]}
    job = {"model": args.model, "cuts": cuts,
           "questions": {"sweep": {"text": texts.SWEEP_QUESTION, "sizes": args.qlens}}}
    return peer_job(args, "prepare", job, work)


def sweep(args, prep, work):
    chunks = prep["texts"]["sweep"]
    qs = prep["questions"]["sweep"]
    points, peer_points = [], []
    for size in args.sizes:
        n = size // texts.SWEEP_CHUNK
        name = f"sweep-{size}"
        schema = write(os.path.join(work, f"{name}.xml"), texts.sweep_schema(name, chunks[:n]))
        paths = [write(os.path.join(work, f"{name}-q{q}.xml"), texts.sweep_prompt(name, n, qs[str(q)]))
                 for q in args.qlens]
        log(f"sweep {size}: pcache cached, {args.repeat} runs per question length")
        cached, cstats, crss = pcache_batch(args, schema, paths, "cached", args.repeat)
        log(f"sweep {size}: pcache cached vs uncached with quality ({len(paths)} prompts)")
        comp, _, _ = pcache_batch(args, schema, paths, "compare", 1)
        points.append({"size": size, "schema_stats": cstats, "peak_rss_mib": crss,
                       "q": {str(q): {"cached": c, "compare": k} for q, c, k in zip(args.qlens, cached, comp)}})
        peer_points.append({"label": f"{size}", "prefix": min(c["cached_tokens"] for c in cached),
                            "prompts": {str(q): k["uncached"]["input_tokens"] for q, k in zip(args.qlens, comp)}})
    log("sweep: llama.cpp full prefill and prompt-cache reuse")
    lj = peer_job(args, "sweep", {"model": args.model, "threads": args.threads, "n_ctx": args.n_ctx,
                                  "repeat": args.repeat, "points": peer_points}, work)
    return {"points": points, "llama": lj}


def quality(args, prep, work):
    excerpts = [prep["texts"][d[0]][0] for d in texts.DOCS]
    name = "license-excerpts"
    schema = write(os.path.join(work, f"{name}.xml"), texts.docs_schema(name, excerpts))
    prompts = texts.quality_prompts(name, excerpts, args.questions, args.n_scaffold)
    for p in prompts:
        p["path"] = write(os.path.join(work, f"{name}-{p['id']}.xml"), p["xml"])
    log(f"non-prefix / quality: pcache cached vs uncached on {len(prompts)} prompts (batches of 64 per process)")
    objs, stats, rss = pcache_many(args, schema, [p["path"] for p in prompts], "compare")
    for p, o in zip(prompts, objs):
        p["pcache"] = o
    log(f"non-prefix / quality: llama.cpp with its prompt cache on the same {len(prompts)} prompts, in order")
    seq = [{"id": p["id"], "ids": p["pcache"]["uncached"]["input_tokens"]} for p in prompts]
    lj = peer_job(args, "sequence", {"model": args.model, "threads": args.threads, "n_ctx": args.n_ctx,
                                     "n_predict": args.n_predict, "prompts": seq}, work)
    for p, r in zip(prompts, lj["prompts"]):
        p["llama"] = r
    return {"schema": schema, "schema_stats": stats, "peak_rss_mib": rss, "prompts": prompts,
            "llama_settings": lj["settings"], "llama_peak_rss_mib": lj["peak_rss_mib"], "excerpts": excerpts}


def versions(args, prep):
    v = {"pcache": pcache_version(args), "pcache_binary": os.path.relpath(args.pcache, REPO),
         "llama_cpp_python": prep["version"], "llama_system_info": prep["system_info"],
         "model": os.path.basename(args.model), "model_sha256": prep["model"]["sha256"]}
    try:
        v["base_files"] = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", texts.PACKAGE],
                                         capture_output=True, text=True).stdout.strip()
    except OSError:
        v["base_files"] = "unknown"
    return v


def main():
    args = parse_args()
    if args.render_only:
        with open(os.path.join(args.out, "report.json"), encoding="utf-8") as f:
            render.write_all(json.load(f), args.out)
        return log(f"rewrote {os.path.join(args.out, 'REPORT.md')} from report.json")
    if not os.path.exists(args.pcache):
        sys.exit(f"report: no pcache binary at {args.pcache} (build it, or pass --pcache)")
    os.makedirs(args.out, exist_ok=True)
    load_before = os.getloadavg()
    started = datetime.datetime.now(datetime.timezone.utc)
    with tempfile.TemporaryDirectory(prefix="pcache-report-") as work:
        prep = prepare(args, work)
        sw = sweep(args, prep, work)
        ql = quality(args, prep, work)
    data = {"args": {k: v for k, v in vars(args).items()}, "machine": machine_info(), "load_before": load_before,
            "started": started.isoformat(), "minutes": (time.monotonic() - T0) / 60, "versions": versions(args, prep),
            "model": prep["model"], "sweep": sw, "quality": ql}
    log("writing the report and plots")
    render.write_all(data, args.out)
    log(f"done: {os.path.join(args.out, 'REPORT.md')} in {data['minutes']:.1f} min")


if __name__ == "__main__":
    main()
