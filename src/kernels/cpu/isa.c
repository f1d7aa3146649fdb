/* isa.c - picks the SIMD path from CPUID and resolves a type's kernel on a path.
 *
 * A path falls back to the next narrower one for types it has no kernel for
 * (AVX-512+VNNI -> AVX2 -> scalar; plain AVX-512 without VNNI uses the AVX2
 * kernels); a SIMD path without its own single dot for a type (the packable
 * ones) hands out the scalar dot, which its packed kernel matches bitwise.
 * pc_vec_dot_get and the matmul resolve through the same function, so they
 * always agree on which code computes a type on a path. */
#include "kernels/cpu/quant_impl.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

/* F16C from CPUID directly: clang's __builtin_cpu_supports does not know it. */
static bool has_f16c(void) {
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
}
#endif

pc_isa pc_isa_detect(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && has_f16c();
    if (!avx2) return PC_ISA_SCALAR;
    const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                        __builtin_cpu_supports("avx512vl");
    if (!avx512) return PC_ISA_AVX2;
    return __builtin_cpu_supports("avx512vnni") ? PC_ISA_AVX512_VNNI : PC_ISA_AVX512;
#else
    return PC_ISA_SCALAR;
#endif
}

const char *pc_isa_name(pc_isa isa) {
    switch (isa) {
    case PC_ISA_SCALAR: return "scalar";
    case PC_ISA_AVX2: return "avx2";
    case PC_ISA_AVX512: return "avx512";
    case PC_ISA_AVX512_VNNI: return "avx512-vnni";
    }
    return "?";
}

bool pc_dot_kernel_get(pc_type wt, pc_isa isa, pc_dot_kernel *k) {
    if (!pc_dot_scalar_get(wt, k)) return false; /* every type with a dot has a scalar one */
    pc_dot_kernel v;
    const bool simd = (isa == PC_ISA_AVX512_VNNI && pc_dot_avx512_get(wt, &v)) ||
                      (isa >= PC_ISA_AVX2 && pc_dot_avx2_get(wt, &v));
    if (!simd) return true;
    if (v.dot) k->dot = v.dot;
    k->quant = v.quant;
    k->gemm = v.gemm;
    k->gemm_tokens = v.gemm_tokens;
    k->prep = v.prep;
    k->gemm_prep = v.gemm_prep;
    k->prep_block = v.prep_block;
    return true;
}

pc_vec_dot_fn pc_vec_dot_get(pc_type wt, pc_isa isa) {
    pc_dot_kernel k;
    return pc_dot_kernel_get(wt, isa, &k) ? k.dot : NULL;
}
