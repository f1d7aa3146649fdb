#!/usr/bin/env python3
"""Side-by-side engine benchmark: pcache versus llama.cpp (the reference peer) on one GGUF, one thread count.

  python bench/bench_engine.py [--model PATH] [--threads N] [--repeats 3] [--peer-only]

Measures, for both engines in one run: prefill tokens/s for 128-, 512- and 2048-token prompts (text that Debian
ships: /usr/share/common-licenses/GPL-3, cut at a token boundary), decode tokens/s over 128 greedy tokens after
the 128-token prompt, and peak memory. Prints a table of ratios pcache/llama.cpp and writes bench/results/engine.md,
engine.json (every sample) and engine.png.

Invariants: every engine run is its own process, so peak memory is that process's ru_maxrss (read with wait4),
never a sum of both; llama.cpp runs in the peer's venv (tools/setup_peer.sh), the orchestrator needs only the
standard library (matplotlib for the plot, optional). Definitions, the same for both engines:
  prefill tok/s = prompt tokens / time to first token (tokenize + prompt forward + first greedy pick)
  decode tok/s  = tokens after the first / time spent producing them, one forward per token
Each figure is the best of --repeats runs after one unmeasured warm-up run (interference from other processes
only ever slows a run down); engine.json keeps every sample and the medians.
"""

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_MODEL = os.path.join(REPO, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
DEFAULT_TEXT = "/usr/share/common-licenses/GPL-3"
PCACHE_KEYS = ("tokens", "text", "prompt_tokens", "ttft_ms", "decode_tok_s")


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- llama.cpp side (runs in the peer's python)

def peer_module():
    sys.path.insert(0, os.path.join(REPO, "tools"))
    import lcp_peer
    return lcp_peer


def worker_prepare(cfg):
    """Cut the source text into prompts of exactly n tokens (llama.cpp's tokenization) and write them to files."""
    P = peer_module()
    peer = P.Peer(cfg["model"], 1, n_ctx=512, extra_bufts=False)
    with open(cfg["text"], encoding="utf-8") as f:
        ids = peer.tokenize(f.read())
    prompts = []
    for n in cfg["sizes"]:
        if n > len(ids):
            raise SystemExit(f"{cfg['text']} has only {len(ids)} tokens, fewer than the {n} asked for")
        text = peer.detokenize(ids[:n])
        path = os.path.join(cfg["dir"], f"prompt_{n}.txt")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        prompts.append({"size": n, "path": path, "llama_tokens": len(peer.tokenize(text))})
    info = {"prompts": prompts, "system_info": P.system_info(), "sha256": P.file_sha256(cfg["model"])}
    import llama_cpp
    info["version"] = llama_cpp.__version__
    peer.close()
    return info


def worker_llama(cfg):
    """One prompt size: warm-up, then cfg['repeats'] timed runs, each on a fresh context."""
    P = peer_module()
    n_ctx = cfg["n_ctx"]
    peer = P.Peer(cfg["model"], cfg["threads"], n_ctx=n_ctx, extra_bufts=cfg["amx"])
    with open(cfg["prompt"], encoding="utf-8") as f:
        text = f.read()
    samples = []
    for rep in range(cfg["repeats"] + 1):
        peer.fresh()
        t0 = time.perf_counter()
        ids = peer.tokenize(text)
        peer.decode(ids)
        tok = peer.last_argmax()
        ttft = time.perf_counter() - t0
        sample = {"prompt_tokens": len(ids), "ttft_ms": ttft * 1e3, "prefill_tok_s": len(ids) / ttft}
        if cfg["n_decode"] > 1:
            t1 = time.perf_counter()
            for _ in range(cfg["n_decode"] - 1):
                peer.decode([tok])
                tok = peer.last_argmax()
            sample["decode_tok_s"] = (cfg["n_decode"] - 1) / (time.perf_counter() - t1)
        if rep == 0:
            log(f"  llama.cpp {cfg['size']:5d}: warm-up done ({ttft * 1e3:.0f} ms to first token)")
            continue
        samples.append(sample)
        extra = f", decode {sample['decode_tok_s']:.1f} tok/s" if "decode_tok_s" in sample else ""
        log(f"  llama.cpp {cfg['size']:5d}: run {rep}/{cfg['repeats']}: prefill "
            f"{sample['prefill_tok_s']:.1f} tok/s{extra}")
    settings = peer.settings()
    peer.close()
    return {"samples": samples, "settings": settings, "kernels": P.kernels_note(settings)}


def worker_baseline(cfg):
    """The interpreter plus llama_cpp and numpy, no model: what the peer's RSS carries that is not llama.cpp's."""
    import numpy  # noqa: F401
    import llama_cpp  # noqa: F401
    return {}


WORKERS = {"prepare": worker_prepare, "llama": worker_llama, "baseline": worker_baseline}


# ---------------------------------------------------------------- process running with peak-memory accounting

def run_measured(argv, timeout, live_stderr=False):
    """Run argv; return (returncode, stdout, stderr, max RSS in MiB). live_stderr passes stderr through instead."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(argv, stdout=out, stderr=None if live_stderr else err)
        deadline = time.monotonic() + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.02)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return proc.returncode, out.read().decode(errors="replace"), err.read().decode(errors="replace"), \
            usage.ru_maxrss / 1024.0


def run_worker(python, kind, cfg, timeout=900):
    argv = [python, os.path.abspath(__file__), "--worker", kind, "--worker-config", json.dumps(cfg)]
    rc, out, _, rss = run_measured(argv, timeout, live_stderr=True)
    if rc != 0:
        raise RuntimeError(f"llama.cpp worker '{kind}' failed with exit status {rc} (its messages are above)")
    return json.loads(out.strip().splitlines()[-1]), rss


def find_peer_python(explicit):
    candidates = [explicit] if explicit else [os.environ.get("PEER_PYTHON"), sys.executable,
                                             os.path.join(REPO, ".venv-peer", "bin", "python")]
    for py in candidates:
        if py and os.path.exists(py) and subprocess.run([py, "-c", "import llama_cpp, numpy"],
                                                        capture_output=True).returncode == 0:
            return py
    sys.exit("bench_engine: no python with llama_cpp and numpy found (tried "
             f"{', '.join(c for c in candidates if c)}); run tools/setup_peer.sh or pass --peer-python")


# ---------------------------------------------------------------- the two engines

def context_size(args, size):
    """The same KV capacity for both engines, so peak memory compares like with like."""
    return size + args.n_decode + 8


def bench_llama(args, python, prompts):
    results, rss = {}, {}
    for p in prompts:
        log(f"llama.cpp: {p['size']}-token prompt ({args.repeats} runs after a warm-up)")
        cfg = {"model": args.model, "threads": args.threads, "size": p["size"], "prompt": p["path"],
               "repeats": args.repeats, "amx": args.amx, "n_ctx": context_size(args, p["size"]),
               "n_decode": args.n_decode if p["size"] == args.decode_after else 0}
        res, rss[p["size"]] = run_worker(python, "llama", cfg)
        results[p["size"]] = res
    base, base_rss = run_worker(python, "baseline", {})
    return results, rss, base_rss


def pcache_run(args, prompt_path, n_predict, n_ctx):
    # --ignore-eos: llama.cpp's side never stops early either, so both time the same number of tokens.
    argv = [args.pcache, "generate", "-m", args.model, "--prompt-file", prompt_path, "-n", str(n_predict),
            "--temp", "0", "--ignore-eos", "--json", "-t", str(args.threads), "-c", str(n_ctx)]
    t0 = time.perf_counter()
    rc, out, err, rss = run_measured(argv, args.timeout)
    wall = time.perf_counter() - t0
    if rc != 0:
        raise RuntimeError(f"`{' '.join(argv)}` exited with {rc}:\n{(err or out)[-1500:]}")
    doc = None
    for line in reversed(out.strip().splitlines()):
        if line.lstrip().startswith("{"):
            try:
                doc = json.loads(line)
                break
            except json.JSONDecodeError:
                continue
    if doc is None:
        try:
            doc = json.loads(out)
        except json.JSONDecodeError:
            raise RuntimeError(f"`{' '.join(argv)}` printed no JSON object; stdout began: {out[:300]!r}")
    missing = [k for k in PCACHE_KEYS if k not in doc]
    if missing:
        raise RuntimeError(f"pcache --json lacks {missing}; got keys {sorted(doc)}")
    if not doc["prompt_tokens"] or not doc["ttft_ms"] or doc["ttft_ms"] <= 0:
        raise RuntimeError(f"pcache reported prompt_tokens={doc['prompt_tokens']} ttft_ms={doc['ttft_ms']}")
    sample = {"prompt_tokens": doc["prompt_tokens"], "ttft_ms": doc["ttft_ms"],
              "prefill_tok_s": doc["prompt_tokens"] / doc["ttft_ms"] * 1000.0,
              "generated": len(doc["tokens"]), "wall_s": wall}
    if n_predict > 1:
        sample["decode_tok_s"] = doc["decode_tok_s"]
    return sample, rss


def bench_pcache(args, prompts):
    results, rss = {}, {}
    for p in prompts:
        n_predict = args.n_decode if p["size"] == args.decode_after else 1
        log(f"pcache: {p['size']}-token prompt ({args.repeats} runs after a warm-up)")
        samples, peak = [], 0.0
        for rep in range(args.repeats + 1):
            sample, r = pcache_run(args, p["path"], n_predict, context_size(args, p["size"]))
            peak = max(peak, r)
            if rep == 0:
                log(f"  pcache    {p['size']:5d}: warm-up done ({sample['ttft_ms']:.0f} ms to first token)")
                continue
            samples.append(sample)
            extra = f", decode {sample['decode_tok_s']:.1f} tok/s" if "decode_tok_s" in sample else ""
            log(f"  pcache    {p['size']:5d}: run {rep}/{args.repeats}: prefill {sample['prefill_tok_s']:.1f} "
                f"tok/s{extra}")
        results[p["size"]] = {"samples": samples}
        rss[p["size"]] = peak
    return results, rss


# ---------------------------------------------------------------- summary, report, plot

def summarize(results, key):
    vals = [s[key] for s in results["samples"] if key in s]
    return (max(vals), statistics.median(vals)) if vals else (None, None)


def build_rows(args, prompts, llama, pcache):
    rows = []
    for p in prompts:
        rows.append((f"prefill {p['size']} tok/s", "prefill_tok_s", p["size"], True))
    rows.append((f"decode tok/s ({args.n_decode} tokens after a {args.decode_after}-token prompt)",
                 "decode_tok_s", args.decode_after, True))
    out = []
    for label, key, size, higher_better in rows:
        lb, lm = summarize(llama["results"][size], key)
        pb, pm = summarize(pcache["results"][size], key) if pcache else (None, None)
        out.append({"metric": label, "llama": lb, "llama_median": lm, "pcache": pb, "pcache_median": pm,
                    "ratio": (pb / lb) if (pb and lb) else None})
    l_rss = max(llama["rss"].values())
    p_rss = max(pcache["rss"].values()) if pcache else None
    out.append({"metric": "peak RSS MiB (max over runs)", "llama": l_rss, "pcache": p_rss,
                "ratio": (p_rss / l_rss) if p_rss else None})
    out.append({"metric": "peak RSS MiB, llama.cpp less its Python interpreter", "llama": l_rss - llama["base_rss"],
                "pcache": p_rss, "ratio": (p_rss / (l_rss - llama["base_rss"])) if p_rss else None})
    return out


def fmt(v, digits=1):
    return "n/a" if v is None else f"{v:.{digits}f}"


def print_table(rows):
    w = max(len(r["metric"]) for r in rows)
    print(f"\n{'metric':<{w}}  {'pcache':>10}  {'llama.cpp':>10}  {'pcache/llama.cpp':>16}")
    for r in rows:
        print(f"{r['metric']:<{w}}  {fmt(r['pcache']):>10}  {fmt(r['llama']):>10}  {fmt(r['ratio'], 2):>16}")
    print()


def machine_info():
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_gib = None
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal"):
                mem_gib = int(line.split()[1]) / 1024 / 1024
    return {"cpu": cpu, "cores": os.cpu_count(), "usable_cores": len(os.sched_getaffinity(0)),
            "load_average": [round(x, 2) for x in os.getloadavg()],
            "memory_gib": round(mem_gib, 1) if mem_gib else None,
            "os": f"{platform.system()} {platform.release()}", "python": platform.python_version()}


def pcache_version(args):
    parts = []
    try:
        rev = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
        if rev.returncode == 0:
            parts.append(f"git {rev.stdout.strip()}")
        dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True)
        if dirty.returncode == 0 and dirty.stdout.strip():
            parts.append("with uncommitted changes")
    except OSError:
        pass
    return " ".join(parts) or "unknown"


def write_markdown(path, args, info, machine, rows, llama, pcache_note):
    s = llama["settings"]
    lines = [
        "# Engine benchmark: pcache vs llama.cpp",
        "",
        f"Generated by `bench/bench_engine.py` on {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC.",
        "",
        "| machine | |", "| --- | --- |",
        f"| CPU | {machine['cpu']} |",
        f"| cores | {machine['cores']} ({machine['usable_cores']} usable) |",
        f"| memory | {machine['memory_gib']} GiB |",
        f"| OS | {machine['os']}, Python {machine['python']} |",
        f"| load average (1 min) | {info['load_before']:.2f} before, {machine['load_average'][0]:.2f} after |",
        f"| pcache | `{os.path.relpath(args.pcache, REPO)}`, tree at {info['pcache_version']} |",
        f"| llama.cpp | llama-cpp-python {info['version']}, built from source with GGML_NATIVE=ON |",
        f"| llama.cpp CPU features | `{info['system_info']}` |",
        "",
        f"Model `{os.path.basename(args.model)}` (sha256 `{info['sha256'][:16]}...`), {args.threads} threads for both "
        f"engines, best of {args.repeats} runs after a warm-up. Prompts: the first "
        f"{', '.join(str(n) for n in args.sizes)} tokens of "
        f"`{args.text}` (llama.cpp's tokenization; each engine counts its own prompt tokens).",
        "",
        f"llama.cpp settings: flash attention {s['flash_attn']}, KV cache {s['type_k']}/{s['type_v']}, "
        f"n_batch {s['n_batch']}, n_ubatch {s['n_ubatch']}, "
        f"context (both engines: n_ctx / -c) = prompt + {args.n_decode} + 8, "
        f"extra buffer types (AMX/repack) {'on' if s['use_extra_bufts'] else 'off'}, "
        f"weights in {', '.join(f'{k} {v} MiB' for k, v in s['model_buffers_mib'].items())}. "
        f"Matmul kernels: {info['kernels']}." + ("" if s["use_extra_bufts"] else
        " (llama-cpp-python 0.3.36's AMX kernel, which it would pick for Q4_1 on a CPU with AMX, crashed with "
        "SIGSEGV in ldtilecfg when tested; --amx turns the extra buffer types back on.)"),
        "",
        "| metric | pcache | llama.cpp | pcache / llama.cpp |",
        "| --- | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(f"| {r['metric']} | {fmt(r['pcache'])} | {fmt(r['llama'])} | {fmt(r['ratio'], 2)} |")
    lines += [
        "",
        "Prefill tok/s = prompt tokens / time to first token (tokenize + prompt forward + first greedy pick); "
        "pcache's figure is its `prompt_tokens / ttft_ms`. Decode tok/s counts the tokens after the first. "
        "Throughput ratios above 1 mean pcache is faster; memory ratios below 1 mean pcache uses less. "
        f"Peak RSS is each engine process's ru_maxrss; llama.cpp runs inside Python (interpreter, numpy and "
        f"llama_cpp imported: {llama['base_rss']:.0f} MiB alone), hence the second memory row.",
    ]
    if pcache_note:
        lines += ["", f"pcache was not measured: {pcache_note}"]
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def write_plot(path, rows, threads):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib is not installed: no plot written")
        return False
    speed = [r for r in rows if "tok/s" in r["metric"]]
    mem = [r for r in rows if r["metric"].startswith("peak RSS MiB (max")]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [4, 1]})
    labels = [r["metric"].split(" (")[0].replace(" tok/s", "") for r in speed]
    x = range(len(speed))
    for ax, data, xs, ylabel in ((ax1, speed, x, "tokens / s"), (ax2, mem, range(len(mem)), "MiB")):
        for off, key, name, color in ((-0.2, "pcache", "pcache", "tab:blue"),
                                      (0.2, "llama", "llama.cpp", "tab:orange")):
            vals = [r[key] or 0 for r in data]
            bars = ax.bar([i + off for i in xs], vals, width=0.4, label=name, color=color)
            for b, v in zip(bars, vals):
                if v:
                    ax.annotate(f"{v:.0f}", (b.get_x() + b.get_width() / 2, v), ha="center", va="bottom",
                                fontsize=8)
        ax.set_ylabel(ylabel)
    ax1.set_xticks(list(x), labels)
    ax1.set_title(f"Throughput ({threads} threads)")
    ax1.legend()
    ax2.set_xticks([0], ["peak RSS"])
    ax2.set_title("Memory")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


# ---------------------------------------------------------------- main

def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--sizes", default="128,512,2048", help="prompt lengths in tokens, comma separated")
    ap.add_argument("--n-decode", type=int, default=128)
    ap.add_argument("--text", default=DEFAULT_TEXT, help="text file the prompts are cut from")
    ap.add_argument("--pcache", default=os.path.join(REPO, "build", "pcache"))
    ap.add_argument("--peer-python", help="python with llama_cpp (default: $PEER_PYTHON, this one, .venv-peer)")
    ap.add_argument("--peer-only", action="store_true", help="measure llama.cpp alone")
    ap.add_argument("--amx", action="store_true",
                    help="let llama.cpp use its extra CPU buffer types (AMX, repack); off by default because "
                         "its AMX kernel crashed in testing")
    ap.add_argument("--timeout", type=int, default=600, help="seconds allowed for one pcache run")
    ap.add_argument("--out", default=os.path.join(REPO, "bench", "results"))
    ap.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    ap.add_argument("--worker-config", help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.sizes = sorted(int(s) for s in args.sizes.split(","))
    args.decode_after = args.sizes[0]
    args.model = os.path.abspath(args.model)
    return args


def check_pcache(args):
    """None when pcache can run, else a sentence saying why not."""
    if not os.path.isfile(args.pcache):
        return (f"{args.pcache} does not exist; build it (cmake -S . -B build && cmake --build build --target "
                f"pcache) or pass --peer-only")
    if not os.access(args.pcache, os.X_OK):
        return f"{args.pcache} is not executable"
    return None


def main():
    args = parse_args()
    if args.worker:
        print(json.dumps(WORKERS[args.worker](json.loads(args.worker_config))))
        return 0
    if not os.path.isfile(args.model):
        sys.exit(f"bench_engine: model not found: {args.model}")
    if not os.path.isfile(args.text):
        sys.exit(f"bench_engine: prompt text not found: {args.text} (pass --text FILE)")
    pcache_note = "--peer-only was given" if args.peer_only else check_pcache(args)
    if pcache_note and not args.peer_only:
        print(f"bench_engine: pcache cannot run: {pcache_note}", file=sys.stderr)
        return 2
    python = find_peer_python(args.peer_python)
    log(f"model {args.model}, {args.threads} threads, peer python {python}")
    load_before = os.getloadavg()[0]
    if load_before > 0.5 * len(os.sched_getaffinity(0)):
        log(f"warning: load average {load_before:.2f} on {len(os.sched_getaffinity(0))} cores: other processes "
            f"compete for the CPU and both engines will look slower (threads that spin-wait suffer most)")
    os.makedirs(args.out, exist_ok=True)
    failed = False
    with tempfile.TemporaryDirectory(prefix="bench_engine_") as tmp:
        info, _ = run_worker(python, "prepare", {"model": args.model, "text": args.text, "sizes": args.sizes,
                                                  "dir": tmp})
        info["pcache_version"] = pcache_version(args)
        info["load_before"] = load_before
        llama_res, llama_rss, base_rss = bench_llama(args, python, info["prompts"])
        llama = {"results": llama_res, "rss": llama_rss, "base_rss": base_rss,
                 "settings": llama_res[args.sizes[-1]]["settings"]}
        info["kernels"] = llama_res[args.sizes[-1]]["kernels"]
        pcache = None
        if not pcache_note:
            try:
                res, rss = bench_pcache(args, info["prompts"])
                pcache = {"results": res, "rss": rss}
            except (RuntimeError, OSError) as e:
                pcache_note = f"it failed: {e}"
                failed = True
                print(f"bench_engine: pcache failed, reporting llama.cpp alone:\n{e}", file=sys.stderr)
    rows = build_rows(args, info["prompts"], llama, pcache)
    print_table(rows)
    machine = machine_info()
    write_markdown(os.path.join(args.out, "engine.md"), args, info, machine, rows, llama, pcache_note)
    with open(os.path.join(args.out, "engine.json"), "w", encoding="utf-8") as f:
        json.dump({"machine": machine, "info": info, "threads": args.threads, "repeats": args.repeats,
                   "rows": rows, "llama": llama, "pcache": pcache, "pcache_note": pcache_note}, f, indent=1)
    plotted = write_plot(os.path.join(args.out, "engine.png"), rows, args.threads)
    log(f"wrote {os.path.relpath(args.out, REPO)}/engine.md, engine.json" + (", engine.png" if plotted else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
