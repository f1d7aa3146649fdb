/* merge_queue.c - the symbol chain and bigram priority queue that both the
 * byte-level BPE and the SentencePiece merge loops run on, plus the scratch
 * buffers of one tokenize call.
 *
 * Heap order: higher score first, then smaller left index, which is
 * llama.cpp's order for both tokenizers (BPE queues score = -rank). */
#include <stdlib.h>

#include "tokenizer/tok_internal.h"
#include "tokenizer/utf8.h"
#include "util/buf.h"

void pc_tok_scratch_free(pc_tok_scratch *s) {
    free(s->cps);
    free(s->flags);
    free(s->buf);
    free(s->syms);
    free(s->heap);
    pc_seglist_free(&s->words);
    pc_seglist_free(&s->tmp);
}

bool pc_tok_scratch_reserve_buf(pc_tok_scratch *s, size_t n) {
    char *p = pc_array_reserve(s->buf, &s->buf_cap, n, 1);
    if (p) s->buf = p;
    return p != NULL;
}

static bool before(const pc_tok_bigram *a, const pc_tok_bigram *b) {
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

bool pc_tok_heap_push(pc_tok_scratch *s, pc_tok_bigram b) {
    pc_tok_bigram *h = pc_array_reserve(s->heap, &s->heap_cap, s->heap_n + 1, sizeof *s->heap);
    if (!h) return false;
    s->heap = h;
    size_t i = s->heap_n++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!before(&b, &s->heap[parent])) break;
        s->heap[i] = s->heap[parent];
        i = parent;
    }
    s->heap[i] = b;
    return true;
}

pc_tok_bigram pc_tok_heap_pop(pc_tok_scratch *s) {
    pc_tok_bigram top = s->heap[0];
    pc_tok_bigram last = s->heap[--s->heap_n];
    size_t n = s->heap_n, i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && before(&s->heap[c + 1], &s->heap[c])) c++;
        if (!before(&s->heap[c], &last)) break;
        s->heap[i] = s->heap[c];
        i = c;
    }
    if (n) s->heap[i] = last;
    return top;
}

bool pc_tok_syms_init(pc_tok_scratch *s, const char *text, size_t len, size_t *n_syms) {
    pc_tok_sym *syms = pc_array_reserve(s->syms, &s->syms_cap, len + 1, sizeof *s->syms);
    if (!syms) return false;
    s->syms = syms;
    size_t k = 0;
    for (size_t off = 0; off < len;) {
        size_t n = pc_utf8_seq_len((unsigned char)text[off]);
        if (n > len - off) n = len - off;
        s->syms[k] = (pc_tok_sym){(uint32_t)off, (uint32_t)n, (int32_t)k - 1, off + n == len ? -1 : (int32_t)k + 1};
        off += n;
        k++;
    }
    *n_syms = k;
    s->heap_n = 0;
    return true;
}

bool pc_tok_scratch_reserve_cps(pc_tok_scratch *s, size_t n) {
    /* two arrays share one capacity: each grows from it, the smaller result wins */
    size_t cap = s->cps_cap, cap2 = s->cps_cap;
    void *cps = pc_array_reserve(s->cps, &cap, n, sizeof *s->cps);
    if (!cps) return false;
    s->cps = cps;
    void *flags = pc_array_reserve(s->flags, &cap2, n, sizeof *s->flags);
    if (!flags) return false;
    s->flags = flags;
    s->cps_cap = cap < cap2 ? cap : cap2;
    return true;
}

bool pc_tok_merge(const pc_tokenizer *t, pc_tok_scratch *s, const char *text, size_t len, pc_tok_queue_fn queue,
                  size_t *n_syms) {
    if (!pc_tok_syms_init(s, text, len, n_syms)) return false;
    for (size_t i = 1; i < *n_syms; i++)
        if (!queue(t, s, text, (int32_t)i - 1, (int32_t)i)) return false;
    while (s->heap_n > 0) {
        pc_tok_bigram b = pc_tok_heap_pop(s);
        pc_tok_sym *l = &s->syms[b.left], *r = &s->syms[b.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != b.size) continue; /* outdated */
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0) s->syms[r->next].prev = b.left;
        if (!queue(t, s, text, l->prev, b.left) || !queue(t, s, text, b.left, l->next)) return false;
    }
    return true;
}
