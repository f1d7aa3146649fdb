/* attn_avx512.c - the AVX-512 instance of the attention kernels: the same
 * operations in the same order as attn_scalar.c, 16 lanes at a time. Used for
 * PC_ISA_AVX512 and wider; only the code between the target push and pop is
 * compiled for AVX-512, and pc_attn_kernels_avx512 on a non-x86 machine
 * returns the scalar table. */
#include <math.h>

#include "kernels/cpu/attn_kernels.h"

#if defined(__x86_64__)
#include <immintrin.h>

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,avx512f,avx512vl"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c,avx512f,avx512vl")
#endif

enum { KB = PC_ATTN_KB, KU = PC_ATTN_KU, RG = PC_ATTN_RG, PV_ROWS = 6 };

/* One key row's step of NR score rows, and the scaled store after the last:
 * shared by the f32-unit and the f16 paths so that both give the same bits. */
static inline __attribute__((always_inline)) void score_step_avx512(__m512 *lo, __m512 *hi, const float *q, int32_t hd,
                                                                    int32_t d, __m512 k0, __m512 k1, const int NR) {
    for (int i = 0; i < NR; i++) {
        const __m512 qv = _mm512_set1_ps(q[i * hd + d]);
        lo[i] = _mm512_fmadd_ps(qv, k0, lo[i]);
        hi[i] = _mm512_fmadd_ps(qv, k1, hi[i]);
    }
}

static inline __attribute__((always_inline)) void score_store_avx512(float *dst, int64_t ds, const __m512 *lo,
                                                                     const __m512 *hi, float scale, const int NR) {
    const __m512 vs = _mm512_set1_ps(scale);
    for (int i = 0; i < NR; i++) {
        _mm512_storeu_ps(dst + i * ds, _mm512_mul_ps(lo[i], vs));
        _mm512_storeu_ps(dst + i * ds + 16, _mm512_mul_ps(hi[i], vs));
    }
}

/* RG rows x KU lanes: two zmm accumulators per row, the key row loaded once per d. */
static void scores_avx512(float *dst, int64_t ds, const float *q, const float *kt, int32_t hd, float scale) {
    __m512 lo[RG], hi[RG];
    for (int32_t i = 0; i < RG; i++) lo[i] = hi[i] = _mm512_setzero_ps();
    for (int32_t d = 0; d < hd; d++)
        score_step_avx512(lo, hi, q, hd, d, _mm512_load_ps(kt + d * KU), _mm512_load_ps(kt + d * KU + 16), RG);
    score_store_avx512(dst, ds, lo, hi, scale, RG);
}

/* Row d of the unit's stored blocks as two zmm of 16 keys; the lanes of
 * missing blocks (past nblk) are zero, as k_unit leaves them. */
static inline __attribute__((always_inline)) void key_row_avx512(__m512 *k0, __m512 *k1, const pc_f16 *b0,
                                                                 int64_t bstride, int32_t nblk, int32_t d) {
    __m128i h[KU / KB];
    for (int32_t b = 0; b < KU / KB; b++)
        h[b] = b < nblk ? _mm_loadu_si128((const __m128i *)(b0 + b * bstride + d * KB)) : _mm_setzero_si128();
    *k0 = _mm512_cvtph_ps(_mm256_inserti128_si256(_mm256_castsi128_si256(h[0]), h[1], 1));
    *k1 = _mm512_cvtph_ps(_mm256_inserti128_si256(_mm256_castsi128_si256(h[2]), h[3], 1));
}

/* NR rows x KU lanes with the keys converted in registers (scores_h). */
static inline __attribute__((always_inline)) void scores_h_rows_avx512(float *dst, int64_t ds, const float *q,
                                                                       const pc_f16 *b0, int64_t bstride, int32_t nblk,
                                                                       int32_t hd, float scale, const int NR) {
    __m512 lo[RG], hi[RG];
    for (int i = 0; i < NR; i++) lo[i] = hi[i] = _mm512_setzero_ps();
    for (int32_t d = 0; d < hd; d++) {
        __m512 k0, k1;
        if (nblk == KU / KB)
            key_row_avx512(&k0, &k1, b0, bstride, KU / KB, d);
        else
            key_row_avx512(&k0, &k1, b0, bstride, nblk, d);
        score_step_avx512(lo, hi, q, hd, d, k0, k1, NR);
    }
    score_store_avx512(dst, ds, lo, hi, scale, NR);
}

/* A whole unit's NR (1..3) rows as four ymm of 8 keys each, one per stored
 * block: each block's row d converts straight from memory, with no insert
 * into a zmm (measured: bench_attention 2 192 1, 30 layers, in cache,
 * 0.159 vs 0.174 ms with the zmm kernel); a lane's fma chain is the zmm
 * kernel's, so the same bits. */
static inline __attribute__((always_inline)) void scores_h_full_ymm(float *dst, int64_t ds, const float *q,
                                                                    const pc_f16 *b0, int64_t bstride, int32_t hd,
                                                                    float scale, const int NR) {
    __m256 acc[RG][KU / KB];
    for (int i = 0; i < NR; i++)
        for (int b = 0; b < KU / KB; b++) acc[i][b] = _mm256_setzero_ps();
    for (int32_t d = 0; d < hd; d++) {
        __m256 qv[RG];
        for (int i = 0; i < NR; i++) qv[i] = _mm256_set1_ps(q[i * hd + d]);
        for (int b = 0; b < KU / KB; b++) {
            const __m256 k = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(b0 + b * bstride + d * KB)));
            for (int i = 0; i < NR; i++) acc[i][b] = _mm256_fmadd_ps(qv[i], k, acc[i][b]);
        }
    }
    const __m256 vs = _mm256_set1_ps(scale);
    for (int i = 0; i < NR; i++)
        for (int b = 0; b < KU / KB; b++) _mm256_storeu_ps(dst + i * ds + b * KB, _mm256_mul_ps(acc[i][b], vs));
}

static void scores_h_avx512(float *dst, int64_t ds, const float *q, const pc_f16 *b0, int64_t bstride, int32_t nblk,
                            int32_t hd, float scale, int32_t rows) {
    if (nblk == KU / KB && rows <= 3) {
        switch (rows) {
        case 1: scores_h_full_ymm(dst, ds, q, b0, bstride, hd, scale, 1); return;
        case 2: scores_h_full_ymm(dst, ds, q, b0, bstride, hd, scale, 2); return;
        default: scores_h_full_ymm(dst, ds, q, b0, bstride, hd, scale, 3); return;
        }
    }
    switch (rows) {
    case 1: scores_h_rows_avx512(dst, ds, q, b0, bstride, nblk, hd, scale, 1); break;
    case 2: scores_h_rows_avx512(dst, ds, q, b0, bstride, nblk, hd, scale, 2); break;
    case 3: scores_h_rows_avx512(dst, ds, q, b0, bstride, nblk, hd, scale, 3); break;
    case 4: scores_h_rows_avx512(dst, ds, q, b0, bstride, nblk, hd, scale, 4); break;
    case 5: scores_h_rows_avx512(dst, ds, q, b0, bstride, nblk, hd, scale, 5); break;
    case 6: scores_h_rows_avx512(dst, ds, q, b0, bstride, nblk, hd, scale, 6); break;
    case 7: scores_h_rows_avx512(dst, ds, q, b0, bstride, nblk, hd, scale, 7); break;
    default: scores_h_rows_avx512(dst, ds, q, b0, bstride, nblk, hd, scale, RG); break;
    }
}

/* Two stored blocks (8 keys each) make one zmm of 16 lanes. */
static void k_unit_avx512(float *kt, const pc_f16 *b0, int64_t bstride, int32_t nblk, int32_t hd) {
    for (int32_t d = 0; d < hd; d++)
        for (int32_t b = 0; b < KU / KB; b += 2) {
            const __m128i lo = b < nblk ? _mm_loadu_si128((const __m128i *)(b0 + b * bstride + d * KB)) : _mm_setzero_si128();
            const __m128i hi =
                b + 1 < nblk ? _mm_loadu_si128((const __m128i *)(b0 + (b + 1) * bstride + d * KB)) : _mm_setzero_si128();
            _mm512_store_ps(kt + d * KU + b * KB,
                            _mm512_cvtph_ps(_mm256_inserti128_si256(_mm256_castsi128_si256(lo), hi, 1)));
        }
}

static void v_unit_avx512(float *vb, const pc_f16 *v, int64_t stride, int32_t nb, int32_t hd) {
    for (int32_t l = 0; l < nb; l++) {
        const pc_f16 *src = v + l * stride;
        float *dst = vb + l * hd;
        int32_t d = 0;
        for (; d + 16 <= hd; d += 16)
            _mm512_storeu_ps(dst + d, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(src + d))));
        for (; d < hd; d++) dst[d] = pc_f16_to_f32(src[d]);
    }
}

/* Value row l's dims [d0 + 16c, +16) as f32: from the f32 unit (H = 0) or
 * converted in registers from the stored f16 rows (H = 1). */
static inline __attribute__((always_inline)) __m512 value_avx512(const void *v, int64_t stride, int32_t l, int32_t d,
                                                                 const int H) {
    if (H) return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)((const pc_f16 *)v + l * stride + d)));
    return _mm512_loadu_ps((const float *)v + l * stride + d);
}

/* NR rows x 16W dims of accumulators (up to 24 zmm: 6 x 4 or 7 x 2) stay in registers over
 * the unit's keys; each value row is loaded once for the NR rows. One body
 * for both value sources, so pv and pv_h give the same bits. */
static inline __attribute__((always_inline)) void pv_rows_avx512(float *acc, const float *p, int64_t ps, const void *v,
                                                                 int64_t stride, int32_t nb, int32_t hd, int32_t d0,
                                                                 const int NR, const int W, const int H) {
    __m512 a[PV_ROWS + 1][4], x[4];
    for (int i = 0; i < NR; i++)
        for (int c = 0; c < W; c++) a[i][c] = _mm512_loadu_ps(acc + i * hd + d0 + 16 * c);
    for (int32_t l = 0; l < nb; l++) {
        for (int c = 0; c < W; c++) x[c] = value_avx512(v, stride, l, d0 + 16 * c, H);
        for (int i = 0; i < NR; i++) {
            const __m512 pl = _mm512_set1_ps(p[i * ps + l]);
            for (int c = 0; c < W; c++) a[i][c] = _mm512_fmadd_ps(pl, x[c], a[i][c]);
        }
    }
    for (int i = 0; i < NR; i++)
        for (int c = 0; c < W; c++) _mm512_storeu_ps(acc + i * hd + d0 + 16 * c, a[i][c]);
}

/* All rows over dims [d0, d0 + 16W): blocks of PV_ROWS, then the rest, each
 * with a constant row count so the accumulators stay in registers. */
static inline __attribute__((always_inline)) void pv_cols_avx512(float *acc, const float *p, int64_t ps, const void *v,
                                                                 int64_t stride, int32_t nb, int32_t rows, int32_t hd,
                                                                 int32_t d0, const int W, const int H) {
    int32_t r = 0;
    for (; r + PV_ROWS <= rows; r += PV_ROWS)
        pv_rows_avx512(acc + r * hd, p + r * ps, ps, v, stride, nb, hd, d0, PV_ROWS, W, H);
    float *ar = acc + r * hd;
    const float *pr = p + r * ps;
    switch (rows - r) {
    case 5: pv_rows_avx512(ar, pr, ps, v, stride, nb, hd, d0, 5, W, H); break;
    case 4: pv_rows_avx512(ar, pr, ps, v, stride, nb, hd, d0, 4, W, H); break;
    case 3: pv_rows_avx512(ar, pr, ps, v, stride, nb, hd, d0, 3, W, H); break;
    case 2: pv_rows_avx512(ar, pr, ps, v, stride, nb, hd, d0, 2, W, H); break;
    case 1: pv_rows_avx512(ar, pr, ps, v, stride, nb, hd, d0, 1, W, H); break;
    default: break;
    }
}

static void pv_avx512(float *acc, const float *p, int64_t ps, const float *vb, int32_t nb, int32_t rows, int32_t hd) {
    if (hd % 64 == 0)
        for (int32_t d0 = 0; d0 < hd; d0 += 64) pv_cols_avx512(acc, p, ps, vb, hd, nb, rows, hd, d0, 4, 0);
    else if (hd % 32 == 0)
        for (int32_t d0 = 0; d0 < hd; d0 += 32) pv_cols_avx512(acc, p, ps, vb, hd, nb, rows, hd, d0, 2, 0);
    else
        pc_attn_kernels_avx2().pv(acc, p, ps, vb, nb, rows, hd);
}

/* NR (1..3) rows x 64 dims in ymm accumulators (up to 24: avx512vl's 32
 * registers), each value row converted from memory 8 dims at a time, with
 * no zmm conversion (measured: bench_attention 2 192 1, 30 layers, in
 * cache, 0.149 vs 0.159 ms with the zmm kernel); per lane the zmm kernel's
 * fma chain, so the same bits. */
static inline __attribute__((always_inline)) void pv_h_ymm(float *acc, const float *p, int64_t ps, const pc_f16 *v,
                                                           int64_t stride, int32_t nb, int32_t hd, int32_t d0,
                                                           const int NR) {
    enum { W = 8 };
    __m256 a[3][W];
    for (int i = 0; i < NR; i++)
        for (int c = 0; c < W; c++) a[i][c] = _mm256_loadu_ps(acc + i * hd + d0 + 8 * c);
    for (int32_t l = 0; l < nb; l++) {
        __m256 pl[3];
        for (int i = 0; i < NR; i++) pl[i] = _mm256_set1_ps(p[i * ps + l]);
        for (int c = 0; c < W; c++) {
            const __m256 x = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(v + l * stride + d0 + 8 * c)));
            for (int i = 0; i < NR; i++) a[i][c] = _mm256_fmadd_ps(pl[i], x, a[i][c]);
        }
    }
    for (int i = 0; i < NR; i++)
        for (int c = 0; c < W; c++) _mm256_storeu_ps(acc + i * hd + d0 + 8 * c, a[i][c]);
}

static void pv_h_avx512(float *acc, const float *p, int64_t ps, const pc_f16 *v, int64_t stride, int32_t nb,
                        int32_t rows, int32_t hd) {
    if (rows <= 3 && hd % 64 == 0) { /* decode's tiles */
        for (int32_t d0 = 0; d0 < hd; d0 += 64) switch (rows) {
            case 1: pv_h_ymm(acc, p, ps, v, stride, nb, hd, d0, 1); break;
            case 2: pv_h_ymm(acc, p, ps, v, stride, nb, hd, d0, 2); break;
            default: pv_h_ymm(acc, p, ps, v, stride, nb, hd, d0, 3); break;
            }
        return;
    }
    if (rows == 7 && hd % 32 == 0) {
        /* A Qwen2.5-0.5B decode tile (14 query heads over 2 KV heads): all 7
         * rows in 14 zmm, 32 dims at a time, instead of 6 rows + 1, which
         * converted each value row twice and left the 7th row 4 chains for the
         * FMA latency (measured: bench_attention 2 190 1 2000 1 0 qwen0.5b, in
         * cache, 4 rounds alternating, 0.159-0.161 vs 0.161-0.165 ms). */
        for (int32_t d0 = 0; d0 < hd; d0 += 32) pv_rows_avx512(acc, p, ps, v, stride, nb, hd, d0, 7, 2, 1);
        return;
    }
    if (hd % 64 == 0)
        for (int32_t d0 = 0; d0 < hd; d0 += 64) pv_cols_avx512(acc, p, ps, v, stride, nb, rows, hd, d0, 4, 1);
    else if (hd % 32 == 0)
        for (int32_t d0 = 0; d0 < hd; d0 += 32) pv_cols_avx512(acc, p, ps, v, stride, nb, rows, hd, d0, 2, 1);
    else
        pc_attn_kernels_avx2().pv_h(acc, p, ps, v, stride, nb, rows, hd);
}

/* The first k (1..15) of 16 lanes: the tails of the row loops below. */
static __mmask16 tail_mask(int64_t k) { return (__mmask16)((1u << k) - 1u); }

static float max_avx512(const float *s, int64_t n) {
    __m512 m = _mm512_set1_ps(-INFINITY);
    int64_t j = 0;
    for (; j + 16 <= n; j += 16) m = _mm512_max_ps(m, _mm512_loadu_ps(s + j));
    if (j < n) m = _mm512_max_ps(m, _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), tail_mask(n - j), s + j));
    return _mm512_reduce_max_ps(m);
}

static void scale_round_avx512(float *s, int64_t n, float inv) {
    const __m512 vi = _mm512_set1_ps(inv);
    int64_t j = 0;
    for (; j + 16 <= n; j += 16) {
        const __m256i h = _mm512_cvtps_ph(_mm512_mul_ps(_mm512_loadu_ps(s + j), vi), _MM_FROUND_TO_NEAREST_INT);
        _mm512_storeu_ps(s + j, _mm512_cvtph_ps(h));
    }
    if (j < n) {
        const __mmask16 t = tail_mask(n - j);
        const __m256i h = _mm512_cvtps_ph(_mm512_mul_ps(_mm512_maskz_loadu_ps(t, s + j), vi), _MM_FROUND_TO_NEAREST_INT);
        _mm512_mask_storeu_ps(s + j, t, _mm512_cvtph_ps(h));
    }
}

static __m512 exp_neg_avx512(__m512 x) {
    const __mmask16 live = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-80.0f), _CMP_GE_OQ);
    x = _mm512_max_ps(x, _mm512_set1_ps(-80.0f));
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fmadd_ps(n, _mm512_set1_ps(-0.693359375f), x);
    r = _mm512_fmadd_ps(n, _mm512_set1_ps(2.12194440e-4f), r);
    __m512 y = _mm512_set1_ps(1.9875691500e-4f);
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.3981999507e-3f));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(8.3334519073e-3f));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(4.1665795894e-2f));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.6666665459e-1f));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(5.0000001201e-1f));
    y = _mm512_fmadd_ps(y, _mm512_mul_ps(r, r), r);
    y = _mm512_add_ps(y, _mm512_set1_ps(1.0f));
    /* y * 2^n through the exponent bits (y in [0.5, 2), n >= -116 here: never subnormal) */
    const __m512i e = _mm512_slli_epi32(_mm512_cvtps_epi32(n), 23);
    y = _mm512_castsi512_ps(_mm512_add_epi32(_mm512_castps_si512(y), e));
    return _mm512_maskz_mov_ps(live, y);
}

static int64_t exp_sum_avx512(float *s, int64_t n, float mx) {
    const __m512 vmx = _mm512_set1_ps(mx), fix = _mm512_set1_ps(PC_ATTN_FIX_SCALE);
    __m512i sum = _mm512_setzero_si512();
    int64_t j = 0;
    for (; j + 16 <= n; j += 16) {
        const __m512 e = exp_neg_avx512(_mm512_sub_ps(_mm512_loadu_ps(s + j), vmx));
        _mm512_storeu_ps(s + j, e);
        const __m512i q = _mm512_cvttps_epi32(_mm512_mul_ps(e, fix));
        sum = _mm512_add_epi64(sum, _mm512_cvtepi32_epi64(_mm512_castsi512_si256(q)));
        sum = _mm512_add_epi64(sum, _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(q, 1)));
    }
    if (j < n) { /* the same lanes' arithmetic under a mask: the scalar loop's values, not a libm call each */
        const __mmask16 t = tail_mask(n - j);
        const __m512 e = exp_neg_avx512(_mm512_sub_ps(_mm512_maskz_loadu_ps(t, s + j), vmx));
        _mm512_mask_storeu_ps(s + j, t, e);
        const __m512i q = _mm512_maskz_mov_epi32(t, _mm512_cvttps_epi32(_mm512_mul_ps(e, fix)));
        sum = _mm512_add_epi64(sum, _mm512_cvtepi32_epi64(_mm512_castsi512_si256(q)));
        sum = _mm512_add_epi64(sum, _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(q, 1)));
    }
    return _mm512_reduce_add_epi64(sum);
}

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

pc_attn_kernels pc_attn_kernels_avx512(void) {
    return (pc_attn_kernels){.scores = scores_avx512,
                             .k_unit = k_unit_avx512,
                             .v_unit = v_unit_avx512,
                             .pv = pv_avx512,
                             .scores_h = scores_h_avx512,
                             .pv_h = pv_h_avx512,
                             .max = max_avx512,
                             .exp_sum = exp_sum_avx512,
                             .scale_round = scale_round_avx512};
}

#else
pc_attn_kernels pc_attn_kernels_avx512(void) { return pc_attn_kernels_scalar(); }
#endif
