/* forward.c - the layer loop. The one place that knows the order of a
 * transformer block; everything it calls is a kernel over plain buffers.
 *
 * Buffers (nb = n_batch, E = n_embd, Q = n_head*head_dim, KV = n_head_kv*head_dim):
 *   x [nb][E] residual stream      xn [nb][E] normed input of a sublayer
 *   q [nb][Q]   k, v [nb][KV]      att [nb][Q] attention output
 *   gate, up [nb][n_ff]            tmp [nb][E] sublayer output
 *   rc, rs [nb][rope_dim/2]        RoPE cos/sin of each token's position */
#include "forward/forward.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/ops.h"
#include "util/error.h"

struct pc_forward {
    const pc_model *m;
    pc_pool *pool;
    pc_isa isa;
    int32_t nb;
    int64_t n_ctx;
    float *x, *xn, *q, *k, *v, *att, *gate, *up, *tmp, *rc, *rs;
    int32_t *tok, *pos;       /* [nb] the batch's rows, sequence after sequence */
    void *mm_scratch;
    void *attn_scratch;
    size_t attn_scratch_per_thread;
    void *attn_shared;
    /* Per sequence of the current batch (capacity kept between calls):
     * lists[i] = seq i's ctx spans + its dst; off[i] its first row in the
     * batch; row0[i] its dst's length before the batch. */
    pc_kv_list *lists;
    int32_t *off, *row0;
    int32_t cap_seqs;
    float *lg;                /* [cap_lg][n_vocab] logits of the LAST rows of a multi-sequence batch */
    int32_t cap_lg;
};

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

pc_status pc_forward_create(const pc_model *m, pc_pool *pool, int32_t nb, int64_t n_ctx, pc_isa isa, pc_forward **out,
                            pc_error *err) {
    *out = NULL;
    if (nb <= 0 || n_ctx <= 0) return pc_fail(err, PC_ERR_INVALID, "batch size %d and context %lld must be > 0", nb, (long long)n_ctx);
    pc_forward *f = calloc(1, sizeof *f);
    if (!f) return pc_fail(err, PC_ERR_NOMEM, "out of memory creating forward state");
    const pc_hparams *hp = &m->hp;
    const size_t E = (size_t)hp->n_embd, Q = (size_t)hp->n_head * hp->head_dim,
                 KV = (size_t)hp->n_head_kv * hp->head_dim, FF = (size_t)hp->n_ff, R = (size_t)hp->rope_dim / 2;
    f->m = m;
    f->pool = pool;
    f->isa = isa;
    f->nb = nb;
    f->n_ctx = n_ctx;
    const size_t mm = max_matmul_scratch(m, nb, isa);
    if (mm == 0) {
        free(f);
        return pc_fail(err, PC_ERR_UNSUPPORTED, "a weight type of this model has no matrix kernel on the %s path",
                       pc_isa_name(isa));
    }
    const size_t fb = sizeof(float) * (size_t)nb;
    f->x = alloc64(fb * E);
    f->xn = alloc64(fb * E);
    f->q = alloc64(fb * Q);
    f->k = alloc64(fb * KV);
    f->v = alloc64(fb * KV);
    f->att = alloc64(fb * Q);
    f->gate = alloc64(fb * FF);
    f->up = alloc64(fb * FF);
    f->tmp = alloc64(fb * E);
    f->rc = alloc64(fb * (R ? R : 1));
    f->rs = alloc64(fb * (R ? R : 1));
    f->tok = alloc64(sizeof(int32_t) * (size_t)nb);
    f->pos = alloc64(sizeof(int32_t) * (size_t)nb);
    f->mm_scratch = alloc64(mm);
    f->attn_scratch_per_thread = (pc_attn_scratch_size(hp->n_head, hp->n_head_kv, hp->head_dim, n_ctx) + 63) & ~(size_t)63;
    f->attn_scratch = alloc64(f->attn_scratch_per_thread * (size_t)pc_pool_size(pool));
    f->attn_shared = alloc64(pc_attn_shared_size(hp->n_head, hp->n_head_kv, n_ctx));
    if (!f->x || !f->xn || !f->q || !f->k || !f->v || !f->att || !f->gate || !f->up || !f->tmp || !f->rc || !f->rs ||
        !f->tok || !f->pos || !f->mm_scratch || !f->attn_scratch || !f->attn_shared) {
        pc_forward_free(f);
        return pc_fail(err, PC_ERR_NOMEM, "out of memory for forward buffers (batch %d, context %lld)", nb, (long long)n_ctx);
    }
    *out = f;
    return PC_OK;
}

void pc_forward_free(pc_forward *f) {
    if (!f) return;
    void *bufs[] = {f->x, f->xn, f->q, f->k, f->v, f->att, f->gate, f->up, f->tmp, f->rc, f->rs, f->tok, f->pos,
                    f->mm_scratch, f->attn_scratch, f->attn_shared, f->off, f->row0, f->lg};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
    for (int32_t i = 0; i < f->cap_seqs; i++) pc_kv_list_free(&f->lists[i]);
    free(f->lists);
    free(f);
}

int32_t pc_forward_batch_size(const pc_forward *f) { return f->nb; }

/* ---- sublayers ---- */

static pc_matmul_args mm_args(pc_forward *f, const pc_weight *w, const float *x, int32_t n, float *y) {
    return (pc_matmul_args){.wt = w->type, .w = w->data, .packed = w->packed, .n_in = w->ne0, .n_out = w->ne1, .x = x, .n_tok = n,
                            .y = y, .scratch = f->mm_scratch, .isa = f->isa};
}

/* pc_forward_create checked every weight's kernel, so a failure here is a bug. */
static void matmul(pc_forward *f, const pc_weight *w, const float *x, int32_t n, float *y) {
    pc_matmul_args a = mm_args(f, w, x, n, y);
    if (!pc_matmul(f->pool, &a)) abort();
}

/* Several matmuls of one input (Q/K/V, gate/up): one quantization of x and one
 * pool job when their types allow, else one by one; bitwise the same either way. */
static void matmul_shared_x(pc_forward *f, const pc_weight *const *ws, float *const *ys, int k, const float *x, int32_t n) {
    pc_matmul_args a[4];
    for (int i = 0; i < k; i++) a[i] = mm_args(f, ws[i], x, n, ys[i]);
    if (pc_matmul_batch(f->pool, a, k)) return;
    for (int i = 0; i < k; i++) matmul(f, ws[i], x, n, ys[i]);
}

static void add_bias(float *y, const pc_weight *b, int32_t n, int64_t dim) {
    if (!b->data) return;
    for (int32_t t = 0; t < n; t++) pc_add(y + (int64_t)t * dim, b->data, dim);
}

typedef struct rows_job {
    pc_forward *f;
    const float *w;
    float *y;
    const float *x;
    int64_t dim;
} rows_job;

static void rmsnorm_task(void *ctx, int t, int nt, int thread) {
    (void)nt;
    (void)thread;
    rows_job *j = ctx;
    pc_rmsnorm(j->y + t * j->dim, j->x + t * j->dim, j->w, j->dim, j->f->m->hp.norm_eps);
}

static void rmsnorm_rows(pc_forward *f, float *y, const float *x, const pc_weight *w, int32_t n, int64_t dim) {
    rows_job j = {.f = f, .w = w->data, .y = y, .x = x, .dim = dim};
    pc_pool_run(n > 1 ? f->pool : NULL, rmsnorm_task, &j, n);
}

static void store_kv(pc_forward *f, pc_kv_span *dst, int32_t layer, int32_t row0, int32_t first, int32_t n) {
    const int32_t D = dst->dim;
    for (int32_t t = 0; t < n; t++) {
        pc_f16 *kd = pc_kv_k_at(dst, layer, row0 + t, 0), *vd = pc_kv_v(dst, layer, row0 + t);
        const float *ks = f->k + (int64_t)(first + t) * D, *vs = f->v + (int64_t)(first + t) * D;
        for (int32_t d = 0; d < D; d++) {
            kd[(size_t)d * PC_KV_BLOCK] = pc_f32_to_f16(ks[d]);
            vd[d] = pc_f32_to_f16(vs[d]);
        }
    }
}

/* The batch being run: its sequences and the total of their rows. */
typedef struct batch {
    const pc_fwd_seq *seqs;
    int32_t n_seqs, n;
} batch;

/* Every row's K and V are stored before any row attends, so a sequence that
 * lists another's dst (the next piece of the same request) sees its rows. */
static void attend(pc_forward *f, const batch *b, int32_t layer) {
    const pc_hparams *hp = &f->m->hp;
    const int64_t Q = (int64_t)hp->n_head * hp->head_dim;
    for (int32_t i = 0; i < b->n_seqs; i++) store_kv(f, b->seqs[i].dst, layer, f->row0[i], f->off[i], b->seqs[i].n);
    for (int32_t i = 0; i < b->n_seqs; i++) {
        pc_attn_args a = {.q = f->q + f->off[i] * Q, .q_stride = Q, .q_pos = b->seqs[i].pos, .n_q = b->seqs[i].n,
                          .n_head = hp->n_head, .n_head_kv = hp->n_head_kv, .head_dim = hp->head_dim,
                          .ctx = &f->lists[i], .layer = layer, .scale = 1.0f / sqrtf((float)hp->head_dim),
                          .out = f->att + f->off[i] * Q, .out_stride = Q, .scratch = f->attn_scratch,
                          .scratch_per_thread = f->attn_scratch_per_thread, .shared = f->attn_shared, .isa = f->isa};
        pc_attention(f->pool, &a);
    }
}

static void attention_block(pc_forward *f, const pc_layer_weights *w, int32_t layer, const batch *b) {
    const pc_hparams *hp = &f->m->hp;
    const int64_t Q = (int64_t)hp->n_head * hp->head_dim, KV = (int64_t)hp->n_head_kv * hp->head_dim;
    const int neox = f->m->arch->pos == PC_POS_ROPE_NEOX;
    const int32_t n = b->n;
    rmsnorm_rows(f, f->xn, f->x, &w->attn_norm, n, hp->n_embd);
    const pc_weight *qkv[3] = {&w->wq, &w->wk, &w->wv};
    float *const qkv_out[3] = {f->q, f->k, f->v};
    matmul_shared_x(f, qkv, qkv_out, 3, f->xn, n);
    add_bias(f->q, &w->bq, n, Q);
    add_bias(f->k, &w->bk, n, KV);
    add_bias(f->v, &w->bv, n, KV);
    if (f->m->arch->pos != PC_POS_ALIBI) {
        const int32_t R = hp->rope_dim / 2;
        for (int32_t t = 0; t < n; t++) {
            pc_rope_apply(f->q + t * Q, hp->n_head, hp->head_dim, hp->rope_dim, f->rc + t * R, f->rs + t * R, neox);
            pc_rope_apply(f->k + t * KV, hp->n_head_kv, hp->head_dim, hp->rope_dim, f->rc + t * R, f->rs + t * R, neox);
        }
    }
    attend(f, b, layer);
    matmul(f, &w->wo, f->att, n, f->tmp);
    for (int32_t t = 0; t < n; t++) pc_add(f->x + (int64_t)t * hp->n_embd, f->tmp + (int64_t)t * hp->n_embd, hp->n_embd);
}

static void ffn_block(pc_forward *f, const pc_layer_weights *w, int32_t n) {
    const pc_hparams *hp = &f->m->hp;
    rmsnorm_rows(f, f->xn, f->x, &w->ffn_norm, n, hp->n_embd);
    const pc_weight *gu[2] = {&w->ffn_gate, &w->ffn_up};
    float *const gu_out[2] = {f->gate, f->up};
    matmul_shared_x(f, gu, gu_out, 2, f->xn, n);
    pc_swiglu(f->gate, f->up, (int64_t)n * hp->n_ff);
    matmul(f, &w->ffn_down, f->gate, n, f->tmp);
    for (int32_t t = 0; t < n; t++) pc_add(f->x + (int64_t)t * hp->n_embd, f->tmp + (int64_t)t * hp->n_embd, hp->n_embd);
}

static void embed(pc_forward *f, int32_t n) {
    const pc_weight *te = &f->m->tok_embd;
    const size_t row = pc_row_size(te->type, te->ne0);
    for (int32_t t = 0; t < n; t++)
        pc_dequantize_row(te->type, (const char *)te->data + (size_t)f->tok[t] * row, f->x + (int64_t)t * te->ne0, te->ne0);
}

/* Logits of rows [first, first + n) of x (contiguous) into logits [n][n_vocab]. */
static void output_rows(pc_forward *f, const float *x, int32_t n, float *logits) {
    const pc_hparams *hp = &f->m->hp;
    rmsnorm_rows(f, f->xn, x, &f->m->output_norm, n, hp->n_embd);
    matmul(f, &f->m->output, f->xn, n, logits);
}

/* The LAST rows of several sequences are gathered into one product, so a
 * batch of decodes reads the output matrix once, not once per sequence. */
static void output(pc_forward *f, const batch *b) {
    const int64_t E = f->m->hp.n_embd, V = f->m->hp.n_vocab;
    int32_t n_last = 0;
    for (int32_t i = 0; i < b->n_seqs; i++) {
        const pc_fwd_seq *s = &b->seqs[i];
        if (s->mode == PC_LOGITS_ALL) output_rows(f, f->x + f->off[i] * E, s->n, s->logits);
        if (s->mode == PC_LOGITS_LAST) memmove(f->tmp + n_last++ * E, f->x + (f->off[i] + s->n - 1) * E, sizeof(float) * E);
    }
    if (n_last == 1) { /* straight into the caller's buffer */
        for (int32_t i = 0; i < b->n_seqs; i++)
            if (b->seqs[i].mode == PC_LOGITS_LAST) output_rows(f, f->tmp, 1, b->seqs[i].logits);
        return;
    }
    output_rows(f, f->tmp, n_last, f->lg);
    for (int32_t i = 0, j = 0; i < b->n_seqs; i++)
        if (b->seqs[i].mode == PC_LOGITS_LAST) memcpy(b->seqs[i].logits, f->lg + j++ * V, sizeof(float) * V);
}

/* Rows in, K/V appended to each dst, logits out. Inputs are checked. */
static void run_rows(pc_forward *f, const batch *b) {
    const pc_hparams *hp = &f->m->hp;
    for (int32_t i = 0, r = 0; i < b->n_seqs; r += b->seqs[i].n, i++) {
        const pc_fwd_seq *s = &b->seqs[i];
        f->off[i] = r;
        f->row0[i] = s->dst->n;
        memcpy(f->tok + r, s->tokens, (size_t)s->n * sizeof *s->tokens);
        memcpy(f->pos + r, s->pos, (size_t)s->n * sizeof *s->pos);
        memcpy(s->dst->pos + s->dst->n, s->pos, (size_t)s->n * sizeof *s->pos);
    }
    for (int32_t i = 0; i < b->n_seqs; i++) b->seqs[i].dst->n += b->seqs[i].n;
    const int32_t R = hp->rope_dim / 2;
    const float *ff = f->m->rope_freqs.data;
    for (int32_t t = 0; t < b->n; t++)
        pc_rope_cache(f->rc + t * R, f->rs + t * R, f->pos[t], hp->rope_dim, hp->rope_theta, hp->rope_scale, ff);
    embed(f, b->n);
    for (int32_t l = 0; l < hp->n_layer; l++) {
        attention_block(f, &f->m->layers[l], l, b);
        ffn_block(f, &f->m->layers[l], b->n);
    }
    output(f, b);
}

/* Keys seq s attends to: its ctx (with the rows this batch adds to any span
 * of it that is another sequence's dst), its dst so far and its own rows. */
static int64_t context_keys(const pc_fwd_seq *seqs, int32_t n_seqs, const pc_fwd_seq *s) {
    int64_t total = s->dst->n + s->n;
    for (int32_t i = 0; s->ctx && i < s->ctx->n; i++) {
        total += s->ctx->spans[i]->n;
        for (int32_t j = 0; j < n_seqs; j++)
            if (seqs[j].dst == s->ctx->spans[i]) total += seqs[j].n;
    }
    return total;
}

static pc_status check_seq(const pc_forward *f, const pc_fwd_seq *seqs, int32_t n_seqs, int32_t i, pc_error *err) {
    const pc_fwd_seq *s = &seqs[i];
    if (s->n <= 0 || !s->dst || !s->tokens || !s->pos) return pc_fail(err, PC_ERR_INVALID, "forward: sequence %d is empty", i);
    if (s->mode != PC_LOGITS_NONE && !s->logits)
        return pc_fail(err, PC_ERR_INVALID, "forward: sequence %d asks for logits but gives no buffer", i);
    if (s->dst->n_layer != f->m->hp.n_layer || s->dst->dim != f->m->hp.n_head_kv * f->m->hp.head_dim)
        return pc_fail(err, PC_ERR_INVALID, "forward: KV span shape does not match the model");
    if (atomic_load(&s->dst->frozen)) return pc_fail(err, PC_ERR_INVALID, "forward: sequence %d writes a frozen span", i);
    for (int32_t j = 0; j < i; j++)
        if (seqs[j].dst == s->dst) return pc_fail(err, PC_ERR_INVALID, "forward: sequences %d and %d share a dst", j, i);
    for (int32_t t = 0; t < s->n; t++) {
        if (s->tokens[t] < 0 || s->tokens[t] >= f->m->hp.n_vocab)
            return pc_fail(err, PC_ERR_RANGE, "forward: token %d at batch index %d is outside the vocabulary (%d)",
                           s->tokens[t], t, f->m->hp.n_vocab);
        if (s->pos[t] < 0) return pc_fail(err, PC_ERR_RANGE, "forward: negative position %d at batch index %d", s->pos[t], t);
    }
    const int64_t total = context_keys(seqs, n_seqs, s);
    if (total > f->n_ctx)
        return pc_fail(err, PC_ERR_RANGE, "forward: context of %lld tokens exceeds the configured %lld", (long long)total,
                       (long long)f->n_ctx);
    return PC_OK;
}

/* Per-sequence bookkeeping for n sequences; grows only. */
static pc_status reserve_seqs(pc_forward *f, int32_t n, int32_t n_last, pc_error *err) {
    if (n > f->cap_seqs) {
        pc_kv_list *l = realloc(f->lists, (size_t)n * sizeof *l);
        if (l) {
            memset(l + f->cap_seqs, 0, (size_t)(n - f->cap_seqs) * sizeof *l);
            f->lists = l;
        }
        int32_t *off = realloc(f->off, (size_t)n * sizeof *off);
        if (off) f->off = off;
        int32_t *row0 = realloc(f->row0, (size_t)n * sizeof *row0);
        if (row0) f->row0 = row0;
        if (!l || !off || !row0) return pc_fail(err, PC_ERR_NOMEM, "forward: out of memory for %d sequences", n);
        f->cap_seqs = n;
    }
    if (n_last > 1 && n_last > f->cap_lg) {
        float *lg = realloc(f->lg, (size_t)n_last * (size_t)f->m->hp.n_vocab * sizeof *lg);
        if (!lg) return pc_fail(err, PC_ERR_NOMEM, "forward: out of memory for %d rows of logits", n_last);
        f->lg = lg;
        f->cap_lg = n_last;
    }
    return PC_OK;
}

static pc_status build_lists(pc_forward *f, const pc_fwd_seq *seqs, int32_t n_seqs, pc_error *err) {
    for (int32_t i = 0; i < n_seqs; i++) {
        pc_kv_list *l = &f->lists[i];
        l->n = 0;
        pc_status s = PC_OK;
        for (int32_t j = 0; s == PC_OK && seqs[i].ctx && j < seqs[i].ctx->n; j++)
            s = pc_kv_list_push(l, seqs[i].ctx->spans[j], err);
        if (s == PC_OK) s = pc_kv_list_push(l, seqs[i].dst, err);
        if (s != PC_OK) return s;
    }
    return PC_OK;
}

pc_status pc_forward_run_batch(pc_forward *f, const pc_fwd_seq *seqs, int32_t n_seqs, pc_error *err) {
    if (n_seqs <= 0) return pc_fail(err, PC_ERR_INVALID, "forward: empty batch");
    batch b = {.seqs = seqs, .n_seqs = n_seqs};
    int32_t n_last = 0;
    for (int32_t i = 0; i < n_seqs; i++) {
        pc_status s = check_seq(f, seqs, n_seqs, i, err);
        if (s != PC_OK) return s;
        b.n += seqs[i].n;
        n_last += seqs[i].mode == PC_LOGITS_LAST;
        if (b.n > f->nb) return pc_fail(err, PC_ERR_RANGE, "forward: batch of more than %d rows", f->nb);
    }
    pc_status s = reserve_seqs(f, n_seqs, n_last, err);
    for (int32_t i = 0; s == PC_OK && i < n_seqs; i++) s = pc_kv_span_reserve(seqs[i].dst, seqs[i].n, err);
    if (s == PC_OK) s = build_lists(f, seqs, n_seqs, err);
    if (s != PC_OK) return s;
    run_rows(f, &b);
    return PC_OK;
}

pc_status pc_forward_run(pc_forward *f, const pc_kv_list *ctx, pc_kv_span *dst, const int32_t *tokens,
                         const int32_t *pos, int32_t n, pc_logits_mode mode, float *logits, pc_error *err) {
    if (n <= 0) return pc_fail(err, PC_ERR_INVALID, "forward: empty batch");
    /* The whole run is checked before its first chunk writes anything. */
    pc_fwd_seq whole = {.ctx = ctx, .dst = dst, .tokens = tokens, .pos = pos, .n = n, .mode = PC_LOGITS_NONE};
    pc_status s = check_seq(f, &whole, 1, 0, err);
    if (s != PC_OK) return s;
    if ((s = pc_kv_span_reserve(dst, n, err)) != PC_OK) return s;
    for (int32_t done = 0; done < n; done += f->nb) {
        const int32_t c = n - done < f->nb ? n - done : f->nb;
        const int last_chunk = done + c == n;
        pc_fwd_seq chunk = {.ctx = ctx, .dst = dst, .tokens = tokens + done, .pos = pos + done, .n = c,
                            .mode = mode == PC_LOGITS_ALL ? PC_LOGITS_ALL : (last_chunk ? mode : PC_LOGITS_NONE),
                            .logits = mode == PC_LOGITS_ALL ? logits + (int64_t)done * f->m->hp.n_vocab : logits};
        if ((s = pc_forward_run_batch(f, &chunk, 1, err)) != PC_OK) return s;
    }
    return PC_OK;
}
