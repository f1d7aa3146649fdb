/* matmul.h - y = x W^T on quantized weights, multithreaded.
 *
 * W: n_out rows of n_in elements of type wt, row-major (a GGUF tensor with
 *    ne[0] = n_in, ne[1] = n_out), read in place from the mapping.
 * packed: W repacked by pc_pack (pack.h), or NULL. The SIMD paths read it with
 *    their packed kernels, 16 rows x several tokens at a time; without it (or
 *    on the scalar path) each output is one dot product of W's rows.
 * x: n_tok rows of n_in floats; y: n_tok rows of n_out floats (row stride n_out).
 * x is quantized once per call. Every y[t][o] equals pc_vec_dot of W row o with
 * the quantized x row t - bitwise the same whatever n_tok, packed or not, the
 * tiling or threads. No allocation: the caller passes scratch of
 * pc_matmul_scratch_size bytes. */
#ifndef PC_KERNELS_CPU_MATMUL_H
#define PC_KERNELS_CPU_MATMUL_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/cpu/quant.h"
#include "util/threadpool.h"

typedef struct pc_matmul_args {
    pc_type wt;
    const void *w;
    const void *packed; /* pc_pack(wt, w, n_in, n_out) or NULL */
    int64_t n_in, n_out;
    const float *x;
    int64_t n_tok;
    float *y;
    void *scratch; /* >= pc_matmul_scratch_size(wt, n_in, n_tok) bytes, 64-byte aligned */
    pc_isa isa;
    bool x_ready;  /* scratch already holds x as pc_matmul_quantize_part leaves it, every element of every token */
    /* parts > 0: the call computes only share `part` of `parts` of the job's
     * rows (by weight bytes, whole row units, members in order), on the
     * calling thread (pool is not used), with its epilogues, quantizing x into
     * this call's scratch unless x_ready. The calls of all parts with the same
     * arguments (scratch aside) cover every row once: the bits of the whole
     * job. For a team job (pc_pool_team), one part per member. */
    int part, parts;
} pc_matmul_args;

size_t pc_matmul_scratch_size(pc_type wt, int64_t n_in, int64_t n_tok);
/* false if wt has no dot product on this path or n_in is not a multiple of the block size. */
bool pc_matmul(pc_pool *pool, const pc_matmul_args *a);

/* Up to PC_MATMUL_MAX_BATCH matmuls of the same x (Q/K/V, or gate/up) in one
 * pool job, quantizing x once into a[0].scratch. All members must share x,
 * n_in, n_tok, isa and the activation type pc_vec_dot_type(wt) (Q4_1 with
 * Q5_1; Q4_0, Q5_0 with Q8_0; the K-quants together); each has its own w,
 * packed, wt, n_out and y. Each y is bitwise what pc_matmul gives alone. false if the
 * members disagree or any would fail pc_matmul. */
#define PC_MATMUL_MAX_BATCH 8
bool pc_matmul_batch(pc_pool *pool, const pc_matmul_args *a, int n);

/* pc_matmul into a->y, then acc[t][o] += y[t][o] (rows of n_out) inside the
 * task that computed the row: the product and its residual add in one pool
 * job. acc ends bitwise as pc_matmul then pc_add would leave it. */
bool pc_matmul_acc(pc_pool *pool, const pc_matmul_args *a, float *acc);

/* pc_matmul_batch, then epi(ctx, i, o0, o1) once for each task's rows
 * [o0, o1) of member i, every token's outputs of those rows written, on the
 * thread that wrote them: work that needs whole groups of `align` rows (a
 * head's RoPE) runs inside the product's pool job instead of a job of its own.
 * Every member's n_out must be a multiple of align (> 0); each task's range
 * is. The epilogue may write only outputs of its own rows (or state it alone
 * owns). false as pc_matmul_batch, or when align does not divide an n_out. */
typedef void (*pc_matmul_epi)(void *ctx, int member, int64_t o0, int64_t o1);
bool pc_matmul_batch_then(pc_pool *pool, const pc_matmul_args *a, int n, int64_t align, pc_matmul_epi epi, void *ctx);

/* Elements [i0, i1) of every token's row of x (whole blocks of the activation
 * type pc_vec_dot_type(a->wt)) quantized into a->scratch as a's product reads
 * them: the same bytes as its own quantization; one setup for all tokens. So the job that computes x
 * can quantize it in its tasks, where it was written, and a's product then
 * runs with x_ready set, with no serial step of its own. false when a is not
 * usable (as pc_matmul) or the range is not whole blocks. */
bool pc_matmul_quantize_part(const pc_matmul_args *a, int64_t i0, int64_t i1);
/* Whether pc_matmul_batch(pool, a, n) accepts these arguments (then the _acc,
 * _then and part forms do too, given their own conditions) and a one-token job
 * of them is short: split into even tasks over the threads, not guided ones,
 * so a fixed share per thread (parts) balances as the job would. */
bool pc_matmul_short(const pc_matmul_args *a, int n);
/* The elements per block of a's activation type (1 when x is read as f32), or 0 when a is not usable. */
int64_t pc_matmul_x_block(const pc_matmul_args *a);

/* A run of weight bytes, as a product reads them (its packed row groups, or
 * its rows when it reads the tensor in place). */
typedef struct pc_wspan {
    const uint8_t *p;
    size_t bytes;
} pc_wspan;

/* The weight bytes that share a[0].part of a[0].parts of the job reads, in
 * the order its call reads them (pc_matmul_batch(_then) of n members, or with
 * paired the pc_matmul_swiglu(_then) pair, n = 2; align as given to the _then
 * forms, else 1): at most n spans into spans, empty ones left out. Returns
 * the count, or -1 when a is not a share (parts < 1, part out of range) of a
 * job those calls accept. What a thread reads next, so it can ask for it
 * while it would otherwise wait (prefetch.h). */
int pc_matmul_part_spans(const pc_matmul_args *a, int n, bool paired, int64_t align, pc_wspan *spans);

/* The feed-forward input: a[0] (gate) and a[1] (up), the same n_out, as
 * pc_matmul_batch(pool, a, 2) would, then a[0].y = pc_swiglu(a[0].y, a[1].y);
 * each task takes the same rows of both matrices, so the swiglu runs in the
 * same job. Bitwise the same as the two steps. false as pc_matmul_batch, or
 * when the shapes differ. */
bool pc_matmul_swiglu(pc_pool *pool, const pc_matmul_args *a);
/* The same, then epi(ctx, 0, o0, o1) for each task's rows of the swiglu's
 * output (a[0].y), whole groups of align rows, as pc_matmul_batch_then. */
bool pc_matmul_swiglu_then(pc_pool *pool, const pc_matmul_args *a, int64_t align, pc_matmul_epi epi, void *ctx);

#endif
