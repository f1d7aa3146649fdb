/* backend_cpu.c - the CPU backend: the steps of a block on host memory, with
 * the kernels of kernels/cpu and the thread pool.
 *
 * Buffers (nb = n_batch, E = n_embd, Q = n_head*head_dim, KV = n_head_kv*head_dim),
 * all f32, 64-byte aligned:
 *   x [nb][E] residual stream      xn [nb][E] normed input of a sublayer
 *   q [nb][Q]   k, v [nb][KV]      att [nb][Q] attention output
 *   gate, up [nb][n_ff]            tmp [nb][E] sublayer output
 *   rc, rs [nb][rope_dim/2]        RoPE cos/sin of each token's position
 * This is the code forward.c ran before the backend table, moved, not changed:
 * the same kernels in the same order give the same bits. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/ops.h"
#include "kernels/cpu/prefetch.h"
#include "util/error.h"

typedef struct cpu_backend {
    pc_backend base;
    const pc_model *m;
    pc_pool *pool;
    pc_isa isa;
    int64_t n_ctx;
    float *x, *xn, *q, *k, *v, *att, *gate, *up, *tmp, *rc, *rs;
    void *mm_scratch;
    void *down_scratch;       /* the down projection's quantized input, written by the gate/up job's tasks */
    void *attn_scratch;
    size_t attn_scratch_per_thread;
    void *attn_shared;
    pc_chunk c; /* the chunk in progress */
    int32_t layer; /* the layer whose attention block runs (cpu_matmul_qkv) */
    /* The one-token team path (cpu_after_attention): per member a normed
     * input (xn_stride floats) and a quantized x (mm1_bytes); NULL: not taken. */
    float *team_xn;
    int64_t xn_stride;
    uint8_t *team_mm;
    size_t mm1_bytes;
    /* The team path's back-off (team_ran): one-token layers to run as jobs
     * before a team is tried again, the tokens the next back-off skips, and
     * the team jobs since the last that slept. */
    int64_t team_skip, team_backoff, team_clean;
    /* Per member, its weight bytes of every team job of a token in order
     * (team_plan: TEAM_SPANS a layer) and a cursor over them (thread_idle). */
    pc_wspan *team_spans;
    struct member_pf *team_pf;
    pc_pool_idle team_idle; /* the cursors' steps while a thread waits for a job (thread_idle) */
} cpu_backend;

static cpu_backend *cpu(pc_backend *b) { return (cpu_backend *)b; }

static void *alloc64(size_t bytes) {
    void *p = NULL;
    if (bytes == 0) bytes = 64;
    if (posix_memalign(&p, 64, (bytes + 63) & ~(size_t)63) != 0) return NULL;
    return p;
}

/* Scratch for the largest matmul; 0 when a weight has no kernel on this ISA path. */
static size_t max_matmul_scratch(const pc_model *m, int32_t nb, pc_isa isa) {
    const pc_weight *out = &m->output;
    if (!pc_vec_dot_get(out->type, isa)) return 0;
    size_t best = pc_matmul_scratch_size(out->type, m->hp.n_embd, nb);
    for (int32_t l = 0; l < m->hp.n_layer; l++) {
        const pc_layer_weights *w = &m->layers[l];
        const pc_weight *ws[] = {&w->wq, &w->wk, &w->wv, &w->wo, &w->ffn_gate, &w->ffn_up, &w->ffn_down};
        for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++) {
            if (!ws[i]->data) continue;
            if (!pc_vec_dot_get(ws[i]->type, isa)) return 0;
            size_t s = pc_matmul_scratch_size(ws[i]->type, ws[i]->ne0, nb);
            best = s > best ? s : best;
        }
    }
    return best;
}

static void cpu_free(pc_backend *b) {
    cpu_backend *c = cpu(b);
    pc_pool_idle_remove(c->pool, &c->team_idle);
    void *bufs[] = {c->x, c->xn, c->q, c->k, c->v, c->att, c->gate, c->up, c->tmp, c->rc, c->rs, c->mm_scratch,
                    c->down_scratch, c->attn_scratch, c->attn_shared, c->team_xn, c->team_mm, c->team_spans, c->team_pf};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
    free(c);
}

/* ---- spans ---- */

static pc_kv_span *cpu_span_new(pc_backend *b, int32_t cap, pc_kv_loc loc) {
    if (loc != PC_KV_HOST) return NULL;
    return pc_kv_span_for_model(cpu(b)->m, cap);
}

static bool host_readable(const pc_kv_span *s) { return pc_kv_span_loc(s) != PC_KV_DEVICE; }

static pc_kv_span *cpu_span_copy(pc_backend *b, const pc_kv_span *src, pc_kv_loc loc) {
    if (!host_readable(src)) return NULL;
    pc_kv_span *s = cpu_span_new(b, src->n, loc);
    if (!s) return NULL;
    const size_t row = (size_t)src->dim * sizeof(pc_f16);
    const int32_t blocks = (src->n + PC_KV_BLOCK - 1) / PC_KV_BLOCK;
    for (int32_t l = 0; l < src->n_layer; l++) {
        memcpy(pc_kv_k_block(s, l, 0), pc_kv_k_block(src, l, 0), (size_t)blocks * PC_KV_BLOCK * row);
        memcpy(pc_kv_v(s, l, 0), pc_kv_v(src, l, 0), (size_t)src->n * row);
    }
    memcpy(s->pos, src->pos, (size_t)src->n * sizeof *s->pos);
    s->n = src->n;
    pc_kv_span_freeze(s);
    return s;
}

/* ---- steps ---- */

static pc_status cpu_begin(pc_backend *b, const pc_chunk *ch, pc_error *err) {
    cpu_backend *c = cpu(b);
    for (int32_t q = 0; q < ch->n_seqs; q++)
        for (int32_t i = 0; i < ch->seqs[q].list->n; i++)
            if (!host_readable(ch->seqs[q].list->spans[i]))
                return pc_fail(err, PC_ERR_INVALID, "backend cpu: KV span %d of sequence %d lives in GPU memory", i, q);
    c->c = *ch;
    const pc_hparams *hp = &c->m->hp;
    const int32_t R = hp->rope_dim / 2;
    const float *ff = c->m->rope_freqs.data;
    for (int32_t t = 0; t < ch->n; t++)
        pc_rope_cache(c->rc + t * R, c->rs + t * R, ch->pos[t], hp->rope_dim, hp->rope_theta, hp->rope_scale, ff);
    return PC_OK;
}

static void cpu_embed(pc_backend *b, const pc_weight *te, void *xv) {
    cpu_backend *c = cpu(b);
    float *x = xv;
    const size_t row = pc_row_size(te->type, te->ne0);
    for (int32_t t = 0; t < c->c.n; t++)
        pc_dequantize_row(te->type, (const char *)te->data + (size_t)c->c.tokens[t] * row, x + (int64_t)t * te->ne0, te->ne0);
}

typedef struct rows_job {
    const cpu_backend *c;
    const float *w;
    float *y;
    const float *x;
    int64_t dim;
} rows_job;

static void rmsnorm_task(void *ctx, int t, int nt, int thread) {
    (void)nt;
    (void)thread;
    rows_job *j = ctx;
    pc_rmsnorm(j->y + t * j->dim, j->x + t * j->dim, j->w, j->dim, j->c->m->hp.norm_eps);
}

static void cpu_norm(pc_backend *b, void *y, const void *x, const pc_weight *w, int32_t n) {
    cpu_backend *c = cpu(b);
    rows_job j = {.c = c, .w = w->data, .y = y, .x = x, .dim = c->m->hp.n_embd};
    pc_pool_run(n > 1 ? c->pool : NULL, rmsnorm_task, &j, n);
}

/* A norm runs on the calling thread alone while the others wait, and its
 * weights, read once a token, come from memory: asked for (into L2) before
 * the job ahead of the norm, they arrive while that job streams its weights. */
static void prefetch_norm(const pc_weight *norm) {
    const char *p = norm->data;
    const size_t bytes = (size_t)norm->ne0 * sizeof(float);
    for (size_t o = 0; p && o < bytes; o += 64) __builtin_prefetch(p + o, 0, 2);
}

/* The norm after the job about to run: the block's FFN norm after wo, the next
 * layer's attention norm (or the output norm) after the FFN. */
static const pc_weight *next_norm(const cpu_backend *c, bool after_ffn) {
    const pc_model *m = c->m;
    if (!after_ffn) return &m->layers[c->layer].ffn_norm;
    return c->layer + 1 < m->hp.n_layer ? &m->layers[c->layer + 1].attn_norm : &m->output_norm;
}

static pc_matmul_args mm_args(cpu_backend *c, const pc_weight *w, const float *x, int32_t n, float *y) {
    return (pc_matmul_args){.wt = w->type, .w = w->data, .packed = w->packed, .n_in = w->ne0, .n_out = w->ne1, .x = x, .n_tok = n,
                            .y = y, .scratch = c->mm_scratch, .isa = c->isa};
}

/* pc_backend_cpu_create checked every weight's kernel, so a failure here is a bug. */
static void matmul_one(cpu_backend *c, const pc_weight *w, const float *x, int32_t n, float *y) {
    pc_matmul_args a = mm_args(c, w, x, n, y);
    if (!pc_matmul(c->pool, &a)) abort();
}

/* Several matmuls of one input (Q/K/V, gate/up): one quantization of x and one
 * pool job when their types allow, else one by one; bitwise the same either way. */
static void cpu_matmul(pc_backend *b, const pc_weight *const *ws, void *const *ys, int k, const void *x, int32_t n) {
    cpu_backend *c = cpu(b);
    pc_matmul_args a[4] = {0};
    if (k > 4) abort();
    for (int i = 0; i < k; i++) a[i] = mm_args(c, ws[i], x, n, ys[i]);
    if (pc_matmul_batch(c->pool, a, k)) return;
    for (int i = 0; i < k; i++) matmul_one(c, ws[i], x, n, ys[i]);
}

/* Element-wise work over n floats, cut into contiguous pieces over the pool.
 * Each element's arithmetic is the same whichever task runs it, so the bits do
 * not depend on the cut; below SPLIT_MIN elements (one decode row of a small
 * model) a pool job costs more than it saves. */
enum { SPLIT_MIN = 2048 };

typedef struct split_job {
    float *a;
    const float *b;
    int64_t n, per;
    void (*op)(float *a, const float *b, int64_t n);
} split_job;

static void split_task(void *ctx, int t, int nt, int thread) {
    (void)nt;
    (void)thread;
    const split_job *j = ctx;
    const int64_t lo = t * j->per, hi = lo + j->per < j->n ? lo + j->per : j->n;
    j->op(j->a + lo, j->b + lo, hi - lo);
}

static void run_split(cpu_backend *c, void (*op)(float *, const float *, int64_t), float *a, const float *b, int64_t n) {
    const int64_t threads = pc_pool_size(c->pool);
    const int64_t tasks = n >= SPLIT_MIN && threads > 1 ? threads : 1;
    split_job j = {.a = a, .b = b, .n = n, .per = (n + tasks - 1) / tasks, .op = op};
    pc_pool_run(tasks > 1 ? c->pool : NULL, split_task, &j, (int)((n + j.per - 1) / j.per));
}

/* y += w x, the add in the product's own pool job (pc_matmul_acc): one barrier
 * less per sublayer. `norm` is the norm that runs next. */
static void matmul_add(cpu_backend *c, const pc_weight *w, const void *x, int32_t n, void *y, const pc_weight *norm) {
    prefetch_norm(norm);
    pc_matmul_args a = mm_args(c, w, x, n, c->tmp);
    if (!pc_matmul_acc(c->pool, &a, y)) abort(); /* every weight's kernel was checked at creation */
}

static void cpu_matmul_add(pc_backend *b, const pc_weight *w, const void *x, int32_t n, void *yv) {
    cpu_backend *c = cpu(b);
    matmul_add(c, w, x, n, yv, next_norm(c, false));
}

static void add_bias(float *y, const pc_weight *bias, int32_t r0, int32_t r1, int64_t dim) {
    if (!bias->data) return;
    for (int32_t t = r0; t < r1; t++) pc_add(y + (int64_t)t * dim, bias->data, dim);
}

/* Dimensions [d0, d1) of K (or V) of rows [t0, t1) of sequence q (counted
 * from its first row in the batch). */
static void store_k(const cpu_backend *c, const pc_bseq *q, int32_t layer, int32_t t0, int32_t t1, int32_t d0, int32_t d1) {
    const int32_t D = q->dst->dim;
    const pc_f16_store_fn store = pc_f16_store_for(c->isa);
    for (int32_t t = t0; t < t1; t++) {
        pc_f16 *kd = pc_kv_k_at(q->dst, layer, q->row0 + t, 0);
        store(kd + (size_t)d0 * PC_KV_BLOCK, PC_KV_BLOCK, c->k + (int64_t)(q->off + t) * D + d0, d1 - d0);
    }
}

static void store_v(const cpu_backend *c, const pc_bseq *q, int32_t layer, int32_t t0, int32_t t1, int32_t d0, int32_t d1) {
    const int32_t D = q->dst->dim;
    const pc_f16_store_fn store = pc_f16_store_for(c->isa);
    for (int32_t t = t0; t < t1; t++)
        store(pc_kv_v(q->dst, layer, q->row0 + t) + d0, 1, c->v + (int64_t)(q->off + t) * D + d0, d1 - d0);
}

static void store_kv(const cpu_backend *c, const pc_bseq *q, int32_t layer, int32_t t0, int32_t t1) {
    store_k(c, q, layer, t0, t1, 0, q->dst->dim);
    store_v(c, q, layer, t0, t1, 0, q->dst->dim);
}

typedef struct qkv_job {
    const cpu_backend *c;
    const pc_layer_weights *w;
    int32_t layer, per;
} qkv_job;

/* Biases, RoPE and the K/V store of batch rows [r0, r1): each row's work reads
 * and writes only that row, so tasks may take any rows. */
static void qkv_task(void *ctx, int task, int nt, int thread) {
    (void)nt;
    (void)thread;
    const qkv_job *j = ctx;
    const cpu_backend *c = j->c;
    const pc_hparams *hp = &c->m->hp;
    const int32_t r0 = task * j->per, r1 = r0 + j->per < c->c.n ? r0 + j->per : c->c.n;
    const int64_t Q = (int64_t)hp->n_head * hp->head_dim, KV = (int64_t)hp->n_head_kv * hp->head_dim;
    add_bias(c->q, &j->w->bq, r0, r1, Q);
    add_bias(c->k, &j->w->bk, r0, r1, KV);
    add_bias(c->v, &j->w->bv, r0, r1, KV);
    if (c->m->arch->pos != PC_POS_ALIBI) {
        const int neox = c->m->arch->pos == PC_POS_ROPE_NEOX;
        const int32_t R = hp->rope_dim / 2;
        for (int32_t t = r0; t < r1; t++) {
            pc_rope_apply(c->q + t * Q, hp->n_head, hp->head_dim, hp->rope_dim, c->rc + t * R, c->rs + t * R, neox);
            pc_rope_apply(c->k + t * KV, hp->n_head_kv, hp->head_dim, hp->rope_dim, c->rc + t * R, c->rs + t * R, neox);
        }
    }
    for (int32_t i = 0; i < c->c.n_seqs; i++) {
        const pc_bseq *q = &c->c.seqs[i];
        const int32_t lo = q->off > r0 ? q->off : r0, hi = q->off + q->n < r1 ? q->off + q->n : r1;
        if (lo < hi) store_kv(c, q, j->layer, lo - q->off, hi - q->off);
    }
}

/* Every row's K and V are stored before any row attends (the job ends before
 * cpu_attention starts): a sequence whose ctx lists another's dst (the next
 * piece of one request) sees its rows. */
static void cpu_qkv(pc_backend *b, const pc_layer_weights *w, int32_t layer) {
    cpu_backend *c = cpu(b);
    const int32_t n = c->c.n, threads = pc_pool_size(c->pool), tasks = n < threads ? n : threads;
    qkv_job j = {.c = c, .w = w, .layer = layer, .per = (n + tasks - 1) / tasks};
    pc_pool_run(tasks > 1 ? c->pool : NULL, qkv_task, &j, (n + j.per - 1) / j.per);
}

/* The qkv step of the columns [o0, o1) (whole heads) of one of q, k, v, for
 * every row: the same operations on the same numbers as qkv_task, cut by
 * heads instead of rows, so the same bits. Run by the task that wrote them. */
static void qkv_cols(void *ctx, int member, int64_t o0, int64_t o1) {
    const qkv_job *j = ctx;
    const cpu_backend *c = j->c;
    const pc_hparams *hp = &c->m->hp;
    const pc_weight *bias[3] = {&j->w->bq, &j->w->bk, &j->w->bv};
    float *y[3] = {c->q, c->k, c->v};
    const int64_t dim = member == 0 ? (int64_t)hp->n_head * hp->head_dim : (int64_t)hp->n_head_kv * hp->head_dim;
    const int32_t n = c->c.n;
    if (bias[member]->data)
        for (int32_t t = 0; t < n; t++) pc_add(y[member] + t * dim + o0, (const float *)bias[member]->data + o0, o1 - o0);
    if (member < 2 && c->m->arch->pos != PC_POS_ALIBI) {
        const int neox = c->m->arch->pos == PC_POS_ROPE_NEOX;
        const int32_t R = hp->rope_dim / 2, heads = (int32_t)((o1 - o0) / hp->head_dim);
        for (int32_t t = 0; t < n; t++)
            pc_rope_apply(y[member] + t * dim + o0, heads, hp->head_dim, hp->rope_dim, c->rc + t * R, c->rs + t * R, neox);
    }
    for (int32_t i = 0; member > 0 && i < c->c.n_seqs; i++) {
        const pc_bseq *q = &c->c.seqs[i];
        (member == 1 ? store_k : store_v)(c, q, j->layer, 0, q->n, (int32_t)o0, (int32_t)o1);
    }
}

/* Q, K and V in one pool job with the qkv step in its tasks (by whole heads):
 * one job and its serial step less per layer. Else the two steps, with the same bits. */
static void cpu_matmul_qkv(pc_backend *b, const pc_layer_weights *w, int32_t layer, const void *x, int32_t n) {
    cpu_backend *c = cpu(b);
    c->layer = layer;
    const pc_matmul_args a[3] = {mm_args(c, &w->wq, x, n, c->q), mm_args(c, &w->wk, x, n, c->k),
                                 mm_args(c, &w->wv, x, n, c->v)};
    qkv_job j = {.c = c, .w = w, .layer = layer};
    if (pc_matmul_batch_then(c->pool, a, 3, c->m->hp.head_dim, qkv_cols, &j)) return;
    const pc_weight *ws[3] = {&w->wq, &w->wk, &w->wv};
    void *const ys[3] = {c->q, c->k, c->v};
    cpu_matmul(b, ws, ys, 3, x, n);
    cpu_qkv(b, w, layer);
}

static void cpu_attention(pc_backend *b, int32_t layer) {
    cpu_backend *c = cpu(b);
    const pc_hparams *hp = &c->m->hp;
    const int64_t Q = (int64_t)hp->n_head * hp->head_dim;
    pc_attn_args args[PC_ATTN_BATCH_MAX]; /* one pool job per group of sequences, not one per sequence */
    int32_t n = 0;
    for (int32_t i = 0; i < c->c.n_seqs; i++) {
        const pc_bseq *q = &c->c.seqs[i];
        args[n++] = (pc_attn_args){.q = c->q + q->off * Q, .q_stride = Q, .q_pos = q->pos, .n_q = q->n, .n_head = hp->n_head,
                          .n_head_kv = hp->n_head_kv, .head_dim = hp->head_dim, .ctx = q->list, .layer = layer,
                          .scale = 1.0f / sqrtf((float)hp->head_dim), .out = c->att + q->off * Q, .out_stride = Q,
                          .scratch = c->attn_scratch, .scratch_per_thread = c->attn_scratch_per_thread,
                          .shared = c->attn_shared, .isa = c->isa};
        if (n == PC_ATTN_BATCH_MAX || i == c->c.n_seqs - 1) {
            pc_attention_batch(c->pool, args, n);
            n = 0;
        }
    }
}

static void cpu_swiglu(pc_backend *b, int32_t n) {
    cpu_backend *c = cpu(b);
    run_split(c, pc_swiglu_for(c->isa), c->gate, c->up, (int64_t)n * c->m->hp.n_ff);
}

/* Gate and up in one pool job with the swiglu (pc_matmul_swiglu) when their
 * types share an activation type; else the two steps, with the same bits. */
static void cpu_matmul_swiglu(pc_backend *b, const pc_weight *wg, const pc_weight *wu, const void *x, int32_t n) {
    cpu_backend *c = cpu(b);
    const pc_matmul_args a[2] = {mm_args(c, wg, x, n, c->gate), mm_args(c, wu, x, n, c->up)};
    if (pc_matmul_swiglu(c->pool, a)) return;
    const pc_weight *ws[2] = {wg, wu};
    void *const ys[2] = {c->gate, c->up};
    cpu_matmul(b, ws, ys, 2, x, n);
    cpu_swiglu(b, n);
}

typedef struct ffn_job {
    pc_matmul_args down;
} ffn_job;

/* Rows [o0, o1) of the swiglu's output, whole blocks of the down
 * projection's input, quantized by the task that wrote them. */
static void quantize_gate(void *ctx, int member, int64_t o0, int64_t o1) {
    (void)member;
    const ffn_job *j = ctx;
    if (!pc_matmul_quantize_part(&j->down, o0, o1)) abort(); /* checked by pc_matmul_x_block */
}

/* The feed-forward: gate/up and swiglu in one pool job whose tasks also
 * quantize the rows they wrote for the down projection, which then runs with
 * no serial quantization before its job. The same bytes as the steps one by
 * one (pc_matmul_quantize_part), so the same bits. */
static void cpu_ffn(pc_backend *b, const pc_layer_weights *w, const void *x, int32_t n) {
    cpu_backend *c = cpu(b);
    ffn_job j = {.down = mm_args(c, &w->ffn_down, c->gate, n, c->tmp)};
    j.down.scratch = c->down_scratch;
    const pc_matmul_args gu[2] = {mm_args(c, &w->ffn_gate, x, n, c->gate), mm_args(c, &w->ffn_up, x, n, c->up)};
    /* K-quant super-blocks (256) would coarsen the gate/up tasks of the Qwen
     * models, which this was not measured on: blocks of 32 only. */
    const int64_t block = pc_matmul_x_block(&j.down);
    if (block > 0 && block <= 32 && pc_matmul_swiglu_then(c->pool, gu, block, quantize_gate, &j)) {
        j.down.x_ready = true;
        prefetch_norm(next_norm(c, true));
        if (!pc_matmul_acc(c->pool, &j.down, c->x)) abort(); /* every weight's kernel was checked at creation */
        return;
    }
    cpu_matmul_swiglu(b, &w->ffn_gate, &w->ffn_up, x, n);
    matmul_add(c, &w->ffn_down, c->gate, n, c->x, next_norm(c, true));
}

/* ---- one token: from attention's output to the next attention as one team job ---- */

/* A one-token layer is ~5 pool jobs of 0.2-1.1 MB (SmolLM2), each with a wake,
 * a tail where one thread streams alone and serial steps between (norms, x's
 * quantization) while the other thread spins. As a team job (pc_pool_team)
 * every thread runs the steps from wo to the next layer's Q/K/V itself: its
 * share of each product's rows (pc_matmul_args.part: the same kernels, each
 * row whole by one thread, so the same bits), the tiny steps (norm, x's
 * quantization) redundantly on its own copies, and a barrier where a step
 * reads what all threads wrote (x after a residual add, down's quantized
 * input). Attention stays a pool job of its own (pc_attention_batch). */
typedef struct team_job {
    cpu_backend *c;
    const pc_layer_weights *w, *next; /* next: the next layer, or NULL after the last */
    int32_t layer;
} team_job;

/* A member's weight bytes in one layer's team job, at fixed slots (a step's
 * empty spans at the end of its slots): wo (SPAN_WO), gate and up, down, then
 * the next layer's q, k and v. */
enum { SPAN_WO = 0, TEAM_SPANS = 7 };

/* Between two team jobs runs attention: each thread does its heads and then
 * waits for the others, and the caller runs the steps between the jobs. While
 * a thread of the pool waits there it asks for the first TEAM_PF_GAP bytes
 * of its member's share of the next team job, TEAM_PF_LINES lines between
 * checks for its next job, so the weights move while the bus would not carry
 * them (engine.md, session 16 engine W: ~1.5-1.9 MB a thread a token on
 * SmolLM2; asking at the team's barriers as well was measured and gained
 * nothing). */
enum { TEAM_PF_GAP = 256 << 10, TEAM_PF_LINES = 4 };

struct member_pf {
    _Alignas(64) pc_pf_cursor cur; /* one member's, on lines of its own */
};

static pc_matmul_args part_args(cpu_backend *c, const pc_weight *w, const float *x, float *y, int member, int members) {
    pc_matmul_args a = mm_args(c, w, x, 1, y);
    a.scratch = c->team_mm + (size_t)member * c->mm1_bytes;
    a.part = member;
    a.parts = members;
    return a;
}

/* pc_backend_cpu_create checked that every step below is accepted (team_fits),
 * so a false here is a bug, and every member would see it at the same step. */
static void must(bool ok) {
    if (!ok) abort();
}

/* The pool's idle work (pc_pool_idle): thread t is member t of every team
 * job, and only it moves cursor t. */
static bool thread_idle(void *ctx, int thread) {
    cpu_backend *c = ctx;
    return pc_pf_step(&c->team_pf[thread].cur, TEAM_PF_LINES);
}

static void team_ffn(cpu_backend *c, const pc_layer_weights *w, const float *xn, int member, int members) {
    ffn_job j = {.down = part_args(c, &w->ffn_down, c->gate, c->tmp, member, members)};
    j.down.scratch = c->down_scratch;
    const pc_matmul_args gu[2] = {part_args(c, &w->ffn_gate, xn, c->gate, member, members),
                                  part_args(c, &w->ffn_up, xn, c->up, member, members)};
    must(pc_matmul_swiglu_then(NULL, gu, pc_matmul_x_block(&j.down), quantize_gate, &j));
    j.down.x_ready = true;
    pc_pool_barrier(c->pool); /* down reads every member's part of its quantized input */
    must(pc_matmul_acc(NULL, &j.down, c->x));
}

static void team_member(void *ctx, int member, int members, int thread) {
    (void)thread;
    const team_job *j = ctx;
    cpu_backend *c = j->c;
    const pc_hparams *hp = &c->m->hp;
    float *xn = c->team_xn + member * c->xn_stride;
    prefetch_norm(&j->w->ffn_norm);
    pc_matmul_args wo = part_args(c, &j->w->wo, c->att, c->tmp, member, members);
    must(pc_matmul_acc(NULL, &wo, c->x));
    pc_pool_barrier(c->pool); /* the norm reads all of x */
    pc_rmsnorm(xn, c->x, j->w->ffn_norm.data, hp->n_embd, hp->norm_eps);
    if (j->next) prefetch_norm(&j->next->attn_norm);
    team_ffn(c, j->w, xn, member, members);
    if (!j->next) return;
    pc_pool_barrier(c->pool);
    pc_rmsnorm(xn, c->x, j->next->attn_norm.data, hp->n_embd, hp->norm_eps);
    const pc_matmul_args a[3] = {part_args(c, &j->next->wq, xn, c->q, member, members),
                                 part_args(c, &j->next->wk, xn, c->k, member, members),
                                 part_args(c, &j->next->wv, xn, c->v, member, members)};
    qkv_job q = {.c = c, .w = j->next, .layer = j->layer + 1};
    must(pc_matmul_batch_then(NULL, a, 3, hp->head_dim, qkv_cols, &q));
    /* attention runs next, then this thread's share of the next team job */
    pc_pf_aim(&c->team_pf[member].cur, (j->layer + 1) * TEAM_SPANS + SPAN_WO, TEAM_PF_GAP);
}

/* A team job whose member slept at a barrier had a thread waiting for a time
 * slice: other programs hold the CPUs, and every further barrier may wait as
 * long (SmolLM2 at -t 2 beside one busy process: 27-41 tok/s as teams,
 * 120-136 as jobs, whose tasks go to whichever thread runs). The layers of
 * the next team_backoff tokens then run as jobs; the back-off doubles while
 * teams keep sleeping, up to BACKOFF_MAX tokens, and is back at one token
 * after CLEAN_TOKENS tokens of teams that did not. On an idle machine a team
 * sleeps once in a few thousand (the host preempts a thread now and then):
 * each costs one token of jobs, not many. */
enum { BACKOFF_MAX = 256, CLEAN_TOKENS = 16 };

static void team_ran(cpu_backend *c, bool slept) {
    const int64_t L = c->m->hp.n_layer;
    if (!slept) {
        if (++c->team_clean >= CLEAN_TOKENS * L) c->team_backoff = 1;
        return;
    }
    c->team_clean = 0;
    c->team_skip = c->team_backoff * L;
    c->team_backoff = c->team_backoff < BACKOFF_MAX ? 2 * c->team_backoff : BACKOFF_MAX;
}

/* wo and its residual add, the feed-forward block and (next != NULL) the next
 * layer's attention norm and Q/K/V with the qkv step, for one token: the bits
 * of matmul_add, norm, ffn, norm and matmul_qkv. false (nothing done) unless
 * the chunk is one token, the pool has several threads and the team path is
 * not backing off (team_ran). */
static bool cpu_after_attention(pc_backend *b, const pc_layer_weights *w, const pc_layer_weights *next, int32_t layer,
                                int32_t n) {
    cpu_backend *c = cpu(b);
    if (n != 1 || !c->team_xn) return false;
    if (c->team_skip > 0) {
        c->team_skip--;
        return false;
    }
    team_job j = {.c = c, .w = w, .next = next, .layer = layer};
    c->layer = next ? layer + 1 : layer;
    team_ran(c, pc_pool_team(c->pool, team_member, &j) > 0);
    return true;
}

/* Whether every step of team_member is accepted for every layer (the same
 * checks as the whole jobs make, on one token: then no member can fail) and
 * short (pc_matmul_short). Fixed shares lose to guided tasks on longer jobs:
 * on the 0.5B model (gate/up ~5.5 MB) the team path's layers took ~4% longer
 * than the jobs' (5 rounds alternating, per-step timers). */
static bool team_fits(cpu_backend *c) {
    const pc_hparams *hp = &c->m->hp;
    for (int32_t l = 0; l < hp->n_layer; l++) {
        const pc_layer_weights *w = &c->m->layers[l];
        pc_matmul_args wo = mm_args(c, &w->wo, c->att, 1, c->tmp), down = mm_args(c, &w->ffn_down, c->gate, 1, c->tmp);
        const pc_matmul_args gu[2] = {mm_args(c, &w->ffn_gate, c->xn, 1, c->gate), mm_args(c, &w->ffn_up, c->xn, 1, c->up)};
        const pc_matmul_args qkv[3] = {mm_args(c, &w->wq, c->xn, 1, c->q), mm_args(c, &w->wk, c->xn, 1, c->k),
                                       mm_args(c, &w->wv, c->xn, 1, c->v)};
        const int64_t block = pc_matmul_x_block(&down);
        if (!pc_matmul_short(&wo, 1) || !pc_matmul_short(&down, 1) || !pc_matmul_short(gu, 2) ||
            !pc_matmul_short(qkv, 3) || block <= 0 || gu[0].n_out != gu[1].n_out || gu[0].n_out % block)
            return false;
        for (int i = 0; i < 3; i++)
            if (qkv[i].n_out % hp->head_dim) return false;
    }
    return true;
}

/* Appends the spans of one step (n products, paired as gate/up) to the plan at
 * *s, padded with empty spans to `slots`. */
static void plan_step(pc_wspan **s, const pc_matmul_args *a, int n, bool paired, int64_t align, int slots) {
    const int k = pc_matmul_part_spans(a, n, paired, align, *s);
    must(k >= 0 && k <= slots); /* team_fits checked these calls */
    for (int i = k; i < slots; i++) (*s)[i] = (pc_wspan){NULL, 0};
    *s += slots;
}

/* Every member's plan (team_spans): per layer its shares of the products in
 * team_member's order, as part_args gives them. */
static void team_plan(cpu_backend *c, int members) {
    const pc_hparams *hp = &c->m->hp;
    for (int mb = 0; mb < members; mb++) {
        pc_wspan *s = c->team_spans + (size_t)mb * (size_t)hp->n_layer * TEAM_SPANS;
        pc_pf_init(&c->team_pf[mb].cur, s, hp->n_layer * TEAM_SPANS);
        const float *xn = c->team_xn + mb * c->xn_stride;
        for (int32_t l = 0; l < hp->n_layer; l++) {
            const pc_layer_weights *w = &c->m->layers[l], *next = l + 1 < hp->n_layer ? &c->m->layers[l + 1] : NULL;
            const pc_matmul_args wo = part_args(c, &w->wo, c->att, c->tmp, mb, members);
            const pc_matmul_args gu[2] = {part_args(c, &w->ffn_gate, xn, c->gate, mb, members),
                                          part_args(c, &w->ffn_up, xn, c->up, mb, members)};
            const pc_matmul_args down = part_args(c, &w->ffn_down, c->gate, c->tmp, mb, members);
            plan_step(&s, &wo, 1, false, 1, 1);
            plan_step(&s, gu, 2, true, pc_matmul_x_block(&down), 2);
            plan_step(&s, &down, 1, false, 1, 1);
            if (!next) {
                for (int i = 0; i < 3; i++) *s++ = (pc_wspan){NULL, 0};
                continue;
            }
            const pc_matmul_args qkv[3] = {part_args(c, &next->wq, xn, c->q, mb, members),
                                           part_args(c, &next->wk, xn, c->k, mb, members),
                                           part_args(c, &next->wv, xn, c->v, mb, members)};
            plan_step(&s, qkv, 3, false, hp->head_dim, 3);
        }
    }
}

/* The team path's buffers when the pool has several threads, no more than
 * the CPUs, and every layer fits; else none (the job path). A team job needs
 * all its members running at once: with more threads than CPUs a member waits
 * for a time slice at every barrier (SmolLM2 at -t 3 and -t 4 on 2 CPUs
 * decoded 11-13 tok/s this way, the jobs 114-151), where a job's tasks go to
 * whichever thread runs. */
static bool alloc_team(cpu_backend *c) {
    const int members = pc_pool_size(c->pool);
    if (members < 2 || members > pc_cpu_count() || !team_fits(c)) return true;
    c->mm1_bytes = (max_matmul_scratch(c->m, 1, c->isa) + 63) & ~(size_t)63;
    c->xn_stride = (c->m->hp.n_embd + 15) & ~(int64_t)15;
    c->team_backoff = 1;
    c->team_mm = alloc64(c->mm1_bytes * (size_t)members);
    c->team_xn = alloc64(sizeof(float) * (size_t)c->xn_stride * (size_t)members);
    c->team_spans = alloc64(sizeof(pc_wspan) * (size_t)c->m->hp.n_layer * TEAM_SPANS * (size_t)members);
    c->team_pf = alloc64(sizeof(struct member_pf) * (size_t)members);
    if (!c->team_mm || !c->team_xn || !c->team_spans || !c->team_pf) return false;
    team_plan(c, members);
    c->team_idle = (pc_pool_idle){thread_idle, c};
    pc_pool_idle_install(c->pool, &c->team_idle); /* another backend's on this pool: the waits stay plain */
    return true;
}

/* Rows that lie side by side are read in place; others are gathered into tmp first. */
static pc_status cpu_logits(pc_backend *b, const pc_weight *norm, const pc_weight *head, const int32_t *rows,
                            int32_t n, float *out, pc_error *err) {
    (void)err;
    cpu_backend *c = cpu(b);
    const int64_t E = c->m->hp.n_embd;
    bool contiguous = true;
    for (int32_t i = 1; i < n; i++) contiguous &= rows[i] == rows[0] + i;
    const float *x = c->x + (int64_t)rows[0] * E;
    if (!contiguous) {
        for (int32_t i = 0; i < n; i++) memmove(c->tmp + i * E, c->x + (int64_t)rows[i] * E, sizeof(float) * (size_t)E);
        x = c->tmp;
    }
    cpu_norm(b, c->xn, x, norm, n);
    matmul_one(c, head, c->xn, n, out);
    return PC_OK;
}

static pc_status cpu_end(pc_backend *b, pc_error *err) {
    (void)b;
    (void)err;
    return PC_OK;
}

static const pc_backend_ops cpu_ops = {
    .name = "cpu", .free = cpu_free, .span_new = cpu_span_new, .span_copy = cpu_span_copy, .begin = cpu_begin,
    .embed = cpu_embed, .norm = cpu_norm, .matmul = cpu_matmul, .matmul_add = cpu_matmul_add, .qkv = cpu_qkv,
    .attention = cpu_attention, .swiglu = cpu_swiglu,
    .matmul_swiglu = cpu_matmul_swiglu, .matmul_qkv = cpu_matmul_qkv, .ffn = cpu_ffn,
    .after_attention = cpu_after_attention, .logits = cpu_logits, .end = cpu_end,
};

/* Scratch for the down projections' quantized inputs. */
static size_t down_scratch_size(const pc_model *m, int32_t nb) {
    size_t best = 0;
    for (int32_t l = 0; l < m->hp.n_layer; l++) {
        const pc_weight *d = &m->layers[l].ffn_down;
        const size_t s = d->data ? pc_matmul_scratch_size(d->type, d->ne0, nb) : 0;
        best = s > best ? s : best;
    }
    return best;
}

static bool alloc_buffers(cpu_backend *c, int32_t nb, int64_t n_ctx, size_t mm) {
    const pc_hparams *hp = &c->m->hp;
    const size_t E = (size_t)hp->n_embd, Q = (size_t)hp->n_head * hp->head_dim,
                 KV = (size_t)hp->n_head_kv * hp->head_dim, FF = (size_t)hp->n_ff, R = (size_t)hp->rope_dim / 2;
    const size_t fb = sizeof(float) * (size_t)nb;
    c->x = alloc64(fb * E);
    c->xn = alloc64(fb * E);
    c->q = alloc64(fb * Q);
    c->k = alloc64(fb * KV);
    c->v = alloc64(fb * KV);
    c->att = alloc64(fb * Q);
    c->gate = alloc64(fb * FF);
    c->up = alloc64(fb * FF);
    c->tmp = alloc64(fb * E);
    c->rc = alloc64(fb * (R ? R : 1));
    c->rs = alloc64(fb * (R ? R : 1));
    c->mm_scratch = alloc64(mm);
    c->down_scratch = alloc64(down_scratch_size(c->m, nb));
    c->attn_scratch_per_thread = (pc_attn_scratch_size(hp->n_head, hp->n_head_kv, hp->head_dim, n_ctx) + 63) & ~(size_t)63;
    c->attn_scratch = alloc64(c->attn_scratch_per_thread * (size_t)pc_pool_size(c->pool));
    c->attn_shared = alloc64(pc_attn_shared_size(hp->n_head, hp->n_head_kv, n_ctx));
    return c->x && c->xn && c->q && c->k && c->v && c->att && c->gate && c->up && c->tmp && c->rc && c->rs &&
           c->mm_scratch && c->down_scratch && c->attn_scratch && c->attn_shared;
}

pc_status pc_backend_cpu_create(const pc_model *m, const pc_backend_params *p, int32_t nb, int64_t n_ctx,
                                pc_backend **out, pc_error *err) {
    *out = NULL;
    const size_t mm = max_matmul_scratch(m, nb, p->isa);
    if (mm == 0)
        return pc_fail(err, PC_ERR_UNSUPPORTED, "a weight type of this model has no matrix kernel on the %s path",
                       pc_isa_name(p->isa));
    cpu_backend *c = calloc(1, sizeof *c);
    if (!c) return pc_fail(err, PC_ERR_NOMEM, "out of memory creating the CPU backend");
    c->base.ops = &cpu_ops;
    c->base.kind = PC_BACKEND_CPU;
    c->base.span_loc = PC_KV_HOST;
    c->base.max_seqs = INT32_MAX;
    c->m = m;
    c->pool = p->pool;
    c->isa = p->isa;
    c->n_ctx = n_ctx;
    if (!alloc_buffers(c, nb, n_ctx, mm) || !alloc_team(c)) {
        cpu_free(&c->base);
        return pc_fail(err, PC_ERR_NOMEM, "out of memory for forward buffers (batch %d, context %lld)", nb, (long long)n_ctx);
    }
    c->base.acts = (pc_acts){.x = c->x, .xn = c->xn, .q = c->q, .k = c->k, .v = c->v, .att = c->att, .gate = c->gate,
                             .up = c->up};
    *out = &c->base;
    return PC_OK;
}
