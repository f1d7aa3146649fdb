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
    pc_dot_kernel r = {.dot = NULL, .quant = NULL, .gemm = NULL, .gemm_tokens = TC};
    switch (wt) {
    case PC_TYPE_F32: r.dot = dot_f32; break;
    case PC_TYPE_F16: r.dot = dot_f16; break;
    case PC_TYPE_Q4_K: r.quant = quant_q8_K, r.gemm = gemm_q4_K; break;
    case PC_TYPE_Q5_K: r.quant = quant_q8_K, r.gemm = gemm_q5_K; break;
    case PC_TYPE_Q6_K: r.quant = quant_q8_K, r.gemm = gemm_q6_K; break;
    case PC_TYPE_Q4_0: r.quant = quant_q8_0, r.gemm = gemm_q4_0; break;
    case PC_TYPE_Q5_0: r.quant = quant_q8_0, r.gemm = gemm_q5_0; break;
    case PC_TYPE_Q8_0: r.quant = quant_q8_0, r.gemm = gemm_q8_0; break;
    case PC_TYPE_Q4_1: r.quant = quant_q8_1, r.gemm = gemm_q4_1; break;
    case PC_TYPE_Q5_1: r.quant = quant_q8_1, r.gemm = gemm_q5_1; break;
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
