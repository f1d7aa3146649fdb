/* bench_membw.c - memory read bandwidth with the engine's threads: the decode limit.
 *
 * Not a test: a tool, built with the project as build/bench_membw.
 * Usage: bench_membw [threads] [MiB] [passes] [warm-up]. Reads a buffer of MiB mebibytes
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
 * shared machine only ever slow a pass down. The read itself is membw_read.c's,
 * shared with bench_decode_paired.
 *
 * Warm-up passes (default 3, untimed) come first: a fresh process's first
 * reads of a 100 MB buffer ran 9-13% below the same reads inside a running
 * process in the same minute, now and then at half speed (session 15, engine
 * M: bench/results/engine-s15-m/reads.txt), so a one-pass read right after
 * start-up, as bench_engine.py's paired reads are, measured the start-up and
 * not the memory, and made decode's share look higher than it was. */
#include <stdio.h>
#include <stdlib.h>

#include "membw_read.h"

int main(int argc, char **argv) {
    const int threads = argc > 1 ? atoi(argv[1]) : 2;
    const double mib = argc > 2 ? atof(argv[2]) : 1024;
    const int passes = argc > 3 ? atoi(argv[3]) : 10;
    const int warmup = argc > 4 ? atoi(argv[4]) : 3;
    if (threads < 1 || threads > 256 || mib <= 0 || passes < 1 || warmup < 0 || warmup > 100) {
        fprintf(stderr, "usage: bench_membw [threads 1..256] [MiB > 0] [passes >= 1] [warm-up passes 0..100]\n");
        return 2;
    }
    pc_pool *pool = pc_pool_create(threads);
    pc_membw m;
    if (!pool || pc_membw_init(&m, (size_t)(mib * 1048576.0), pool, threads) != 0) {
        fprintf(stderr, "bench_membw: out of memory for %.1f MiB or threads\n", mib);
        return 1;
    }
    for (int p = 0; p < 2 * warmup; p++) (void)pc_membw_pass(&m, p & 1);
    double best[2] = {0, 0};
    for (int p = 0; p < 2 * passes; p++) {
        const int prefetch = p & 1;
        const double gbs = (double)m.bytes / pc_membw_pass(&m, prefetch) * 1e-9;
        best[prefetch] = gbs > best[prefetch] ? gbs : best[prefetch];
    }
    printf("{\"threads\": %d, \"bytes\": %zu, \"passes\": %d, \"warmup\": %d, \"plain_gb_s\": %.3f, "
           "\"prefetch_gb_s\": %.3f, \"best_gb_s\": %.3f, \"huge_page_mib\": %.0f, \"check\": %llu}\n",
           threads, m.bytes, passes, warmup, best[0], best[1], best[1] > best[0] ? best[1] : best[0],
           pc_membw_huge_page_mib(), (unsigned long long)(m.check & 0xFF));
    pc_membw_free(&m);
    pc_pool_free(pool);
    return 0;
}
