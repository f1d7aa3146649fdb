/* test_swiglu.c - the AVX2 swiglu gives the bits of the scalar one.
 *
 * pc_expf_avx2 against libm's expf on every 127th float bit pattern (34
 * million values: both signs, every exponent, subnormals, the edges near 88
 * and the scalar fallback for |x| >= 88, inf and NaN; PC_SWIGLU_EXHAUSTIVE=1:
 * all 2^32), then every 61st float in [-1, 1], where activations live;
 * pc_swiglu_avx2 against pc_swiglu on random gates of every magnitude, odd
 * lengths (the scalar tail) and specials. A libm whose expf is not glibc's
 * algorithm fails here: swiglu_avx2.c then must not be used there. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "kernels/cpu/ops.h"
#include "kernels/cpu/quant.h"

enum { CHUNK = 4096 };

static float from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static uint32_t bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* Compares pc_expf_avx2 with expf on the bit patterns first, first + step, ... up to last; returns mismatches. */
static uint64_t sweep(uint64_t first, uint64_t last, uint64_t step) {
    static float x[CHUNK], got[CHUNK];
    uint64_t bad = 0, u = first;
    while (u <= last) {
        int n = 0;
        for (; n < CHUNK && u <= last; n++, u += step) x[n] = from_bits((uint32_t)u);
        pc_expf_avx2(got, x, n);
        for (int i = 0; i < n; i++) {
            const float want = expf(x[i]);
            if (bits(got[i]) == bits(want) || (isnan(got[i]) && isnan(want))) continue;
            if (bad++ < 5)
                fprintf(stderr, "expf(%a): avx2 %a, libm %a\n", (double)x[i], (double)got[i], (double)want);
        }
    }
    return bad;
}

static uint32_t next_u32(uint64_t *rng) {
    *rng ^= *rng << 13;
    *rng ^= *rng >> 7;
    *rng ^= *rng << 17;
    return (uint32_t)(*rng >> 16);
}

/* A gate value: mostly what activations look like, now and then any float at all. */
static float gate_value(uint64_t *rng) {
    const uint32_t r = next_u32(rng);
    if (r % 16 == 0) return from_bits(next_u32(rng));
    return ldexpf((float)(int32_t)next_u32(rng) / 2147483648.0f, (int)(r % 24) - 12);
}

static void check_swiglu(uint64_t *rng, int n) {
    float *g = malloc((size_t)n * sizeof *g), *want = malloc((size_t)n * sizeof *want), *up = malloc((size_t)n * sizeof *up);
    for (int i = 0; i < n; i++) {
        g[i] = gate_value(rng);
        up[i] = ldexpf((float)(int32_t)next_u32(rng) / 2147483648.0f, (int)(next_u32(rng) % 8) - 4);
    }
    const float specials[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, 88.0f, -88.0f, 87.99999f, -87.99999f, 104.0f,
                              -104.0f, 1e-40f, -1e-40f};
    for (int i = 0; i < (int)(sizeof specials / sizeof *specials) && 3 * i < n; i++) g[3 * i] = specials[i];
    memcpy(want, g, (size_t)n * sizeof *g);
    pc_swiglu(want, up, n);
    pc_swiglu_avx2(g, up, n);
    int bad = 0;
    for (int i = 0; i < n; i++)
        if (bits(g[i]) != bits(want[i]) && !(isnan(g[i]) && isnan(want[i])) && bad++ < 5)
            fprintf(stderr, "swiglu n=%d [%d]: avx2 %a, scalar %a\n", n, i, (double)g[i], (double)want[i]);
    CHECK_MSG(bad == 0, "n=%d: %d of the outputs differ from pc_swiglu's", n, bad);
    free(g);
    free(want);
    free(up);
}

int main(void) {
    if (pc_isa_detect() < PC_ISA_AVX2) {
        printf("skip: this CPU has no AVX2+FMA, so pc_swiglu_avx2 never runs here\n");
        return CHECK_SKIP;
    }
    const uint64_t step = getenv("PC_SWIGLU_EXHAUSTIVE") ? 1 : 127;
    uint64_t bad = sweep(0, UINT32_MAX, step);
    CHECK_MSG(bad == 0, "%llu floats (every %llu-th bit pattern): expf differs from libm's", (unsigned long long)bad,
              (unsigned long long)step);
    bad = sweep(0, bits(1.0f), 61) + sweep(bits(-0.0f), bits(-1.0f), 61);
    CHECK_MSG(bad == 0, "%llu floats in [-1, 1]: expf differs from libm's", (unsigned long long)bad);
    const int lens[] = {1, 7, 8, 9, 64, 1536, 8191};
    uint64_t rng = 0x9E3779B97F4A7C15ULL;
    for (int k = 0; k < (int)(sizeof lens / sizeof *lens); k++)
        for (int rep = 0; rep < 20; rep++) check_swiglu(&rng, lens[k]);
    return check_report();
}
