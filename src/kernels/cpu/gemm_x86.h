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
 * vector (a 64-byte chunk, unpacked) multiplied into NC token accumulators
 * with the group's 4 activations of that token broadcast. NC is a compile-time
 * constant (TC, then 4, 2, 1 for the remainder), and outputs do not depend on it.
 *
 * Two sources of weights, one template each: direct (gemm_*: unpack the packed
 * group on the fly, for decode and short batches) and prepared (prep_* writes
 * a group's unpacked bytes and float scales once into a buffer, pc_prep_*
 * layouts below; gemm_prep_* reads them for every token tile of a token block,
 * so a prefill's inner loop is loads and vpdpbusd). Both compute each derived
 * vector with the same helper and then run the same template, so prepared and
 * direct outputs are the same bits. */
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
PC_INLINE vi vi_sra32(vi a, int s) { return _mm512_srai_epi32(a, (unsigned)s); }
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
PC_INLINE vi vi_sra32(vi a, int s) { return _mm256_srai_epi32(a, s); }
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

/* Decode reads each packed weight once, straight from memory: the hardware
 * prefetcher alone left a direct kernel at 45-70% of the read bandwidth (it
 * restarts at every 4 KiB page, and the kernel's compute between loads keeps
 * fewer misses in flight than a plain read does). So the direct kernels ask
 * for the lines PF_AHEAD bytes past the block they work on, into L2: on this
 * machine a plain 2-thread read streams 13.6 GB/s and one prefetching 4 KiB
 * ahead into L2 19.6 (25.8 over huge pages); nearer, or into L1, was slower.
 * The prep_* functions read a packed group once from memory too, so they ask
 * ahead the same way.
 * The direct kernels also ask for each line PF_L1_AHEAD bytes ahead into L1,
 * so that their loads find it there rather than waiting on L2 while the
 * unpacking work queues behind them: with it the 1.5B's Q6_K and the 0.5B's
 * Q5_0 and Q6_K one-token products went from 80-85% to 85-92% of a plain
 * prefetching read of the same bytes, Q4_K and Q8_0 stayed within the spread
 * (bench_matmul --stream's per-pass ratio, 3 rounds alternating; 1024 and
 * 2048 bytes did about as well as 1536). */
enum { PF_AHEAD = PC_PACK_PREFETCH, PF_L1_AHEAD = PC_PACK_PREFETCH_L1 };
PC_INLINE void prefetch_ahead(const uint8_t *block, size_t bytes) {
    for (size_t l = 0; l < bytes; l += 64) _mm_prefetch((const char *)block + PF_AHEAD + l, _MM_HINT_T1);
}
/* Line l of a block a direct kernel streams: into L2 `ahead` bytes on, into L1 `near` bytes on. */
PC_INLINE void prefetch_line_near(const uint8_t *block, size_t l, size_t ahead, size_t near) {
    _mm_prefetch((const char *)block + ahead + 64 * l, _MM_HINT_T1);
    _mm_prefetch((const char *)block + near + 64 * l, _MM_HINT_T0);
}
PC_INLINE void prefetch_line_at(const uint8_t *block, size_t l, size_t ahead) {
    prefetch_line_near(block, l, ahead, PF_L1_AHEAD);
}
PC_INLINE void prefetch_stream_at(const uint8_t *block, size_t bytes, size_t ahead) {
    for (size_t l = 0; 64 * l < bytes; l++) prefetch_line_at(block, l, ahead);
}
PC_INLINE void prefetch_stream(const uint8_t *block, size_t bytes) { prefetch_stream_at(block, bytes, PF_AHEAD); }

/* Half h of a 64-byte chunk, and of 16-entry scale arrays. */
PC_INLINE const uint8_t *chunk(const uint8_t *c64, int h) { return c64 + 4 * LANES * h; }
PC_INLINE uint64_t mask_half(uint64_t m, int h) { return LANES == 16 ? m : m >> (32 * h); }
PC_INLINE vi nibble(vi v, int high) { return high ? vi_and(vi_srl16(v, 4), 0x0F) : vi_and(v, 0x0F); }

/* ---- prepared layouts: one packed block unpacked, per PC_PACK_ROWS rows ---- */

typedef struct { uint8_t w[8][64]; float d[16], m[16]; } pc_prep_32;              /* w: group k, unsigned */
typedef struct { uint8_t w[8][8][64]; float dsc[8][16]; int32_t mp[4][16]; float dmin[16]; } pc_prep_k4;
typedef struct { uint8_t w[16][4][64]; float dsc[16][16]; } pc_prep_k6;

PC_INLINE void vi_store(uint8_t *p, vi v) {
#if PC_X86_512
    _mm512_storeu_si512((void *)p, v);
#else
    _mm256_storeu_si256((__m256i *)p, v);
#endif
}
PC_INLINE vi vi_loadw(const int32_t *p) { return vi_load((const uint8_t *)p); }
PC_INLINE void vf_put(float *p, vf v) { vf_store(p, v, LANES); }
PC_INLINE vf vf_load(const float *p) {
#if PC_X86_512
    return _mm512_loadu_ps(p);
#else
    return _mm256_loadu_ps(p);
#endif
}

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

/* The weight vector of group k (elements 4k..4k+3) of packed block p, unsigned
 * (signed for AVX2's Q8_0). */
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

/* The canonical 32-block sum; w: packed blocks, or pc_prep_32 blocks when PREP. */
PC_INLINE void gemm32(pc_type t, const bool PREP, int64_t n, const uint8_t *w, const uint8_t *x, size_t xs,
                      const int NC, float *y, size_t ys, int h, int nr) {
    const size_t pb = PREP ? sizeof(pc_prep_32) : pack32_size(t);
    const size_t xb = has_min(t) ? sizeof(pc_xp_q8_1) : sizeof(pc_xp_q8_0);
    const size_t qoff = has_min(t) ? offsetof(pc_xp_q8_1, qs) : offsetof(pc_xp_q8_0, qs);
    vf acc[TC];
#pragma GCC unroll 8
    for (int c = 0; c < NC; c++) acc[c] = vf_zero();
    for (int64_t b = 0; b < n / 32; b++) {
        const uint8_t *p = w + b * pb, *xp = x + b * xb;
        const pc_prep_32 *pp = (const pc_prep_32 *)p;
        if (!PREP && h == 0) prefetch_stream(p, pb);
        const pc_f16 *d = (const pc_f16 *)p; /* every packed layout starts with d[16], then m[16] for the min types */
        const vf dw = PREP ? vf_load(pp->d + LANES * h) : vf_f16(d + LANES * h);
        vi isum[TC];
#pragma GCC unroll 8
        for (int c = 0; c < NC; c++) isum[c] = init32(t, xp + c * xs);
#pragma GCC unroll 8
        for (int k = 0; k < 8; k++) {
            const vi wv = PREP ? vi_load(chunk(pp->w[k], h)) : w32(t, p, k, h);
#pragma GCC unroll 8
            for (int c = 0; c < NC; c++) {
                const int8_t *xq = (const int8_t *)(xp + c * xs + qoff) + 4 * k;
                isum[c] = q8_signed(t) ? dot4s(isum[c], wv, xq) : dot4(isum[c], wv, xq);
            }
        }
        const vf mw = !has_min(t) ? vf_zero() : PREP ? vf_load(pp->m + LANES * h) : vf_f16(d + 16 + LANES * h);
#pragma GCC unroll 8
        for (int c = 0; c < NC; c++) {
            const vf dd = vf_mul(dw, vf_bcast(xp + c * xs)); /* dw * dx */
            acc[c] = vf_fma(dd, vf_cvt(isum[c]), acc[c]);
            if (has_min(t)) acc[c] = vf_fma(mw, vf_bcast(xp + c * xs + 4), acc[c]);
        }
    }
#pragma GCC unroll 8
    for (int c = 0; c < NC; c++) vf_store(y + c * ys + LANES * h, acc[c], nr - LANES * h);
}

PC_INLINE void prep32(pc_type t, int64_t n, const uint8_t *w, pc_prep_32 *out) {
    const size_t pb = pack32_size(t);
    for (int64_t b = 0; b < n / 32; b++, out++) {
        const uint8_t *p = w + b * pb;
        prefetch_ahead(p, pb);
        for (int h = 0; h < PC_PACK_ROWS / LANES; h++) {
            vf_put(out->d + LANES * h, vf_f16((const pc_f16 *)p + LANES * h));
            if (has_min(t)) vf_put(out->m + LANES * h, vf_f16((const pc_f16 *)p + 16 + LANES * h));
#pragma GCC unroll 8
            for (int k = 0; k < 8; k++) vi_store((uint8_t *)chunk(out->w[k], h), w32(t, p, k, h));
        }
    }
}

/* ---- K-quants ---- */

#if PC_X86_512
#include "kernels/cpu/gemm_one_avx512.h"
#endif

/* Row lanes of Q4_K/Q5_K sub-block j's 6-bit scale (min = 0) or min (min = 1),
 * from the three words of scale bytes (pc_k4_scale_min's layout, per lane). */
PC_INLINE vi k4_six(const vi w[3], int j, int min) {
    if (j < 4) return vi_and32(vi_srl32(w[min], 8 * j), 63);
    const vi low = vi_and32(vi_srl32(w[2], 8 * (j - 4) + 4 * min), 15);
    return vi_or(low, vi_sll32(vi_and32(vi_srl32(w[min], 8 * (j - 4) + 6), 3), 4));
}

PC_INLINE void k4_scale_words(const pc_pack_q4_K *p, int h, vi sw[3]) {
    for (int u = 0; u < 3; u++) sw[u] = vi_load(chunk(p->scales[u], h));
}

/* d * scale of sub-block j, per row. */
PC_INLINE vf k4_dsc(const pc_pack_q4_K *p, const vi sw[3], int j, int h) {
    return vf_mul(vf_f16(p->d + LANES * h), vf_cvt(k4_six(sw, j, 0)));
}

/* The mins of sub-blocks 2q and 2q+1 as the int16 halves of each lane. */
PC_INLINE vi k4_min_pair(const vi sw[3], int q) {
    return vi_or(k4_six(sw, 2 * q, 1), vi_sll32(k4_six(sw, 2 * q + 1, 1), 16));
}

/* Group k of sub-block j: a nibble of qs, and for Q5_K bit j of each qh byte moved to bit 4. */
PC_INLINE vi k4_weights(bool five, const uint8_t *blk, int j, int k, int h) {
    const pc_pack_q4_K *p4 = (const pc_pack_q4_K *)blk;
    const pc_pack_q5_K *p5 = (const pc_pack_q5_K *)blk;
    vi wv = nibble(vi_load(chunk(five ? p5->qs[j / 2][k] : p4->qs[j / 2][k], h)), j & 1);
    if (five) {
        const vi qh = vi_load(chunk(p5->qh[k], h));
        wv = vi_or(wv, vi_and(j <= 4 ? vi_sll16(qh, 4 - j) : vi_srl16(qh, j - 4), 0x10));
    }
    return wv;
}

/* Q4_K (five = false) and Q5_K in the canonical order of quant.h, lane per row;
 * w: packed blocks, or pc_prep_k4 blocks when PREP. */
PC_INLINE void gemm_k4(bool five, const bool PREP, int64_t n, const uint8_t *w, const uint8_t *x, size_t xs,
                       const int NC, float *y, size_t ys, int h, int nr) {
#if PC_X86_512
    if (!PREP && !five && NC == 1) {
        gemm_q4k_one(n, w, x, y, nr);
        return;
    }
#endif
    const size_t pb = PREP ? sizeof(pc_prep_k4) : five ? sizeof(pc_pack_q5_K) : sizeof(pc_pack_q4_K);
    vf acc[TC];
#pragma GCC unroll 8
    for (int c = 0; c < NC; c++) acc[c] = vf_zero();
    for (int64_t i = 0; i < n / PC_QK_K; i++) {
        const uint8_t *blk = w + i * pb;
        const pc_pack_q4_K *p4 = (const pc_pack_q4_K *)blk;
        const pc_prep_k4 *pp = (const pc_prep_k4 *)blk;
        if (!PREP && h == 0) prefetch_stream(blk, pb);
        const uint8_t *xi = x + i * sizeof(pc_xp_q8_K);
        vi sw[3];
        if (!PREP) k4_scale_words(p4, h, sw);
        vf t[TC];
#pragma GCC unroll 8
        for (int c = 0; c < NC; c++) t[c] = vf_zero();
#pragma GCC unroll 8 /* constant nibble selects and scale shifts */
        for (int j = 0; j < 8; j++) {
            const vf dsc = PREP ? vf_load(pp->dsc[j] + LANES * h) : k4_dsc(p4, sw, j, h);
            vi isum[TC];
#pragma GCC unroll 8
            for (int c = 0; c < NC; c++) isum[c] = vi_bcast(&((const pc_xp_q8_K *)(xi + c * xs))->zero[j]);
#pragma GCC unroll 8
            for (int k = 0; k < 8; k++) {
                const vi wv = PREP ? vi_load(chunk(pp->w[j][k], h)) : k4_weights(five, blk, j, k, h);
#pragma GCC unroll 8
                for (int c = 0; c < NC; c++)
                    isum[c] = dot4(isum[c], wv, ((const pc_xp_q8_K *)(xi + c * xs))->qs + 32 * j + 4 * k);
            }
#pragma GCC unroll 8
            for (int c = 0; c < NC; c++) t[c] = vf_fma(dsc, vf_cvt(isum[c]), t[c]);
        }
        /* the mins: pairs (m[2q], m[2q+1]) times the token's pairs of 32-value sums */
        vi mp[4];
#pragma GCC unroll 4
        for (int q = 0; q < 4; q++) mp[q] = PREP ? vi_load(chunk((const uint8_t *)pp->mp[q], h)) : k4_min_pair(sw, q);
        const vf dmin = PREP ? vf_load(pp->dmin + LANES * h) : vf_f16(p4->dmin + LANES * h);
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

PC_INLINE void prep_k4(bool five, int64_t n, const uint8_t *w, pc_prep_k4 *out) {
    const size_t pb = five ? sizeof(pc_pack_q5_K) : sizeof(pc_pack_q4_K);
    for (int64_t i = 0; i < n / PC_QK_K; i++, out++) {
        const uint8_t *blk = w + i * pb;
        const pc_pack_q4_K *p4 = (const pc_pack_q4_K *)blk;
        prefetch_ahead(blk, pb);
        for (int h = 0; h < PC_PACK_ROWS / LANES; h++) {
            vi sw[3];
            k4_scale_words(p4, h, sw);
            for (int j = 0; j < 8; j++) {
                vf_put(out->dsc[j] + LANES * h, k4_dsc(p4, sw, j, h));
#pragma GCC unroll 8
                for (int k = 0; k < 8; k++) vi_store((uint8_t *)chunk(out->w[j][k], h), k4_weights(five, blk, j, k, h));
            }
            for (int q = 0; q < 4; q++) vi_store((uint8_t *)chunk((const uint8_t *)out->mp[q], h), k4_min_pair(sw, q));
            vf_put(out->dmin + LANES * h, vf_f16(p4->dmin + LANES * h));
        }
    }
}

/* Group g (elements 4g..4g+3) of a packed Q6_K block as unsigned 6-bit bytes:
 * element 128h + 32k + l has its low 4 bits in nibble k/2 of ql byte
 * 64h + 32(k&1) + l and its top 2 bits at bit 2k of qh byte 32h + l. */
PC_INLINE vi q6_group(const pc_pack_q6_K *p, int g, int h) {
    const int half = g / 32, k = (g % 32) / 8, l4 = g % 8;
    const vi lo = nibble(vi_load(chunk(p->ql[16 * half + 8 * (k & 1) + l4], h)), k >> 1);
    const vi qh = vi_load(chunk(p->qh[8 * half + l4], h));
    const vi top = k <= 2 ? vi_sll16(qh, 4 - 2 * k) : vi_srl16(qh, 2); /* the two bits at 2k go to 4 */
    return vi_or(lo, vi_and(top, 0x30));
}

/* d * the signed scale of sub-block j (byte j % 4 of scale word j / 4), per row. */
PC_INLINE vf q6_dsc(const pc_pack_q6_K *p, int j, int h) {
    const vi sc = vi_sra32(vi_sll32(vi_load(chunk((const uint8_t *)p->sc[j / 4], h)), 24 - 8 * (j % 4)), 24);
    return vf_mul(vf_f16(p->d + LANES * h), vf_cvt(sc));
}

/* Q6_K in the canonical order; w: packed blocks, or pc_prep_k6 blocks when PREP. */
PC_INLINE void gemm_q6(const bool PREP, int64_t n, const uint8_t *w, const uint8_t *x, size_t xs, const int NC,
                       float *y, size_t ys, int h, int nr) {
#if PC_X86_512
    if (!PREP && NC == 1) {
        gemm_q6k_one(n, w, x, y, nr);
        return;
    }
#endif
    const size_t pb = PREP ? sizeof(pc_prep_k6) : sizeof(pc_pack_q6_K);
    vf acc[TC];
#pragma GCC unroll 8
    for (int c = 0; c < NC; c++) acc[c] = vf_zero();
    for (int64_t i = 0; i < n / PC_QK_K; i++) {
        const pc_pack_q6_K *p = (const pc_pack_q6_K *)(w + i * pb);
        const pc_prep_k6 *pp = (const pc_prep_k6 *)(w + i * pb);
        if (!PREP && h == 0) prefetch_stream(w + i * pb, pb);
        const uint8_t *xi = x + i * sizeof(pc_xp_q8_K);
        vf t[TC];
#pragma GCC unroll 8
        for (int c = 0; c < NC; c++) t[c] = vf_zero();
#pragma GCC unroll 16 /* constant shifts and chunk offsets in q6_group: no runtime index math or branches */
        for (int j = 0; j < 16; j++) {
            const vf dsc = PREP ? vf_load(pp->dsc[j] + LANES * h) : q6_dsc(p, j, h);
            vi isum[TC];
#pragma GCC unroll 8
            for (int c = 0; c < NC; c++) isum[c] = vi_bcast(&((const pc_xp_q8_K *)(xi + c * xs))->neg32[j]);
#pragma GCC unroll 4
            for (int u = 0; u < 4; u++) {
                const vi wv = PREP ? vi_load(chunk(pp->w[j][u], h)) : q6_group(p, 4 * j + u, h);
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

PC_INLINE void prep_q6(int64_t n, const uint8_t *w, pc_prep_k6 *out) {
    for (int64_t i = 0; i < n / PC_QK_K; i++, out++) {
        const pc_pack_q6_K *p = (const pc_pack_q6_K *)(w + i * sizeof(pc_pack_q6_K));
        prefetch_ahead((const uint8_t *)p, sizeof *p);
        for (int h = 0; h < PC_PACK_ROWS / LANES; h++)
            for (int j = 0; j < 16; j++) {
                vf_put(out->dsc[j] + LANES * h, q6_dsc(p, j, h));
#pragma GCC unroll 4
                for (int u = 0; u < 4; u++) vi_store((uint8_t *)chunk(out->w[j][u], h), q6_group(p, 4 * j + u, h));
            }
    }
}

/* ---- entry points: pc_gemm_fn and pc_prep_fn ---- */

/* Every half (or the whole group) for nc tokens, in compile-time tiles of TC, 4, 2, 1. */
#define PC_GEMM_TILES(KERNEL, ...)                                                                       \
    for (int h = 0; h < PC_PACK_ROWS / LANES && LANES * h < nr; h++)                                      \
        for (int c0 = 0; c0 < nc;) {                                                                      \
            const uint8_t *xc = (const uint8_t *)x + (size_t)c0 * xs;                                     \
            float *yc = y + (size_t)c0 * ys;                                                              \
            const int left = nc - c0, NC = left >= TC ? TC : left >= 4 ? 4 : left >= 2 ? 2 : 1;          \
            if (NC == TC)                                                                                 \
                KERNEL(__VA_ARGS__, xc, xs, TC, yc, ys, h, nr);                                           \
            else if (NC == 4)                                                                             \
                KERNEL(__VA_ARGS__, xc, xs, 4, yc, ys, h, nr);                                            \
            else if (NC == 2)                                                                             \
                KERNEL(__VA_ARGS__, xc, xs, 2, yc, ys, h, nr);                                            \
            else                                                                                          \
                KERNEL(__VA_ARGS__, xc, xs, 1, yc, ys, h, nr);                                            \
            c0 += NC;                                                                                     \
        }

#define PC_DEFINE_GEMM(NAME, KERNEL, PREP_FN, PREP_T, ...)                                                \
    static void gemm_##NAME(int64_t n, const void *w, const void *x, size_t xs, int nc, float *y, size_t ys, \
                            int nr) {                                                                     \
        PC_GEMM_TILES(KERNEL, __VA_ARGS__, false, n, (const uint8_t *)w)                                  \
    }                                                                                                     \
    static void gemm_prep_##NAME(int64_t n, const void *w, const void *x, size_t xs, int nc, float *y,    \
                                 size_t ys, int nr) {                                                     \
        PC_GEMM_TILES(KERNEL, __VA_ARGS__, true, n, (const uint8_t *)w)                                   \
    }                                                                                                     \
    static void prep_##NAME(int64_t n, const void *w, void *out) { PREP_FN(__VA_ARGS__, n, w, (PREP_T *)out); }

PC_DEFINE_GEMM(q4_0, gemm32, prep32, pc_prep_32, PC_TYPE_Q4_0)
PC_DEFINE_GEMM(q4_1, gemm32, prep32, pc_prep_32, PC_TYPE_Q4_1)
PC_DEFINE_GEMM(q5_0, gemm32, prep32, pc_prep_32, PC_TYPE_Q5_0)
PC_DEFINE_GEMM(q5_1, gemm32, prep32, pc_prep_32, PC_TYPE_Q5_1)
PC_DEFINE_GEMM(q8_0, gemm32, prep32, pc_prep_32, PC_TYPE_Q8_0)
PC_DEFINE_GEMM(q4_K, gemm_k4, prep_k4, pc_prep_k4, false)
PC_DEFINE_GEMM(q5_K, gemm_k4, prep_k4, pc_prep_k4, true)

static void gemm_q6_K(int64_t n, const void *w, const void *x, size_t xs, int nc, float *y, size_t ys, int nr) {
    PC_GEMM_TILES(gemm_q6, false, n, (const uint8_t *)w)
}
static void gemm_prep_q6_K(int64_t n, const void *w, const void *x, size_t xs, int nc, float *y, size_t ys, int nr) {
    PC_GEMM_TILES(gemm_q6, true, n, (const uint8_t *)w)
}
static void prep_q6_K(int64_t n, const void *w, void *out) { prep_q6(n, w, out); }

#endif
