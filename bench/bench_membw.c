/* bench_membw.c - memory read bandwidth with the engine's threads: the decode limit.
 *
 * Not a test: a tool, built with the project as build/bench_membw.
 * Usage: bench_membw [threads] [MiB] [passes]. Reads a buffer of MiB mebibytes
 * (default 1024) once per pass with the project's thread pool, each thread a
 * contiguous share, two ways: a plain read of every 64-byte line, and the same
 * read asking for the line 4 KiB ahead into L2 (_mm_prefetch T1), which is how
 * the decode kernels read weights and streams faster here. Prints one JSON line:
 * the best pass of each way in GB/s (10^9 bytes/s), best_gb_s the higher, and
 * how much of the buffer sits in huge pages.
 *
 * Why it is the limit: a decode step reads every weight once, so tokens/s can
 * be at most bandwidth / bytes read per token. Give it the bytes a model's
 * decode step reads (bench_engine.py does) so the buffer sits in the same
 * level of the memory hierarchy as the weights do: a 100 MB model partly fits
 * a large L3, a 1 GB one does not. The buffer is allocated like the engine's
 * packed weights (2 MiB aligned, MADV_HUGEPAGE) and written once before timing
 * so every page is resident; passes are best-of because other processes on a
 * shared machine only ever slow a pass down. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "util/threadpool.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

typedef struct job {
    const uint8_t *buf;
    size_t bytes, per_task;
    int prefetch;
    uint64_t sums[256]; /* one per task, so the reads cannot be optimized away */
} job;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#if defined(__x86_64__)
__attribute__((target("avx2"))) static uint64_t sum_avx2(const uint8_t *p, size_t n, int prefetch) {
    __m256i a = _mm256_setzero_si256(), b = _mm256_setzero_si256();
    for (size_t i = 0; i + 64 <= n; i += 64) {
        if (prefetch) _mm_prefetch((const char *)p + i + 4096, _MM_HINT_T1);
        a = _mm256_xor_si256(a, _mm256_load_si256((const __m256i *)(p + i)));
        b = _mm256_xor_si256(b, _mm256_load_si256((const __m256i *)(p + i + 32)));
    }
    a = _mm256_xor_si256(a, b);
    return (uint64_t)_mm256_extract_epi64(a, 0) ^ (uint64_t)_mm256_extract_epi64(a, 3);
}
#endif

static uint64_t sum_plain(const uint8_t *p, size_t n) {
    uint64_t s = 0;
    for (size_t i = 0; i + 8 <= n; i += 64) {
        uint64_t v;
        memcpy(&v, p + i, 8); /* one word per line still pulls the whole line from memory */
        s ^= v;
    }
    return s;
}

static void read_task(void *ctx, int task, int n_tasks, int thread) {
    (void)n_tasks;
    (void)thread;
    job *j = ctx;
    const size_t off = (size_t)task * j->per_task;
    const size_t n = off + j->per_task <= j->bytes ? j->per_task : j->bytes - off;
#if defined(__x86_64__)
    j->sums[task] = __builtin_cpu_supports("avx2") ? sum_avx2(j->buf + off, n, j->prefetch) : sum_plain(j->buf + off, n);
#else
    j->sums[task] = sum_plain(j->buf + off, n);
#endif
}

/* MiB of this process's anonymous memory in huge pages (0 when the kernel gave none). */
static double huge_page_mib(void) {
    FILE *f = fopen("/proc/self/smaps_rollup", "r");
    char line[256];
    double kib = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "AnonHugePages: %lf kB", &kib) == 1) break;
    if (f) fclose(f);
    return kib / 1024;
}

int main(int argc, char **argv) {
    const int threads = argc > 1 ? atoi(argv[1]) : 2;
    const double mib = argc > 2 ? atof(argv[2]) : 1024;
    const int passes = argc > 3 ? atoi(argv[3]) : 10;
    if (threads < 1 || threads > 256 || mib <= 0 || passes < 1) {
        fprintf(stderr, "usage: bench_membw [threads 1..256] [MiB > 0] [passes >= 1]\n");
        return 2;
    }
    const size_t huge = 2 << 20, bytes = ((size_t)(mib * 1048576.0) + huge - 1) & ~(huge - 1);
    uint8_t *buf = aligned_alloc(huge, bytes);
    pc_pool *pool = pc_pool_create(threads);
    if (!buf || !pool) {
        fprintf(stderr, "bench_membw: out of memory for %zu bytes or threads\n", bytes);
        return 1;
    }
    (void)madvise(buf, bytes, MADV_HUGEPAGE); /* as the engine's packed weights (model_pack.c) */
    for (size_t i = 0; i < bytes; i++) buf[i] = (uint8_t)(i * 2654435761u >> 24);
    job j = {.buf = buf, .bytes = bytes, .per_task = ((bytes / (size_t)threads) + 63) & ~(size_t)63};
    double best[2] = {0, 0};
    uint64_t check = 0;
    for (int p = 0; p < 2 * passes; p++) {
        j.prefetch = p & 1;
        const double t0 = now();
        pc_pool_run(pool, read_task, &j, threads);
        const double gbs = (double)bytes / (now() - t0) * 1e-9;
        best[j.prefetch] = gbs > best[j.prefetch] ? gbs : best[j.prefetch];
        for (int t = 0; t < threads; t++) check += j.sums[t];
    }
    printf("{\"threads\": %d, \"bytes\": %zu, \"passes\": %d, \"plain_gb_s\": %.3f, \"prefetch_gb_s\": %.3f, "
           "\"best_gb_s\": %.3f, \"huge_page_mib\": %.0f, \"check\": %llu}\n",
           threads, bytes, passes, best[0], best[1], best[1] > best[0] ? best[1] : best[0], huge_page_mib(),
           (unsigned long long)(check & 0xFF));
    pc_pool_free(pool);
    free(buf);
    return 0;
}
