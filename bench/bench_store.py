#!/usr/bin/env python3
"""Module store benchmark: time to make a schema's KV ready from each tier, against encoding it.

  python3 bench/bench_store.py [--models smollm2,qwen2.5-coder-1.5b] [--schemas demo,8k] [--repeats 3]
                               [--threads 2] [--bench build/bench_store]

For each model and schema, every phase in its own process (build/bench_store, as a restarted server would be):
  encode   every piece encoded and written through memory, disk and Redis; then registered again from memory;
           then the schema's prompt run --repeats times: the in-memory hit's time to first token (TTFT)
  disk     a restart with a warm page cache: registered from the disk tier (mapped files, checksums verified),
           then the prompt: the first request after a restart, and repeats
  cold     the entry files dropped from the page cache first (posix_fadvise, residency checked with mincore)
  redis    registered from a private redis-server on loopback (no disk tier)
  limits   in the same run: the entry files read cold and warm with read(2) (device and page-cache limits) and
           the same bytes through one loopback TCP stream (the loopback limit); plus redis-benchmark GETs of
           16 MiB values (what Redis itself serves on this machine)
Schemas: "demo" is examples/license-desk (the README's demo, with its prompt); "8k" is about 8000 tokens of
GPL-3 (Debian's /usr/share/common-licenses) in eight modules and a question. Figures are medians over
--repeats processes; bytes/s are the KV bytes read by the tier over its registration time.
Targets: the first request after a warm restart within 10% of an in-memory hit's TTFT (demo schema); Redis
loading at >= 50% of the loopback limit. Writes bench/results/store.{md,json}.
Run it under the exclusive CPU lock on a shared machine (flock -x /tmp/pcache-cpu.lock ...): it measures time.
"""

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from xml.sax.saxutils import escape

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = {
    "smollm2": "SmolLM2-135M-Instruct.Q4_1.gguf",
    "qwen2.5-coder-1.5b": "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
}
GPL = "/usr/share/common-licenses/GPL-3"
QUESTION = "Which parts of this license say what I must give people when I sell copies of a changed program?"
TARGET_RESTART = 1.10
TARGET_REDIS = 0.50


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Redis:
    """A private redis-server on a loopback port, stopped at the end."""

    def __init__(self):
        self.port = free_port()
        self.proc = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--loglevel", "warning"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            if subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True).returncode == 0:
                return
            time.sleep(0.05)
        raise SystemExit("redis-server did not start")

    def addr(self):
        return f"127.0.0.1:{self.port}"

    def benchmark_gbs(self):
        """GETs of a 16 MiB value (SET first), one client: requests/s x size, as redis-benchmark reports it."""
        size = 16 << 20
        out = subprocess.run(["redis-benchmark", "-p", str(self.port), "-t", "set,get", "-d", str(size), "-n", "40",
                              "-c", "1", "-q", "--csv"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith('"GET"'):
                rps = float(line.split(",")[1].strip('"'))
                return rps * size / 1e9
        return None

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def schema_8k(folder):
    """Eight modules of GPL-3 (about 8000 tokens in all) and a prompt importing them."""
    with open(GPL, encoding="utf-8") as f:
        paras = f.read().strip().split("\n\n")
    total = sum(len(p) for p in paras)
    chunks, cur = [], []
    for p in paras:
        cur.append(p)
        if sum(len(x) for x in cur) >= total / 8 and len(chunks) < 7:
            chunks.append("\n\n".join(cur))
            cur = []
    chunks.append("\n\n".join(cur))
    for i, c in enumerate(chunks):
        with open(os.path.join(folder, f"gpl{i}.txt"), "w", encoding="utf-8") as f:
            f.write(c)
    mods = "\n".join(f'    <module name="gpl{i}" src="gpl{i}.txt"/>' for i in range(len(chunks)))
    schema = os.path.join(folder, "gpl8k.xml")
    with open(schema, "w", encoding="utf-8") as f:
        f.write(f'<schema name="gpl8k">\n  <system>You answer questions about the license you are given.</system>\n'
                f'  <user>\n{mods}\n  </user>\n</schema>\n')
    prompt = os.path.join(folder, "gpl8k-prompt.xml")
    with open(prompt, "w", encoding="utf-8") as f:
        f.write(f'<prompt schema="gpl8k">{"".join(f"<gpl{i}/>" for i in range(len(chunks)))}'
                f'<user>{escape(QUESTION)}</user></prompt>\n')
    return schema, prompt


def phase(bench, name, model, schema, prompt, folder, redis, prefix, repeats, threads):
    cmd = [bench, name, "-m", model, "--schema", schema, "--dir", folder, "--redis", redis, "--prefix", prefix,
           "--repeat", str(repeats), "-t", str(threads)]
    if prompt:
        cmd += ["--prompt", prompt]
    if name == "limits":
        cmd = [bench, "limits", "--dir", folder, "--redis", redis, "--prefix", prefix]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)}: {out.stderr.strip()}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def bench_one(args, redis, model_name, schema_name, schema, prompt):
    model = os.path.join(REPO, "models", MODELS[model_name])
    folder = tempfile.mkdtemp(prefix="pcache-bench-store-")
    prefix = f"pcache-bench:{os.getpid()}:{model_name}:{schema_name}:"
    try:
        log(f"{model_name} / {schema_name}: encoding")
        enc = phase(args.bench, "encode", model, schema, prompt, folder, redis.addr(), prefix, args.repeats,
                    args.threads)
        runs = {"disk": [], "cold": [], "redis": [], "limits": []}
        for r in range(args.repeats):
            log(f"{model_name} / {schema_name}: loads, round {r + 1}/{args.repeats}")
            for name in ("disk", "cold", "redis", "limits"):
                runs[name].append(phase(args.bench, name, model, schema, prompt, folder, redis.addr(), prefix,
                                        args.repeats, args.threads))
        bytes_read = runs["disk"][0]["tier_bytes_read"]
        lim = runs["limits"]
        res = {
            "model": model_name, "schema": schema_name, "kv_bytes": enc["encode"]["kv_bytes"],
            "tokens": enc["encode"]["encoded_tokens"], "bytes_read": bytes_read,
            "encode_ms": enc["encode"]["ready_ms"], "memory_ms": enc["memory"]["ready_ms"],
            "disk_ms": med([x["load"]["ready_ms"] for x in runs["disk"]]),
            "cold_ms": med([x["load"]["ready_ms"] for x in runs["cold"]]),
            "cold_resident": max(x["resident_before"] for x in runs["cold"]),
            "redis_ms": med([x["load"]["ready_ms"] for x in runs["redis"]]),
            "disk_read_gbs": med([x["bytes"] / x["disk_read_ms"] / 1e6 for x in lim]),
            "page_cache_gbs": med([x["bytes"] / x["page_cache_read_ms"] / 1e6 for x in lim]),
            "loopback_gbs": med([x["bytes"] / x["loopback_ms"] / 1e6 for x in lim]),
            "redis_raw_gbs": med([x["redis_raw_gbs"] for x in lim]),
            "ttft_memory_ms": med(enc.get("ttft_ms", [])),
            "ttft_restart_first_ms": med([x["ttft_ms"][0] for x in runs["disk"] if x.get("ttft_ms")]),
            "ttft_restart_ms": med([t for x in runs["disk"] for t in x.get("ttft_ms", [])]),
            "encoded_on_load": sum(x["load"]["encoded_tokens"] for k in ("disk", "cold", "redis") for x in runs[k]),
            "checksum_failures": sum(x["checksum_failures"] for k in ("disk", "cold", "redis") for x in runs[k]),
        }
        for k in ("disk", "cold", "redis"):
            res[f"{k}_gbs"] = bytes_read / res[f"{k}_ms"] / 1e6
        return res
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        subprocess.run(["sh", "-c", f"redis-cli -p {redis.port} --scan --pattern '{prefix}*' | "
                                    f"xargs -r redis-cli -p {redis.port} del > /dev/null"])


def f1(x, d=1):
    return "n/a" if x is None else f"{x:.{d}f}"


def table(results, redis_bench_gbs):
    lines = ["| model | schema | KV MiB | encode ms | memory ms | disk warm ms (GB/s; page cache GB/s) | "
             "disk cold ms (GB/s; device GB/s) | Redis ms (GB/s; loopback GB/s, ratio; Redis raw GET GB/s, ratio) | "
             "encode / disk warm |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in results:
        lines.append(
            f"| {r['model']} | {r['schema']} ({r['tokens']} tok) | {r['kv_bytes'] / 2**20:.1f} | {f1(r['encode_ms'], 0)} | "
            f"{f1(r['memory_ms'], 3)} | {f1(r['disk_ms'])} ({f1(r['disk_gbs'], 2)}; {f1(r['page_cache_gbs'], 2)}) | "
            f"{f1(r['cold_ms'])} ({f1(r['cold_gbs'], 2)}; {f1(r['disk_read_gbs'], 2)}) | "
            f"{f1(r['redis_ms'])} ({f1(r['redis_gbs'], 2)}; {f1(r['loopback_gbs'], 2)}, "
            f"{f1(r['redis_gbs'] / r['loopback_gbs'], 2)}; {f1(r['redis_raw_gbs'], 2)}, "
            f"{f1(r['redis_gbs'] / r['redis_raw_gbs'] if r['redis_raw_gbs'] else None, 2)}) | "
            f"{f1(r['encode_ms'] / r['disk_ms'], 0)}x |")
    lines.append("")
    lines.append("| model | schema | TTFT in-memory hit ms | TTFT first request after a warm restart ms | ratio |")
    lines.append("| --- | --- | ---: | ---: | ---: |")
    for r in results:
        if r["ttft_memory_ms"]:
            lines.append(f"| {r['model']} | {r['schema']} | {f1(r['ttft_memory_ms'])} | "
                         f"{f1(r['ttft_restart_first_ms'])} | {f1(r['ttft_restart_first_ms'] / r['ttft_memory_ms'], 3)} |")
    if redis_bench_gbs:
        lines.append("")
        lines.append(f"redis-benchmark, GET of a 16 MiB value, one client: {redis_bench_gbs:.2f} GB/s.")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="smollm2,qwen2.5-coder-1.5b")
    ap.add_argument("--schemas", default="demo,8k")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--bench", default=os.path.join(REPO, "build", "bench_store"))
    ap.add_argument("--out", default=os.path.join(REPO, "bench", "results", "store"))
    args = ap.parse_args()
    load_before = os.getloadavg()
    work = tempfile.mkdtemp(prefix="pcache-bench-schemas-")
    schemas = {"demo": (os.path.join(REPO, "examples", "license-desk", "schema.xml"),
                        os.path.join(REPO, "examples", "license-desk", "prompt.xml")),
               "8k": schema_8k(work)}
    redis = Redis()
    results = []
    try:
        for m in args.models.split(","):
            if not os.path.exists(os.path.join(REPO, "models", MODELS[m])):
                log(f"{m}: model absent (scripts/get_model.sh {m}): skipped")
                continue
            for s in args.schemas.split(","):
                results.append(bench_one(args, redis, m, s, *schemas[s]))
        redis_gbs = redis.benchmark_gbs()
    finally:
        redis.stop()
        shutil.rmtree(work, ignore_errors=True)
    md = table(results, redis_gbs)
    print(md)
    demo = [r for r in results if r["schema"] == "demo" and r["ttft_memory_ms"]]
    verdict = {
        "restart_ttft_within_10pct": all(r["ttft_restart_first_ms"] <= TARGET_RESTART * r["ttft_memory_ms"] for r in demo),
        "redis_at_least_half_loopback": all(r["redis_gbs"] >= TARGET_REDIS * r["loopback_gbs"] for r in results),
        "zero_tokens_encoded_on_loads": all(r["encoded_on_load"] == 0 for r in results),
        "no_checksum_failures": all(r["checksum_failures"] == 0 for r in results),
    }
    print("\n".join(f"target {k}: {'met' if v else 'NOT met'}" for k, v in verdict.items()))
    meta = {"date": time.strftime("%Y-%m-%d %H:%M"), "load_before": load_before, "load_after": os.getloadavg(),
            "repeats": args.repeats, "threads": args.threads, "redis_benchmark_gbs": redis_gbs}
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out + ".json", "w") as f:
        json.dump({"meta": meta, "results": results, "targets": verdict}, f, indent=1)
    with open(args.out + ".md", "w") as f:
        f.write(f"# Module store: time to make a schema's KV ready\n\n`python3 bench/bench_store.py` "
                f"({meta['date']}, {args.repeats} repeats, {args.threads} threads, load average before "
                f"{load_before[0]:.2f}, after {meta['load_after'][0]:.2f})\n\n{md}\n\n" +
                "\n".join(f"- {k}: {'met' if v else 'NOT met'}" for k, v in verdict.items()) + "\n")


if __name__ == "__main__":
    main()
