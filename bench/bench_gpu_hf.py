#!/usr/bin/env python3
"""bench_gpu_hf.py - HF transformers' side of bench_gpu.py: the same cases as
bench_gpu.c on a Llama-2-7B-shaped model (bf16, SDPA attention, seeded random
weights built from a config on the GPU), the way the Prompt Cache prototype
uses transformers:
  prefill N      model(ids, logits_to_keep=1), greedy argmax
  cached_gpu     a DynamicCache of --cached tokens resident on the GPU + --fresh tokens
  cached_pinned  the same KV kept in pinned host memory, copied to the GPU per request
  decode         one token at a context of cached + fresh
One JSON object per case on stdout, median of --reps timed runs (torch.cuda.synchronize
around each). Needs torch and transformers (the device has them); not part of CI."""
import argparse
import json
import statistics
import sys
import time

import torch


def cache_kv(cache):
    """[(k, v)] per layer of a DynamicCache, across transformers versions."""
    if hasattr(cache, "layers"):
        return [(l.keys, l.values) for l in cache.layers]
    return list(zip(cache.key_cache, cache.value_cache))


def cache_from(kv, device):
    from transformers import DynamicCache
    c = DynamicCache()
    for i, (k, v) in enumerate(kv):
        c.update(k.to(device, non_blocking=True), v.to(device, non_blocking=True), i)
    return c


def timed(fn, reps):
    out = []
    for _ in range(reps):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        out.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(out)


def emit(case, n_cached, n_new, ms, **extra):
    print(json.dumps({"engine": "hf", "backend": "cuda", "type": "BF16", "case": case, "n_cached": n_cached,
                      "n_new": n_new, "ms": round(ms, 4), **extra}), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cached", type=int, default=8192)
    ap.add_argument("--fresh", type=int, default=32)
    ap.add_argument("--prefill", default="2048,8192")
    ap.add_argument("--decode", type=int, default=32)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--layers", type=int, default=32)
    a = ap.parse_args()
    import transformers
    from transformers import LlamaConfig, LlamaForCausalLM
    cfg = LlamaConfig(vocab_size=32000, hidden_size=4096, intermediate_size=11008, num_hidden_layers=a.layers,
                      num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=16384,
                      rms_norm_eps=1e-5, rope_theta=10000.0)
    cfg._attn_implementation = "sdpa"
    torch.manual_seed(0)
    t0 = time.perf_counter()
    torch.set_default_dtype(torch.bfloat16)
    with torch.device("cuda"):
        model = LlamaForCausalLM(cfg)
    model.eval()
    print(f"bench_gpu_hf: transformers {transformers.__version__}, torch {torch.__version__}, "
          f"model built in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    g = torch.Generator(device="cuda").manual_seed(1)
    n_max = max([a.cached + a.fresh + a.decode] + [int(p) for p in a.prefill.split(",") if p])
    ids = torch.randint(3, 32000, (1, n_max), device="cuda", generator=g)

    with torch.inference_mode():
        model(input_ids=ids[:, :64], use_cache=False, logits_to_keep=1)  # warm-up
        for p in [int(x) for x in a.prefill.split(",") if x]:
            def run():
                out = model(input_ids=ids[:, :p], use_cache=False, logits_to_keep=1)
                out.logits[0, -1].argmax().item()
            run()
            emit("prefill", 0, p, timed(run, a.reps))

        from transformers import DynamicCache
        cache = DynamicCache()
        model(input_ids=ids[:, :a.cached], past_key_values=cache, use_cache=True, logits_to_keep=1)
        kv = [(k.clone(), v.clone()) for k, v in cache_kv(cache)]
        fresh = ids[:, a.cached:a.cached + a.fresh]

        def cached_gpu():
            c = cache_from(kv, "cuda")  # references, no copy: the KV stays where it is
            out = model(input_ids=fresh, past_key_values=c, use_cache=True, logits_to_keep=1)
            out.logits[0, -1].argmax().item()
        cached_gpu()
        emit("cached_gpu", a.cached, a.fresh, timed(cached_gpu, a.reps))

        kv_host = [(k.to("cpu").pin_memory(), v.to("cpu").pin_memory()) for k, v in kv]

        def cached_pinned():
            c = cache_from(kv_host, "cuda")
            out = model(input_ids=fresh, past_key_values=c, use_cache=True, logits_to_keep=1)
            out.logits[0, -1].argmax().item()
        cached_pinned()
        emit("cached_pinned", a.cached, a.fresh, timed(cached_pinned, a.reps))
        del kv_host

        c = cache_from(kv, "cuda")
        out = model(input_ids=fresh, past_key_values=c, use_cache=True, logits_to_keep=1)
        nxt = out.logits[:, -1:].argmax(-1)
        steps = []
        for _ in range(a.decode):
            torch.cuda.synchronize()
            t = time.perf_counter()
            out = model(input_ids=nxt, past_key_values=c, use_cache=True, logits_to_keep=1)
            nxt = out.logits[:, -1:].argmax(-1)
            nxt.item()
            steps.append((time.perf_counter() - t) * 1e3)
        emit("decode", a.cached + a.fresh, 1, statistics.median(steps))


if __name__ == "__main__":
    main()
