/* attention.c - attention by position over KV spans; see attention.h for the contract.
 *
 * Work is split into tasks of (a tile of up to TILE_Q queries, one KV head):
 * the tile's G = n_head / n_head_kv query heads share every key they read.
 * Keys are taken in units of KU = 4 stored blocks from one span; blocks are
 * stored transposed (kv.h), so a unit turns into f32 [hd][KU] as it lies and
 * the scores of one query row against it are KU lanes (two zmm, or four ymm),
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
 * Blocks no query of the tile can see are skipped; inside a visible block a
 * masked key (position > the query's) gets p = 0, which adds exactly nothing
 * (attn_kernels.h). So splitting the same (position, K, V) sequence into
 * other spans - which moves block boundaries - or the queries into other
 * tiles changes nothing, and the scalar, AVX2 and AVX-512 kernels give the
 * same bits (fmaf and vfmadd are both one rounding). The kernels live in
 * attn_<path>.c; this file only walks tiles and blocks. */
#include "kernels/cpu/attention.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "kernels/cpu/attn_kernels.h"

enum { TILE_Q = 16, KB = PC_ATTN_KB, KU = PC_ATTN_KU, RG = PC_ATTN_RG };
enum { BAL_MIN_KEYS = 768 }; /* a decode's context from which balanced mode pays (pc_attention) */

typedef struct attn_scratch {
    float *q;       /* [rows_pad][hd] f16-rounded queries; rows up to the next RG zero */
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

/* ---- one task: a tile of queries against one KV head ---- */

typedef struct tile {
    int32_t q0, nq, kvh, G, hd, rows;
    int32_t g0, ng;           /* the task's query heads: kvh * G + [g0, g0 + ng) */
    int32_t max_pos, min_pos; /* of the tile's queries */
} tile;

/* The tile's query rows, rounded to f16, and zero rows up to the next RG (the
 * scores kernel reads whole groups of RG rows). The rounding is scale_round's
 * with inv = 1, exact (x * 1 = x), so it is the same f16(x) on every path. */
static void load_queries(const pc_attn_args *a, const tile *t, attn_scratch *s, const pc_attn_kernels *k) {
    const int32_t used = (t->rows + RG - 1) / RG * RG;
    memset(s->q + (int64_t)t->rows * t->hd, 0, (size_t)(used - t->rows) * t->hd * sizeof(float));
    for (int32_t i = 0; i < t->nq; i++)
        for (int32_t g = 0; g < t->ng; g++)
            memcpy(s->q + (int64_t)(i * t->ng + g) * t->hd,
                   a->q + (int64_t)(t->q0 + i) * a->q_stride + (int64_t)(t->kvh * t->G + t->g0 + g) * t->hd,
                   (size_t)t->hd * sizeof(float));
    k->scale_round(s->q, (int64_t)t->rows * t->hd, 1.0f);
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

/* Masks (and ALiBi-biases) one row's scores of a block that some query of the
 * tile must not see whole: the kernel wrote them scaled, unmasked. */
static void mask_scores(const pc_attn_args *a, const tile *t, const pc_kv_span *sp, int32_t r0, int32_t nb, int32_t row,
                        float *dst) {
    const int32_t qp = a->q_pos[t->q0 + row / t->ng];
    for (int32_t l = 0; l < nb; l++) {
        const int32_t kp = sp->pos[r0 + l];
        float sc = dst[l];
        if (a->alibi_slopes) sc += a->alibi_slopes[t->kvh * t->G + t->g0 + row % t->ng] * (float)(kp - qp);
        dst[l] = kp <= qp ? sc : -INFINITY;
    }
}

/* Where the tile's KV head starts in span sp: the key block holding row r0,
 * and value row r. */
static inline const pc_f16 *head_keys(const pc_attn_args *a, const tile *t, const pc_kv_span *sp, int32_t r0) {
    return pc_kv_k_block(sp, a->layer, r0 / KB) + (int64_t)t->kvh * t->hd * KB;
}
static inline const pc_f16 *head_values(const pc_attn_args *a, const tile *t, const pc_kv_span *sp, int32_t r) {
    return pc_kv_v(sp, a->layer, r) + (int64_t)t->kvh * t->hd;
}

/* The stored key blocks of a unit (already [hd][KB], see kv.h) to f32 [hd][KU];
 * lanes past nb hold keys the caller never reads scores of. */
static void load_k_unit(const pc_attn_args *a, const tile *t, const pc_kv_span *sp, int32_t r0, int32_t nb, float *kt,
                        const pc_attn_kernels *k) {
    const pc_f16 *b0 = head_keys(a, t, sp, r0);
    k->k_unit(kt, b0, (int64_t)sp->dim * KB, (nb + KB - 1) / KB, t->hd);
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

/* RG rows of a unit's scores. The kernel writes all KU lanes; a short unit
 * (the end of a span) goes through a local block, so that no lane past it is
 * touched: in balanced mode another thread owns the next unit. */
static void unit_scores(const pc_attn_args *a, const tile *t, const float *q, const float *kt, int32_t nb, float *dst,
                        int64_t ps, const pc_attn_kernels *k) {
    if (nb == KU) {
        k->scores(dst, ps, q, kt, t->hd, a->scale);
        return;
    }
    float blk[RG * KU];
    k->scores(blk, KU, q, kt, t->hd, a->scale);
    for (int32_t i = 0; i < RG; i++) memcpy(dst + i * ps, blk + i * KU, (size_t)nb * sizeof(float));
}

/* unit_scores for a tile of at most RG rows, from the stored f16 keys (no
 * f32 copy of the unit): a tile that small reads each key once anyway. */
static void unit_scores_h(const pc_attn_args *a, const tile *t, const float *q, const pc_kv_span *sp, int32_t r0,
                          int32_t nb, float *dst, int64_t ps, const pc_attn_kernels *k) {
    const pc_f16 *b0 = head_keys(a, t, sp, r0);
    const int64_t bstride = (int64_t)sp->dim * KB;
    const int32_t nblk = (nb + KB - 1) / KB;
    if (nb == KU) {
        k->scores_h(dst, ps, q, b0, bstride, nblk, t->hd, a->scale, t->rows);
        return;
    }
    float blk[RG * KU];
    k->scores_h(blk, KU, q, b0, bstride, nblk, t->hd, a->scale, t->rows);
    for (int32_t i = 0; i < t->rows; i++) memcpy(dst + i * ps, blk + i * KU, (size_t)nb * sizeof(float));
}

/* The scores of the tile's rows against the unit it points at, masked, into
 * dst (row i at dst + i * ps). */
static void score_unit(const pc_attn_args *a, const tile *t, const float *q, float *kt, const block_iter *it, float *dst,
                       int64_t ps, const pc_attn_kernels *k) {
    if (t->rows <= RG) {
        unit_scores_h(a, t, q, it->sp, it->r0, it->nb, dst, ps, k);
    } else {
        load_k_unit(a, t, it->sp, it->r0, it->nb, kt, k);
        for (int32_t rg = 0; rg < t->rows; rg += RG)
            unit_scores(a, t, q + (int64_t)rg * t->hd, kt, it->nb, dst + (int64_t)rg * ps, ps, k);
    }
    if (a->alibi_slopes || !block_all_visible(it->sp, it->r0, it->nb, t->min_pos))
        for (int32_t row = 0; row < t->rows; row++) mask_scores(a, t, it->sp, it->r0, it->nb, row, dst + (int64_t)row * ps);
}

/* Pass 1: scores of the visible units with index in [u0, u1), in context order,
 * into rows ps apart (q: the tile's rows of f16-rounded queries); returns the
 * number of visible keys before unit u1. */
static int64_t score_keys(const pc_attn_args *a, const tile *t, const float *q, float *kt, float *scores, int64_t ps,
                          int64_t u0, int64_t u1, const pc_attn_kernels *k) {
    int64_t j = 0, u = 0;
    block_iter it = {0};
    for (; u < u1 && next_block(a, t, &it); u++, j += it.nb)
        if (u >= u0) score_unit(a, t, q, kt, &it, scores + j, ps, k);
    return j;
}

static void softmax_row(float *sc, int64_t n, const pc_attn_kernels *k) {
    const float mx = k->max(sc, n);
    const int64_t sum = k->exp_sum(sc, n, mx);
    const float inv = sum > 0 ? (float)(1.0 / ((double)sum / (double)PC_ATTN_FIX_SCALE)) : 0.0f;
    k->scale_round(sc, n, inv);
}

/* Pass 2: acc[row][0, dc) = sum_j p[row][j] * v_j[d0, d0 + dc) over the same
 * units as pass 1 (every output dimension is its own chain, so any split of
 * the dimensions gives the same bits). */
static void weight_values(const pc_attn_args *a, const tile *t, const float *p, int64_t ps, float *vb, float *acc,
                          int32_t d0, int32_t dc, const pc_attn_kernels *k) {
    memset(acc, 0, (size_t)t->rows * dc * sizeof(float));
    int64_t j = 0;
    block_iter it = {0};
    for (; next_block(a, t, &it); j += it.nb) {
        const pc_f16 *v = head_values(a, t, it.sp, it.r0) + d0;
        if (t->rows <= RG) { /* a few rows (decode): each value row is used once, convert it in registers */
            k->pv_h(acc, p + j, ps, v, it.sp->dim, it.nb, t->rows, dc);
            continue;
        }
        k->v_unit(vb, v, it.sp->dim, it.nb, dc);
        k->pv(acc, p + j, ps, vb, it.nb, t->rows, dc);
    }
}

/* acc rows (dims [d0, d0 + dc) of each query head of the tile) to the output. */
static void store_out(const pc_attn_args *a, const tile *t, const float *acc, int32_t d0, int32_t dc) {
    for (int32_t i = 0; i < t->nq; i++)
        for (int32_t g = 0; g < t->ng; g++)
            memcpy(a->out + (int64_t)(t->q0 + i) * a->out_stride + (int64_t)(t->kvh * t->G + t->g0 + g) * t->hd + d0,
                   acc + (int64_t)(i * t->ng + g) * dc, (size_t)dc * sizeof(float));
}

/* Tiled mode: a task is (query tile, KV head, share of the head's G query
 * heads) and runs all three steps. Small batches (decode) split the G heads
 * over tasks so every thread has work; larger ones keep a group together so
 * each key unit is converted once for all G heads. A row's numbers are the
 * same either way (see the top). */
typedef struct attn_job {
    const pc_attn_args *a;
    int32_t splits; /* shares per KV head, 1 or G */
} attn_job;

static void tile_positions(const pc_attn_args *a, tile *t) {
    t->max_pos = t->min_pos = a->q_pos[t->q0];
    for (int32_t i = 1; i < t->nq; i++) {
        const int32_t p = a->q_pos[t->q0 + i];
        t->max_pos = p > t->max_pos ? p : t->max_pos;
        t->min_pos = p < t->min_pos ? p : t->min_pos;
    }
}

static attn_scratch thread_scratch(const pc_attn_args *a, int thread) {
    return carve((char *)a->scratch + (size_t)thread * a->scratch_per_thread, a->n_head / a->n_head_kv, a->head_dim,
                 pc_kv_list_tokens(a->ctx));
}

/* Decode: a tile of a few rows reads its head's keys and values once, and a
 * decode's weights have pushed them out of the cache since the last token.
 * Asking for all of their lines first (into L2: locality 1) keeps the
 * core's misses in flight while the first units are scored, instead of one
 * unit's worth at a time. Measured (per-step timers, SmolLM2 Q4_1, 131-token
 * prompt + 128 tokens, 2 threads, 6 rounds alternating): attention 251 us a
 * token (237-274) against 332 (317-359); in cache (bench_attention 2 192 1)
 * it costs 0.167 against 0.150 ms. Prefetches change no number. */
static void prefetch_lines(const char *p, int64_t bytes) {
    for (int64_t c = 0; c < bytes; c += 64) __builtin_prefetch(p + c, 0, 1);
}

static void prefetch_kv(const pc_attn_args *a, const tile *t) {
    block_iter it = {0};
    while (next_block(a, t, &it)) {
        const char *k0 = (const char *)head_keys(a, t, it.sp, it.r0);
        const int64_t kbytes = (int64_t)t->hd * KB * (int64_t)sizeof(pc_f16),
                      bstride = (int64_t)it.sp->dim * KB * (int64_t)sizeof(pc_f16);
        for (int32_t b = 0; b < (it.nb + KB - 1) / KB; b++) prefetch_lines(k0 + b * bstride, kbytes);
        for (int32_t l = 0; l < it.nb; l++)
            prefetch_lines((const char *)head_values(a, t, it.sp, it.r0 + l), (int64_t)t->hd * (int64_t)sizeof(pc_f16));
    }
}

/* All three steps of one tile, in the thread's scratch. */
static void run_tile(const pc_attn_args *a, const tile *t, attn_scratch *s, const pc_attn_kernels *k) {
    if (t->rows <= RG) prefetch_kv(a, t);
    load_queries(a, t, s, k);
    const int64_t n = score_keys(a, t, s->q, s->kt, s->scores, s->n_ctx, 0, INT64_MAX, k);
    for (int32_t row = 0; row < t->rows; row++) softmax_row(s->scores + (int64_t)row * s->n_ctx, n, k);
    weight_values(a, t, s->scores, s->n_ctx, s->vb, s->acc, 0, t->hd, k);
    store_out(a, t, s->acc, 0, t->hd);
}

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
    tile_positions(a, &t);
    attn_scratch s = thread_scratch(a, thread);
    const pc_attn_kernels k = pc_attn_kernels_get(a->isa);
    run_tile(a, &t, &s, &k);
}

static tile whole_tile(const pc_attn_args *a, int32_t kvh) {
    tile t = {.G = a->n_head / a->n_head_kv, .hd = a->head_dim, .kvh = kvh, .q0 = 0, .nq = a->n_q, .g0 = 0};
    t.ng = t.G;
    t.rows = t.nq * t.ng;
    tile_positions(a, &t);
    return t;
}

static float *shared_rows(const pc_attn_args *a, int32_t kvh, int64_t *ps) {
    *ps = pc_kv_list_tokens(a->ctx) + KU;
    return (float *)a->shared + (int64_t)kvh * rows_padded(a->n_head / a->n_head_kv) * *ps;
}

/* Balanced mode, for one tile whose KV heads do not fall evenly on the
 * threads (SmolLM2's 3 on 2) over a long context: two pool jobs of one task
 * per thread. Of the n_head_kv heads, the first n_head_kv - r (r = n_head_kv
 * mod threads) run whole, one task each as in tiled mode; the last r are
 * shared by all tasks. In the first job task c scores key chunk c of the
 * shared heads (a contiguous range of units) into the shared rows, then runs
 * its whole heads; in the second it runs softmax and P.V for share c of the
 * shared heads' output columns. So each thread reads about 1/T of the keys
 * and values, where one task per KV head gave one thread two heads' bytes
 * and the other one, and only the shared heads' scores pass between threads
 * (through the pool's job boundary). Every number is computed by the same
 * kernel calls as in tiled mode - scores by units, softmax of whole rows
 * (each task that needs a row computes it), P.V by output dimensions (each
 * its own chain) - so the bits are tiled mode's. */
typedef struct bal_job {
    const pc_attn_args *a;
    int32_t parts;   /* tasks = key chunks = column shares */
    int32_t shared;  /* the last KV heads, which every task shares */
    int32_t gran;    /* output columns per share step: 32, or a whole head */
    int64_t n_units; /* visible units */
    int64_t n_keys;  /* visible keys */
} bal_job;

static int32_t bal_first_shared(const bal_job *job) { return job->a->n_head_kv - job->shared; }

static void bal_unit_range(const bal_job *job, int32_t c, int64_t *u0, int64_t *u1) {
    *u0 = job->n_units * c / job->parts;
    *u1 = job->n_units * (c + 1) / job->parts;
}

/* Share c of the shared heads' output columns, counted over those heads side by side. */
static void bal_col_range(const bal_job *job, int32_t c, int32_t *c0, int32_t *c1) {
    const int32_t steps = job->shared * job->a->head_dim / job->gran;
    *c0 = steps * c / job->parts * job->gran;
    *c1 = steps * (c + 1) / job->parts * job->gran;
}

/* What task c reads of the shared heads, asked for first (as prefetch_kv
 * does for a tile): the keys of its chunk and its columns of every visible
 * value row. */
static void bal_prefetch(const bal_job *job, int32_t c) {
    const pc_attn_args *a = job->a;
    const tile t = whole_tile(a, 0);
    const int64_t kbytes = (int64_t)a->head_dim * KB * (int64_t)sizeof(pc_f16);
    int64_t u0, u1;
    int32_t c0, c1;
    bal_unit_range(job, c, &u0, &u1);
    bal_col_range(job, c, &c0, &c1);
    const int32_t v0 = bal_first_shared(job) * a->head_dim + c0;
    block_iter it = {0};
    for (int64_t u = 0; next_block(a, &t, &it); u++) {
        if (u >= u0 && u < u1)
            for (int32_t b = 0; b < (it.nb + KB - 1) / KB; b++)
                for (int32_t kvh = bal_first_shared(job); kvh < a->n_head_kv; kvh++)
                    prefetch_lines((const char *)(pc_kv_k_block(it.sp, a->layer, it.r0 / KB + b) +
                                                  (int64_t)kvh * a->head_dim * KB),
                                   kbytes);
        for (int32_t l = 0; l < it.nb && c1 > c0; l++)
            prefetch_lines((const char *)(pc_kv_v(it.sp, a->layer, it.r0 + l) + v0),
                           (int64_t)(c1 - c0) * (int64_t)sizeof(pc_f16));
    }
}

/* First job: key chunk c of every shared head into the shared rows, then the task's whole heads. */
static void bal_score_task(void *ctx, int task, int n_tasks, int thread) {
    (void)n_tasks;
    const bal_job *job = ctx;
    const pc_attn_args *a = job->a;
    const pc_attn_kernels k = pc_attn_kernels_get(a->isa);
    attn_scratch s = thread_scratch(a, thread);
    int64_t u0, u1, ps;
    bal_unit_range(job, task, &u0, &u1);
    bal_prefetch(job, task);
    for (int32_t kvh = bal_first_shared(job); kvh < a->n_head_kv && u0 < u1; kvh++) {
        const tile t = whole_tile(a, kvh);
        float *rows = shared_rows(a, kvh, &ps);
        load_queries(a, &t, &s, &k);
        score_keys(a, &t, s.q, s.kt, rows, ps, u0, u1, &k);
    }
    for (int32_t kvh = task; kvh < bal_first_shared(job); kvh += job->parts) {
        const tile t = whole_tile(a, kvh);
        run_tile(a, &t, &s, &k);
    }
}

/* Softmax and P.V of one shared KV head's columns [d0, d0 + dc), from the
 * shared scores copied into the task's own scratch (another task may need
 * the same rows). */
static void bal_values(const bal_job *job, int32_t kvh, int32_t d0, int32_t dc, attn_scratch *s,
                       const pc_attn_kernels *k) {
    const pc_attn_args *a = job->a;
    const tile t = whole_tile(a, kvh);
    int64_t ps;
    const float *rows = shared_rows(a, kvh, &ps);
    for (int32_t row = 0; row < t.rows; row++) {
        float *p = s->scores + (int64_t)row * s->n_ctx;
        memcpy(p, rows + (int64_t)row * ps, (size_t)job->n_keys * sizeof(float));
        softmax_row(p, job->n_keys, k);
    }
    weight_values(a, &t, s->scores, s->n_ctx, s->vb, s->acc, d0, dc, k);
    store_out(a, &t, s->acc, d0, dc);
}

/* Second job: column share c of the shared heads, head by head. */
static void bal_values_task(void *ctx, int task, int n_tasks, int thread) {
    (void)n_tasks;
    const bal_job *job = ctx;
    const int32_t hd = job->a->head_dim;
    const pc_attn_kernels k = pc_attn_kernels_get(job->a->isa);
    attn_scratch s = thread_scratch(job->a, thread);
    int32_t c0, c1;
    bal_col_range(job, task, &c0, &c1);
    for (int32_t col = c0; col < c1;) {
        const int32_t kvh = bal_first_shared(job) + col / hd, d0 = col % hd;
        const int32_t dc = c1 - col < hd - d0 ? c1 - col : hd - d0;
        bal_values(job, kvh, d0, dc, &s, &k);
        col += dc;
    }
}

static void attention_balanced(pc_pool *pool, const pc_attn_args *a) {
    const int32_t threads = pc_pool_size(pool);
    bal_job job = {.a = a, .parts = threads, .shared = a->n_head_kv % threads,
                   .gran = a->head_dim % 32 ? a->head_dim : 32};
    const tile t = whole_tile(a, 0); /* which units are visible depends on positions only */
    block_iter it = {0};
    for (; next_block(a, &t, &it); job.n_units++) job.n_keys += it.nb;
    pc_pool_run(pool, bal_score_task, &job, job.parts);
    pc_pool_run(pool, bal_values_task, &job, job.parts);
}

size_t pc_attn_shared_size(int32_t n_head, int32_t n_head_kv, int64_t n_ctx) {
    return (size_t)n_head_kv * (size_t)rows_padded(n_head / n_head_kv) * (size_t)(n_ctx + KU) * sizeof(float);
}

/* The fewest shares per KV head (a divisor of G) that give every thread the
 * same number of tasks; 0 when none does. */
static int32_t even_splits(int32_t n_head_kv, int32_t G, int threads) {
    for (int32_t s = 1; s <= G; s++)
        if (G % s == 0 && n_head_kv * s % threads == 0) return s;
    return 0;
}

void pc_attention(pc_pool *pool, const pc_attn_args *a) {
    const int32_t n_tiles = (a->n_q + TILE_Q - 1) / TILE_Q, G = a->n_head / a->n_head_kv;
    const int threads = pc_pool_size(pool);
    if (a->shared && n_tiles == 1 && a->n_head_kv < 2 * threads) {
        /* One tile (decode): when the KV heads' shares fall evenly on the
         * threads, tiled mode reads each key and value once per share. When
         * they do not (three KV heads on two threads), balanced mode from
         * BAL_MIN_KEYS keys, and below it one task per KV head: at short
         * contexts the third head's lines come mostly with the first two
         * heads' (a decode's per-task timers, 193 keys: 3 us for it against
         * 6-7 us for each of the first two), so balancing saved nothing there
         * (SmolLM2, ~120-250 keys, per-step timers, 20 rounds alternating:
         * attention 377.5 against 374 us a token, medians). From 768 keys it
         * replaces split mode (three pool jobs: keys, rows, output
         * dimensions). Measured (bench_attention 2 N 1, SmolLM2's shape, 2
         * threads, 3 rounds alternating with main): 1031 keys in cache
         * 0.94-1.05 vs 1.88-2.39 ms, 2048 keys 3.4-4.4 vs 4.5-6.6 ms; with 3.3
         * MB read before each layer (median) 1031 keys 1.95-2.61 vs 2.48-3.40
         * ms, 2048 keys 4.08-4.94 vs 5.27-5.41 ms. In the engine (SmolLM2, a
         * 900-token prompt + 128 tokens, 2 threads, 6 rounds alternating) a
         * decode layer's attention took 58-89 us against 92-135 us. */
        int32_t splits = even_splits(a->n_head_kv, G, threads);
        if (!splits && pc_kv_list_tokens(a->ctx) >= BAL_MIN_KEYS) {
            attention_balanced(pool, a);
            return;
        }
        attn_job job = {.a = a, .splits = splits ? splits : 1};
        pc_pool_run(pool, attn_task, &job, a->n_head_kv * job.splits);
        return;
    }
    attn_job job = {.a = a, .splits = n_tiles * a->n_head_kv < 4 * threads ? G : 1};
    pc_pool_run(pool, attn_task, &job, n_tiles * a->n_head_kv * job.splits);
}

/* Several sequences (a batch of decodes and prefill chunks) in one pool job:
 * alone, each would pay a dispatch per layer, and a batch of 8 decodes
 * spent more time dispatching than attending. Every sequence runs tiled,
 * which gives the bits of balanced mode (see above), with one choice of
 * shares for the whole batch. */
typedef struct attn_multi {
    attn_job job[PC_ATTN_BATCH_MAX];
    int32_t end[PC_ATTN_BATCH_MAX]; /* tasks of sequences [0, i] */
    int32_t n;
} attn_multi;

static void multi_task(void *ctx, int task, int n_tasks, int thread) {
    const attn_multi *m = ctx;
    int32_t i = 0;
    while (task >= m->end[i]) i++;
    attn_task((void *)&m->job[i], task - (i ? m->end[i - 1] : 0), n_tasks, thread);
}

static void seq_task(void *ctx, int task, int n_tasks, int thread) {
    const attn_multi *m = ctx;
    for (int32_t h = 0; h < m->job[task].a->n_head_kv; h++) attn_task((void *)&m->job[task], h, n_tasks, thread);
}

/* A batch of decodes only (tiles of at most RG rows), at least two per
 * thread: one task per sequence, its KV heads one after the other, so that a
 * thread streams one sequence's keys and values alone instead of every third
 * kilobyte of them beside another thread (measured: 15% less time for 8
 * decodes on 2 threads, bench_attention 2 100 1 200 8). Each head is the same
 * attn_task call as in the per-head split: the same bits. */
static bool whole_seqs(pc_pool *pool, const pc_attn_args *a, int32_t n) {
    if (n < 2 * pc_pool_size(pool)) return false;
    for (int32_t i = 0; i < n; i++)
        if (a[i].n_q * (a[i].n_head / a[i].n_head_kv) > RG) return false;
    attn_multi m = {.n = n};
    for (int32_t i = 0; i < n; i++) m.job[i] = (attn_job){.a = &a[i], .splits = 1};
    pc_pool_run(pool, seq_task, &m, n);
    return true;
}

void pc_attention_batch(pc_pool *pool, const pc_attn_args *a, int32_t n) {
    if (n == 1) {
        pc_attention(pool, a);
        return;
    }
    if (whole_seqs(pool, a, n)) return;
    attn_multi m = {.n = n};
    int32_t groups = 0; /* tasks with every KV head's G query heads together */
    for (int32_t i = 0; i < n; i++) groups += (a[i].n_q + TILE_Q - 1) / TILE_Q * a[i].n_head_kv;
    const bool spread = groups < 4 * pc_pool_size(pool);
    for (int32_t i = 0, total = 0; i < n; i++) {
        m.job[i] = (attn_job){.a = &a[i], .splits = spread ? a[i].n_head / a[i].n_head_kv : 1};
        total += (a[i].n_q + TILE_Q - 1) / TILE_Q * a[i].n_head_kv * m.job[i].splits;
        m.end[i] = total;
    }
    pc_pool_run(pool, multi_task, &m, m.end[n - 1]);
}
