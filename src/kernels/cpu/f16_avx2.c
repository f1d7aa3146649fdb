/* f16_avx2.c - pc_f16_store eight values at a time with F16C. vcvtps2ph with
 * round-to-nearest-even gives pc_f32_to_f16's bits (subnormals, overflow to
 * inf, NaN made quiet with its payload's top bits): tests/kernels/test_f16_store.c
 * checks every 127th float bit pattern. A decode step stores each layer's K and
 * V through this (in the Q/K/V job's last tasks): SmolLM2's 384 values a layer
 * took ~1.05 us one call at a time, ~0.13 us here. */
#include <stdint.h>

#include "kernels/cpu/ops.h"

#if defined(__x86_64__)
#include <immintrin.h>

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,f16c"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,f16c")
#endif

void pc_f16_store_avx2(pc_f16 *y, size_t stride, const float *x, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        if (stride == 1) {
            _mm_storeu_si128((__m128i *)(y + i), h);
            continue;
        }
        pc_f16 t[8];
        _mm_storeu_si128((__m128i *)t, h);
        for (int j = 0; j < 8; j++) y[(size_t)(i + j) * stride] = t[j];
    }
    pc_f16_store(y + (size_t)i * stride, stride, x + i, n - i);
}

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

#else

void pc_f16_store_avx2(pc_f16 *y, size_t stride, const float *x, int64_t n) { pc_f16_store(y, stride, x, n); }

#endif

pc_f16_store_fn pc_f16_store_for(pc_isa isa) { return isa >= PC_ISA_AVX2 ? pc_f16_store_avx2 : pc_f16_store; }
