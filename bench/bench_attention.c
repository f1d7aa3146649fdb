/* bench_attention.c - time of pc_attention for a fresh batch over a long cached context.
 *
 * Not a test: a tool, built with the project (cmake --build build) as
 * build/bench_attention.
 * Usage: bench_attention [threads] [cached tokens] [fresh tokens] [repeats] [sequences] [flush KiB] [model].
 * model picks the heads' shape: smollm2 (the default: SmolLM2-135M, 30
 * layers, 9 query heads over 3 KV heads, head dim 64), qwen0.5b (24 layers,
 * 14 over 2, dim 64) or qwen1.5b (28 layers, 12 over 2, dim 128).
 * the cached context is split into spans of 512 tokens like a schema's
 * modules, the fresh tokens sit in their own span after it, as in a cached
 * prefill. With sequences > 1, each sequence has a context of its own and all
 * go through one pc_attention_batch call per layer, as the server's decode
 * steps do (e.g. 8 sequences of 1 fresh token). Prints the best time of one
 * forward's 30 attention calls, the GFLOP/s of its QK and PV products, and a
 * hash of the output bits so that a kernel change can be checked to leave
 * every bit as it was. With flush KiB > 0, the pool's threads read that much
 * of a 128 MiB buffer before each layer's call (untimed), as a decode streams a layer's
 * weights between two attention calls: the keys and values then come from
 * memory, not the cache, and the median of the repeats is printed too. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/cpu/attention.h"

enum { SPAN = 512, MAX_SPANS = 64 };

/* A model's attention shape: layers, query heads, KV heads, head dimension. */
typedef struct shape {
    const char *name;
    int32_t nl, nh, nkv, hd;
} shape;

static const shape SHAPES[] = {
    {"smollm2", 30, 9, 3, 64},
    {"qwen0.5b", 24, 14, 2, 64},
    {"qwen1.5b", 28, 12, 2, 128},
};

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The read before a layer's call: n_tasks slices of kib KiB from at on in a
 * buffer of n bytes, wrapping; run on the pool, so both threads stream (as a
 * decode's weight products do) and stay awake for the call. */
typedef struct flush_job {
    const uint64_t *buf;
    size_t n, at, kib;
} flush_job;

static void flush_task(void *ctx, int task, int n_tasks, int thread) {
    (void)thread;
    const flush_job *f = ctx;
    const size_t lines = f->kib * 16, first = (f->at / 64 + (size_t)task * lines / (size_t)n_tasks) * 64;
    uint64_t sum = 0;
    for (size_t i = 0; i < lines / (size_t)n_tasks; i++) sum += f->buf[((first + i * 64) % f->n) / 8];
    volatile uint64_t sink = sum;
    (void)sink;
}

static void flush_read(pc_pool *pool, flush_job *f) {
    pc_pool_run(pool, flush_task, f, pc_pool_size(pool));
    f->at = (f->at + f->kib * 1024) % f->n;
}

static int cmp_double(const void *x, const void *y) {
    const double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

static float frand(uint64_t *s) {
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((*s >> 40) & 0xffffff) / (float)0x1000000 * 2.0f - 1.0f;
}

static pc_kv_span *make_span(const shape *sh, uint64_t *rng, int32_t pos0, int32_t n) {
    pc_kv_span *s = pc_kv_span_create(sh->nl, sh->nkv * sh->hd, n);
    if (!s || pc_kv_span_reserve(s, n, NULL) != PC_OK) return NULL;
    for (int32_t i = 0; i < n; i++) s->pos[i] = pos0 + i;
    for (int32_t l = 0; l < sh->nl; l++)
        for (int32_t i = 0; i < n; i++)
            for (int32_t d = 0; d < sh->nkv * sh->hd; d++) {
                *pc_kv_k_at(s, l, i, d) = pc_f32_to_f16(frand(rng) * 3.0f);
                pc_kv_v(s, l, i)[d] = pc_f32_to_f16(frand(rng));
            }
    s->n = n;
    return s;
}

/* One sequence: its context (cached spans, then the fresh span), queries and output. */
typedef struct seq {
    pc_kv_list ctx;
    pc_kv_span *spans[MAX_SPANS];
    int n_spans;
    float *q, *out;
    int32_t *qpos;
} seq;

static bool make_seq(seq *s, const shape *sh, uint64_t *rng, int32_t n_cached, int32_t n_fresh) {
    const int32_t row = sh->nh * sh->hd;
    memset(s, 0, sizeof *s);
    for (int32_t p = 0; p < n_cached && s->n_spans < MAX_SPANS - 1; p += SPAN) {
        s->spans[s->n_spans] = make_span(sh, rng, p, n_cached - p < SPAN ? n_cached - p : SPAN);
        if (!s->spans[s->n_spans] || pc_kv_list_push(&s->ctx, s->spans[s->n_spans], NULL) != PC_OK) return false;
        s->n_spans++;
    }
    s->spans[s->n_spans] = make_span(sh, rng, n_cached, n_fresh);
    if (!s->spans[s->n_spans] || pc_kv_list_push(&s->ctx, s->spans[s->n_spans], NULL) != PC_OK) return false;
    s->n_spans++;
    s->q = malloc(sizeof(float) * (size_t)n_fresh * row);
    s->out = malloc(sizeof(float) * (size_t)n_fresh * row);
    s->qpos = malloc(sizeof(int32_t) * (size_t)n_fresh);
    if (!s->q || !s->out || !s->qpos) return false;
    for (int32_t i = 0; i < n_fresh * row; i++) s->q[i] = frand(rng) * 3.0f;
    for (int32_t i = 0; i < n_fresh; i++) s->qpos[i] = n_cached + i;
    return true;
}

static void free_seq(seq *s) {
    pc_kv_list_free(&s->ctx);
    for (int i = 0; i < s->n_spans; i++) pc_kv_span_release(s->spans[i]);
    free(s->q);
    free(s->out);
    free(s->qpos);
}

int main(int argc, char **argv) {
    const int threads = argc > 1 ? atoi(argv[1]) : 2;
    const int32_t n_cached = argc > 2 ? atoi(argv[2]) : 7721, n_fresh = argc > 3 ? atoi(argv[3]) : 137;
    const int reps = argc > 4 ? atoi(argv[4]) : 5;
    const int32_t n_seq = argc > 5 ? atoi(argv[5]) : 1;
    const size_t flush_kib = argc > 6 ? (size_t)atol(argv[6]) : 0, flush_n = (size_t)128 << 20;
    const shape *sh = NULL;
    for (size_t i = 0; i < sizeof SHAPES / sizeof SHAPES[0]; i++)
        if (!strcmp(argc > 7 ? argv[7] : "smollm2", SHAPES[i].name)) sh = &SHAPES[i];
    if (threads < 1 || n_cached < 0 || n_fresh < 1 || reps < 1 || n_seq < 1 || n_seq > PC_ATTN_BATCH_MAX || !sh) {
        fprintf(stderr,
                "usage: bench_attention [threads] [cached tokens] [fresh tokens >= 1] [repeats] [sequences 1..%d] [flush KiB] "
                "[smollm2|qwen0.5b|qwen1.5b]\n",
                PC_ATTN_BATCH_MAX);
        return 2;
    }
    const int32_t NL = sh->nl, NH = sh->nh, NKV = sh->nkv, HD = sh->hd;
    uint64_t rng = 11;
    seq *seqs = calloc((size_t)n_seq, sizeof *seqs);
    pc_attn_args *a = calloc((size_t)n_seq, sizeof *a);
    pc_pool *pool = pc_pool_create(threads);
    if (!seqs || !a || !pool) return 1;
    const size_t per = (pc_attn_scratch_size(NH, NKV, HD, n_cached + n_fresh) + 63) & ~(size_t)63;
    void *scratch = NULL, *shared = NULL;
    if (posix_memalign(&scratch, 64, per * (size_t)pc_pool_size(pool)) ||
        posix_memalign(&shared, 64, pc_attn_shared_size(NH, NKV, n_cached + n_fresh)))
        return 1;
    for (int32_t i = 0; i < n_seq; i++) {
        if (!make_seq(&seqs[i], sh, &rng, n_cached, n_fresh)) return 1;
        a[i] = (pc_attn_args){.q = seqs[i].q, .q_stride = NH * HD, .q_pos = seqs[i].qpos, .n_q = n_fresh,
                              .n_head = NH, .n_head_kv = NKV, .head_dim = HD, .ctx = &seqs[i].ctx, .scale = 1.0f / sqrtf((float)HD),
                              .out = seqs[i].out, .out_stride = NH * HD, .scratch = scratch,
                              .scratch_per_thread = per, .shared = shared, .isa = pc_isa_detect()};
    }
    uint64_t *flush = flush_kib ? malloc(flush_n) : NULL;
    double *times = malloc(sizeof(double) * (size_t)reps);
    if ((flush_kib && !flush) || !times) {
        fprintf(stderr, "bench_attention: out of memory for the %s\n", times ? "128 MiB flush buffer" : "timings");
        return 1;
    }
    if (flush) memset(flush, 1, flush_n);
    flush_job fj = {.buf = flush, .n = flush_n, .kib = flush_kib};
    uint64_t hash = 1469598103934665603ULL;
    for (int r = 0; r < reps; r++) {
        double t = 0;
        for (int32_t l = 0; l < NL; l++) {
            for (int32_t i = 0; i < n_seq; i++) a[i].layer = l;
            if (flush) flush_read(pool, &fj);
            const double t0 = now();
            pc_attention_batch(pool, a, n_seq);
            t += now() - t0;
            if (r == 0)
                for (int32_t i = 0; i < n_seq; i++) {
                    const unsigned char *b = (const unsigned char *)seqs[i].out;
                    for (size_t j = 0; j < sizeof(float) * (size_t)n_fresh * NH * HD; j++)
                        hash = (hash ^ b[j]) * 1099511628211ULL;
                }
        }
        times[r] = t;
    }
    qsort(times, (size_t)reps, sizeof *times, cmp_double);
    const double best = times[0], median = times[reps / 2];
    /* visible keys summed over queries, times 2 products x 2 FLOPs x head_dim x heads x layers */
    const double keys = ((double)n_fresh * n_cached + (double)n_fresh * (n_fresh + 1) / 2) * n_seq;
    const double gflop = keys * 4.0 * HD * NH * NL * 1e-9;
    printf("attention %s, %s heads, %d threads, %d sequence(s) of %d cached + %d fresh tokens, %d layers: %.3f ms (best of %d), "
           "%.1f GFLOP/s, output hash %016llx",
           pc_isa_name(a[0].isa), sh->name, pc_pool_size(pool), n_seq, n_cached, n_fresh, NL, best * 1e3, reps, gflop / best,
           (unsigned long long)hash);
    if (flush) printf("; %zu KiB read before each layer: median %.3f ms", flush_kib, median * 1e3);
    printf("\n");
    free(flush);
    free(times);
    pc_pool_free(pool);
    for (int32_t i = 0; i < n_seq; i++) free_seq(&seqs[i]);
    free(seqs);
    free(a);
    free(scratch);
    free(shared);
    return 0;
}
