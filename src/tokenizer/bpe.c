/* bpe.c - byte-level BPE (tokenizer.ggml.model = "gpt2").
 *
 * Per fragment: decode UTF-8 the way llama.cpp does (invalid bytes become
 * U+FFFD), split into words with the pre-tokenizer, map each word's UTF-8
 * bytes to GPT-2's printable codepoints, then merge adjacent symbols by
 * lowest merge rank (ties: leftmost) until no ranked pair is left. A final
 * symbol that is not a token falls back to the tokens of its single bytes,
 * skipping bytes that have none, as llama.cpp does. */
#include <string.h>

#include "tokenizer/tok_internal.h"
#include "tokenizer/unicode.h"
#include "tokenizer/utf8.h"

static bool queue_pair(const pc_tokenizer *t, pc_tok_scratch *s, const char *w, int32_t left, int32_t right) {
    if (left < 0 || right < 0) return true;
    const pc_tok_sym *l = &s->syms[left], *r = &s->syms[right];
    int32_t rank = pc_strmap_get(&t->merges, w + l->start, l->n, w + r->start, r->n);
    if (rank < 0) return true;
    return pc_tok_heap_push(s, (pc_tok_bigram){-(float)rank, left, right, l->n + r->n});
}

/* Merges the byte-encoded word w[0..n) and appends its tokens. */
static bool merge_word(const pc_tokenizer *t, pc_tok_scratch *s, const char *w, size_t n, pc_tokens *out) {
    if (t->ignore_merges) {
        int32_t id = pc_strmap_get(&t->vocab, w, n, NULL, 0);
        if (id >= 0) return pc_tokens_push(out, id);
    }
    size_t n_syms;
    if (!pc_tok_merge(t, s, w, n, queue_pair, &n_syms)) return false;
    for (size_t i = 0; i < n_syms; i++) {
        const pc_tok_sym *y = &s->syms[i];
        if (y->n == 0) continue;
        int32_t id = pc_strmap_get(&t->vocab, w + y->start, y->n, NULL, 0);
        if (id >= 0) {
            if (!pc_tokens_push(out, id)) return false;
            continue;
        }
        for (uint32_t j = 0; j < y->n; j++) {
            int32_t bid = pc_strmap_get(&t->vocab, w + y->start + j, 1, NULL, 0);
            if (bid >= 0 && !pc_tokens_push(out, bid)) return false;
        }
    }
    return true;
}

/* Byte-encodes cps[0..n) into s->buf; returns the length or SIZE_MAX on OOM. */
static size_t encode_word(const pc_tokenizer *t, pc_tok_scratch *s, const uint32_t *cps, size_t n) {
    if (!pc_tok_scratch_reserve_buf(s, n * 8)) return SIZE_MAX;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        char u[4];
        size_t m = pc_utf8_encode(cps[i], u);
        for (size_t j = 0; j < m; j++) {
            uint16_t cp = t->byte_to_cp[(unsigned char)u[j]];
            if (cp < 0x80) s->buf[k++] = (char)cp;
            else s->buf[k++] = (char)(0xC0 | (cp >> 6)), s->buf[k++] = (char)(0x80 | (cp & 0x3F));
        }
    }
    return k;
}

bool pc_bpe_tokenize(const pc_tokenizer *t, const char *text, size_t len, pc_tok_scratch *s, pc_tokens *out) {
    if (!pc_tok_scratch_reserve_cps(s, len + 1)) return false;
    size_t n = 0;
    for (size_t pos = 0; pos < len; n++) {
        s->cps[n] = pc_utf8_decode_lenient(text, len, &pos);
        s->flags[n] = pc_unicode_flags(s->cps[n]);
    }
    if (!pc_pretok_split(t->pre, s->cps, s->flags, n, &s->words, &s->tmp)) return false;
    size_t start = 0;
    for (size_t i = 0; i < s->words.n; i++) {
        size_t wl = encode_word(t, s, s->cps + start, s->words.len[i]);
        if (wl == SIZE_MAX || !merge_word(t, s, s->buf, wl, out)) return false;
        start += s->words.len[i];
    }
    return true;
}
