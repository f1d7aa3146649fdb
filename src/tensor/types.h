/* types.h - tensor element types, their on-disk block layouts, and half-float conversions.
 *
 * Type ids and block layouts are GGUF's (the ggml numbering), so a tensor's
 * bytes in a mapped file are read in place. A quantized row of n elements is
 * n / block_size blocks laid end to end; n must be a multiple of block_size. */
#ifndef PC_TENSOR_TYPES_H
#define PC_TENSOR_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum pc_type {
    PC_TYPE_F32 = 0,
    PC_TYPE_F16 = 1,
    PC_TYPE_Q4_0 = 2,
    PC_TYPE_Q4_1 = 3,
    PC_TYPE_Q5_0 = 6,
    PC_TYPE_Q5_1 = 7,
    PC_TYPE_Q8_0 = 8,
    PC_TYPE_Q8_1 = 9,
    PC_TYPE_Q2_K = 10,
    PC_TYPE_Q3_K = 11,
    PC_TYPE_Q4_K = 12,
    PC_TYPE_Q5_K = 13,
    PC_TYPE_Q6_K = 14,
    PC_TYPE_Q8_K = 15,
    PC_TYPE_I8 = 24,
    PC_TYPE_I16 = 25,
    PC_TYPE_I32 = 26,
    PC_TYPE_I64 = 27,
    PC_TYPE_F64 = 28,
    PC_TYPE_BF16 = 30,
    PC_TYPE_COUNT = 40, /* upper bound of ids, not a type */
} pc_type;

typedef uint16_t pc_f16;  /* IEEE binary16 bits */
typedef uint16_t pc_bf16; /* bfloat16 bits */

#define PC_QK4_0 32
#define PC_QK4_1 32
#define PC_QK5_0 32
#define PC_QK5_1 32
#define PC_QK8_0 32
#define PC_QK8_1 32
#define PC_QK_K 256
#define PC_K_SCALE_SIZE 12

typedef struct { pc_f16 d; uint8_t qs[PC_QK4_0 / 2]; } pc_block_q4_0;
typedef struct { pc_f16 d, m; uint8_t qs[PC_QK4_1 / 2]; } pc_block_q4_1;
typedef struct { pc_f16 d; uint8_t qh[4]; uint8_t qs[PC_QK5_0 / 2]; } pc_block_q5_0;
typedef struct { pc_f16 d, m; uint8_t qh[4]; uint8_t qs[PC_QK5_1 / 2]; } pc_block_q5_1;
typedef struct { pc_f16 d; int8_t qs[PC_QK8_0]; } pc_block_q8_0;
/* s = d * sum(qs), used by the Q4_1/Q5_1 dot products for the min term. */
typedef struct { pc_f16 d, s; int8_t qs[PC_QK8_1]; } pc_block_q8_1;
typedef struct { uint8_t scales[PC_QK_K / 16]; uint8_t qs[PC_QK_K / 4]; pc_f16 d, dmin; } pc_block_q2_K;
typedef struct { uint8_t hmask[PC_QK_K / 8]; uint8_t qs[PC_QK_K / 4]; uint8_t scales[12]; pc_f16 d; } pc_block_q3_K;
typedef struct { pc_f16 d, dmin; uint8_t scales[PC_K_SCALE_SIZE]; uint8_t qs[PC_QK_K / 2]; } pc_block_q4_K;
typedef struct { pc_f16 d, dmin; uint8_t scales[PC_K_SCALE_SIZE]; uint8_t qh[PC_QK_K / 8]; uint8_t qs[PC_QK_K / 2]; } pc_block_q5_K;
typedef struct { uint8_t ql[PC_QK_K / 2]; uint8_t qh[PC_QK_K / 4]; int8_t scales[PC_QK_K / 16]; pc_f16 d; } pc_block_q6_K;
/* Activations for K-quant dot products; bsums[i] = sum of qs[16i .. 16i+15]. */
typedef struct { float d; int8_t qs[PC_QK_K]; int16_t bsums[PC_QK_K / 16]; } pc_block_q8_K;

typedef struct pc_type_info {
    const char *name;  /* "Q4_1", ... */
    int block_size;    /* elements per block (1 for plain types) */
    size_t type_size;  /* bytes per block */
    bool quantized;
} pc_type_info;

/* NULL when id is not a type this build knows (the caller reports it). */
const pc_type_info *pc_type_get(uint32_t id);
const char *pc_type_name(pc_type t); /* "?" for unknown ids */

/* Bytes of a row of n elements, or 0 if n is not a multiple of the block size
 * or the type is unknown. */
size_t pc_row_size(pc_type t, int64_t n);

float pc_f16_to_f32(pc_f16 h);
pc_f16 pc_f32_to_f16(float f); /* round to nearest even, like F16C */
static inline float pc_bf16_to_f32(pc_bf16 h) {
    union { uint32_t u; float f; } v = { (uint32_t)h << 16 };
    return v.f;
}
pc_bf16 pc_f32_to_bf16(float f); /* round to nearest even; NaN stays NaN */

#endif
