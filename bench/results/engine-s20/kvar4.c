/* q4kvar.c: the Q4_K one-token kernel (659b967) streamed from memory at 1 thread, and variants with parts taken
 * out, each pass beside a plain read (T1 prefetch 4096) of the same bytes: what in the kernel keeps it below
 * the read. Garbage weights; the sums are folded into a printed check. */
#include "kernels/cpu/quant_impl.h"
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")
#define PC_X86_VNNI 1
#define PC_X86_512 1
#include "kernels/cpu/dot_x86.h"
#include "kernels/cpu/gemm_x86.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + 1e-9 * t.tv_nsec; }

/* FLOAT: the per-sub-block float tail; SCALES: the scale/min unpacking and the mins' dpwssd; XMEM: x as vpdpbusd's
 * memory broadcast (else one register per sub-block); PF: prefetches */
PC_INLINE void var(int64_t n, const uint8_t *w, const uint8_t *x, float *y, int nr, const int FLOAT, const int SCALES,
                   const int XMEM, const int PF) {
    const __m512i lo4 = _mm512_set1_epi8(0x0F), hi4 = _mm512_set1_epi8((char)0xF0);
    __m512 acc = _mm512_setzero_ps();
    __m512i iacc = _mm512_setzero_si512();
    for (int64_t i = 0; i < n / PC_QK_K; i++) {
        const pc_pack_q4_K *p = (const pc_pack_q4_K *)(w + i * sizeof(pc_pack_q4_K));
        const pc_xp_q8_K *xc = (const pc_xp_q8_K *)(x + i * sizeof(pc_xp_q8_K));
        __m512i sc[2] = {lo4, lo4}, mn[2] = {lo4, lo4};
        if (SCALES & 1) k4_one_scales(p, sc, mn);
        const __m512 d = vf_f16(p->d);
        __m512 t = _mm512_setzero_ps();
#pragma GCC unroll 4
        for (int q = 0; q < 4; q++) {
            __m512i l0 = _mm512_setzero_si512(), l1 = l0, h0 = l0, h1 = l0;
            const int8_t *xl = xc->qs + 64 * q, *xh = xl + 32;
            const __m512i xr = _mm512_set1_epi32(q + 1);
#pragma GCC unroll 8
            for (int k = 0; k < 8; k += 2) {
                if (PF == 1) prefetch_part((const uint8_t *)p, sizeof *p, 4 * q + k / 2, 16, PC_PACK_PREFETCH_L1_Q4_K_ONE);
                if (PF == 2) { const char *la = (const char *)p->qs[q][k];
                    _mm_prefetch(la + 4096, _MM_HINT_T1); _mm_prefetch(la + 64 + 4096, _MM_HINT_T1);
                    _mm_prefetch(la + 1536, _MM_HINT_T0); _mm_prefetch(la + 64 + 1536, _MM_HINT_T0); }
                if (PF >= 4) { const size_t lines = (sizeof *p + 63) / 64, part = 4 * q + k / 2;
                    const size_t l0 = lines * part / 16, l1 = lines * (part + 1) / 16;
                    for (size_t l = l0; l < l1; l++) { const char *b = (const char *)p + 64 * l;
                        if (PF == 4) { _mm_prefetch(b + 4096, _MM_HINT_T1); _mm_prefetch(b + 2048, _MM_HINT_NTA); }
                        if (PF == 5) { _mm_prefetch(b + 6144, _MM_HINT_T1); _mm_prefetch(b + 2048, _MM_HINT_T0); }
                        if (PF == 6) { _mm_prefetch(b + 8192, _MM_HINT_T1); _mm_prefetch(b + 2048, _MM_HINT_T0); }
                        if (PF == 7) { _mm_prefetch(b + 4096, _MM_HINT_T1); _mm_prefetch(b + 2048, _MM_HINT_T0); }
                        if (PF == 8) { _mm_prefetch(b + 6144, _MM_HINT_T1); _mm_prefetch(b + 3072, _MM_HINT_T0); }
                    } }
                if (PF == 3) { const char *la = (const char *)p->qs[q][k];
                    _mm_prefetch(la + 4096, _MM_HINT_T1); _mm_prefetch(la + 64 + 4096, _MM_HINT_T1); }
                const __m512i a = vi_load(p->qs[q][k]), b = vi_load(p->qs[q][k + 1]);
                if (XMEM) {
                    l0 = dpb(l0, _mm512_and_si512(a, lo4), xl + 4 * k);
                    h0 = dpb(h0, _mm512_and_si512(a, hi4), xh + 4 * k);
                    l1 = dpb(l1, _mm512_and_si512(b, lo4), xl + 4 * k + 4);
                    h1 = dpb(h1, _mm512_and_si512(b, hi4), xh + 4 * k + 4);
                } else {
                    l0 = _mm512_dpbusd_epi32(l0, _mm512_and_si512(a, lo4), xr);
                    h0 = _mm512_dpbusd_epi32(h0, _mm512_and_si512(a, hi4), xr);
                    l1 = _mm512_dpbusd_epi32(l1, _mm512_and_si512(b, lo4), xr);
                    h1 = _mm512_dpbusd_epi32(h1, _mm512_and_si512(b, hi4), xr);
                }
            }
            const __m512i il = _mm512_add_epi32(l0, l1);
            const __m512i ih = _mm512_srai_epi32(_mm512_add_epi32(h0, h1), 4);
            if (FLOAT) {
                const __m512 dl = _mm512_mul_ps(d, _mm512_cvtepi32_ps(byte_of_lane(sc[q >> 1], 2 * (q & 1))));
                const __m512 dh = _mm512_mul_ps(d, _mm512_cvtepi32_ps(byte_of_lane(sc[q >> 1], 2 * (q & 1) + 1)));
                t = _mm512_fmadd_ps(dl, _mm512_cvtepi32_ps(il), t);
                t = _mm512_fmadd_ps(dh, _mm512_cvtepi32_ps(ih), t);
            } else {
                iacc = _mm512_add_epi32(iacc, _mm512_add_epi32(il, ih));
            }
        }
        if (SCALES & 2) {
            __m512i ms = _mm512_setzero_si512();
#pragma GCC unroll 4
            for (int q = 0; q < 4; q++)
                ms = _mm512_dpwssd_epi32(ms, bytes_pair_of_lane(mn[q >> 1], 2 * (q & 1)), vi_bcast(&xc->bpair[q]));
            t = _mm512_fnmadd_ps(vf_f16(p->dmin), _mm512_cvtepi32_ps(ms), t);
        }
        acc = _mm512_fmadd_ps(t, vf_bcast(&xc->d), acc);
    }
    acc = _mm512_add_ps(acc, _mm512_cvtepi32_ps(iacc));
    vf_store(y, acc, nr);
}

typedef void (*kfn)(int64_t, const uint8_t *, const uint8_t *, float *, int);
static pc_gemm_fn lib_gemm;
static void v_lib(int64_t n, const uint8_t *w, const uint8_t *x, float *y, int nr) { lib_gemm(n, w, x, 0, 1, y, 16, nr); }
#define V(name, F, S, X, P) static void name(int64_t n, const uint8_t *w, const uint8_t *x, float *y, int nr) { var(n, w, x, y, nr, F, S, X, P); }
V(v_full, 1, 3, 1, 1) V(v_scales_nomins, 1, 1, 1, 1) V(v_mins_noscales, 1, 2, 1, 1) V(v_nofloat, 0, 1, 1, 1) V(v_noscales, 1, 0, 1, 1) V(v_bare, 0, 0, 1, 1) V(v_bare_xreg, 0, 0, 0, 1)
V(v_full_nopf, 1, 1, 1, 0) V(v_full_pf2, 1, 1, 1, 2) V(v_bare_pf2, 0, 0, 0, 2) V(v_full_pf3, 1, 3, 1, 3) V(v_pf4, 1, 3, 1, 4) V(v_pf5, 1, 3, 1, 5) V(v_pf6, 1, 3, 1, 6) V(v_pf7, 1, 3, 1, 7) V(v_pf8, 1, 3, 1, 8)
#pragma GCC pop_options

__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni"))) static uint64_t plain(const uint8_t *p, size_t n) {
    __m512i a = _mm512_setzero_si512();
    for (size_t i = 0; i < n; i += 64) {
        _mm_prefetch((const char *)p + i + 4096, _MM_HINT_T1); _mm_prefetch((const char *)p + i + 1536, _MM_HINT_T0);
        a = _mm512_xor_si512(a, _mm512_load_si512(p + i)); }
    return (uint64_t)_mm_cvtsi128_si64(_mm512_castsi512_si128(a));
}
/* the same read, one call per row group as the kernels are called */
__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni"), noinline)) static void v_readgroup(int64_t n, const uint8_t *w, const uint8_t *x, float *y, int nr) {
    (void)x; (void)nr; y[0] += (float)plain(w, (size_t)(n / 256) * sizeof(pc_pack_q4_K));
}

int main(void) {
    const size_t bytes = (size_t)512 << 20;
    const int64_t n_in = 1536;
    const size_t group = (size_t)(n_in / 256) * sizeof(pc_pack_q4_K);
    uint8_t *buf = aligned_alloc(2 << 20, bytes);
    madvise(buf, bytes, MADV_HUGEPAGE);
    for (size_t i = 0; i < bytes; i++) buf[i] = (uint8_t)(i * 2654435761u >> 24);
    static _Alignas(64) uint8_t x[8 * sizeof(pc_xp_q8_K)];
    memset(x, 1, sizeof x);
    const size_t groups = bytes / group;
    pc_dot_kernel dk;
    if (!pc_dot_avx512_get(PC_TYPE_Q4_K, &dk) || !dk.gemm) return 1;
    lib_gemm = dk.gemm;
    const struct { const char *name; kfn f; } vs[] = {{"libpc_kernels' gemm (NC=1)", v_lib}, {"full kernel", v_full},
        {"pf4: T1 4096, NTA 2048", v_pf4}, {"pf5: T1 6144, T0 2048", v_pf5}, {"pf6: T1 8192, T0 2048", v_pf6},
        {"pf7: T1 4096, T0 2048 (= full, inline copy)", v_pf7}, {"pf8: T1 6144, T0 3072", v_pf8}};
    float y[16], chk = 0;
    uint64_t s = 0;
    for (int round = 0; round < 2; round++)
        for (size_t v = 0; v < sizeof vs / sizeof vs[0]; v++) {
            double r[7], gk[7], gr[7];
            for (int ps = 0; ps < 7; ps++) {
                double t0 = now();
                for (size_t g = 0; g < groups; g++) { vs[v].f(n_in, buf + g * group, x, y, 16); chk += y[0]; }
                const double tk = now() - t0;
                t0 = now();
                s ^= plain(buf, groups * group);
                const double tr = now() - t0;
                r[ps] = tr / tk; gk[ps] = groups * group / tk * 1e-9; gr[ps] = groups * group / tr * 1e-9;
            }
            for (int a = 0; a < 7; a++) for (int b = a + 1; b < 7; b++) if (r[b] < r[a]) { double t = r[a]; r[a] = r[b]; r[b] = t; }
            for (int a = 0; a < 7; a++) for (int b = a + 1; b < 7; b++) { if (gk[b] < gk[a]) { double t = gk[a]; gk[a] = gk[b]; gk[b] = t; } if (gr[b] < gr[a]) { double t = gr[a]; gr[a] = gr[b]; gr[b] = t; } }
            printf("round %d %-44s %5.1f%% of the plain read (median of 7 passes; %.1f-%.1f); kernel %.2f GB/s, read %.2f\n", round + 1, vs[v].name, 100 * r[3], 100 * r[0], 100 * r[6], gk[3], gr[3]);
            fflush(stdout);
        }
    printf("check %g %llu\n", chk, (unsigned long long)s);
}
