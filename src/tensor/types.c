/* types.c - the type table and exact half-float conversions (no globals written). */
#include "tensor/types.h"

#include <string.h>

static const pc_type_info TYPE_TABLE[PC_TYPE_COUNT] = {
    [PC_TYPE_F32] = {"F32", 1, 4, false},
    [PC_TYPE_F16] = {"F16", 1, 2, false},
    [PC_TYPE_Q4_0] = {"Q4_0", PC_QK4_0, sizeof(pc_block_q4_0), true},
    [PC_TYPE_Q4_1] = {"Q4_1", PC_QK4_1, sizeof(pc_block_q4_1), true},
    [PC_TYPE_Q5_0] = {"Q5_0", PC_QK5_0, sizeof(pc_block_q5_0), true},
    [PC_TYPE_Q5_1] = {"Q5_1", PC_QK5_1, sizeof(pc_block_q5_1), true},
    [PC_TYPE_Q8_0] = {"Q8_0", PC_QK8_0, sizeof(pc_block_q8_0), true},
    [PC_TYPE_Q8_1] = {"Q8_1", PC_QK8_1, sizeof(pc_block_q8_1), true},
    [PC_TYPE_Q2_K] = {"Q2_K", PC_QK_K, sizeof(pc_block_q2_K), true},
    [PC_TYPE_Q3_K] = {"Q3_K", PC_QK_K, sizeof(pc_block_q3_K), true},
    [PC_TYPE_Q4_K] = {"Q4_K", PC_QK_K, sizeof(pc_block_q4_K), true},
    [PC_TYPE_Q5_K] = {"Q5_K", PC_QK_K, sizeof(pc_block_q5_K), true},
    [PC_TYPE_Q6_K] = {"Q6_K", PC_QK_K, sizeof(pc_block_q6_K), true},
    [PC_TYPE_Q8_K] = {"Q8_K", PC_QK_K, sizeof(pc_block_q8_K), true},
    [PC_TYPE_I8] = {"I8", 1, 1, false},
    [PC_TYPE_I16] = {"I16", 1, 2, false},
    [PC_TYPE_I32] = {"I32", 1, 4, false},
    [PC_TYPE_I64] = {"I64", 1, 8, false},
    [PC_TYPE_F64] = {"F64", 1, 8, false},
    [PC_TYPE_BF16] = {"BF16", 1, 2, false},
};

_Static_assert(sizeof(pc_block_q4_0) == 18, "q4_0 layout");
_Static_assert(sizeof(pc_block_q4_1) == 20, "q4_1 layout");
_Static_assert(sizeof(pc_block_q5_0) == 22, "q5_0 layout");
_Static_assert(sizeof(pc_block_q5_1) == 24, "q5_1 layout");
_Static_assert(sizeof(pc_block_q8_0) == 34, "q8_0 layout");
_Static_assert(sizeof(pc_block_q8_1) == 36, "q8_1 layout");
_Static_assert(sizeof(pc_block_q2_K) == 84, "q2_K layout");
_Static_assert(sizeof(pc_block_q3_K) == 110, "q3_K layout");
_Static_assert(sizeof(pc_block_q4_K) == 144, "q4_K layout");
_Static_assert(sizeof(pc_block_q5_K) == 176, "q5_K layout");
_Static_assert(sizeof(pc_block_q6_K) == 210, "q6_K layout");
_Static_assert(sizeof(pc_block_q8_K) == 292, "q8_K layout");

const pc_type_info *pc_type_get(uint32_t id) {
    if (id >= PC_TYPE_COUNT || TYPE_TABLE[id].name == NULL) return NULL;
    return &TYPE_TABLE[id];
}

const char *pc_type_name(pc_type t) {
    const pc_type_info *ti = pc_type_get((uint32_t)t);
    return ti ? ti->name : "?";
}

size_t pc_row_size(pc_type t, int64_t n) {
    const pc_type_info *ti = pc_type_get((uint32_t)t);
    if (!ti || n < 0 || n % ti->block_size != 0) return 0;
    return (size_t)(n / ti->block_size) * ti->type_size;
}

static inline uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}
static inline float bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

float pc_f16_to_f32(pc_f16 h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ff;
    if (exp == 0x1f) return bits_f32(sign | 0x7f800000u | (man << 13));
    if (exp == 0) {
        if (man == 0) return bits_f32(sign);
        /* subnormal: value = man * 2^-24 exactly */
        float v = (float)man * 5.9604644775390625e-8f;
        return sign ? -v : v;
    }
    return bits_f32(sign | ((exp + 112) << 23) | (man << 13));
}

pc_f16 pc_f32_to_f16(float f) {
    uint32_t x = f32_bits(f);
    uint32_t sign = (x >> 16) & 0x8000;
    uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) /* inf or nan */
        return (pc_f16)(sign | 0x7c00 | (ax > 0x7f800000u ? 0x200 | ((ax >> 13) & 0x3ff) : 0));
    if (ax >= 0x477ff000u) return (pc_f16)(sign | 0x7c00); /* rounds to >= 65520: inf */
    if (ax < 0x38800000u) {                                /* below smallest normal half */
        /* add then subtract 0.5 (2^-1) so the FPU rounds to the 2^-24 grid, nearest even */
        float v = bits_f32(ax) + 0.5f;
        return (pc_f16)(sign | (f32_bits(v) - 0x3f000000u));
    }
    uint32_t mant_odd = (ax >> 13) & 1;
    ax += 0xc8000fffu + mant_odd; /* rebias exponent (-112 << 23) and round to nearest even */
    return (pc_f16)(sign | (ax >> 13));
}

pc_bf16 pc_f32_to_bf16(float f) {
    uint32_t u = f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (pc_bf16)((u >> 16) | 64); /* quiet NaN */
    return (pc_bf16)((u + (0x7fff + ((u >> 16) & 1))) >> 16);
}
