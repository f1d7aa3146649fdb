/* dot_scalar.c - portable dot products, the fallback for every weight type, and
 * the reference of the packed SIMD kernels.
 *
 * Each block's integer dot product is exact in int32. The packable types
 * (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K) then follow quant.h's
 * canonical float order with explicit fmaf, which the packed kernels repeat lane
 * by lane: so these functions are what every SIMD path must give, bit for bit,
 * and the SIMD paths hand them out as their own single dot. Q2_K and Q3_K keep
 * a fixed sequence of their own; float-type dots accumulate in double (as
 * ggml's scalar path does) and round once. */
#include <math.h>

#include "kernels/cpu/quant_impl.h"

static inline float f16(pc_f16 h) { return pc_f16_to_f32(h); }

static void dot_f32(int64_t n, float *s, const void *w, const void *x) {
    const float *a = w, *b = x;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) sum += (double)a[i] * (double)b[i];
    *s = (float)sum;
}

static void dot_f16(int64_t n, float *s, const void *w, const void *x) {
    const pc_f16 *a = w, *b = x;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) sum += (double)pc_f16_to_f32(a[i]) * (double)pc_f16_to_f32(b[i]);
    *s = (float)sum;
}

static void dot_bf16(int64_t n, float *s, const void *w, const void *x) {
    const pc_bf16 *a = w, *b = x;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) sum += (double)pc_bf16_to_f32(a[i]) * (double)pc_bf16_to_f32(b[i]);
    *s = (float)sum;
}

/* The 32-element types in the canonical order (quant.h): per block,
 * acc = fma(dw * dx, isum, acc), then for the min types acc = fma(m, s, acc). */
static void dot_q4_0(int64_t n, float *s, const void *w, const void *x) {
    const pc_block_q4_0 *a = w;
    const pc_block_q8_0 *b = x;
    float acc = 0.f;
    for (int64_t i = 0; i < n / 32; i++) {
        int isum = 0;
        for (int j = 0; j < 16; j++)
            isum += ((a[i].qs[j] & 0xF) - 8) * b[i].qs[j] + ((a[i].qs[j] >> 4) - 8) * b[i].qs[j + 16];
        acc = fmaf(f16(a[i].d) * f16(b[i].d), (float)isum, acc);
    }
    *s = acc;
}

static void dot_q4_1(int64_t n, float *s, const void *w, const void *x) {
    const pc_block_q4_1 *a = w;
    const pc_block_q8_1 *b = x;
    float acc = 0.f;
    for (int64_t i = 0; i < n / 32; i++) {
        int isum = 0;
        for (int j = 0; j < 16; j++) isum += (a[i].qs[j] & 0xF) * b[i].qs[j] + (a[i].qs[j] >> 4) * b[i].qs[j + 16];
        acc = fmaf(f16(a[i].d) * f16(b[i].d), (float)isum, acc);
        acc = fmaf(f16(a[i].m), f16(b[i].s), acc);
    }
    *s = acc;
}

/* Integer dot of a Q5 block's 5-bit values (minus offset) with 32 int8 activations. */
static int q5_isum(const uint8_t qh4[4], const uint8_t qs[16], const int8_t *y, int offset) {
    uint32_t qh;
    memcpy(&qh, qh4, 4);
    int isum = 0;
    for (int j = 0; j < 16; j++) {
        const int lo = (qs[j] & 0xF) | (int)(((qh >> j) & 1) << 4);
        const int hi = (qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1) << 4);
        isum += (lo - offset) * y[j] + (hi - offset) * y[j + 16];
    }
    return isum;
}

static void dot_q5_0(int64_t n, float *s, const void *w, const void *x) {
    const pc_block_q5_0 *a = w;
    const pc_block_q8_0 *b = x;
    float acc = 0.f;
    for (int64_t i = 0; i < n / 32; i++)
        acc = fmaf(f16(a[i].d) * f16(b[i].d), (float)q5_isum(a[i].qh, a[i].qs, b[i].qs, 16), acc);
    *s = acc;
}

static void dot_q5_1(int64_t n, float *s, const void *w, const void *x) {
    const pc_block_q5_1 *a = w;
    const pc_block_q8_1 *b = x;
    float acc = 0.f;
    for (int64_t i = 0; i < n / 32; i++) {
        acc = fmaf(f16(a[i].d) * f16(b[i].d), (float)q5_isum(a[i].qh, a[i].qs, b[i].qs, 0), acc);
        acc = fmaf(f16(a[i].m), f16(b[i].s), acc);
    }
    *s = acc;
}

static void dot_q8_0(int64_t n, float *s, const void *w, const void *x) {
    const pc_block_q8_0 *a = w;
    const pc_block_q8_0 *b = x;
    float acc = 0.f;
    for (int64_t i = 0; i < n / 32; i++) {
        int isum = 0;
        for (int j = 0; j < 32; j++) isum += a[i].qs[j] * b[i].qs[j];
        acc = fmaf(f16(a[i].d) * f16(b[i].d), (float)isum, acc);
    }
    *s = acc;
}

/* Sum of q8 over sub-block s of 16 values, from the precomputed bsums. */
static inline int bsum16(const pc_block_q8_K *b, int s) { return b->bsums[s]; }

static void dot_q2_K(int64_t n, float *s, const void *w, const void *x) {
    const pc_block_q2_K *a = w;
    const pc_block_q8_K *b = x;
    float sum = 0.f;
    for (int64_t i = 0; i < n / PC_QK_K; i++) {
        int isum = 0, msum = 0;
        for (int e = 0; e < PC_QK_K; e++) {
            const int q = (a[i].qs[(e / 128) * 32 + e % 32] >> (2 * ((e % 128) / 32))) & 3;
            isum += (a[i].scales[e / 16] & 0xF) * q * b[i].qs[e];
        }
        for (int sb = 0; sb < 16; sb++) msum += (a[i].scales[sb] >> 4) * bsum16(&b[i], sb);
        sum += (b[i].d * f16(a[i].d)) * (float)isum - (b[i].d * f16(a[i].dmin)) * (float)msum;
    }
    *s = sum;
}

static void dot_q3_K(int64_t n, float *s, const void *w, const void *x) {
    const pc_block_q3_K *a = w;
    const pc_block_q8_K *b = x;
    int8_t sc[16];
    float sum = 0.f;
    for (int64_t i = 0; i < n / PC_QK_K; i++) {
        pc_q3k_scales(a[i].scales, sc);
        int isum = 0;
        for (int e = 0; e < PC_QK_K; e++) {
            const int lo = (a[i].qs[(e / 128) * 32 + e % 32] >> (2 * ((e % 128) / 32))) & 3;
            const int q = lo - (((a[i].hmask[e % 32] >> (e / 32)) & 1) ? 0 : 4);
            isum += sc[e / 16] * q * b[i].qs[e];
        }
        sum += (b[i].d * f16(a[i].d)) * (float)isum;
    }
    *s = sum;
}

/* Sum over the 8 sub-blocks of min * (sum of the sub-block's 32 activations). */
static int k4_min_sum(const uint8_t scales[12], const pc_block_q8_K *b) {
    int msum = 0;
    for (int j = 0; j < 8; j++) {
        uint8_t sc, m;
        pc_k4_scale_min(j, scales, &sc, &m);
        msum += m * (bsum16(b, 2 * j) + bsum16(b, 2 * j + 1));
    }
    return msum;
}

/* Q4_K and Q5_K in the canonical order (quant.h): per super-block,
 * t = sum over sub-blocks j of fma(d * sc_j, isum_j, t), t = fma(-dmin, msum, t),
 * acc = fma(t, dx, acc). FIVE adds Q5_K's bit 4 (bit j of qh[l] for element 32j + l). */
static float dot_k4(int64_t n, const uint8_t *w, size_t wb, const pc_block_q8_K *b, bool five) {
    float acc = 0.f;
    for (int64_t i = 0; i < n / PC_QK_K; i++, w += wb) {
        const pc_block_q4_K *a4 = (const pc_block_q4_K *)w;
        const pc_block_q5_K *a5 = (const pc_block_q5_K *)w;
        const uint8_t *scales = five ? a5->scales : a4->scales, *qs = five ? a5->qs : a4->qs;
        const float d = f16(five ? a5->d : a4->d), dmin = f16(five ? a5->dmin : a4->dmin);
        float t = 0.f;
        for (int j = 0; j < 8; j++) {
            uint8_t sc, m;
            pc_k4_scale_min(j, scales, &sc, &m);
            int isum = 0;
            for (int l = 0; l < 32; l++) {
                int q = (qs[(j / 2) * 32 + l] >> (4 * (j & 1))) & 0xF;
                if (five) q |= ((a5->qh[l] >> j) & 1) << 4;
                isum += q * b[i].qs[32 * j + l];
            }
            t = fmaf(d * (float)sc, (float)isum, t);
        }
        t = fmaf(-dmin, (float)k4_min_sum(scales, &b[i]), t);
        acc = fmaf(t, b[i].d, acc);
    }
    return acc;
}

static void dot_q4_K(int64_t n, float *s, const void *w, const void *x) {
    *s = dot_k4(n, w, sizeof(pc_block_q4_K), x, false);
}

static void dot_q5_K(int64_t n, float *s, const void *w, const void *x) {
    *s = dot_k4(n, w, sizeof(pc_block_q5_K), x, true);
}

/* Q6_K in the canonical order: per super-block, t = sum over the 16 sub-blocks
 * of fma(d * sc_j, isum_j, t) with isum_j over q in 0..63 less 32 * bsum_j, then
 * acc = fma(t, dx, acc). */
static void dot_q6_K(int64_t n, float *s, const void *w, const void *x) {
    const pc_block_q6_K *a = w;
    const pc_block_q8_K *b = x;
    float acc = 0.f;
    for (int64_t i = 0; i < n / PC_QK_K; i++) {
        const float d = f16(a[i].d);
        int q[PC_QK_K]; /* the 6-bit values, element order: h halves of 128, k groups of 32 */
        for (int h = 0; h < 2; h++)
            for (int k = 0; k < 4; k++)
                for (int l = 0; l < 32; l++) {
                    const int lo = (a[i].ql[64 * h + (k & 1) * 32 + l] >> (4 * (k >> 1))) & 0xF;
                    q[128 * h + 32 * k + l] = lo | (((a[i].qh[32 * h + l] >> (2 * k)) & 3) << 4);
                }
        float t = 0.f;
        for (int j = 0; j < 16; j++) {
            int isum = -32 * bsum16(&b[i], j);
            for (int e = 16 * j; e < 16 * j + 16; e++) isum += q[e] * b[i].qs[e];
            t = fmaf(d * (float)a[i].scales[j], (float)isum, t);
        }
        acc = fmaf(t, b[i].d, acc);
    }
    *s = acc;
}

bool pc_dot_scalar_get(pc_type wt, pc_dot_kernel *k) {
    pc_vec_dot_fn f;
    switch (wt) {
    case PC_TYPE_F32: f = dot_f32; break;
    case PC_TYPE_F16: f = dot_f16; break;
    case PC_TYPE_BF16: f = dot_bf16; break;
    case PC_TYPE_Q4_0: f = dot_q4_0; break;
    case PC_TYPE_Q4_1: f = dot_q4_1; break;
    case PC_TYPE_Q5_0: f = dot_q5_0; break;
    case PC_TYPE_Q5_1: f = dot_q5_1; break;
    case PC_TYPE_Q8_0: f = dot_q8_0; break;
    case PC_TYPE_Q2_K: f = dot_q2_K; break;
    case PC_TYPE_Q3_K: f = dot_q3_K; break;
    case PC_TYPE_Q4_K: f = dot_q4_K; break;
    case PC_TYPE_Q5_K: f = dot_q5_K; break;
    case PC_TYPE_Q6_K: f = dot_q6_K; break;
    default: return false;
    }
    *k = (pc_dot_kernel){.dot = f, .quant = NULL, .gemm = NULL, .gemm_tokens = 1, .prep = NULL, .gemm_prep = NULL,
                         .prep_block = 0};
    return true;
}
