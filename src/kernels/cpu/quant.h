/* quant.h - quantized tensor types on the CPU: reference (de)quantization and dot products.
 *
 * Dot products follow llama.cpp's scheme: the activation row is quantized to the
 * weight type's "vec_dot type" (Q8_0 for Q4_0/Q5_0/Q8_0, Q8_1 for Q4_1/Q5_1,
 * Q8_K for the K-quants, F16 for F16, BF16 for BF16, F32 for F32), then an
 * integer dot product per block is scaled and summed in block order.
 *
 * Determinism contract (Prompt Cache's exactness rests on it): the result of
 * pc_vec_dot for one (weight row, activation row) pair depends only on those
 * two rows - never on threads, on the other rows of a batch, or on which ISA
 * path ran when the same path is selected.
 *
 * The canonical order of the packable types (pack.h): integer sums are exact,
 * so only the float steps are fixed, each an IEEE single operation (fma fused):
 *   Q4_0, Q5_0, Q8_0, Q4_1, Q5_1 - per 32-block b: acc = fma(dw*dx, isum_b, acc);
 *       the min types then acc = fma(m, s, acc) (s: Q8_1's f16 d*sum).
 *   Q4_K, Q5_K - per super-block: t = 0; for each 32-value sub-block j
 *       t = fma(d*sc_j, isum_j, t); then t = fma(-dmin, sum_j m_j*bsum_j, t);
 *       acc = fma(t, dx, acc).
 *   Q6_K - per super-block: t = 0; for each 16-value sub-block j
 *       t = fma(d*sc_j, isum_j - 32*bsum_j, t) (values read 0..63); acc = fma(t, dx, acc).
 * acc starts at 0 and is the result. Every path computes exactly this, so the
 * result of a packable type is the same bits on every ISA path too. */
#ifndef PC_KERNELS_CPU_QUANT_H
#define PC_KERNELS_CPU_QUANT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tensor/types.h"

/* Which SIMD path the process uses, chosen once from CPUID. */
typedef enum pc_isa { PC_ISA_SCALAR = 0, PC_ISA_AVX2 = 1, PC_ISA_AVX512 = 2, PC_ISA_AVX512_VNNI = 3 } pc_isa;
pc_isa pc_isa_detect(void);
const char *pc_isa_name(pc_isa isa);

/* n must be a multiple of the type's block size. Supported for every type in
 * types.h except the integer and F64 types (returns false there). */
bool pc_dequantize_row(pc_type t, const void *src, float *dst, int64_t n);
/* Reference quantization of a float row into type t (weights for tests, activations). */
bool pc_quantize_row(pc_type t, const float *src, void *dst, int64_t n);

/* The activation type used with weight type t; PC_TYPE_COUNT if t has no dot product. */
pc_type pc_vec_dot_type(pc_type t);
/* *s = dot(weight row w of type wt, activation row x of pc_vec_dot_type(wt)), n elements. */
typedef void (*pc_vec_dot_fn)(int64_t n, float *s, const void *w, const void *x);
/* The dot product for weight type wt on the given ISA path (NULL if unsupported).
 * isa must not exceed pc_isa_detect(): a wider path's code would fault. A path
 * without its own kernel for wt hands out the next narrower one's. */
pc_vec_dot_fn pc_vec_dot_get(pc_type wt, pc_isa isa);

#endif
