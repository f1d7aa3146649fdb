/* dot_scalar.c - portable dot products, the fallback for every weight type.
 *
 * Each block's integer dot product is exact in int32; the float work per
 * block is a fixed sequence (scale product, multiply, add in block order), so
 * a result depends only on the two rows. Float-type dots accumulate in double
 * (as ggml's scalar path does) and round once. No tiles: the matmul calls the
 * dot per output, which keeps y equal to pc_vec_dot by construction. */
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

static void dot_q4_0(int64_t n, float *s, const void *w, const void *x) {
    const pc_block_q4_0 *a = w;
    const pc_block_q8_0 *b = x;
    float sum = 0.f;
    for (int64_t i = 0; i < n / 32; i++) {
        int isum = 0;
        for (int j = 0; j < 16; j++)
            isum += ((a[i].qs[j] & 0xF) - 8) * b[i].qs[j] + ((a[i].qs[j] >> 4) - 8) * b[i].qs[j + 16];
        sum += (f16(a[i].d) * f16(b[i].d)) * (float)isum;
    }
    *s = sum;
}

static void dot_q4_1(int64_t n, float *s, const void *w, const void *x) {
    const pc_block_q4_1 *a = w;
    const pc_block_q8_1 *b = x;
    float sum = 0.f;
    for (int64_t i = 0; i < n / 32; i++) {
        int isum = 0;
        for (int j = 0; j < 16; j++) isum += (a[i].qs[j] & 0xF) * b[i].qs[j] + (a[i].qs[j] >> 4) * b[i].qs[j + 16];
        sum += (f16(a[i].d) * f16(b[i].d)) * (float)isum + f16(a[i].m) * f16(b[i].s);
    }
    *s = sum;
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
    float sum = 0.f;
    for (int64_t i = 0; i < n / 32; i++)
        sum += (f16(a[i].d) * f16(b[i].d)) * (float)q5_isum(a[i].qh, a[i].qs, b[i].qs, 16);
    *s = sum;
}

static void dot_q5_1(int64_t n, float *s, const void *w, const void *x) {
    const pc_block_q5_1 *a = w;
    const pc_block_q8_1 *b = x;
    float sum = 0.f;
    for (int64_t i = 0; i < n / 32; i++)
        sum += (f16(a[i].d) * f16(b[i].d)) * (float)q5_isum(a[i].qh, a[i].qs, b[i].qs, 0) + f16(a[i].m) * f16(b[i].s);
    *s = sum;
}

static void dot_q8_0(int64_t n, float *s, const void *w, const void *x) {
    const pc_block_q8_0 *a = w;
    const pc_block_q8_0 *b = x;
    float sum = 0.f;
    for (int64_t i = 0; i < n / 32; i++) {
        int isum = 0;
        for (int j = 0; j < 32; j++) isum += a[i].qs[j] * b[i].qs[j];
        sum += (f16(a[i].d) * f16(b[i].d)) * (float)isum;
    }
    *s = sum;
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

static void dot_q4_K(int64_t n, float *s, const void *w, const void *x) {
    const pc_block_q4_K *a = w;
    const pc_block_q8_K *b = x;
    float sum = 0.f;
    for (int64_t i = 0; i < n / PC_QK_K; i++) {
        int isum = 0;
        for (int j = 0; j < 8; j++) {
            uint8_t sc, m;
            pc_k4_scale_min(j, a[i].scales, &sc, &m);
            int sub = 0;
            for (int l = 0; l < 32; l++) sub += ((a[i].qs[(j / 2) * 32 + l] >> (4 * (j & 1))) & 0xF) * b[i].qs[32 * j + l];
            isum += sc * sub;
        }
        const int msum = k4_min_sum(a[i].scales, &b[i]);
        sum += (b[i].d * f16(a[i].d)) * (float)isum - (b[i].d * f16(a[i].dmin)) * (float)msum;
    }
    *s = sum;
}

static void dot_q5_K(int64_t n, float *s, const void *w, const void *x) {
    const pc_block_q5_K *a = w;
    const pc_block_q8_K *b = x;
    float sum = 0.f;
    for (int64_t i = 0; i < n / PC_QK_K; i++) {
        int isum = 0;
        for (int j = 0; j < 8; j++) {
            uint8_t sc, m;
            pc_k4_scale_min(j, a[i].scales, &sc, &m);
            int sub = 0;
            for (int l = 0; l < 32; l++) {
                const int q = ((a[i].qs[(j / 2) * 32 + l] >> (4 * (j & 1))) & 0xF) | (((a[i].qh[l] >> j) & 1) << 4);
                sub += q * b[i].qs[32 * j + l];
            }
            isum += sc * sub;
        }
        const int msum = k4_min_sum(a[i].scales, &b[i]);
        sum += (b[i].d * f16(a[i].d)) * (float)isum - (b[i].d * f16(a[i].dmin)) * (float)msum;
    }
    *s = sum;
}

static void dot_q6_K(int64_t n, float *s, const void *w, const void *x) {
    const pc_block_q6_K *a = w;
    const pc_block_q8_K *b = x;
    float sum = 0.f;
    for (int64_t i = 0; i < n / PC_QK_K; i++) {
        int isum = 0;
        for (int e = 0; e < PC_QK_K; e++) {
            const int h = e / 128, k = (e % 128) / 32, l = e % 32;
            const int lo = (a[i].ql[64 * h + (k & 1) * 32 + l] >> (4 * (k >> 1))) & 0xF;
            const int hi = (a[i].qh[32 * h + l] >> (2 * k)) & 3;
            isum += a[i].scales[e / 16] * ((lo | (hi << 4)) - 32) * b[i].qs[e];
        }
        sum += (b[i].d * f16(a[i].d)) * (float)isum;
    }
    *s = sum;
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
    *k = (pc_dot_kernel){.dot = f, .tile = NULL, .tile_r = 1, .tile_c = 1, .quant = NULL};
    return true;
}
