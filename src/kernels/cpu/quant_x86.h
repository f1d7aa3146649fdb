/* quant_x86.h - x86 SIMD quantization of activations to Q8_0, Q8_1 and Q8_K.
 * Part of the per-ISA instance (see dot_x86.h); include after it.
 *
 * Invariant: byte for byte what pc_quantize_row writes (quant_ref.c,
 * quant_k.c): the same IEEE operations in the same order per value, and
 * vroundps to nearest-even equals pc_nearest_int for |v| < 2^22. The scale
 * is a max, which any order of comparison finds. test_quant checks it. */
#ifndef PC_KERNELS_CPU_QUANT_X86_H
#define PC_KERNELS_CPU_QUANT_X86_H

#include "kernels/cpu/dot_x86.h"

PC_INLINE float hmax8(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

PC_INLINE int hsum_i32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    return _mm_cvtsi128_si32(s);
}

PC_INLINE __m256i round_i32(__m256 v, __m256 mul) {
    return _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v, mul), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}

/* 32 int32 (in 4 vectors, element order) -> 32 saturated int8 at out. */
PC_INLINE void store_i8x32(__m256i a, __m256i b, __m256i c, __m256i d, int8_t *out) {
    const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(a, b), _mm256_packs_epi32(c, d));
    _mm256_storeu_si256((__m256i *)out, _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
}

/* One 32-value block: the int8 values at qs, returns d; *sum = sum of the values. */
PC_INLINE float quant32(const float *x, int8_t *qs, int *sum) {
    const __m256 sign = _mm256_set1_ps(-0.f);
    __m256 v[4], amax = _mm256_setzero_ps();
    for (int k = 0; k < 4; k++) {
        v[k] = _mm256_loadu_ps(x + 8 * k);
        amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign, v[k]));
    }
    const float max = hmax8(amax);
    const __m256 mul = _mm256_set1_ps(max != 0.f ? 127.f / max : 0.f);
    __m256i q[4];
    for (int k = 0; k < 4; k++) q[k] = round_i32(v[k], mul);
    *sum = hsum_i32(_mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3])));
    store_i8x32(q[0], q[1], q[2], q[3], qs);
    return max / 127.f;
}

static void quant_q8_0(const float *x, void *dst, int64_t n) {
    pc_block_q8_0 *y = dst;
    for (int64_t i = 0; i < n / 32; i++) {
        int sum;
        const float d = quant32(x + 32 * i, y[i].qs, &sum);
        y[i].d = pc_f32_to_f16(d);
    }
}

static void quant_q8_1(const float *x, void *dst, int64_t n) {
    pc_block_q8_1 *y = dst;
    for (int64_t i = 0; i < n / 32; i++) {
        int sum;
        const float d = quant32(x + 32 * i, y[i].qs, &sum);
        y[i].d = pc_f32_to_f16(d);
        y[i].s = pc_f32_to_f16(d * (float)sum);
    }
}

/* The index of the first of a block's values whose magnitude is am, or the
 * last index if none is (where the reference's scan stops): 8 at a time, as the
 * value-by-value scan cost about half of quantizing a block (one decode token
 * of the 1.5B model quantizes 1490 blocks, serially on the caller). */
PC_INLINE int first_of_magnitude(const float *x, float am) {
    const __m256 sign = _mm256_set1_ps(-0.f), m = _mm256_set1_ps(am);
    for (int k = 0; k < PC_QK_K / 8; k++) {
        const __m256 a = _mm256_andnot_ps(sign, _mm256_loadu_ps(x + 8 * k));
        const int hit = _mm256_movemask_ps(_mm256_cmp_ps(a, m, _CMP_EQ_OQ)); /* NaN never equal, as with != */
        if (hit) return 8 * k + __builtin_ctz((unsigned)hit);
    }
    return PC_QK_K - 1;
}

/* Q8_K: the scale comes from the first value of largest magnitude, with its sign. */
static void quant_q8_K(const float *x, void *dst, int64_t n) {
    pc_block_q8_K *y = dst;
    const __m256 sign = _mm256_set1_ps(-0.f);
    for (int64_t i = 0; i < n / PC_QK_K; i++, x += PC_QK_K) {
        __m256 amax = _mm256_setzero_ps();
        for (int k = 0; k < 32; k++) amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + 8 * k)));
        const float am = hmax8(amax);
        memset(&y[i], 0, sizeof y[i]);
        if (am == 0.f) continue;
        const float iscale = -127.f / x[first_of_magnitude(x, am)];
        const __m256 mul = _mm256_set1_ps(iscale);
        for (int g = 0; g < 8; g++) { /* 32 values: two bsums of 16 */
            __m256i q[4];
            for (int k = 0; k < 4; k++) q[k] = round_i32(_mm256_loadu_ps(x + 32 * g + 8 * k), mul);
            y[i].bsums[2 * g] = (int16_t)hsum_i32(_mm256_add_epi32(q[0], q[1]));
            y[i].bsums[2 * g + 1] = (int16_t)hsum_i32(_mm256_add_epi32(q[2], q[3]));
            store_i8x32(q[0], q[1], q[2], q[3], y[i].qs + 32 * g);
        }
        y[i].d = 1.f / iscale;
    }
}

#endif
