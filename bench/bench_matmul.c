/* bench_matmul.c - GFLOP/s of pc_matmul on the matrix shapes of the project's models.
 *
 * Not a test: a tool, built with the project (cmake --build build) as
 * build/bench_matmul.
 * Usage: bench_matmul [threads] [seconds per case] [filter] [n_tok,...]. For
 * each shape (SmolLM2-135M Q4_1, Qwen2.5-Coder-0.5B's Q5_0/Q8_0/Q4_K/Q6_K,
 * 1.5B's Q4_K/Q6_K) and each n_tok (default 1 (decode) and 128 (prefill); a
 * batch of decodes is 8 or so), prints the rate of the
 * packed kernels on the best ISA path and on AVX2, and of the unpacked dot per
 * output (what the matmul ran before packing existed, and the scalar path's
 * method), by wall clock and by CPU time: on a shared machine CPU time is the
 * steadier guide for a kernel, wall time what a user gets. FLOPs are
 * 2 * n_in * n_out * n_tok (quantizing x included); each rate is the best of 5
 * short windows. filter: only shapes whose name contains it.
 *
 * bench_matmul --stream [threads] [MiB] [filter]: decode's case, where the weights come
 * from memory: n_tok = 1 over enough distinct copies of each shape's packed
 * weights to fill MiB (default 1024), cycled, printed as GB/s of weights read
 * beside a plain prefetching read of the same bytes (bench_membw's way) in the
 * pass right after each kernel pass. The machine's bandwidth swings by 2x
 * within seconds, so best-of figures taken minutes apart cannot tell a few %
 * apart; the median of the per-pass ratios (kernel / read, each pair tens of
 * milliseconds apart) is the steadier figure of how close a kernel streams to
 * the limit. Every pass's two rates go to stderr ("pass SHAPE KERNEL READ"),
 * so that passes can be told apart by the read's level (the bandwidth has two).
 *
 * bench_matmul --cache [threads] [KiB] [filter]: the one-token kernels' own
 * ceiling, with their weights in cache: each shape's n_in, and as many whole
 * row groups as fill KiB of packed weights (1536 = 3/4 of the two cores' L2,
 * 16384 = half the L3), the same matrix multiplied again and again; printed as
 * GB/s of weight bytes (best of 5 windows of 0.2 s) to set beside the DRAM read. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "kernels/cpu/matmul.h"
#include "kernels/cpu/pack.h"

static double clock_of(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct shape { const char *name; pc_type wt; int64_t n_in, n_out; } shape;
typedef struct rates { double wall, cpu; } rates;

/* GFLOP/s of pc_matmul: the best of 5 windows of secs/5 each, since the
 * machine is shared and the best window is the least disturbed one. */
static rates rate(pc_pool *pool, pc_matmul_args *a, double secs) {
    const double flop = 2.0 * (double)a->n_in * (double)a->n_out * (double)a->n_tok;
    rates best = {0, 0};
    pc_matmul(pool, a); /* warm caches and the pool */
    for (int win = 0; win < 5; win++) {
        int reps = 0;
        const double t0 = clock_of(CLOCK_MONOTONIC), c0 = clock_of(CLOCK_PROCESS_CPUTIME_ID);
        double t = t0;
        while (t - t0 < secs / 5 || reps == 0) {
            pc_matmul(pool, a);
            reps++;
            t = clock_of(CLOCK_MONOTONIC);
        }
        const double c = clock_of(CLOCK_PROCESS_CPUTIME_ID) - c0;
        const double w = flop * reps / (t - t0) * 1e-9, cpu = flop * reps / c * 1e-9;
        best.wall = w > best.wall ? w : best.wall;
        best.cpu = cpu > best.cpu ? cpu : best.cpu;
    }
    return best;
}

/* The shape's weights, quantized from a fixed pattern (GGUF layout); the caller frees them. */
static unsigned char *weights_of(const shape *sh) {
    const size_t wrow = pc_row_size(sh->wt, sh->n_in);
    unsigned char *w = malloc(wrow * (size_t)sh->n_out);
    float *row = malloc(sizeof(float) * (size_t)sh->n_in);
    for (int64_t o = 0; o < sh->n_out; o++) {
        for (int64_t i = 0; i < sh->n_in; i++) row[i] = (float)((o * 31 + i * 17) % 97) / 97.f - 0.5f;
        pc_quantize_row(sh->wt, row, w + o * wrow, sh->n_in);
    }
    free(row);
    return w;
}

static void bench_shape(pc_pool *pool, const shape *sh, int64_t n_tok, double secs) {
    unsigned char *w = weights_of(sh);
    void *packed = aligned_alloc(64, (pc_pack_size(sh->wt, sh->n_in, sh->n_out) + 63) / 64 * 64);
    pc_pack(sh->wt, w, sh->n_in, sh->n_out, packed);
    float *x = malloc(sizeof(float) * (size_t)(sh->n_in * n_tok));
    for (int64_t i = 0; i < sh->n_in * n_tok; i++) x[i] = (float)(i % 13) / 13.f - 0.4f;
    float *y = malloc(sizeof(float) * (size_t)(sh->n_out * n_tok));
    const size_t ss = pc_matmul_scratch_size(sh->wt, sh->n_in, n_tok);
    void *scratch = aligned_alloc(64, (ss + 63) / 64 * 64);
    pc_matmul_args a = {.wt = sh->wt, .w = w, .packed = packed, .n_in = sh->n_in, .n_out = sh->n_out, .x = x,
                        .n_tok = n_tok, .y = y, .scratch = scratch, .isa = pc_isa_detect()};
    const rates best = rate(pool, &a, secs);
    a.isa = PC_ISA_AVX2;
    const rates avx2 = pc_isa_detect() >= PC_ISA_AVX2 ? rate(pool, &a, secs) : (rates){0, 0};
    a.isa = pc_isa_detect();
    a.packed = NULL;
    const rates dot = rate(pool, &a, secs / 4);
    printf("%-26s %5lld %9.1f %9.1f %9.1f %9.1f %9.1f %9.1f\n", sh->name, (long long)n_tok, best.wall, best.cpu,
           avx2.wall, avx2.cpu, dot.wall, dot.cpu);
    fflush(stdout);
    free(w);
    free(packed);
    free(x);
    free(y);
    free(scratch);
}

/* A plain read of [buf, buf + bytes) split over the pool, one word per line
 * (which still pulls the whole line) and each line asked for 4 KiB ahead into
 * L2, as bench_membw's faster way and the kernels do: the same bytes the kernels read. */
typedef struct read_job { const uint8_t *buf; size_t bytes, per_task; uint64_t sums[256]; } read_job;

static void read_task(void *ctx, int task, int n_tasks, int thread) {
    (void)n_tasks, (void)thread;
    read_job *j = ctx;
    const size_t off = (size_t)task * j->per_task, n = off + j->per_task <= j->bytes ? j->per_task : j->bytes - off;
    const uint8_t *p = j->buf + off;
    uint64_t s = 0;
    for (size_t i = 0; i + 8 <= n; i += 64) {
        uint64_t v;
        __builtin_prefetch(p + i + 4096, 0, 2); /* prefetcht1 */
        memcpy(&v, p + i, 8);
        s ^= v;
    }
    j->sums[task] = s; /* kept, so the reads stay */
}

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

enum { STREAM_PASSES = 25 };

/* One token's product over sh: x, y, scratch and the arguments (packed set by the caller). */
typedef struct one_token {
    float *x, *y;
    void *scratch;
    pc_matmul_args a;
} one_token;

static void one_token_init(one_token *o, const shape *sh, const unsigned char *w) {
    o->x = malloc(sizeof(float) * (size_t)sh->n_in);
    for (int64_t i = 0; o->x && i < sh->n_in; i++) o->x[i] = (float)(i % 13) / 13.f - 0.4f;
    o->y = malloc(sizeof(float) * (size_t)sh->n_out);
    o->scratch = aligned_alloc(64, (pc_matmul_scratch_size(sh->wt, sh->n_in, 1) + 63) / 64 * 64);
    o->a = (pc_matmul_args){.wt = sh->wt, .w = w, .n_in = sh->n_in, .n_out = sh->n_out, .x = o->x, .n_tok = 1,
                            .y = o->y, .scratch = o->scratch, .isa = pc_isa_detect()};
}

static void one_token_free(one_token *o) {
    free(o->x);
    free(o->y);
    free(o->scratch);
}

/* GB/s of weights a decode-shaped matmul streams through copies of one matrix
 * filling mib, and of a plain read of the same bytes in the pass after each. */
static void bench_stream(pc_pool *pool, int threads, const shape *sh, double mib) {
    const size_t psize = pc_pack_size(sh->wt, sh->n_in, sh->n_out);
    const int copies = (int)(mib * 1048576.0 / (double)psize) + 1;
    unsigned char *w = weights_of(sh);
    const size_t huge = 2 << 20, total = (psize * (size_t)copies + huge - 1) & ~(huge - 1);
    unsigned char *packed = aligned_alloc(huge, total);
    (void)madvise(packed, total, MADV_HUGEPAGE); /* as model_pack.c allocates the engine's */
    for (int c = 0; c < copies; c++) pc_pack(sh->wt, w, sh->n_in, sh->n_out, packed + psize * (size_t)c);
    one_token o;
    one_token_init(&o, sh, w);
    const size_t bytes = psize * (size_t)copies;
    read_job rj = {.buf = packed, .bytes = bytes, .per_task = (bytes / (size_t)threads + 63) & ~(size_t)63};
    double best = 0, best_read = 0, ratio[STREAM_PASSES];
    for (int pass = 0; pass < STREAM_PASSES; pass++) {
        const double t0 = clock_of(CLOCK_MONOTONIC);
        for (int c = 0; c < copies; c++) {
            o.a.packed = packed + psize * (size_t)c;
            pc_matmul(pool, &o.a);
        }
        const double t1 = clock_of(CLOCK_MONOTONIC);
        pc_pool_run(pool, read_task, &rj, threads);
        const double t2 = clock_of(CLOCK_MONOTONIC), gbs = (double)bytes / (t1 - t0) * 1e-9;
        const double rgbs = (double)bytes / (t2 - t1) * 1e-9;
        best = gbs > best ? gbs : best;
        best_read = rgbs > best_read ? rgbs : best_read;
        ratio[pass] = gbs / rgbs;
        /* every pass on stderr, so that passes can be sorted by the read's bandwidth level */
        fprintf(stderr, "pass %-18s %6.2f %6.2f\n", sh->name, gbs, rgbs);
    }
    qsort(ratio, STREAM_PASSES, sizeof ratio[0], cmp_double);
    printf("%-18s %4d x %6.2f MB: %6.2f GB/s of weights, read %6.2f, per pass %5.1f%% (median; %5.1f-%5.1f)\n",
           sh->name, copies, (double)psize / 1e6, best, best_read, 100 * ratio[STREAM_PASSES / 2], 100 * ratio[0],
           100 * ratio[STREAM_PASSES - 1]);
    fflush(stdout);
    free(w);
    free(packed);
    one_token_free(&o);
}

/* GB/s of packed weights one token's matmul goes through, its matrix held in cache. */
static void bench_cache(pc_pool *pool, const shape *sh, double kib) {
    const size_t g1 = pc_pack_size(sh->wt, sh->n_in, PC_PACK_ROWS);
    const int64_t groups = (int64_t)(kib * 1024.0 / (double)g1) > 0 ? (int64_t)(kib * 1024.0 / (double)g1) : 1;
    const shape c = {sh->name, sh->wt, sh->n_in, groups * PC_PACK_ROWS};
    const size_t psize = pc_pack_size(c.wt, c.n_in, c.n_out);
    unsigned char *w = weights_of(&c);
    unsigned char *packed = aligned_alloc(64, (psize + 63) / 64 * 64);
    pc_pack(c.wt, w, c.n_in, c.n_out, packed);
    one_token o;
    one_token_init(&o, &c, w);
    o.a.packed = packed;
    /* rate() counts 2 n_in n_out flops a call; weight bytes a call are psize */
    const rates r = rate(pool, &o.a, 1.0);
    const double per_flop = (double)psize / (2.0 * (double)c.n_in * (double)c.n_out);
    printf("%-18s %6lld rows %8.1f KiB: %7.1f GB/s of weights, %7.1f per core-second of CPU time\n", c.name,
           (long long)c.n_out, (double)psize / 1024, r.wall * per_flop, r.cpu * per_flop);
    fflush(stdout);
    free(w);
    free(packed);
    one_token_free(&o);
}

static const shape stream_shapes[] = {{"1.5b up q4k", PC_TYPE_Q4_K, 1536, 8960},
                                      {"1.5b down q6k", PC_TYPE_Q6_K, 8960, 1536},
                                      {"1.5b q q4k", PC_TYPE_Q4_K, 1536, 1536},
                                      {"1.5b out q6k", PC_TYPE_Q6_K, 1536, 151936},
                                      {"0.5b up q5_0", PC_TYPE_Q5_0, 896, 4864},
                                      {"0.5b down q4k", PC_TYPE_Q4_K, 4864, 896},
                                      {"0.5b down q6k", PC_TYPE_Q6_K, 4864, 896},
                                      {"0.5b out q8_0", PC_TYPE_Q8_0, 896, 151936},
                                      {"smollm2 q 576->576", PC_TYPE_Q4_1, 576, 576},
                                      {"smollm2 k 576->192", PC_TYPE_Q4_1, 576, 192},
                                      {"smollm2 up 576->1536", PC_TYPE_Q4_1, 576, 1536},
                                      {"smollm2 down 1536->576", PC_TYPE_Q4_1, 1536, 576},
                                      {"smollm2 out 576->49152", PC_TYPE_Q8_0, 576, 49152}};

/* --cache / --stream [threads] [size] [filter]: each listed shape whose name
 * holds filter, its weights in cache (size in KiB) or streamed (MiB). */
static int run_shapes(int argc, char **argv, bool stream) {
    const int threads = argc > 2 ? atoi(argv[2]) : 2;
    if (threads < 1 || threads > 256) return 2;
    pc_pool *pool = pc_pool_create(threads);
    const double size = argc > 3 ? atof(argv[3]) : stream ? 1024 : 1536;
    const char *filter = argc > 4 ? argv[4] : "";
    for (size_t i = 0; pool && i < sizeof stream_shapes / sizeof stream_shapes[0]; i++) {
        if (!strstr(stream_shapes[i].name, filter)) continue;
        if (stream)
            bench_stream(pool, threads, &stream_shapes[i], size);
        else
            bench_cache(pool, &stream_shapes[i], size);
    }
    pc_pool_free(pool);
    return pool ? 0 : 1;
}

int main(int argc, char **argv) {
    if (argc > 1 && (strcmp(argv[1], "--cache") == 0 || strcmp(argv[1], "--stream") == 0))
        return run_shapes(argc, argv, strcmp(argv[1], "--stream") == 0);
    const int threads = argc > 1 ? atoi(argv[1]) : 2;
    const double secs = argc > 2 ? atof(argv[2]) : 0.5;
    const char *filter = argc > 3 ? argv[3] : "";
    const char *toks = argc > 4 ? argv[4] : "1,128";
    static const shape shapes[] = {
        {"smollm2 q 576->576", PC_TYPE_Q4_1, 576, 576},
        {"smollm2 up 576->1536", PC_TYPE_Q4_1, 576, 1536},
        {"smollm2 down 1536->576", PC_TYPE_Q4_1, 1536, 576},
        {"smollm2 out 576->49152", PC_TYPE_Q8_0, 576, 49152},
        {"0.5b q 896->896", PC_TYPE_Q5_0, 896, 896},
        {"0.5b v 896->128", PC_TYPE_Q8_0, 896, 128},
        {"0.5b up 896->4864", PC_TYPE_Q5_0, 896, 4864},
        {"0.5b down 4864->896 q4k", PC_TYPE_Q4_K, 4864, 896},
        {"0.5b down 4864->896 q6k", PC_TYPE_Q6_K, 4864, 896},
        {"1.5b q 1536->1536", PC_TYPE_Q4_K, 1536, 1536},
        {"1.5b v 1536->256 q6k", PC_TYPE_Q6_K, 1536, 256},
        {"1.5b up 1536->8960", PC_TYPE_Q4_K, 1536, 8960},
        {"1.5b down 8960->1536 q4k", PC_TYPE_Q4_K, 8960, 1536},
        {"1.5b down 8960->1536 q6k", PC_TYPE_Q6_K, 8960, 1536},
        {"1.5b out 1536->151936 q6k", PC_TYPE_Q6_K, 1536, 151936},
    };
    pc_pool *pool = pc_pool_create(threads);
    if (!pool) return 1;
    printf("threads %d, best isa %s; GFLOP/s by wall clock and by CPU time\n", threads, pc_isa_name(pc_isa_detect()));
    printf("%-26s %5s %9s %9s %9s %9s %9s %9s\n", "shape", "n_tok", "best", "best/cpu", "avx2", "avx2/cpu", "dot",
           "dot/cpu");
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        if (!strstr(shapes[s].name, filter)) continue;
        for (const char *t = toks; *t; t += strcspn(t, ","), t += *t == ',') {
            const int64_t n_tok = atoll(t);
            /* the head runs for the last rows only: a batch of decodes at most */
            if (n_tok > 0 && (n_tok <= 16 || shapes[s].n_out < 100000)) bench_shape(pool, &shapes[s], n_tok, secs);
        }
    }
    pc_pool_free(pool);
    return 0;
}
