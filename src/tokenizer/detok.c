/* detok.c - streaming detokenizer: token pieces in, complete UTF-8 out.
 *
 * Invariant between calls: d->pending holds a proper prefix of a well-formed
 * UTF-8 sequence (0..3 bytes). Each new byte either completes it (emitted),
 * extends it, or breaks it: then the bytes before it are one maximal invalid
 * subpart and become one U+FFFD (the same count Python's errors="replace"
 * gives), and the new byte starts over. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"
#include "tokenizer/utf8.h"

static void out_bytes(char *buf, size_t cap, size_t *k, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++, (*k)++)
        if (*k < cap) buf[*k] = s[i];
}

static const char REPLACEMENT[3] = {(char)0xEF, (char)0xBF, (char)0xBD};

static void feed_byte(pc_detok *d, char c, char *buf, size_t cap, size_t *k) {
    d->pending[d->n_pending++] = c;
    for (;;) {
        int r = pc_utf8_strict_len((const unsigned char *)d->pending, d->n_pending);
        if (r == 0) return;
        if (r > 0) {
            out_bytes(buf, cap, k, d->pending, (size_t)r);
            d->n_pending = 0;
            return;
        }
        out_bytes(buf, cap, k, REPLACEMENT, 3);
        if (d->n_pending == 1) {
            d->n_pending = 0;
            return;
        }
        d->pending[0] = d->pending[d->n_pending - 1];
        d->n_pending = 1;
    }
}

size_t pc_detok_push(pc_detok *d, const pc_tokenizer *tok, int32_t id, char *buf, size_t cap) {
    char local[256];
    char *piece = local;
    size_t n = pc_token_to_piece(tok, id, false, local, sizeof local);
    if (n > sizeof local) {
        piece = malloc(n);
        if (!piece) return 0;
        pc_token_to_piece(tok, id, false, piece, n);
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) feed_byte(d, piece[i], buf, cap, &k);
    if (piece != local) free(piece);
    return k;
}

size_t pc_detok_flush(pc_detok *d, char *buf, size_t cap) {
    size_t k = 0;
    if (d->n_pending) out_bytes(buf, cap, &k, REPLACEMENT, 3);
    d->n_pending = 0;
    return k;
}
