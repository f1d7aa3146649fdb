/* attn_scalar.c - the plain C instance of the attention kernels: the reference
 * the SIMD paths must equal bit for bit, and the path of non-x86 machines. */
#include <math.h>

#include "kernels/cpu/attn_kernels.h"

enum { KB = PC_ATTN_KB, KU = PC_ATTN_KU, RG = PC_ATTN_RG };

/* Cephes' expf polynomial with fused steps; e^-80 ~ 2e-35 keeps results normal. */
float pc_attn_exp_neg(float x) {
    if (x < -80.0f) return 0.0f;
    const float n = nearbyintf(x * 1.44269504088896341f);
    float r = fmaf(n, -0.693359375f, x);
    r = fmaf(n, 2.12194440e-4f, r);
    float y = 1.9875691500e-4f;
    y = fmaf(y, r, 1.3981999507e-3f);
    y = fmaf(y, r, 8.3334519073e-3f);
    y = fmaf(y, r, 4.1665795894e-2f);
    y = fmaf(y, r, 1.6666665459e-1f);
    y = fmaf(y, r, 5.0000001201e-1f);
    y = fmaf(y, r * r, r);
    y = y + 1.0f;
    return ldexpf(y, (int)n);
}

static void scores_scalar(float *dst, int64_t ds, const float *q, const float *kt, int32_t hd, float scale) {
    for (int32_t i = 0; i < RG; i++)
        for (int32_t l = 0; l < KU; l++) {
            float acc = 0.0f;
            for (int32_t d = 0; d < hd; d++) acc = fmaf(q[i * hd + d], kt[d * KU + l], acc);
            dst[i * ds + l] = acc * scale;
        }
}

static void scores_h_scalar(float *dst, int64_t ds, const float *q, const pc_f16 *b0, int64_t bstride, int32_t nblk,
                            int32_t hd, float scale, int32_t rows) {
    for (int32_t i = 0; i < rows; i++)
        for (int32_t l = 0; l < KU; l++) {
            const int32_t b = l / KB;
            float acc = 0.0f;
            for (int32_t d = 0; d < hd; d++)
                acc = fmaf(q[i * hd + d], b < nblk ? pc_f16_to_f32(b0[b * bstride + d * KB + l % KB]) : 0.0f, acc);
            dst[i * ds + l] = acc * scale;
        }
}

static void k_unit_scalar(float *kt, const pc_f16 *b0, int64_t bstride, int32_t nblk, int32_t hd) {
    for (int32_t b = 0; b < KU / KB; b++)
        for (int32_t d = 0; d < hd; d++)
            for (int32_t l = 0; l < KB; l++)
                kt[d * KU + b * KB + l] = b < nblk ? pc_f16_to_f32(b0[b * bstride + d * KB + l]) : 0.0f;
}

static void v_unit_scalar(float *vb, const pc_f16 *v, int64_t stride, int32_t nb, int32_t hd) {
    for (int32_t l = 0; l < nb; l++)
        for (int32_t d = 0; d < hd; d++) vb[l * hd + d] = pc_f16_to_f32(v[l * stride + d]);
}

void pc_attn_pv_scalar(float *acc, const float *p, int64_t ps, const float *vb, int32_t nb, int32_t rows, int32_t hd) {
    for (int32_t r = 0; r < rows; r++)
        for (int32_t l = 0; l < nb; l++)
            for (int32_t d = 0; d < hd; d++) acc[r * hd + d] = fmaf(p[r * ps + l], vb[l * hd + d], acc[r * hd + d]);
}

void pc_attn_pv_h_scalar(float *acc, const float *p, int64_t ps, const pc_f16 *v, int64_t stride, int32_t nb,
                         int32_t rows, int32_t hd) {
    for (int32_t r = 0; r < rows; r++)
        for (int32_t l = 0; l < nb; l++)
            for (int32_t d = 0; d < hd; d++)
                acc[r * hd + d] = fmaf(p[r * ps + l], pc_f16_to_f32(v[l * stride + d]), acc[r * hd + d]);
}

/* Max is exact in any order, so the vector versions agree with this one. */
static float max_scalar(const float *s, int64_t n) {
    float mx = -INFINITY;
    for (int64_t j = 0; j < n; j++) mx = s[j] > mx ? s[j] : mx;
    return mx;
}

static int64_t exp_sum_scalar(float *s, int64_t n, float mx) {
    int64_t sum = 0;
    for (int64_t j = 0; j < n; j++) {
        const float e = pc_attn_exp_neg(s[j] - mx);
        s[j] = e;
        sum += (int64_t)(int32_t)(e * PC_ATTN_FIX_SCALE);
    }
    return sum;
}

static void scale_round_scalar(float *s, int64_t n, float inv) {
    for (int64_t j = 0; j < n; j++) s[j] = pc_f16_to_f32(pc_f32_to_f16(s[j] * inv));
}

pc_attn_kernels pc_attn_kernels_scalar(void) {
    return (pc_attn_kernels){.scores = scores_scalar,
                             .k_unit = k_unit_scalar,
                             .v_unit = v_unit_scalar,
                             .pv = pc_attn_pv_scalar,
                             .scores_h = scores_h_scalar,
                             .pv_h = pc_attn_pv_h_scalar,
                             .max = max_scalar,
                             .exp_sum = exp_sum_scalar,
                             .scale_round = scale_round_scalar};
}

pc_attn_kernels pc_attn_kernels_get(pc_isa isa) {
    if (isa >= PC_ISA_AVX512) return pc_attn_kernels_avx512();
    if (isa >= PC_ISA_AVX2) return pc_attn_kernels_avx2();
    return pc_attn_kernels_scalar();
}
