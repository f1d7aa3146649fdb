/* membw_read.c - the streaming read of membw_read.h.
 *
 * Passes are timed around the pool job alone; the buffer's pages are written
 * at init so no page fault lands inside a pass. */
#include "membw_read.h"

#include "util/clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

enum { MAX_TASKS = 256 };

typedef struct job {
    const uint8_t *buf;
    size_t bytes, per_task;
    int prefetch;
    uint64_t sums[MAX_TASKS]; /* one per task, so the reads cannot be optimized away */
} job;

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
    if (off >= j->bytes) {
        j->sums[task] = 0;
        return;
    }
    const size_t n = off + j->per_task <= j->bytes ? j->per_task : j->bytes - off;
#if defined(__x86_64__)
    j->sums[task] = __builtin_cpu_supports("avx2") ? sum_avx2(j->buf + off, n, j->prefetch) : sum_plain(j->buf + off, n);
#else
    j->sums[task] = sum_plain(j->buf + off, n);
#endif
}

int pc_membw_init(pc_membw *m, size_t bytes, pc_pool *pool, int threads) {
    const size_t huge = 2 << 20;
    memset(m, 0, sizeof *m);
    if (threads < 1 || threads > MAX_TASKS || !pool) return -1;
    m->bytes = (bytes + huge - 1) & ~(huge - 1);
    m->buf = aligned_alloc(huge, m->bytes);
    if (!m->buf) return -1;
    (void)madvise(m->buf, m->bytes, MADV_HUGEPAGE); /* as the engine's packed weights (model_pack.c) */
    for (size_t i = 0; i < m->bytes; i++) m->buf[i] = (uint8_t)(i * 2654435761u >> 24);
    m->pool = pool;
    m->threads = threads;
    return 0;
}

void pc_membw_free(pc_membw *m) {
    free(m->buf);
    m->buf = NULL;
}

double pc_membw_pass(pc_membw *m, int prefetch) {
    job j = {.buf = m->buf, .bytes = m->bytes, .prefetch = prefetch,
             .per_task = ((m->bytes / (size_t)m->threads) + 63) & ~(size_t)63};
    const double t0 = pc_now_ms();
    pc_pool_run(m->pool, read_task, &j, m->threads);
    const double s = (pc_now_ms() - t0) * 1e-3;
    for (int t = 0; t < m->threads; t++) m->check += j.sums[t];
    return s;
}

double pc_membw_sample(pc_membw *m) {
    const double plain = pc_membw_pass(m, 0), pf = pc_membw_pass(m, 1);
    return (double)m->bytes / (plain < pf ? plain : pf) * 1e-9;
}

double pc_membw_huge_page_mib(void) {
    FILE *f = fopen("/proc/self/smaps_rollup", "r");
    char line[256];
    double kib = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "AnonHugePages: %lf kB", &kib) == 1) break;
    if (f) fclose(f);
    return kib / 1024;
}
