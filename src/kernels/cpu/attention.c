/* attention.c - attention by position over KV spans; see attention.h for the contract.
 *
 * Work is split into tasks of (a tile of up to TILE_Q queries, one KV head):
 * the tile's G = n_head / n_head_kv query heads share the keys they read, so
 * each key row is converted from F16 once per tile, not once per query. */
#include "kernels/cpu/attention.h"

#include <math.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

enum { TILE_Q = 8 };

typedef struct attn_scratch {
    float *q;       /* [TILE_Q*G][head_dim] f16-rounded queries */
    float *acc;     /* [TILE_Q*G][head_dim] */
    float *kf;      /* [head_dim] current key/value in f32 */
    float *scores;  /* [TILE_Q*G][n_ctx] */
    int64_t n_ctx;
} attn_scratch;

static size_t align64(size_t n) { return (n + 63) & ~(size_t)63; }

size_t pc_attn_scratch_size(int32_t n_head, int32_t n_head_kv, int32_t head_dim, int64_t n_ctx) {
    size_t rows = (size_t)TILE_Q * (size_t)(n_head / n_head_kv);
    return 2 * align64(rows * (size_t)head_dim * sizeof(float)) + align64((size_t)head_dim * sizeof(float)) +
           align64(rows * (size_t)n_ctx * sizeof(float));
}

static attn_scratch carve(void *base, int32_t rows, int32_t head_dim, int64_t n_ctx) {
    char *p = base;
    attn_scratch s;
    s.q = (float *)p;
    p += align64((size_t)rows * head_dim * sizeof(float));
    s.acc = (float *)p;
    p += align64((size_t)rows * head_dim * sizeof(float));
    s.kf = (float *)p;
    p += align64((size_t)head_dim * sizeof(float));
    s.scores = (float *)p;
    s.n_ctx = n_ctx;
    return s;
}

/* ---- inner products: scalar and AVX2/F16C, each deterministic ---- */

static void f16_row_to_f32_scalar(float *dst, const pc_f16 *src, int32_t n) {
    for (int32_t i = 0; i < n; i++) dst[i] = pc_f16_to_f32(src[i]);
}

static float dot_scalar(const float *a, const float *b, int32_t n) {
    float s = 0.0f;
    for (int32_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

static void axpy_scalar(float *y, float a, const float *x, int32_t n) {
    for (int32_t i = 0; i < n; i++) y[i] += a * x[i];
}

#if defined(__x86_64__)
__attribute__((target("avx2,fma,f16c"))) static void f16_row_to_f32_avx2(float *dst, const pc_f16 *src, int32_t n) {
    int32_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
    for (; i < n; i++) dst[i] = pc_f16_to_f32(src[i]);
}

__attribute__((target("avx2,fma,f16c"))) static float dot_avx2(const float *a, const float *b, int32_t n) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int32_t i = 0;
    for (; i + 16 <= n; i += 16) {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
    }
    for (; i + 8 <= n; i += 8) acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    __m256 acc = _mm256_add_ps(acc0, acc1);
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    float s = _mm_cvtss_f32(h);
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

__attribute__((target("avx2,fma,f16c"))) static void axpy_avx2(float *y, float a, const float *x, int32_t n) {
    const __m256 va = _mm256_set1_ps(a);
    int32_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] += a * x[i];
}
#endif

typedef struct attn_kernels {
    void (*to_f32)(float *, const pc_f16 *, int32_t);
    float (*dot)(const float *, const float *, int32_t);
    void (*axpy)(float *, float, const float *, int32_t);
} attn_kernels;

static attn_kernels pick(pc_isa isa) {
#if defined(__x86_64__)
    if (isa >= PC_ISA_AVX2) return (attn_kernels){f16_row_to_f32_avx2, dot_avx2, axpy_avx2};
#endif
    (void)isa;
    return (attn_kernels){f16_row_to_f32_scalar, dot_scalar, axpy_scalar};
}

/* ---- one task: a tile of queries against one KV head ---- */

typedef struct tile {
    int32_t q0, nq, kvh, G, hd;
    int32_t max_pos;
} tile;

static void load_queries(const pc_attn_args *a, const tile *t, attn_scratch *s) {
    for (int32_t i = 0; i < t->nq; i++)
        for (int32_t g = 0; g < t->G; g++) {
            const float *src = a->q + (int64_t)(t->q0 + i) * a->q_stride + (int64_t)(t->kvh * t->G + g) * t->hd;
            float *dst = s->q + (int64_t)(i * t->G + g) * t->hd;
            for (int32_t d = 0; d < t->hd; d++) dst[d] = pc_f16_to_f32(pc_f32_to_f16(src[d]));
        }
}

/* Pass 1: raw scores of every visible key, in context order; returns key count. */
static int64_t score_keys(const pc_attn_args *a, const tile *t, attn_scratch *s, const attn_kernels *k) {
    const int32_t rows = t->nq * t->G;
    int64_t j = 0;
    for (int32_t si = 0; si < a->ctx->n; si++) {
        const pc_kv_span *sp = a->ctx->spans[si];
        for (int32_t r = 0; r < sp->n; r++) {
            const int32_t kp = sp->pos[r];
            if (kp > t->max_pos) continue;
            k->to_f32(s->kf, pc_kv_k(sp, a->layer, r) + (int64_t)t->kvh * t->hd, t->hd);
            for (int32_t i = 0; i < t->nq; i++) {
                const int32_t qp = a->q_pos[t->q0 + i];
                for (int32_t g = 0; g < t->G; g++) {
                    const int32_t row = i * t->G + g;
                    float sc = -INFINITY;
                    if (kp <= qp) {
                        sc = k->dot(s->q + (int64_t)row * t->hd, s->kf, t->hd) * a->scale;
                        if (a->alibi_slopes) sc += a->alibi_slopes[t->kvh * t->G + g] * (float)(kp - qp);
                    }
                    s->scores[(int64_t)row * s->n_ctx + j] = sc;
                }
            }
            j++;
        }
    }
    (void)rows;
    return j;
}

/* Softmax of one row in place, then rounding of the probabilities to F16. */
static void softmax_row(float *sc, int64_t n) {
    float mx = -INFINITY;
    for (int64_t j = 0; j < n; j++) mx = sc[j] > mx ? sc[j] : mx;
    double sum = 0.0;
    for (int64_t j = 0; j < n; j++) {
        const float e = sc[j] == -INFINITY ? 0.0f : expf(sc[j] - mx);
        sc[j] = e;
        sum += (double)e;
    }
    const float inv = sum > 0 ? (float)(1.0 / sum) : 0.0f;
    for (int64_t j = 0; j < n; j++) sc[j] = pc_f16_to_f32(pc_f32_to_f16(sc[j] * inv));
}

/* Pass 3: acc[row] = sum_j p[row][j] * v_j, keys in the same order as pass 1. */
static void weight_values(const pc_attn_args *a, const tile *t, attn_scratch *s, const attn_kernels *k) {
    const int32_t rows = t->nq * t->G;
    memset(s->acc, 0, (size_t)rows * t->hd * sizeof(float));
    int64_t j = 0;
    for (int32_t si = 0; si < a->ctx->n; si++) {
        const pc_kv_span *sp = a->ctx->spans[si];
        for (int32_t r = 0; r < sp->n; r++) {
            if (sp->pos[r] > t->max_pos) continue;
            k->to_f32(s->kf, pc_kv_v(sp, a->layer, r) + (int64_t)t->kvh * t->hd, t->hd);
            for (int32_t row = 0; row < rows; row++) {
                const float p = s->scores[(int64_t)row * s->n_ctx + j];
                if (p != 0.0f) k->axpy(s->acc + (int64_t)row * t->hd, p, s->kf, t->hd);
            }
            j++;
        }
    }
}

static void attn_task(void *ctx, int task, int n_tasks, int thread) {
    (void)n_tasks;
    const pc_attn_args *a = ctx;
    const int32_t G = a->n_head / a->n_head_kv;
    tile t = {.kvh = task % a->n_head_kv, .G = G, .hd = a->head_dim};
    t.q0 = (task / a->n_head_kv) * TILE_Q;
    t.nq = a->n_q - t.q0 < TILE_Q ? a->n_q - t.q0 : TILE_Q;
    t.max_pos = a->q_pos[t.q0];
    for (int32_t i = 1; i < t.nq; i++) t.max_pos = a->q_pos[t.q0 + i] > t.max_pos ? a->q_pos[t.q0 + i] : t.max_pos;
    attn_scratch s = carve((char *)a->scratch + (size_t)thread * a->scratch_per_thread, TILE_Q * G, a->head_dim,
                           pc_kv_list_tokens(a->ctx));
    const attn_kernels k = pick(a->isa);
    load_queries(a, &t, &s);
    const int64_t n = score_keys(a, &t, &s, &k);
    for (int32_t row = 0; row < t.nq * G; row++) softmax_row(s.scores + (int64_t)row * s.n_ctx, n);
    weight_values(a, &t, &s, &k);
    for (int32_t i = 0; i < t.nq; i++)
        for (int32_t g = 0; g < G; g++)
            memcpy(a->out + (int64_t)(t.q0 + i) * a->out_stride + (int64_t)(t.kvh * G + g) * a->head_dim,
                   s.acc + (int64_t)(i * G + g) * a->head_dim, (size_t)a->head_dim * sizeof(float));
}

void pc_attention(pc_pool *pool, const pc_attn_args *a) {
    const int32_t n_tiles = (a->n_q + TILE_Q - 1) / TILE_Q;
    pc_pool_run(pool, attn_task, (void *)a, n_tiles * a->n_head_kv);
}
