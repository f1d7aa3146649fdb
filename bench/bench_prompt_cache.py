#!/usr/bin/env python3
"""Prompt Cache benchmark: time to first token with cached modules, without them, and llama.cpp's full prefill.

  python bench/bench_prompt_cache.py [--sizes 1000,2000,4000,7500] [--repeats 3] [--threads N] [--pcache PATH]

For each size it builds, in a temporary folder, a schema whose modules (src= files of at most --module-tokens
tokens each) hold about that many tokens of real text: Debian's license texts from /usr/share/common-licenses,
concatenated and cut at token boundaries. The prompt imports every module and asks a ~32-token question. Then:
  - pcache, one process for all sizes (schemas registered once, one --prompt per size):
    `pcache run --compare --json --repeat R`: cached TTFT, uncached TTFT (the very same tokens at the same
    positions, plain prefill), assembly time, and the cached answer's quality against the uncached one;
  - llama.cpp (the reference peer, tools/lcp_peer.py, in its own process and Python): a full prefill of the
    very same token sequence (pcache's "input_tokens"; positions are contiguous since the schemas have no
    unions), TTFT = one llama_decode of the whole sequence + the first greedy pick, median of R runs on fresh
    contexts after a short warm-up. Same thread count; extra buffer types (AMX) off, since its AMX path crashes.
Prints a table with ratios and writes bench/results/prompt_cache.{md,json,png}. TTFTs are medians.

Invariants: both engines see identical token ids; every figure comes from this run; the load average before and
after is recorded, since the machine may be shared.
"""

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_MODEL = os.path.join(REPO, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
LICENSES = "/usr/share/common-licenses"
# Full texts, not the symlinks (GPL -> GPL-3 ...), in a fixed order.
LICENSE_FILES = ("GPL-3", "Apache-2.0", "MPL-2.0", "LGPL-2.1", "Artistic", "BSD", "CC0-1.0", "GFDL-1.3")
QUESTION = ("If I change the source code of a program under these licenses and sell copies of the binary to my "
            "customers, which notices, source code and patent grants must I give them?")
SYSTEM = "You are a careful assistant who answers questions about the software licenses you are given."
TARGETS = {"llama_over_cached_min": 60.0, "assembly_pct_max": 1.0}


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def load_text():
    return f"{time.strftime('%H:%M:%S')} load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}"


# ---------------------------------------------------------------- llama.cpp side (runs in the peer's python)

def peer_module():
    sys.path.insert(0, os.path.join(REPO, "tools"))
    import lcp_peer
    return lcp_peer


def worker_prepare(cfg):
    """Module texts for each size: the license corpus cut at token boundaries (llama.cpp's tokenization)."""
    P = peer_module()
    peer = P.Peer(cfg["model"], 1, n_ctx=512, extra_bufts=False)
    corpus = []
    for name in LICENSE_FILES:
        with open(os.path.join(LICENSES, name), encoding="utf-8") as f:
            corpus += peer.tokenize(f.read().strip() + "\n\n", add_special=False)
    out = {"corpus_tokens": len(corpus), "question_tokens": len(peer.tokenize(QUESTION, add_special=False)),
           "sizes": {}}
    for size in cfg["sizes"]:
        if size > len(corpus):
            raise SystemExit(f"the license corpus has {len(corpus)} tokens, fewer than the {size} asked for")
        n_mod = -(-size // cfg["module_tokens"])
        cuts = [size * i // n_mod for i in range(n_mod + 1)]
        out["sizes"][str(size)] = [peer.detokenize(corpus[a:b]) for a, b in zip(cuts, cuts[1:])]
    peer.close()
    return out


def worker_llama(cfg):
    """Full prefill of each sequence on a fresh context: TTFT = llama_decode of all tokens + greedy pick."""
    P = peer_module()
    out = []
    settings = None
    for s in cfg["seqs"]:
        # a context of this sequence's own length, as a user would size it (a larger one is slower)
        n = len(s["tokens"])
        peer = P.Peer(cfg["model"], cfg["threads"], n_ctx=n + 8, n_batch=n + 8, extra_bufts=False)
        peer.fresh()
        peer.decode(s["tokens"][:256])  # warm-up: weights paged in, graph built, threads started
        samples = []
        for rep in range(cfg["repeats"]):
            peer.fresh()
            t0 = time.perf_counter()
            peer.decode(s["tokens"])
            tok = peer.last_argmax()
            samples.append((time.perf_counter() - t0) * 1e3)
            log(f"  llama.cpp {s['size']:5d}: run {rep + 1}/{cfg['repeats']}: {samples[-1]:.0f} ms "
                f"({len(s['tokens'])} tokens, first token {tok}) | {load_text()}")
        out.append({"size": s["size"], "ttft_all_ms": samples, "ttft_ms": statistics.median(samples),
                    "first_token": tok})
        settings = peer.settings()
        peer.close()
    return {"results": out, "settings": settings, "kernels": P.kernels_note(settings),
            "system_info": P.system_info()}


WORKERS = {"prepare": worker_prepare, "llama": worker_llama}


def run_worker(python, kind, cfg, tmp):
    """Runs a worker in the peer's python; its config travels in a file (token lists are long)."""
    path = os.path.join(tmp, f"{kind}.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(cfg, f)
    proc = subprocess.run([python, os.path.abspath(__file__), "--worker", kind, "--worker-config", path],
                          stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"llama.cpp worker '{kind}' failed with exit status {proc.returncode} (messages above)")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- pcache side

def write_case(tmp, size, texts):
    """One schema (modules from src= files) and one prompt importing them all."""
    name = f"licenses{size}"
    mods = []
    for i, text in enumerate(texts):
        src = f"{name}_m{i}.txt"
        with open(os.path.join(tmp, src), "w", encoding="utf-8") as f:
            f.write(text)
        mods.append(f"m{i}")
    schema = os.path.join(tmp, f"{name}.schema.xml")
    with open(schema, "w", encoding="utf-8") as f:
        f.write(f'<schema name="{name}"><system>{SYSTEM}</system><user>\n' +
                "".join(f'<module name="{m}" src="{name}_m{i}.txt"/>\n' for i, m in enumerate(mods)) +
                "</user></schema>\n")
    prompt = os.path.join(tmp, f"{name}.prompt.xml")
    with open(prompt, "w", encoding="utf-8") as f:
        f.write(f'<prompt schema="{name}">' + "".join(f"<{m}/>" for m in mods) + f"<user>{QUESTION}</user></prompt>\n")
    return {"size": size, "schema": schema, "prompt": prompt, "modules": len(mods)}


def bench_pcache(args, cases):
    """One pcache process: every schema registered once, then one compare per prompt, JSON line by line."""
    argv = [args.pcache, "run", "-m", args.model, "-t", str(args.threads), "-c", str(args.n_ctx), "--compare",
            "--json", "--repeat", str(args.repeats), "-n", str(args.n_predict), "--temp", "0"]
    for c in cases:
        argv += ["--schema", c["schema"]]
    for c in cases:
        argv += ["--prompt", c["prompt"]]
    log("pcache: " + " ".join(os.path.basename(a) if a.startswith("/tmp") else a for a in argv))
    by_prompt = {c["prompt"]: c for c in cases}
    out = {}
    t0 = time.perf_counter()
    with subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) as proc:  # stderr: pcache's own progress
        for line in proc.stdout:
            if not line.startswith("{"):
                continue
            doc = json.loads(line)
            case = by_prompt[doc["prompt"]]
            out[case["size"]] = doc
            q = doc["quality"]
            log(f"pcache {case['size']:5d}: cached {doc['cached']['ttft_ms']:.1f} ms, uncached "
                f"{doc['uncached']['ttft_ms']:.0f} ms, assembly {doc['cached']['assemble_ms']:.3f} ms, "
                f"KL mean {q['kl_mean']:.3g}, answers {'identical' if q['identical'] else 'differ'} | {load_text()}")
    if proc.returncode != 0 or len(out) != len(cases):
        raise SystemExit(f"pcache exited with {proc.returncode} after {len(out)} of {len(cases)} prompts")
    return out, time.perf_counter() - t0


# ---------------------------------------------------------------- report

def build_rows(cases, pc, llama):
    rows = []
    for c in cases:
        d, L = pc[c["size"]], llama[c["size"]]
        cached, uncached = d["cached"], d["uncached"]
        pos = uncached["input_pos"]
        rows.append({
            "size": c["size"], "modules": c["modules"], "cached_tokens": cached["cached_tokens"],
            "fresh_tokens": cached["fresh_tokens"], "input_tokens": len(cached["input_tokens"]),
            "contiguous": pos == list(range(len(pos))),
            "cached_ttft_ms": cached["ttft_ms"], "cached_ttft_all_ms": cached["ttft_all_ms"],
            "uncached_ttft_ms": uncached["ttft_ms"], "uncached_ttft_all_ms": uncached["ttft_all_ms"],
            "llama_ttft_ms": L["ttft_ms"], "llama_ttft_all_ms": L["ttft_all_ms"],
            "assemble_ms": cached["assemble_ms"],
            "llama_over_cached": L["ttft_ms"] / cached["ttft_ms"],
            "uncached_over_cached": uncached["ttft_ms"] / cached["ttft_ms"],
            "assembly_pct": 100.0 * cached["assemble_ms"] / cached["ttft_ms"],
            "quality": d["quality"],
            "first_token_same_as_llama": bool(cached["tokens"]) and cached["tokens"][0] == L["first_token"],
        })
    return rows


HEADER = ("| target tokens | cached tokens | fresh | pcache cached TTFT ms | pcache uncached TTFT ms | "
          "llama.cpp full TTFT ms | llama.cpp / cached | uncached / cached | assembly ms | assembly % of cached | "
          "cached = uncached answer |")


def table_lines(rows):
    lines = [HEADER, "|" + " ---: |" * 10 + " :---: |"]
    for r in rows:
        q = r["quality"]
        lines.append(f"| {r['size']} | {r['cached_tokens']} | {r['fresh_tokens']} | {r['cached_ttft_ms']:.1f} | "
                     f"{r['uncached_ttft_ms']:.0f} | {r['llama_ttft_ms']:.0f} | {r['llama_over_cached']:.1f}x | "
                     f"{r['uncached_over_cached']:.1f}x | {r['assemble_ms']:.3f} | {r['assembly_pct']:.3f}% | "
                     f"{'yes' if q['identical'] else 'no'} (KL max {q['kl_max']:.2g}) |")
    return lines


def verdicts(rows):
    last = rows[-1]
    ok1 = last["llama_over_cached"] >= TARGETS["llama_over_cached_min"]
    worst = max(r["assembly_pct"] for r in rows)
    ok2 = worst < TARGETS["assembly_pct_max"]
    return [
        f"- cached TTFT >= {TARGETS['llama_over_cached_min']:.0f}x lower than llama.cpp's full prefill at the longest "
        f"length ({last['cached_tokens']} cached tokens): {last['llama_over_cached']:.1f}x: "
        f"{'met' if ok1 else 'NOT met'}",
        f"- assembly < {TARGETS['assembly_pct_max']:.0f}% of cached TTFT: at most {worst:.3f}%: "
        f"{'met' if ok2 else 'NOT met'}",
    ]


def write_markdown(path, args, meta, rows, llama_meta):
    s = llama_meta["settings"]
    lines = [
        "# Prompt Cache benchmark: time to first token",
        "",
        f"Generated by `bench/bench_prompt_cache.py` on {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} "
        f"UTC: `{meta['command']}`.",
        "",
        f"Machine: {meta['cpu']}, {meta['cores']} cores ({args.threads} threads for both engines); load average "
        f"(1/5/15 min) {meta['load_before']} before, {meta['load_after']} after: the machine is shared, so absolute "
        f"times vary; ratios within a row come from the same minutes. Model `{os.path.basename(args.model)}`.",
        "",
        f"Each schema holds the target number of tokens of Debian license texts ({', '.join(LICENSE_FILES)}, "
        f"concatenated, cut at token boundaries) as modules of at most {args.module_tokens} tokens (src= files), "
        f"after a system message; the prompt imports every module and asks a {meta['question_tokens']}-token "
        f"question. TTFTs are medians of {args.repeats} runs. pcache cached TTFT counts from the request's start "
        f"(parsing, binding, assembly, the fresh tokens' prefill, first pick); uncached is the very same tokens at "
        f"the same positions through one plain prefill; llama.cpp (llama-cpp-python, flash attention "
        f"{s['flash_attn']}, KV {s['type_k']}, n_ubatch {s['n_ubatch']}, extra buffer types off because its AMX "
        f"path crashes here) prefills pcache's exact input token ids on a fresh context. Cached / uncached answers: "
        f"{args.n_predict} greedy tokens; KL is KL(P_uncached || P_cached) per step with the uncached answer "
        f"teacher-forced through the cached context (0 when the cache reproduces the plain prefill exactly).",
        "",
    ] + table_lines(rows) + [
        "",
        "Caution on a shared machine: llama.cpp's OpenMP worker threads spin-wait at every barrier, so when another "
        "process takes a core they lose far more time than pcache's; its TTFT (and the llama.cpp / cached ratio) "
        "then overstates what an idle machine gives. bench/results/engine.md holds llama.cpp's idle prefill rate.",
        "", "Targets:", ""] + verdicts(rows) + [
        "",
        f"Schema encoding (once per schema, not part of any TTFT): {meta['pcache_wall_s']:.0f} s of pcache's run in "
        f"all, which includes the encodes and every timed run.",
        "",
        "![TTFT vs cached tokens](prompt_cache.png)",
    ]
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
    x = [r["cached_tokens"] for r in rows]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for key, name, style in (("llama_ttft_ms", "llama.cpp full prefill", "s-"),
                             ("uncached_ttft_ms", "pcache without cache", "^-"),
                             ("cached_ttft_ms", "pcache with Prompt Cache", "o-")):
        ys = [r[key] for r in rows]
        ax.plot(x, ys, style, label=name)
        for xi, yi in zip(x, ys):
            ax.annotate(f"{yi:.0f}" if yi >= 10 else f"{yi:.1f}", (xi, yi), textcoords="offset points",
                        xytext=(0, 6), ha="center", fontsize=8)
    ax.set_yscale("log")
    ax.set_xlabel("cached tokens (module text)")
    ax.set_ylabel("time to first token, ms (log scale)")
    ax.set_title(f"TTFT vs cached tokens ({threads} threads)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def cpu_name():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown CPU"


# ---------------------------------------------------------------- main

def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--sizes", default="1000,2000,4000,7500", help="module tokens per schema, comma separated")
    ap.add_argument("--module-tokens", type=int, default=1024, help="tokens per module (src= file) at most")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--n-predict", type=int, default=16, help="answer tokens (quality is measured over them)")
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--n-ctx", type=int, default=8192)
    ap.add_argument("--pcache", default=os.path.join(REPO, "build", "pcache"))
    ap.add_argument("--peer-python", default=os.environ.get("PEER_PYTHON", "/opt/lcpvenv/bin/python"))
    ap.add_argument("--out", default=os.path.join(REPO, "bench", "results"))
    ap.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    ap.add_argument("--worker-config", help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.sizes = sorted(int(s) for s in args.sizes.split(","))
    args.model = os.path.abspath(args.model)
    return args


def main():
    args = parse_args()
    if args.worker:
        with open(args.worker_config, encoding="utf-8") as f:
            print(json.dumps(WORKERS[args.worker](json.load(f))))
        return 0
    for path, what in ((args.model, "model"), (args.pcache, "pcache binary (build it, or pass --pcache)"),
                       (args.peer_python, "peer python (--peer-python)")):
        if not os.path.isfile(path):
            sys.exit(f"bench_prompt_cache: {what} not found: {path}")
    if args.sizes[-1] + 200 + args.n_predict > args.n_ctx:
        sys.exit(f"bench_prompt_cache: {args.sizes[-1]} tokens plus question and answer exceed n_ctx {args.n_ctx}")
    meta = {"command": "python3 bench/bench_prompt_cache.py " + " ".join(sys.argv[1:]), "cpu": cpu_name(),
            "cores": len(os.sched_getaffinity(0)), "load_before": " ".join(f"{x:.2f}" for x in os.getloadavg())}
    log(f"sizes {args.sizes}, {args.repeats} repeats, {args.threads} threads | {load_text()}")
    if os.getloadavg()[0] > 0.5 * meta["cores"]:
        log("warning: the machine is busy; both engines will look slower")
    os.makedirs(args.out, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench_prompt_cache_") as tmp:
        log("cutting module texts (llama.cpp tokenizer)")
        prep = run_worker(args.peer_python, "prepare", {"model": args.model, "sizes": args.sizes,
                                                        "module_tokens": args.module_tokens}, tmp)
        meta["question_tokens"] = prep["question_tokens"]
        cases = [write_case(tmp, s, prep["sizes"][str(s)]) for s in args.sizes]
        pc, meta["pcache_wall_s"] = bench_pcache(args, cases)
        log(f"llama.cpp: full prefill of the same token sequences ({args.repeats} runs each)")
        seqs = [{"size": c["size"], "tokens": pc[c["size"]]["uncached"]["input_tokens"]} for c in cases]
        llama_meta = run_worker(args.peer_python, "llama", {"model": args.model, "threads": args.threads,
                                                             "repeats": args.repeats, "seqs": seqs}, tmp)
    llama = {r["size"]: r for r in llama_meta["results"]}
    rows = build_rows(cases, pc, llama)
    meta["load_after"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    for r in rows:
        if not r["contiguous"]:
            log(f"warning: size {r['size']}: positions are not contiguous; llama.cpp's figure is not comparable")
    print()
    print("\n".join(table_lines(rows)))
    print()
    print("\n".join(verdicts(rows)))
    print(f"\nload average before: {meta['load_before']}, after: {meta['load_after']}")
    write_markdown(os.path.join(args.out, "prompt_cache.md"), args, meta, rows, llama_meta)
    with open(os.path.join(args.out, "prompt_cache.json"), "w", encoding="utf-8") as f:
        json.dump({"meta": meta, "args": {k: v for k, v in vars(args).items() if not k.startswith("worker")},
                   "rows": rows, "llama": {k: v for k, v in llama_meta.items() if k != "results"}}, f, indent=1)
    plotted = write_plot(os.path.join(args.out, "prompt_cache.png"), rows, args.threads)
    log(f"wrote {os.path.relpath(args.out, REPO)}/prompt_cache.md, prompt_cache.json"
        + (", prompt_cache.png" if plotted else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
