#!/usr/bin/env python3
"""Side-by-side engine benchmark: pcache versus llama.cpp's own llama-bench, model by model.

  python3 bench/bench_engine.py [--models smollm2,qwen2.5-coder-0.5b,qwen2.5-coder-1.5b] [--threads 2] [--repeats 3]

Run it under the machine's exclusive lock (flock -x /tmp/pcache-cpu.lock ...): both engines are timed in one run,
so their ratio holds even when the machine's speed drifts, but not when other processes steal cores mid-run.

For each model (a name that scripts/get_model.sh knows, or a GGUF path), on the same GGUF with the same threads:
  prefill tok/s at 128, 512 and 2048 prompt tokens, and decode tok/s over 128 tokens after a 128-token prompt;
    pcache:    `pcache generate --json`, prompt tokens / time to first token (tokenize + prefill + first greedy
               pick), the prompt cut from /usr/share/common-licenses/GPL-3 to that many of pcache's tokens;
    llama.cpp: `llama-bench` (built by tools/build_llama_cpp.sh into .peer/bin) with flash attention on and
               nothing else changed: its default buffer types, so its repacked CPU kernels run; pp<n> tests for
               prefill (n tokens in one batch, its default micro-batch of 512), a tg128 test at depth 128 for decode.
  the decode limit: memory read bandwidth with the same threads (build/bench_membw streaming over as many bytes
    as one decode step reads: every matrix once, from the GGUF's tensor table, plus the KV of ~192 tokens),
    divided by those bytes; each engine's decode tok/s as a share of it; and, because this host's bandwidth moves
    between levels from minute to minute (and a best pass over ~100 MB can catch a mostly-L3 read), the same share
    paired: right before and right after each decode run, --bw-samples one-pass reads of those bytes (each in a
    fresh bench_membw process after its 3 untimed warm-up passes: without them a fresh process's first read ran
    ~7% low here, which raised the share); the mean of
    the two medians is the bandwidth of that run, each run's tok/s is set against it, and the median over the runs
    is reported. A run whose before and after medians differ by more than HELD_SPREAD (the level moved while it
    ran, so neither read says what it ran at) is kept in engine.json and the list of runs but left out of that
    median, as long as two runs held (llama.cpp's decode runs are one llama-bench call: its median run against the
    reads around that call); for pcache also at a finer grain, with build/bench_decode_paired in-process:
    --window-runs runs of the same decode, paused every --window-tokens tokens for --window-reads one-pass reads
    (the same read code as bench_membw), each window timed alone and set against the reads on both sides of it;
    the median of the windows that held (same HELD_SPREAD) over all runs is "paired (k-token windows)";
  peak RSS of each engine's process (ru_maxrss through wait4; llama-bench's covers all its tests).
Each figure is the best of --repeats runs (--decode-runs for decode) after a warm-up (interference only ever slows a run down); engine.json
keeps every sample. Writes bench/results/engine.md and engine.json and prints the tables.
"""

import argparse
import datetime
import json
import os
import platform
import struct
import subprocess
import statistics
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_MODELS = "smollm2,qwen2.5-coder-0.5b,qwen2.5-coder-1.5b"
DEFAULT_TEXT = "/usr/share/common-licenses/GPL-3"
PCACHE_KEYS = ("tokens", "prompt_tokens", "ttft_ms", "decode_tok_s")
HELD_SPREAD = 0.15  # before/after bandwidth medians further apart than this: the level moved during the run


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def resolve_model(name):
    """A GGUF path for a path or a scripts/get_model.sh name (which fetches and checks it when absent)."""
    if os.path.isfile(name):
        return os.path.abspath(name)
    proc = subprocess.run([os.path.join(REPO, "scripts", "get_model.sh"), name], stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        sys.exit(f"bench_engine: '{name}' is neither a file nor a model get_model.sh can fetch (its message is above)")
    return proc.stdout.strip().splitlines()[-1]


# ---------------------------------------------------------------- processes with peak-memory accounting

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
        rc = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return rc, out.read().decode(errors="replace"), err.read().decode(errors="replace"), usage.ru_maxrss / 1024.0


# ---------------------------------------------------------------- what a decode step reads

GGUF_SCALARS = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
# ggml type id -> (block size in elements, bytes per block)
GGML_BLOCKS = {0: (1, 4), 1: (1, 2), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24), 8: (32, 34), 10: (256, 84),
               11: (256, 110), 12: (256, 144), 13: (256, 176), 14: (256, 210), 30: (1, 2)}


def gguf_tensors(path):
    """{name: (ggml type, [ne...], bytes)} from a GGUF's header (versions 2 and 3)."""
    with open(path, "rb") as f:
        def rd(fmt):
            return struct.unpack("<" + fmt, f.read(struct.calcsize("<" + fmt)))

        def skip(vtype):
            if vtype == 8:
                n, = rd("Q")
                f.seek(n, 1)
            elif vtype == 9:
                etype, n = rd("IQ")
                if etype in (8, 9):
                    for _ in range(n):
                        skip(etype)
                else:
                    f.seek(GGUF_SCALARS[etype] * n, 1)
            else:
                f.seek(GGUF_SCALARS[vtype], 1)

        magic, _version, n_tensors, n_kv = rd("4sIQQ")
        if magic != b"GGUF":
            raise ValueError(f"{path} is not a GGUF file")
        for _ in range(n_kv):
            n, = rd("Q")
            f.seek(n, 1)
            vtype, = rd("I")
            skip(vtype)
        out = {}
        for _ in range(n_tensors):
            n, = rd("Q")
            name = f.read(n).decode()
            nd, = rd("I")
            ne = list(rd("Q" * nd))
            ttype, _offset = rd("IQ")
            bs, bb = GGML_BLOCKS.get(ttype, (1, 0))
            count = 1
            for e in ne:
                count *= e
            out[name] = (ttype, ne, count // bs * bb)
        return out


def decode_bytes(path, context_tokens):
    """Bytes one decode step reads: every matrix of every layer and the output head once, plus the KV of
    context_tokens tokens (F16 K and V of every layer); norms, biases and one embedding row are left out (< 0.1%)."""
    t = gguf_tensors(path)
    mats = [v[2] for k, v in t.items() if k.startswith("blk.") and len(v[1]) == 2]
    head = t.get("output.weight", t["token_embd.weight"])[2]
    kv_dim = sum(v[1][1] for k, v in t.items() if k.startswith("blk.") and k.endswith(("attn_k.weight", "attn_v.weight")))
    return sum(mats) + head + kv_dim * 2 * context_tokens


# ---------------------------------------------------------------- llama.cpp: llama-bench

def llama_bench(args, model, extra):
    reps = [] if "-r" in extra else ["-r", str(args.repeats)]
    argv = [args.llama_bench, "-m", model, "-t", str(args.threads), "-fa", "1"] + reps + ["-o", "json"] + extra
    rc, out, err, rss = run_measured(argv, args.timeout)
    if rc != 0:
        raise RuntimeError(f"`{' '.join(argv)}` exited with {rc}:\n{err[-2000:]}")
    return json.loads(out), rss, err


def bench_llama(args, model, nbytes):
    log(f"llama.cpp: llama-bench prefill {args.sizes} ({args.repeats} runs after its warm-up)")
    pp, rss_pp, err = llama_bench(args, model, ["-p", ",".join(str(n) for n in args.sizes), "-n", "0"])
    log(f"llama.cpp: llama-bench decode {args.n_decode} tokens at depth {args.decode_after}")
    before = paired_bandwidth(args, nbytes)
    tg, rss_tg, _ = llama_bench(args, model, ["-p", "0", "-n", str(args.n_decode), "-d", str(args.decode_after),
                                              "-r", str(args.decode_runs)])
    bw_now = bracket(before, paired_bandwidth(args, nbytes))
    res = {"prefill": {}, "decode": None, "rss": max(rss_pp, rss_tg), "stderr_tail": err[-1500:]}
    for t in pp:
        res["prefill"][t["n_prompt"]] = {"samples": t["samples_ts"], "best": max(t["samples_ts"])}
        log(f"  llama.cpp pp{t['n_prompt']}: {', '.join(f'{s:.1f}' for s in t['samples_ts'])} tok/s")
    t = tg[0]
    res["decode"] = {"samples": t["samples_ts"], "best": max(t["samples_ts"]), "bw_gb_s": bw_now,
                     "paired_share": statistics.median(t["samples_ts"]) * nbytes / (bw_now["median_gb_s"] * 1e9)}
    log(f"  llama.cpp tg{t['n_gen']} @ d{t['n_depth']}: {', '.join(f'{s:.1f}' for s in t['samples_ts'])} tok/s")
    res["settings"] = {k: pp[0][k] for k in ("build_commit", "n_batch", "n_ubatch", "type_k", "type_v", "flash_attn",
                                              "repack", "poll", "n_threads", "model_type", "model_size")}
    return res


# ---------------------------------------------------------------- pcache

def pcache_run(args, model, prompt_path, n_predict, n_ctx):
    # --ignore-eos: llama-bench never stops early either, so both time the same number of tokens.
    argv = [args.pcache, "generate", "-m", model, "--prompt-file", prompt_path, "-n", str(n_predict), "--temp", "0",
            "--ignore-eos", "--json", "-t", str(args.threads), "-c", str(n_ctx)]
    rc, out, err, rss = run_measured(argv, args.timeout)
    if rc != 0:
        raise RuntimeError(f"`{' '.join(argv)}` exited with {rc}:\n{(err or out)[-1500:]}")
    doc = None
    for line in reversed(out.strip().splitlines()):
        if line.lstrip().startswith("{"):
            doc = json.loads(line)
            break
    if doc is None or any(k not in doc for k in PCACHE_KEYS):
        raise RuntimeError(f"`{' '.join(argv)}` printed no JSON object with {PCACHE_KEYS}; stdout began: {out[:300]!r}")
    if not doc["prompt_tokens"] or doc["ttft_ms"] <= 0:
        raise RuntimeError(f"pcache reported prompt_tokens={doc['prompt_tokens']} ttft_ms={doc['ttft_ms']}")
    sample = {"prompt_tokens": doc["prompt_tokens"], "ttft_ms": doc["ttft_ms"],
              "prefill_tok_s": doc["prompt_tokens"] / doc["ttft_ms"] * 1000.0}
    if n_predict > 1:
        sample["decode_tok_s"] = doc["decode_tok_s"]
    return sample, rss


def cut_prompt(args, model, text, n, path):
    """Writes the longest prefix of text (cut at a space) that pcache tokenizes to about n tokens; the warm-up runs
    measure it, so fitting costs no extra runs unless the first guess is more than 2% off."""
    chars = int(n * 4.2)
    sample = None
    for _ in range(4):
        cut = text[:chars].rsplit(" ", 1)[0]
        with open(path, "w", encoding="utf-8") as f:
            f.write(cut)
        sample, _ = pcache_run(args, model, path, 1, n + args.n_decode + 64)
        got = sample["prompt_tokens"]
        if abs(got - n) <= 0.02 * n:
            break
        chars = int(chars * n / got)
    return sample


def bench_pcache(args, model, text, tmp, nbytes):
    res = {"prefill": {}, "decode": None, "rss": 0.0}
    for n in args.sizes:
        path = os.path.join(tmp, f"prompt_{n}.txt")
        warm = cut_prompt(args, model, text, n, path)
        log(f"pcache: {warm['prompt_tokens']}-token prompt (for {n}), warm-up {warm['ttft_ms']:.0f} ms to first token")
        samples = []
        for _ in range(args.repeats):
            s, rss = pcache_run(args, model, path, 1, n + args.n_decode + 64)
            res["rss"] = max(res["rss"], rss)
            samples.append(s)
        res["prefill"][n] = {"samples": samples, "best": max(s["prefill_tok_s"] for s in samples),
                             "prompt_tokens": warm["prompt_tokens"]}
        rates = ", ".join(f"{s['prefill_tok_s']:.1f}" for s in samples)
        log(f"  pcache pp{n}: {rates} tok/s")
        if n == args.decode_after:
            res["decode"], rss = pcache_decode_brackets(args, model, path, n, nbytes)
            res["rss"] = max(res["rss"], rss)
            res["decode"]["windows"] = pcache_decode_windows(args, model, path, n, nbytes)
    return res


def pcache_decode_brackets(args, model, path, n, nbytes):
    """--decode-runs decode runs, each paired with the reads right before and after it (the run brackets)."""
    samples, peak = [], 0.0
    for _ in range(args.decode_runs):
        before = paired_bandwidth(args, nbytes)
        s, rss = pcache_run(args, model, path, args.n_decode + 1, n + args.n_decode + 64)
        s["bw_gb_s"] = bracket(before, paired_bandwidth(args, nbytes))
        s["share"] = s["decode_tok_s"] * nbytes / (s["bw_gb_s"]["median_gb_s"] * 1e9)
        peak = max(peak, rss)
        samples.append(s)
    held = [x["share"] for x in samples if x["bw_gb_s"]["held"]]
    counted = held if len(held) >= 2 else [x["share"] for x in samples]
    rates = ", ".join(f"{s['decode_tok_s']:.1f}" for s in samples)
    log(f"  pcache tg{args.n_decode} after {n}: {rates} tok/s")
    return {"samples": samples, "best": max(s["decode_tok_s"] for s in samples),
            "paired_share": statistics.median(counted), "paired_runs": len(counted)}, peak


def pcache_decode_windows(args, model, path, n, nbytes):
    """--window-runs runs of build/bench_decode_paired: the same prompt, tokens and bytes, each window of
    --window-tokens tokens paired with --window-reads one-pass reads right before and after it, inside the process.
    The share is the median of every held window of all runs (None when none held)."""
    runs_out = []
    for _ in range(args.window_runs):
        argv = [args.decode_paired, "-m", model, "--prompt-file", path, "--bytes", str(nbytes), "-t",
                str(args.threads), "-n", str(args.n_decode), "-k", str(args.window_tokens), "-c",
                str(n + args.n_decode + 64), "--reads", str(args.window_reads), "--held-spread", str(HELD_SPREAD)]
        rc, out, err, _ = run_measured(argv, args.timeout)
        if rc != 0:
            raise RuntimeError(f"`{' '.join(argv)}` exited with {rc}: {err[-500:]}")
        runs_out.append(json.loads(out.strip().splitlines()[-1]))
    held = [w for r in runs_out for w in r["windows"] if w["held"]]
    total = sum(r["n_windows"] for r in runs_out)
    share = statistics.median(w["share"] for w in held) if held else None
    levels = window_levels(held)
    log(f"  pcache {args.window_tokens}-token windows: {len(held)} of {total} held, median share "
        f"{fmt(None if share is None else 100 * share)}% ({levels_note(levels)}); per run "
        + ", ".join(f"{100 * r['median_share_held']:.1f}%" if r["n_held"] else "n/a" for r in runs_out))
    return {"runs": runs_out, "paired_share": share, "held": len(held), "windows": total, "levels": levels}


def peer_build(args):
    """How tools/build_llama_cpp.sh built the peer (its bin/BUILD note: GGML_NATIVE=ON, and where llama.cpp's AMX
    kernels crash on the host, that they were left out)."""
    try:
        with open(os.path.join(os.path.dirname(args.llama_bench), "BUILD")) as f:
            return f.read().strip()
    except OSError:
        return "GGML_NATIVE=ON"


def window_levels(held):
    """Held windows by the level of the reads they were paired with. Here the read bandwidth sits at one of two
    levels (~30-37 and ~45-70 GB/s) and decode does not follow it up (session 15's measurements): a median over
    windows mixes the two shares in whatever proportion the run met them. When the widest gap between the windows'
    reads, sorted, is wider than HELD_SPREAD, the windows are split there and each side's median share is reported
    with its count and median read; else they are one level."""
    if not held:
        return []
    pairs = sorted(((w["read_before_gb_s"] + w["read_after_gb_s"]) / 2, w["share"]) for w in held)
    gaps = [(pairs[i + 1][0] / pairs[i][0], i + 1) for i in range(len(pairs) - 1)]
    ratio, cut = max(gaps) if gaps else (1.0, len(pairs))
    sides = [pairs[:cut], pairs[cut:]] if ratio > 1 + HELD_SPREAD else [pairs]
    return [{"windows": len(x), "median_read_gb_s": statistics.median(b for b, _ in x),
             "median_share": statistics.median(v for _, v in x)} for x in sides]


def levels_note(levels):
    return "; ".join(f"{x['windows']} at ~{x['median_read_gb_s']:.0f} GB/s: {100 * x['median_share']:.1f}%"
                     for x in levels) or "none held"


# ---------------------------------------------------------------- memory bandwidth

def bandwidth(args, nbytes, passes=20):
    argv = [args.membw, str(args.threads), f"{nbytes / 1048576:.1f}", str(passes)]
    rc, out, err, _ = run_measured(argv, args.timeout)
    if rc != 0:
        raise RuntimeError(f"`{' '.join(argv)}` exited with {rc}: {err[-500:]}")
    return json.loads(out.strip().splitlines()[-1])


def paired_bandwidth(args, nbytes):
    """The bandwidth of this moment: the median of --bw-samples one-pass reads (each the better of a plain and a
    prefetching pass), so neither a lucky pass nor a slow one decides it."""
    each = [bandwidth(args, nbytes, 1)["best_gb_s"] for _ in range(args.bw_samples)]
    return {"median_gb_s": statistics.median(each), "samples": each}


def bracket(before, after):
    """The bandwidth a run between two paired reads ran at: their mean, and whether the level held across it."""
    a, b = before["median_gb_s"], after["median_gb_s"]
    return {"median_gb_s": (a + b) / 2, "before": before, "after": after,
            "held": abs(a - b) <= HELD_SPREAD * min(a, b)}


# ---------------------------------------------------------------- tables

def fmt(v, digits=1):
    return "n/a" if v is None else f"{v:.{digits}f}"


def model_rows(args, m):
    p, l = m["pcache"], m["llama"]
    rows = []
    for n in args.sizes:
        pb, lb = p["prefill"][n]["best"], l["prefill"][n]["best"]
        rows.append((f"prefill {n} tok/s", pb, lb, pb / lb))
    pd, ld = p["decode"]["best"], l["decode"]["best"]
    rows.append((f"decode tok/s ({args.n_decode} tokens after {args.decode_after})", pd, ld, pd / ld))
    limit = m["bandwidth_gb_s"] * 1e9 / m["decode_bytes"]
    rows.append(("decode as % of the memory limit", 100 * pd / limit, 100 * ld / limit, None))
    rows.append(("decode as % of the limit, paired (run brackets: median run that held)",
                 100 * p["decode"]["paired_share"], 100 * l["decode"]["paired_share"], None))
    win = p["decode"]["windows"]["paired_share"]
    rows.append((f"decode as % of the limit, paired ({args.window_tokens}-token windows: median window that held)",
                 None if win is None else 100 * win, None, None))
    rows.append(("peak RSS MiB", p["rss"], l["rss"], p["rss"] / l["rss"]))
    return rows, limit


def runs(m, args):
    """Every run's tok/s per prefill size and decode, pcache and llama.cpp: the spread shows the machine's noise."""
    p, l = m["pcache"], m["llama"]
    out = []
    for n in args.sizes:
        out.append(([s["prefill_tok_s"] for s in p["prefill"][n]["samples"]], l["prefill"][n]["samples"]))
    out.append(([s["decode_tok_s"] for s in p["decode"]["samples"]], l["decode"]["samples"]))
    out.append(([], []))
    out.append(([100 * s["share"] for s in p["decode"]["samples"]], [100 * l["decode"]["paired_share"]]))
    out.append(([100 * r["median_share_held"] for r in p["decode"]["windows"]["runs"] if r["n_held"]], []))
    return out


def spread(xs):
    return ", ".join(f"{x:.1f}" for x in xs)


def held_note(d):
    held = sum(s["bw_gb_s"]["held"] for s in d["samples"])
    if held == d["paired_runs"]:
        return f"the paired share is the median of the {held} runs that held"
    return f"only {held} of {len(d['samples'])} runs held, so the paired share is the median of all of them"


def window_note(args, w):
    return (f"{args.window_runs} runs of `bench_decode_paired` decode the same {args.n_decode} tokens, pausing every "
            f"{args.window_tokens} for {args.window_reads} one-pass reads of the same bytes inside the process (the "
            f"engine's threads asleep); each window is set against the medians of the reads on both sides and holds "
            f"when they agree within {100 * HELD_SPREAD:.0f}%: {w['held']} of {w['windows']} windows held, the share "
            f"is their median; by the level of their reads: {levels_note(w['levels'])} (decode does not speed up "
            f"with the faster level, so its share there is lower: each level is its own figure)")


def paired_reads(samples):
    """'before/after' of each run's paired reads, a run whose level moved marked with *."""
    return ", ".join(f"{s['bw_gb_s']['before']['median_gb_s']:.1f}/{s['bw_gb_s']['after']['median_gb_s']:.1f}"
                     + ("" if s["bw_gb_s"]["held"] else "*") for s in samples)


def print_model(args, m):
    rows, limit = model_rows(args, m)
    print(f"\n{m['name']}: {m['decode_bytes'] / 1e6:.1f} MB read per decode step, {m['bandwidth_gb_s']:.2f} GB/s "
          f"read bandwidth with {args.threads} threads -> decode limit {limit:.1f} tok/s")
    w = max(len(r[0]) for r in rows)
    print(f"{'metric':<{w}}  {'pcache':>9}  {'llama.cpp':>9}  {'pcache/llama.cpp':>16}")
    for label, pv, lv, ratio in rows:
        print(f"{label:<{w}}  {fmt(pv):>9}  {fmt(lv):>9}  {fmt(ratio, 2):>16}")


def machine_info():
    """The machine, for reports (bench/report.py renders these fields too)."""
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kib = next(int(line.split()[1]) for line in f if line.startswith("MemTotal"))
    return {"cpu": cpu, "cores": os.cpu_count(), "usable_cores": len(os.sched_getaffinity(0)),
            "load_average": [round(x, 2) for x in os.getloadavg()], "memory_gib": round(mem_kib / 1048576, 1),
            "os": f"{platform.system()} {platform.release()}", "python": platform.python_version()}


def git_rev():
    rev = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                           text=True)
    return "git " + (rev.stdout.strip() or "unknown") + (" with uncommitted changes" if dirty.stdout.strip() else "")


def pcache_version(args=None):
    """The tree pcache was built from (bench/report.py calls it with its args)."""
    return git_rev()


def write_markdown(path, args, models, machine, loads):
    s = models[0]["llama"]["settings"]
    lines = [
        "# Engine benchmark: pcache vs llama.cpp",
        "",
        f"Generated by `bench/bench_engine.py` on {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC "
        f"(pcache at {git_rev()}): `{' '.join(['python3', 'bench/bench_engine.py'] + sys.argv[1:])}`.",
        "",
        "The machine is shared (2 cores, other engineers' builds and tests): the run held the exclusive lock "
        "(`flock -x /tmp/pcache-cpu.lock`), yet figures still move from run to run; the last column of each model's "
        "table lists every run.",
        "",
        f"Machine: {machine['cpu']}, {machine['usable_cores']} usable cores, {machine['memory_gib']} GiB, "
        f"{machine['os']}; load average {loads[0]:.2f} before, {loads[1]:.2f} after. {args.threads} threads for both "
        f"engines, best of {args.repeats} runs after a warm-up ({args.decode_runs} for decode).",
        "",
        f"llama.cpp: `llama-bench` from the llama.cpp sources vendored in llama-cpp-python 0.3.36 (build "
        f"{s['build_commit']}, `tools/build_llama_cpp.sh`, {peer_build(args)}), `-fa 1 -t {args.threads}` and nothing "
        f"else: KV {s['type_k']}/{s['type_v']}, batch {s['n_batch']}, micro-batch {s['n_ubatch']}, repack "
        f"{'on' if s['repack'] else 'off'} (its default buffer types), thread polling {s['poll']}. Prefill is its "
        f"pp<n> test, decode its tg{args.n_decode} test at depth {args.decode_after}. pcache: `pcache generate --json` "
        f"on prompts cut from `{args.text}`; prefill = prompt tokens / time to first token, which also counts "
        f"tokenizing and the first greedy pick (llama-bench times the forward pass alone).",
        "",
        "| model | " + " | ".join(f"prefill {n}" for n in args.sizes)
        + " | decode | decode % of memory limit (pcache / llama.cpp) | the same, paired (run brackets) "
        f"| pcache, paired ({args.window_tokens}-token windows) |",
        "| --- |" + " ---: |" * (len(args.sizes) + 4),
    ]
    for m in models:
        rows, _ = model_rows(args, m)
        ratios = [f"{r[3]:.2f}x" for r in rows[:len(args.sizes) + 1]]
        share, paired, win = rows[len(args.sizes) + 1], rows[len(args.sizes) + 2], rows[len(args.sizes) + 3]
        lines.append(f"| {m['name']} | " + " | ".join(ratios) + f" | {share[1]:.0f}% / {share[2]:.0f}% "
                     f"| {paired[1]:.0f}% / {paired[2]:.0f}% | {fmt(win[1], 0)}% "
                     f"({levels_note(m['pcache']['decode']['windows']['levels'])}) |")
    lines += ["", "Ratios are pcache / llama.cpp (above 1: pcache is faster). Per model:"]
    for m in models:
        rows, limit = model_rows(args, m)
        lines += [
            "",
            f"## {m['name']}",
            "",
            f"`{os.path.basename(m['path'])}` ({m['llama']['settings']['model_type']}). A decode step reads "
            f"{m['decode_bytes'] / 1e6:.1f} MB (all matrices once, KV of {args.decode_after + args.n_decode // 2} "
            f"tokens); `bench_membw` reads that many bytes at {m['bandwidth_gb_s']:.2f} GB/s with {args.threads} "
            f"threads: a decode limit of {limit:.1f} tok/s. Paired: the medians of {args.bw_samples} one-pass reads "
            f"right before / right after each pcache decode run ({paired_reads(m['pcache']['decode']['samples'])} GB/s; "
            f"* where the two differ by more than {100 * HELD_SPREAD:.0f}%: {held_note(m['pcache']['decode'])}) and around "
            f"llama-bench's "
            f"({paired_reads([m['llama']['decode']])} GB/s). Paired in {args.window_tokens}-token windows (pcache "
            f"only): {window_note(args, m['pcache']['decode']['windows'])}.",
            "",
            "| metric | pcache | llama.cpp | pcache / llama.cpp | every run: pcache; llama.cpp |",
            "| --- | ---: | ---: | ---: | --- |",
        ]
        every = runs(m, args)
        for i, (label, pv, lv, ratio) in enumerate(rows):
            each = f"{spread(every[i][0])}; {spread(every[i][1])}" if i < len(every) else ""
            lines.append(f"| {label} | {fmt(pv)} | {fmt(lv)} | {fmt(ratio, 2)} | {each} |")
        sizes = ", ".join(f"{n}: {m['pcache']['prefill'][n]['prompt_tokens']}" for n in args.sizes)
        lines.append("")
        lines.append(f"pcache's prompts held {sizes} of its tokens; llama-bench's exactly the number named.")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


# ---------------------------------------------------------------- main

def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default=DEFAULT_MODELS, help="comma-separated model names or GGUF paths")
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--sizes", default="128,512,2048", help="prompt lengths in tokens, comma separated")
    ap.add_argument("--n-decode", type=int, default=128)
    ap.add_argument("--text", default=DEFAULT_TEXT, help="text file pcache's prompts are cut from")
    ap.add_argument("--pcache", default=os.path.join(REPO, "build", "pcache"))
    ap.add_argument("--membw", default=os.path.join(REPO, "build", "bench_membw"))
    ap.add_argument("--llama-bench", default=os.path.join(REPO, ".peer", "bin", "llama-bench"))
    ap.add_argument("--bw-samples", type=int, default=5,
                    help="one-pass reads before and after each decode run (paired limit)")
    ap.add_argument("--decode-runs", type=int, default=5, help="decode runs per engine (each paired)")
    ap.add_argument("--decode-paired", default=os.path.join(REPO, "build", "bench_decode_paired"))
    ap.add_argument("--window-runs", type=int, default=3, help="bench_decode_paired runs (pcache only)")
    ap.add_argument("--window-tokens", type=int, default=16, help="decode tokens per paired window")
    ap.add_argument("--window-reads", type=int, default=3, help="one-pass reads at each pause between windows")
    ap.add_argument("--timeout", type=int, default=1200, help="seconds allowed for one engine process")
    ap.add_argument("--out", default=os.path.join(REPO, "bench", "results"))
    args = ap.parse_args()
    args.sizes = sorted(int(s) for s in args.sizes.split(","))
    args.decode_after = args.sizes[0]
    return args


def main():
    args = parse_args()
    for tool, how in ((args.pcache, "cmake --build build"), (args.membw, "cmake --build build"),
                      (args.decode_paired, "cmake --build build"),
                      (args.llama_bench, "tools/build_llama_cpp.sh")):
        if not os.access(tool, os.X_OK):
            sys.exit(f"bench_engine: {tool} is missing; build it ({how})")
    with open(args.text, encoding="utf-8") as f:
        text = f.read()
    loads = [os.getloadavg()[0]]
    if loads[0] > 0.5 * len(os.sched_getaffinity(0)):
        log(f"warning: load average {loads[0]:.2f}: other processes compete for the CPU; run under "
            f"flock -x /tmp/pcache-cpu.lock")
    models = []
    with tempfile.TemporaryDirectory(prefix="bench_engine_") as tmp:
        for name in args.models.split(","):
            path = resolve_model(name)
            log(f"== {name}: {path}")
            m = {"name": name, "path": path, "decode_bytes": decode_bytes(path, args.decode_after + args.n_decode // 2)}
            m["llama"] = bench_llama(args, path, m["decode_bytes"])
            m["pcache"] = bench_pcache(args, path, text, tmp, m["decode_bytes"])
            m["membw"] = bandwidth(args, m["decode_bytes"])
            m["bandwidth_gb_s"] = m["membw"]["best_gb_s"]
            print_model(args, m)
            models.append(m)
    loads.append(os.getloadavg()[0])
    os.makedirs(args.out, exist_ok=True)
    machine = machine_info()
    write_markdown(os.path.join(args.out, "engine.md"), args, models, machine, loads)
    with open(os.path.join(args.out, "engine.json"), "w", encoding="utf-8") as f:
        json.dump({"machine": machine, "loads": loads, "threads": args.threads, "repeats": args.repeats,
                   "sizes": args.sizes, "n_decode": args.n_decode, "pcache_git": git_rev(), "models": models}, f,
                  indent=1)
    log(f"wrote {os.path.relpath(args.out, REPO)}/engine.md and engine.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
