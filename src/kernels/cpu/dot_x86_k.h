/* dot_x86_k.h - x86 SIMD dot products of the K-quants (Q4_K, Q5_K, Q6_K against
 * Q8_K) and the float types, one output per call. Part of the per-ISA
 * instance (see dot_x86.h); include after it.
 *
 * No tiles: a K-quant super-block's unpacked weights fill the registers, so
 * sharing them across tokens buys little; the matmul's loop order still keeps
 * the weights in L1 while the tokens of a block pass over them. Each function
 * is a fixed sequence of operations, so its result depends only on its rows. */
#ifndef PC_KERNELS_CPU_DOT_X86_K_H
#define PC_KERNELS_CPU_DOT_X86_K_H

#include "kernels/cpu/dot_x86.h"

/* The 8 scales (int16 lanes 0-7) and 8 mins (lanes 8-15) of a Q4_K/Q5_K block,
 * unpacked with word operations (the layout of pc_k4_scale_min). */
PC_INLINE __m256i k4_scales_mins(const uint8_t q[12]) {
    uint32_t w[3];
    memcpy(w, q, 12);
    const uint32_t m6 = 0x3f3f3f3fu, m4 = 0x0f0f0f0fu, m2 = 0x03030303u;
    const uint32_t sc_lo = w[0] & m6, mn_lo = w[1] & m6;
    const uint32_t sc_hi = (w[2] & m4) | (((w[0] >> 6) & m2) << 4);
    const uint32_t mn_hi = ((w[2] >> 4) & m4) | (((w[1] >> 6) & m2) << 4);
    return _mm256_cvtepu8_epi16(_mm_setr_epi32((int)sc_lo, (int)sc_hi, (int)mn_lo, (int)mn_hi));
}

/* Shuffle control that broadcasts int16 lane k (of 8 per 128-bit lane) to the
 * low 128 bits and lane k2 to the high 128 bits. */
PC_INLINE __m256i bcast16(int k, int k2) {
    return _mm256_set_m128i(_mm_set1_epi16((short)((2 * k2 + 1) << 8 | 2 * k2)),
                            _mm_set1_epi16((short)((2 * k + 1) << 8 | 2 * k)));
}

/* Q4_K and Q5_K: sum over sub-blocks of sc * (q . y), minus dmin * sum of
 * m * (the sub-block's activation sum, from bsums). FIVE adds Q5_K's high bit
 * (bit j of qh[l] for element 32j + l). */
PC_INLINE void dot_k4(int64_t n, float *s, const void *w, const void *x, const bool FIVE) {
    const pc_block_q4_K *a4 = w;
    const pc_block_q5_K *a5 = w;
    const pc_block_q8_K *b = x;
    const __m256i m4 = _mm256_set1_epi8(0x0F), one = _mm256_set1_epi8(1);
    __m256 acc = _mm256_setzero_ps();
    __m128 accm = _mm_setzero_ps();
    for (int64_t i = 0; i < n / PC_QK_K; i++) {
        const uint8_t *scales = FIVE ? a5[i].scales : a4[i].scales, *qs = FIVE ? a5[i].qs : a4[i].qs;
        const __m256i sm = k4_scales_mins(scales);
        /* min term: sum_j m_j * (bsums[2j] + bsums[2j+1]), in 4 int32 lanes */
        const __m256i bs = load256(b[i].bsums);
        const __m128i pair = _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1));
        const __m128i msum = _mm_madd_epi16(_mm256_extracti128_si256(sm, 1), pair);
        const __m256i sc = _mm256_broadcastsi128_si256(_mm256_castsi256_si128(sm));
        const __m256i qh = FIVE ? load256(a5[i].qh) : _mm256_setzero_si256();
        __m256i sumi = _mm256_setzero_si256();
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++) {
            const __m256i q = load256(qs + 32 * j);
            __m256i lo = _mm256_and_si256(q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
            if (FIVE) {
                lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * j), one), 4));
                hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * j + 1), one), 4));
            }
            const __m256i plo = _mm256_maddubs_epi16(lo, load256(b[i].qs + 64 * j));
            const __m256i phi = _mm256_maddubs_epi16(hi, load256(b[i].qs + 64 * j + 32));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(plo, _mm256_shuffle_epi8(sc, bcast16(2 * j, 2 * j))));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(phi, _mm256_shuffle_epi8(sc, bcast16(2 * j + 1, 2 * j + 1))));
        }
        const pc_f16 *dd = FIVE ? &a5[i].d : &a4[i].d, *dm = FIVE ? &a5[i].dmin : &a4[i].dmin;
        const float d = b[i].d * h2f(dd), dmin = b[i].d * h2f(dm);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
        accm = _mm_fmadd_ps(_mm_set1_ps(dmin), _mm_cvtepi32_ps(msum), accm);
    }
    accm = _mm_add_ps(accm, _mm_movehl_ps(accm, accm));
    accm = _mm_add_ss(accm, _mm_movehdup_ps(accm));
    *s = hsum8(acc) - _mm_cvtss_f32(accm);
}

static void dot_q4_K(int64_t n, float *s, const void *w, const void *x) { dot_k4(n, s, w, x, false); }
static void dot_q5_K(int64_t n, float *s, const void *w, const void *x) { dot_k4(n, s, w, x, true); }

/* 32 six-bit values of Q6_K group k (0..3) of a half: nibbles of ql, 2 bits of qh. */
PC_INLINE __m256i q6_group(__m256i ql0, __m256i ql1, __m256i qh, int k) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(3);
    const __m256i src = (k & 1) ? ql1 : ql0;
    const __m256i lo = (k >> 1) ? _mm256_and_si256(_mm256_srli_epi16(src, 4), m4) : _mm256_and_si256(src, m4);
    const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * k), m2);
    return _mm256_or_si256(lo, _mm256_slli_epi16(hi, 4));
}

/* Q6_K: sum of sc * q * y with q read unsigned (0..63); the -32 offset comes
 * off once per block as 32 * sum(sc * bsums), exact in int32. */
static void dot_q6_K(int64_t n, float *s, const void *w, const void *x) {
    const pc_block_q6_K *a = w;
    const pc_block_q8_K *b = x;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / PC_QK_K; i++) {
        const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)a[i].scales));
        __m256i sumi = _mm256_slli_epi32(_mm256_madd_epi16(sc16, load256(b[i].bsums)), 5);
        sumi = _mm256_sub_epi32(_mm256_setzero_si256(), sumi);
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
            const __m256i ql0 = load256(a[i].ql + 64 * h), ql1 = load256(a[i].ql + 64 * h + 32);
            const __m256i qh = load256(a[i].qh + 32 * h);
            const __m256i sc = _mm256_broadcastsi128_si256(h ? _mm256_extracti128_si256(sc16, 1) : _mm256_castsi256_si128(sc16));
#pragma GCC unroll 4
            for (int k = 0; k < 4; k++) {
                const __m256i p = _mm256_maddubs_epi16(q6_group(ql0, ql1, qh, k), load256(b[i].qs + 128 * h + 32 * k));
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, _mm256_shuffle_epi8(sc, bcast16(2 * k, 2 * k + 1))));
            }
        }
        const float d = b[i].d * h2f(&a[i].d);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    *s = hsum8(acc);
}

/* ---- float types ---- */

static void dot_f16(int64_t n, float *s, const void *w, const void *x) {
    const uint8_t *a = w, *b = x;
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    int64_t i = 0;
    for (; i + 32 <= n; i += 32)
        for (int k = 0; k < 4; k++) {
            const __m256 wa = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(a + 2 * (i + 8 * k))));
            const __m256 xb = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(b + 2 * (i + 8 * k))));
            acc[k] = _mm256_fmadd_ps(wa, xb, acc[k]);
        }
    for (; i + 8 <= n; i += 8) {
        const __m256 wa = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(a + 2 * i)));
        const __m256 xb = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(b + 2 * i)));
        acc[0] = _mm256_fmadd_ps(wa, xb, acc[0]);
    }
    float sum = hsum8(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
    for (; i < n; i++) sum = fmaf(h2f(a + 2 * i), h2f(b + 2 * i), sum);
    *s = sum;
}

static void dot_f32(int64_t n, float *s, const void *w, const void *x) {
    const float *a = w, *b = x;
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    int64_t i = 0;
    for (; i + 32 <= n; i += 32)
        for (int k = 0; k < 4; k++)
            acc[k] = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8 * k), _mm256_loadu_ps(b + i + 8 * k), acc[k]);
    for (; i + 8 <= n; i += 8) acc[0] = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc[0]);
    float sum = hsum8(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
    for (; i < n; i++) sum = fmaf(a[i], b[i], sum);
    *s = sum;
}

#endif
