/* bench_attention.c - time of pc_attention for a fresh batch over a long cached context.
 *
 * Not a test: a tool, built with the project (cmake --build build) as
 * build/bench_attention.
 * Usage: bench_attention [threads] [cached tokens] [fresh tokens] [repeats].
 * SmolLM2-135M's shape (30 layers, 9 query heads, 3 KV heads, head dim 64):
 * the cached context is split into spans of 512 tokens like a schema's
 * modules, the fresh tokens sit in their own span after it, as in a cached
 * prefill. Prints the best time of one forward's 30 attention calls, the
 * GFLOP/s of its QK and PV products, and a hash of the output bits so that a
 * kernel change can be checked to leave every bit as it was. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/cpu/attention.h"

enum { NL = 30, NH = 9, NKV = 3, HD = 64, SPAN = 512 };

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static float frand(uint64_t *s) {
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((*s >> 40) & 0xffffff) / (float)0x1000000 * 2.0f - 1.0f;
}

static pc_kv_span *make_span(uint64_t *rng, int32_t pos0, int32_t n) {
    pc_kv_span *s = pc_kv_span_create(NL, NKV * HD, n);
    if (!s || pc_kv_span_reserve(s, n, NULL) != PC_OK) return NULL;
    for (int32_t i = 0; i < n; i++) s->pos[i] = pos0 + i;
    for (int32_t l = 0; l < NL; l++)
        for (int32_t i = 0; i < n; i++)
            for (int32_t d = 0; d < NKV * HD; d++) {
                *pc_kv_k_at(s, l, i, d) = pc_f32_to_f16(frand(rng) * 3.0f);
                pc_kv_v(s, l, i)[d] = pc_f32_to_f16(frand(rng));
            }
    s->n = n;
    return s;
}

int main(int argc, char **argv) {
    const int threads = argc > 1 ? atoi(argv[1]) : 2;
    const int32_t n_cached = argc > 2 ? atoi(argv[2]) : 7721, n_fresh = argc > 3 ? atoi(argv[3]) : 137;
    const int reps = argc > 4 ? atoi(argv[4]) : 5;
    uint64_t rng = 11;
    pc_kv_list ctx = {0};
    pc_kv_span *spans[64];
    int n_spans = 0;
    for (int32_t p = 0; p < n_cached && n_spans < 63; p += SPAN) {
        spans[n_spans] = make_span(&rng, p, n_cached - p < SPAN ? n_cached - p : SPAN);
        if (!spans[n_spans] || pc_kv_list_push(&ctx, spans[n_spans], NULL) != PC_OK) return 1;
        n_spans++;
    }
    spans[n_spans] = make_span(&rng, n_cached, n_fresh);
    if (!spans[n_spans] || pc_kv_list_push(&ctx, spans[n_spans], NULL) != PC_OK) return 1;
    n_spans++;

    float *q = malloc(sizeof(float) * (size_t)n_fresh * NH * HD), *out = malloc(sizeof(float) * (size_t)n_fresh * NH * HD);
    int32_t *qpos = malloc(sizeof(int32_t) * (size_t)n_fresh);
    for (int32_t i = 0; i < n_fresh * NH * HD; i++) q[i] = frand(&rng) * 3.0f;
    for (int32_t i = 0; i < n_fresh; i++) qpos[i] = n_cached + i;
    pc_pool *pool = pc_pool_create(threads);
    const size_t per = (pc_attn_scratch_size(NH, NKV, HD, n_cached + n_fresh) + 63) & ~(size_t)63;
    void *scratch = NULL, *shared = NULL;
    if (!pool || posix_memalign(&scratch, 64, per * (size_t)pc_pool_size(pool)) ||
        posix_memalign(&shared, 64, pc_attn_shared_size(NH, NKV, n_cached + n_fresh)))
        return 1;
    pc_attn_args a = {.q = q, .q_stride = NH * HD, .q_pos = qpos, .n_q = n_fresh, .n_head = NH, .n_head_kv = NKV,
                      .head_dim = HD, .ctx = &ctx, .scale = 0.125f, .out = out, .out_stride = NH * HD,
                      .scratch = scratch, .scratch_per_thread = per, .shared = shared, .isa = pc_isa_detect()};
    uint64_t hash = 1469598103934665603ULL;
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        const double t0 = now();
        for (int32_t l = 0; l < NL; l++) {
            a.layer = l;
            pc_attention(pool, &a);
            if (r == 0) {
                const unsigned char *b = (const unsigned char *)out;
                for (size_t i = 0; i < sizeof(float) * (size_t)n_fresh * NH * HD; i++) hash = (hash ^ b[i]) * 1099511628211ULL;
            }
        }
        const double t = now() - t0;
        best = t < best ? t : best;
    }
    /* visible keys summed over queries, times 2 products x 2 FLOPs x head_dim x heads x layers */
    const double keys = (double)n_fresh * n_cached + (double)n_fresh * (n_fresh + 1) / 2;
    const double gflop = keys * 4.0 * HD * NH * NL * 1e-9;
    printf("attention %s, %d threads: %d cached + %d fresh tokens, %d layers: %.1f ms (best of %d), %.1f GFLOP/s, "
           "output hash %016llx\n",
           pc_isa_name(a.isa), pc_pool_size(pool), n_cached, n_fresh, NL, best * 1e3, reps, gflop / best,
           (unsigned long long)hash);
    pc_pool_free(pool);
    pc_kv_list_free(&ctx);
    for (int i = 0; i < n_spans; i++) pc_kv_span_release(spans[i]);
    free(scratch); free(shared); free(q); free(out); free(qpos);
    return 0;
}
