/* ops.h - the small element-wise kernels of the forward pass (CPU).
 * Pure functions over caller-owned buffers; no allocation, no threads. */
#ifndef PC_KERNELS_CPU_OPS_H
#define PC_KERNELS_CPU_OPS_H

#include <stdint.h>

#include "kernels/cpu/quant.h"

/* y = x / sqrt(mean(x^2) + eps) * w, n elements. The sum of squares is in double like llama.cpp's, but in
 * 16 fixed lanes rather than its one chain (ops.c says why), so a result may differ from its in the last place. */
void pc_rmsnorm(float *y, const float *x, const float *w, int64_t n, float eps);

/* RoPE cache for one position: cos/sin of each rotated pair (n_rot/2 entries).
 * theta_i = pos / scale * base^(-2i/n_rot) / freq_factor[i] (freq_factors may be NULL),
 * computed by repeated multiplication as llama.cpp does, so angles match it bit for bit. */
void pc_rope_cache(float *cos_out, float *sin_out, int32_t pos, int32_t n_rot, float base, float scale,
                   const float *freq_factors);
/* Rotates the first n_rot dims of each of n_heads vectors of length head_dim.
 * neox: pairs (i, i + n_rot/2); otherwise pairs (2i, 2i+1). */
void pc_rope_apply(float *x, int32_t n_heads, int32_t head_dim, int32_t n_rot, const float *cos_c, const float *sin_c,
                   int neox);

/* gate[i] = silu(gate[i]) * up[i] */
void pc_swiglu(float *gate, const float *up, int64_t n);
/* pc_swiglu with AVX2 and FMA, the same bits (swiglu_avx2.c says why; where it
 * cannot promise them it is pc_swiglu). Only where pc_isa_detect() >= PC_ISA_AVX2. */
void pc_swiglu_avx2(float *gate, const float *up, int64_t n);
typedef void (*pc_swiglu_fn)(float *gate, const float *up, int64_t n);
/* The fastest swiglu of those isa allows (isa <= pc_isa_detect()); all give the same bits. */
pc_swiglu_fn pc_swiglu_for(pc_isa isa);
/* y[i] = expf(x[i]), the same bits, as pc_swiglu_avx2 computes it (for its test). */
void pc_expf_avx2(float *y, const float *x, int64_t n);
/* y[i * stride] = pc_f32_to_f16(x[i]) for i < n (round to nearest even). */
void pc_f16_store(pc_f16 *y, size_t stride, const float *x, int64_t n);
/* pc_f16_store with F16C, the same bits. Only where pc_isa_detect() >= PC_ISA_AVX2. */
void pc_f16_store_avx2(pc_f16 *y, size_t stride, const float *x, int64_t n);
typedef void (*pc_f16_store_fn)(pc_f16 *y, size_t stride, const float *x, int64_t n);
/* The fastest pc_f16_store of those isa allows (isa <= pc_isa_detect()); all give the same bits. */
pc_f16_store_fn pc_f16_store_for(pc_isa isa);
/* x[i] += y[i] */
void pc_add(float *x, const float *y, int64_t n);

#endif
