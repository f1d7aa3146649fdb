/* matmul.c - y = x W^T over quantized weights, split over the thread pool.
 *
 * Two phases: x's rows are quantized once into the caller's scratch (tokens
 * split over threads), then each task owns a disjoint range of output rows
 * and walks it in tiles of tile_r rows x tile_c tokens. Invariants:
 *   1. y[t][o] is written by exactly one task, by the kernel's tile or dot,
 *      and a tile's outputs are bitwise its dot's (quant_impl.h) - so y does
 *      not depend on n_tok, the tiling, edge tiles or the thread count.
 *   2. No allocation; all state lives on the stack or in the scratch.
 * Loop order keeps weights hot: tokens go in blocks small enough for their
 * quantized rows to stay in L2, and within a block the few weight rows of a
 * tile stay in L1 while every token tile passes over them. */
#include "kernels/cpu/matmul.h"

#include "kernels/cpu/quant_impl.h"

enum {
    TOKEN_BLOCK = 64,    /* tokens per block: 64 quantized rows of n_in = 1536 are ~110 KB */
    TASKS_PER_THREAD = 4 /* enough tasks that an unlucky thread does not finish last by much */
};

typedef struct mm_ctx {
    const pc_matmul_args *a;
    pc_dot_kernel k;
    pc_type xt;          /* the activation type */
    const uint8_t *xq;   /* n_tok rows of x_row bytes */
    size_t w_row, x_row; /* bytes per weight row, per quantized activation row */
    int64_t rows_per_task, toks_per_task;
} mm_ctx;

size_t pc_matmul_scratch_size(pc_type wt, int64_t n_in, int64_t n_tok) {
    const pc_type xt = pc_vec_dot_type(wt);
    if (xt == PC_TYPE_COUNT || n_tok < 0) return 0;
    return pc_row_size(xt, n_in) * (size_t)n_tok;
}

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

static void quant_task(void *ctx, int task, int n_tasks, int thread) {
    (void)n_tasks;
    (void)thread;
    const mm_ctx *m = ctx;
    const int64_t t0 = task * m->toks_per_task, t1 = min64(t0 + m->toks_per_task, m->a->n_tok);
    for (int64_t t = t0; t < t1; t++)
        pc_quantize_row(m->xt, m->a->x + t * m->a->n_in, (uint8_t *)m->a->scratch + t * m->x_row, m->a->n_in);
}

/* Outputs for weight rows [o, o+nr) and tokens [t, t+nc). */
static void mm_tile(const mm_ctx *m, int64_t o, int nr, int64_t t, int nc) {
    const pc_matmul_args *a = m->a;
    const uint8_t *w = (const uint8_t *)a->w + o * m->w_row;
    const uint8_t *x = m->xq + t * m->x_row;
    float *y = a->y + t * a->n_out + o;
    if (m->k.tile) {
        m->k.tile(a->n_in, w, m->w_row, nr, x, m->x_row, nc, y, (size_t)a->n_out);
        return;
    }
    for (int c = 0; c < nc; c++)
        for (int r = 0; r < nr; r++) m->k.dot(a->n_in, y + c * a->n_out + r, w + r * m->w_row, x + c * m->x_row);
}

static void mm_task(void *ctx, int task, int n_tasks, int thread) {
    (void)n_tasks;
    (void)thread;
    const mm_ctx *m = ctx;
    const pc_matmul_args *a = m->a;
    const int64_t o0 = task * m->rows_per_task, o1 = min64(o0 + m->rows_per_task, a->n_out);
    for (int64_t tb = 0; tb < a->n_tok; tb += TOKEN_BLOCK) {
        const int64_t te = min64(tb + TOKEN_BLOCK, a->n_tok);
        for (int64_t o = o0; o < o1; o += m->k.tile_r) {
            const int nr = (int)min64(m->k.tile_r, o1 - o);
            for (int64_t t = tb; t < te; t += m->k.tile_c) mm_tile(m, o, nr, t, (int)min64(m->k.tile_c, te - t));
        }
    }
}

static void run(pc_pool *pool, pc_task_fn fn, mm_ctx *m, int n_tasks) {
    if (pool && n_tasks > 1) {
        pc_pool_run(pool, fn, m, n_tasks);
        return;
    }
    for (int i = 0; i < n_tasks; i++) fn(m, i, n_tasks, 0);
}

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* Quantizes x into scratch (or reads F32 in place); tokens split over threads. */
static void quantize_x(pc_pool *pool, mm_ctx *m, int threads) {
    const pc_matmul_args *a = m->a;
    if (m->xt == PC_TYPE_F32) {
        m->xq = (const uint8_t *)a->x;
        return;
    }
    m->xq = a->scratch;
    const int n_tasks = a->n_tok > 1 ? (int)min64(a->n_tok, threads) : 1;
    m->toks_per_task = ceil_div(a->n_tok, n_tasks);
    run(pool, quant_task, m, (int)ceil_div(a->n_tok, m->toks_per_task));
}

bool pc_matmul(pc_pool *pool, const pc_matmul_args *a) {
    mm_ctx m = {.a = a, .xt = pc_vec_dot_type(a->wt)};
    if (m.xt == PC_TYPE_COUNT || !pc_dot_kernel_get(a->wt, a->isa, &m.k)) return false;
    m.w_row = pc_row_size(a->wt, a->n_in);
    m.x_row = pc_row_size(m.xt, a->n_in);
    if (a->n_in <= 0 || m.w_row == 0 || m.x_row == 0 || a->n_out < 0 || a->n_tok < 0) return false;
    if (a->n_out == 0 || a->n_tok == 0) return true;
    if (m.xt != PC_TYPE_F32 && !a->scratch) return false;

    const int threads = pool ? pc_pool_size(pool) : 1;
    quantize_x(pool, &m, threads);
    /* Whole tiles per task, so only the last task can have a ragged row edge. */
    const int64_t want = (int64_t)threads * TASKS_PER_THREAD;
    m.rows_per_task = ceil_div(ceil_div(a->n_out, want), m.k.tile_r) * m.k.tile_r;
    run(pool, mm_task, &m, (int)ceil_div(a->n_out, m.rows_per_task));
    return true;
}
