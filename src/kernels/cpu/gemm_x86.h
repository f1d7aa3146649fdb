/* gemm_x86.h - the packed matmul kernels (pack.h layouts), compiled once per ISA path.
 *
 * Included by dot_avx2.c and dot_avx512.c after dot_x86.h. A kernel computes
 * y[c * ys + r] for the nr (<= 16) rows of one packed row group and nc tokens
 * of packed activations (pc_xp_*, one row of xs bytes per token).
 *
 * Lanes are rows: a vector holds one token's partial result for LANES rows,
 * and every float step of quant.h's canonical order is one vector instruction
 * on those lanes, so lane r ends bitwise equal to the scalar dot of row r (the
 * test checks it). Integer sums are exact, so how they are formed - vpdpbusd
 * or vpmaddubsw+vpmaddwd, offsets started from the activations' precomputed
 * -off * sum, chunks in any order - never changes a float. AVX-512 runs a group
 * as one 16-lane vector; AVX2 as two 8-lane halves (h = 0, 1), each reading its
 * half of every 64-byte chunk and scale vector.
 *
 * The unit of work: for each block, each group of 4 elements is one weight
 * vector (a 64-byte chunk, unpacked once) multiplied into NC token accumulators
 * with the group's 4 activations of that token broadcast, so a chunk is unpacked
 * once per NC tokens. NC is a compile-time constant (TC, then 4, 2, 1 for the
 * remainder), and outputs do not depend on it. */
#ifndef PC_KERNELS_CPU_GEMM_X86_H
#define PC_KERNELS_CPU_GEMM_X86_H

#include <stddef.h>

#include "kernels/cpu/dot_x86.h"
#include "kernels/cpu/pack.h"

/* ---- the vector layer: LANES int32/float lanes, one per row ---- */
#if PC_X86_512
enum { LANES = 16, TC = 8 };
typedef __m512i vi;
typedef __m512 vf;
PC_INLINE vi vi_zero(void) { return _mm512_setzero_si512(); }
PC_INLINE vf vf_zero(void) { return _mm512_setzero_ps(); }
PC_INLINE vi vi_load(const uint8_t *p) { return _mm512_loadu_si512((const void *)p); }
PC_INLINE vi vi_bcast(const void *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}
PC_INLINE vf vf_bcast(const void *p) {
    float v;
    memcpy(&v, p, 4);
    return _mm512_set1_ps(v);
}
PC_INLINE vi vi_and(vi a, int m) { return _mm512_and_si512(a, _mm512_set1_epi8((char)m)); }
PC_INLINE vi vi_or(vi a, vi b) { return _mm512_or_si512(a, b); }
PC_INLINE vi vi_srl16(vi a, int s) { return _mm512_srli_epi16(a, (unsigned)s); }
PC_INLINE vi vi_sll16(vi a, int s) { return _mm512_slli_epi16(a, (unsigned)s); }
PC_INLINE vi vi_srl32(vi a, int s) { return _mm512_srli_epi32(a, (unsigned)s); }
PC_INLINE vi vi_sll32(vi a, int s) { return _mm512_slli_epi32(a, (unsigned)s); }
PC_INLINE vi vi_and32(vi a, int m) { return _mm512_and_si512(a, _mm512_set1_epi32(m)); }
PC_INLINE vi vi_xor(vi a, int m) { return _mm512_xor_si512(a, _mm512_set1_epi8((char)m)); }
/* acc + per lane the sum of 4 products of unsigned weight bytes and the 4 signed activation bytes at x. */
PC_INLINE vi dot4(vi acc, vi w, const int8_t *x) { return _mm512_dpbusd_epi32(acc, w, vi_bcast(x)); }
/* acc + per lane the sum of 2 products of int16 pairs and the int16 pair at x. */
PC_INLINE vi dot2w(vi acc, vi w, const int32_t *x) { return _mm512_dpwssd_epi32(acc, w, vi_bcast(x)); }
/* Sets bit 4 of byte b where bit b of the mask is set (the byte's bit 4 is clear: add is or). */
PC_INLINE vi set_bit4(vi w, uint64_t mask) {
    return _mm512_mask_add_epi8(w, (__mmask64)mask, w, _mm512_set1_epi8(0x10));
}
PC_INLINE vf vf_cvt(vi a) { return _mm512_cvtepi32_ps(a); }
PC_INLINE vf vf_mul(vf a, vf b) { return _mm512_mul_ps(a, b); }
PC_INLINE vf vf_fma(vf a, vf b, vf c) { return _mm512_fmadd_ps(a, b, c); }
PC_INLINE vf vf_fnma(vf a, vf b, vf c) { return _mm512_fnmadd_ps(a, b, c); } /* c - a*b, rounded once */
PC_INLINE vf vf_f16(const pc_f16 *p) { return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p)); }
PC_INLINE vi vi_u8(const uint8_t *p) { return _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)p)); }
PC_INLINE vi vi_i8(const int8_t *p) { return _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)p)); }
PC_INLINE void vf_store(float *y, vf v, int n) {
    if (n >= LANES)
        _mm512_storeu_ps(y, v);
    else
        _mm512_mask_storeu_ps(y, (__mmask16)((1u << n) - 1), v);
}
#else
enum { LANES = 8, TC = 4 };
typedef __m256i vi;
typedef __m256 vf;
PC_INLINE vi vi_zero(void) { return _mm256_setzero_si256(); }
PC_INLINE vf vf_zero(void) { return _mm256_setzero_ps(); }
PC_INLINE vi vi_load(const uint8_t *p) { return _mm256_loadu_si256((const __m256i *)p); }
PC_INLINE vi vi_bcast(const void *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}
PC_INLINE vf vf_bcast(const void *p) {
    float v;
    memcpy(&v, p, 4);
    return _mm256_set1_ps(v);
}
PC_INLINE vi vi_and(vi a, int m) { return _mm256_and_si256(a, _mm256_set1_epi8((char)m)); }
PC_INLINE vi vi_or(vi a, vi b) { return _mm256_or_si256(a, b); }
PC_INLINE vi vi_srl16(vi a, int s) { return _mm256_srli_epi16(a, s); }
PC_INLINE vi vi_sll16(vi a, int s) { return _mm256_slli_epi16(a, s); }
PC_INLINE vi vi_srl32(vi a, int s) { return _mm256_srli_epi32(a, s); }
PC_INLINE vi vi_sll32(vi a, int s) { return _mm256_slli_epi32(a, s); }
PC_INLINE vi vi_and32(vi a, int m) { return _mm256_and_si256(a, _mm256_set1_epi32(m)); }
PC_INLINE vi vi_xor(vi a, int m) { return _mm256_xor_si256(a, _mm256_set1_epi8((char)m)); }
/* vpmaddubsw's pair sums stay below 2^15 for weights up to 63 (Q8_0 takes dot4s). */
PC_INLINE vi dot4(vi acc, vi w, const int8_t *x) {
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(w, vi_bcast(x)), _mm256_set1_epi16(1)));
}
PC_INLINE vi dot2w(vi acc, vi w, const int32_t *x) { return _mm256_add_epi32(acc, _mm256_madd_epi16(w, vi_bcast(x))); }
PC_INLINE vi set_bit4(vi w, uint64_t mask) {
    const uint32_t m = (uint32_t)mask;
    return _mm256_or_si256(w, _mm256_and_si256(bits32((const uint8_t *)&m), _mm256_set1_epi8(0x10)));
}
PC_INLINE vf vf_cvt(vi a) { return _mm256_cvtepi32_ps(a); }
PC_INLINE vf vf_mul(vf a, vf b) { return _mm256_mul_ps(a, b); }
PC_INLINE vf vf_fma(vf a, vf b, vf c) { return _mm256_fmadd_ps(a, b, c); }
PC_INLINE vf vf_fnma(vf a, vf b, vf c) { return _mm256_fnmadd_ps(a, b, c); }
PC_INLINE vf vf_f16(const pc_f16 *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }
PC_INLINE vi vi_u8(const uint8_t *p) { return _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p)); }
PC_INLINE vi vi_i8(const int8_t *p) { return _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)p)); }
PC_INLINE void vf_store(float *y, vf v, int n) {
    if (n >= LANES) {
        _mm256_storeu_ps(y, v);
        return;
    }
    float t[LANES];
    _mm256_storeu_ps(t, v);
    memcpy(y, t, (size_t)n * sizeof *y);
}
#endif

/* Signed weight bytes times signed activations: vpmaddubsw wants one side
 * unsigned, so the weight's sign moves onto the activation (|w| <= 128,
 * |x| <= 127 keep pair sums below 2^15). Only AVX2's Q8_0 needs it. */
PC_INLINE vi dot4s(vi acc, vi w, const int8_t *x) {
#if PC_X86_512
    (void)acc, (void)w, (void)x;
    return acc; /* unused: vpdpbusd takes Q8_0 as q + 128 */
#else
    const vi xb = vi_bcast(x);
    const vi p = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(xb, w));
    return _mm256_add_epi32(acc, _mm256_madd_epi16(p, _mm256_set1_epi16(1)));
#endif
}

/* Half h of a 64-byte chunk, and of 16-entry scale arrays. */
PC_INLINE const uint8_t *chunk(const uint8_t *c64, int h) { return c64 + 4 * LANES * h; }
PC_INLINE uint64_t mask_half(uint64_t m, int h) { return LANES == 16 ? m : m >> (32 * h); }
PC_INLINE vi nibble(vi v, int high) { return high ? vi_and(vi_srl16(v, 4), 0x0F) : vi_and(v, 0x0F); }

/* ---- 32-element blocks ---- */

PC_INLINE bool has_min(pc_type t) { return t == PC_TYPE_Q4_1 || t == PC_TYPE_Q5_1; }
/* AVX2's vpmaddubsw would saturate on q + 128: Q8_0 goes signed there. */
PC_INLINE bool q8_signed(pc_type t) { return !PC_X86_512 && t == PC_TYPE_Q8_0; }

PC_INLINE size_t pack32_size(pc_type t) {
    switch (t) {
    case PC_TYPE_Q4_0: return sizeof(pc_pack_q4_0);
    case PC_TYPE_Q4_1: return sizeof(pc_pack_q4_1);
    case PC_TYPE_Q5_0: return sizeof(pc_pack_q5_0);
    case PC_TYPE_Q5_1: return sizeof(pc_pack_q5_1);
    default: return sizeof(pc_pack_q8_0);
    }
}

/* The weight vector of group k (elements 4k..4k+3) of packed block p, unsigned. */
PC_INLINE vi w32(pc_type t, const uint8_t *p, int k, int h) {
    switch (t) {
    case PC_TYPE_Q4_0: return nibble(vi_load(chunk(((const pc_pack_q4_0 *)p)->qs[k & 3], h)), k >> 2);
    case PC_TYPE_Q4_1: return nibble(vi_load(chunk(((const pc_pack_q4_1 *)p)->qs[k & 3], h)), k >> 2);
    case PC_TYPE_Q5_0: {
        const pc_pack_q5_0 *b = (const pc_pack_q5_0 *)p;
        return set_bit4(nibble(vi_load(chunk(b->qs[k & 3], h)), k >> 2), mask_half(b->qh[k], h));
    }
    case PC_TYPE_Q5_1: {
        const pc_pack_q5_1 *b = (const pc_pack_q5_1 *)p;
        return set_bit4(nibble(vi_load(chunk(b->qs[k & 3], h)), k >> 2), mask_half(b->qh[k], h));
    }
    default: {
        const vi v = vi_load(chunk(((const pc_pack_q8_0 *)p)->qs[k], h));
        return q8_signed(t) ? vi_xor(v, 0x80) : v;
    }
    }
}

/* Where each block's integer sum starts: -offset * sum(x) takes the unsigned
 * storage's offset back (Q4_0: 8, Q5_0: 16, Q8_0: 128); the min types have none. */
PC_INLINE vi init32(pc_type t, const uint8_t *xb) {
    const pc_xp_q8_0 *x = (const pc_xp_q8_0 *)xb;
    switch (t) {
    case PC_TYPE_Q4_0: return vi_bcast(&x->neg[0]);
    case PC_TYPE_Q5_0: return vi_bcast(&x->neg[1]);
    case PC_TYPE_Q8_0: return q8_signed(t) ? vi_zero() : vi_bcast(&x->neg[2]);
    default: return vi_zero();
    }
}

PC_INLINE void gemm32(pc_type t, int64_t n, const uint8_t *w, const uint8_t *x, size_t xs, const int NC, float *y,
                      size_t ys, int h, int nr) {
    const size_t pb = pack32_size(t), xb = has_min(t) ? sizeof(pc_xp_q8_1) : sizeof(pc_xp_q8_0);
    const size_t qoff = has_min(t) ? offsetof(pc_xp_q8_1, qs) : offsetof(pc_xp_q8_0, qs);
    vf acc[TC];
#pragma GCC unroll 8
    for (int c = 0; c < NC; c++) acc[c] = vf_zero();
    for (int64_t b = 0; b < n / 32; b++) {
        const uint8_t *p = w + b * pb, *xp = x + b * xb;
        const pc_f16 *d = (const pc_f16 *)p; /* every layout starts with d[16], then m[16] for the min types */
        const vf dw = vf_f16(d + LANES * h);
        vi isum[TC];
#pragma GCC unroll 8
        for (int c = 0; c < NC; c++) isum[c] = init32(t, xp + c * xs);
#pragma GCC unroll 8
        for (int k = 0; k < 8; k++) {
            const vi wv = w32(t, p, k, h);
#pragma GCC unroll 8
            for (int c = 0; c < NC; c++) {
                const int8_t *xq = (const int8_t *)(xp + c * xs + qoff) + 4 * k;
                isum[c] = q8_signed(t) ? dot4s(isum[c], wv, xq) : dot4(isum[c], wv, xq);
            }
        }
#pragma GCC unroll 8
        for (int c = 0; c < NC; c++) {
            const vf dd = vf_mul(dw, vf_bcast(xp + c * xs)); /* dw * dx */
            acc[c] = vf_fma(dd, vf_cvt(isum[c]), acc[c]);
            if (has_min(t)) acc[c] = vf_fma(vf_f16(d + 16 + LANES * h), vf_bcast(xp + c * xs + 4), acc[c]);
        }
    }
#pragma GCC unroll 8
    for (int c = 0; c < NC; c++) vf_store(y + c * ys + LANES * h, acc[c], nr - LANES * h);
}

/* ---- K-quants ---- */

/* Row lanes of a 6-bit Q4_K/Q5_K scale (or min) j from its planes. */
PC_INLINE vi k4_six(const uint8_t lo[4][16], const uint8_t hi[2][16], int j, int h) {
    const vi l = vi_and32(vi_srl32(vi_u8(lo[j / 2] + LANES * h), 4 * (j & 1)), 15);
    const vi u = vi_and32(vi_srl32(vi_u8(hi[j / 4] + LANES * h), 2 * (j % 4)), 3);
    return vi_or(l, vi_sll32(u, 4));
}

/* Q4_K (five = false) and Q5_K: the canonical order of quant.h, lane per row. */
PC_INLINE void gemm_k4(bool five, int64_t n, const uint8_t *w, const uint8_t *x, size_t xs, const int NC, float *y,
                       size_t ys, int h, int nr) {
    const size_t pb = five ? sizeof(pc_pack_q5_K) : sizeof(pc_pack_q4_K);
    vf acc[TC];
#pragma GCC unroll 8
    for (int c = 0; c < NC; c++) acc[c] = vf_zero();
    for (int64_t i = 0; i < n / PC_QK_K; i++) {
        const pc_pack_q4_K *p4 = (const pc_pack_q4_K *)(w + i * pb);
        const pc_pack_q5_K *p5 = (const pc_pack_q5_K *)(w + i * pb);
        const uint8_t(*qs)[8][64] = five ? p5->qs : p4->qs;
        const uint8_t *xi = x + i * sizeof(pc_xp_q8_K);
        const vf dw = vf_f16(p4->d + LANES * h);
        vf t[TC];
#pragma GCC unroll 8
        for (int c = 0; c < NC; c++) t[c] = vf_zero();
        for (int j = 0; j < 8; j++) {
            const vf dsc = vf_mul(dw, vf_cvt(k4_six(p4->sc_lo, p4->hi, j, h)));
            vi isum[TC];
#pragma GCC unroll 8
            for (int c = 0; c < NC; c++) isum[c] = vi_zero();
#pragma GCC unroll 8
            for (int k = 0; k < 8; k++) {
                vi wv = nibble(vi_load(chunk(qs[j / 2][k], h)), j & 1);
                if (five) wv = set_bit4(wv, mask_half(p5->qh[j][k], h));
#pragma GCC unroll 8
                for (int c = 0; c < NC; c++)
                    isum[c] = dot4(isum[c], wv, ((const pc_xp_q8_K *)(xi + c * xs))->qs + 32 * j + 4 * k);
            }
#pragma GCC unroll 8
            for (int c = 0; c < NC; c++) t[c] = vf_fma(dsc, vf_cvt(isum[c]), t[c]);
        }
        /* the mins: pairs (m[2q], m[2q+1]) as int16 halves of each lane, times the token's sub-block sums */
        vi mp[4];
#pragma GCC unroll 4
        for (int q = 0; q < 4; q++)
            mp[q] = vi_or(k4_six(p4->m_lo, p4->hi + 2, 2 * q, h), vi_sll32(k4_six(p4->m_lo, p4->hi + 2, 2 * q + 1, h), 16));
        const vf dmin = vf_f16(p4->dmin + LANES * h);
#pragma GCC unroll 8
        for (int c = 0; c < NC; c++) {
            const pc_xp_q8_K *xc = (const pc_xp_q8_K *)(xi + c * xs);
            vi ms = vi_zero();
#pragma GCC unroll 4
            for (int q = 0; q < 4; q++) ms = dot2w(ms, mp[q], &xc->bpair[q]);
            t[c] = vf_fnma(dmin, vf_cvt(ms), t[c]);
            acc[c] = vf_fma(t[c], vf_bcast(&xc->d), acc[c]);
        }
    }
#pragma GCC unroll 8
    for (int c = 0; c < NC; c++) vf_store(y + c * ys + LANES * h, acc[c], nr - LANES * h);
}

/* Group g (elements 4g..4g+3) of a packed Q6_K block as unsigned 6-bit bytes. */
PC_INLINE vi q6_group(const pc_pack_q6_K *p, int g, int h) {
    const vi lo = nibble(vi_load(chunk(p->ql[g % 32], h)), g / 32);
    const vi qh = vi_load(chunk(p->qh[g % 16], h));
    const int s = 2 * (g / 16); /* the two bits at s go to 4 */
    const vi top = s <= 4 ? vi_sll16(qh, 4 - s) : vi_srl16(qh, s - 4);
    return vi_or(lo, vi_and(top, 0x30));
}

PC_INLINE void gemm_q6(int64_t n, const uint8_t *w, const uint8_t *x, size_t xs, const int NC, float *y, size_t ys,
                       int h, int nr) {
    vf acc[TC];
#pragma GCC unroll 8
    for (int c = 0; c < NC; c++) acc[c] = vf_zero();
    for (int64_t i = 0; i < n / PC_QK_K; i++) {
        const pc_pack_q6_K *p = (const pc_pack_q6_K *)(w + i * sizeof(pc_pack_q6_K));
        const uint8_t *xi = x + i * sizeof(pc_xp_q8_K);
        const vf dw = vf_f16(p->d + LANES * h);
        vf t[TC];
#pragma GCC unroll 8
        for (int c = 0; c < NC; c++) t[c] = vf_zero();
        for (int j = 0; j < 16; j++) {
            const vf dsc = vf_mul(dw, vf_cvt(vi_i8(p->sc[j] + LANES * h)));
            vi isum[TC];
#pragma GCC unroll 8
            for (int c = 0; c < NC; c++) isum[c] = vi_bcast(&((const pc_xp_q8_K *)(xi + c * xs))->neg32[j]);
#pragma GCC unroll 4
            for (int u = 0; u < 4; u++) {
                const vi wv = q6_group(p, 4 * j + u, h);
#pragma GCC unroll 8
                for (int c = 0; c < NC; c++)
                    isum[c] = dot4(isum[c], wv, ((const pc_xp_q8_K *)(xi + c * xs))->qs + 16 * j + 4 * u);
            }
#pragma GCC unroll 8
            for (int c = 0; c < NC; c++) t[c] = vf_fma(dsc, vf_cvt(isum[c]), t[c]);
        }
#pragma GCC unroll 8
        for (int c = 0; c < NC; c++) acc[c] = vf_fma(t[c], vf_bcast(xi + c * xs), acc[c]);
    }
#pragma GCC unroll 8
    for (int c = 0; c < NC; c++) vf_store(y + c * ys + LANES * h, acc[c], nr - LANES * h);
}

/* ---- entry points: pc_gemm_fn ---- */

/* One half (or the whole group) for nc tokens, in compile-time tiles of TC, 4, 2, 1. */
#define PC_GEMM_TILES(KERNEL, ...)                                                                       \
    for (int c0 = 0; c0 < nc;) {                                                                          \
        const uint8_t *xc = (const uint8_t *)x + (size_t)c0 * xs;                                         \
        float *yc = y + (size_t)c0 * ys;                                                                  \
        const int left = nc - c0;                                                                         \
        if (left >= TC) {                                                                                 \
            KERNEL(__VA_ARGS__, xc, xs, TC, yc, ys, h, nr);                                               \
            c0 += TC;                                                                                     \
        } else if (left >= 4 && TC > 4) {                                                                 \
            KERNEL(__VA_ARGS__, xc, xs, 4, yc, ys, h, nr);                                                \
            c0 += 4;                                                                                      \
        } else if (left >= 2) {                                                                           \
            KERNEL(__VA_ARGS__, xc, xs, 2, yc, ys, h, nr);                                                \
            c0 += 2;                                                                                      \
        } else {                                                                                          \
            KERNEL(__VA_ARGS__, xc, xs, 1, yc, ys, h, nr);                                                \
            c0 += 1;                                                                                      \
        }                                                                                                 \
    }

#define PC_DEFINE_GEMM(NAME, KERNEL, ...)                                                                 \
    static void gemm_##NAME(int64_t n, const void *w, const void *x, size_t xs, int nc, float *y, size_t ys, \
                            int nr) {                                                                     \
        for (int h = 0; h < PC_PACK_ROWS / LANES && LANES * h < nr; h++) {                                \
            PC_GEMM_TILES(KERNEL, __VA_ARGS__, n, (const uint8_t *)w)                                     \
        }                                                                                                 \
    }

PC_DEFINE_GEMM(q4_0, gemm32, PC_TYPE_Q4_0)
PC_DEFINE_GEMM(q4_1, gemm32, PC_TYPE_Q4_1)
PC_DEFINE_GEMM(q5_0, gemm32, PC_TYPE_Q5_0)
PC_DEFINE_GEMM(q5_1, gemm32, PC_TYPE_Q5_1)
PC_DEFINE_GEMM(q8_0, gemm32, PC_TYPE_Q8_0)
PC_DEFINE_GEMM(q4_K, gemm_k4, false)
PC_DEFINE_GEMM(q5_K, gemm_k4, true)

static void gemm_q6_K(int64_t n, const void *w, const void *x, size_t xs, int nc, float *y, size_t ys, int nr) {
    for (int h = 0; h < PC_PACK_ROWS / LANES && LANES * h < nr; h++) {
        PC_GEMM_TILES(gemm_q6, n, (const uint8_t *)w)
    }
}

#endif
