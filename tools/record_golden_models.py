#!/usr/bin/env python3
"""Record a llama.cpp golden of token ids and greedy continuations for the real models (Qwen2.5-Coder 0.5B, 1.5B).

Run with the peer's venv (tools/setup_peer.sh), never from CI: CI reads the file this writes.
  .venv-peer/bin/python tools/record_golden_models.py [--model qwen2.5-coder-0.5b] [--n-predict 32]

Writes tests/data/golden/greedy_<model>.json in the layout of greedy_smollm2.json (tools/record_golden_engine.py's
greedy(): llama.cpp's tokenization, greedy argmax of the raw logits one token per llama_decode, never stopping early,
the top-1/top-2 logit gap of every step, the batched recheck) plus step_top_logprobs: the 8 most likely tokens of
every step with their log-softmax over the full vocabulary, which tests/engine/test_golden_models.c compares with
pcache's. Prompts lean to code (these are coder models) and cover prose, chat, non-English and odd spacing.
The file is a pure function of (model, llama.cpp build, settings recorded in it).
"""

import argparse
import os
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lcp_peer  # noqa: E402
from record_golden_engine import greedy, write_json  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CHATML = ("<|im_start|>system\nYou are a helpful coding assistant.<|im_end|>\n"
          "<|im_start|>user\nWrite a Python function that checks whether a string is a palindrome.<|im_end|>\n"
          "<|im_start|>assistant\n")

PROMPTS = [
    ("prose", "The old lighthouse keeper climbed the spiral stairs every evening, and on the night of the storm "
              "he noticed", False),
    ("question", "Why do leaves change colour in autumn? The main reason is", False),
    ("code_python", 'def fibonacci(n):\n    """Return the n-th Fibonacci number."""\n', False),
    ("code_c", "#include <stdio.h>\n\nint main(void) {\n", False),
    ("code_rust", "fn main() {\n    let numbers = vec![3, 1, 4, 1, 5, 9, 2, 6];\n", False),
    ("list", "Shopping list for a week of healthy meals:\n1.", False),
    ("json", '{"id": 17, "title": "Morning walk", "tags": [', False),
    ("chat_chatml", CHATML, True),
    ("chinese", "人工智能是计算机科学的一个分支，它", False),
    ("spacing_unicode", "  Indented line with  two  spaces,\ta tab, digits 12345, and an emoji 🙂 then", False),
]


def top_logprobs(peer, case, k=8):
    """The k most likely [id, log-softmax] of each step, from the same one-token-per-step logits greedy() used."""
    peer.clear()
    peer.decode(case["prompt_ids"])
    out = []
    for step, tok in enumerate(case["generated_ids"]):
        row = peer.last_logits().astype(np.float64)
        lse = row.max() + np.log(np.exp(row - row.max()).sum())
        order = np.argsort(-row, kind="stable")[:k]
        out.append([[int(i), round(float(row[i] - lse), 5)] for i in order])
        if step + 1 < len(case["generated_ids"]):
            peer.decode([tok])
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="qwen2.5-coder-0.5b", help="a scripts/get_model.sh name")
    ap.add_argument("--out-dir", default=os.path.join(REPO, "tests", "data", "golden"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--n-ctx", type=int, default=1024)
    ap.add_argument("--n-predict", type=int, default=32)
    args = ap.parse_args()
    path = subprocess.run([os.path.join(REPO, "scripts", "get_model.sh"), args.model], stdout=subprocess.PIPE,
                          text=True, check=True).stdout.strip().splitlines()[-1]
    peer = lcp_peer.Peer(path, args.threads, n_ctx=args.n_ctx, extra_bufts=True, flash_attn=True)
    batched = lcp_peer.Peer(path, args.threads, n_ctx=args.n_ctx, extra_bufts=True, flash_attn=True,
                            all_outputs=True)
    cases = []
    for name, text, parse_special in PROMPTS:
        case = {"name": name}
        case.update(greedy(peer, text, parse_special, args.n_predict, batched))
        case["step_top_logprobs"] = top_logprobs(peer, case)
        cases.append(case)
        print(f"  {name:16s} {len(case['prompt_ids']):3d} prompt tokens, min gap {case['min_gap']:.3f}, batched "
              f"recheck max|diff| {case['batched_recheck']['max_abs_diff']:.3f}", flush=True)
    import llama_cpp
    doc = {
        "generator": "tools/record_golden_models.py",
        "peer": {"package": "llama-cpp-python", "version": llama_cpp.__version__,
                 "library": "tools/setup_peer.sh (PEER_LIB_DIR: the llama.cpp build of tools/build_llama_cpp.sh)",
                 "system_info": lcp_peer.system_info()},
        "model": {"name": args.model, "file": os.path.basename(path), "sha256": lcp_peer.file_sha256(path)},
        "settings": peer.settings(),
        "what": "greedy continuations: argmax of raw logits each step (one token per llama_decode), never stopping "
                "early; step_top_logprobs: the 8 most likely [id, log-softmax over the full vocabulary] of each step",
        "n_predict": args.n_predict,
        "cases": cases,
    }
    peer.close()
    batched.close()
    write_json(os.path.join(args.out_dir, f"greedy_{args.model}.json"), doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
