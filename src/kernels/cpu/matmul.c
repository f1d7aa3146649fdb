/* matmul.c - y = x W^T over quantized weights, split over the thread pool.
 *
 * Two phases: x's rows are quantized once into the caller's scratch (tokens
 * split over threads), and laid out for the packed kernels when a member has
 * packed weights; then each task owns a disjoint range of output rows of one
 * matrix and walks it in tiles: a packed row group (16 rows) x the kernel's
 * token tile, or one row x one token with the dot product. A batch of
 * matrices reading the same x shares the quantized x and one pool job.
 * Invariants:
 *   1. y[t][o] is written by exactly one task, by the packed kernel or the dot,
 *      which give the same bits (quant_impl.h) - so y does not depend on n_tok,
 *      the tiling, edge tiles, packing, batching or threads.
 *   2. No allocation; all state lives on the stack or in the scratch.
 * Loop order keeps weights hot: tokens go in blocks small enough for their
 * quantized rows to stay in L2, and within a block the weights of a row group
 * stay in L1 while every token tile passes over them. */
#include "kernels/cpu/matmul.h"

#include "kernels/cpu/ops.h"
#include "kernels/cpu/pack.h"
#include "kernels/cpu/quant_impl.h"

enum {
    TOKEN_BLOCK = 64,     /* the fewest tokens per block (when X_BLOCK_BYTES holds fewer rows) */
    X_BLOCK_BYTES = 1 << 20, /* a block's activations, L2-resident beside the prepared group: every
                              * block re-reads (and re-prepares) all the weights, so blocks go as long
                              * as L2 allows; 136 tokens of n_in = 8960 are 2 blocks, not 3 */
    TASKS_PER_THREAD = 4, /* enough tasks that an unlucky thread does not finish last by much */
    DECODE_TASKS_PER_THREAD = 8, /* one token, the most: a thread's last task is all the other waits for */
    DECODE_TASK_BYTES = 256 << 10, /* one token, the fewest weight bytes a task is given (decode_tasks) */
    GUIDED_DIV = 2,               /* one token: a task takes 1 / (GUIDED_DIV * threads) of what is left (plan_guided) */
    GUIDED_MIN_BYTES = 32 << 10,  /* and at least this many weight bytes */
    GUIDED_MAX = 96,              /* the most tasks of a guided job; a job needing more splits evenly */
    GUIDED_FROM_BYTES = 2 << 20,  /* one token: jobs of fewer weight bytes split evenly (mm_plan_tasks) */
    PREP_MIN_TOKENS = 16, /* a token block this long may pay for preparing a row group (prep_pays) */
    PREP_MIN_TILES = 4,   /* and one of this many token tiles (see prep_pays) */
    PREP_BYTES = 256 << 10 /* the largest prepared row group, on the task's stack: 16 rows of n_in <= ~12k */
};

typedef struct mm_mat {
    const pc_matmul_args *a;
    pc_dot_kernel k;
    size_t w_row;          /* bytes per weight row */
    size_t group;          /* packed: bytes per row group; 0: the dot per output */
    size_t prep;           /* bytes of a prepared row group; 0: token tiles read the packed group directly */
    int tile_r, tile_c;    /* rows x tokens per kernel call */
    int64_t rows_per_task; /* a multiple of tile_r */
    int first_task;        /* tasks [first_task, first_task + ceil(n_out / rows_per_task)) */
} mm_mat;

typedef struct mm_ctx {
    const pc_matmul_args *a; /* the first of the batch: x, n_in, n_tok, scratch */
    pc_type xt;              /* the activation type */
    pc_quant_fn quant;       /* NULL: pc_quantize_row */
    const uint8_t *xq;       /* n_tok rows of x_row bytes */
    size_t x_row;
    uint8_t *xp;             /* n_tok rows of xp_row bytes (pack.h's pc_xp_*); NULL: no member is packed */
    size_t xp_row;
    int64_t toks_per_task;
    int64_t tok_block;       /* tokens per block, a multiple of the token tile where there are several */
    mm_mat mats[PC_MATMUL_MAX_BATCH];
    int n_mats;
    /* A one-token job's tasks, when guided_tasks > 0 (plan_guided): task t takes
     * rows [task_row[t], task_row[t + 1]) of member task_mat[t] (the end being
     * that member's n_out where task t + 1 starts the next member). */
    int guided_tasks;
    int64_t task_row[GUIDED_MAX];
    int8_t task_mat[GUIDED_MAX];
    /* Epilogues, run by the task that wrote the rows, so they cost no pool job
     * of their own: acc += y (a residual add), or paired mode (two matrices of
     * the same shape, each task the same rows of both) with gate = swiglu(gate, up). */
    float *acc;
    bool paired;
    /* Or the caller's epilogue over each task's rows (pc_matmul_batch_then),
     * whose tasks then hold whole multiples of `align` rows. */
    pc_matmul_epi epi;
    void *epi_ctx;
    int64_t align;
} mm_ctx;

/* The packed activations follow the quantized rows, 64-byte aligned. */
static size_t xp_offset(pc_type xt, int64_t n_in, int64_t n_tok) {
    return (pc_row_size(xt, n_in) * (size_t)n_tok + 63) & ~(size_t)63;
}

size_t pc_matmul_scratch_size(pc_type wt, int64_t n_in, int64_t n_tok) {
    const pc_type xt = pc_vec_dot_type(wt);
    if (xt == PC_TYPE_COUNT || n_tok < 0) return 0;
    return xp_offset(xt, n_in, n_tok) + pc_xp_row_size(xt, n_in) * (size_t)n_tok;
}

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
static int64_t gcd64(int64_t a, int64_t b) { return b ? gcd64(b, a % b) : a; }
static int64_t lcm64(int64_t a, int64_t b) { return a / gcd64(a, b) * b; }

static void quant_task(void *ctx, int task, int n_tasks, int thread) {
    (void)n_tasks;
    (void)thread;
    const mm_ctx *m = ctx;
    const int64_t t0 = task * m->toks_per_task, t1 = min64(t0 + m->toks_per_task, m->a->n_tok);
    for (int64_t t = t0; t < t1; t++) {
        const float *src = m->a->x + t * m->a->n_in;
        uint8_t *dst = (uint8_t *)m->a->scratch + t * m->x_row;
        if (m->quant)
            m->quant(src, dst, m->a->n_in);
        else
            pc_quantize_row(m->xt, src, dst, m->a->n_in);
        if (m->xp) pc_xp_row(m->xt, dst, m->xp + t * m->xp_row, m->a->n_in);
    }
}

/* Outputs of matrix mt for weight rows [o, o+nr) and tokens [t, t+nc). */
static void mm_tile(const mm_ctx *m, const mm_mat *mt, int64_t o, int nr, int64_t t, int nc) {
    const pc_matmul_args *a = mt->a;
    float *y = a->y + t * a->n_out + o;
    if (mt->group) {
        const uint8_t *w = (const uint8_t *)a->packed + (size_t)(o / PC_PACK_ROWS) * mt->group;
        mt->k.gemm(a->n_in, w, m->xp + t * m->xp_row, m->xp_row, nc, y, (size_t)a->n_out, nr);
        return;
    }
    const uint8_t *w = (const uint8_t *)a->w + o * mt->w_row;
    const uint8_t *x = m->xq + t * m->x_row;
    for (int c = 0; c < nc; c++)
        for (int r = 0; r < nr; r++) mt->k.dot(a->n_in, y + c * a->n_out + r, w + r * mt->w_row, x + c * m->x_row);
}

/* Whether preparing a row group pays for a block of n tokens. Preparing
 * reads the packed group from memory and stores its unpacked copy, and the
 * tiles then compute from cache; the direct kernel streams the group with its
 * prefetch and unpacks it again for every tile. On the 1.5B model beside a
 * 540-token prefix (pcache run, 2 threads, AVX-512) 24 fresh tokens (3 tiles)
 * ran ~15% faster direct, 35 and 52 (5 and 7 tiles) ~5% faster prepared. */
static bool prep_pays(const mm_mat *mt, int64_t n) {
    return n >= PREP_MIN_TOKENS && n >= (int64_t)(PREP_MIN_TILES - 1) * mt->k.gemm_tokens + 1;
}

/* Rows [o, o+nr) of a packed matrix for the tokens [tb, te) of a block:
 * prepared once, then every token tile reads the prepared group. */
static void mm_prepared(const mm_ctx *m, const mm_mat *mt, int64_t o, int nr, int64_t tb, int64_t te, uint8_t *prep) {
    const pc_matmul_args *a = mt->a;
    mt->k.prep(a->n_in, (const uint8_t *)a->packed + (size_t)(o / PC_PACK_ROWS) * mt->group, prep);
    for (int64_t t = tb; t < te; t += mt->tile_c)
        mt->k.gemm_prep(a->n_in, prep, m->xp + t * m->xp_row, m->xp_row, (int)min64(mt->tile_c, te - t),
                        a->y + t * a->n_out + o, (size_t)a->n_out, nr);
}

/* Rows [o0, o1) of matrix mt as the bytes mm_rows reads. */
static pc_wspan rows_span(const mm_mat *mt, int64_t o0, int64_t o1) {
    if (mt->group)
        return (pc_wspan){(const uint8_t *)mt->a->packed + (size_t)(o0 / PC_PACK_ROWS) * mt->group,
                          (size_t)ceil_div(o1 - o0, PC_PACK_ROWS) * mt->group};
    return (pc_wspan){(const uint8_t *)mt->a->w + (size_t)o0 * mt->w_row, (size_t)(o1 - o0) * mt->w_row};
}

/* The direct kernels prefetch PC_PACK_PREFETCH bytes past the block they
 * read (Q6_K's one-token kernel PC_PACK_PREFETCH_Q6_K_ONE); the first that many
 * bytes of a task's rows are asked for here, since they come from wherever the
 * previous task of this thread ended. */
static void prefetch_start(const mm_mat *mt, int64_t o0, int64_t o1) {
    const pc_wspan s = rows_span(mt, o0, o1);
    const size_t ahead = mt->a->wt == PC_TYPE_Q6_K && mt->a->n_tok == 1 ? PC_PACK_PREFETCH_Q6_K_ONE : PC_PACK_PREFETCH;
    for (size_t l = 0; l < s.bytes && l < ahead; l += 64) __builtin_prefetch(s.p + l, 0, 2);
}

/* Rows [o0, o1) of matrix mt for every token. */
static void mm_rows(const mm_ctx *m, const mm_mat *mt, int64_t o0, int64_t o1, uint8_t *prep) {
    const int64_t n_tok = m->a->n_tok, tile_r = mt->tile_r, tile_c = mt->tile_c;
    if (mt->group && !mt->prep && o0 < o1) prefetch_start(mt, o0, o1);
    for (int64_t tb = 0; tb < n_tok; tb += m->tok_block) {
        const int64_t te = min64(tb + m->tok_block, n_tok);
        for (int64_t o = o0; o < o1; o += tile_r) {
            const int nr = (int)min64(tile_r, o1 - o);
            if (mt->prep && prep_pays(mt, te - tb)) {
                mm_prepared(m, mt, o, nr, tb, te, prep);
                continue;
            }
            for (int64_t t = tb; t < te; t += tile_c) mm_tile(m, mt, o, nr, t, (int)min64(tile_c, te - t));
        }
    }
}

/* Element-wise, so the bits are those of the op run over whole rows afterwards. */
static void mm_epilogue(const mm_ctx *m, int64_t o0, int64_t o1) {
    const pc_matmul_args *a = m->mats[0].a;
    const pc_swiglu_fn swiglu = pc_swiglu_for(a->isa);
    for (int64_t t = 0; t < a->n_tok && o0 < o1; t++) {
        float *y = a->y + t * a->n_out + o0;
        if (m->acc) pc_add(m->acc + t * a->n_out + o0, y, o1 - o0);
        if (m->paired) swiglu(y, m->mats[1].a->y + t * a->n_out + o0, o1 - o0);
    }
}

/* Rows [o0, o1) of member i (and of the second member in paired mode), then the epilogues of those rows. */
static void mm_member_rows(const mm_ctx *m, int i, int64_t o0, int64_t o1) {
    const mm_mat *mt = &m->mats[i];
    _Alignas(64) uint8_t prep[PREP_BYTES]; /* used only when mt->prep */
    mm_rows(m, mt, o0, o1, prep);
    if (m->paired) mm_rows(m, &m->mats[1], o0, o1, prep);
    if (m->acc || m->paired) mm_epilogue(m, o0, o1);
    if (m->epi && o0 < o1) m->epi(m->epi_ctx, i, o0, o1);
}

static void mm_task(void *ctx, int task, int n_tasks, int thread) {
    (void)n_tasks;
    (void)thread;
    const mm_ctx *m = ctx;
    int i = m->paired ? 0 : m->n_mats - 1;
    int64_t o0, o1;
    if (m->guided_tasks) {
        i = m->task_mat[task];
        o0 = m->task_row[task];
        o1 = task + 1 < m->guided_tasks && m->task_mat[task + 1] == i ? m->task_row[task + 1] : m->mats[i].a->n_out;
    } else {
        while (m->mats[i].first_task > task) i--;
        o0 = (task - m->mats[i].first_task) * m->mats[i].rows_per_task;
        o1 = min64(o0 + m->mats[i].rows_per_task, m->mats[i].a->n_out);
    }
    mm_member_rows(m, i, o0, o1);
}

static void run(pc_pool *pool, pc_task_fn fn, mm_ctx *m, int n_tasks) {
    if (pool && n_tasks > 1) {
        pc_pool_run(pool, fn, m, n_tasks);
        return;
    }
    for (int i = 0; i < n_tasks; i++) fn(m, i, n_tasks, 0);
}

/* Quantizes x into scratch (or reads F32 in place); tokens split over threads. */
static void quantize_x(pc_pool *pool, mm_ctx *m, int threads) {
    const pc_matmul_args *a = m->a;
    if (m->xt == PC_TYPE_F32) {
        m->xq = (const uint8_t *)a->x;
        return;
    }
    m->xq = a->scratch;
    if (a->x_ready) return;
    const int n_tasks = a->n_tok > 1 ? (int)min64(a->n_tok, threads) : 1;
    m->toks_per_task = ceil_div(a->n_tok, n_tasks);
    run(pool, quant_task, m, (int)ceil_div(a->n_tok, m->toks_per_task));
}

/* How member mt runs: the packed kernel over row groups when the path has one
 * and the caller packed the weights, else the dot per output. */
static void mm_choose(mm_mat *mt) {
    const pc_matmul_args *a = mt->a;
    mt->group = mt->prep = 0;
    mt->tile_r = mt->tile_c = 1;
    if (!a->packed || !mt->k.gemm) return;
    mt->group = pc_pack_size(a->wt, a->n_in, PC_PACK_ROWS);
    mt->tile_r = PC_PACK_ROWS;
    mt->tile_c = mt->k.gemm_tokens;
    const size_t prep = mt->k.prep_block * (size_t)(a->n_in / pc_type_get(a->wt)->block_size);
    if (mt->k.prep && prep_pays(mt, a->n_tok) && prep <= PREP_BYTES) mt->prep = prep;
}

/* Fills m from the batch; false if any member is unusable or they disagree on x. */
static bool mm_setup(mm_ctx *m, const pc_matmul_args *a, int n) {
    if (n < 1 || n > PC_MATMUL_MAX_BATCH) return false;
    m->a = a;
    m->n_mats = n;
    m->xt = pc_vec_dot_type(a[0].wt);
    m->x_row = pc_row_size(m->xt, a[0].n_in);
    m->xp = NULL;
    m->xp_row = pc_xp_row_size(m->xt, a[0].n_in);
    m->acc = NULL;
    m->paired = false;
    m->epi = NULL;
    m->epi_ctx = NULL;
    m->align = 1;
    if (m->xt == PC_TYPE_COUNT || m->x_row == 0 || a[0].n_in <= 0 || a[0].n_tok < 0) return false;
    for (int i = 0; i < n; i++) {
        mm_mat *mt = &m->mats[i];
        mt->a = &a[i];
        mt->w_row = pc_row_size(a[i].wt, a[i].n_in);
        if (a[i].x != a[0].x || a[i].n_in != a[0].n_in || a[i].n_tok != a[0].n_tok || a[i].isa != a[0].isa ||
            pc_vec_dot_type(a[i].wt) != m->xt || mt->w_row == 0 || a[i].n_out < 0 ||
            !pc_dot_kernel_get(a[i].wt, a[i].isa, &mt->k))
            return false;
        mm_choose(mt);
        if (mt->group && m->xp_row)
            m->xp = (uint8_t *)a[0].scratch + xp_offset(m->xt, a[0].n_in, a[0].n_tok);
        else if (mt->group)
            return false; /* a packed kernel always reads packed activations */
    }
    m->quant = m->mats[0].k.quant; /* every quantizer of xt writes the same bytes */
    return m->xt == PC_TYPE_F32 || a[0].scratch != NULL;
}

/* Weight bytes of a job (of both members in paired mode). */
static int64_t job_bytes(const mm_ctx *m) {
    int64_t bytes = 0;
    for (int i = 0; i < m->n_mats; i++) bytes += m->mats[i].a->n_out * (int64_t)m->mats[i].w_row;
    return bytes;
}

/* Tasks per thread of a one-token job that plan_guided does not take (one
 * thread, too many tasks, or below GUIDED_FROM_BYTES): one per DECODE_TASK_BYTES of weights,
 * 1 to DECODE_TASKS_PER_THREAD. Each task costs a claim on a line both cores
 * write and a cold start of its stream; more tasks shorten the wait for the
 * last one. SmolLM2's jobs (0.2-1.1 MB, from L3) decoded 342 tok/s at 8 tasks
 * per thread, 349 at 4 and 358 at 2 (6 rounds alternating, 2 threads); the
 * 1.5B model's jobs (1.3-15 MB, from memory) kept 8 within the noise. */
static int64_t decode_tasks(const mm_ctx *m, int threads) {
    const int64_t per = job_bytes(m) / ((int64_t)threads * DECODE_TASK_BYTES);
    return per < 1 ? 1 : per > DECODE_TASKS_PER_THREAD ? DECODE_TASKS_PER_THREAD : per;
}

/* Weight bytes of one row of member i (both members' in paired mode, whose tasks take the same rows of each). */
static int64_t row_bytes(const mm_ctx *m, int i) {
    return (int64_t)m->mats[i].w_row + (m->paired ? (int64_t)m->mats[1].w_row : 0);
}

/* The fewest rows a task of member i may take: whole row tiles of its packing
 * (of both members in paired mode, whose tasks take the same rows of each),
 * aligned as the caller asked. Tiles are 1 or PC_PACK_ROWS. */
static int64_t row_unit(const mm_ctx *m, int i) {
    const int64_t tile = m->paired && m->mats[1].tile_r > m->mats[0].tile_r ? m->mats[1].tile_r : m->mats[i].tile_r;
    return lcm64(tile, m->align);
}

/* A one-token job as guided tasks: each takes 1 / (GUIDED_DIV * threads) of
 * the job's bytes still unassigned when it starts (whole units of rows, at
 * least GUIDED_MIN_BYTES), in row order over the members. The first tasks are
 * long streams and the last ones short, so the thread that finishes first
 * waits for at most a short task; equal tasks left it waiting half a task on
 * average at the end of every job. In decode profiles (perf, 2 threads, the
 * same minute) the pool's spinning fell from 6.2% of the samples to 4.2% on
 * the 1.5B model and from 8.8% to 5.8% on the 0.5B. Each task also costs a
 * cold start of its stream and a claim: a share of 1/4 of what is left (2
 * threads) instead of 1/6, ~30% fewer tasks, took the 0.5B's gate/up ~300 us
 * a token less (lower in 11 of 12 rounds, per-step timers with the two
 * settings alternating token by token in one process) and the 1.5B's ~250
 * (8 of 8); 1/2 gained more on gate/up but lost on the head, whose first
 * task is then half of 145 MB on one thread. false when the plan would need
 * more than GUIDED_MAX tasks. */
static bool plan_guided(mm_ctx *m, int threads) {
    const int n = m->paired ? 1 : m->n_mats;
    int64_t left = 0;
    for (int i = 0; i < n; i++) left += m->mats[i].a->n_out * row_bytes(m, i);
    int t = 0;
    for (int i = 0; i < n; i++) {
        const mm_mat *mt = &m->mats[i];
        const int64_t unit = row_unit(m, i);
        const int64_t rb = row_bytes(m, i), unit_bytes = unit * rb;
        for (int64_t o = 0; o < mt->a->n_out; t++) {
            if (t == GUIDED_MAX) return false;
            const int64_t want = ceil_div(left, (int64_t)GUIDED_DIV * threads);
            const int64_t bytes = want > GUIDED_MIN_BYTES ? want : GUIDED_MIN_BYTES;
            const int64_t rows = min64(ceil_div(bytes, unit_bytes) * unit, mt->a->n_out - o);
            m->task_mat[t] = (int8_t)i;
            m->task_row[t] = o;
            o += rows;
            left -= rows * rb;
        }
    }
    m->guided_tasks = t;
    return true;
}

/* Splits each matrix's rows into whole-tile tasks of about the same size; in
 * paired mode a task takes the same rows of both matrices. A one-token job
 * below GUIDED_FROM_BYTES is not guided: each task starts a cold stream and
 * claims on a line both cores write, and on SmolLM2's jobs (0.2-1.1 MB, ~13
 * guided tasks, 2 as decode_tasks splits them) that cost more than the
 * guided tail saves: 120 jobs of 553 KB streamed at 73-80% of a plain read
 * guided and 82-84% split evenly, and the decode's Q/K/V, wo, gate/up and down
 * steps each took less time in 6 of 6 rounds. */
static int mm_plan_tasks(mm_ctx *m, int threads) {
    m->guided_tasks = 0;
    if (m->a->n_tok == 1 && threads > 1 && job_bytes(m) >= GUIDED_FROM_BYTES && plan_guided(m, threads))
        return m->guided_tasks;
    int64_t total = 0;
    for (int i = 0; i < m->n_mats; i++) total += m->mats[i].a->n_out;
    const int64_t per_thread = m->a->n_tok == 1 ? decode_tasks(m, threads) : TASKS_PER_THREAD;
    const int64_t chunk = total > 0 ? ceil_div(total, (int64_t)threads * per_thread) : 1;
    if (m->paired) {
        mm_mat *g = &m->mats[0], *u = &m->mats[1];
        const int64_t tile = row_unit(m, 0);
        g->rows_per_task = u->rows_per_task = ceil_div(ceil_div(chunk, 2), tile) * tile;
        g->first_task = u->first_task = 0;
        return (int)ceil_div(g->a->n_out, g->rows_per_task);
    }
    int n_tasks = 0;
    for (int i = 0; i < m->n_mats; i++) {
        mm_mat *mt = &m->mats[i];
        const int64_t unit = row_unit(m, i);
        mt->rows_per_task = ceil_div(chunk, unit) * unit;
        mt->first_task = n_tasks;
        n_tasks += (int)ceil_div(mt->a->n_out, mt->rows_per_task);
    }
    return n_tasks;
}

/* Blocks of about equal length, as long as X_BLOCK_BYTES of activations
 * allow: a short last block would re-read every weight for a few tokens and
 * run them unprepared. */
static int64_t token_block(const mm_ctx *m) {
    const int64_t n_tok = m->a->n_tok;
    const size_t row = m->xp ? m->xp_row : m->x_row;
    const int64_t most = row ? (int64_t)(X_BLOCK_BYTES / row) : n_tok;
    const int64_t n_blocks = ceil_div(n_tok, most > TOKEN_BLOCK ? most : TOKEN_BLOCK);
    if (n_blocks <= 1) return n_tok;
    int64_t tile = 1;
    for (int i = 0; i < m->n_mats; i++)
        if (m->mats[i].tile_c > tile) tile = m->mats[i].tile_c;
    return ceil_div(ceil_div(n_tok, n_blocks), tile) * tile;
}

/* The first row of member i at or after `target` bytes into the job (the
 * members' bytes in order), on a row unit: where a share of the job starts.
 * Shares k and k + 1 compute the same cut, so they tile every member. */
static int64_t share_cut(const mm_ctx *m, int i, int64_t before, int64_t target) {
    const int64_t unit = row_unit(m, i), unit_bytes = unit * row_bytes(m, i), n_out = m->mats[i].a->n_out;
    if (target <= before) return 0;
    return min64(ceil_div(target - before, unit_bytes) * unit, n_out);
}

/* Share a->part of a->parts as rows [o0[i], o1[i]) of each member i of the
 * job (by weight bytes, whole row units; members in order); returns the
 * member count. mm_run_part computes these rows, pc_matmul_part_spans names
 * their bytes, so the two cannot drift apart. */
static int part_cuts(mm_ctx *m, int64_t o0[PC_MATMUL_MAX_BATCH], int64_t o1[PC_MATMUL_MAX_BATCH]) {
    const pc_matmul_args *a = m->a;
    const int n = m->paired ? 1 : m->n_mats;
    const int64_t total = job_bytes(m);
    const int64_t lo = total * a->part / a->parts, hi = total * (a->part + 1) / a->parts;
    int64_t before = 0;
    for (int i = 0; i < n; i++) {
        o0[i] = share_cut(m, i, before, lo);
        o1[i] = share_cut(m, i, before, hi);
        before += m->mats[i].a->n_out * row_bytes(m, i);
    }
    return n;
}

/* Share a->part of a->parts of the job on the calling thread (part_cuts). */
static bool mm_run_part(mm_ctx *m) {
    const pc_matmul_args *a = m->a;
    if (a->part < 0 || a->part >= a->parts) return false;
    m->tok_block = token_block(m);
    quantize_x(NULL, m, 1);
    int64_t o0[PC_MATMUL_MAX_BATCH], o1[PC_MATMUL_MAX_BATCH];
    const int n = part_cuts(m, o0, o1);
    for (int i = 0; i < n; i++)
        if (o0[i] < o1[i]) mm_member_rows(m, i, o0[i], o1[i]);
    return true;
}

int pc_matmul_part_spans(const pc_matmul_args *a, int n, bool paired, int64_t align, pc_wspan *spans) {
    mm_ctx m;
    if (!a || a->parts < 1 || a->part < 0 || a->part >= a->parts || (paired && n != 2) || align < 1 ||
        !mm_setup(&m, a, n))
        return -1;
    if (paired && (a[0].n_out != a[1].n_out || a[0].y == a[1].y)) return -1;
    for (int i = 0; i < n; i++)
        if (a[i].n_out % align) return -1;
    m.paired = paired;
    m.align = align;
    int64_t o0[PC_MATMUL_MAX_BATCH], o1[PC_MATMUL_MAX_BATCH];
    const int members = part_cuts(&m, o0, o1);
    int k = 0;
    for (int i = 0; i < members; i++) {
        if (o0[i] >= o1[i]) continue;
        spans[k++] = rows_span(&m.mats[i], o0[i], o1[i]);
        if (paired) spans[k++] = rows_span(&m.mats[1], o0[i], o1[i]);
    }
    return k;
}

static bool mm_run(pc_pool *pool, mm_ctx *m) {
    if (m->a->n_tok == 0) return true;
    if (m->a->parts > 0) return mm_run_part(m);
    m->tok_block = token_block(m);
    const int threads = pool ? pc_pool_size(pool) : 1;
    const int n_tasks = mm_plan_tasks(m, threads);
    if (n_tasks == 0) return true;
    quantize_x(pool, m, threads);
    run(pool, mm_task, m, n_tasks);
    return true;
}

bool pc_matmul_batch(pc_pool *pool, const pc_matmul_args *a, int n) {
    mm_ctx m;
    return mm_setup(&m, a, n) && mm_run(pool, &m);
}

bool pc_matmul(pc_pool *pool, const pc_matmul_args *a) { return pc_matmul_batch(pool, a, 1); }

bool pc_matmul_acc(pc_pool *pool, const pc_matmul_args *a, float *acc) {
    mm_ctx m;
    if (!acc || !mm_setup(&m, a, 1)) return false;
    m.acc = acc;
    return mm_run(pool, &m);
}

bool pc_matmul_batch_then(pc_pool *pool, const pc_matmul_args *a, int n, int64_t align, pc_matmul_epi epi,
                          void *ctx) {
    mm_ctx m;
    if (!epi || align < 1 || !mm_setup(&m, a, n)) return false;
    for (int i = 0; i < n; i++)
        if (a[i].n_out % align) return false;
    m.epi = epi;
    m.epi_ctx = ctx;
    m.align = align;
    return mm_run(pool, &m);
}

bool pc_matmul_swiglu(pc_pool *pool, const pc_matmul_args *a) {
    mm_ctx m;
    if (!mm_setup(&m, a, 2) || a[0].n_out != a[1].n_out || a[0].y == a[1].y) return false;
    m.paired = true;
    return mm_run(pool, &m);
}

bool pc_matmul_swiglu_then(pc_pool *pool, const pc_matmul_args *a, int64_t align, pc_matmul_epi epi, void *ctx) {
    mm_ctx m;
    if (!epi || align < 1 || !mm_setup(&m, a, 2) || a[0].n_out != a[1].n_out || a[0].y == a[1].y ||
        a[0].n_out % align)
        return false;
    m.paired = true;
    m.epi = epi;
    m.epi_ctx = ctx;
    m.align = align;
    return mm_run(pool, &m);
}

bool pc_matmul_short(const pc_matmul_args *a, int n) {
    mm_ctx m;
    return mm_setup(&m, a, n) && job_bytes(&m) < GUIDED_FROM_BYTES;
}

int64_t pc_matmul_x_block(const pc_matmul_args *a) {
    mm_ctx m;
    if (!mm_setup(&m, a, 1)) return 0;
    return m.xt == PC_TYPE_F32 ? 1 : pc_type_get(m.xt)->block_size;
}

bool pc_matmul_quantize_part(const pc_matmul_args *a, int64_t i0, int64_t i1) {
    mm_ctx m;
    if (!mm_setup(&m, a, 1) || i0 < 0 || i1 > a->n_in || i0 > i1) return false;
    if (m.xt == PC_TYPE_F32) return true; /* read in place */
    const pc_type_info *ti = pc_type_get(m.xt);
    if (i0 % ti->block_size || i1 % ti->block_size) return false;
    const size_t off = (size_t)(i0 / ti->block_size) * ti->type_size, xp_off = pc_xp_row_size(m.xt, i0);
    for (int64_t t = 0; t < a->n_tok; t++) {
        uint8_t *dst = (uint8_t *)a->scratch + t * m.x_row + off;
        const float *src = a->x + t * a->n_in + i0;
        if (m.quant)
            m.quant(src, dst, i1 - i0);
        else
            pc_quantize_row(m.xt, src, dst, i1 - i0);
        if (m.xp) pc_xp_row(m.xt, dst, m.xp + t * m.xp_row + xp_off, i1 - i0);
    }
    return true;
}
