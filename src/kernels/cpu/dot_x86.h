/* dot_x86.h - helpers shared by the x86 SIMD kernels, and the float-type dots,
 * compiled once per ISA path.
 *
 * Included only by dot_avx2.c and dot_avx512.c, after they set the target
 * (#pragma GCC target) and define PC_X86_VNNI (0/1: the 8-bit products use
 * vpdpbusd or vpmaddubsw+vpmaddwd) and PC_X86_512 (zmm or ymm lanes).
 * gemm_x86.h has the packed matmul kernels of the quantized types,
 * quant_x86.h the activation quantizers. Float steps are explicit
 * intrinsics, never left to compiler contraction. */
#ifndef PC_KERNELS_CPU_DOT_X86_H
#define PC_KERNELS_CPU_DOT_X86_H

#include <immintrin.h>
#include <math.h>

#include "kernels/cpu/quant_impl.h"

#define PC_INLINE static inline __attribute__((always_inline))

/* 32 unsigned bytes times 32 signed bytes, summed in pairs of four into 8 int32. */
PC_INLINE __m256i mul_us8(__m256i u, __m256i s) {
#if PC_X86_VNNI
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s);
#else
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
#endif
}

PC_INLINE float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

PC_INLINE float h2f(const void *p) {
    pc_f16 h;
    memcpy(&h, p, sizeof h);
    return _cvtsh_ss(h);
}

PC_INLINE __m256i load256(const void *p) { return _mm256_loadu_si256((const __m256i *)p); }

/* 32 bits -> 32 bytes, 0xFF where the bit is set. */
PC_INLINE __m256i bits32(const uint8_t *p) {
    uint32_t x;
    memcpy(&x, p, 4);
    const __m256i shuf = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2,
                                          3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
    const __m256i b = _mm256_and_si256(_mm256_shuffle_epi8(_mm256_set1_epi32((int)x), shuf), bit);
    return _mm256_cmpeq_epi8(b, bit);
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
