/* test_f16_store.c - the F16C store gives pc_f32_to_f16's bits.
 *
 * pc_f16_store_avx2 against pc_f32_to_f16 on every 127th float bit pattern
 * (both signs, every exponent: subnormal halves, the rounding ties, overflow to
 * inf, inf and NaN), stride 1 (V rows) and stride PC_KV_BLOCK (transposed key
 * blocks), with lengths that leave a scalar tail; and that a store writes only
 * its own elements. Skips the F16C path where the CPU has none. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "kernels/cpu/ops.h"
#include "kv/kv.h"

enum { CHUNK = 4093, STRIDE = PC_KV_BLOCK, GUARD = 0x5a5a };

static float from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static pc_f16 out[(size_t)CHUNK * STRIDE];

/* Mismatches over patterns first, first + step, ... up to last, stored with stride. */
static uint64_t sweep(uint64_t first, uint64_t last, uint64_t step, size_t stride) {
    static float x[CHUNK];
    uint64_t bad = 0, u = first;
    while (u <= last) {
        int n = 0;
        for (; n < CHUNK && u <= last; n++, u += step) x[n] = from_bits((uint32_t)u);
        for (size_t i = 0; i < (size_t)n * stride; i++) out[i] = GUARD;
        pc_f16_store_avx2(out, stride, x, n);
        for (int i = 0; i < n; i++) bad += out[(size_t)i * stride] != pc_f32_to_f16(x[i]);
        for (size_t i = 0; i < (size_t)n * stride; i++) bad += i % stride != 0 && out[i] != GUARD;
    }
    return bad;
}

int main(void) {
    if (pc_isa_detect() < PC_ISA_AVX2) {
        printf("skip: this CPU has no AVX2+F16C, so pc_f16_store_avx2 never runs here\n");
        return CHECK_SKIP;
    }
    CHECK_MSG(sweep(0, UINT32_MAX, 127, 1) == 0, "stride 1 differs from pc_f32_to_f16");
    CHECK_MSG(sweep(0, UINT32_MAX, 127, STRIDE) == 0, "stride %d differs from pc_f32_to_f16", STRIDE);
    /* Short and odd lengths: only the scalar tail, or one vector and a tail. */
    for (int n = 0; n <= 19; n++)
        CHECK_MSG(sweep(0x3f800000u, 0x3f800000u + (uint64_t)n * 4099 - 1, 4099, STRIDE) == 0, "length %d", n);
    CHECK(pc_f16_store_for(PC_ISA_AVX2) == pc_f16_store_avx2);
    return check_report();
}
