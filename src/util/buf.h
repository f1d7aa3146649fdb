/* buf.h - the one growable buffer: bytes (pc_buf) and arrays of any element
 * type (pc_array_reserve), so no file hand-rolls its own doubling.
 *
 * Invariants: sizes are checked for overflow before anything is allocated;
 * a failed call leaves the buffer exactly as it was (old contents kept, still
 * owned by the buffer); a pc_buf's bytes are always NUL-terminated once it
 * holds any (data may be NULL while len == 0). Limits on how large a buffer
 * may grow belong to the caller, who knows what the bytes are for. */
#ifndef PC_UTIL_BUF_H
#define PC_UTIL_BUF_H

#include <stdbool.h>
#include <stddef.h>

/* A growable byte string. Zero-initialise ({0}); free with pc_buf_free. */
typedef struct pc_buf {
    char *data; /* [cap], NUL-terminated at len; NULL until the first append */
    size_t len; /* bytes held, excluding the NUL */
    size_t cap; /* bytes allocated */
} pc_buf;

/* Makes room for `more` bytes past len (plus the NUL). False when out of memory. */
bool pc_buf_reserve(pc_buf *b, size_t more);
/* Appends s[0..n) (may hold NULs). False when out of memory. */
bool pc_buf_append(pc_buf *b, const void *s, size_t n);
/* Appends a NUL-terminated string. */
bool pc_buf_puts(pc_buf *b, const char *s);
/* Appends printf-formatted text. */
bool pc_buf_printf(pc_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Empties b, keeping its memory for reuse. */
static inline void pc_buf_clear(pc_buf *b) {
    b->len = 0;
    if (b->data) b->data[0] = '\0';
}
/* Hands the bytes to the caller (free with free(); an empty buffer gives
 * ""), leaving b empty. NULL only when out of memory. */
char *pc_buf_take(pc_buf *b);
void pc_buf_free(pc_buf *b); /* safe on a zeroed or freed buffer */

/* Grows an array of elem-byte elements, whose capacity is *cap elements, to
 * hold at least `need` (doubling from 16). Returns the array to use from now
 * on - arr itself when it is already big enough - or NULL when out of memory
 * or when need * elem overflows; then arr is untouched and still the caller's.
 *   int32_t *p = pc_array_reserve(v->ids, &v->cap, v->n + 1, sizeof *v->ids);
 *   if (!p) return PC_ERR_NOMEM;
 *   v->ids = p; */
void *pc_array_grow(void *arr, size_t *cap, size_t need, size_t elem);
static inline void *pc_array_reserve(void *arr, size_t *cap, size_t need, size_t elem) {
    return need <= *cap && arr ? arr : pc_array_grow(arr, cap, need, elem); /* hot paths: no call when it fits */
}

#endif
