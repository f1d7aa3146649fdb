/* bench_matmul.c - GFLOP/s of pc_matmul on SmolLM2-135M's shapes.
 *
 * Not a test: a tool, built with the project (cmake --build build) as
 * build/bench_matmul.
 * Usage: bench_matmul [threads] [seconds per case]. Prints, per shape, the
 * rate for n_tok = 1 and 128 on the best ISA path and on the scalar path, and
 * their ratio. FLOPs are 2 * n_in * n_out * n_tok (quantizing x included);
 * each rate is the best of 5 short windows. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "kernels/cpu/matmul.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct shape { const char *name; pc_type wt; int64_t n_in, n_out; } shape;

/* GFLOP/s of pc_matmul: the best of 5 windows of secs/5 each, since the
 * machine is shared and the best window is the least disturbed one. */
static double rate(pc_pool *pool, pc_matmul_args *a, double secs) {
    const double flop = 2.0 * (double)a->n_in * (double)a->n_out * (double)a->n_tok;
    double best = 0;
    pc_matmul(pool, a); /* warm caches and the pool */
    for (int win = 0; win < 5; win++) {
        int reps = 0;
        const double t0 = now();
        double t = t0;
        while (t - t0 < secs / 5) {
            pc_matmul(pool, a);
            reps++;
            t = now();
        }
        const double g = flop * reps / (t - t0) * 1e-9;
        best = g > best ? g : best;
    }
    return best;
}

/* Decode's Q, K and V projections (576->576, 576->192, 576->192, Q4_1) as
 * three pc_matmul calls and as one pc_matmul_batch: the batch quantizes x
 * once and synchronizes the pool once. Prints microseconds per step. */
static void bench_qkv(pc_pool *pool, pc_isa isa, double secs) {
    enum { N_IN = 576 };
    static const int64_t n_out[3] = {576, 192, 192};
    const size_t wrow = pc_row_size(PC_TYPE_Q4_1, N_IN);
    float row[N_IN], x[N_IN], *y[3];
    pc_matmul_args a[3];
    void *scratch = aligned_alloc(64, 1024);
    for (int i = 0; i < N_IN; i++) x[i] = (float)(i % 13) / 13.f - 0.4f;
    for (int m = 0; m < 3; m++) {
        unsigned char *w = malloc(wrow * (size_t)n_out[m]);
        for (int64_t o = 0; o < n_out[m]; o++) {
            for (int i = 0; i < N_IN; i++) row[i] = (float)((o * 7 + i * 5 + m) % 89) / 89.f - 0.5f;
            pc_quantize_row(PC_TYPE_Q4_1, row, w + o * wrow, N_IN);
        }
        y[m] = malloc(sizeof(float) * (size_t)n_out[m]);
        a[m] = (pc_matmul_args){.wt = PC_TYPE_Q4_1, .w = w, .n_in = N_IN, .n_out = n_out[m], .x = x, .n_tok = 1,
                                .y = y[m], .scratch = scratch, .isa = isa};
    }
    double best[2] = {1e9, 1e9};
    for (int win = 0; win < 10; win++)
        for (int mode = 0; mode < 2; mode++) {
            int reps = 0;
            const double t0 = now();
            double t = t0;
            while (t - t0 < secs / 20) {
                if (mode == 0)
                    for (int m = 0; m < 3; m++) pc_matmul(pool, &a[m]);
                else
                    pc_matmul_batch(pool, a, 3);
                reps++;
                t = now();
            }
            const double us = (t - t0) / reps * 1e6;
            best[mode] = us < best[mode] ? us : best[mode];
        }
    printf("qkv decode step: 3 calls %.2f us, 1 batch %.2f us, ratio %.2f\n", best[0], best[1], best[0] / best[1]);
    for (int m = 0; m < 3; m++) {
        free((void *)a[m].w);
        free(y[m]);
    }
    free(scratch);
}

int main(int argc, char **argv) {
    const int threads = argc > 1 ? atoi(argv[1]) : 2;
    const double secs = argc > 2 ? atof(argv[2]) : 0.3;
    static const shape shapes[] = {
        {"attn q/o 576->576", PC_TYPE_Q4_1, 576, 576},   {"attn k/v 576->192", PC_TYPE_Q4_1, 576, 192},
        {"ffn up 576->1536", PC_TYPE_Q4_1, 576, 1536},   {"ffn down 1536->576", PC_TYPE_Q4_1, 1536, 576},
        {"output 576->49152", PC_TYPE_Q8_0, 576, 49152},
    };
    pc_pool *pool = pc_pool_create(threads);
    if (!pool) return 1;
    const pc_isa best = pc_isa_detect();
    printf("threads %d, isa %s; GFLOP/s (ratio = %s / scalar)\n", threads, pc_isa_name(best), pc_isa_name(best));
    printf("%-22s %5s %10s %10s %7s\n", "shape", "n_tok", "simd", "scalar", "ratio");
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const shape *sh = &shapes[s];
        const int tok_list[2] = {1, 128};
        for (int k = 0; k < 2; k++) {
            const int64_t n_tok = tok_list[k];
            if (sh->n_out > 10000 && n_tok > 1) continue; /* the head runs for the last token only */
            float *row = malloc(sizeof(float) * (size_t)sh->n_in);
            const size_t wrow = pc_row_size(sh->wt, sh->n_in);
            unsigned char *w = malloc(wrow * (size_t)sh->n_out);
            for (int64_t o = 0; o < sh->n_out; o++) {
                for (int64_t i = 0; i < sh->n_in; i++) row[i] = (float)((o * 31 + i * 17) % 97) / 97.f - 0.5f;
                pc_quantize_row(sh->wt, row, w + o * wrow, sh->n_in);
            }
            float *x = malloc(sizeof(float) * (size_t)(sh->n_in * n_tok));
            for (int64_t i = 0; i < sh->n_in * n_tok; i++) x[i] = (float)(i % 13) / 13.f - 0.4f;
            float *y = malloc(sizeof(float) * (size_t)(sh->n_out * n_tok));
            const size_t ss = pc_matmul_scratch_size(sh->wt, sh->n_in, n_tok);
            void *scratch = aligned_alloc(64, (ss + 63) / 64 * 64);
            pc_matmul_args a = {.wt = sh->wt, .w = w, .n_in = sh->n_in, .n_out = sh->n_out, .x = x,
                                .n_tok = n_tok, .y = y, .scratch = scratch, .isa = best};
            const double simd = rate(pool, &a, secs);
            a.isa = PC_ISA_SCALAR;
            const double scalar = rate(pool, &a, secs / 3);
            printf("%-22s %5lld %10.1f %10.1f %7.1f\n", sh->name, (long long)n_tok, simd, scalar, simd / scalar);
            free(row);
            free(w);
            free(x);
            free(y);
            free(scratch);
        }
    }
    bench_qkv(pool, best, secs);
    pc_pool_free(pool);
    return 0;
}
