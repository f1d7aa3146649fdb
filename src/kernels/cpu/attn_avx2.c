/* attn_avx2.c - the AVX2 (with FMA and F16C) instance of the attention kernels.
 * Same operations in the same order as attn_scalar.c, 8 lanes at a time. Only
 * the code between the target push and pop is compiled for AVX2;
 * pc_attn_kernels_avx2 on a non-x86 machine returns the scalar table. */
#include <math.h>

#include "kernels/cpu/attn_kernels.h"

#if defined(__x86_64__)
#include <immintrin.h>

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
#endif

enum { KB = PC_ATTN_KB, KU = PC_ATTN_KU, RG = PC_ATTN_RG };

/* Four passes of 2 rows x 32 lanes: 8 accumulators fit the 16 ymm registers. */
static void scores_avx2(float *dst, int64_t ds, const float *q, const float *kt, int32_t hd, float scale) {
    const __m256 vs = _mm256_set1_ps(scale);
    for (int32_t r0 = 0; r0 < RG; r0 += 2) {
        __m256 acc[2][4];
        for (int32_t i = 0; i < 2; i++)
            for (int32_t c = 0; c < 4; c++) acc[i][c] = _mm256_setzero_ps();
        for (int32_t d = 0; d < hd; d++) {
            const float *k = kt + d * KU;
            const __m256 k0 = _mm256_load_ps(k), k1 = _mm256_load_ps(k + 8), k2 = _mm256_load_ps(k + 16),
                         k3 = _mm256_load_ps(k + 24);
            for (int32_t i = 0; i < 2; i++) {
                const __m256 qv = _mm256_broadcast_ss(q + (r0 + i) * hd + d);
                acc[i][0] = _mm256_fmadd_ps(qv, k0, acc[i][0]);
                acc[i][1] = _mm256_fmadd_ps(qv, k1, acc[i][1]);
                acc[i][2] = _mm256_fmadd_ps(qv, k2, acc[i][2]);
                acc[i][3] = _mm256_fmadd_ps(qv, k3, acc[i][3]);
            }
        }
        for (int32_t i = 0; i < 2; i++)
            for (int32_t c = 0; c < 4; c++) _mm256_storeu_ps(dst + (r0 + i) * ds + 8 * c, _mm256_mul_ps(acc[i][c], vs));
    }
}

/* Row pairs of scores_h: the keys of row d converted in registers for each pair. */
static inline __attribute__((always_inline)) void scores_h_rows_avx2(float *dst, int64_t ds, const float *q,
                                                                     const pc_f16 *b0, int64_t bstride, int32_t nblk,
                                                                     int32_t hd, float scale, const int NR) {
    __m256 acc[2][KU / KB];
    for (int i = 0; i < NR; i++)
        for (int c = 0; c < KU / KB; c++) acc[i][c] = _mm256_setzero_ps();
    for (int32_t d = 0; d < hd; d++) {
        __m256 k[KU / KB];
        for (int32_t b = 0; b < KU / KB; b++)
            k[b] = b < nblk ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(b0 + b * bstride + d * KB)))
                            : _mm256_setzero_ps();
        for (int i = 0; i < NR; i++) {
            const __m256 qv = _mm256_broadcast_ss(q + i * hd + d);
            for (int c = 0; c < KU / KB; c++) acc[i][c] = _mm256_fmadd_ps(qv, k[c], acc[i][c]);
        }
    }
    const __m256 vs = _mm256_set1_ps(scale);
    for (int i = 0; i < NR; i++)
        for (int c = 0; c < KU / KB; c++) _mm256_storeu_ps(dst + i * ds + 8 * c, _mm256_mul_ps(acc[i][c], vs));
}

static void scores_h_avx2(float *dst, int64_t ds, const float *q, const pc_f16 *b0, int64_t bstride, int32_t nblk,
                          int32_t hd, float scale, int32_t rows) {
    int32_t r = 0;
    for (; r + 2 <= rows; r += 2) scores_h_rows_avx2(dst + r * ds, ds, q + r * hd, b0, bstride, nblk, hd, scale, 2);
    if (r < rows) scores_h_rows_avx2(dst + r * ds, ds, q + r * hd, b0, bstride, nblk, hd, scale, 1);
}

static void k_unit_avx2(float *kt, const pc_f16 *b0, int64_t bstride, int32_t nblk, int32_t hd) {
    for (int32_t d = 0; d < hd; d++)
        for (int32_t b = 0; b < KU / KB; b++)
            _mm256_store_ps(kt + d * KU + b * KB,
                            b < nblk ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(b0 + b * bstride + d * KB)))
                                     : _mm256_setzero_ps());
}

static void v_unit_avx2(float *vb, const pc_f16 *v, int64_t stride, int32_t nb, int32_t hd) {
    for (int32_t l = 0; l < nb; l++) {
        const pc_f16 *src = v + l * stride;
        float *dst = vb + l * hd;
        int32_t d = 0;
        for (; d + 8 <= hd; d += 8) _mm256_storeu_ps(dst + d, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + d))));
        for (; d < hd; d++) dst[d] = pc_f16_to_f32(src[d]);
    }
}

/* NR rows x 32 dims of accumulators stay in registers over the unit's keys. */
static inline __attribute__((always_inline)) void pv_rows_avx2(float *acc, const float *p, int64_t ps, const float *vb,
                                                               int32_t nb, int32_t hd, int32_t d0, const int NR) {
    __m256 a[2][4];
    for (int i = 0; i < NR; i++)
        for (int c = 0; c < 4; c++) a[i][c] = _mm256_loadu_ps(acc + i * hd + d0 + 8 * c);
    for (int32_t l = 0; l < nb; l++) {
        const float *v = vb + l * hd + d0;
        const __m256 v0 = _mm256_loadu_ps(v), v1 = _mm256_loadu_ps(v + 8), v2 = _mm256_loadu_ps(v + 16),
                     v3 = _mm256_loadu_ps(v + 24);
        for (int i = 0; i < NR; i++) {
            const __m256 pl = _mm256_broadcast_ss(p + i * ps + l);
            a[i][0] = _mm256_fmadd_ps(pl, v0, a[i][0]);
            a[i][1] = _mm256_fmadd_ps(pl, v1, a[i][1]);
            a[i][2] = _mm256_fmadd_ps(pl, v2, a[i][2]);
            a[i][3] = _mm256_fmadd_ps(pl, v3, a[i][3]);
        }
    }
    for (int i = 0; i < NR; i++)
        for (int c = 0; c < 4; c++) _mm256_storeu_ps(acc + i * hd + d0 + 8 * c, a[i][c]);
}

static void pv_avx2(float *acc, const float *p, int64_t ps, const float *vb, int32_t nb, int32_t rows, int32_t hd) {
    if (hd % 32 != 0) {
        pc_attn_pv_scalar(acc, p, ps, vb, nb, rows, hd);
        return;
    }
    for (int32_t d0 = 0; d0 < hd; d0 += 32) {
        int32_t r = 0;
        for (; r + 2 <= rows; r += 2) pv_rows_avx2(acc + r * hd, p + r * ps, ps, vb, nb, hd, d0, 2);
        if (r < rows) pv_rows_avx2(acc + r * hd, p + r * ps, ps, vb, nb, hd, d0, 1);
    }
}

/* pv_rows_avx2 with each f16 value row converted in registers. */
static inline __attribute__((always_inline)) void pv_h_rows_avx2(float *acc, const float *p, int64_t ps,
                                                                 const pc_f16 *v, int64_t stride, int32_t nb,
                                                                 int32_t hd, int32_t d0, const int NR) {
    __m256 a[2][4], x[4];
    for (int i = 0; i < NR; i++)
        for (int c = 0; c < 4; c++) a[i][c] = _mm256_loadu_ps(acc + i * hd + d0 + 8 * c);
    for (int32_t l = 0; l < nb; l++) {
        for (int c = 0; c < 4; c++)
            x[c] = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(v + l * stride + d0 + 8 * c)));
        for (int i = 0; i < NR; i++) {
            const __m256 pl = _mm256_broadcast_ss(p + i * ps + l);
            for (int c = 0; c < 4; c++) a[i][c] = _mm256_fmadd_ps(pl, x[c], a[i][c]);
        }
    }
    for (int i = 0; i < NR; i++)
        for (int c = 0; c < 4; c++) _mm256_storeu_ps(acc + i * hd + d0 + 8 * c, a[i][c]);
}

static void pv_h_avx2(float *acc, const float *p, int64_t ps, const pc_f16 *v, int64_t stride, int32_t nb,
                      int32_t rows, int32_t hd) {
    if (hd % 32 != 0) {
        pc_attn_pv_h_scalar(acc, p, ps, v, stride, nb, rows, hd);
        return;
    }
    for (int32_t d0 = 0; d0 < hd; d0 += 32) {
        int32_t r = 0;
        for (; r + 2 <= rows; r += 2) pv_h_rows_avx2(acc + r * hd, p + r * ps, ps, v, stride, nb, hd, d0, 2);
        if (r < rows) pv_h_rows_avx2(acc + r * hd, p + r * ps, ps, v, stride, nb, hd, d0, 1);
    }
}

static float max_avx2(const float *s, int64_t n) {
    __m256 m = _mm256_set1_ps(-INFINITY);
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) m = _mm256_max_ps(m, _mm256_loadu_ps(s + j));
    float lanes[8];
    _mm256_storeu_ps(lanes, m);
    float mx = -INFINITY;
    for (int i = 0; i < 8; i++) mx = lanes[i] > mx ? lanes[i] : mx;
    for (; j < n; j++) mx = s[j] > mx ? s[j] : mx;
    return mx;
}

static void scale_round_avx2(float *s, int64_t n, float inv) {
    const __m256 vi = _mm256_set1_ps(inv);
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
        const __m128i h = _mm256_cvtps_ph(_mm256_mul_ps(_mm256_loadu_ps(s + j), vi), _MM_FROUND_TO_NEAREST_INT);
        _mm256_storeu_ps(s + j, _mm256_cvtph_ps(h));
    }
    for (; j < n; j++) s[j] = pc_f16_to_f32(pc_f32_to_f16(s[j] * inv));
}

static __m256 exp_neg_avx2(__m256 x) {
    const __m256 dead = _mm256_cmp_ps(x, _mm256_set1_ps(-80.0f), _CMP_LT_OQ);
    x = _mm256_max_ps(x, _mm256_set1_ps(-80.0f));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fmadd_ps(n, _mm256_set1_ps(-0.693359375f), x);
    r = _mm256_fmadd_ps(n, _mm256_set1_ps(2.12194440e-4f), r);
    __m256 y = _mm256_set1_ps(1.9875691500e-4f);
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.3981999507e-3f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(8.3334519073e-3f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(4.1665795894e-2f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.6666665459e-1f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(5.0000001201e-1f));
    y = _mm256_fmadd_ps(y, _mm256_mul_ps(r, r), r);
    y = _mm256_add_ps(y, _mm256_set1_ps(1.0f));
    /* y * 2^n through the exponent bits (y in [0.5, 2), n >= -116 here: never subnormal) */
    const __m256i e = _mm256_slli_epi32(_mm256_cvtps_epi32(n), 23);
    y = _mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(y), e));
    return _mm256_andnot_ps(dead, y);
}

static int64_t exp_sum_avx2(float *s, int64_t n, float mx) {
    const __m256 vmx = _mm256_set1_ps(mx), fix = _mm256_set1_ps(PC_ATTN_FIX_SCALE);
    __m256i sum = _mm256_setzero_si256();
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
        const __m256 e = exp_neg_avx2(_mm256_sub_ps(_mm256_loadu_ps(s + j), vmx));
        _mm256_storeu_ps(s + j, e);
        const __m256i q = _mm256_cvttps_epi32(_mm256_mul_ps(e, fix));
        sum = _mm256_add_epi64(sum, _mm256_cvtepi32_epi64(_mm256_castsi256_si128(q)));
        sum = _mm256_add_epi64(sum, _mm256_cvtepi32_epi64(_mm256_extracti128_si256(q, 1)));
    }
    int64_t lanes[4];
    _mm256_storeu_si256((__m256i *)lanes, sum);
    int64_t total = lanes[0] + lanes[1] + lanes[2] + lanes[3];
    for (; j < n; j++) {
        const float e = pc_attn_exp_neg(s[j] - mx);
        s[j] = e;
        total += (int64_t)(int32_t)(e * PC_ATTN_FIX_SCALE);
    }
    return total;
}

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

pc_attn_kernels pc_attn_kernels_avx2(void) {
    return (pc_attn_kernels){.scores = scores_avx2,
                             .k_unit = k_unit_avx2,
                             .v_unit = v_unit_avx2,
                             .pv = pv_avx2,
                             .scores_h = scores_h_avx2,
                             .pv_h = pv_h_avx2,
                             .max = max_avx2,
                             .exp_sum = exp_sum_avx2,
                             .scale_round = scale_round_avx2};
}

#else
pc_attn_kernels pc_attn_kernels_avx2(void) { return pc_attn_kernels_scalar(); }
#endif
