/* attention.h - attention by position over a list of KV spans (CPU).
 *
 * A query at position p attends to exactly the keys whose position is <= p,
 * wherever they live: cached module spans, argument spans, the request's own
 * span. Keys are visited in list order, then span order, and every reduction
 * over keys is a sequential loop over that order; so two lists whose
 * concatenation is the same (position, K, V) sequence give bitwise equal
 * outputs however the tokens are split into spans. That is what makes a
 * cached prefill equal an uncached one.
 *
 * Numerics follow llama.cpp's CPU path without flash attention: q is rounded
 * to F16 before the dot with F16 keys, softmax in f32, probabilities rounded
 * to F16 before weighting F16 values, f32 accumulation. Where llama.cpp sums
 * the softmax in double, the sum here is in 2^-30 fixed point, so that its
 * order cannot change a bit (attn_kernels.h). */
#ifndef PC_KERNELS_CPU_ATTENTION_H
#define PC_KERNELS_CPU_ATTENTION_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/cpu/quant.h"
#include "kv/kv.h"
#include "util/threadpool.h"

typedef struct pc_attn_args {
    const float *q;           /* [n_q][q_stride], head h at q + h*head_dim */
    int64_t q_stride;
    const int32_t *q_pos;     /* [n_q] */
    int32_t n_q;
    int32_t n_head, n_head_kv, head_dim;
    const pc_kv_list *ctx;
    int32_t layer;
    float scale;              /* usually 1/sqrt(head_dim) */
    const float *alibi_slopes;/* [n_head] or NULL: score += slope * (pos_k - pos_q) */
    float *out;               /* [n_q][out_stride] */
    int64_t out_stride;
    void *scratch;            /* pc_attn_scratch_size(...) bytes per pool thread, 64-byte aligned */
    size_t scratch_per_thread;
    void *shared;             /* pc_attn_shared_size(...) bytes, 64-byte aligned, or NULL: lets small
                                 batches (decode) spread one KV head's work over all threads */
    pc_isa isa;
} pc_attn_args;

/* Scratch one thread needs for contexts of up to n_ctx keys. */
size_t pc_attn_scratch_size(int32_t n_head, int32_t n_head_kv, int32_t head_dim, int64_t n_ctx);
/* Scratch shared by the threads for contexts of up to n_ctx keys. */
size_t pc_attn_shared_size(int32_t n_head, int32_t n_head_kv, int64_t n_ctx);
void pc_attention(pc_pool *pool, const pc_attn_args *a);

#define PC_ATTN_BATCH_MAX 64
/* The attention of n (1..PC_ATTN_BATCH_MAX) sequences at once, in one pool
 * job: each sequence's output is bitwise what pc_attention gives it alone. */
void pc_attention_batch(pc_pool *pool, const pc_attn_args *a, int32_t n);

#endif
