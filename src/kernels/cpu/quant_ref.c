/* quant_ref.c - plain-C dequantization and reference quantization of the
 * 32-element block types and the float types; dispatch for all types.
 *
 * Weight quantizers follow the simple round-to-grid schemes of GGUF's
 * reference quantizers (enough for tests and for building small models).
 * Activation quantizers (Q8_0, Q8_1) follow llama.cpp's x86 runtime exactly:
 * d = amax/127, multiplier 127/amax, round half to even, Q8_1's s = d * sum(q)
 * with d the unrounded float scale - so our logits track llama.cpp's.
 * The same code runs on every ISA path, so quantized activations never depend
 * on the path. */
#include <math.h>

#include "kernels/cpu/quant_impl.h"

static inline float f16(pc_f16 h) { return pc_f16_to_f32(h); }

static void deq_q4_0(const pc_block_q4_0 *x, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, y += 32) {
        const float d = f16(x[i].d);
        for (int j = 0; j < 16; j++) {
            y[j] = (float)((x[i].qs[j] & 0xF) - 8) * d;
            y[j + 16] = (float)((x[i].qs[j] >> 4) - 8) * d;
        }
    }
}

static void deq_q4_1(const pc_block_q4_1 *x, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, y += 32) {
        const float d = f16(x[i].d), m = f16(x[i].m);
        for (int j = 0; j < 16; j++) {
            y[j] = (float)(x[i].qs[j] & 0xF) * d + m;
            y[j + 16] = (float)(x[i].qs[j] >> 4) * d + m;
        }
    }
}

/* The 5-bit values of a Q5 block: low nibbles from qs, bit 4 from qh. */
static void q5_values(const uint8_t qh4[4], const uint8_t qs[16], int v[32]) {
    uint32_t qh;
    memcpy(&qh, qh4, 4);
    for (int j = 0; j < 16; j++) {
        v[j] = (qs[j] & 0xF) | (int)(((qh >> j) & 1) << 4);
        v[j + 16] = (qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1) << 4);
    }
}

static void deq_q5_0(const pc_block_q5_0 *x, float *y, int64_t nb) {
    int v[32];
    for (int64_t i = 0; i < nb; i++, y += 32) {
        const float d = f16(x[i].d);
        q5_values(x[i].qh, x[i].qs, v);
        for (int j = 0; j < 32; j++) y[j] = (float)(v[j] - 16) * d;
    }
}

static void deq_q5_1(const pc_block_q5_1 *x, float *y, int64_t nb) {
    int v[32];
    for (int64_t i = 0; i < nb; i++, y += 32) {
        const float d = f16(x[i].d), m = f16(x[i].m);
        q5_values(x[i].qh, x[i].qs, v);
        for (int j = 0; j < 32; j++) y[j] = (float)v[j] * d + m;
    }
}

static void deq_q8_0(const pc_block_q8_0 *x, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, y += 32) {
        const float d = f16(x[i].d);
        for (int j = 0; j < 32; j++) y[j] = (float)x[i].qs[j] * d;
    }
}

static void deq_q8_1(const pc_block_q8_1 *x, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, y += 32) {
        const float d = f16(x[i].d);
        for (int j = 0; j < 32; j++) y[j] = (float)x[i].qs[j] * d;
    }
}

/* Signed-max blocks (Q4_0, Q5_0): d = max / -half so the extreme maps to -half. */
static float signed_max(const float *x) {
    float amax = 0.f, max = 0.f;
    for (int j = 0; j < 32; j++) {
        if (amax < fabsf(x[j])) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    }
    return max;
}

static void min_max(const float *x, float *mn, float *mx) {
    *mn = INFINITY;
    *mx = -INFINITY;
    for (int j = 0; j < 32; j++) {
        *mn = fminf(*mn, x[j]);
        *mx = fmaxf(*mx, x[j]);
    }
}

static int clamp_int(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

static void quant_q4_0(const float *x, pc_block_q4_0 *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += 32) {
        const float d = signed_max(x) / -8.f, id = d != 0.f ? 1.f / d : 0.f;
        y[i].d = pc_f32_to_f16(d);
        for (int j = 0; j < 16; j++) {
            int a = clamp_int((int)(x[j] * id + 8.5f), 0, 15);
            int b = clamp_int((int)(x[j + 16] * id + 8.5f), 0, 15);
            y[i].qs[j] = (uint8_t)(a | (b << 4));
        }
    }
}

static void quant_q4_1(const float *x, pc_block_q4_1 *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += 32) {
        float mn, mx;
        min_max(x, &mn, &mx);
        const float d = (mx - mn) / 15.f, id = d != 0.f ? 1.f / d : 0.f;
        y[i].d = pc_f32_to_f16(d);
        y[i].m = pc_f32_to_f16(mn);
        for (int j = 0; j < 16; j++) {
            int a = clamp_int((int)((x[j] - mn) * id + 0.5f), 0, 15);
            int b = clamp_int((int)((x[j + 16] - mn) * id + 0.5f), 0, 15);
            y[i].qs[j] = (uint8_t)(a | (b << 4));
        }
    }
}

/* Packs 32 five-bit values into qs (low nibbles) and qh (bit 4). */
static void q5_pack(const int v[32], uint8_t qh4[4], uint8_t qs[16]) {
    uint32_t qh = 0;
    for (int j = 0; j < 16; j++) {
        qs[j] = (uint8_t)((v[j] & 0xF) | ((v[j + 16] & 0xF) << 4));
        qh |= (uint32_t)((v[j] >> 4) & 1) << j;
        qh |= (uint32_t)((v[j + 16] >> 4) & 1) << (j + 16);
    }
    memcpy(qh4, &qh, 4);
}

static void quant_q5_0(const float *x, pc_block_q5_0 *y, int64_t nb) {
    int v[32];
    for (int64_t i = 0; i < nb; i++, x += 32) {
        const float d = signed_max(x) / -16.f, id = d != 0.f ? 1.f / d : 0.f;
        y[i].d = pc_f32_to_f16(d);
        for (int j = 0; j < 32; j++) v[j] = clamp_int((int)(x[j] * id + 16.5f), 0, 31);
        q5_pack(v, y[i].qh, y[i].qs);
    }
}

static void quant_q5_1(const float *x, pc_block_q5_1 *y, int64_t nb) {
    int v[32];
    for (int64_t i = 0; i < nb; i++, x += 32) {
        float mn, mx;
        min_max(x, &mn, &mx);
        const float d = (mx - mn) / 31.f, id = d != 0.f ? 1.f / d : 0.f;
        y[i].d = pc_f32_to_f16(d);
        y[i].m = pc_f32_to_f16(mn);
        for (int j = 0; j < 32; j++) v[j] = clamp_int((int)((x[j] - mn) * id + 0.5f), 0, 31);
        q5_pack(v, y[i].qh, y[i].qs);
    }
}

/* A compare rather than fmaxf: fmaxf's NaN rules keep it out of line, and
 * this runs on every activation row. */
static float abs_max(const float *x, int n) {
    float amax = 0.f;
    for (int j = 0; j < n; j++) {
        const float a = fabsf(x[j]);
        amax = a > amax ? a : amax;
    }
    return amax;
}

/* Activations: llama.cpp's x86 quantize_row_q8_0 semantics. */
static void quant_q8_0(const float *x, pc_block_q8_0 *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += 32) {
        const float amax = abs_max(x, 32);
        const float id = amax != 0.f ? 127.f / amax : 0.f;
        y[i].d = pc_f32_to_f16(amax / 127.f);
        for (int j = 0; j < 32; j++) y[i].qs[j] = (int8_t)pc_nearest_int(x[j] * id);
    }
}

/* Activations for Q4_1/Q5_1: as Q8_0, plus s = d * sum(q) for the weights' min term. */
static void quant_q8_1(const float *x, pc_block_q8_1 *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += 32) {
        const float amax = abs_max(x, 32);
        const float d = amax / 127.f, id = amax != 0.f ? 127.f / amax : 0.f;
        int sum = 0;
        for (int j = 0; j < 32; j++) {
            y[i].qs[j] = (int8_t)pc_nearest_int(x[j] * id);
            sum += y[i].qs[j];
        }
        y[i].d = pc_f32_to_f16(d);
        y[i].s = pc_f32_to_f16(d * (float)sum);
    }
}

static bool deq_plain(pc_type t, const void *src, float *dst, int64_t n) {
    switch (t) {
    case PC_TYPE_F32: memcpy(dst, src, (size_t)n * sizeof(float)); return true;
    case PC_TYPE_F16: {
        const pc_f16 *h = src;
        for (int64_t i = 0; i < n; i++) dst[i] = pc_f16_to_f32(h[i]);
        return true;
    }
    case PC_TYPE_BF16: {
        const pc_bf16 *h = src;
        for (int64_t i = 0; i < n; i++) dst[i] = pc_bf16_to_f32(h[i]);
        return true;
    }
    default: return false;
    }
}

bool pc_dequantize_row(pc_type t, const void *src, float *dst, int64_t n) {
    const pc_type_info *ti = pc_type_get((uint32_t)t);
    if (!ti || n < 0 || n % ti->block_size != 0) return false;
    const int64_t nb = n / ti->block_size;
    switch (t) {
    case PC_TYPE_Q4_0: deq_q4_0(src, dst, nb); return true;
    case PC_TYPE_Q4_1: deq_q4_1(src, dst, nb); return true;
    case PC_TYPE_Q5_0: deq_q5_0(src, dst, nb); return true;
    case PC_TYPE_Q5_1: deq_q5_1(src, dst, nb); return true;
    case PC_TYPE_Q8_0: deq_q8_0(src, dst, nb); return true;
    case PC_TYPE_Q8_1: deq_q8_1(src, dst, nb); return true;
    case PC_TYPE_Q2_K: pc_dequantize_q2_K(src, dst, n); return true;
    case PC_TYPE_Q3_K: pc_dequantize_q3_K(src, dst, n); return true;
    case PC_TYPE_Q4_K: pc_dequantize_q4_K(src, dst, n); return true;
    case PC_TYPE_Q5_K: pc_dequantize_q5_K(src, dst, n); return true;
    case PC_TYPE_Q6_K: pc_dequantize_q6_K(src, dst, n); return true;
    case PC_TYPE_Q8_K: pc_dequantize_q8_K(src, dst, n); return true;
    default: return deq_plain(t, src, dst, n);
    }
}

static bool quant_plain(pc_type t, const float *src, void *dst, int64_t n) {
    switch (t) {
    case PC_TYPE_F32: memcpy(dst, src, (size_t)n * sizeof(float)); return true;
    case PC_TYPE_F16: {
        pc_f16 *h = dst;
        for (int64_t i = 0; i < n; i++) h[i] = pc_f32_to_f16(src[i]);
        return true;
    }
    case PC_TYPE_BF16: {
        pc_bf16 *h = dst;
        for (int64_t i = 0; i < n; i++) h[i] = pc_f32_to_bf16(src[i]);
        return true;
    }
    default: return false;
    }
}

bool pc_quantize_row(pc_type t, const float *src, void *dst, int64_t n) {
    const pc_type_info *ti = pc_type_get((uint32_t)t);
    if (!ti || n < 0 || n % ti->block_size != 0) return false;
    const int64_t nb = n / ti->block_size;
    switch (t) {
    case PC_TYPE_Q4_0: quant_q4_0(src, dst, nb); return true;
    case PC_TYPE_Q4_1: quant_q4_1(src, dst, nb); return true;
    case PC_TYPE_Q5_0: quant_q5_0(src, dst, nb); return true;
    case PC_TYPE_Q5_1: quant_q5_1(src, dst, nb); return true;
    case PC_TYPE_Q8_0: quant_q8_0(src, dst, nb); return true;
    case PC_TYPE_Q8_1: quant_q8_1(src, dst, nb); return true;
    case PC_TYPE_Q2_K: pc_quantize_q2_K(src, dst, n); return true;
    case PC_TYPE_Q3_K: pc_quantize_q3_K(src, dst, n); return true;
    case PC_TYPE_Q4_K: pc_quantize_q4_K(src, dst, n); return true;
    case PC_TYPE_Q5_K: pc_quantize_q5_K(src, dst, n); return true;
    case PC_TYPE_Q6_K: pc_quantize_q6_K(src, dst, n); return true;
    case PC_TYPE_Q8_K: pc_quantize_q8_K(src, dst, n); return true;
    default: return quant_plain(t, src, dst, n);
    }
}

pc_type pc_vec_dot_type(pc_type t) {
    switch (t) {
    case PC_TYPE_F32: return PC_TYPE_F32;
    case PC_TYPE_F16: return PC_TYPE_F16;
    case PC_TYPE_BF16: return PC_TYPE_BF16;
    case PC_TYPE_Q4_0:
    case PC_TYPE_Q5_0:
    case PC_TYPE_Q8_0: return PC_TYPE_Q8_0;
    case PC_TYPE_Q4_1:
    case PC_TYPE_Q5_1: return PC_TYPE_Q8_1;
    case PC_TYPE_Q2_K:
    case PC_TYPE_Q3_K:
    case PC_TYPE_Q4_K:
    case PC_TYPE_Q5_K:
    case PC_TYPE_Q6_K: return PC_TYPE_Q8_K;
    default: return PC_TYPE_COUNT;
    }
}
