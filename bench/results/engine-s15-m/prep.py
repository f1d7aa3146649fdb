import sys, os, json, types
sys.path.insert(0, "/work/wt/sched/bench")
import bench_engine as be
args = types.SimpleNamespace(pcache="/work/wt/sched/build/pcache", threads=2, n_decode=128, timeout=600)
text = open(be.DEFAULT_TEXT).read()
out = {}
for name, f in (("smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"), ("q05", "qwen2.5-coder-0.5b-instruct.gguf"),
                ("q15", "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf")):
    path = "/work/main/models/" + f
    p = f"/tmp/M/prompt_{name}.txt"
    s = be.cut_prompt(args, path, text, 128, p)
    out[name] = {"path": path, "prompt": p, "bytes": be.decode_bytes(path, 128 + 64), "prompt_tokens": s["prompt_tokens"]}
json.dump(out, open("/tmp/M/models.json", "w"), indent=1)
print(out)
