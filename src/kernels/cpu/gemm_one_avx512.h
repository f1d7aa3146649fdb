/* gemm_one_avx512.h - the one-token (decode) kernels of the K-quants on AVX-512 VNNI.
 *
 * Included by gemm_x86.h in the AVX-512 instance only. Decode streams every
 * weight once from memory, and the general kernels' unpacking kept the core
 * busy long enough that fewer loads were in flight than the memory could
 * serve (Q4_K and Q6_K streamed at 66-80% of a plain prefetching read, Q8_0,
 * with nearly no unpacking, at 92-95%). These compute the same floats with
 * fewer vector instructions per weight byte and shorter dependency chains:
 *   - a high nibble is taken as v & 0xF0, i.e. 16 times its value, and the
 *     exact integer sum divided by 16 once per sub-block, instead of shifting
 *     every weight vector (shifts share port 0 with vpdpbusd);
 *   - Q6_K's two top bits go through their own vpdpbusd on (qh & mask), whose
 *     exact sum is scaled back by a shift, instead of being shifted into
 *     place and merged per weight vector;
 *   - each sub-block's sum runs as two or four independent chains of vpdpbusd
 *     added at the end.
 * Integer sums are exact however they are split or scaled, and the float
 * steps are quant.h's canonical ones in the same order, so outputs are the
 * same bits as gemm_x86.h's kernels (the tests compare them). */
#ifndef PC_KERNELS_CPU_GEMM_ONE_AVX512_H
#define PC_KERNELS_CPU_GEMM_ONE_AVX512_H

/* Byte b of each int32 lane of v (b = 0..3), zero-extended; vpshufb runs on port 5, away from vpdpbusd. */
PC_INLINE __m512i byte_of_lane(__m512i v, int b) {
    const __m512i ctl = _mm512_set1_epi32((int)(0x80808000u | (unsigned)b));
    const __m512i base = _mm512_set4_epi32(12 * 0x01010101, 8 * 0x01010101, 4 * 0x01010101, 0);
    return _mm512_shuffle_epi8(v, _mm512_add_epi8(ctl, base));
}

/* Bytes b and b+1 of each int32 lane as its two int16 halves. */
PC_INLINE __m512i bytes_pair_of_lane(__m512i v, int b) {
    const __m512i ctl = _mm512_set1_epi32((int)(0x80008000u | ((unsigned)(b + 1) << 16) | (unsigned)b));
    const __m512i base = _mm512_set4_epi32(12 * 0x00010001, 8 * 0x00010001, 4 * 0x00010001, 0);
    return _mm512_shuffle_epi8(v, _mm512_add_epi8(ctl, base));
}

/* Part `part` of `parts` of prefetch_stream(block, bytes): asked for a few lines
 * at a time between the block's compute rather than all at once. */
PC_INLINE void prefetch_part(const uint8_t *block, size_t bytes, int part, int parts, size_t near) {
    const size_t lines = (bytes + 63) / 64, l0 = lines * (size_t)part / (size_t)parts;
    const size_t l1 = lines * (size_t)(part + 1) / (size_t)parts;
    for (size_t l = l0; l < l1; l++) prefetch_line_near(block, l, PF_AHEAD, near);
}

/* acc + w . x's 4 bytes in every lane, x taken as vpdpbusd's embedded-broadcast operand: GCC (12) loads it with a
 * vpbroadcastd of its own instead, one more instruction per vpdpbusd (a sixth of the Q4_K loop's) */
PC_INLINE __m512i dpb(__m512i acc, __m512i w, const int8_t *x) {
    typedef struct { int8_t b[4]; } word;
    __asm__("vpdpbusd %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(w), "m"(*(const word *)x));
    return acc;
}

/* Q4_K's 8 scales (bytes of sc[0] = sub-blocks 0-3, sc[1] = 4-7) and mins
 * (mn[0], mn[1]) per lane, from the three scale words (pc_k4_scale_min). */
PC_INLINE void k4_one_scales(const pc_pack_q4_K *p, __m512i sc[2], __m512i mn[2]) {
    const __m512i w0 = vi_load(p->scales[0]), w1 = vi_load(p->scales[1]), w2 = vi_load(p->scales[2]);
    const __m512i m6 = _mm512_set1_epi8(0x3F), m4 = _mm512_set1_epi8(0x0F), top = _mm512_set1_epi8(0x30);
    sc[0] = _mm512_and_si512(w0, m6);
    mn[0] = _mm512_and_si512(w1, m6);
    /* (w2 & 0x0F) | ((w0 >> 6) << 4) per byte: the 0x0F mask selects between the two (0xCA: a ? b : c) */
    sc[1] = _mm512_ternarylogic_epi32(m4, w2, _mm512_and_si512(_mm512_srli_epi32(w0, 2), top), 0xCA);
    mn[1] = _mm512_ternarylogic_epi32(m4, _mm512_srli_epi32(w2, 4), _mm512_and_si512(_mm512_srli_epi32(w1, 2), top),
                                      0xCA);
}

/* One token of Q4_K over a packed row group: y[r] for r < nr. The block's
 * prefetches go out two or three lines at a time beside each pair of loads
 * (not nine at the start of each sub-block pair), and into L1 2048 bytes
 * ahead (PC_PACK_PREFETCH_L1_Q4_K_ONE): on a host whose read bandwidth is
 * per core (Intel, AMX, session 19) a plain read with up to six vpdpbusd per
 * line still streamed at 100% of the bare read while this kernel ran at
 * 87-89%; spread, it ran at 90-93% (1 thread, bench_matmul --stream's per-pass
 * ratio, 3 rounds alternating with main; 2304 bytes as good, 1792 and 2560+
 * worse; bench/results/engine.md, session 19). */
PC_INLINE void gemm_q4k_one(int64_t n, const uint8_t *w, const uint8_t *x, float *y, int nr) {
    const __m512i lo4 = _mm512_set1_epi8(0x0F), hi4 = _mm512_set1_epi8((char)0xF0);
    __m512 acc = _mm512_setzero_ps();
    for (int64_t i = 0; i < n / PC_QK_K; i++) {
        const pc_pack_q4_K *p = (const pc_pack_q4_K *)(w + i * sizeof(pc_pack_q4_K));
        const pc_xp_q8_K *xc = (const pc_xp_q8_K *)(x + i * sizeof(pc_xp_q8_K));
        __m512i sc[2], mn[2];
        k4_one_scales(p, sc, mn);
        const __m512 d = vf_f16(p->d);
        __m512 t = _mm512_setzero_ps();
#pragma GCC unroll 4
        for (int q = 0; q < 4; q++) { /* sub-blocks 2q (low nibbles) and 2q + 1 (high) */
            __m512i l0 = _mm512_setzero_si512(), l1 = l0, h0 = l0, h1 = l0;
            const int8_t *xl = xc->qs + 64 * q, *xh = xl + 32;
#pragma GCC unroll 8
            for (int k = 0; k < 8; k += 2) {
                prefetch_part((const uint8_t *)p, sizeof *p, 4 * q + k / 2, 16, PC_PACK_PREFETCH_L1_Q4_K_ONE);
                const __m512i a = vi_load(p->qs[q][k]), b = vi_load(p->qs[q][k + 1]);
                l0 = dpb(l0, _mm512_and_si512(a, lo4), xl + 4 * k);
                h0 = dpb(h0, _mm512_and_si512(a, hi4), xh + 4 * k);
                l1 = dpb(l1, _mm512_and_si512(b, lo4), xl + 4 * k + 4);
                h1 = dpb(h1, _mm512_and_si512(b, hi4), xh + 4 * k + 4);
            }
            const __m512i il = _mm512_add_epi32(l0, l1);
            const __m512i ih = _mm512_srai_epi32(_mm512_add_epi32(h0, h1), 4); /* exact: every product is 16x */
            const __m512 dl = _mm512_mul_ps(d, _mm512_cvtepi32_ps(byte_of_lane(sc[q >> 1], 2 * (q & 1))));
            const __m512 dh = _mm512_mul_ps(d, _mm512_cvtepi32_ps(byte_of_lane(sc[q >> 1], 2 * (q & 1) + 1)));
            t = _mm512_fmadd_ps(dl, _mm512_cvtepi32_ps(il), t);
            t = _mm512_fmadd_ps(dh, _mm512_cvtepi32_ps(ih), t);
        }
        __m512i ms = _mm512_setzero_si512();
#pragma GCC unroll 4
        for (int q = 0; q < 4; q++)
            ms = _mm512_dpwssd_epi32(ms, bytes_pair_of_lane(mn[q >> 1], 2 * (q & 1)), vi_bcast(&xc->bpair[q]));
        t = _mm512_fnmadd_ps(vf_f16(p->dmin), _mm512_cvtepi32_ps(ms), t);
        acc = _mm512_fmadd_ps(t, vf_bcast(&xc->d), acc);
    }
    vf_store(y, acc, nr);
}

/* Q6_K's one-token kernel asks for each line into L1 4096 bytes ahead
 * (PC_PACK_PREFETCH_L1_Q6_K_ONE), not PC_PACK_PREFETCH_L1's 1536: its steps
 * read a block out of order (qh and the scales 2-3 KiB past the ql they pair
 * with), so a near L1 distance left those loads waiting on L2. On session 19's
 * host: 96-99% of the plain read against main's 85-88% (1 thread, 3 rounds;
 * 3072 gave 92-95%, 4608 and 5120 as 4096). It asks for its lines into L2 two of its blocks ahead
 * (PC_PACK_PREFETCH_Q6_K_ONE) rather than PC_PACK_PREFETCH (4096 bytes, 1.2
 * blocks): at the slow memory level a block takes about a memory latency per
 * core, and its first sub-block already reads qh and the scales 2-3 KiB in.
 * matmul.c asks for a task's first that many bytes. Decode per-step timers,
 * each Q6_K step's rate as a share of the same run's Q4_K gate/up rate,
 * alternating with the 4096 build: 1.5B down 84.2 vs 83.1% (3 of 3 pairs
 * ahead), head 90.4 vs 89.3% (3 of 3); 0.5B down 84.2 vs 83.3% (2 of 4).
 * Without the task start (4096 bytes asked for there) the 0.5B's down, in
 * 3.6 MB jobs of ~20 tasks, fell to 72% from 77%. */
/* What differs between the Q6_K one-token kernel's steps m = 0..7 (sub-blocks
 * 2m, 2m + 1; half = m / 4, k = m % 4; see gemm_q6k_one), as data. */
typedef struct {
    int32_t nib, top;   /* the low nibbles' mask (k >> 1 picks 0x0F or 0xF0) and the top bits' (3 << 2k), per byte */
    int32_t lo, hi;     /* shifts that bring the low chain to L and the top one to 64 T */
    int32_t ql, qh, sc; /* byte offsets in the block: the first sub-block's ql and qh chunks, and the scale word loaded
                         * so that the two sub-blocks' scale bytes are bytes 2 and 3 of each lane */
} q6_one_step;
#define Q6_STEP(m)                                                                                                    \
    {(m) & 2 ? (int32_t)0xF0F0F0F0u : 0x0F0F0F0F, (int32_t)(0x03030303u << (2 * ((m) & 3))), (m) & 2 ? 4 : 0,         \
     6 - 2 * ((m) & 3), (int32_t)(offsetof(pc_pack_q6_K, ql) + 64 * (16 * ((m) >> 2) + 8 * ((m) & 1))),                \
     (int32_t)(offsetof(pc_pack_q6_K, qh) + 64 * 8 * ((m) >> 2)),                                                      \
     (int32_t)(offsetof(pc_pack_q6_K, sc) + 64 * ((m) >> 1) + 2 * ((m) & 1) - 2)}
static const q6_one_step Q6_ONE_STEPS[8] = {Q6_STEP(0), Q6_STEP(1), Q6_STEP(2), Q6_STEP(3),
                                            Q6_STEP(4), Q6_STEP(5), Q6_STEP(6), Q6_STEP(7)};
#undef Q6_STEP

/* One token of Q6_K over a packed row group. Sub-block j (16 values) reads
 * ql chunks 16 half + 8 (k & 1) + l4 (nibble k >> 1) and qh chunks
 * 8 half + l4 (bits 2k, 2k + 1), half = j / 8, k = (j % 8) / 2,
 * l4 = 4 (j % 2) + u for its groups u = 0..3 (q6_group's layout). With L the
 * sum over the low nibbles and T over the top bits, the sum is L + 16 T - 32 B:
 * the low chain holds L (k < 2) or 16 L (k >= 2, nibbles taken as & 0xF0) and
 * the top chain 4^k T (bits taken in place), brought to 16 T as
 * (4^k T << (6 - 2k)) >> 2 (exact).
 *
 * The sub-blocks run as a loop of 8 steps, each the pair 2m, 2m + 1 (the same
 * k), with what differs between steps read from Q6_ONE_STEPS, and each step
 * asks for 7 lines of the block two ahead. The kernel was 16 sub-blocks
 * unrolled (3808 bytes) after one 53-line prefetch loop per block, and its
 * speed depended on where the linker put it (Q6_K steps at 68-80% of the
 * Q4_K rate at 7, 23, 55 mod 64, 84-100% at 39). Either change alone still
 * did (the rolled steps after the prefetch loop: fast at one of four 16-byte
 * shifts; the unrolled body with spread prefetches: slow at all four); both
 * together are fast at all four (bench/results/engine.md, session 13). The
 * sub-blocks' float steps keep their order, so the output bits are the same. */
PC_INLINE void gemm_q6k_one(int64_t n, const uint8_t *w, const uint8_t *x, float *y, int nr) {
    __m512 acc = _mm512_setzero_ps();
    for (int64_t i = 0; i < n / PC_QK_K; i++) {
        const uint8_t *p = w + i * sizeof(pc_pack_q6_K);
        const pc_xp_q8_K *xc = (const pc_xp_q8_K *)(x + i * sizeof(pc_xp_q8_K));
        const __m512 d = vf_f16(((const pc_pack_q6_K *)p)->d);
        __m512 t = _mm512_setzero_ps();
#pragma GCC unroll 1
        for (int m = 0; m < 8; m++) {
            const q6_one_step *st = &Q6_ONE_STEPS[m];
            /* The block two ahead, 7 of its lines a step (the last step's last 3 are the next block's first),
             * two at a time beside the step's loads. Spread over a block at 4096 bytes' distance these came
             * too late for qh and the scales, which the first step reads 2-3 KiB into the block; two blocks
             * ahead, each is still asked for at least a block before its first use. */
            const __m512i nib = vi_bcast(&st->nib), top = vi_bcast(&st->top);
            const __m512i lo_shift = vi_bcast(&st->lo), hi_shift = vi_bcast(&st->hi);
            const __m512i sw = vi_load(p + st->sc);
            const int8_t *xq = xc->qs + 32 * m;
#pragma GCC unroll 2
            for (int e = 0; e < 2; e++) { /* sub-block j = 2m + e */
                const uint8_t *ql = p + st->ql + 256 * e, *qh = p + st->qh + 256 * e;
                const int8_t *xe = xq + 16 * e;
                __m512i a0 = _mm512_setzero_si512(), a1 = a0, b0 = a0, b1 = a0;
#pragma GCC unroll 4
                for (int u = 0; u < 4; u += 2) {
                    const int j = 2 * e + u / 2;
                    for (int l = j * 7 / 4; l < (j + 1) * 7 / 4; l++)
                        prefetch_line_near(p + 7 * 64 * m, (size_t)l, PC_PACK_PREFETCH_Q6_K_ONE,
                                       PC_PACK_PREFETCH_L1_Q6_K_ONE);
                    a0 = dpb(a0, _mm512_and_si512(vi_load(ql + 64 * u), nib), xe + 4 * u);
                    b0 = dpb(b0, _mm512_and_si512(vi_load(qh + 64 * u), top), xe + 4 * u);
                    a1 = dpb(a1, _mm512_and_si512(vi_load(ql + 64 * u + 64), nib), xe + 4 * u + 4);
                    b1 = dpb(b1, _mm512_and_si512(vi_load(qh + 64 * u + 64), top), xe + 4 * u + 4);
                }
                const __m512i lo = _mm512_srav_epi32(_mm512_add_epi32(a0, a1), lo_shift);
                const __m512i hi = _mm512_srai_epi32(_mm512_sllv_epi32(_mm512_add_epi32(b0, b1), hi_shift), 2);
                const __m512i isum = _mm512_add_epi32(_mm512_add_epi32(lo, hi), vi_bcast(&xc->neg32[2 * m + e]));
                const __m512i s = _mm512_srai_epi32(e ? sw : _mm512_slli_epi32(sw, 8), 24);
                t = _mm512_fmadd_ps(_mm512_mul_ps(d, _mm512_cvtepi32_ps(s)), _mm512_cvtepi32_ps(isum), t);
            }
        }
        acc = _mm512_fmadd_ps(t, vf_bcast(xc), acc);
    }
    vf_store(y, acc, nr);
}

#endif
