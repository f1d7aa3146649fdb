/* quant_impl.h - internals shared by the CPU quantization and dot-product files.
 *
 * Not a public interface: matmul.c, isa.c, pack.c and the per-ISA dot files use
 * it. A pc_dot_kernel pairs a type's single dot product (on the GGUF rows) with
 * its activation quantizer and, on the SIMD paths, the packed matmul kernel
 * (pack.h layouts). The contract between them is the determinism rule of
 * quant.h: for every (row, token) the packed kernel writes exactly the float
 * the dot returns, because both run the type's canonical sequence of
 * floating-point operations. */
#ifndef PC_KERNELS_CPU_QUANT_IMPL_H
#define PC_KERNELS_CPU_QUANT_IMPL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kernels/cpu/quant.h"

/* y[c * ys + r] = dot(row r, token c) for the nr (<= PC_PACK_ROWS) rows of the
 * packed row group at w and nc tokens of packed activations (pack.h's pc_xp_*,
 * rows of xs bytes). n: the row length in elements. */
typedef void (*pc_gemm_fn)(int64_t n, const void *w, const void *x, size_t xs, int nc, float *y, size_t ys, int nr);

/* Unpacks the packed row group at w (rows of n elements) into out: the prepared
 * layout (unsigned bytes and float scales) that the same type's gemm_prep reads
 * for every token tile of a token block. prep_block bytes per block of the row. */
typedef void (*pc_prep_fn)(int64_t n, const void *w, void *out);

/* Quantizes n floats to the activation type; the same bytes as pc_quantize_row. */
typedef void (*pc_quant_fn)(const float *src, void *dst, int64_t n);

typedef struct pc_dot_kernel {
    pc_vec_dot_fn dot;
    pc_quant_fn quant; /* NULL: pc_quantize_row */
    pc_gemm_fn gemm;   /* NULL: no packed kernel on this path */
    int gemm_tokens;   /* tokens a gemm call handles best at once (its widest tile) */
    pc_prep_fn prep;   /* with gemm_prep: the same outputs from a prepared row group */
    pc_gemm_fn gemm_prep;
    size_t prep_block;
} pc_dot_kernel;

/* Each returns false when that path has no kernel for weight type wt. A SIMD
 * path may leave dot NULL (the packable types: their single dot is the scalar
 * one, which the packed kernel matches bit for bit). */
bool pc_dot_scalar_get(pc_type wt, pc_dot_kernel *k);
bool pc_dot_avx2_get(pc_type wt, pc_dot_kernel *k);
bool pc_dot_avx512_get(pc_type wt, pc_dot_kernel *k);

/* The kernel pc_vec_dot_get(wt, isa) hands out, with its quantizer and packed kernel; false if none. */
bool pc_dot_kernel_get(pc_type wt, pc_isa isa, pc_dot_kernel *k);

/* K-quant (de)quantization, in quant_k.c; n is a multiple of PC_QK_K. */
void pc_dequantize_q2_K(const pc_block_q2_K *x, float *y, int64_t n);
void pc_dequantize_q3_K(const pc_block_q3_K *x, float *y, int64_t n);
void pc_dequantize_q4_K(const pc_block_q4_K *x, float *y, int64_t n);
void pc_dequantize_q5_K(const pc_block_q5_K *x, float *y, int64_t n);
void pc_dequantize_q6_K(const pc_block_q6_K *x, float *y, int64_t n);
void pc_dequantize_q8_K(const pc_block_q8_K *x, float *y, int64_t n);
void pc_quantize_q2_K(const float *x, pc_block_q2_K *y, int64_t n);
void pc_quantize_q3_K(const float *x, pc_block_q3_K *y, int64_t n);
void pc_quantize_q4_K(const float *x, pc_block_q4_K *y, int64_t n);
void pc_quantize_q5_K(const float *x, pc_block_q5_K *y, int64_t n);
void pc_quantize_q6_K(const float *x, pc_block_q6_K *y, int64_t n);
void pc_quantize_q8_K(const float *x, pc_block_q8_K *y, int64_t n);

/* Round to nearest, ties to even, for |v| < 2^22: the float adder does the
 * rounding, so the result does not depend on the libm or the rounding call. */
static inline int pc_nearest_int(float v) {
    float t = v + 12582912.f;
    int32_t i;
    memcpy(&i, &t, sizeof i);
    return (i & 0x007fffff) - 0x00400000;
}

/* The 6-bit scale and min of sub-block j (0..7) of a Q4_K/Q5_K block. */
static inline void pc_k4_scale_min(int j, const uint8_t *q, uint8_t *sc, uint8_t *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

/* The 16 signed 6-bit sub-block scales of a Q3_K block (already minus 32). */
static inline void pc_q3k_scales(const uint8_t packed[12], int8_t out[16]) {
    for (int s = 0; s < 16; s++) {
        int lo = (packed[s % 8] >> (4 * (s / 8))) & 0xF;
        int hi = (packed[8 + s % 4] >> (2 * (s / 4))) & 3;
        out[s] = (int8_t)((lo | (hi << 4)) - 32);
    }
}

#endif
