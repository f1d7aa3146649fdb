/* dot_avx512.c - the AVX-512 (F, BW, VL, VNNI) instance of the x86 kernels.
 *
 * The packed kernels run a 16-row group as one zmm per token with vpdpbusd,
 * 8 tokens at a time: 8 integer sums, 8 float partials and 8 accumulators plus
 * the weight vector fit the 32 registers. Float types use the 256-bit code.
 * isa.c uses this file only for PC_ISA_AVX512_VNNI. Only the code between
 * the target push and pop is compiled for AVX-512; pc_dot_avx512_get is
 * plain code, safe to call on any CPU. */
#include "kernels/cpu/quant_impl.h"

#if defined(__x86_64__)
#if defined(__clang__) /* clang spells "compile this region for a target" differently */
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")
#endif
#define PC_X86_VNNI 1
#define PC_X86_512 1
#include "kernels/cpu/dot_x86.h"
#include "kernels/cpu/gemm_x86.h"
#include "kernels/cpu/quant_x86.h"
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

bool pc_dot_avx512_get(pc_type wt, pc_dot_kernel *k) {
    pc_dot_kernel r = {.dot = NULL, .quant = NULL, .gemm = NULL, .gemm_tokens = TC, .prep = NULL, .gemm_prep = NULL,
                       .prep_block = 0};
    switch (wt) {
    case PC_TYPE_F32: r.dot = dot_f32; break;
    case PC_TYPE_F16: r.dot = dot_f16; break;
#define PC_PACKED(Q, NAME, PREP_T) \
    r.quant = Q, r.gemm = gemm_##NAME, r.prep = prep_##NAME, r.gemm_prep = gemm_prep_##NAME, r.prep_block = sizeof(PREP_T)
    case PC_TYPE_Q4_K: PC_PACKED(quant_q8_K, q4_K, pc_prep_k4); break;
    case PC_TYPE_Q5_K: PC_PACKED(quant_q8_K, q5_K, pc_prep_k4); break;
    case PC_TYPE_Q6_K: PC_PACKED(quant_q8_K, q6_K, pc_prep_k6); break;
    case PC_TYPE_Q4_0: PC_PACKED(quant_q8_0, q4_0, pc_prep_32); break;
    case PC_TYPE_Q5_0: PC_PACKED(quant_q8_0, q5_0, pc_prep_32); break;
    case PC_TYPE_Q8_0: PC_PACKED(quant_q8_0, q8_0, pc_prep_32); break;
    case PC_TYPE_Q4_1: PC_PACKED(quant_q8_1, q4_1, pc_prep_32); break;
    case PC_TYPE_Q5_1: PC_PACKED(quant_q8_1, q5_1, pc_prep_32); break;
#undef PC_PACKED
    default: return false;
    }
    *k = r;
    return true;
}
#else
bool pc_dot_avx512_get(pc_type wt, pc_dot_kernel *k) {
    (void)wt;
    (void)k;
    return false;
}
#endif
