#!/usr/bin/env python3
"""Why llama-server decodes slower than llama-bench: one client, one streamed request at a time, under several
llama-server command lines, with llama-server's own timings (the `timings` object of its answer: prompt and
predicted tokens per second as its slot measured them) beside what the client sees.

  flock -x /tmp/pcache-cpu.lock python3 bench/probe_llama_server.py [--model smollm2] [--threads 2]

For each configuration: start llama-server, one warm-up request, then N requests one after the other (greedy,
ignore_eos, 64 tokens), short prompt and the bench's long system prompt (about 1000 tokens of GPL-3, the
"prefix" case of bench_server.py); print the medians. llama-bench's tg64 at depth 0 and 1000 is the reference.
"""
import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_server as bs  # noqa: E402

CONFIGS = {
    "bench (-np 16 -c 65536)": ["-np", "16", "-c", "65536", "-fa", "on", "--cache-prompt"],
    "-np 1 -c 4096": ["-np", "1", "-c", "4096", "-fa", "on"],
    "-np 16 -c 65536 --poll 0": ["-np", "16", "-c", "65536", "-fa", "on", "--poll", "0"],
    "-np 16 -c 65536 -no-kvu": ["-np", "16", "-c", "65536", "-fa", "on", "--no-kv-unified"],
    "-np 16 -c 16384": ["-np", "16", "-c", "16384", "-fa", "on"],
}


def one(port, messages, n):
    body = {"model": "bench", "messages": messages, "max_tokens": n, "temperature": 0, "ignore_eos": True,
            "stream": True, "stream_options": {"include_usage": True}, "timings_per_token": False}
    t0 = time.perf_counter()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    c.request("POST", "/v1/chat/completions", json.dumps(body), {"Content-Type": "application/json"})
    r = c.getresponse()
    first, count, timings = None, 0, {}
    for raw in r:
        line = raw.decode().strip()
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        ch = json.loads(line[6:])
        if ch.get("timings"):
            timings = ch["timings"]
        for x in ch.get("choices") or []:
            if (x.get("delta") or {}).get("content"):
                count += 1
                if first is None:
                    first = time.perf_counter()
    end = time.perf_counter()
    c.close()
    client_decode = (count - 1) / (end - first) if count > 1 else 0
    return {"ttft_ms": (first - t0) * 1e3, "client_tok_s": client_decode,
            "server_tok_s": timings.get("predicted_per_second", 0), "server_prompt_ms": timings.get("prompt_ms", 0)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", choices=sorted(bs.MODELS), default="smollm2")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--configs", default=",".join(CONFIGS))
    ap.add_argument("--llama-server", default=os.path.join(bs.REPO, ".peer", "bin", "llama-server"))
    a = ap.parse_args()
    model = os.path.join(bs.REPO, "models", bs.MODELS[a.model][0])
    bindir = os.path.dirname(a.llama_server)
    env = dict(os.environ, LD_LIBRARY_PATH=bindir)
    out = subprocess.run([os.path.join(bindir, "llama-bench"), "-m", model, "-t", str(a.threads), "-fa", "1", "-p", "0",
                          "-n", "64", "-d", "0,1000", "-r", "2", "-o", "json"], capture_output=True, text=True, env=env)
    for row in json.loads(out.stdout or "[]"):
        print(f"llama-bench tg64 at depth {row.get('n_depth')}: {row.get('avg_ts'):.1f} tok/s", flush=True)
    work = bs.Workload("prefix", bs.MODELS[a.model][2], bs.MODELS[a.model][3])
    prompts = {"short": lambda i: [{"role": "user", "content": f"Say something, {i}."}],
               "long system": lambda i: [{"role": "system", "content": work.system},
                                         {"role": "user", "content": f"Question {i}: what does it allow?"}]}
    for name in a.configs.split(","):
        port = bs.free_port()
        proc = bs.spawn(bs.llama_server_cmd(a.llama_server, model, port, a.threads, CONFIGS[name]), bindir)
        try:
            bs.wait_health(port, proc)
            for pname, mk in prompts.items():
                one(port, mk("warm"), 8)
                rs = [one(port, mk(i), 64) for i in range(a.repeats)]
                med = {k: statistics.median(r[k] for r in rs) for k in rs[0]}
                print(f"{name:28s} {pname:12s} TTFT {med['ttft_ms']:7.1f} ms  decode client {med['client_tok_s']:6.1f} "
                      f"tok/s, server's own {med['server_tok_s']:6.1f} tok/s  (load {bs.loadavg()})", flush=True)
        finally:
            bs.stop_proc(proc)


if __name__ == "__main__":
    main()
