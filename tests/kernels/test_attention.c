/* test_attention.c - attention by position over KV spans, against a double-precision
 * reference, and the properties Prompt Cache's exactness rests on:
 *   - the scalar, AVX2 and AVX-512 paths give bitwise the same output;
 *   - splitting the same (position, K, V) sequence into other spans, or
 *     computing the queries in other batches, changes no bit;
 *   - a query sees exactly the keys at positions <= its own (keys placed after
 *     it, even in an earlier span, are ignored);
 *   - small batches that run in balanced mode (the keys and output columns
 *     of the KV heads left over by an even share spread over the threads,
 *     through the shared scratch) or as one job of even shares of the heads
 *     equal the tiled mode.
 * Four shapes: 6 query heads over 2 KV heads (the KV heads fall evenly on 2
 * threads), SmolLM2-135M's 9 over 3, and the Qwen2.5 models' 14 over 2
 * (0.5B, head dim 64) and 12 over 2 (1.5B, head dim 128), the last three at
 * several context lengths, odd ones included, on both sides of the length
 * from which one-token batches go to balanced mode (SmolLM2 on 2 and 4
 * threads, the 0.5B on 3 and 4). A Qwen decode row has 6-7 query rows per KV
 * head on 2 threads and 3 (1.5B, an even share of its heads on 3 or 4
 * threads) or balanced mode (0.5B) on 3 and 4: paths that no batch of the
 * first two shapes reaches. On 3 threads the 0.5B shares both of its KV heads
 * (no whole head per task). Pools of 3 and 4 threads on a 2-core machine also
 * make one thread run several tasks of a balanced job, which then takes the
 * other tasks' key chunks and column shares itself. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "kernels/cpu/attention.h"

enum { MAX_NQ = 32 };

/* One case: query heads, KV heads, head dimension, keys in the context,
 * queries (the last nq keys are the queries' own). */
typedef struct shape {
    int nh, nkv, hd, n, nq;
} shape;

/* One case's data: K and V [n][nkv * hd], Q [nq][nh * hd], key and query positions. */
typedef struct data {
    shape sh;
    float *K, *V, *Q;
    int32_t *pos, *qpos;
} data;

static float frand(uint64_t *s) {
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((*s >> 40) & 0xffffff) / (float)0x1000000 * 2.0f - 1.0f;
}

/* Fills tokens [0, n) of a span with keys/values of global index base + i. */
static pc_kv_span *make_span(const data *t, int base, int n) {
    const int dim = t->sh.nkv * t->sh.hd;
    pc_kv_span *s = pc_kv_span_create(1, dim, n);
    pc_kv_span_reserve(s, n, NULL);
    for (int i = 0; i < n; i++) {
        s->pos[i] = t->pos[base + i];
        for (int d = 0; d < dim; d++) {
            *pc_kv_k_at(s, 0, i, d) = pc_f32_to_f16(t->K[(size_t)(base + i) * dim + d]);
            pc_kv_v(s, 0, i)[d] = pc_f32_to_f16(t->V[(size_t)(base + i) * dim + d]);
        }
    }
    s->n = n;
    return s;
}

/* Attention's working memory for a pool: per-thread scratch (per bytes each) and the shared part. */
typedef struct scratch_mem {
    void *scratch, *shared;
    size_t per;
} scratch_mem;

static bool scratch_alloc(pc_pool *pool, const shape *sh, scratch_mem *m) {
    m->per = (pc_attn_scratch_size(sh->nh, sh->nkv, sh->hd, sh->n) + 63) & ~(size_t)63;
    m->scratch = m->shared = NULL;
    if (posix_memalign(&m->scratch, 64, m->per * (size_t)pc_pool_size(pool)) == 0 &&
        posix_memalign(&m->shared, 64, pc_attn_shared_size(sh->nh, sh->nkv, sh->n)) == 0)
        return true;
    CHECK_MSG(false, "out of memory");
    free(m->scratch);
    return false;
}

static void scratch_free(scratch_mem *m) {
    free(m->scratch);
    free(m->shared);
}

static pc_attn_args args(const shape *sh, pc_isa isa, const pc_kv_list *ctx, const float *q, const int32_t *qpos, int nq,
                         float *out, const scratch_mem *m, bool split) {
    return (pc_attn_args){.q = q, .q_stride = sh->nh * sh->hd, .q_pos = qpos, .n_q = nq, .n_head = sh->nh,
                          .n_head_kv = sh->nkv, .head_dim = sh->hd, .ctx = ctx, .layer = 0, .scale = 0.125f, .out = out,
                          .out_stride = sh->nh * sh->hd, .scratch = m->scratch, .scratch_per_thread = m->per,
                          .shared = split ? m->shared : NULL, .isa = isa};
}

/* split: hand attention the shared scratch, so batches of one tile on a pool
 * of 2+ threads run in balanced mode or as one job of even head shares (by
 * the pool's size, the shape and the context's length); without it they
 * always run tiled. */
static void run_mode(pc_pool *pool, const shape *sh, pc_isa isa, const pc_kv_list *ctx, const float *q,
                     const int32_t *qpos, int nq, float *out, bool split) {
    scratch_mem m;
    if (!scratch_alloc(pool, sh, &m)) return;
    const pc_attn_args a = args(sh, isa, ctx, q, qpos, nq, out, &m, split);
    pc_attention(pool, &a);
    scratch_free(&m);
}

/* Sequences in one job (pc_attention_batch, as a batch of decodes runs): the
 * queries cut into one-row sequences and chunks, each over the whole context
 * with its own positions; every row must be what it is alone (ref). */
static void run_batch(pc_pool *pool, const data *t, pc_isa isa, const pc_kv_list *ctx, float *out, const int *cuts,
                      int n_seqs) {
    scratch_mem m;
    if (!scratch_alloc(pool, &t->sh, &m)) return;
    pc_attn_args as[MAX_NQ];
    for (int i = 0; i < n_seqs; i++) {
        const size_t off = (size_t)cuts[i] * t->sh.nh * t->sh.hd;
        as[i] = args(&t->sh, isa, ctx, t->Q + off, t->qpos + cuts[i], cuts[i + 1] - cuts[i], out + off, &m, true);
    }
    pc_attention_batch(pool, as, n_seqs);
    scratch_free(&m);
}

/* The largest difference of out from attention in double precision over the
 * same f16-rounded q, k and v. */
static double max_error(const data *t, const float *out) {
    const shape *sh = &t->sh;
    const int HD = sh->hd, dim = sh->nkv * HD;
    double *sc = malloc(sizeof(double) * (size_t)sh->n), maxerr = 0;
    for (int qi = 0; qi < sh->nq; qi++)
        for (int h = 0; h < sh->nh; h++) {
            const int kh = h / (sh->nh / sh->nkv);
            const float *q = t->Q + ((size_t)qi * sh->nh + h) * HD;
            double mx = -1e300, sum = 0;
            for (int j = 0; j < sh->n; j++) {
                sc[j] = -INFINITY;
                if (t->pos[j] > t->qpos[qi]) continue;
                double s = 0;
                for (int d = 0; d < HD; d++)
                    s += (double)pc_f16_to_f32(pc_f32_to_f16(q[d])) *
                         pc_f16_to_f32(pc_f32_to_f16(t->K[(size_t)j * dim + kh * HD + d]));
                sc[j] = s * 0.125;
                mx = fmax(mx, sc[j]);
            }
            for (int j = 0; j < sh->n; j++) sum += isinf(sc[j]) ? 0 : exp(sc[j] - mx);
            for (int d = 0; d < HD; d++) {
                double acc = 0;
                for (int j = 0; j < sh->n; j++)
                    if (!isinf(sc[j]))
                        acc += exp(sc[j] - mx) / sum * pc_f16_to_f32(pc_f32_to_f16(t->V[(size_t)j * dim + kh * HD + d]));
                maxerr = fmax(maxerr, fabs(acc - out[((size_t)qi * sh->nh + h) * HD + d]));
            }
        }
    free(sc);
    return maxerr;
}

/* Positions with a gap (like an unselected union); the last nq keys are the
 * queries' own, except that the first query sees only the first 17 keys. */
static bool make_data(data *t, const shape *sh, uint64_t seed) {
    const size_t kv = (size_t)sh->n * sh->nkv * sh->hd, nqe = (size_t)sh->nq * sh->nh * sh->hd;
    *t = (data){.sh = *sh, .K = malloc(sizeof(float) * kv), .V = malloc(sizeof(float) * kv),
                .Q = malloc(sizeof(float) * nqe), .pos = malloc(sizeof(int32_t) * (size_t)sh->n),
                .qpos = malloc(sizeof(int32_t) * (size_t)sh->nq)};
    if (!t->K || !t->V || !t->Q || !t->pos || !t->qpos) return false;
    uint64_t rng = seed;
    for (size_t i = 0; i < kv; i++) t->K[i] = frand(&rng) * 2, t->V[i] = frand(&rng);
    for (size_t i = 0; i < nqe; i++) t->Q[i] = frand(&rng) * 2;
    for (int i = 0; i < sh->n; i++) t->pos[i] = 3 * i + (i > 40 ? 500 : 0);
    for (int i = 0; i < sh->nq; i++) t->qpos[i] = t->pos[sh->n - sh->nq + i];
    t->qpos[0] = 50;
    return true;
}

static void free_data(data *t) {
    free(t->K); free(t->V); free(t->Q); free(t->pos); free(t->qpos);
}

/* Every check of the top on one shape (n > 30, nq <= MAX_NQ). */
static void test_shape(const shape *sh, pc_pool *pool, pc_pool *pool3, pc_pool *pool4) {
    data t;
    if (!make_data(&t, sh, 7 + (uint64_t)sh->n)) {
        CHECK_MSG(false, "out of memory");
        free_data(&t);
        return;
    }
    const int NQ = sh->nq, row = sh->nh * sh->hd;
    pc_kv_span *whole = make_span(&t, 0, sh->n);
    pc_kv_list one = {0};
    pc_kv_list_push(&one, whole, NULL);
    /* the same sequence in four spans of odd sizes, and keys placed after a query in an earlier span */
    const int cuts[] = {0, 5, 29, 30, sh->n};
    pc_kv_list four = {0};
    pc_kv_span *parts[4];
    for (int i = 0; i < 4; i++) {
        parts[i] = make_span(&t, cuts[i], cuts[i + 1] - cuts[i]);
        pc_kv_list_push(&four, parts[i], NULL);
    }
    const size_t out_n = (size_t)NQ * row;
    float *ref = malloc(sizeof(float) * out_n), *o = malloc(sizeof(float) * out_n);

    run_mode(pool, sh, PC_ISA_SCALAR, &one, t.Q, t.qpos, NQ, ref, true);
    const double maxerr = max_error(&t, ref);
    CHECK_MSG(maxerr < 2e-3, "%d/%d heads of %d, %d keys: max error vs double reference %.3g", sh->nh, sh->nkv, sh->hd,
              sh->n, maxerr); /* f16 probabilities: ~1e-3 relative */

    const pc_isa paths[] = {PC_ISA_SCALAR, PC_ISA_AVX2, PC_ISA_AVX512, PC_ISA_AVX512_VNNI};
    for (size_t p = 0; p < sizeof paths / sizeof paths[0]; p++) {
        if (paths[p] > pc_isa_detect()) continue;
        const char *isa = pc_isa_name(paths[p]);
        run_mode(pool, sh, paths[p], &one, t.Q, t.qpos, NQ, o, true);
        CHECK_MSG(!memcmp(o, ref, sizeof(float) * out_n), "%s, %d keys: path differs from scalar", isa, sh->n);
        run_mode(pool, sh, paths[p], &four, t.Q, t.qpos, NQ, o, true);
        CHECK_MSG(!memcmp(o, ref, sizeof(float) * out_n), "%s, %d keys: four spans differ from one", isa, sh->n);
        for (int qi = 0; qi < NQ; qi += 4) { /* queries one batch at a time, single-threaded */
            int nq = NQ - qi < 3 ? NQ - qi : 3;
            run_mode(NULL, sh, paths[p], &four, t.Q + (size_t)qi * row, t.qpos + qi, nq, o + (size_t)qi * row, true);
            CHECK_MSG(!memcmp(o + (size_t)qi * row, ref + (size_t)qi * row, sizeof(float) * (size_t)nq * row),
                      "%s, %d keys: batch of %d at %d differs", isa, sh->n, nq, qi);
        }
        /* batches of 1, 2 and 5 queries (1: a decode step): without the
         * shared scratch (tiled), and with it on 2, 4 and 3 threads (even
         * shares of the heads where the KV heads fall evenly on the threads,
         * else balanced mode or one task per KV head by the context's length;
         * one-token spans and the masked keys of the earlier span included) */
        pc_pool *const pools[] = {pool, pool, pool4, pool3};
        for (int mode = 0; mode < 4; mode++)
            for (int nq = 1; nq <= 5; nq += nq < 2 ? 1 : 3)
                for (int qi = 0; qi + nq <= NQ; qi += 7) {
                    const size_t off = (size_t)qi * row, len = sizeof(float) * (size_t)nq * row;
                    memset(o + off, 0xff, len);
                    run_mode(pools[mode], sh, paths[p], &four, t.Q + off, t.qpos + qi, nq, o + off, mode > 0);
                    CHECK_MSG(!memcmp(o + off, ref + off, len), "%s, %d/%d heads of %d, %d keys: %s batch of %d at %d differs",
                              isa, sh->nh, sh->nkv, sh->hd, sh->n,
                              (const char *[]){"tiled", "2 threads shared", "4 threads shared", "3 threads shared"}[mode],
                              nq, qi);
                }
        /* one job for many sequences: eight decode rows, then rows and chunks of 1-16 queries */
        static const int decodes[] = {0, 1, 2, 3, 4, 5, 6, 7, 8}, mixed[] = {8, 9, 14, 15, 21};
        memset(o, 0xff, sizeof(float) * out_n);
        run_batch(pool, &t, paths[p], &four, o, decodes, 8);
        run_batch(pool, &t, paths[p], &four, o, mixed, 4);
        CHECK_MSG(!memcmp(o, ref, sizeof(float) * 21 * row), "%s, %d keys: sequences batched in one job differ from alone",
                  isa, sh->n);
    }
    pc_kv_list_free(&one);
    pc_kv_list_free(&four);
    pc_kv_span_release(whole);
    for (int i = 0; i < 4; i++) pc_kv_span_release(parts[i]);
    free(ref); free(o);
    free_data(&t);
}

int main(void) {
    pc_pool *pool = pc_pool_create(2), *pool3 = pc_pool_create(3), *pool4 = pc_pool_create(4);
    test_shape(&(shape){.nh = 6, .nkv = 2, .hd = 64, .n = 77, .nq = 21}, pool, pool3, pool4);
    /* SmolLM2's heads: short contexts (one task per KV head on 2 threads),
     * and from 768 keys balanced mode; a unit of 32 keys cut short at the end */
    static const int lengths[] = {31, 77, 200, 257, 769, 1031};
    for (size_t i = 0; i < sizeof lengths / sizeof lengths[0]; i++)
        test_shape(&(shape){.nh = 9, .nkv = 3, .hd = 64, .n = lengths[i], .nq = 21}, pool, pool3, pool4);
    /* Qwen2.5-0.5B's and -1.5B's heads */
    static const int qwen_lengths[] = {31, 77, 200, 257, 771};
    for (size_t i = 0; i < sizeof qwen_lengths / sizeof qwen_lengths[0]; i++) {
        test_shape(&(shape){.nh = 14, .nkv = 2, .hd = 64, .n = qwen_lengths[i], .nq = 21}, pool, pool3, pool4);
        test_shape(&(shape){.nh = 12, .nkv = 2, .hd = 128, .n = qwen_lengths[i], .nq = 21}, pool, pool3, pool4);
    }
    pc_pool_free(pool);
    pc_pool_free(pool3);
    pc_pool_free(pool4);
    return check_report();
}
