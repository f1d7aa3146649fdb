#!/usr/bin/env python3
"""Record llama.cpp goldens for the engine: greedy continuations and last-position logits of SmolLM2.

Run with the peer's venv (tools/setup_peer.sh), never from CI: CI reads the files this writes.
  python tools/record_golden_engine.py [--model PATH] [--out-dir tests/data/golden] [--threads 2]

Writes (into --out-dir):
  greedy_smollm2.json   prompts, their token ids, 64 greedy token ids and text, the top-1/top-2 gap per step
  logits_smollm2.bin    last-position logits, full vocab, little-endian float32, one row per prompt
  logits_smollm2.json   index of the .bin (byte offsets, prompt ids), top-5 stats, batch-split information

Invariants: the files are a pure function of (model, llama.cpp version, settings recorded in them); running twice
gives byte-identical output. Tokenization follows llama-completion's `-p`: BOS added only when the GGUF says so
(SmolLM2: add_bos_token=false); special-token text is parsed only for prompts marked parse_special (the ChatML one).
Generation never stops early: all n_predict tokens are recorded and the first end-of-generation token, if any,
is named by its index.
"""

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lcp_peer  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_MODEL = os.path.join(REPO, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
GPL3 = "/usr/share/common-licenses/GPL-3"

CHATML = ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
          "<|im_start|>user\nGive me three tips for keeping a small vegetable garden healthy.<|im_end|>\n"
          "<|im_start|>assistant\n")

# A chat whose answer ends (<|im_end|>) inside 64 tokens: shows where end-of-generation came.
CHATML_ENDS = ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
               "<|im_start|>user\nList the planets of the solar system in order from the Sun.<|im_end|>\n"
               "<|im_start|>assistant\n")

# (name, text, parse_special). Varied on purpose: prose, question, code, list, chat, non-English, odd spacing.
GREEDY_PROMPTS = [
    ("prose", "The old lighthouse keeper climbed the spiral stairs every evening, and on the night of the storm "
              "he noticed", False),
    ("question", "Why do leaves change colour in autumn? The main reason is", False),
    ("code_python", 'def fibonacci(n):\n    """Return the n-th Fibonacci number."""\n', False),
    ("code_c", "#include <stdio.h>\n\nint main(void) {\n", False),
    ("list", "Shopping list for a week of healthy meals:\n1.", False),
    ("chat_chatml", CHATML, True),
    ("chat_chatml_ends", CHATML_ENDS, True),
    ("french", "La Révolution française a commencé en 1789 lorsque", False),
    ("german", "Der Rhein ist einer der längsten Flüsse Europas. Er entspringt", False),
    ("chinese", "人工智能是计算机科学的一个分支，它", False),
    ("russian", "Москва — столица России и крупнейший город страны.", False),
    ("json", '{"id": 17, "title": "Morning walk", "tags": [', False),
    ("spacing_unicode", "  Indented line with  two  spaces,\ta tab, digits 12345, and an emoji 🙂 then", False),
]


def gpl3_paragraphs(first, last):
    with open(GPL3, encoding="utf-8") as f:
        paras = f.read().split("\n\n")
    return "\n\n".join(paras[first:last])


def logits_prompts():
    """Prompts from about 5 to about 300 tokens; the long ones are GPL-3 text (Debian ships it)."""
    return [
        ("short", "The capital of France is", False),
        ("question", "Question: What is the boiling point of water at sea level?\nAnswer:", False),
        ("code", "def is_prime(n: int) -> bool:\n    if n < 2:\n        return False\n"
                    "    for d in range(2, int(n ** 0.5) + 1):\n", False),
        ("chat_chatml", CHATML, True),
        ("multilingual", "English: The weather is lovely today.\nFrançais : Il fait très beau aujourd'hui.\n"
                         "Deutsch: Das Wetter ist heute herrlich.\nEspañol: Hoy hace un tiempo precioso.\n"
                         "日本語：今日はとても良い天気です。\nРусский: Сегодня прекрасная погода.\nItaliano:", False),
        ("gpl3_preamble_mid", gpl3_paragraphs(3, 5), False),
        ("gpl3_preamble_long", gpl3_paragraphs(0, 6), False),
    ]


def tokenize_case(peer, text, parse_special):
    """Token ids as llama-completion -p would give, plus whether parsing special text would change them."""
    ids = peer.tokenize(text, add_special=True, parse_special=parse_special)
    other = peer.tokenize(text, add_special=True, parse_special=not parse_special)
    return ids, ids != other


def top2_gap(row):
    top = np.partition(row, -2)[-2:]
    return float(top[1] - top[0])


def greedy(peer, text, parse_special, n_predict, batched_peer=None):
    peer.clear()
    ids, special_matters = tokenize_case(peer, text, parse_special)
    peer.decode(ids)
    out, gaps, first_eog, rows = [], [], None, []
    for step in range(n_predict):
        row = peer.last_logits()
        rows.append(row)
        tok = int(np.argmax(row))
        gaps.append(round(top2_gap(row), 4))
        out.append(tok)
        if first_eog is None and peer.is_eog(tok):
            first_eog = step
        if step + 1 < n_predict:
            peer.decode([tok])
    return {
        "text": text,
        "add_special": True,
        "parse_special": parse_special,
        "parse_special_changes_ids": special_matters,
        "prompt_ids": ids,
        "generated_ids": out,
        "generated_text": peer.detokenize(out, render_special=False),
        "generated_text_special": peer.detokenize(out, render_special=True),
        "first_eog_index": first_eog,
        "step_top1_top2_gap": gaps,
        "min_gap": min(gaps),
        "min_gap_step": int(np.argmin(gaps)),
        "batched_recheck": batched_recheck(batched_peer, ids, out, np.stack(rows)) if batched_peer else None,
    }


def batched_recheck(peer, prompt, generated, rows):
    """Teacher-forced: prompt + generated tokens in one llama_decode, logits at every step's position.
    Says where llama.cpp's own batched path would have picked another token than its one-token-per-step
    path did, and how far the two paths' logits drift apart: a floor for what a test can demand."""
    peer.clear()
    batched = peer.decode_all_logits(prompt + generated[:-1])[len(prompt) - 1:]
    picks = batched.argmax(axis=1)
    differ = [k for k in range(len(generated)) if int(picks[k]) != generated[k]]
    return {"first_argmax_disagreement": differ[0] if differ else None,
            "argmax_disagreements": len(differ),
            "max_abs_diff": float(np.abs(batched - rows).max())}


def logits_after(peer, ids, splits):
    """Last-position logits after feeding ids in consecutive llama_decode calls of the given sizes."""
    peer.clear()
    pos = 0
    for n in splits:
        peer.decode(ids[pos:pos + n])
        pos += n
    assert pos == len(ids)
    return peer.last_logits()


def split_study(peer, ids, reference):
    """Is llama.cpp itself invariant to how a prompt is split into llama_decode calls? (information only)"""
    n = len(ids)
    cases = {
        "halves": [n // 2, n - n // 2],
        "1_then_rest": [1, n - 1],
        "rest_then_1": [n - 1, 1],
        "37_then_rest": [37, n - 37],
        "one_token_per_call": [1] * n,
    }
    out = []
    for name, splits in cases.items():
        row = logits_after(peer, ids, splits)
        diff = np.abs(row - reference)
        out.append({"split": name, "sizes": splits if len(splits) <= 4 else f"{len(splits)} x 1",
                    "max_abs_diff": float(diff.max()), "mean_abs_diff": float(diff.mean()),
                    "same_argmax": int(row.argmax()) == int(reference.argmax())})
        print(f"  split {name:20s} max|diff| {diff.max():.6f}", flush=True)
    return out


def last_token_alone(peer, ids):
    """Prefixes of ids, each fed as [n-1, 1] versus [n]: how far llama.cpp's one-token path drifts."""
    out = []
    for n in (16, 32, 64, 100, 128, 200, 256, 300):
        if n > len(ids):
            break
        ref = logits_after(peer, ids[:n], [n])
        row = logits_after(peer, ids[:n], [n - 1, 1])
        out.append({"n_prompt": n, "max_abs_diff": float(np.abs(row - ref).max()),
                    "same_argmax": int(row.argmax()) == int(ref.argmax())})
    print(f"  last token alone: {[(o['n_prompt'], round(o['max_abs_diff'], 3)) for o in out]}", flush=True)
    return out


def setting_study(model, threads, ids, reference, **overrides):
    """Logits of the same prompt under another context setting, compared with the reference."""
    peer = lcp_peer.Peer(model, threads, extra_bufts=False, **overrides)
    peer.decode(ids)
    row = peer.last_logits()
    peer.close()
    diff = np.abs(row - reference)
    return {"max_abs_diff": float(diff.max()), "same_argmax": int(row.argmax()) == int(reference.argmax())}


def record_logits(peer, args, header):
    rows, index = [], []
    offset = 0
    for name, text, parse_special in logits_prompts():
        ids, special_matters = tokenize_case(peer, text, parse_special)
        row = logits_after(peer, ids, [len(ids)])
        order = np.argsort(-row, kind="stable")[:5]
        index.append({
            "name": name, "text": text, "add_special": True, "parse_special": parse_special,
            "parse_special_changes_ids": special_matters, "prompt_ids": ids, "n_prompt": len(ids),
            "offset_bytes": offset, "count": peer.n_vocab,
            "top5_ids": [int(i) for i in order], "top5_logits": [float(row[i]) for i in order],
            "top1_top2_gap": float(row[order[0]] - row[order[1]]),
            "max_abs_logit": float(np.abs(row).max()),
        })
        rows.append(row)
        offset += row.nbytes
        print(f"  logits {name:20s} {len(ids):4d} tokens  top1 {order[0]} gap {row[order[0]] - row[order[1]]:.3f}",
              flush=True)

    longest = max(range(len(index)), key=lambda i: index[i]["n_prompt"])
    ids, ref = index[longest]["prompt_ids"], rows[longest]
    print(f"batch-split study on '{index[longest]['name']}' ({len(ids)} tokens)", flush=True)
    splits = split_study(peer, ids, ref)
    alone = last_token_alone(peer, ids)
    other_settings = {
        "n_ubatch_64": setting_study(args.model, args.threads, ids, ref, n_ubatch=64),
        "n_threads_1": setting_study(args.model, 1, ids, ref),
    }
    print(f"  other settings: {other_settings}", flush=True)

    with open(os.path.join(args.out_dir, "logits_smollm2.bin"), "wb") as f:
        for row in rows:
            f.write(row.astype("<f4").tobytes())
    doc = dict(header)
    doc.update({
        "what": "last-position logits (full vocab) after one llama_decode of the whole prompt",
        "binary": "logits_smollm2.bin",
        "dtype": "float32 little-endian",
        "n_vocab": peer.n_vocab,
        "prompts": index,
        "batch_split_invariance": {
            "prompt": index[longest]["name"], "n_prompt": len(ids),
            "note": "information only: llama.cpp's own difference when the same prompt is fed in other "
                    "llama_decode splits or settings, a floor for a test tolerance",
            "splits": splits,
            "last_token_alone_by_prefix_length": alone,
            "other_settings": other_settings,
        },
    })
    write_json(os.path.join(args.out_dir, "logits_smollm2.json"), doc)


def record_greedy(peer, args, header):
    cases = []
    batched_peer = lcp_peer.Peer(args.model, args.threads, n_ctx=args.n_ctx, extra_bufts=False, all_outputs=True)
    for name, text, parse_special in GREEDY_PROMPTS:
        case = {"name": name}
        case.update(greedy(peer, text, parse_special, args.n_predict, batched_peer))
        cases.append(case)
        eog = case["first_eog_index"]
        rc = case["batched_recheck"]
        print(f"  greedy {name:16s} {len(case['prompt_ids']):3d} prompt tokens, min gap {case['min_gap']:.3f} "
              f"at step {case['min_gap_step']}" + (f", EOG at step {eog}" if eog is not None else "") +
              f"; batched recheck: max|diff| {rc['max_abs_diff']:.3f}, first other pick "
              f"{rc['first_argmax_disagreement']}", flush=True)
    batched_peer.close()
    doc = dict(header)
    doc.update({
        "what": "greedy continuations: argmax of raw logits each step (temperature 0, top_k 1, no repeat "
                "penalty, ties to the lowest id), never stopping early",
        "n_predict": args.n_predict,
        "generated_text_note": "generated_text renders control tokens as empty (llama-cli's default); "
                               "generated_text_special renders them",
        "batched_recheck_note": "information only: the prompt and the generated tokens fed again in one "
                                "llama_decode with logits at every position (teacher forcing); "
                                "first_argmax_disagreement is the first step where llama.cpp's batched path "
                                "would pick another token than its one-token-per-step path (null: never)",
        "cases": cases,
    })
    write_json(os.path.join(args.out_dir, "greedy_smollm2.json"), doc)


def write_json(path, doc):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"wrote {os.path.relpath(path, REPO)} ({os.path.getsize(path)} bytes)", flush=True)


GOLDEN_FILES = ("greedy_smollm2.json", "logits_smollm2.json", "logits_smollm2.bin")


def check(args):
    """Re-record and compare byte for byte: tells whether this peer still reproduces the committed goldens."""
    import filecmp
    import subprocess
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        argv = [sys.executable, os.path.abspath(__file__), "--model", args.model, "--out-dir", tmp,
                "--threads", str(args.threads), "--n-ctx", str(args.n_ctx), "--n-predict", str(args.n_predict)]
        subprocess.run(argv, check=True)
        differ = [f for f in GOLDEN_FILES if not filecmp.cmp(os.path.join(tmp, f), os.path.join(args.out_dir, f),
                                                               shallow=False)]
    if differ:
        print(f"check: these differ from {args.out_dir}: {', '.join(differ)}")
        return 1
    print(f"check: all of {', '.join(GOLDEN_FILES)} reproduced exactly")
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--out-dir", default=os.path.join(REPO, "tests", "data", "golden"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--n-ctx", type=int, default=4096)
    ap.add_argument("--n-predict", type=int, default=64)
    ap.add_argument("--check", action="store_true",
                    help="record into a temporary folder and compare with the files in --out-dir")
    args = ap.parse_args()
    if args.check:
        return check(args)
    if not os.path.isfile(args.model):
        sys.exit(f"record_golden_engine: model not found: {args.model}")
    os.makedirs(args.out_dir, exist_ok=True)

    print(f"loading {args.model} (threads {args.threads}, n_ctx {args.n_ctx})", flush=True)
    # use_extra_bufts off: llama.cpp's AMX path (the extra buffer type this CPU would pick for Q4_1) crashes
    # with SIGSEGV in ldtilecfg in this build, so the plain ggml-cpu kernels are recorded.
    peer = lcp_peer.Peer(args.model, args.threads, n_ctx=args.n_ctx, extra_bufts=False)
    import llama_cpp
    header = {
        "generator": "tools/record_golden_engine.py",
        "peer": {
            "package": "llama-cpp-python", "version": llama_cpp.__version__,
            "build": "from source, CMAKE_ARGS=-DGGML_NATIVE=ON",
            "system_info": lcp_peer.system_info(),
            "matmul_kernels": lcp_peer.kernels_note(peer.settings()),
        },
        "model": {"file": os.path.basename(args.model), "sha256": lcp_peer.file_sha256(args.model),
                  "n_vocab": peer.n_vocab, "add_bos": peer.add_bos()},
        "settings": dict(peer.settings(), seed=0,
                         seed_note="unused: greedy argmax and logits draw no random numbers"),
    }
    print("greedy continuations", flush=True)
    record_greedy(peer, args, header)
    print("logits", flush=True)
    record_logits(peer, args, header)
    peer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
