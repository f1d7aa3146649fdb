/* quant_k.c - the K-quants (256-element super-blocks): dequantization and
 * reference quantization.
 *
 * Layouts are GGUF's. Weight quantizers here are simple and deterministic:
 * per sub-block a scale (and a min) from its range, the sub-block scales
 * quantized against the super-block's f16 scale, then each value rounded on
 * the grid of the rounded scales. They do not search for the error-optimal
 * scale as llama.cpp's do; they exist for tests and tools, not for shipping
 * models. Q8_K (activations) follows llama.cpp exactly: iscale = -127/max with
 * max the signed value of largest magnitude, q = min(127, round(iscale*x)),
 * d = 1/iscale, bsums over each 16 values. */
#include <math.h>

#include "kernels/cpu/quant_impl.h"

enum { QK = PC_QK_K };

static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* Element e of a Q2_K/Q3_K block: 2 bits at qs[(e/128)*32 + e%32] >> 2*((e%128)/32). */
static int q2_bits(const uint8_t *qs, int e) {
    return (qs[(e / 128) * 32 + e % 32] >> (2 * ((e % 128) / 32))) & 3;
}

static void q2_set(uint8_t *qs, int e, int v) {
    qs[(e / 128) * 32 + e % 32] |= (uint8_t)((v & 3) << (2 * ((e % 128) / 32)));
}

/* Element e of a Q4_K/Q5_K block: nibble of qs[(e/64)*32 + e%32], high when (e%64) >= 32. */
static int q4k_nibble(const uint8_t *qs, int e) {
    return (qs[(e / 64) * 32 + e % 32] >> (4 * ((e % 64) / 32))) & 0xF;
}

static void q4k_set(uint8_t *qs, int e, int v) {
    qs[(e / 64) * 32 + e % 32] |= (uint8_t)((v & 0xF) << (4 * ((e % 64) / 32)));
}

/* Element e of a Q6_K block: 6 bits, -32 offset applied by the caller. */
static int q6_bits(const uint8_t *ql, const uint8_t *qh, int e) {
    const int h = e / 128, k = (e % 128) / 32, l = e % 32;
    const int lo = (ql[64 * h + (k & 1) * 32 + l] >> (4 * (k >> 1))) & 0xF;
    const int hi = (qh[32 * h + l] >> (2 * k)) & 3;
    return lo | (hi << 4);
}

static void q6_set(uint8_t *ql, uint8_t *qh, int e, int v) {
    const int h = e / 128, k = (e % 128) / 32, l = e % 32;
    ql[64 * h + (k & 1) * 32 + l] |= (uint8_t)((v & 0xF) << (4 * (k >> 1)));
    qh[32 * h + l] |= (uint8_t)(((v >> 4) & 3) << (2 * k));
}

void pc_dequantize_q2_K(const pc_block_q2_K *x, float *y, int64_t n) {
    for (int64_t i = 0; i < n / QK; i++, y += QK) {
        const float d = pc_f16_to_f32(x[i].d), dmin = pc_f16_to_f32(x[i].dmin);
        for (int e = 0; e < QK; e++) {
            const uint8_t sc = x[i].scales[e / 16];
            y[e] = d * (float)(sc & 0xF) * (float)q2_bits(x[i].qs, e) - dmin * (float)(sc >> 4);
        }
    }
}

void pc_dequantize_q3_K(const pc_block_q3_K *x, float *y, int64_t n) {
    int8_t sc[16];
    for (int64_t i = 0; i < n / QK; i++, y += QK) {
        const float d = pc_f16_to_f32(x[i].d);
        pc_q3k_scales(x[i].scales, sc);
        for (int e = 0; e < QK; e++) {
            const int high = (x[i].hmask[e % 32] >> (e / 32)) & 1;
            const int q = q2_bits(x[i].qs, e) - (high ? 0 : 4);
            y[e] = d * (float)sc[e / 16] * (float)q;
        }
    }
}

void pc_dequantize_q4_K(const pc_block_q4_K *x, float *y, int64_t n) {
    for (int64_t i = 0; i < n / QK; i++, y += QK) {
        const float d = pc_f16_to_f32(x[i].d), dmin = pc_f16_to_f32(x[i].dmin);
        for (int e = 0; e < QK; e++) {
            uint8_t sc, m;
            pc_k4_scale_min(e / 32, x[i].scales, &sc, &m);
            y[e] = d * (float)sc * (float)q4k_nibble(x[i].qs, e) - dmin * (float)m;
        }
    }
}

void pc_dequantize_q5_K(const pc_block_q5_K *x, float *y, int64_t n) {
    for (int64_t i = 0; i < n / QK; i++, y += QK) {
        const float d = pc_f16_to_f32(x[i].d), dmin = pc_f16_to_f32(x[i].dmin);
        for (int e = 0; e < QK; e++) {
            uint8_t sc, m;
            pc_k4_scale_min(e / 32, x[i].scales, &sc, &m);
            const int q = q4k_nibble(x[i].qs, e) | (((x[i].qh[e % 32] >> (e / 32)) & 1) << 4);
            y[e] = d * (float)sc * (float)q - dmin * (float)m;
        }
    }
}

void pc_dequantize_q6_K(const pc_block_q6_K *x, float *y, int64_t n) {
    for (int64_t i = 0; i < n / QK; i++, y += QK) {
        const float d = pc_f16_to_f32(x[i].d);
        for (int e = 0; e < QK; e++)
            y[e] = d * (float)x[i].scales[e / 16] * (float)(q6_bits(x[i].ql, x[i].qh, e) - 32);
    }
}

void pc_dequantize_q8_K(const pc_block_q8_K *x, float *y, int64_t n) {
    for (int64_t i = 0; i < n / QK; i++, y += QK)
        for (int e = 0; e < QK; e++) y[e] = x[i].d * (float)x[i].qs[e];
}

/* Scale and min of each sub-block of an offset type (value = d*sc*q - dmin*m):
 * the sub-block's range [min(0, lo), hi] split into nmax steps. */
static void sub_ranges(const float *x, int sub, int nmax, float *scale, float *mins) {
    for (int s = 0; s < QK / sub; s++) {
        float lo = 0.f, hi = -INFINITY;
        for (int j = 0; j < sub; j++) {
            lo = fminf(lo, x[s * sub + j]);
            hi = fmaxf(hi, x[s * sub + j]);
        }
        scale[s] = (hi - lo) / (float)nmax;
        mins[s] = -lo;
    }
}

static float max_of(const float *v, int n) {
    float m = 0.f;
    for (int i = 0; i < n; i++) m = fmaxf(m, v[i]);
    return m;
}

/* Quantizes positive per-sub-block values v against a super scale d = max/levels. */
static void quant_levels(const float *v, int n, int levels, float d, uint8_t *out) {
    const float id = d > 0.f ? 1.f / d : 0.f;
    for (int i = 0; i < n; i++) out[i] = (uint8_t)clampi(pc_nearest_int(v[i] * id), 0, levels);
}

/* The grid value of x for a sub-block with step dl and offset ml, clamped to [0, nmax]. */
static int offset_q(float x, float dl, float ml, int nmax) {
    return dl > 0.f ? clampi(pc_nearest_int((x + ml) / dl), 0, nmax) : 0;
}

void pc_quantize_q2_K(const float *x, pc_block_q2_K *y, int64_t n) {
    float scale[16], mins[16];
    uint8_t ls[16], lm[16];
    for (int64_t i = 0; i < n / QK; i++, x += QK) {
        sub_ranges(x, 16, 3, scale, mins);
        const float d = max_of(scale, 16) / 15.f, dmin = max_of(mins, 16) / 15.f;
        quant_levels(scale, 16, 15, d, ls);
        quant_levels(mins, 16, 15, dmin, lm);
        memset(&y[i], 0, sizeof y[i]);
        y[i].d = pc_f32_to_f16(d);
        y[i].dmin = pc_f32_to_f16(dmin);
        const float d16 = pc_f16_to_f32(y[i].d), m16 = pc_f16_to_f32(y[i].dmin);
        for (int s = 0; s < 16; s++) y[i].scales[s] = (uint8_t)(ls[s] | (lm[s] << 4));
        for (int e = 0; e < QK; e++)
            q2_set(y[i].qs, e, offset_q(x[e], d16 * ls[e / 16], m16 * lm[e / 16], 3));
    }
}

/* The signed value of largest magnitude in v[0..n). */
static float signed_amax(const float *v, int n) {
    float amax = 0.f, max = 0.f;
    for (int i = 0; i < n; i++) {
        if (fabsf(v[i]) > amax) {
            amax = fabsf(v[i]);
            max = v[i];
        }
    }
    return max;
}

/* Signed symmetric sub-block scales: the extreme value maps to -half. */
static void signed_scales(const float *x, int sub, int half, float *scale) {
    for (int s = 0; s < QK / sub; s++) scale[s] = signed_amax(x + s * sub, sub) / (float)-half;
}

static void q3k_pack_scales(const int8_t sc[16], uint8_t packed[12]) {
    memset(packed, 0, 12);
    for (int s = 0; s < 16; s++) {
        const int v = sc[s] + 32;
        packed[s % 8] |= (uint8_t)((v & 0xF) << (4 * (s / 8)));
        packed[8 + s % 4] |= (uint8_t)(((v >> 4) & 3) << (2 * (s / 4)));
    }
}

void pc_quantize_q3_K(const float *x, pc_block_q3_K *y, int64_t n) {
    float scale[16];
    int8_t sc[16];
    for (int64_t i = 0; i < n / QK; i++, x += QK) {
        signed_scales(x, 16, 4, scale);
        const float d = signed_amax(scale, 16) / -32.f, id = d != 0.f ? 1.f / d : 0.f;
        for (int s = 0; s < 16; s++) sc[s] = (int8_t)clampi(pc_nearest_int(scale[s] * id), -32, 31);
        memset(&y[i], 0, sizeof y[i]);
        y[i].d = pc_f32_to_f16(d);
        q3k_pack_scales(sc, y[i].scales);
        const float d16 = pc_f16_to_f32(y[i].d);
        for (int e = 0; e < QK; e++) {
            const float dl = d16 * sc[e / 16];
            const int q = dl != 0.f ? clampi(pc_nearest_int(x[e] / dl), -4, 3) + 4 : 4;
            q2_set(y[i].qs, e, q & 3);
            y[i].hmask[e % 32] |= (uint8_t)((q >> 2) << (e / 32));
        }
    }
}

/* Packs eight 6-bit scales and mins the way pc_k4_scale_min reads them. */
static void k4_pack_scales(const uint8_t sc[8], const uint8_t m[8], uint8_t q[12]) {
    for (int j = 0; j < 4; j++) {
        q[j] = (uint8_t)(sc[j] | ((sc[j + 4] >> 4) << 6));
        q[j + 4] = (uint8_t)(m[j] | ((m[j + 4] >> 4) << 6));
        q[j + 8] = (uint8_t)((sc[j + 4] & 0xF) | ((m[j + 4] & 0xF) << 4));
    }
}

/* Shared by Q4_K and Q5_K: fills d, dmin, scales and the values q[256] in 0..nmax. */
static void k4_quantize(const float *x, int nmax, pc_f16 *d_out, pc_f16 *dmin_out, uint8_t scales[12],
                        uint8_t q[QK]) {
    float scale[8], mins[8];
    uint8_t ls[8], lm[8];
    sub_ranges(x, 32, nmax, scale, mins);
    const float d = max_of(scale, 8) / 63.f, dmin = max_of(mins, 8) / 63.f;
    quant_levels(scale, 8, 63, d, ls);
    quant_levels(mins, 8, 63, dmin, lm);
    *d_out = pc_f32_to_f16(d);
    *dmin_out = pc_f32_to_f16(dmin);
    k4_pack_scales(ls, lm, scales);
    const float d16 = pc_f16_to_f32(*d_out), m16 = pc_f16_to_f32(*dmin_out);
    for (int e = 0; e < QK; e++) q[e] = (uint8_t)offset_q(x[e], d16 * ls[e / 32], m16 * lm[e / 32], nmax);
}

void pc_quantize_q4_K(const float *x, pc_block_q4_K *y, int64_t n) {
    uint8_t q[QK];
    for (int64_t i = 0; i < n / QK; i++, x += QK) {
        memset(&y[i], 0, sizeof y[i]);
        k4_quantize(x, 15, &y[i].d, &y[i].dmin, y[i].scales, q);
        for (int e = 0; e < QK; e++) q4k_set(y[i].qs, e, q[e]);
    }
}

void pc_quantize_q5_K(const float *x, pc_block_q5_K *y, int64_t n) {
    uint8_t q[QK];
    for (int64_t i = 0; i < n / QK; i++, x += QK) {
        memset(&y[i], 0, sizeof y[i]);
        k4_quantize(x, 31, &y[i].d, &y[i].dmin, y[i].scales, q);
        for (int e = 0; e < QK; e++) {
            q4k_set(y[i].qs, e, q[e] & 0xF);
            y[i].qh[e % 32] |= (uint8_t)((q[e] >> 4) << (e / 32));
        }
    }
}

void pc_quantize_q6_K(const float *x, pc_block_q6_K *y, int64_t n) {
    float scale[16];
    for (int64_t i = 0; i < n / QK; i++, x += QK) {
        signed_scales(x, 16, 32, scale);
        const float d = signed_amax(scale, 16) / -128.f, id = d != 0.f ? 1.f / d : 0.f;
        memset(&y[i], 0, sizeof y[i]);
        for (int s = 0; s < 16; s++) y[i].scales[s] = (int8_t)clampi(pc_nearest_int(scale[s] * id), -128, 127);
        y[i].d = pc_f32_to_f16(d);
        const float d16 = pc_f16_to_f32(y[i].d);
        for (int e = 0; e < QK; e++) {
            const float dl = d16 * y[i].scales[e / 16];
            const int q = dl != 0.f ? clampi(pc_nearest_int(x[e] / dl), -32, 31) : 0;
            q6_set(y[i].ql, y[i].qh, e, q + 32);
        }
    }
}

void pc_quantize_q8_K(const float *x, pc_block_q8_K *y, int64_t n) {
    for (int64_t i = 0; i < n / QK; i++, x += QK) {
        const float max = signed_amax(x, QK);
        memset(&y[i], 0, sizeof y[i]);
        if (max == 0.f) continue;
        const float iscale = -127.f / max;
        for (int e = 0; e < QK; e++) {
            const int v = pc_nearest_int(iscale * x[e]);
            y[i].qs[e] = (int8_t)(v < 127 ? v : 127);
        }
        for (int s = 0; s < QK / 16; s++) {
            int sum = 0;
            for (int j = 0; j < 16; j++) sum += y[i].qs[16 * s + j];
            y[i].bsums[s] = (int16_t)sum;
        }
        y[i].d = 1.f / iscale;
    }
}
