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
    void *mm_scratch;
    void *attn_scratch;
    size_t attn_scratch_per_thread;
    void *attn_shared;
    pc_kv_list list; /* ctx spans + dst, rebuilt per call (capacity kept) */
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
    f->mm_scratch = alloc64(mm);
    f->attn_scratch_per_thread = (pc_attn_scratch_size(hp->n_head, hp->n_head_kv, hp->head_dim, n_ctx) + 63) & ~(size_t)63;
    f->attn_scratch = alloc64(f->attn_scratch_per_thread * (size_t)pc_pool_size(pool));
    f->attn_shared = alloc64(pc_attn_shared_size(hp->n_head, hp->n_head_kv, n_ctx));
    if (!f->x || !f->xn || !f->q || !f->k || !f->v || !f->att || !f->gate || !f->up || !f->tmp || !f->rc || !f->rs ||
        !f->mm_scratch || !f->attn_scratch || !f->attn_shared) {
        pc_forward_free(f);
        return pc_fail(err, PC_ERR_NOMEM, "out of memory for forward buffers (batch %d, context %lld)", nb, (long long)n_ctx);
    }
    *out = f;
    return PC_OK;
}

void pc_forward_free(pc_forward *f) {
    if (!f) return;
    void *bufs[] = {f->x, f->xn, f->q, f->k, f->v, f->att, f->gate, f->up, f->tmp, f->rc, f->rs, f->mm_scratch, f->attn_scratch,
                    f->attn_shared};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
    pc_kv_list_free(&f->list);
    free(f);
}

/* ---- sublayers ---- */

static pc_matmul_args mm_args(pc_forward *f, const pc_weight *w, const float *x, int32_t n, float *y) {
    return (pc_matmul_args){.wt = w->type, .w = w->data, .n_in = w->ne0, .n_out = w->ne1, .x = x, .n_tok = n,
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

static void store_kv(pc_forward *f, pc_kv_span *dst, int32_t layer, int32_t row0, int32_t n) {
    const int32_t D = dst->dim;
    for (int32_t t = 0; t < n; t++) {
        pc_f16 *kd = pc_kv_k_at(dst, layer, row0 + t, 0), *vd = pc_kv_v(dst, layer, row0 + t);
        const float *ks = f->k + (int64_t)t * D, *vs = f->v + (int64_t)t * D;
        for (int32_t d = 0; d < D; d++) {
            kd[(size_t)d * PC_KV_BLOCK] = pc_f32_to_f16(ks[d]);
            vd[d] = pc_f32_to_f16(vs[d]);
        }
    }
}

static void attention_block(pc_forward *f, const pc_layer_weights *w, int32_t layer, pc_kv_span *dst, int32_t row0,
                            const int32_t *pos, int32_t n) {
    const pc_hparams *hp = &f->m->hp;
    const int64_t Q = (int64_t)hp->n_head * hp->head_dim, KV = (int64_t)hp->n_head_kv * hp->head_dim;
    const int neox = f->m->arch->pos == PC_POS_ROPE_NEOX;
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
    store_kv(f, dst, layer, row0, n);
    pc_attn_args a = {.q = f->q, .q_stride = Q, .q_pos = pos, .n_q = n, .n_head = hp->n_head,
                      .n_head_kv = hp->n_head_kv, .head_dim = hp->head_dim, .ctx = &f->list, .layer = layer,
                      .scale = 1.0f / sqrtf((float)hp->head_dim), .out = f->att, .out_stride = Q,
                      .scratch = f->attn_scratch, .scratch_per_thread = f->attn_scratch_per_thread,
                      .shared = f->attn_shared, .isa = f->isa};
    pc_attention(f->pool, &a);
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

static void embed(pc_forward *f, const int32_t *tokens, int32_t n) {
    const pc_weight *te = &f->m->tok_embd;
    const size_t row = pc_row_size(te->type, te->ne0);
    for (int32_t t = 0; t < n; t++)
        pc_dequantize_row(te->type, (const char *)te->data + (size_t)tokens[t] * row, f->x + (int64_t)t * te->ne0, te->ne0);
}

static void output(pc_forward *f, int32_t first, int32_t n, float *logits) {
    const pc_hparams *hp = &f->m->hp;
    rmsnorm_rows(f, f->xn, f->x + (int64_t)first * hp->n_embd, &f->m->output_norm, n, hp->n_embd);
    matmul(f, &f->m->output, f->xn, n, logits);
}

/* One chunk of at most nb tokens. */
static void run_chunk(pc_forward *f, pc_kv_span *dst, const int32_t *tokens, const int32_t *pos, int32_t n,
                      pc_logits_mode mode, float *logits) {
    const pc_hparams *hp = &f->m->hp;
    const int32_t row0 = dst->n;
    memcpy(dst->pos + row0, pos, (size_t)n * sizeof *pos);
    dst->n = row0 + n;
    const int32_t R = hp->rope_dim / 2;
    const float *ff = f->m->rope_freqs.data;
    for (int32_t t = 0; t < n; t++)
        pc_rope_cache(f->rc + t * R, f->rs + t * R, pos[t], hp->rope_dim, hp->rope_theta, hp->rope_scale, ff);
    embed(f, tokens, n);
    for (int32_t l = 0; l < hp->n_layer; l++) {
        attention_block(f, &f->m->layers[l], l, dst, row0, pos, n);
        ffn_block(f, &f->m->layers[l], n);
    }
    if (mode == PC_LOGITS_ALL) output(f, 0, n, logits);
    if (mode == PC_LOGITS_LAST) output(f, n - 1, 1, logits);
}

static pc_status check_inputs(pc_forward *f, const pc_kv_list *ctx, const pc_kv_span *dst, const int32_t *tokens,
                              const int32_t *pos, int32_t n, pc_error *err) {
    if (n <= 0) return pc_fail(err, PC_ERR_INVALID, "forward: empty batch");
    if (dst->n_layer != f->m->hp.n_layer || dst->dim != f->m->hp.n_head_kv * f->m->hp.head_dim)
        return pc_fail(err, PC_ERR_INVALID, "forward: KV span shape does not match the model");
    for (int32_t t = 0; t < n; t++) {
        if (tokens[t] < 0 || tokens[t] >= f->m->hp.n_vocab)
            return pc_fail(err, PC_ERR_RANGE, "forward: token %d at batch index %d is outside the vocabulary (%d)",
                           tokens[t], t, f->m->hp.n_vocab);
        if (pos[t] < 0) return pc_fail(err, PC_ERR_RANGE, "forward: negative position %d at batch index %d", pos[t], t);
    }
    const int64_t total = (ctx ? pc_kv_list_tokens(ctx) : 0) + dst->n + n;
    if (total > f->n_ctx)
        return pc_fail(err, PC_ERR_RANGE, "forward: context of %lld tokens exceeds the configured %lld",
                       (long long)total, (long long)f->n_ctx);
    return PC_OK;
}

pc_status pc_forward_run(pc_forward *f, const pc_kv_list *ctx, pc_kv_span *dst, const int32_t *tokens,
                         const int32_t *pos, int32_t n, pc_logits_mode mode, float *logits, pc_error *err) {
    pc_status s = check_inputs(f, ctx, dst, tokens, pos, n, err);
    if (s != PC_OK) return s;
    if ((s = pc_kv_span_reserve(dst, n, err)) != PC_OK) return s;
    f->list.n = 0;
    for (int32_t i = 0; ctx && i < ctx->n; i++)
        if ((s = pc_kv_list_push(&f->list, ctx->spans[i], err)) != PC_OK) return s;
    if ((s = pc_kv_list_push(&f->list, dst, err)) != PC_OK) return s;
    for (int32_t done = 0; done < n; done += f->nb) {
        const int32_t c = n - done < f->nb ? n - done : f->nb;
        const int last_chunk = done + c == n;
        pc_logits_mode m = mode == PC_LOGITS_ALL ? PC_LOGITS_ALL : (last_chunk ? mode : PC_LOGITS_NONE);
        float *lg = mode == PC_LOGITS_ALL ? logits + (int64_t)done * f->m->hp.n_vocab : logits;
        run_chunk(f, dst, tokens + done, pos + done, c, m, lg);
    }
    return PC_OK;
}
