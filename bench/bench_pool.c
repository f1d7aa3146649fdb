/* bench_pool.c - what one thread-pool job costs: the synchronisation a decode step pays per product.
 *
 * Not a test: a tool, built with the project as build/bench_pool.
 * Usage: bench_pool [threads] [work_us]. SmolLM2's decode issues ~210 pool
 * jobs per token of ~15 us each (its weights sit in L3), so a fixed cost per
 * job or per task is a share of its step that no kernel speed recovers. Prints,
 * each the median of 9 windows of 2000 jobs:
 *   - an empty job of n tasks (n = threads ... 32): publishing the job, waking
 *     the spinning workers, the claims and the caller's wait for the last task;
 *   - work_us (default 15) of compute per job split into n tasks, against the
 *     same compute run serially divided by threads (the ideal), so the extra
 *     microseconds are what one job costs on top of its work.
 * The compute is a chain of float multiply-adds on registers, so memory does not
 * enter; medians because a shared machine only ever slows a window down. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "util/threadpool.h"

enum { JOBS = 2000, WINDOWS = 9 };

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct work {
    long iters;       /* multiply-add steps per task */
    float sink[256];  /* one per task, so the compute is kept */
} work;

static float spin(long iters, float seed) {
    float a = seed, b = 1.0f + seed * 1e-3f;
    for (long i = 0; i < iters; i++) a = a * 0.999999f + b;
    return a;
}

static void work_task(void *ctx, int task, int n_tasks, int thread) {
    (void)n_tasks;
    (void)thread;
    work *w = ctx;
    w->sink[task & 255] = spin(w->iters, (float)task);
}

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Microseconds per pc_pool_run of n tasks of iters steps each: median of WINDOWS. */
static double us_per_job(pc_pool *pool, work *w, int n, long iters) {
    double t[WINDOWS];
    w->iters = iters;
    pc_pool_run(pool, work_task, w, n); /* the workers are awake and spinning */
    for (int k = 0; k < WINDOWS; k++) {
        const double t0 = now();
        for (int j = 0; j < JOBS; j++) pc_pool_run(pool, work_task, w, n);
        t[k] = (now() - t0) / JOBS * 1e6;
    }
    qsort(t, WINDOWS, sizeof t[0], cmp_double);
    return t[WINDOWS / 2];
}

/* Multiply-add steps per microsecond on one thread (median of WINDOWS). */
static double steps_per_us(void) {
    double r[WINDOWS];
    const long steps = 2000000;
    volatile float keep = 0;
    for (int k = 0; k < WINDOWS; k++) {
        const double t0 = now();
        keep = keep + spin(steps, (float)k);
        r[k] = (double)steps / ((now() - t0) * 1e6);
    }
    qsort(r, WINDOWS, sizeof r[0], cmp_double);
    return r[WINDOWS / 2];
}

int main(int argc, char **argv) {
    const int threads = argc > 1 ? atoi(argv[1]) : 2;
    const double work_us = argc > 2 ? atof(argv[2]) : 15.0;
    if (threads < 2 || work_us <= 0) {
        fprintf(stderr, "usage: bench_pool [threads >= 2] [work_us > 0]\n");
        return 2;
    }
    pc_pool *pool = pc_pool_create(threads);
    work *w = calloc(1, sizeof *w);
    if (!pool || !w) {
        fprintf(stderr, "bench_pool: out of memory creating a pool of %d threads\n", threads);
        return 1;
    }
    const double rate = steps_per_us();
    printf("%d threads; one thread runs %.0f multiply-add steps per us\n", threads, rate);
    printf("%-7s %-14s %-22s %-14s %s\n", "tasks", "empty job us", "job of work us", "ideal us", "extra us");
    for (int n = threads; n <= 32; n *= 2) {
        const double empty = us_per_job(pool, w, n, 0);
        const long iters = (long)(work_us * rate / n);
        const double full = us_per_job(pool, w, n, iters);
        const double ideal = (double)iters * n / rate / threads;
        printf("%-7d %-14.3f %-22.3f %-14.3f %.3f\n", n, empty, full, ideal, full - ideal);
    }
    pc_pool_free(pool);
    free(w);
    return 0;
}
