#!/usr/bin/env python3
"""Server benchmark: `pcache serve` against llama.cpp's own `llama-server`, same load from the same client.

  flock -x /tmp/pcache-cpu.lock python3 bench/bench_server.py [--model smollm2|qwen2.5-coder-1.5b] [--concurrency 1,4,16]
      [--requests N]   # N requests per client instead of the model's default (a long run split in shorter ones)
  flock -x /tmp/pcache-cpu.lock python3 bench/bench_server.py --model M --batched-only [--repeats 3]
      # only the batched decode round, repeated: kept as bench/results/server-batched_<model>_<time>.json
  build/venv-server/bin/python bench/bench_server.py --model smollm2 --report [--since 20261201-000000]
      # table and plot of every run so far (or of the runs started at or after a time, e.g. since a change)
  (the plot needs matplotlib: `build/venv-server/bin/pip install matplotlib`; the runs need only the standard library)

For each engine, one server process per case (same model file, same --threads, same --parallel, llama-server
with flash attention on, default buffer and KV types, its prompt cache on as its users run it (--cache-prompt,
its default; continuous batching and unified KV, its defaults); pcache with its defaults (prefix cache on, a 1 GiB
memory tier)), this
script's own threads send the load: C clients, each sending its requests one after the other (a closed loop),
every request streamed (SSE) with temperature 0, ignore_eos and a fixed max_tokens, so both engines generate
exactly the same number of tokens. Two cases:
  - prefix: chat prompts sharing one long system prompt (Debian license text), each with its own question:
    llama-server's prompt cache and pcache's automatic prefix cache both apply;
  - non-prefix: prompts importing 2-4 of 10 documents in varying order (a PML schema registered once before the
    clock starts; llama-server gets the very same system prompt, documents in the same order and question as
    chat messages): only the shared start can come from llama-server's cache, every document from pcache's.
Before each measured round, one warm-up round of C requests with other questions fills both engines' caches
as a steady workload would. Measured per request: TTFT (send to the first streamed content), tokens; per round:
output tokens/s = tokens of all requests / wall time from the first send to the last token.
A last pcache-only round measures batched decode: the aggregate decode tokens/s of 8 clients over 1 client's.

Each run is kept as bench/results/server_<model>_<time>.json; bench/results/server_<model>.{md,png} show every
run's ratios and their median (the machine is shared and noisy: repeat the run, each under the exclusive lock;
the load averages before and after are recorded).
"""

import argparse
import http.client
import json
import os
import random
import resource
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(REPO, "bench", "results")
LICENSES = "/usr/share/common-licenses"
MODELS = {
    # name: (file, max_tokens, system prompt chars, document chars, requests per client)
    "smollm2": ("SmolLM2-135M-Instruct.Q4_1.gguf", 64, 4000, 700, 3),
    "qwen2.5-coder-0.5b": ("qwen2.5-coder-0.5b-instruct.gguf", 32, 2400, 400, 2),
    "qwen2.5-coder-1.5b": ("qwen2.5-coder-1.5b-instruct-q4_k_m.gguf", 32, 2400, 400, 2),
}
DOC_FILES = ["Apache-2.0", "Artistic", "BSD", "CC0-1.0", "GFDL-1.3", "GPL-2", "GPL-3", "LGPL-2.1", "MPL-1.1", "MPL-2.0"]
SYSTEM = "You answer questions about the license texts you are given, briefly and in plain words."
TARGETS = {"throughput_min": 1.2, "ttft_prefix_min": 2.0, "ttft_nonprefix_min": 10.0, "batched_decode_min": 3.0}


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def loadavg():
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def read_doc(name, chars):
    with open(os.path.join(LICENSES, name), encoding="utf-8") as f:
        text = " ".join(f.read().split())
    return text[:chars].rsplit(" ", 1)[0]


def xml_escape(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# ---------------------------------------------------------------- workloads

class Workload:
    """The requests of one case: for round r and client c, request i. Deterministic (seeded)."""

    def __init__(self, case, sys_chars, doc_chars):
        self.case = case
        self.system = SYSTEM + "\n\n" + read_doc("GPL-3", sys_chars)
        self.docs = [read_doc(n, doc_chars) for n in DOC_FILES]
        self.rng = random.Random(7)

    def schema(self):
        mods = "".join(f'<module name="d{i}">{xml_escape(d)}</module>' for i, d in enumerate(self.docs))
        return f'<schema name="docs"><system>{xml_escape(SYSTEM)}</system><user>{mods}</user></schema>'

    def request(self, tag):
        q = f"Question {tag}: which rights does the text give to people who receive a copy?"
        if self.case == "prefix":
            return {"messages": [{"role": "system", "content": self.system}, {"role": "user", "content": q}]}, None
        # in schema order: where PML places them, so both servers see the documents in the same order
        picked = sorted(self.rng.sample(range(len(self.docs)), self.rng.randint(2, 4)))
        pml = '<prompt schema="docs">' + "".join(f"<d{i}/>" for i in picked) + "</prompt>"
        plain = {"messages": [{"role": "system", "content": SYSTEM},
                              {"role": "user", "content": " ".join(self.docs[i] for i in picked)},
                              {"role": "user", "content": q}]}
        return plain, {"messages": [{"role": "user", "content": q}], "pml": pml}


# ---------------------------------------------------------------- servers

def wait_health(port, proc, timeout=600):
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with status {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise SystemExit("server did not become healthy")


def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


COMMANDS = {}  # engine: its command line, for the record
LIVE = []  # servers running: stopped on any exit (stop_all)


def stop_all(*_):
    for e in list(LIVE):
        e.stop()


def llama_server_cmd(binary, model_path, port, threads, extra):
    """llama-server's command line: the options every use here shares, then extra."""
    return [binary, "-m", model_path, "--port", str(port), "-t", str(threads), *extra, "--no-webui", "-a", "bench"]


def spawn(cmd, lib_dir):
    """Starts a server with its shared libraries from lib_dir. close_fds (the default): it inherits no lock held
    by our caller."""
    env = dict(os.environ, LD_LIBRARY_PATH=lib_dir)
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, close_fds=True)


def stop_proc(proc):
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class Engine:
    def __init__(self, kind, args, model_path, ctx):
        self.kind = kind
        self.port = free_port()
        P = args.parallel
        if kind == "pcache":
            cmd = [args.pcache, "serve", "-m", model_path, "--port", str(self.port), "-t", str(args.threads),
                   "-c", str(ctx), "--parallel", str(P), "--queue", "256", "--alias", "bench"]
        else:  # llama-server divides -c among its slots: each slot gets ctx
            cmd = llama_server_cmd(args.llama_server, model_path, self.port, args.threads,
                                   ["-c", str(ctx * P), "-np", str(P), "-fa", "on", "--cache-prompt"])
        self.cmd = " ".join(cmd)
        self.proc = spawn(cmd, os.path.dirname(args.llama_server))
        LIVE.append(self)
        wait_health(self.port, self.proc)

    def post(self, path, body):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=3600)
        c.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        r = c.getresponse()
        data = r.read()
        c.close()
        if r.status >= 300:
            raise SystemExit(f"{self.kind} {path}: {r.status} {data[:300]}")
        return json.loads(data)

    def stop(self):
        if self in LIVE:
            LIVE.remove(self)
        stop_proc(self.proc)


def stream_one(port, body):
    """Streams one chat completion; returns (ttft_s, tokens, end_s) measured from its send."""
    t0 = time.perf_counter()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=3600)
    c.request("POST", "/v1/chat/completions", json.dumps(body), {"Content-Type": "application/json"})
    r = c.getresponse()
    if r.status != 200:
        raise RuntimeError(f"status {r.status}: {r.read()[:300]}")
    ttft, pieces, usage = None, 0, None
    for raw in r:
        line = raw.decode().strip()
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        chunk = json.loads(line[6:])
        if chunk.get("usage"):
            usage = chunk["usage"]
        for ch in chunk.get("choices") or []:
            if (ch.get("delta") or {}).get("content"):
                pieces += 1
                if ttft is None:
                    ttft = time.perf_counter() - t0
    end = time.perf_counter() - t0
    c.close()
    return ttft if ttft is not None else end, (usage or {}).get("completion_tokens", pieces), end


def run_round(engine, bodies_per_client):
    """Clients run concurrently, each its list of bodies in turn. Returns per-request records and wall time."""
    recs, errors = [], []
    lock = threading.Lock()
    start = time.perf_counter()

    def client(bodies):
        for b in bodies:
            try:
                t = time.perf_counter()
                ttft, n, end = stream_one(engine.port, b)
                with lock:
                    recs.append({"ttft": ttft, "tokens": n, "start": t - start, "end": t - start + end})
            except Exception as e:  # noqa: BLE001 - counted and reported
                with lock:
                    errors.append(str(e))

    threads = [threading.Thread(target=client, args=(bs,)) for bs in bodies_per_client]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise SystemExit(f"{engine.kind}: {len(errors)} requests failed, e.g. {errors[0]}")
    wall = max(r["end"] for r in recs)
    return recs, wall


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, int(round(p / 100 * (len(xs) - 1)))))]


def summarize(recs, wall):
    tt = [r["ttft"] * 1e3 for r in recs]
    toks = sum(r["tokens"] for r in recs)
    return {"requests": len(recs), "ttft_p50_ms": statistics.median(tt), "ttft_p99_ms": pct(tt, 99),
            "tokens": toks, "wall_s": wall, "tok_s": toks / wall}


def bodies(work, engine_kind, clients, per_client, round_tag, max_tokens):
    out = []
    for c in range(clients):
        lst = []
        for i in range(per_client):
            plain, pml = work.request(f"{round_tag}-{c}-{i}")
            b = dict(pml if (engine_kind == "pcache" and pml) else plain)
            b.update({"model": "bench", "max_tokens": max_tokens, "temperature": 0, "stream": True,
                      "stream_options": {"include_usage": True}, "ignore_eos": True})
            lst.append(b)
        out.append(lst)
    return out


def measure_case(args, model_path, case, work_args, max_tokens, per_client):
    results = {}
    for kind in ("llama-server", "pcache"):
        ctx = 4096
        eng = Engine(kind, args, model_path, ctx)
        COMMANDS[kind] = eng.cmd
        try:
            if kind == "pcache" and case == "nonprefix":
                eng.post("/v1/schemas", {"pml": Workload(case, *work_args).schema()})
            results[kind] = {}
            for C in args.concurrency:
                work = Workload(case, *work_args)  # same requests for both engines
                run_round(eng, bodies(work, kind, C, 1, f"warm{C}", max_tokens))
                recs, wall = run_round(eng, bodies(work, kind, C, per_client, f"run{C}", max_tokens))
                s = summarize(recs, wall)
                s["load"] = loadavg()
                results[kind][C] = s
                log(f"{kind:12s} {case:9s} C={C:2d}: TTFT p50 {s['ttft_p50_ms']:8.1f} ms p99 {s['ttft_p99_ms']:8.1f} ms,"
                    f" {s['tok_s']:7.1f} tok/s ({s['requests']} requests, load {s['load']})")
        finally:
            eng.stop()
    return results


def cpu_seconds(pid=None):
    """CPU time (user + system) of this process, or of process pid, so far."""
    if pid is None:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def batched_decode(args, model_path, max_tokens):
    """pcache alone: aggregate tokens/s of 1 and 8 clients on short prompts (decode-bound). Also the CPU the client
    (this script) and the server used in the round: the client shares the machine, so it must stay light."""
    eng = Engine("pcache", args, model_path, 4096)
    out = {}
    try:
        for C in (1, 8):
            mk = lambda tag: [[{"model": "bench", "messages": [{"role": "user", "content": f"Say something, {tag}-{c}."}],
                                "max_tokens": max_tokens * 2, "temperature": 0, "stream": True, "ignore_eos": True}]
                              for c in range(C)]
            run_round(eng, mk("warm"))
            c0, s0 = cpu_seconds(), cpu_seconds(eng.proc.pid)
            recs, wall = run_round(eng, mk("run"))
            out[C] = summarize(recs, wall)
            out[C]["client_cores"] = (cpu_seconds() - c0) / wall
            out[C]["server_cores"] = (cpu_seconds(eng.proc.pid) - s0) / wall
            log(f"pcache batched decode C={C}: {out[C]['tok_s']:.1f} tok/s (CPU: client {out[C]['client_cores']:.2f}"
                f" cores, server {out[C]['server_cores']:.2f})")
    finally:
        eng.stop()
    return out


# ---------------------------------------------------------------- output

def ratios(run):
    """Per case and concurrency: (TTFT p50 ratio llama/pcache, throughput ratio pcache/llama); batched decode ratio."""
    out = {}
    for case in ("prefix", "nonprefix"):
        for C, p in run["cases"][case]["pcache"].items():
            l = run["cases"][case]["llama-server"][C]
            out[(case, int(C))] = (l["ttft_p50_ms"] / p["ttft_p50_ms"], p["tok_s"] / l["tok_s"])
    b = run["batched_decode"]
    return out, b["8"]["tok_s"] / b["1"]["tok_s"]


def table(runs):
    rows = ["| case | clients | pcache TTFT p50 / p99 ms | llama-server TTFT p50 / p99 ms | TTFT p50 ratio | "
            "pcache tok/s | llama-server tok/s | throughput ratio |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for case in ("prefix", "nonprefix"):
        for C in sorted({int(C) for r in runs for C in r["cases"][case]["pcache"]}):
            ps = [r["cases"][case]["pcache"][str(C)] for r in runs if str(C) in r["cases"][case]["pcache"]]
            ls = [r["cases"][case]["llama-server"][str(C)] for r in runs if str(C) in r["cases"][case]["llama-server"]]
            rt = [l["ttft_p50_ms"] / p["ttft_p50_ms"] for p, l in zip(ps, ls)]
            rs = [p["tok_s"] / l["tok_s"] for p, l in zip(ps, ls)]
            cell = lambda xs, f: " ".join(format(x, f) for x in xs)
            rows.append(f"| {case} | {C} | {cell([p['ttft_p50_ms'] for p in ps], '.0f')} / "
                        f"{cell([p['ttft_p99_ms'] for p in ps], '.0f')} | {cell([l['ttft_p50_ms'] for l in ls], '.0f')} / "
                        f"{cell([l['ttft_p99_ms'] for l in ls], '.0f')} | **{statistics.median(rt):.1f}x** "
                        f"({cell(rt, '.1f')}) | {cell([p['tok_s'] for p in ps], '.1f')} | "
                        f"{cell([l['tok_s'] for l in ls], '.1f')} | **{statistics.median(rs):.2f}x** ({cell(rs, '.2f')}) |")
    return "\n".join(rows)


def verdicts(runs):
    out = []
    per = [ratios(r) for r in runs]
    keys = sorted({k for rr, _ in per for k in rr}, key=lambda k: (k[0] != "prefix", k[1]))
    for case, C in keys:
        need = TARGETS["ttft_prefix_min" if case == "prefix" else "ttft_nonprefix_min"]
        rt = statistics.median(rr[(case, C)][0] for rr, _ in per if (case, C) in rr)
        rs = statistics.median(rr[(case, C)][1] for rr, _ in per if (case, C) in rr)
        out.append((f"{case} C={C}: TTFT p50 {rt:.1f}x lower (target {need}x)", rt >= need))
        out.append((f"{case} C={C}: throughput {rs:.2f}x (target {TARGETS['throughput_min']}x)",
                    rs >= TARGETS["throughput_min"]))
    rb = statistics.median(b for _, b in per)
    out.append((f"batched decode: 8 clients {rb:.2f}x one client's tok/s (target {TARGETS['batched_decode_min']}x)",
                rb >= TARGETS["batched_decode_min"]))
    return out


def plots(runs, stem):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib missing: no plots")
        return []
    fig, axes = plt.subplots(1, 4, figsize=(18, 4))
    for k, case in enumerate(("prefix", "nonprefix")):
        for kind, style in (("pcache", "o"), ("llama-server", "s")):
            # the median over the runs that measured each concurrency (a run may cover only some), and each run
            Cs = sorted({int(C) for run in runs for C in run["cases"][case][kind]})
            for ax, key in ((axes[2 * k], "ttft_p50_ms"), (axes[2 * k + 1], "tok_s")):
                per = [[run["cases"][case][kind][str(C)][key] for run in runs if str(C) in run["cases"][case][kind]]
                       for C in Cs]
                color = "C0" if kind == "pcache" else "C1"
                ax.plot(Cs, [statistics.median(v) for v in per], style + "-", label=kind, color=color, alpha=0.8)
                ax.plot([C for C, v in zip(Cs, per) for _ in v], [x for v in per for x in v], style, color=color,
                        alpha=0.3, markersize=4)
        axes[2 * k].set_title(f"{case}: TTFT p50 (ms, log; line: median of runs)")
        axes[2 * k].set_yscale("log")
        axes[2 * k + 1].set_title(f"{case}: output tok/s")
        for a in axes[2 * k: 2 * k + 2]:
            a.set_xlabel("concurrent clients")
            a.legend()
    r = runs[-1]
    fig.suptitle(f"pcache serve vs llama-server, {r['model']} ({r['threads']} threads, --parallel {r['parallel']}), "
                 f"{len(runs)} runs")
    fig.tight_layout()
    path = stem + ".png"
    fig.savefig(path, dpi=90)
    return [path]


def run_stamp(fname):
    """The time a run's file is named for: server_<model>_<YYYYmmdd-HHMMSS>.json."""
    return fname.rsplit("_", 1)[1][:-len(".json")]


def client_cpu(b):
    """What the benchmark's own client took of the 2 cores in a batched round (recorded since 2026-12-01 06:35)."""
    if "client_cores" not in b["8"]:
        return ""
    return (f" (CPU of the client / the server: 1 client {b['1']['client_cores']:.2f} / {b['1']['server_cores']:.2f} "
            f"cores, 8 clients {b['8']['client_cores']:.2f} / {b['8']['server_cores']:.2f})")


def report(model, out_dir, since=""):
    stem = os.path.join(out_dir, f"server_{model}")
    files = sorted(f for f in os.listdir(out_dir) if f.startswith(f"server_{model}_") and f.endswith(".json")
                   and run_stamp(f) >= since)
    runs = []
    for f in files:
        with open(os.path.join(out_dir, f)) as fh:
            runs.append(json.load(fh))
    if not runs:
        raise SystemExit(f"no runs recorded in {out_dir} for {model}" + (f" since {since}" if since else ""))
    r = runs[-1]
    each = "; ".join(f"{x['started']}: --concurrency {','.join(map(str, x['concurrency']))}, "
                     f"{x['requests_per_client']} requests per client" for x in runs)
    md = [f"# pcache serve vs llama-server: {r['model']}", "",
          f"{len(runs)} run{'s' if len(runs) > 1 else ''} of `flock -x /tmp/pcache-cpu.lock python3 bench/bench_server.py --model {model}"
          f" [--concurrency ...] [--requests ...]`" + (f" (the runs since {since}: `--report --since {since}`)"
                                                         if since else "") +
          f", each {r['threads']} threads and --parallel {r['parallel']} for both servers, {r['max_tokens']} tokens "
          "per answer (ignore_eos, greedy, streamed), after a warm-up round. The runs: " + each + ". "
          "Each cell lists the runs that measured it, in order; ratios in bold are their median. The machine is "
          "shared by other work (2 cores): load averages per run below.", "",
          table(runs), "", "Batched decode (pcache alone, short prompts): " +
          "; ".join(f"1 client {x['batched_decode']['1']['tok_s']:.1f} tok/s, 8 clients "
                    f"{x['batched_decode']['8']['tok_s']:.1f} tok/s" + client_cpu(x['batched_decode']) for x in runs) +
          ".", "",
          "Load average (1, 5, 15 min) before / after each run: " +
          "; ".join(f"{x['started']}: {x['load_before']} / {x['load_after']}" for x in runs) + ".", "",
          "Servers as run:", ""]
    md += [f"- {k}: `{v}`" for k, v in r.get("commands", {}).items()]
    md += ["", "Targets (median over the runs):", ""]
    md += [f"- {'met' if ok else 'NOT met'}: {t}" for t, ok in verdicts(runs)]
    for p in plots(runs, stem):
        md += ["", f"![{os.path.basename(p)}]({os.path.basename(p)})"]
    with open(stem + ".md", "w") as f:
        f.write("\n".join(md) + "\n")
    print("\n".join(md))


def batched_only(args, model_path, max_tokens, data):
    """The batched decode round alone, repeated (1 client, then 8, each time): kept and printed."""
    data["batched_decode"] = [batched_decode(args, model_path, max_tokens) for _ in range(args.repeats)]
    data["load_after"] = loadavg()
    data = json.loads(json.dumps(data))
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, f"server-batched_{args.model}_{time.strftime('%Y%m%d-%H%M%S')}.json"), "w") as f:
        json.dump(data, f, indent=1)
    rs = [b["8"]["tok_s"] / b["1"]["tok_s"] for b in data["batched_decode"]]
    print(f"{data['model']}: batched decode, {2 * max_tokens} tokens per answer: " +
          "; ".join(f"1 client {b['1']['tok_s']:.1f} tok/s, 8 clients {b['8']['tok_s']:.1f} tok/s ({r:.2f}x; client CPU "
                    f"{b['1']['client_cores']:.2f} / {b['8']['client_cores']:.2f} cores, server "
                    f"{b['1']['server_cores']:.2f} / {b['8']['server_cores']:.2f})"
                    for b, r in zip(data["batched_decode"], rs)) +
          f"; median {statistics.median(rs):.2f}x (target {TARGETS['batched_decode_min']}x); load before / after "
          f"{data['load_before']} / {data['load_after']}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", choices=sorted(MODELS), default="smollm2")
    ap.add_argument("--concurrency", default="1,4,16")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--parallel", type=int, default=16)
    ap.add_argument("--pcache", default=os.path.join(REPO, "build", "pcache"))
    ap.add_argument("--llama-server", default=os.path.join(REPO, ".peer", "bin", "llama-server"))
    ap.add_argument("--out", default=RESULTS)
    ap.add_argument("--requests", type=int, default=0, help="requests per client (default: the model's)")
    ap.add_argument("--batched-only", action="store_true", help="only the batched decode round (pcache alone)")
    ap.add_argument("--repeats", type=int, default=1, help="--batched-only: rounds of 1 then 8 clients")
    ap.add_argument("--report", action="store_true", help="only render the table of the runs recorded")
    ap.add_argument("--since", default="", help="--report: only the runs started at or after YYYYmmdd-HHMMSS")
    args = ap.parse_args()
    if args.report:
        return report(args.model, args.out, args.since)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # finally blocks and atexit stop the servers
    import atexit
    atexit.register(stop_all)
    args.concurrency = [int(x) for x in args.concurrency.split(",")]
    fname, max_tokens, sys_chars, doc_chars, per_client = MODELS[args.model]
    per_client = args.requests or per_client
    model_path = os.path.join(REPO, "models", fname)
    data = {"model": fname, "threads": args.threads, "parallel": args.parallel, "max_tokens": max_tokens,
            "requests_per_client": per_client, "concurrency": args.concurrency, "load_before": loadavg(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S"), "cases": {}}
    log(f"{fname}: {args.threads} threads, --parallel {args.parallel}, load {data['load_before']}")
    if args.batched_only:
        return batched_only(args, model_path, max_tokens, data)
    for case in ("prefix", "nonprefix"):
        data["cases"][case] = measure_case(args, model_path, case, (case, sys_chars, doc_chars)[1:], max_tokens,
                                           per_client)
    data["batched_decode"] = batched_decode(args, model_path, max_tokens)
    data["load_after"] = loadavg()
    data["commands"] = COMMANDS
    data = json.loads(json.dumps(data))  # concurrency keys become strings, as read back
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, f"server_{args.model}_{time.strftime('%Y%m%d-%H%M%S')}.json"), "w") as f:
        json.dump(data, f, indent=1)
    report(args.model, args.out, args.since)


if __name__ == "__main__":
    main()
