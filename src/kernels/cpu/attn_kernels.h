/* attn_kernels.h - the inner loops of attention.c, one table per SIMD path.
 *
 * Every path computes each number with the same operations in the same
 * order, so the paths give the same bits (see attention.c for the contract):
 *   score  = (fmaf chain over d = 0..hd-1 of q[d] * k[d], from 0) * scale;
 *   e      = exp(score - max) by one polynomial (exp_neg), 0 below -80;
 *   sum    = sum of (int32)(e * 2^30) in int64: associative, so lanes and
 *            block boundaries cannot change it;
 *   p      = f16(e * inv), kept as f32;
 *   out[d] = fmaf chain of p * v[d] over the keys in context order.
 * A masked key has p = 0 and adds exactly nothing: fmaf(0, v, acc) = acc for
 * finite v, and acc is never -0 (it starts at +0, and an exact-zero sum of
 * nonzero terms rounds to +0). */
#ifndef PC_KERNELS_CPU_ATTN_KERNELS_H
#define PC_KERNELS_CPU_ATTN_KERNELS_H

#include <stdint.h>

#include "kernels/cpu/quant.h"
#include "kv/kv.h"

enum {
    PC_ATTN_KB = PC_KV_BLOCK,     /* keys per stored block */
    PC_ATTN_KU = 4 * PC_KV_BLOCK, /* keys per unit: two zmm of scores per query row */
    PC_ATTN_RG = 8,               /* query rows per scores call */
};

#define PC_ATTN_FIX_SCALE 1073741824.0f /* 2^30: the fixed point of the softmax sum */

typedef struct pc_attn_kernels {
    /* dst[i * ds + l] = scale * score(q row i, key l) for i < RG, l < KU (all
     * KU lanes are written; lanes past a short unit's keys are garbage). */
    void (*scores)(float *dst, int64_t ds, const float *q, const float *kt, int32_t hd, float scale);
    /* nblk stored key blocks [hd][KB] f16, bstride elements apart, into
     * kt[hd][KU] f32; the lanes of missing blocks (nblk < KU / KB) are zero. */
    void (*k_unit)(float *kt, const pc_f16 *b0, int64_t bstride, int32_t nblk, int32_t hd);
    /* nb value rows (hd f16 each, stride elements apart) into vb[nb][hd] f32. */
    void (*v_unit)(float *vb, const pc_f16 *v, int64_t stride, int32_t nb, int32_t hd);
    /* acc[r * hd + d] += p[r * ps + l] * vb[l * hd + d] over l < nb in order, for r < rows. */
    void (*pv)(float *acc, const float *p, int64_t ps, const float *vb, int32_t nb, int32_t rows, int32_t hd);
    /* Small tiles (decode): the same as k_unit then scores, but the keys go
     * from the stored f16 blocks straight into registers and only rows
     * (1..RG) query rows are computed and written: a tile of a few rows reads
     * each key once either way, and the f32 copy cost more than the products. */
    void (*scores_h)(float *dst, int64_t ds, const float *q, const pc_f16 *b0, int64_t bstride, int32_t nblk,
                     int32_t hd, float scale, int32_t rows);
    /* The same as v_unit then pv, from the f16 value rows (stride elements
     * apart) directly; for rows <= RG, where each value row is converted once. */
    void (*pv_h)(float *acc, const float *p, int64_t ps, const pc_f16 *v, int64_t stride, int32_t nb, int32_t rows,
                 int32_t hd);
    float (*max)(const float *s, int64_t n);
    /* s[j] = exp(s[j] - mx) in place; returns the fixed-point sum. */
    int64_t (*exp_sum)(float *s, int64_t n, float mx);
    /* s[j] = f16(s[j] * inv), kept as f32. */
    void (*scale_round)(float *s, int64_t n, float inv);
} pc_attn_kernels;

/* The table of a path; isa must not exceed pc_isa_detect(). */
pc_attn_kernels pc_attn_kernels_get(pc_isa isa);

/* Per-path tables (a path without a kernel of its own borrows the narrower one). */
pc_attn_kernels pc_attn_kernels_scalar(void);
pc_attn_kernels pc_attn_kernels_avx2(void);
pc_attn_kernels pc_attn_kernels_avx512(void);

/* Shared by the paths: exp(x) for x <= 0, and the scalar kernels the vector
 * paths use for tails and odd head sizes. */
float pc_attn_exp_neg(float x);
void pc_attn_pv_scalar(float *acc, const float *p, int64_t ps, const float *vb, int32_t nb, int32_t rows, int32_t hd);
void pc_attn_pv_h_scalar(float *acc, const float *p, int64_t ps, const pc_f16 *v, int64_t stride, int32_t nb,
                         int32_t rows, int32_t hd);

#endif
