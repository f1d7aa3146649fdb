/* dot_x86.h - the x86 SIMD dot products and tiles, compiled once per ISA path.
 *
 * Included only by dot_avx2.c and dot_avx512.c, after they set the target
 * (#pragma GCC target) and define PC_X86_VNNI (0/1: the 8-bit products use
 * vpdpbusd or vpmaddubsw+vpmaddwd), PC_X86_TILE_R and PC_X86_TILE_C.
 *
 * This part: shared helpers and the 32-element block types (Q4_0, Q4_1,
 * Q5_0, Q5_1, Q8_0) with their tiles; dot_x86_k.h has the K-quants and float
 * types, quant_x86.h the activation quantizers. PC_X86_512 picks the AVX-512
 * template (two blocks per zmm) over the 256-bit one.
 *
 * Determinism: each type's kernel is one always_inline template (tile32 or
 * tile64) run with compile-time tile sizes; the single dot is the 1x1 tile.
 * An output (r, c) gets its own accumulators and the same operations in the
 * same block order whatever the tile size, so a tile's outputs are bitwise
 * the single dot's. Integer block sums are exact, so how they are formed
 * (vpdpbusd or not, offsets folded in or not) never changes a float. Float
 * steps are explicit intrinsics, never left to compiler contraction. */
#ifndef PC_KERNELS_CPU_DOT_X86_H
#define PC_KERNELS_CPU_DOT_X86_H

#include <immintrin.h>
#include <math.h>

#include "kernels/cpu/quant_impl.h"

#define PC_INLINE static inline __attribute__((always_inline))

enum { TR = PC_X86_TILE_R, TC = PC_X86_TILE_C };

/* 32 unsigned bytes times 32 signed bytes, summed in pairs of four into 8 int32. */
PC_INLINE __m256i mul_us8(__m256i u, __m256i s) {
#if PC_X86_VNNI
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s);
#else
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
#endif
}

/* Signed times signed: move x's sign onto y so the unsigned product applies.
 * |x| <= 128 and |y| <= 127 keep vpmaddubsw's pair sums below 2^15. */
PC_INLINE __m256i mul_ss8(__m256i x, __m256i y) {
    return mul_us8(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
}

PC_INLINE float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

PC_INLINE float h2f(const void *p) {
    pc_f16 h;
    memcpy(&h, p, sizeof h);
    return _cvtsh_ss(h);
}

PC_INLINE __m256i load256(const void *p) { return _mm256_loadu_si256((const __m256i *)p); }

/* 16 bytes of nibble pairs -> 32 bytes: low nibbles (elements 0..15) then high (16..31). */
PC_INLINE __m256i nibbles32(const uint8_t *q) {
    const __m128i v = _mm_loadu_si128((const __m128i *)q);
    const __m256i b = _mm256_set_m128i(_mm_srli_epi16(v, 4), v);
    return _mm256_and_si256(b, _mm256_set1_epi8(0x0F));
}

/* 32 bits -> 32 bytes, 0xFF where the bit is set. */
PC_INLINE __m256i bits32(const uint8_t *p) {
    uint32_t x;
    memcpy(&x, p, 4);
    const __m256i shuf = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2,
                                          3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
    const __m256i b = _mm256_and_si256(_mm256_shuffle_epi8(_mm256_set1_epi32((int)x), shuf), bit);
    return _mm256_cmpeq_epi8(b, bit);
}

/* ---- 32-element block types: per-type facts, folded at compile time ---- */

PC_INLINE size_t w_block(pc_type t) {
    switch (t) {
    case PC_TYPE_Q4_0: return sizeof(pc_block_q4_0);
    case PC_TYPE_Q4_1: return sizeof(pc_block_q4_1);
    case PC_TYPE_Q5_0: return sizeof(pc_block_q5_0);
    case PC_TYPE_Q5_1: return sizeof(pc_block_q5_1);
    default: return sizeof(pc_block_q8_0);
    }
}

/* Weight types with a min use Q8_1 activations (d, s, qs); the others Q8_0 (d, qs). */
PC_INLINE bool has_min(pc_type t) { return t == PC_TYPE_Q4_1 || t == PC_TYPE_Q5_1; }
PC_INLINE size_t x_block(pc_type t) { return has_min(t) ? sizeof(pc_block_q8_1) : sizeof(pc_block_q8_0); }
PC_INLINE size_t x_qs(pc_type t) { return has_min(t) ? 4 : 2; }

/* A weight block's 32 values as bytes: unsigned for the min types, signed otherwise. */
PC_INLINE __m256i w_values(pc_type t, const uint8_t *b) {
    switch (t) {
    case PC_TYPE_Q4_0: return _mm256_sub_epi8(nibbles32(b + 2), _mm256_set1_epi8(8));
    case PC_TYPE_Q4_1: return nibbles32(b + 4);
    case PC_TYPE_Q5_0: /* bit 4 clear: the value is nibble - 16, i.e. nibble | 0xF0 */
        return _mm256_or_si256(nibbles32(b + 6), _mm256_andnot_si256(bits32(b + 2), _mm256_set1_epi8((char)0xF0)));
    case PC_TYPE_Q5_1:
        return _mm256_or_si256(nibbles32(b + 8), _mm256_and_si256(bits32(b + 4), _mm256_set1_epi8(0x10)));
    default: return load256(b + 2);
    }
}

PC_INLINE __m256i w_times_x(pc_type t, __m256i wv, __m256i xv) {
    return has_min(t) ? mul_us8(wv, xv) : mul_ss8(wv, xv);
}

/* The f16 pairs at the head of NC activation blocks as 8 floats: lane 2c holds
 * token c's d, lane 2c+1 its s (Q8_1) or bytes of no meaning (Q8_0: unused). */
PC_INLINE __m256 x_scales(const uint8_t *x, size_t xs, const int NC) {
    int32_t v[4] = {0, 0, 0, 0};
#pragma GCC unroll 4
    for (int c = 0; c < NC; c++) memcpy(&v[c], x + c * xs, 4);
    return _mm256_cvtph_ps(_mm_setr_epi32(v[0], v[1], v[2], v[3]));
}

PC_INLINE __m256 lane(__m256 v, int i) { return _mm256_permutevar8x32_ps(v, _mm256_set1_epi32(i)); }

/* The template: outputs y[c*ys + r] for r < NR, c < NC (NR <= TR, NC <= TC constants).
 * Per output and block: acc += (dw * dx) * isum in 8 lanes; for the min types
 * also mins += m * s (one lane of a vector shared by the tile's tokens).
 * The result is hsum(acc) + mins. */
PC_INLINE void tile32(pc_type t, int64_t n, const uint8_t *w, size_t ws, const int NR, const uint8_t *x, size_t xs,
                      const int NC, float *y, size_t ys) {
    const size_t wb = w_block(t), xb = x_block(t);
    const int64_t nb = n / 32;
    __m256 acc[TR][TC], mins[TR];
#pragma GCC unroll 4
    for (int r = 0; r < NR; r++) {
        mins[r] = _mm256_setzero_ps();
#pragma GCC unroll 4
        for (int c = 0; c < NC; c++) acc[r][c] = _mm256_setzero_ps();
    }
    for (int64_t b = 0; b < nb; b++) {
        const __m256 ds = x_scales(x + b * xb, xs, NC);
        __m256i xv[TC];
#pragma GCC unroll 4
        for (int c = 0; c < NC; c++) xv[c] = load256(x + c * xs + b * xb + x_qs(t));
#pragma GCC unroll 4
        for (int r = 0; r < NR; r++) {
            const uint8_t *wp = w + r * ws + b * wb;
            int32_t head;
            memcpy(&head, wp, 4);
            const __m256 dm = _mm256_castps128_ps256(_mm_cvtph_ps(_mm_cvtsi32_si128(head))); /* d, m */
            const __m256 scale = _mm256_mul_ps(_mm256_permutevar8x32_ps(dm, _mm256_setzero_si256()), ds);
            if (has_min(t)) mins[r] = _mm256_fmadd_ps(_mm256_permutevar8x32_ps(dm, _mm256_set1_epi32(1)), ds, mins[r]);
            const __m256i wv = w_values(t, wp);
#pragma GCC unroll 4
            for (int c = 0; c < NC; c++) {
                const __m256 p = _mm256_cvtepi32_ps(w_times_x(t, wv, xv[c]));
                acc[r][c] = _mm256_fmadd_ps(lane(scale, 2 * c), p, acc[r][c]);
            }
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < NR; r++) {
        float m[8];
        _mm256_storeu_ps(m, mins[r]);
#pragma GCC unroll 4
        for (int c = 0; c < NC; c++) y[c * ys + r] = has_min(t) ? hsum8(acc[r][c]) + m[2 * c + 1] : hsum8(acc[r][c]);
    }
}

#if PC_X86_512
/* ---- AVX-512: two blocks per zmm (lanes 0-7 block b, 8-15 block b+1) ----
 * Every weight type is read as unsigned bytes q with value q - off; the
 * offset is folded into the integer sum by starting vpdpbusd from
 * -off * (sums of the activations' byte quads), so no sign juggling per output.
 * An odd last block pairs with zero activations and zero scales: it adds +0. */

PC_INLINE int w_offset(pc_type t) {
    switch (t) {
    case PC_TYPE_Q4_0: return 8;
    case PC_TYPE_Q5_0: return 16;
    case PC_TYPE_Q8_0: return 128;
    default: return 0;
    }
}

PC_INLINE __m512i join_i(__m256i lo, __m256i hi) { return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1); }
PC_INLINE __m512 join_ps(__m256 lo, __m256 hi) {
    return _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castpd256_pd512(_mm256_castps_pd(lo)), _mm256_castps_pd(hi), 1));
}

/* Nibbles of two blocks: [q0 low, q0 high, q1 low, q1 high] by 16-byte lane. */
PC_INLINE __m512i nibbles64(const uint8_t *q0, const uint8_t *q1) {
    const __m512i v = join_i(_mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)q0)),
                             _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)q1)));
    const long long s4 = 0x0004000400040004LL;
    return _mm512_and_si512(_mm512_srlv_epi16(v, _mm512_setr_epi64(0, 0, s4, s4, 0, 0, s4, s4)),
                            _mm512_set1_epi8(0x0F));
}

PC_INLINE __m512i w_values2(pc_type t, const uint8_t *b0, const uint8_t *b1) {
    const __m512i bit4 = _mm512_set1_epi8(0x10);
    switch (t) {
    case PC_TYPE_Q4_0: return nibbles64(b0 + 2, b1 + 2);
    case PC_TYPE_Q4_1: return nibbles64(b0 + 4, b1 + 4);
    case PC_TYPE_Q5_0:
        return _mm512_or_si512(nibbles64(b0 + 6, b1 + 6), _mm512_and_si512(join_i(bits32(b0 + 2), bits32(b1 + 2)), bit4));
    case PC_TYPE_Q5_1:
        return _mm512_or_si512(nibbles64(b0 + 8, b1 + 8), _mm512_and_si512(join_i(bits32(b0 + 4), bits32(b1 + 4)), bit4));
    default: return _mm512_xor_si512(join_i(load256(b0 + 2), load256(b1 + 2)), _mm512_set1_epi8((char)0x80));
    }
}

/* The leading f16 pair (d, then m or bytes of no meaning) of two weight blocks as 4 floats. */
PC_INLINE __m128 w_head2(const uint8_t *b0, const uint8_t *b1) {
    int32_t h0, h1;
    memcpy(&h0, b0, 4);
    memcpy(&h1, b1, 4);
    return _mm_cvtph_ps(_mm_setr_epi32(h0, h1, 0, 0));
}

PC_INLINE float hsum16(__m512 v) {
    const __m256 lo = _mm512_castps512_ps256(v);
    const __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
    return hsum8(_mm256_add_ps(lo, hi));
}

/* Same contract as tile32, on block pairs. */
PC_INLINE void tile64(pc_type t, int64_t n, const uint8_t *w, size_t ws, const int NR, const uint8_t *x, size_t xs,
                      const int NC, float *y, size_t ys) {
    const size_t wb = w_block(t), xb = x_block(t);
    const int64_t nb = n / 32;
    const __m512i zero = _mm512_setzero_si512(), offv = _mm512_set1_epi8((char)w_offset(t));
    const __m512i idx_d = join_i(_mm256_set1_epi32(0), _mm256_set1_epi32(2));
    const __m512i idx_m = join_i(_mm256_set1_epi32(1), _mm256_set1_epi32(3));
    __m512 acc[TR][TC], mins[TR];
#pragma GCC unroll 4
    for (int r = 0; r < NR; r++) {
        mins[r] = _mm512_setzero_ps();
#pragma GCC unroll 4
        for (int c = 0; c < NC; c++) acc[r][c] = _mm512_setzero_ps();
    }
    for (int64_t b = 0; b < nb; b += 2) {
        const bool two = b + 1 < nb;
        const uint8_t *x0 = x + b * xb, *x1 = two ? x0 + xb : x0;
        const __m512 ds = join_ps(x_scales(x0, xs, NC), two ? x_scales(x1, xs, NC) : _mm256_setzero_ps());
        __m512i xv[TC], init[TC];
#pragma GCC unroll 4
        for (int c = 0; c < NC; c++) {
            xv[c] = join_i(load256(x0 + c * xs + x_qs(t)), two ? load256(x1 + c * xs + x_qs(t)) : _mm256_setzero_si256());
            init[c] = w_offset(t) ? _mm512_sub_epi32(zero, _mm512_dpbusd_epi32(zero, offv, xv[c])) : zero;
        }
#pragma GCC unroll 4
        for (int r = 0; r < NR; r++) {
            const uint8_t *w0 = w + r * ws + b * wb, *w1 = two ? w0 + wb : w0;
            const __m512 dm = _mm512_castps128_ps512(w_head2(w0, w1)); /* d0, m0, d1, m1 */
            const __m512 scale = _mm512_mul_ps(_mm512_permutexvar_ps(idx_d, dm), ds); /* lane 2c (+8): dw * dx_c */
            if (has_min(t)) mins[r] = _mm512_fmadd_ps(_mm512_permutexvar_ps(idx_m, dm), ds, mins[r]);
            const __m512i wv = w_values2(t, w0, w1);
#pragma GCC unroll 4
            for (int c = 0; c < NC; c++) {
                const __m512 p = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(init[c], wv, xv[c]));
                const __m512i idx = join_i(_mm256_set1_epi32(2 * c), _mm256_set1_epi32(8 + 2 * c));
                acc[r][c] = _mm512_fmadd_ps(_mm512_permutexvar_ps(idx, scale), p, acc[r][c]);
            }
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < NR; r++) {
        float m[16];
        _mm512_storeu_ps(m, mins[r]);
#pragma GCC unroll 4
        for (int c = 0; c < NC; c++)
            y[c * ys + r] = has_min(t) ? hsum16(acc[r][c]) + (m[2 * c + 1] + m[8 + 2 * c + 1]) : hsum16(acc[r][c]);
    }
}
#define PC_TILE tile64
#else
#define PC_TILE tile32
#endif

/* Full tiles and decode's row-only tiles run wide; ragged edges one output at a time. */
PC_INLINE void tile_any(pc_type t, int64_t n, const void *w, size_t ws, int nr, const void *x, size_t xs, int nc,
                        float *y, size_t ys) {
    const uint8_t *wp = w, *xp = x;
    if (nr == TR && nc == TC) {
        PC_TILE(t, n, wp, ws, TR, xp, xs, TC, y, ys);
    } else if (nr == TR && nc == 1) {
        PC_TILE(t, n, wp, ws, TR, xp, xs, 1, y, ys);
    } else {
        for (int c = 0; c < nc; c++)
            for (int r = 0; r < nr; r++) PC_TILE(t, n, wp + r * ws, 0, 1, xp + c * xs, 0, 1, y + c * ys + r, 0);
    }
}

#define PC_DEFINE_32(NAME, TYPE)                                                                     \
    static void tile_##NAME(int64_t n, const void *w, size_t ws, int nr, const void *x, size_t xs, \
                            int nc, float *y, size_t ys) {                                           \
        tile_any(TYPE, n, w, ws, nr, x, xs, nc, y, ys);                                              \
    }                                                                                                \
    static void dot_##NAME(int64_t n, float *s, const void *w, const void *x) {                     \
        PC_TILE(TYPE, n, w, 0, 1, x, 0, 1, s, 0);                                                    \
    }

PC_DEFINE_32(q4_0, PC_TYPE_Q4_0)
PC_DEFINE_32(q4_1, PC_TYPE_Q4_1)
PC_DEFINE_32(q5_0, PC_TYPE_Q5_0)
PC_DEFINE_32(q5_1, PC_TYPE_Q5_1)
PC_DEFINE_32(q8_0, PC_TYPE_Q8_0)

#endif
