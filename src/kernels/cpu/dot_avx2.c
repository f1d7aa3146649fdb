/* dot_avx2.c - the AVX2+FMA+F16C instance of the x86 kernels (vpmaddubsw products).
 *
 * The packed kernels run a 16-row group as two 8-lane halves, 4 tokens at a
 * time. Only the code between the target push and pop is
 * compiled for AVX2 and runs once pc_isa_detect has seen AVX2; pc_dot_avx2_get
 * is plain code, safe to call on any CPU. */
#include "kernels/cpu/quant_impl.h"

#if defined(__x86_64__)
#if defined(__clang__) /* clang spells "compile this region for a target" differently */
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
#endif
#define PC_X86_VNNI 0
#define PC_X86_512 0
#include "kernels/cpu/dot_x86.h"
#include "kernels/cpu/gemm_x86.h"
#include "kernels/cpu/quant_x86.h"
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

bool pc_dot_avx2_get(pc_type wt, pc_dot_kernel *k) {
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
bool pc_dot_avx2_get(pc_type wt, pc_dot_kernel *k) {
    (void)wt;
    (void)k;
    return false;
}
#endif
