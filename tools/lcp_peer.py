"""Thin wrapper over llama-cpp-python's low-level API: the reference peer (llama.cpp) for goldens and benchmarks.

It lives outside the product: only tools/ and bench/ import it, and only with the peer's venv
(tools/setup_peer.sh). Invariants it keeps:
  - every context is created with explicit settings (threads, n_ctx, flash attention, KV types) and those
    settings are reported back by settings(), so a golden file or a benchmark says exactly what ran;
  - decode() never stops at end-of-generation tokens: callers decide, and are told (is_eog) where one came;
  - llama.cpp's log lines are captured, not printed, so the scripts can report which CPU buffer types
    (AMX, CPU_REPACK, CPU_Mapped) held the weights, i.e. which matmul kernels ran.
"""

import ctypes
import hashlib
import re

import numpy as np
import llama_cpp as L

GGML_TYPE_NAMES = {0: "f32", 1: "f16", 8: "q8_0", 2: "q4_0", 3: "q4_1", 30: "bf16"}


class LogCapture:
    """Collects llama.cpp/ggml log text; the callback object is kept alive for the process lifetime."""

    def __init__(self):
        self.lines = []
        self._partial = ""

        def on_log(level, text, user_data):
            self._partial += text.decode("utf-8", errors="replace")
            while "\n" in self._partial:
                line, self._partial = self._partial.split("\n", 1)
                self.lines.append(line)

        self._cb = L.llama_log_callback(on_log)
        L.llama_log_set(self._cb, ctypes.c_void_p(0))

    def buffer_sizes(self, since=0):
        """{buffer type: MiB} from the 'load_tensors: X model buffer size = N MiB' lines."""
        out = {}
        for line in self.lines[since:]:
            m = re.search(r"load_tensors:\s+(\S+) model buffer size =\s+([\d.]+) MiB", line)
            if m:
                out[m.group(1)] = float(m.group(2))
        return out

    def repacked(self, since=0):
        """Sorted set of 'buffer:type' for tensors that an extra buffer type repacked (AMX, CPU_REPACK)."""
        kinds = set()
        for line in self.lines[since:]:
            m = re.search(r"ggml_backend_(\w+)_buffer_set_tensor: \w+ repack tensor \S+ of type (\w+)", line)
            if m:
                kinds.add(m.group(1) + ":" + m.group(2))
            m = re.search(r"\w+: repack tensor \S+ with (\S+)", line)
            if m:
                kinds.add("cpu_repack:" + m.group(1))
        return sorted(kinds)


_CAPTURE = []


def log_capture():
    """The process's one LogCapture: llama.cpp keeps a single log callback, which must outlive every Peer."""
    if not _CAPTURE:
        _CAPTURE.append(LogCapture())
    return _CAPTURE[0]


def kernels_note(settings):
    """Which ggml-cpu matmul kernels ran for SmolLM2's weight types, from the context settings and load log."""
    if settings["repacked_weights"]:
        return ("weights repacked by extra buffer types " + ", ".join(settings["repacked_weights"]) +
                " (AMX tiles for prompts, AVX512-VNNI for single tokens)")
    return ("Q4_1 weights: ggml_vec_dot_q4_1_q8_1 (activations quantized to Q8_1 per 32-block); Q8_0 output "
            "(tied token_embd): llamafile tinyBLAS_Q0_AVX; F16 KV attention: llamafile tinyBLAS (AVX512) or "
            "ggml_vec_dot_f16; no AMX, no repacking (use_extra_bufts=false)")


def file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def system_info():
    return L.llama_print_system_info().decode().strip()


class Peer:
    """One loaded model plus a context that can be recreated (fresh()) with the same settings."""

    def __init__(self, model_path, n_threads, n_ctx=4096, n_batch=2048, n_ubatch=512,
                 flash_attn=False, extra_bufts=True, all_outputs=False):
        self.log = log_capture()
        self.log_start = len(self.log.lines)
        L.llama_backend_init()
        mp = L.llama_model_default_params()
        mp.use_extra_bufts = extra_bufts
        self.model = L.llama_model_load_from_file(str(model_path).encode(), mp)
        if not self.model:
            raise RuntimeError(f"llama.cpp could not load the model {model_path}")
        self.vocab = L.llama_model_get_vocab(self.model)
        self.n_vocab = L.llama_vocab_n_tokens(self.vocab)
        self.cparams = L.llama_context_default_params()
        self.cparams.n_ctx = n_ctx
        self.cparams.n_batch = n_batch
        self.cparams.n_ubatch = n_ubatch
        self.cparams.n_threads = n_threads
        self.cparams.n_threads_batch = n_threads
        self.cparams.flash_attn_type = (L.LLAMA_FLASH_ATTN_TYPE_ENABLED if flash_attn
                                        else L.LLAMA_FLASH_ATTN_TYPE_DISABLED)
        if all_outputs:  # 0 = as many outputs per sequence as n_batch; the default keeps only the last
            self.cparams.n_outputs_max_per_seq = 0
        self.extra_bufts = extra_bufts
        self.ctx = None
        self.fresh()

    def fresh(self):
        """A new context: empty KV cache, as a new process would have."""
        if self.ctx:
            L.llama_free(self.ctx)
        self.ctx = L.llama_init_from_model(self.model, self.cparams)
        if not self.ctx:
            raise RuntimeError("llama.cpp could not create a context")
        self.n_past = 0

    def clear(self):
        """Empty the KV cache of the current context (cheaper than fresh(), same numbers)."""
        L.llama_memory_clear(L.llama_get_memory(self.ctx), True)
        self.n_past = 0

    def close(self):
        if self.ctx:
            L.llama_free(self.ctx)
            self.ctx = None
        if self.model:
            L.llama_model_free(self.model)
            self.model = None

    def settings(self):
        c = self.cparams
        return {
            "n_threads": c.n_threads, "n_threads_batch": c.n_threads_batch,
            "n_ctx": L.llama_n_ctx(self.ctx), "n_batch": c.n_batch, "n_ubatch": c.n_ubatch,
            "flash_attn": {0: "off", 1: "on", -1: "auto"}[c.flash_attn_type],
            "type_k": GGML_TYPE_NAMES.get(c.type_k, str(c.type_k)),
            "type_v": GGML_TYPE_NAMES.get(c.type_v, str(c.type_v)),
            "use_extra_bufts": self.extra_bufts,
            "model_buffers_mib": self.log.buffer_sizes(self.log_start),
            "repacked_weights": self.log.repacked(self.log_start),
        }

    def add_bos(self):
        return bool(L.llama_vocab_get_add_bos(self.vocab))

    def tokenize(self, text, add_special=True, parse_special=False):
        data = text.encode("utf-8")
        cap = len(data) + 16
        buf = (L.llama_token * cap)()
        n = L.llama_tokenize(self.vocab, data, len(data), buf, cap, add_special, parse_special)
        if n < 0:
            raise RuntimeError(f"tokenize: needs {-n} tokens, buffer holds {cap}")
        return list(buf[:n])

    def detokenize(self, ids, render_special=False):
        if not ids:
            return ""
        arr = (L.llama_token * len(ids))(*ids)
        cap = 64 * len(ids) + 64
        buf = ctypes.create_string_buffer(cap)
        n = L.llama_detokenize(self.vocab, arr, len(ids), buf, cap, False, render_special)
        if n < 0:
            raise RuntimeError("detokenize: buffer too small")
        return buf.raw[:n].decode("utf-8", errors="replace")

    def piece(self, tok, render_special=False):
        buf = ctypes.create_string_buffer(256)
        n = L.llama_token_to_piece(self.vocab, tok, buf, 256, 0, render_special)
        return buf.raw[:max(n, 0)]

    def is_eog(self, tok):
        return bool(L.llama_vocab_is_eog(self.vocab, tok))

    def decode(self, ids):
        """Append ids to the KV cache in one llama_decode call; logits only for the last position."""
        arr = (L.llama_token * len(ids))(*ids)
        batch = L.llama_batch_get_one(arr, len(ids))
        rc = L.llama_decode(self.ctx, batch)
        if rc != 0:
            raise RuntimeError(f"llama_decode returned {rc} at n_past={self.n_past}, n_tokens={len(ids)}")
        self.n_past += len(ids)

    def decode_all_logits(self, ids):
        """Append ids in one llama_decode asking for every position's logits; returns (len(ids), n_vocab).
        Needs a Peer made with all_outputs=True."""
        n = len(ids)
        batch = L.llama_batch_init(n, 0, 1)
        try:
            for i, tok in enumerate(ids):
                batch.token[i] = tok
                batch.pos[i] = self.n_past + i
                batch.n_seq_id[i] = 1
                batch.seq_id[i][0] = 0
                batch.logits[i] = 1
            batch.n_tokens = n
            rc = L.llama_decode(self.ctx, batch)
        finally:
            L.llama_batch_free(batch)
        if rc != 0:
            raise RuntimeError(f"llama_decode returned {rc} for {n} tokens with all outputs")
        self.n_past += n
        return np.stack([np.ctypeslib.as_array(L.llama_get_logits_ith(self.ctx, i), shape=(self.n_vocab,))
                         for i in range(n)]).astype(np.float32)

    def last_logits(self):
        ptr = L.llama_get_logits_ith(self.ctx, -1)
        return np.ctypeslib.as_array(ptr, shape=(self.n_vocab,)).astype(np.float32, copy=True)

    def last_argmax(self):
        """Greedy pick without copying the whole row: ties go to the lowest id, as numpy.argmax does."""
        ptr = L.llama_get_logits_ith(self.ctx, -1)
        return int(np.argmax(np.ctypeslib.as_array(ptr, shape=(self.n_vocab,))))
