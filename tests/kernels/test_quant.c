/* test_quant.c - dequantization against hand-built blocks, activation
 * quantization against llama.cpp's documented semantics, and
 * quantize -> dequantize error bounds for every type.
 *
 * Expected values are written here from the GGUF format descriptions, element
 * by element, independently of src/kernels/cpu. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "kernels/cpu/quant.h"
#include "kernels/cpu/quant_impl.h"
#include "test_rng.h"

static pc_f16 h(float f) { return pc_f32_to_f16(f); }

/* A block's output must equal want[] exactly: dequantization is d*q (+/- m). */
static void check_deq(pc_type t, const void *blk, const float *want, int n) {
    float got[PC_QK_K];
    CHECK(pc_dequantize_row(t, blk, got, n));
    int bad = 0;
    for (int i = 0; i < n; i++) bad += got[i] != want[i];
    CHECK_MSG(bad == 0, "%s: %d of %d values differ", pc_type_name(t), bad, n);
}

static void test_q4_0_q4_1(void) {
    pc_block_q4_0 a = {.d = h(0.5f)};
    pc_block_q4_1 b = {.d = h(0.5f), .m = h(-1.f)};
    float wa[32], wb[32];
    for (int j = 0; j < 16; j++) { /* low nibble = element j, high nibble = element j+16 */
        a.qs[j] = b.qs[j] = (uint8_t)(j | ((15 - j) << 4));
        wa[j] = (j - 8) * 0.5f;
        wa[j + 16] = (15 - j - 8) * 0.5f;
        wb[j] = j * 0.5f - 1.f;
        wb[j + 16] = (15 - j) * 0.5f - 1.f;
    }
    check_deq(PC_TYPE_Q4_0, &a, wa, 32);
    check_deq(PC_TYPE_Q4_1, &b, wb, 32);
    CHECK(wb[15] == 6.5f && wb[16] == 6.5f && wb[0] == -1.f); /* the hand arithmetic itself */
}

static void test_q5(void) {
    pc_block_q5_0 a = {.d = h(0.25f), .qh = {0xA5, 0x0F, 0xF0, 0x81}};
    pc_block_q5_1 b = {.d = h(2.f), .m = h(0.75f), .qh = {0xA5, 0x0F, 0xF0, 0x81}};
    const uint32_t qh = 0xA5u | 0x0Fu << 8 | 0xF0u << 16 | 0x81u << 24; /* little-endian bits */
    float wa[32], wb[32];
    for (int j = 0; j < 16; j++) {
        a.qs[j] = b.qs[j] = (uint8_t)((j * 7 % 16) | ((j * 3 % 16) << 4));
        const int lo = (j * 7 % 16) + 16 * (int)((qh >> j) & 1);
        const int hi = (j * 3 % 16) + 16 * (int)((qh >> (j + 16)) & 1);
        wa[j] = (lo - 16) * 0.25f;
        wa[j + 16] = (hi - 16) * 0.25f;
        wb[j] = lo * 2.f + 0.75f;
        wb[j + 16] = hi * 2.f + 0.75f;
    }
    check_deq(PC_TYPE_Q5_0, &a, wa, 32);
    check_deq(PC_TYPE_Q5_1, &b, wb, 32);
}

static void test_q8(void) {
    pc_block_q8_0 a = {.d = h(0.125f)};
    pc_block_q8_1 b = {.d = h(-4.f), .s = h(123.f)};
    pc_block_q8_K k = {.d = 0.01f};
    float wa[32], wb[32], wk[256];
    for (int j = 0; j < 32; j++) {
        a.qs[j] = b.qs[j] = (int8_t)(j * 8 - 127);
        wa[j] = (j * 8 - 127) * 0.125f;
        wb[j] = (j * 8 - 127) * -4.f;
    }
    for (int j = 0; j < 256; j++) {
        k.qs[j] = (int8_t)(j - 128);
        wk[j] = 0.01f * (float)(j - 128);
    }
    check_deq(PC_TYPE_Q8_0, &a, wa, 32);
    check_deq(PC_TYPE_Q8_1, &b, wb, 32);
    check_deq(PC_TYPE_Q8_K, &k, wk, 256);
}

/* K-quants: logical values q[e] and sub-block scales packed by hand below. */

/* Q2_K/Q3_K low bits: the 256 values are two halves of 128; in a half, byte l
 * of its 32 holds elements l, l+32, l+64, l+96 in bit pairs 0-1, 2-3, 4-5, 6-7. */
static void pack_2bit(const int *q, uint8_t qs[64]) {
    memset(qs, 0, 64);
    for (int half = 0; half < 2; half++)
        for (int l = 0; l < 32; l++)
            for (int k = 0; k < 4; k++) qs[32 * half + l] |= (uint8_t)((q[128 * half + 32 * k + l] & 3) << (2 * k));
}

static void test_q2_K(void) {
    pc_block_q2_K b = {.d = h(0.5f), .dmin = h(0.25f)};
    int q[256];
    float want[256];
    for (int s = 0; s < 16; s++) b.scales[s] = (uint8_t)((s % 16) | (((15 - s) % 16) << 4)); /* scale | min << 4 */
    for (int e = 0; e < 256; e++) {
        q[e] = (e * 5 + e / 7) % 4;
        const int s = e / 16;
        want[e] = 0.5f * (float)(s % 16) * (float)q[e] - 0.25f * (float)((15 - s) % 16);
    }
    pack_2bit(q, b.qs);
    check_deq(PC_TYPE_Q2_K, &b, want, 256);
}

static void test_q3_K(void) {
    pc_block_q3_K b = {.d = h(0.5f)};
    int sc[16], q[256], low[256];
    float want[256];
    for (int s = 0; s < 16; s++) sc[s] = s * 4 - 32; /* -32..28, stored as sc + 32 in 6 bits */
    /* Scale s: low 4 bits in byte s%8 (low nibble for s < 8, high for s >= 8),
     * high 2 bits in byte 8 + s%4 at bit 2*(s/4). */
    for (int s = 0; s < 16; s++) {
        const int v = sc[s] + 32;
        b.scales[s % 8] |= (uint8_t)((v & 15) << (s < 8 ? 0 : 4));
        b.scales[8 + s % 4] |= (uint8_t)((v >> 4) << (2 * (s / 4)));
    }
    for (int e = 0; e < 256; e++) {
        q[e] = (e * 3 + e / 5) % 8 - 4; /* -4..3 */
        low[e] = (q[e] + 4) & 3;
        /* hmask bit set: value = low bits; clear: low bits - 4. Element e uses bit e/32 of hmask[e%32]. */
        if (q[e] >= 0) b.hmask[e % 32] |= (uint8_t)(1 << (e / 32));
        want[e] = 0.5f * (float)sc[e / 16] * (float)q[e];
    }
    pack_2bit(low, b.qs);
    check_deq(PC_TYPE_Q3_K, &b, want, 256);
}

/* Q4_K/Q5_K scales: sub-block j < 4 keeps scale and min in the low 6 bits of
 * bytes j and j+4; j >= 4 keeps the low 4 bits in byte j+4 (scale low nibble,
 * min high nibble) and the top 2 bits in the top bits of bytes j-4 and j. */
static void pack_k4_scales(const int *sc, const int *mn, uint8_t out[12]) {
    memset(out, 0, 12);
    for (int j = 0; j < 4; j++) {
        out[j] = (uint8_t)(sc[j] | ((sc[j + 4] >> 4) << 6));
        out[j + 4] = (uint8_t)(mn[j] | ((mn[j + 4] >> 4) << 6));
        out[j + 8] = (uint8_t)((sc[j + 4] & 15) | ((mn[j + 4] & 15) << 4));
    }
}

static void test_q4_K_q5_K(void) {
    pc_block_q4_K a = {.d = h(0.125f), .dmin = h(0.5f)};
    pc_block_q5_K b = {.d = h(0.125f), .dmin = h(0.5f)};
    int sc[8], mn[8];
    float wa[256], wb[256];
    for (int j = 0; j < 8; j++) {
        sc[j] = 63 - 7 * j;
        mn[j] = 5 + 8 * j;
    }
    pack_k4_scales(sc, mn, a.scales);
    pack_k4_scales(sc, mn, b.scales);
    for (int e = 0; e < 256; e++) {
        const int q = (e * 11 + e / 9) % 32;
        /* 64-value chunks: byte l of chunk c's 32 holds element 64c+l (low) and 64c+32+l (high);
         * Q5_K's fifth bit of element e is bit e/32 of qh[e%32]. */
        const int c = e / 64, l = e % 32, high = (e % 64) >= 32;
        a.qs[32 * c + l] |= (uint8_t)((q & 15) << (high ? 4 : 0));
        b.qs[32 * c + l] |= (uint8_t)((q & 15) << (high ? 4 : 0));
        b.qh[l] |= (uint8_t)((q >> 4) << (e / 32));
        wa[e] = 0.125f * (float)sc[e / 32] * (float)(q & 15) - 0.5f * (float)mn[e / 32];
        wb[e] = 0.125f * (float)sc[e / 32] * (float)q - 0.5f * (float)mn[e / 32];
    }
    check_deq(PC_TYPE_Q4_K, &a, wa, 256);
    check_deq(PC_TYPE_Q5_K, &b, wb, 256);
}

static void test_q6_K(void) {
    pc_block_q6_K b = {.d = h(0.25f)};
    float want[256];
    for (int s = 0; s < 16; s++) b.scales[s] = (int8_t)(s * 17 - 128);
    for (int e = 0; e < 256; e++) {
        const int q = (e * 13 + e / 3) % 64; /* stored 0..63, value q - 32 */
        /* Halves of 128 use ql[64], qh[32]; in a half, element 32k+l: k=0 low nibble of
         * ql[l], k=1 low of ql[32+l], k=2 high of ql[l], k=3 high of ql[32+l];
         * its top 2 bits at bits 2k of qh[l]. */
        const int half = e / 128, k = (e % 128) / 32, l = e % 32;
        b.ql[64 * half + 32 * (k % 2) + l] |= (uint8_t)((q & 15) << (k >= 2 ? 4 : 0));
        b.qh[32 * half + l] |= (uint8_t)((q >> 4) << (2 * k));
        want[e] = 0.25f * (float)b.scales[e / 16] * (float)(q - 32);
    }
    check_deq(PC_TYPE_Q6_K, &b, want, 256);
}

static void test_float_types(void) {
    const pc_f16 hf[4] = {0x3C00, 0xC000, 0x3800, 0x0001}; /* 1, -2, 0.5, 2^-24 */
    const pc_bf16 bf[4] = {0x3F80, 0xC040, 0x3E00, 0x0000}; /* 1, -3, 0.125, 0 */
    const float wh[4] = {1.f, -2.f, 0.5f, 5.9604644775390625e-8f}, wbf[4] = {1.f, -3.f, 0.125f, 0.f};
    check_deq(PC_TYPE_F16, hf, wh, 4);
    check_deq(PC_TYPE_BF16, bf, wbf, 4);
    check_deq(PC_TYPE_F32, wh, wh, 4);
    float back[4];
    pc_f16 hq[4];
    CHECK(pc_quantize_row(PC_TYPE_F16, wh, hq, 4) && memcmp(hq, hf, sizeof hq) == 0);
    CHECK(pc_dequantize_row(PC_TYPE_F16, hq, back, 4) && memcmp(back, wh, sizeof back) == 0);
    CHECK(!pc_dequantize_row(PC_TYPE_I32, hf, back, 4));
    CHECK(!pc_dequantize_row(PC_TYPE_Q4_0, hf, back, 31)); /* not a whole block */
}

/* llama.cpp's activation rules: d = amax/127, q = round-half-even(x * 127/amax). */
static void test_activation_q8_0_q8_1(void) {
    float x[32] = {0};
    x[0] = 127.f;  /* amax: d = 1 exactly */
    x[1] = -63.5f; /* ties go to even: -64 */
    x[2] = 0.5f;   /* -> 0 */
    x[3] = 1.5f;   /* -> 2 */
    x[4] = 2.5f;   /* -> 2 */
    x[5] = -100.2f;
    pc_block_q8_0 a;
    pc_block_q8_1 b;
    CHECK(pc_quantize_row(PC_TYPE_Q8_0, x, &a, 32));
    CHECK(pc_quantize_row(PC_TYPE_Q8_1, x, &b, 32));
    const int8_t want[6] = {127, -64, 0, 2, 2, -100};
    CHECK(memcmp(a.qs, want, 6) == 0 && memcmp(b.qs, want, 6) == 0);
    CHECK(a.d == 0x3C00 && b.d == 0x3C00);
    CHECK(b.s == pc_f32_to_f16(127.f - 64 + 0 + 2 + 2 - 100)); /* s = d * sum(q) */

    for (int j = 0; j < 32; j++) x[j] = 0.f;
    CHECK(pc_quantize_row(PC_TYPE_Q8_1, x, &b, 32));
    CHECK(b.d == 0 && b.s == 0 && b.qs[7] == 0);
}

/* Q8_K: iscale = -127/max with max the signed value of largest magnitude; d = 1/iscale. */
static void test_activation_q8_K(void) {
    float x[256];
    for (int j = 0; j < 256; j++) x[j] = (float)((j * 37) % 101 - 50);
    x[77] = -254.f; /* iscale = 0.5, d = 2 */
    pc_block_q8_K k;
    CHECK(pc_quantize_row(PC_TYPE_Q8_K, x, &k, 256));
    CHECK(k.d == 2.f);
    int bad = 0;
    for (int j = 0; j < 256; j++) {
        const float v = 0.5f * x[j];
        int want = (int)v;                                     /* v is an integer or a half */
        if (v != (float)want) want = (want % 2 == 0) ? want : want + (v > 0 ? 1 : -1);
        bad += k.qs[j] != want;
    }
    CHECK_MSG(bad == 0, "%d q8_K values", bad);
    for (int s = 0; s < 16; s++) {
        int sum = 0;
        for (int j = 0; j < 16; j++) sum += k.qs[16 * s + j];
        CHECK_EQ_INT(k.bsums[s], sum);
    }
}

/* Round trip on random data: RMS error relative to the data's RMS, per type. */
static void test_round_trip(test_rng *rng) {
    static const struct { pc_type t; double max_rel_rms; } cases[] = {
        /* bounds ~25% above the uniform-grid rms step/sqrt(12) these grids give */
        {PC_TYPE_F32, 0.0},    {PC_TYPE_F16, 3e-4},   {PC_TYPE_BF16, 2e-3},  {PC_TYPE_Q8_0, 7e-3},
        {PC_TYPE_Q8_1, 7e-3},  {PC_TYPE_Q8_K, 0.014}, {PC_TYPE_Q6_K, 0.025}, {PC_TYPE_Q5_0, 0.06},
        {PC_TYPE_Q5_1, 0.045}, {PC_TYPE_Q5_K, 0.045}, {PC_TYPE_Q4_0, 0.115}, {PC_TYPE_Q4_1, 0.09},
        {PC_TYPE_Q4_K, 0.09},  {PC_TYPE_Q3_K, 0.19},  {PC_TYPE_Q2_K, 0.38},
    };
    enum { N = 4096 };
    static float x[N], y[N];
    static uint8_t q[N * 4];
    for (int i = 0; i < N; i++) x[i] = test_rng_float(rng) * (i % 97 == 0 ? 4.f : 1.f);
    double ss = 0;
    for (int i = 0; i < N; i++) ss += (double)x[i] * x[i];
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        CHECK(pc_quantize_row(cases[c].t, x, q, N));
        CHECK(pc_dequantize_row(cases[c].t, q, y, N));
        double se = 0;
        for (int i = 0; i < N; i++) se += ((double)y[i] - x[i]) * ((double)y[i] - x[i]);
        const double rel = sqrt(se / ss);
        CHECK_MSG(rel <= cases[c].max_rel_rms, "%s: relative rms error %.4g > %.4g", pc_type_name(cases[c].t), rel,
                  cases[c].max_rel_rms);
    }
    /* an all-zero block quantizes to zeros without dividing by zero */
    static const float z[256] = {0};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        CHECK(pc_quantize_row(cases[c].t, z, q, 256) && pc_dequantize_row(cases[c].t, q, y, 256));
        int bad = 0;
        for (int i = 0; i < 256; i++) bad += y[i] != 0.f;
        CHECK_MSG(bad == 0, "%s: zero block", pc_type_name(cases[c].t));
    }
}

/* The SIMD activation quantizers the matmul uses write pc_quantize_row's bytes. */
static void test_simd_quantizers(test_rng *rng) {
    enum { N = 2048 };
    static float x[N];
    static uint8_t a[N * 2], b[N * 2];
    for (int i = 0; i < N; i++) x[i] = test_rng_float(rng) * (i % 53 == 0 ? 9.f : 1.f);
    for (int i = 256; i < 288; i++) x[i] = (float)(i % 9) - 4.5f; /* exact ties after scaling */
    for (int i = 512; i < 768; i++) x[i] = 0.f;                   /* zero blocks */
    x[300] = 20.f; /* equal magnitudes, opposite signs: the first one sets Q8_K's sign */
    x[301] = -20.f;
    x[1024 + 255] = 30.f; /* Q8_K's largest magnitude last in its block */
    x[1280 + 8] = -30.f;  /* first in a later group of 8, and again with the other sign further on */
    x[1280 + 200] = 30.f;
    for (int i = 1536; i < 1792; i++) x[i] = i % 2 ? 0.75f : -0.75f; /* every value of the block ties */
    static const pc_type weights[] = {PC_TYPE_Q4_0, PC_TYPE_Q4_1, PC_TYPE_Q8_0, PC_TYPE_Q4_K, PC_TYPE_Q6_K};
    for (int isa = PC_ISA_SCALAR; isa <= (int)pc_isa_detect(); isa++)
        for (size_t w = 0; w < sizeof weights / sizeof weights[0]; w++) {
            pc_dot_kernel k;
            CHECK(pc_dot_kernel_get(weights[w], (pc_isa)isa, &k));
            if (!k.quant) continue;
            const pc_type xt = pc_vec_dot_type(weights[w]);
            memset(a, 0x5A, sizeof a);
            memset(b, 0x5A, sizeof b);
            CHECK(pc_quantize_row(xt, x, a, N));
            k.quant(x, b, N);
            CHECK_MSG(memcmp(a, b, pc_row_size(xt, N)) == 0, "%s quantizer on %s", pc_type_name(xt),
                      pc_isa_name((pc_isa)isa));
        }
}

int main(void) {
    test_rng rng = {0x9E3779B97F4A7C15ULL};
    test_q4_0_q4_1();
    test_q5();
    test_q8();
    test_q2_K();
    test_q3_K();
    test_q4_K_q5_K();
    test_q6_K();
    test_float_types();
    test_activation_q8_0_q8_1();
    test_activation_q8_K();
    test_round_trip(&rng);
    test_simd_quantizers(&rng);
    return check_report();
}
