/* fuzz_tokenizer.c - libFuzzer target: arbitrary bytes through the tokenizer.
 *
 * The vocabulary is loaded once: the real model (env PC_MODEL_PATH, else the
 * default models/ path), or when that is absent a tiny SentencePiece
 * vocabulary built with the GGUF writer. Each input is tokenized with
 * parse_special off and on, every id must be in range, and the ids go back
 * through token_to_piece and the streaming detokenizer, whose output must be
 * valid UTF-8. The first input byte also selects BPE pre-tokenizer variants
 * when the real model is used (same vocabulary, another tokenizer.ggml.pre). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"

#ifndef PC_FUZZ_DEFAULT_MODEL
#define PC_FUZZ_DEFAULT_MODEL "models/SmolLM2-135M-Instruct.Q4_1.gguf"
#endif

static pc_tokenizer *tiny_vocab(void) {
    static const char *const pieces[] = {"<unk>", "<s>", "</s>", "\xe2\x96\x81", "a", "b", "ab", "\342\226\201a",
                                         "<0x41>", "<0xE2>", "<0x80>"};
    static const int32_t types[] = {2, 3, 3, 1, 1, 1, 1, 1, 6, 6, 6};
    static const float scores[] = {0, 0, 0, -1, -2, -2, -1, -1, 0, 0, 0};
    size_t n = sizeof pieces / sizeof pieces[0];
    pc_gguf_writer *w = pc_gguf_writer_create();
    pc_gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
    pc_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", pieces, n);
    pc_gguf_writer_set_arr(w, "tokenizer.ggml.scores", PC_GGUF_FLOAT32, scores, n);
    pc_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", PC_GGUF_INT32, types, n);
    void *mem = NULL;
    size_t size = 0;
    pc_gguf *g = NULL;
    pc_tokenizer *tok = NULL;
    if (pc_gguf_writer_to_memory(w, &mem, &size, NULL) == PC_OK && pc_gguf_open_memory(mem, size, "tiny", &g, NULL) == PC_OK)
        pc_tokenizer_load(g, &tok, NULL);
    pc_gguf_close(g);
    pc_free(mem);
    pc_gguf_writer_free(w);
    return tok;
}

static void check_utf8(const unsigned char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        unsigned char b = s[i];
        size_t len = b < 0x80 ? 1 : (b & 0xE0) == 0xC0 ? 2 : (b & 0xF0) == 0xE0 ? 3 : (b & 0xF8) == 0xF0 ? 4 : 0;
        if (len == 0 || i + len > n) abort();
        for (size_t k = 1; k < len; k++)
            if ((s[i + k] & 0xC0) != 0x80) abort();
        i += len;
    }
}

static void run(const pc_tokenizer *tok, const uint8_t *data, size_t size, bool parse_special) {
    pc_tokens t = {0};
    if (pc_tokenize(tok, (const char *)data, size, true, parse_special, &t, NULL) != PC_OK) abort();
    int32_t nv = pc_tokenizer_n_vocab(tok);
    size_t cap = 3 * (pc_tokenizer_max_piece(tok) + 4);
    char *buf = malloc(cap);
    pc_detok d = {0};
    for (size_t i = 0; i < t.n; i++) {
        if (t.ids[i] < 0 || t.ids[i] >= nv) abort();
        if (pc_token_to_piece(tok, t.ids[i], true, buf, cap) > pc_tokenizer_max_piece(tok)) abort();
        size_t k = pc_detok_push(&d, tok, t.ids[i], buf, cap);
        if (k > cap) abort();
        check_utf8((const unsigned char *)buf, k);
    }
    size_t k = pc_detok_flush(&d, buf, cap);
    check_utf8((const unsigned char *)buf, k);
    free(buf);
    pc_tokens_free(&t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static pc_tokenizer *tok; /* fuzz harness only: loaded once per process */
    if (!tok) {
        const char *path = getenv("PC_MODEL_PATH");
        pc_gguf *g = NULL;
        if (pc_gguf_open(path ? path : PC_FUZZ_DEFAULT_MODEL, &g, NULL) == PC_OK) {
            pc_tokenizer_load(g, &tok, NULL);
            pc_gguf_close(g);
        }
        if (!tok) tok = tiny_vocab();
        if (!tok) abort();
    }
    run(tok, data, size, false);
    run(tok, data, size, true);
    return 0;
}
