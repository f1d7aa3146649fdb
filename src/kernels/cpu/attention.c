/* attention.c - attention by position over KV spans; see attention.h for the contract.
 *
 * Work is split into tasks of (a tile of up to TILE_Q queries, one KV head):
 * the tile's G = n_head / n_head_kv query heads share every key they read.
 * Keys are taken in units of KU = 2 stored blocks from one span; blocks are
 * stored transposed (kv.h), so a unit turns into f32 [hd][KU] as it lies and
 * the scores of one query row against it are KU lanes (one zmm, or two ymm),
 * with no horizontal sums.
 *
 * Exactness. Each number a query row gets is computed by the same operations
 * whichever block, lane or span its key sits in:
 *   score(q, k)  = fmaf chain over d = 0..hd-1, from 0, then * scale;
 *   e            = exp(score - max), one polynomial per element;
 *   sum          = the sum of e in 2^-30 fixed point, as integers (associative,
 *                  so vector lanes and block boundaries cannot change it);
 *   p            = f16(e * (1 / sum));
 *   out          = fmaf chain of p * v over the visible keys in context order
 *                  (each output dimension its own chain).
 * Masked keys (position > the query's) get p = 0 and are skipped, so splitting
 * the same (position, K, V) sequence into other spans - which moves block
 * boundaries - changes nothing, and the scalar and AVX2 paths give the same
 * bits (fmaf and vfmadd are both one rounding). */
#include "kernels/cpu/attention.h"

#include <math.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

enum { TILE_Q = 16, KB = PC_KV_BLOCK, KU = 2 * PC_KV_BLOCK, RG = 8 };

#define FIX_SCALE 1073741824.0f /* 2^30 */

typedef struct attn_scratch {
    float *q;       /* [rows_pad][hd] f16-rounded queries (pad rows zero) */
    float *acc;     /* [rows_pad][hd] */
    float *kt;      /* [hd][KU] transposed key unit */
    float *vb;      /* [KU][hd] value unit */
    float *scores;  /* [rows_pad][n_ctx] */
    int64_t n_ctx;
} attn_scratch;

static size_t align64(size_t n) { return (n + 63) & ~(size_t)63; }
static int32_t rows_padded(int32_t G) { return (TILE_Q * G + RG - 1) / RG * RG; }

size_t pc_attn_scratch_size(int32_t n_head, int32_t n_head_kv, int32_t head_dim, int64_t n_ctx) {
    const size_t rows = (size_t)rows_padded(n_head / n_head_kv), hd = (size_t)head_dim;
    return 2 * align64(rows * hd * sizeof(float)) + 2 * align64(hd * KU * sizeof(float)) +
           align64(rows * (size_t)(n_ctx + KU) * sizeof(float));
}

static attn_scratch carve(void *base, int32_t G, int32_t hd, int64_t n_ctx) {
    const size_t rows = (size_t)rows_padded(G);
    char *p = base;
    attn_scratch s;
    s.q = (float *)p;
    p += align64(rows * hd * sizeof(float));
    s.acc = (float *)p;
    p += align64(rows * hd * sizeof(float));
    s.kt = (float *)p;
    p += align64((size_t)hd * KU * sizeof(float));
    s.vb = (float *)p;
    p += align64((size_t)hd * KU * sizeof(float));
    s.scores = (float *)p;
    s.n_ctx = n_ctx + KU;
    return s;
}

/* ---- kernels: scalar and AVX2, bit-identical by construction ---- */

/* exp(x) for x <= 0 (x = -inf gives 0): Cephes' expf polynomial, fused steps. */
static inline float exp_neg_scalar(float x) {
    if (x < -80.0f) return 0.0f; /* e^-80 ~ 2e-35: no subnormal results below */
    const float n = nearbyintf(x * 1.44269504088896341f);
    float r = fmaf(n, -0.693359375f, x);
    r = fmaf(n, 2.12194440e-4f, r);
    float y = 1.9875691500e-4f;
    y = fmaf(y, r, 1.3981999507e-3f);
    y = fmaf(y, r, 8.3334519073e-3f);
    y = fmaf(y, r, 4.1665795894e-2f);
    y = fmaf(y, r, 1.6666665459e-1f);
    y = fmaf(y, r, 5.0000001201e-1f);
    y = fmaf(y, r * r, r);
    y = y + 1.0f;
    return ldexpf(y, (int)n);
}

/* out[RG][KU]: scores of RG query rows against a key unit kt[hd][KU]. */
static void scores_scalar(float *out, const float *q, const float *kt, int32_t hd) {
    for (int32_t i = 0; i < RG; i++)
        for (int32_t l = 0; l < KU; l++) {
            float acc = 0.0f;
            for (int32_t d = 0; d < hd; d++) acc = fmaf(q[i * hd + d], kt[d * KU + l], acc);
            out[i * KU + l] = acc;
        }
}

/* One or two stored key blocks ([hd][KB] f16 each) into kt[hd][KU]; a missing second block is zero. */
static void k_unit_scalar(float *kt, const pc_f16 *b0, const pc_f16 *b1, int32_t hd) {
    for (int32_t d = 0; d < hd; d++)
        for (int32_t l = 0; l < KB; l++) {
            kt[d * KU + l] = pc_f16_to_f32(b0[d * KB + l]);
            kt[d * KU + KB + l] = b1 ? pc_f16_to_f32(b1[d * KB + l]) : 0.0f;
        }
}

/* acc += p[l] * v[l] for the keys of a block, in order; p == 0 skipped (as everywhere). */
static void pv_scalar(float *acc, const float *p, const float *vb, int32_t nb, int32_t hd) {
    for (int32_t l = 0; l < nb; l++)
        if (p[l] != 0.0f)
            for (int32_t d = 0; d < hd; d++) acc[d] = fmaf(p[l], vb[l * hd + d], acc[d]);
}

static void f16_to_f32_scalar(float *dst, const pc_f16 *src, int32_t n) {
    for (int32_t i = 0; i < n; i++) dst[i] = pc_f16_to_f32(src[i]);
}

/* Max is exact in any order, so the vector version agrees with this one. */
static float max_scalar(const float *s, int64_t n) {
    float mx = -INFINITY;
    for (int64_t j = 0; j < n; j++) mx = s[j] > mx ? s[j] : mx;
    return mx;
}

/* s[j] = f16(s[j] * inv), kept as f32 */
static void scale_round_scalar(float *s, int64_t n, float inv) {
    for (int64_t j = 0; j < n; j++) s[j] = pc_f16_to_f32(pc_f32_to_f16(s[j] * inv));
}

/* e[j] = exp(s[j] - mx) in place; returns the fixed-point sum. */
static int64_t exp_sum_scalar(float *s, int64_t n, float mx) {
    int64_t sum = 0;
    for (int64_t j = 0; j < n; j++) {
        const float e = exp_neg_scalar(s[j] - mx);
        s[j] = e;
        sum += (int64_t)(int32_t)(e * FIX_SCALE);
    }
    return sum;
}

#if defined(__x86_64__)
#define AVX2 __attribute__((target("avx2,fma,f16c")))

/* Two passes of 4 rows x 16 lanes: 8 accumulators fit the 16 ymm registers. */
AVX2 static void scores_avx2(float *out, const float *q, const float *kt, int32_t hd) {
    for (int32_t r0 = 0; r0 < RG; r0 += 4) {
        __m256 lo[4], hi[4];
        for (int32_t i = 0; i < 4; i++) lo[i] = hi[i] = _mm256_setzero_ps();
        for (int32_t d = 0; d < hd; d++) {
            const __m256 k0 = _mm256_load_ps(kt + d * KU), k1 = _mm256_load_ps(kt + d * KU + KB);
            for (int32_t i = 0; i < 4; i++) {
                const __m256 qv = _mm256_broadcast_ss(q + (r0 + i) * hd + d);
                lo[i] = _mm256_fmadd_ps(qv, k0, lo[i]);
                hi[i] = _mm256_fmadd_ps(qv, k1, hi[i]);
            }
        }
        for (int32_t i = 0; i < 4; i++) {
            _mm256_storeu_ps(out + (r0 + i) * KU, lo[i]);
            _mm256_storeu_ps(out + (r0 + i) * KU + KB, hi[i]);
        }
    }
}

AVX2 static void k_unit_avx2(float *kt, const pc_f16 *b0, const pc_f16 *b1, int32_t hd) {
    for (int32_t d = 0; d < hd; d++) {
        _mm256_store_ps(kt + d * KU, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(b0 + d * KB))));
        _mm256_store_ps(kt + d * KU + KB,
                        b1 ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(b1 + d * KB))) : _mm256_setzero_ps());
    }
}

AVX2 static void pv_avx2(float *acc, const float *p, const float *vb, int32_t nb, int32_t hd) {
    if (hd % 32 != 0) {
        pv_scalar(acc, p, vb, nb, hd);
        return;
    }
    for (int32_t d0 = 0; d0 < hd; d0 += 32) {
        __m256 a0 = _mm256_loadu_ps(acc + d0), a1 = _mm256_loadu_ps(acc + d0 + 8), a2 = _mm256_loadu_ps(acc + d0 + 16),
               a3 = _mm256_loadu_ps(acc + d0 + 24);
        for (int32_t l = 0; l < nb; l++) {
            if (p[l] == 0.0f) continue;
            const __m256 pl = _mm256_set1_ps(p[l]);
            const float *v = vb + l * hd + d0;
            a0 = _mm256_fmadd_ps(pl, _mm256_loadu_ps(v), a0);
            a1 = _mm256_fmadd_ps(pl, _mm256_loadu_ps(v + 8), a1);
            a2 = _mm256_fmadd_ps(pl, _mm256_loadu_ps(v + 16), a2);
            a3 = _mm256_fmadd_ps(pl, _mm256_loadu_ps(v + 24), a3);
        }
        _mm256_storeu_ps(acc + d0, a0);
        _mm256_storeu_ps(acc + d0 + 8, a1);
        _mm256_storeu_ps(acc + d0 + 16, a2);
        _mm256_storeu_ps(acc + d0 + 24, a3);
    }
}

AVX2 static float max_avx2(const float *s, int64_t n) {
    __m256 m = _mm256_set1_ps(-INFINITY);
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) m = _mm256_max_ps(m, _mm256_loadu_ps(s + j));
    float lanes[8];
    _mm256_storeu_ps(lanes, m);
    float mx = -INFINITY;
    for (int i = 0; i < 8; i++) mx = lanes[i] > mx ? lanes[i] : mx;
    for (; j < n; j++) mx = s[j] > mx ? s[j] : mx;
    return mx;
}

AVX2 static void f16_to_f32_avx2(float *dst, const pc_f16 *src, int32_t n) {
    int32_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
    for (; i < n; i++) dst[i] = pc_f16_to_f32(src[i]);
}

AVX2 static void scale_round_avx2(float *s, int64_t n, float inv) {
    const __m256 vi = _mm256_set1_ps(inv);
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
        const __m128i h = _mm256_cvtps_ph(_mm256_mul_ps(_mm256_loadu_ps(s + j), vi), _MM_FROUND_TO_NEAREST_INT);
        _mm256_storeu_ps(s + j, _mm256_cvtph_ps(h));
    }
    for (; j < n; j++) s[j] = pc_f16_to_f32(pc_f32_to_f16(s[j] * inv));
}

AVX2 static __m256 exp_neg_avx2(__m256 x) {
    const __m256 dead = _mm256_cmp_ps(x, _mm256_set1_ps(-80.0f), _CMP_LT_OQ);
    x = _mm256_max_ps(x, _mm256_set1_ps(-80.0f));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fmadd_ps(n, _mm256_set1_ps(-0.693359375f), x);
    r = _mm256_fmadd_ps(n, _mm256_set1_ps(2.12194440e-4f), r);
    __m256 y = _mm256_set1_ps(1.9875691500e-4f);
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.3981999507e-3f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(8.3334519073e-3f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(4.1665795894e-2f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.6666665459e-1f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(5.0000001201e-1f));
    y = _mm256_fmadd_ps(y, _mm256_mul_ps(r, r), r);
    y = _mm256_add_ps(y, _mm256_set1_ps(1.0f));
    /* y * 2^n through the exponent bits (y in [0.5, 2), n >= -116 here: never subnormal) */
    const __m256i e = _mm256_slli_epi32(_mm256_cvtps_epi32(n), 23);
    y = _mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(y), e));
    return _mm256_andnot_ps(dead, y);
}

AVX2 static int64_t exp_sum_avx2(float *s, int64_t n, float mx) {
    const __m256 vmx = _mm256_set1_ps(mx), fix = _mm256_set1_ps(FIX_SCALE);
    __m256i sum = _mm256_setzero_si256();
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
        const __m256 e = exp_neg_avx2(_mm256_sub_ps(_mm256_loadu_ps(s + j), vmx));
        _mm256_storeu_ps(s + j, e);
        const __m256i q = _mm256_cvttps_epi32(_mm256_mul_ps(e, fix));
        sum = _mm256_add_epi64(sum, _mm256_cvtepi32_epi64(_mm256_castsi256_si128(q)));
        sum = _mm256_add_epi64(sum, _mm256_cvtepi32_epi64(_mm256_extracti128_si256(q, 1)));
    }
    int64_t lanes[4];
    _mm256_storeu_si256((__m256i *)lanes, sum);
    int64_t total = lanes[0] + lanes[1] + lanes[2] + lanes[3];
    for (; j < n; j++) {
        const float e = exp_neg_scalar(s[j] - mx);
        s[j] = e;
        total += (int64_t)(int32_t)(e * FIX_SCALE);
    }
    return total;
}
#endif

#if defined(__x86_64__)
#define AVX512 __attribute__((target("avx512f,avx2,fma,f16c")))

/* The same per-lane fmadd chains as the AVX2 kernel, 16 lanes at a time. */
AVX512 static void scores_avx512(float *out, const float *q, const float *kt, int32_t hd) {
    __m512 acc[RG];
    for (int32_t i = 0; i < RG; i++) acc[i] = _mm512_setzero_ps();
    for (int32_t d = 0; d < hd; d++) {
        const __m512 k = _mm512_load_ps(kt + d * KU);
        for (int32_t i = 0; i < RG; i++) acc[i] = _mm512_fmadd_ps(_mm512_set1_ps(q[i * hd + d]), k, acc[i]);
    }
    for (int32_t i = 0; i < RG; i++) _mm512_storeu_ps(out + i * KU, acc[i]);
}

AVX512 static void pv_avx512(float *acc, const float *p, const float *vb, int32_t nb, int32_t hd) {
    if (hd % 64 != 0) {
        pv_avx2(acc, p, vb, nb, hd);
        return;
    }
    for (int32_t d0 = 0; d0 < hd; d0 += 64) {
        __m512 a0 = _mm512_loadu_ps(acc + d0), a1 = _mm512_loadu_ps(acc + d0 + 16), a2 = _mm512_loadu_ps(acc + d0 + 32),
               a3 = _mm512_loadu_ps(acc + d0 + 48);
        for (int32_t l = 0; l < nb; l++) {
            if (p[l] == 0.0f) continue;
            const __m512 pl = _mm512_set1_ps(p[l]);
            const float *v = vb + l * hd + d0;
            a0 = _mm512_fmadd_ps(pl, _mm512_loadu_ps(v), a0);
            a1 = _mm512_fmadd_ps(pl, _mm512_loadu_ps(v + 16), a1);
            a2 = _mm512_fmadd_ps(pl, _mm512_loadu_ps(v + 32), a2);
            a3 = _mm512_fmadd_ps(pl, _mm512_loadu_ps(v + 48), a3);
        }
        _mm512_storeu_ps(acc + d0, a0);
        _mm512_storeu_ps(acc + d0 + 16, a1);
        _mm512_storeu_ps(acc + d0 + 32, a2);
        _mm512_storeu_ps(acc + d0 + 48, a3);
    }
}
#endif

typedef struct attn_kernels {
    void (*scores)(float *, const float *, const float *, int32_t);
    void (*k_unit)(float *, const pc_f16 *, const pc_f16 *, int32_t);
    void (*pv)(float *, const float *, const float *, int32_t, int32_t);
    int64_t (*exp_sum)(float *, int64_t, float);
    void (*to_f32)(float *, const pc_f16 *, int32_t);
    void (*scale_round)(float *, int64_t, float);
    float (*max)(const float *, int64_t);
} attn_kernels;

static attn_kernels pick(pc_isa isa) {
#if defined(__x86_64__)
    if (isa >= PC_ISA_AVX512)
        return (attn_kernels){scores_avx512, k_unit_avx2, pv_avx512, exp_sum_avx2, f16_to_f32_avx2, scale_round_avx2,
                              max_avx2};
    if (isa >= PC_ISA_AVX2)
        return (attn_kernels){scores_avx2, k_unit_avx2, pv_avx2, exp_sum_avx2, f16_to_f32_avx2, scale_round_avx2,
                              max_avx2};
#endif
    (void)isa;
    return (attn_kernels){scores_scalar, k_unit_scalar, pv_scalar, exp_sum_scalar, f16_to_f32_scalar, scale_round_scalar,
                          max_scalar};
}

/* ---- one task: a tile of queries against one KV head ---- */

typedef struct tile {
    int32_t q0, nq, kvh, G, hd, rows;
    int32_t g0, ng;           /* the task's query heads: kvh * G + [g0, g0 + ng) */
    int32_t max_pos, min_pos; /* of the tile's queries */
} tile;

static void load_queries(const pc_attn_args *a, const tile *t, attn_scratch *s) {
    memset(s->q, 0, (size_t)rows_padded(t->G) * t->hd * sizeof(float));
    for (int32_t i = 0; i < t->nq; i++)
        for (int32_t g = 0; g < t->ng; g++) {
            const float *src = a->q + (int64_t)(t->q0 + i) * a->q_stride + (int64_t)(t->kvh * t->G + t->g0 + g) * t->hd;
            float *dst = s->q + (int64_t)(i * t->ng + g) * t->hd;
            for (int32_t d = 0; d < t->hd; d++) dst[d] = pc_f16_to_f32(pc_f32_to_f16(src[d]));
        }
}

/* True when some key of rows [r0, r0+nb) is visible to the tile. */
static bool block_visible(const pc_kv_span *sp, int32_t r0, int32_t nb, int32_t max_pos) {
    for (int32_t k = 0; k < nb; k++)
        if (sp->pos[r0 + k] <= max_pos) return true;
    return false;
}

/* True when every key of the block is visible to every query of the tile. */
static bool block_all_visible(const pc_kv_span *sp, int32_t r0, int32_t nb, int32_t min_pos) {
    for (int32_t k = 0; k < nb; k++)
        if (sp->pos[r0 + k] > min_pos) return false;
    return true;
}

/* One row's scores for a block: scaled, ALiBi-biased, masked by position. */
static void store_scores(const pc_attn_args *a, const tile *t, const pc_kv_span *sp, int32_t r0, int32_t nb,
                         int32_t row, const float *blk, float *dst, bool all_visible) {
    if (all_visible && !a->alibi_slopes) {
        for (int32_t l = 0; l < nb; l++) dst[l] = blk[l] * a->scale;
        return;
    }
    const int32_t qp = a->q_pos[t->q0 + row / t->ng];
    for (int32_t l = 0; l < nb; l++) {
        const int32_t kp = sp->pos[r0 + l];
        float sc = blk[l] * a->scale;
        if (a->alibi_slopes) sc += a->alibi_slopes[t->kvh * t->G + t->g0 + row % t->ng] * (float)(kp - qp);
        dst[l] = kp <= qp ? sc : -INFINITY;
    }
}

/* The stored key blocks of a unit (already [hd][KB], see kv.h) to f32 [hd][KU];
 * lanes past nb hold keys the caller never stores scores for. */
static void load_k_unit(const pc_attn_args *a, const tile *t, const pc_kv_span *sp, int32_t r0, int32_t nb, float *kt,
                        const attn_kernels *k) {
    const int64_t head = (int64_t)t->kvh * t->hd * KB;
    const pc_f16 *b0 = pc_kv_k_block(sp, a->layer, r0 / KB) + head;
    const pc_f16 *b1 = nb > KB ? pc_kv_k_block(sp, a->layer, r0 / KB + 1) + head : NULL;
    k->k_unit(kt, b0, b1, t->hd);
}

/* The blocks of the context visible to a tile, in context order: both passes
 * walk exactly this sequence, so block j's scores line up with its values. */
typedef struct block_iter {
    int32_t si, r0, nb;
    const pc_kv_span *sp;
} block_iter;

static bool next_block(const pc_attn_args *a, const tile *t, block_iter *it) {
    for (;;) {
        if (it->sp) it->r0 += KU;
        if (!it->sp || it->r0 >= it->sp->n) {
            if (it->sp) it->si++;
            while (it->si < a->ctx->n && a->ctx->spans[it->si]->n == 0) it->si++;
            if (it->si >= a->ctx->n) return false;
            it->sp = a->ctx->spans[it->si];
            it->r0 = 0;
        }
        it->nb = it->sp->n - it->r0 < KU ? it->sp->n - it->r0 : KU;
        if (block_visible(it->sp, it->r0, it->nb, t->max_pos)) return true;
    }
}

/* Pass 1: scores of the visible blocks, in context order; returns the count. */
static int64_t score_keys(const pc_attn_args *a, const tile *t, attn_scratch *s, const attn_kernels *k) {
    float blk[RG * KU];
    int64_t j = 0;
    for (block_iter it = {0}; next_block(a, t, &it); j += it.nb) {
        load_k_unit(a, t, it.sp, it.r0, it.nb, s->kt, k);
        const bool all = block_all_visible(it.sp, it.r0, it.nb, t->min_pos);
        for (int32_t rg = 0; rg < t->rows; rg += RG) {
            k->scores(blk, s->q + (int64_t)rg * t->hd, s->kt, t->hd);
            for (int32_t i = 0; i < RG && rg + i < t->rows; i++)
                store_scores(a, t, it.sp, it.r0, it.nb, rg + i, blk + i * KU, s->scores + (int64_t)(rg + i) * s->n_ctx + j,
                             all);
        }
    }
    return j;
}

static void softmax_row(float *sc, int64_t n, const attn_kernels *k) {
    const float mx = k->max(sc, n);
    const int64_t sum = k->exp_sum(sc, n, mx);
    const float inv = sum > 0 ? (float)(1.0 / ((double)sum / (double)FIX_SCALE)) : 0.0f;
    k->scale_round(sc, n, inv);
}

/* Pass 2: acc[row] = sum_j p[row][j] * v_j over the same blocks as pass 1. */
static void weight_values(const pc_attn_args *a, const tile *t, attn_scratch *s, const attn_kernels *k) {
    memset(s->acc, 0, (size_t)t->rows * t->hd * sizeof(float));
    int64_t j = 0;
    for (block_iter it = {0}; next_block(a, t, &it); j += it.nb) {
        for (int32_t l = 0; l < it.nb; l++)
            k->to_f32(s->vb + l * t->hd, pc_kv_v(it.sp, a->layer, it.r0 + l) + (int64_t)t->kvh * t->hd, t->hd);
        for (int32_t row = 0; row < t->rows; row++)
            k->pv(s->acc + (int64_t)row * t->hd, s->scores + (int64_t)row * s->n_ctx + j, s->vb, it.nb, t->hd);
    }
}

/* A task is (query tile, KV head, share of the head's G query heads). Small
 * batches (decode) split the G heads over tasks so every thread has work;
 * larger ones keep a group together so each key block is converted once for
 * all G heads. A row's numbers are the same either way (see the top). */
typedef struct attn_job {
    const pc_attn_args *a;
    int32_t splits; /* shares per KV head: 1 or G */
} attn_job;

static void attn_task(void *ctx, int task, int n_tasks, int thread) {
    (void)n_tasks;
    const attn_job *job = ctx;
    const pc_attn_args *a = job->a;
    const int32_t G = a->n_head / a->n_head_kv, per = a->n_head_kv * job->splits;
    tile t = {.G = G, .hd = a->head_dim};
    t.kvh = (task % per) / job->splits;
    t.ng = G / job->splits;
    t.g0 = (task % per) % job->splits * t.ng;
    t.q0 = (task / per) * TILE_Q;
    t.nq = a->n_q - t.q0 < TILE_Q ? a->n_q - t.q0 : TILE_Q;
    t.rows = t.nq * t.ng;
    t.max_pos = t.min_pos = a->q_pos[t.q0];
    for (int32_t i = 1; i < t.nq; i++) {
        const int32_t p = a->q_pos[t.q0 + i];
        t.max_pos = p > t.max_pos ? p : t.max_pos;
        t.min_pos = p < t.min_pos ? p : t.min_pos;
    }
    attn_scratch s = carve((char *)a->scratch + (size_t)thread * a->scratch_per_thread, G, a->head_dim,
                           pc_kv_list_tokens(a->ctx));
    const attn_kernels k = pick(a->isa);
    load_queries(a, &t, &s);
    const int64_t n = score_keys(a, &t, &s, &k);
    for (int32_t row = 0; row < t.rows; row++) softmax_row(s.scores + (int64_t)row * s.n_ctx, n, &k);
    weight_values(a, &t, &s, &k);
    for (int32_t i = 0; i < t.nq; i++)
        for (int32_t g = 0; g < t.ng; g++)
            memcpy(a->out + (int64_t)(t.q0 + i) * a->out_stride + (int64_t)(t.kvh * G + t.g0 + g) * a->head_dim,
                   s.acc + (int64_t)(i * t.ng + g) * a->head_dim, (size_t)a->head_dim * sizeof(float));
}

void pc_attention(pc_pool *pool, const pc_attn_args *a) {
    const int32_t n_tiles = (a->n_q + TILE_Q - 1) / TILE_Q, G = a->n_head / a->n_head_kv;
    attn_job job = {.a = a, .splits = n_tiles * a->n_head_kv < 4 * pc_pool_size(pool) ? G : 1};
    pc_pool_run(pool, attn_task, &job, n_tiles * a->n_head_kv * job.splits);
}
