/* spm.c - SentencePiece-style BPE (tokenizer.ggml.model = "llama").
 *
 * The caller has already replaced spaces by U+2581 and added the space
 * prefix. Symbols start as UTF-8 characters (by lead-byte length, clamped at
 * the end, like llama.cpp); the adjacent pair whose concatenation is a token
 * with the highest score merges first (ties: leftmost). A final symbol that
 * is not a token is emitted byte by byte through <0xNN> tokens (or the raw
 * byte's token), and through the unknown token when the vocabulary has
 * neither. */
#include "tokenizer/tok_internal.h"

static bool queue_pair(const pc_tokenizer *t, pc_tok_scratch *s, const char *w, int32_t left, int32_t right) {
    if (left < 0 || right < 0) return true;
    const pc_tok_sym *l = &s->syms[left], *r = &s->syms[right];
    /* symbols are contiguous in w, so the pair's text is one range */
    int32_t id = pc_strmap_get(&t->vocab, w + l->start, l->n + r->n, NULL, 0);
    if (id < 0) return true;
    return pc_tok_heap_push(s, (pc_tok_bigram){t->score[id], left, right, l->n + r->n});
}

static bool emit_symbol(const pc_tokenizer *t, const char *w, const pc_tok_sym *y, pc_tokens *out) {
    int32_t id = pc_strmap_get(&t->vocab, w + y->start, y->n, NULL, 0);
    if (id >= 0) return pc_tokens_push(out, id);
    for (uint32_t j = 0; j < y->n; j++) {
        int32_t bid = t->byte_token[(unsigned char)w[y->start + j]];
        if (bid < 0) bid = t->unk;
        if (bid >= 0 && !pc_tokens_push(out, bid)) return false;
    }
    return true;
}

bool pc_spm_tokenize(const pc_tokenizer *t, const char *text, size_t len, pc_tok_scratch *s, pc_tokens *out) {
    size_t n_syms;
    if (len == 0) return true;
    if (!pc_tok_merge(t, s, text, len, queue_pair, &n_syms)) return false;
    for (int32_t i = 0; i != -1; i = s->syms[i].next)
        if (!emit_symbol(t, text, &s->syms[i], out)) return false;
    return true;
}
