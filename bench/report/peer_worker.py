"""The llama.cpp side of bench/report.py: runs in the peer's venv (tools/setup_peer.sh), one process per job, so its peak
memory is its own. Reads a JSON job file, writes a JSON result file.

Jobs:
  prepare   tokenize the source texts with the model's tokenizer (the same vocabulary pcache uses) and cut them
            into modules of given token counts; cut question templates to given token counts; model facts.
  sweep     the prefix case: for each schema size, full prefill of each prompt in a fresh cache, then the best case
            of llama.cpp's own prompt cache (the modules' tokens, the same prefix pcache has cached, decoded once
            and kept; per prompt the cells after it are removed with llama_memory_seq_rm and the question and
            chat-template tail are decoded).
  sequence  the non-prefix case: prompts in order through one context that keeps what it last held, reusing the
            longest common prefix (as llama.cpp's server does with cache_prompt); greedy answers at contiguous
            positions for the quality comparison.

Invariants: the token ids are pcache's own (its input_tokens in position order), fed at contiguous positions
0..n-1, so both engines see the same tokens; TTFT here = llama_decode of the part not reused + greedy pick of the
first token (no tokenization, which favours llama.cpp slightly). llama.cpp runs at its best, as llama-bench
does in bench/bench_engine.py: flash attention on and its extra buffer types (repacked Q4_0/Q4_K kernels) on.
With tools/setup_peer.sh's PEER_LIB_DIR the library is the very build llama-bench uses (no AMX on this CPU, so
the AMX kernel that crashed an earlier llama-cpp-python build is not among them).
"""

import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "tools"))

import lcp_peer as P  # noqa: E402
import llama_cpp as L  # noqa: E402


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}]   llama.cpp: {msg}", file=sys.stderr, flush=True)


def job_prepare(job):
    peer = P.Peer(job["model"], 1, n_ctx=512, extra_bufts=False)
    out = {"texts": {}, "questions": {}}
    for name, spec in job["cuts"].items():
        with open(spec["path"], encoding="utf-8") as f:
            ids = peer.tokenize(f.read(), add_special=False)
        start = spec.get("start", 0)
        pieces = []
        for n in spec["sizes"]:
            if start + n > len(ids):
                raise SystemExit(f"{spec['path']} has {len(ids)} tokens, too few for a cut at {start}+{n}")
            pieces.append(peer.detokenize(ids[start:start + n]))
            start += n
        out["texts"][name] = pieces
    for name, spec in job["questions"].items():
        ids = peer.tokenize(spec["text"], add_special=False)
        out["questions"][name] = {str(n): peer.detokenize(ids[:n]).strip() for n in spec["sizes"]}
    m = peer.model
    n_head = L.llama_model_n_head(m)
    out["model"] = {"n_layer": L.llama_model_n_layer(m), "n_head": n_head, "n_head_kv": L.llama_model_n_head_kv(m),
                    "head_dim": L.llama_model_n_embd(m) // n_head, "n_ctx_train": L.llama_model_n_ctx_train(m),
                    "sha256": P.file_sha256(job["model"])}
    out["system_info"] = P.system_info()
    out["version"] = L.__version__
    peer.close()
    return out


def first_token_ms(peer, ids):
    t0 = time.perf_counter()
    for i in range(0, len(ids), 2048):
        peer.decode(ids[i:i + 2048])
    tok = peer.last_argmax()
    return (time.perf_counter() - t0) * 1e3, tok


def lcp(a, b):
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def drop_from(peer, pos):
    L.llama_memory_seq_rm(L.llama_get_memory(peer.ctx), 0, pos, -1)
    peer.n_past = pos


def job_sweep(job):
    peer = P.Peer(job["model"], job["threads"], n_ctx=job["n_ctx"], extra_bufts=True, flash_attn=True)
    res = {"points": [], "settings": None}
    for pt in job["points"]:
        prompts = pt["prompts"]
        full = {}
        for name, ids in prompts.items():
            if not job.get("full", True):
                break
            peer.clear()
            full[name], _ = first_token_ms(peer, ids)
            log(f"{pt['label']} {name}: full prefill of {len(ids)} tokens {full[name]:.0f} ms")
        seqs = list(prompts.values())
        # The modules' tokens only: questions are never reused (the templates share words, the user's would not).
        pre = min([pt["prefix"]] + [lcp(seqs[0], s) for s in seqs])
        peer.clear()
        t_prefix, _ = first_token_ms(peer, seqs[0][:pre])
        cached = {}
        for name, ids in prompts.items():
            samples = []
            for _ in range(job["repeat"]):
                drop_from(peer, pre)
                ms, _ = first_token_ms(peer, ids[pre:])
                samples.append(ms)
            cached[name] = {"median": statistics.median(samples), "all": samples}
            log(f"{pt['label']} {name}: prompt cache holds {pre} tokens, computes {len(ids) - pre}: "
                f"{cached[name]['median']:.1f} ms")
        res["points"].append({"label": pt["label"], "full_ms": full, "cached_ms": cached, "prefix_tokens": pre,
                              "prefix_decode_ms": t_prefix})
    res["settings"] = peer.settings()
    peer.close()
    return res


def job_sequence(job):
    peer = P.Peer(job["model"], job["threads"], n_ctx=job["n_ctx"], extra_bufts=True, flash_attn=True)
    held = []
    out = []
    for i, item in enumerate(job["prompts"]):
        ids = item["ids"]
        keep = min(lcp(held, ids), len(ids) - 1)
        drop_from(peer, keep)
        ms, tok = first_token_ms(peer, ids[keep:])
        answer = [tok]
        held = list(ids)
        for _ in range(job["n_predict"] - 1):
            if peer.is_eog(tok):
                break
            peer.decode([tok])
            held.append(tok)
            tok = peer.last_argmax()
            answer.append(tok)
        if answer and peer.is_eog(answer[-1]):
            answer = answer[:-1]
        out.append({"id": item["id"], "ttft_ms": ms, "reused": keep, "n": len(ids), "tokens": answer,
                    "text": peer.detokenize(answer)})
        if (i + 1) % 10 == 0 or i + 1 == len(job["prompts"]):
            log(f"non-prefix sequence: {i + 1}/{len(job['prompts'])} prompts")
    res = {"prompts": out, "settings": peer.settings()}
    peer.close()
    return res


JOBS = {"prepare": job_prepare, "sweep": job_sweep, "sequence": job_sequence}

if __name__ == "__main__":
    with open(sys.argv[2], encoding="utf-8") as f:
        job = json.load(f)
    result = JOBS[sys.argv[1]](job)
    with open(sys.argv[3], "w", encoding="utf-8") as f:
        json.dump(result, f)
