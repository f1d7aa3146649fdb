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
 * path ran when the same path is selected. */
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
