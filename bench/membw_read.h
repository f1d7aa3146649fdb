/* membw_read.h - the streaming read that measures this machine's memory read
 * bandwidth with a given thread pool: the decode limit's denominator.
 *
 * Shared by bench_membw (the bandwidth alone) and bench_decode_paired (reads
 * between windows of decode tokens), so both measure the same read. */
#ifndef PC_BENCH_MEMBW_READ_H
#define PC_BENCH_MEMBW_READ_H

#include <stddef.h>
#include <stdint.h>

#include "util/threadpool.h"

typedef struct pc_membw {
    uint8_t *buf;
    size_t bytes; /* rounded up to whole 2 MiB pages */
    int threads;
    pc_pool *pool; /* borrowed: the threads the read runs on */
    uint64_t check; /* every pass's sums folded in, so no read can be optimized away */
} pc_membw;

/* A buffer of at least `bytes` bytes, allocated like the engine's packed
 * weights (2 MiB aligned, MADV_HUGEPAGE) and written once so every page is
 * resident before any pass is timed. Returns 0, or -1 when out of memory. */
int pc_membw_init(pc_membw *m, size_t bytes, pc_pool *pool, int threads);
void pc_membw_free(pc_membw *m);

/* Seconds for one pass over the whole buffer, each of `threads` tasks a
 * contiguous share: a plain read of every 64-byte line, or (prefetch) the same
 * read asking for the line 4 KiB ahead into L2, as the decode kernels read. */
double pc_membw_pass(pc_membw *m, int prefetch);

/* One sample of the bandwidth in GB/s (10^9 bytes/s): a plain and a
 * prefetching pass, the faster of the two (bench_engine.py's one-pass read). */
double pc_membw_sample(pc_membw *m);

/* MiB of this process's anonymous memory in huge pages (0 when the kernel gave none). */
double pc_membw_huge_page_mib(void);

#endif
