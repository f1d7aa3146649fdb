/* swiglu_avx2.c - pc_swiglu eight lanes at a time, with the bits of the
 * scalar loop (ops.c), which calls libm's expf.
 *
 * libm's expf is not correctly rounded, so a vector expf of another design
 * would differ from it in the last bit now and then, and every output the
 * goldens and the cached == uncached tests check would move. So this is the
 * very algorithm glibc's expf runs on an AVX2+FMA machine (__expf_fma, glibc
 * 2.28 on; 2.36 here): x * 32/ln2 = k + r, exp(x) = 2^(k/32) * p(r), in
 * double, with its table and coefficients, and the same fused multiply-adds
 * its compiled code uses (read off its disassembly: the reduction is
 * fma(x, 32/ln2, shift) and fma(x, 32/ln2, -kd), not a rounded product).
 * tests/kernels/test_swiglu.c checks it against expf bitwise over a sweep of all
 * floats; lanes with |x| >= 88 or NaN (overflow, underflow, errno) take the
 * scalar loop. With another libm the test says so, and pc_swiglu_for then
 * must hand out the scalar loop on that platform. */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>

#include "kernels/cpu/ops.h"

#if defined(__x86_64__) && defined(__GLIBC__)
#include <immintrin.h>

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#endif

/* glibc's __exp2f_data: 2^(i/32) with i << 47 taken off its bits, so adding
 * k << 47 scales it by 2^(k/32) whole. */
static const int64_t EXP2F_TAB[32] = {
    0x3ff0000000000000, 0x3fefd9b0d3158574, 0x3fefb5586cf9890f, 0x3fef9301d0125b51, 0x3fef72b83c7d517b,
    0x3fef54873168b9aa, 0x3fef387a6e756238, 0x3fef1e9df51fdee1, 0x3fef06fe0a31b715, 0x3feef1a7373aa9cb,
    0x3feedea64c123422, 0x3feece086061892d, 0x3feebfdad5362a27, 0x3feeb42b569d4f82, 0x3feeab07dd485429,
    0x3feea47eb03a5585, 0x3feea09e667f3bcd, 0x3fee9f75e8ec5f74, 0x3feea11473eb0187, 0x3feea589994cce13,
    0x3feeace5422aa0db, 0x3feeb737b0cdc5e5, 0x3feec49182a3f090, 0x3feed503b23e255d, 0x3feee89f995ad3ad,
    0x3feeff76f2fb5e47, 0x3fef199bdd85529c, 0x3fef3720dcef9069, 0x3fef5818dcfba487, 0x3fef7c97337b9b5f,
    0x3fefa4afa2a490da, 0x3fefd0765b6e4540,
};

/* expf of four floats (widened to double), |x| < 88. */
static __m128 expf4(__m128 x) {
    const __m256d xd = _mm256_cvtps_pd(x), inv_ln2_n = _mm256_set1_pd(0x1.71547652b82fep+5),
                  shift = _mm256_set1_pd(0x1.8p+52);
    const __m256d kds = _mm256_fmadd_pd(xd, inv_ln2_n, shift); /* k in the low bits */
    const __m256d kd = _mm256_sub_pd(kds, shift);
    const __m256d r = _mm256_fmsub_pd(xd, inv_ln2_n, kd);
    const __m256i ki = _mm256_castpd_si256(kds);
    const __m256i t = _mm256_add_epi64(
        _mm256_i64gather_epi64((const long long *)EXP2F_TAB, _mm256_and_si256(ki, _mm256_set1_epi64x(31)), 8),
        _mm256_slli_epi64(ki, 47));
    const __m256d z = _mm256_fmadd_pd(r, _mm256_set1_pd(0x1.c6af84b912394p-20), _mm256_set1_pd(0x1.ebfce50fac4f3p-13));
    const __m256d r2 = _mm256_mul_pd(r, r);
    __m256d y = _mm256_fmadd_pd(r, _mm256_set1_pd(0x1.62e42ff0c52d6p-6), _mm256_set1_pd(1.0));
    y = _mm256_fmadd_pd(z, r2, y);
    return _mm256_cvtpd_ps(_mm256_mul_pd(y, _mm256_castsi256_pd(t)));
}

/* True when every lane of x lies where expf4 is expf: |x| < 88 (NaN is not). */
static bool in_range4(__m128 x) {
    const __m128 ax = _mm_andnot_ps(_mm_set1_ps(-0.0f), x);
    return _mm_movemask_ps(_mm_cmp_ps(ax, _mm_set1_ps(88.0f), _CMP_LT_OQ)) == 0xf;
}

static bool in_range(__m256 x) {
    const __m256 ax = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x);
    return _mm256_movemask_ps(_mm256_cmp_ps(ax, _mm256_set1_ps(88.0f), _CMP_LT_OQ)) == 0xff;
}

void pc_expf_avx2(float *y, const float *x, int64_t n) {
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const __m128 v = _mm_loadu_ps(x + i);
        if (in_range4(v)) {
            _mm_storeu_ps(y + i, expf4(v));
            continue;
        }
        for (int64_t j = i; j < i + 4; j++) y[j] = expf(x[j]);
    }
    for (; i < n; i++) y[i] = expf(x[i]);
}

void pc_swiglu_avx2(float *gate, const float *up, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 g = _mm256_loadu_ps(gate + i), m = _mm256_xor_ps(g, _mm256_set1_ps(-0.0f)); /* -g */
        if (!in_range(m)) {
            pc_swiglu(gate + i, up + i, 8);
            continue;
        }
        const __m256 e = _mm256_set_m128(expf4(_mm256_extractf128_ps(m, 1)), expf4(_mm256_castps256_ps128(m)));
        const __m256 s = _mm256_div_ps(g, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
        _mm256_storeu_ps(gate + i, _mm256_mul_ps(s, _mm256_loadu_ps(up + i)));
    }
    pc_swiglu(gate + i, up + i, n - i);
}

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

#else /* no AVX2 build, or a libm whose expf this does not copy */

void pc_expf_avx2(float *y, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = expf(x[i]);
}

void pc_swiglu_avx2(float *gate, const float *up, int64_t n) { pc_swiglu(gate, up, n); }

#endif

pc_swiglu_fn pc_swiglu_for(pc_isa isa) { return isa >= PC_ISA_AVX2 ? pc_swiglu_avx2 : pc_swiglu; }
