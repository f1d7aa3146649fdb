/* kv.h - KV memory as spans that carry their positions.
 *
 * A span holds, for a run of tokens, the keys and values of every layer in
 * F16 and the absolute position of each token. The attention context of a
 * request is a list of spans (pc_kv_list): cached module spans shared by many
 * requests, plus the request's own writable spans. Nothing assumes positions
 * are 0..n-1 or that the context is one buffer.
 *
 * Layout of one span (cap = capacity in tokens, a multiple of PC_KV_BLOCK;
 * D = n_head_kv * head_dim):
 *   pos [cap]                               int32 absolute positions
 *   k   [n_layer][cap / 8][D][8]            f16, keys in blocks of 8 tokens, transposed:
 *                                           one head's block is [head_dim][8], the layout
 *                                           attention multiplies in (a lane per key)
 *   v   [n_layer][cap][D]                   f16, a row per token
 *
 * Invariants:
 *  1. A frozen span is immutable: pc_kv_span_freeze is one-way, and writers
 *     check it (pc_kv_span_reserve refuses a frozen span).
 *  2. refcount counts owners; the last pc_kv_span_release frees the memory.
 *     A request retains every span of its context while it runs.
 *  3. Within a span, tokens [0, n) are written; [n, cap) are not yet.
 *  4. A wrapped span (pc_kv_span_wrap) reads memory that someone else owns (a
 *     mapped cache file, a buffer read once): it is born frozen, and its last
 *     release hands the memory back through its release callback instead of
 *     freeing pos/k/v.
 *  5. pos is always host memory; k and v live where mem says (host memory
 *     when mem is NULL). Whoever reads k and v checks the location first:
 *     the CPU reads host and pinned spans, a GPU backend its device spans
 *     (and streams host ones). Keys are zero-filled when allocated, in
 *     every location. */
#ifndef PC_KV_H
#define PC_KV_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pcache.h"
#include "tensor/types.h"

#define PC_KV_BLOCK 8 /* tokens per transposed key block */

/* Where a span's K and V live. */
typedef enum pc_kv_loc {
    PC_KV_HOST = 0,   /* malloc'd host memory */
    PC_KV_PINNED,     /* page-locked host memory: the CPU reads it, a GPU copies it at full link speed */
    PC_KV_DEVICE,     /* GPU memory */
} pc_kv_loc;

/* Who allocates a span's K and V arrays (a backend, a file mapping...). The
 * table and its ctx must outlive every span made with it. */
typedef struct pc_kv_mem {
    pc_kv_loc loc;
    void *(*alloc)(void *ctx, size_t bytes);                       /* zero-filled; NULL when out of memory */
    void (*free)(void *ctx, void *p);                              /* NULL-safe */
    bool (*copy)(void *ctx, void *dst, const void *src, size_t bytes); /* both in this memory; false: a device error */
    void *ctx;
} pc_kv_mem;

typedef struct pc_kv_span {
    int32_t n_layer;
    int32_t dim;          /* n_head_kv * head_dim */
    int32_t n;            /* tokens written */
    int32_t cap;          /* tokens allocated */
    int32_t *pos;         /* [cap] */
    pc_f16 *k;            /* [n_layer][cap / PC_KV_BLOCK][dim][PC_KV_BLOCK] */
    pc_f16 *v;            /* [n_layer][cap][dim] */
    _Atomic int refcount;
    _Atomic bool frozen;
    void (*release)(void *owner); /* wrapped spans: gives pos/k/v back; NULL when the span owns them */
    void *owner;
    const pc_kv_mem *mem; /* NULL: k and v are malloc'd host memory */
} pc_kv_span;

/* A new writable span with refcount 1, K and V in host memory. NULL when out of memory. */
pc_kv_span *pc_kv_span_create(int32_t n_layer, int32_t dim, int32_t cap);
/* The same with K and V from mem (NULL: host memory). */
pc_kv_span *pc_kv_span_create_in(const pc_kv_mem *mem, int32_t n_layer, int32_t dim, int32_t cap);
/* A frozen span over n tokens laid out as above for cap tokens, in memory the
 * caller owns; release(owner) runs when the last reference goes (also when
 * this returns NULL for lack of memory, so the caller never frees twice).
 * cap must be a multiple of PC_KV_BLOCK and >= n. */
pc_kv_span *pc_kv_span_wrap(int32_t n_layer, int32_t dim, int32_t n, int32_t cap, int32_t *pos, pc_f16 *k, pc_f16 *v,
                            void (*release)(void *owner), void *owner);
static inline pc_kv_loc pc_kv_span_loc(const pc_kv_span *s) { return s->mem ? s->mem->loc : PC_KV_HOST; }
/* K and V bytes of a span of cap tokens: each is [n_layer][cap][dim] f16. */
static inline size_t pc_kv_array_bytes(int32_t n_layer, int32_t dim, int32_t cap) {
    return (size_t)n_layer * (size_t)cap * (size_t)dim * sizeof(pc_f16);
}
pc_kv_span *pc_kv_span_retain(pc_kv_span *s);
void pc_kv_span_release(pc_kv_span *s); /* NULL-safe */
void pc_kv_span_freeze(pc_kv_span *s);
/* Makes room for n_more tokens (grows cap, keeping contents). Refuses a frozen span. */
pc_status pc_kv_span_reserve(pc_kv_span *s, int32_t n_more, pc_error *err);
/* Copies src's first m tokens (positions, K and V of every layer) into the
 * empty, writable dst, which then holds m tokens. Both must have the same
 * shape and K and V the CPU can address (not PC_KV_DEVICE); dst needs room
 * for m. A token's KV depends only on itself and what precedes it, so the
 * first m tokens of a span are the KV of a prompt that shares only them. */
pc_status pc_kv_span_copy_head(pc_kv_span *dst, const pc_kv_span *src, int32_t m, pc_error *err);
size_t pc_kv_span_bytes(const pc_kv_span *s); /* bytes of K and V for the tokens written */
size_t pc_kv_span_cap_bytes(const pc_kv_span *s); /* bytes of K and V allocated (cap tokens) */

/* The key block holding tokens [blk * 8, blk * 8 + 8): [dim][8]. */
static inline pc_f16 *pc_kv_k_block(const pc_kv_span *s, int32_t layer, int32_t blk) {
    return s->k + ((size_t)layer * (size_t)(s->cap / PC_KV_BLOCK) + (size_t)blk) * (size_t)s->dim * PC_KV_BLOCK;
}
/* Element d of token tok's key. */
static inline pc_f16 *pc_kv_k_at(const pc_kv_span *s, int32_t layer, int32_t tok, int32_t d) {
    return pc_kv_k_block(s, layer, tok / PC_KV_BLOCK) + (size_t)d * PC_KV_BLOCK + (size_t)(tok % PC_KV_BLOCK);
}
static inline pc_f16 *pc_kv_v(const pc_kv_span *s, int32_t layer, int32_t tok) {
    return s->v + ((size_t)layer * (size_t)s->cap + (size_t)tok) * (size_t)s->dim;
}

/* The attention context: spans in order. Attention visits spans in list order
 * and tokens in span order, so a list whose concatenation is the same token
 * sequence gives bitwise the same result however it is split. The list does
 * not own its spans (the request retains them). */
typedef struct pc_kv_list {
    const pc_kv_span **spans;
    int32_t n;
    size_t cap;
} pc_kv_list;

pc_status pc_kv_list_push(pc_kv_list *l, const pc_kv_span *s, pc_error *err);
void pc_kv_list_free(pc_kv_list *l);
int64_t pc_kv_list_tokens(const pc_kv_list *l);

#endif
