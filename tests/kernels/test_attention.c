/* test_attention.c - attention by position over KV spans, against a double-precision
 * reference, and the properties Prompt Cache's exactness rests on:
 *   - the scalar, AVX2 and AVX-512 paths give bitwise the same output;
 *   - splitting the same (position, K, V) sequence into other spans, or
 *     computing the queries in other batches, changes no bit;
 *   - a query sees exactly the keys at positions <= its own (keys placed after
 *     it, even in an earlier span, are ignored);
 *   - small batches that run in split mode (the work of a KV head spread over
 *     threads, through the shared scratch) or as one job of even shares of
 *     the heads equal the tiled mode. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "kernels/cpu/attention.h"

enum { NH = 6, NKV = 2, HD = 64, N = 77, NQ = 21 };

static float frand(uint64_t *s) {
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((*s >> 40) & 0xffffff) / (float)0x1000000 * 2.0f - 1.0f;
}

/* Fills tokens [0, n) of a span with keys/values of global index base + i. */
static pc_kv_span *make_span(const float *K, const float *V, const int32_t *pos, int base, int n) {
    pc_kv_span *s = pc_kv_span_create(1, NKV * HD, n);
    pc_kv_span_reserve(s, n, NULL);
    for (int i = 0; i < n; i++) {
        s->pos[i] = pos[base + i];
        for (int d = 0; d < NKV * HD; d++) {
            *pc_kv_k_at(s, 0, i, d) = pc_f32_to_f16(K[(base + i) * NKV * HD + d]);
            pc_kv_v(s, 0, i)[d] = pc_f32_to_f16(V[(base + i) * NKV * HD + d]);
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

static bool scratch_alloc(pc_pool *pool, scratch_mem *m) {
    m->per = (pc_attn_scratch_size(NH, NKV, HD, N) + 63) & ~(size_t)63;
    m->scratch = m->shared = NULL;
    if (posix_memalign(&m->scratch, 64, m->per * (size_t)pc_pool_size(pool)) == 0 &&
        posix_memalign(&m->shared, 64, pc_attn_shared_size(NH, NKV, N)) == 0)
        return true;
    CHECK_MSG(false, "out of memory");
    free(m->scratch);
    return false;
}

static void scratch_free(scratch_mem *m) {
    free(m->scratch);
    free(m->shared);
}

/* split: hand attention the shared scratch, so batches of one tile on a pool
 * of 2+ threads run in split mode or as one job of even head shares (by the
 * pool's size); without it they always run tiled. */
static void run_mode(pc_pool *pool, pc_isa isa, const pc_kv_list *ctx, const float *q, const int32_t *qpos, int nq,
                     float *out, bool split) {
    scratch_mem m;
    if (!scratch_alloc(pool, &m)) return;
    pc_attn_args a = {.q = q, .q_stride = NH * HD, .q_pos = qpos, .n_q = nq, .n_head = NH, .n_head_kv = NKV,
                      .head_dim = HD, .ctx = ctx, .layer = 0, .scale = 0.125f, .out = out, .out_stride = NH * HD,
                      .scratch = m.scratch, .scratch_per_thread = m.per, .shared = split ? m.shared : NULL, .isa = isa};
    pc_attention(pool, &a);
    scratch_free(&m);
}

/* Sequences in one job (pc_attention_batch, as a batch of decodes runs): the
 * queries cut into one-row sequences and chunks, each over the whole context
 * with its own positions; every row must be what it is alone (ref). */
static void run_batch(pc_pool *pool, pc_isa isa, const pc_kv_list *ctx, const float *q, const int32_t *qpos, float *out,
                      const int *cuts, int n_seqs) {
    scratch_mem m;
    if (!scratch_alloc(pool, &m)) return;
    pc_attn_args as[NQ];
    for (int i = 0; i < n_seqs; i++) {
        const int q0 = cuts[i], nq = cuts[i + 1] - cuts[i];
        as[i] = (pc_attn_args){.q = q + (size_t)q0 * NH * HD, .q_stride = NH * HD, .q_pos = qpos + q0, .n_q = nq,
                               .n_head = NH, .n_head_kv = NKV, .head_dim = HD, .ctx = ctx, .layer = 0, .scale = 0.125f,
                               .out = out + (size_t)q0 * NH * HD, .out_stride = NH * HD, .scratch = m.scratch,
                               .scratch_per_thread = m.per, .shared = m.shared, .isa = isa};
    }
    pc_attention_batch(pool, as, n_seqs);
    scratch_free(&m);
}

static void run(pc_pool *pool, pc_isa isa, const pc_kv_list *ctx, const float *q, const int32_t *qpos, int nq, float *out) {
    run_mode(pool, isa, ctx, q, qpos, nq, out, true);
}

int main(void) {
    uint64_t rng = 7;
    float *K = malloc(sizeof(float) * N * NKV * HD), *V = malloc(sizeof(float) * N * NKV * HD),
          *Q = malloc(sizeof(float) * NQ * NH * HD);
    int32_t pos[N], qpos[NQ];
    for (int i = 0; i < N * NKV * HD; i++) K[i] = frand(&rng) * 2, V[i] = frand(&rng);
    for (int i = 0; i < NQ * NH * HD; i++) Q[i] = frand(&rng) * 2;
    for (int i = 0; i < N; i++) pos[i] = 3 * i + (i > 40 ? 500 : 0); /* a gap, like an unselected union */
    for (int i = 0; i < NQ; i++) qpos[i] = pos[N - NQ + i];          /* the last NQ keys are the queries' own */
    qpos[0] = 50;                                                    /* one query sees only the first 17 keys */

    pc_kv_span *whole = make_span(K, V, pos, 0, N);
    pc_kv_list one = {0};
    pc_kv_list_push(&one, whole, NULL);
    /* the same sequence in four spans of odd sizes, and keys placed after a query in an earlier span */
    const int cuts[] = {0, 5, 29, 30, N};
    pc_kv_list four = {0};
    pc_kv_span *parts[4];
    for (int i = 0; i < 4; i++) {
        parts[i] = make_span(K, V, pos, cuts[i], cuts[i + 1] - cuts[i]);
        pc_kv_list_push(&four, parts[i], NULL);
    }
    pc_pool *pool = pc_pool_create(2), *pool4 = pc_pool_create(4);
    const size_t out_n = (size_t)NQ * NH * HD;
    float *ref = malloc(sizeof(float) * out_n), *o = malloc(sizeof(float) * out_n);

    run(pool, PC_ISA_SCALAR, &one, Q, qpos, NQ, ref);
    /* double-precision reference */
    double maxerr = 0;
    for (int qi = 0; qi < NQ; qi++)
        for (int h = 0; h < NH; h++) {
            const int kh = h / (NH / NKV);
            double sc[N], mx = -1e300, sum = 0;
            for (int j = 0; j < N; j++) {
                sc[j] = -INFINITY;
                if (pos[j] > qpos[qi]) continue;
                double s = 0;
                for (int d = 0; d < HD; d++)
                    s += (double)pc_f16_to_f32(pc_f32_to_f16(Q[(qi * NH + h) * HD + d])) *
                         pc_f16_to_f32(pc_f32_to_f16(K[(j * NKV + kh) * HD + d]));
                sc[j] = s * 0.125;
                mx = fmax(mx, sc[j]);
            }
            for (int j = 0; j < N; j++) sum += isinf(sc[j]) ? 0 : exp(sc[j] - mx);
            for (int d = 0; d < HD; d++) {
                double acc = 0;
                for (int j = 0; j < N; j++)
                    if (!isinf(sc[j])) acc += exp(sc[j] - mx) / sum * pc_f16_to_f32(pc_f32_to_f16(V[(j * NKV + kh) * HD + d]));
                maxerr = fmax(maxerr, fabs(acc - ref[(qi * NH + h) * HD + d]));
            }
        }
    CHECK_MSG(maxerr < 2e-3, "max error vs double reference %.3g", maxerr); /* f16 probabilities: ~1e-3 relative */

    const pc_isa paths[] = {PC_ISA_SCALAR, PC_ISA_AVX2, PC_ISA_AVX512, PC_ISA_AVX512_VNNI};
    for (size_t p = 0; p < sizeof paths / sizeof paths[0]; p++) {
        if (paths[p] > pc_isa_detect()) continue;
        run(pool, paths[p], &one, Q, qpos, NQ, o);
        CHECK_MSG(!memcmp(o, ref, sizeof(float) * out_n), "%s path differs from scalar", pc_isa_name(paths[p]));
        run(pool, paths[p], &four, Q, qpos, NQ, o);
        CHECK_MSG(!memcmp(o, ref, sizeof(float) * out_n), "%s: four spans differ from one", pc_isa_name(paths[p]));
        for (int qi = 0; qi < NQ; qi += 4) { /* queries one batch at a time, single-threaded */
            int nq = NQ - qi < 3 ? NQ - qi : 3;
            run(NULL, paths[p], &four, Q + (size_t)qi * NH * HD, qpos + qi, nq, o + (size_t)qi * NH * HD);
            CHECK_MSG(!memcmp(o + (size_t)qi * NH * HD, ref + (size_t)qi * NH * HD, sizeof(float) * (size_t)nq * NH * HD),
                      "%s: batch of %d at %d differs", pc_isa_name(paths[p]), nq, qi);
        }
        /* batches of 1, 2 and 5 queries: without the shared scratch (tiled),
         * with it on 2 threads (one tiled job: the 2 KV heads fall evenly on
         * the threads) and on 4 (split mode: one-token spans and the masked
         * keys of the earlier span included) */
        for (int mode = 0; mode < 3; mode++)
            for (int nq = 1; nq <= 5; nq += nq < 2 ? 1 : 3)
                for (int qi = 0; qi + nq <= NQ; qi += 7) {
                    const size_t off = (size_t)qi * NH * HD, len = sizeof(float) * (size_t)nq * NH * HD;
                    memset(o + off, 0xff, len);
                    run_mode(mode == 2 ? pool4 : pool, paths[p], &four, Q + off, qpos + qi, nq, o + off, mode > 0);
                    CHECK_MSG(!memcmp(o + off, ref + off, len), "%s: %s batch of %d at %d differs",
                              pc_isa_name(paths[p]), (const char *[]){"tiled", "even-shares", "split-mode"}[mode], nq, qi);
                }
        /* one job for many sequences: eight decode rows, then rows and chunks of 1-16 queries */
        static const int decodes[] = {0, 1, 2, 3, 4, 5, 6, 7, 8}, mixed[] = {8, 9, 14, 15, 21};
        memset(o, 0xff, sizeof(float) * out_n);
        run_batch(pool, paths[p], &four, Q, qpos, o, decodes, 8);
        run_batch(pool, paths[p], &four, Q, qpos, o, mixed, 4);
        CHECK_MSG(!memcmp(o, ref, sizeof(float) * out_n), "%s: sequences batched in one job differ from alone",
                  pc_isa_name(paths[p]));
    }
    pc_pool_free(pool);
    pc_pool_free(pool4);
    pc_kv_list_free(&one);
    pc_kv_list_free(&four);
    pc_kv_span_release(whole);
    for (int i = 0; i < 4; i++) pc_kv_span_release(parts[i]);
    free(K); free(V); free(Q); free(ref); free(o);
    return check_report();
}
