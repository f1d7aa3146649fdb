/* forward.c - the layer loop. The one place that knows the order of a
 * transformer block; every step it names runs on a backend (backend.h) over
 * the backend's own buffers:
 *   x residual stream, xn normed input of a sublayer, q k v projections,
 *   att attention output, gate up feed-forward halves (pc_acts).
 * A batch holds the rows of one or more sequences, each attending over its own
 * span list; the products run once over all rows. A backend that takes fewer
 * sequences a batch (max_seqs) gets them one after another, in order. */
#include "forward/forward.h"

#include <stdlib.h>
#include <string.h>

#include "util/error.h"

struct pc_forward {
    const pc_model *m;
    pc_backend *b;
    int32_t nb;
    int64_t n_ctx;
    int32_t *tok, *pos;       /* [nb] the batch's rows, sequence after sequence */
    int32_t *rows;            /* [nb] rows whose logits are asked for */
    /* Per sequence of the current batch (capacity kept between calls):
     * lists[i] = seq i's ctx spans + its dst; bseqs[i] its rows and dst. */
    pc_kv_list *lists;
    pc_bseq *bseqs;
    int32_t cap_seqs;
    float *lg;                /* [cap_lg][n_vocab] logits of the LAST rows of a multi-sequence batch */
    int32_t cap_lg;
};

/* What an architecture row asks for that no backend's layer loop does
 * (NULL: nothing). A row that sets one would otherwise run as a llama block
 * and give wrong logits without a word. */
static const char *unimplemented(const pc_arch_desc *a) {
    if (a->norm != PC_NORM_RMS) return "layer norm (only RMS norm is implemented)";
    if (a->pos == PC_POS_ALIBI) return "ALiBi positions";
    if (a->ffn == PC_FFN_GEGLU) return "a GeGLU feed-forward";
    if (a->ffn == PC_FFN_GELU) return "a GELU feed-forward";
    if (a->qk_norm) return "q/k norms";
    if (a->post_norms) return "post-attention and post-feed-forward norms";
    if (a->embd_scale) return "embedding scaling";
    return NULL;
}

pc_status pc_forward_create_on(const pc_model *m, const pc_backend_params *p, int32_t nb, int64_t n_ctx,
                               pc_forward **out, pc_error *err) {
    *out = NULL;
    if (nb <= 0 || n_ctx <= 0) return pc_fail(err, PC_ERR_INVALID, "batch size %d and context %lld must be > 0", nb, (long long)n_ctx);
    const char *missing = unimplemented(m->arch);
    if (missing)
        return pc_fail(err, PC_ERR_UNSUPPORTED, "architecture '%s' needs %s, which the forward pass does not implement",
                       m->arch->name, missing);
    pc_forward *f = calloc(1, sizeof *f);
    if (!f) return pc_fail(err, PC_ERR_NOMEM, "out of memory creating forward state");
    f->m = m;
    f->nb = nb;
    f->n_ctx = n_ctx;
    f->tok = malloc(sizeof(int32_t) * (size_t)nb);
    f->pos = malloc(sizeof(int32_t) * (size_t)nb);
    f->rows = malloc(sizeof(int32_t) * (size_t)nb);
    if (!f->tok || !f->pos || !f->rows) {
        pc_forward_free(f);
        return pc_fail(err, PC_ERR_NOMEM, "out of memory for forward buffers (batch %d)", nb);
    }
    pc_status s = pc_backend_create(m, p, nb, n_ctx, &f->b, err);
    if (s != PC_OK) {
        pc_forward_free(f);
        return s;
    }
    *out = f;
    return PC_OK;
}

pc_status pc_forward_create(const pc_model *m, pc_pool *pool, int32_t nb, int64_t n_ctx, pc_isa isa, pc_forward **out,
                            pc_error *err) {
    pc_backend_params p = {.kind = PC_BACKEND_CPU, .pool = pool, .isa = isa};
    return pc_forward_create_on(m, &p, nb, n_ctx, out, err);
}

void pc_forward_free(pc_forward *f) {
    if (!f) return;
    pc_backend_free(f->b);
    void *bufs[] = {f->tok, f->pos, f->rows, f->bseqs, f->lg};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
    for (int32_t i = 0; i < f->cap_seqs; i++) pc_kv_list_free(&f->lists[i]);
    free(f->lists);
    free(f);
}

int32_t pc_forward_batch_size(const pc_forward *f) { return f->nb; }
const char *pc_forward_backend_name(const pc_forward *f) { return f->b->ops->name; }
pc_backend_kind pc_forward_backend_kind(const pc_forward *f) { return f->b->kind; }

pc_kv_span *pc_forward_new_span_at(pc_forward *f, int32_t cap, pc_kv_loc loc) {
    return f->b->ops->span_new(f->b, cap, loc);
}

pc_kv_span *pc_forward_new_span(pc_forward *f, int32_t cap) { return pc_forward_new_span_at(f, cap, f->b->span_loc); }

pc_kv_span *pc_forward_copy_span(pc_forward *f, const pc_kv_span *src, pc_kv_loc loc) {
    return f->b->ops->span_copy(f->b, src, loc);
}

/* ---- sublayers ---- */

/* The attention sublayer's input: its norm, Q, K and V, the qkv step. */
static void attention_in(pc_forward *f, const pc_layer_weights *w, int32_t layer, int32_t n) {
    pc_backend *b = f->b;
    const pc_backend_ops *op = b->ops;
    const pc_acts *a = &b->acts;
    op->norm(b, a->xn, a->x, &w->attn_norm, n);
    if (op->matmul_qkv) {
        op->matmul_qkv(b, w, layer, a->xn, n);
    } else {
        const pc_weight *qkv[3] = {&w->wq, &w->wk, &w->wv};
        void *const qkv_out[3] = {a->q, a->k, a->v};
        op->matmul(b, qkv, qkv_out, 3, a->xn, n);
        op->qkv(b, w, layer);
    } /* every row's K and V stored before any row attends */
}

static void ffn_block(pc_forward *f, const pc_layer_weights *w, int32_t n) {
    pc_backend *b = f->b;
    const pc_backend_ops *op = b->ops;
    const pc_acts *a = &b->acts;
    op->norm(b, a->xn, a->x, &w->ffn_norm, n);
    if (op->ffn) {
        op->ffn(b, w, a->xn, n);
        return;
    }
    if (op->matmul_swiglu) {
        op->matmul_swiglu(b, &w->ffn_gate, &w->ffn_up, a->xn, n);
    } else {
        const pc_weight *gu[2] = {&w->ffn_gate, &w->ffn_up};
        void *const gu_out[2] = {a->gate, a->up};
        op->matmul(b, gu, gu_out, 2, a->xn, n);
        op->swiglu(b, n);
    }
    op->matmul_add(b, &w->ffn_down, a->gate, n, a->x);
}

/* Each layer's attention input, attention, and what follows it: by the
 * backend's after_attention when it takes the chunk (then the next layer's
 * attention input is done too), else the output projection and the
 * feed-forward block step by step. */
static void run_layers(pc_forward *f, int32_t n) {
    pc_backend *b = f->b;
    const pc_backend_ops *op = b->ops;
    const int32_t L = f->m->hp.n_layer;
    bool next_in_done = false;
    for (int32_t l = 0; l < L; l++) {
        const pc_layer_weights *w = &f->m->layers[l], *next = l + 1 < L ? &f->m->layers[l + 1] : NULL;
        if (!next_in_done) attention_in(f, w, l, n);
        op->attention(b, l);
        next_in_done = op->after_attention && op->after_attention(b, w, next, l, n);
        if (next_in_done) continue;
        op->matmul_add(b, &w->wo, b->acts.att, n, b->acts.x);
        ffn_block(f, w, n);
    }
}

/* The batch being run: its sequences and the total of their rows. */
typedef struct batch {
    const pc_fwd_seq *seqs;
    int32_t n_seqs, n;
} batch;

static pc_status logits_of(pc_forward *f, const int32_t *rows, int32_t n, float *out, pc_error *err) {
    return f->b->ops->logits(f->b, &f->m->output_norm, &f->m->output, rows, n, out, err);
}

/* The LAST rows of several sequences are gathered into one product, so a
 * batch of decodes reads the output matrix once, not once per sequence. */
static pc_status output(pc_forward *f, const batch *b, pc_error *err) {
    const int64_t V = f->m->hp.n_vocab;
    int32_t n_last = 0, last_seq = -1;
    pc_status s = PC_OK;
    for (int32_t i = 0; i < b->n_seqs && s == PC_OK; i++) {
        const pc_fwd_seq *q = &b->seqs[i];
        if (q->mode == PC_LOGITS_ALL) {
            for (int32_t t = 0; t < q->n; t++) f->rows[t] = f->bseqs[i].off + t;
            s = logits_of(f, f->rows, q->n, q->logits, err);
        }
    }
    for (int32_t i = 0; i < b->n_seqs; i++)
        if (b->seqs[i].mode == PC_LOGITS_LAST) {
            f->rows[n_last++] = f->bseqs[i].off + b->seqs[i].n - 1;
            last_seq = i;
        }
    if (s != PC_OK || n_last == 0) return s;
    if (n_last == 1) return logits_of(f, f->rows, 1, b->seqs[last_seq].logits, err); /* straight into the caller's buffer */
    if ((s = logits_of(f, f->rows, n_last, f->lg, err)) != PC_OK) return s;
    for (int32_t i = 0, j = 0; i < b->n_seqs; i++)
        if (b->seqs[i].mode == PC_LOGITS_LAST) memcpy(b->seqs[i].logits, f->lg + j++ * V, sizeof(float) * V);
    return PC_OK;
}

static int32_t logit_rows(const batch *b) {
    int32_t n = 0;
    for (int32_t i = 0; i < b->n_seqs; i++)
        n += b->seqs[i].mode == PC_LOGITS_ALL ? b->seqs[i].n : b->seqs[i].mode == PC_LOGITS_LAST;
    return n;
}

/* Rows in, K/V appended to each dst, logits out. Inputs are checked; on an
 * error of the backend every dst is put back as it was. */
static pc_status run_rows(pc_forward *f, const batch *b, pc_error *err) {
    pc_backend *be = f->b;
    for (int32_t i = 0, r = 0; i < b->n_seqs; r += b->seqs[i].n, i++) {
        const pc_fwd_seq *s = &b->seqs[i];
        f->bseqs[i] = (pc_bseq){.list = &f->lists[i], .dst = s->dst, .pos = s->pos, .off = r, .row0 = s->dst->n, .n = s->n};
        memcpy(f->tok + r, s->tokens, (size_t)s->n * sizeof *s->tokens);
        memcpy(f->pos + r, s->pos, (size_t)s->n * sizeof *s->pos);
        memcpy(s->dst->pos + s->dst->n, s->pos, (size_t)s->n * sizeof *s->pos);
    }
    for (int32_t i = 0; i < b->n_seqs; i++) b->seqs[i].dst->n += b->seqs[i].n;
    const pc_chunk c = {.seqs = f->bseqs, .n_seqs = b->n_seqs, .tokens = f->tok, .pos = f->pos, .n = b->n,
                        .n_logits = logit_rows(b)};
    pc_status s = be->ops->begin(be, &c, err);
    if (s == PC_OK) {
        be->ops->embed(be, &f->m->tok_embd, be->acts.x);
        run_layers(f, b->n);
        s = output(f, b, err);
        const pc_status e = be->ops->end(be, err);
        if (s == PC_OK) s = e;
    }
    if (s != PC_OK)
        for (int32_t i = 0; i < b->n_seqs; i++) b->seqs[i].dst->n = f->bseqs[i].row0;
    return s;
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
        pc_bseq *bs = realloc(f->bseqs, (size_t)n * sizeof *bs);
        if (bs) f->bseqs = bs;
        if (!l || !bs) return pc_fail(err, PC_ERR_NOMEM, "forward: out of memory for %d sequences", n);
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
    if (n_seqs > f->b->max_seqs) { /* one after another: each sees the rows the ones before it stored */
        for (int32_t i = 0; i < n_seqs; i++) {
            pc_status s = pc_forward_run_batch(f, &seqs[i], 1, err);
            if (s != PC_OK) return s;
        }
        return PC_OK;
    }
    pc_status s = reserve_seqs(f, n_seqs, n_last, err);
    for (int32_t i = 0; s == PC_OK && i < n_seqs; i++) s = pc_kv_span_reserve(seqs[i].dst, seqs[i].n, err);
    if (s == PC_OK) s = build_lists(f, seqs, n_seqs, err);
    if (s != PC_OK) return s;
    return run_rows(f, &b, err);
}

pc_status pc_forward_run(pc_forward *f, const pc_kv_list *ctx, pc_kv_span *dst, const int32_t *tokens,
                         const int32_t *pos, int32_t n, pc_logits_mode mode, float *logits, pc_error *err) {
    if (n <= 0) return pc_fail(err, PC_ERR_INVALID, "forward: empty batch");
    /* The whole run is checked before its first chunk writes anything. */
    pc_fwd_seq whole = {.ctx = ctx, .dst = dst, .tokens = tokens, .pos = pos, .n = n, .mode = PC_LOGITS_NONE};
    pc_status s = check_seq(f, &whole, 1, 0, err);
    if (s != PC_OK) return s;
    if ((s = pc_kv_span_reserve(dst, n, err)) != PC_OK) return s;
    const int32_t n0 = dst->n;
    for (int32_t done = 0; done < n; done += f->nb) {
        const int32_t c = n - done < f->nb ? n - done : f->nb;
        const int last_chunk = done + c == n;
        pc_fwd_seq chunk = {.ctx = ctx, .dst = dst, .tokens = tokens + done, .pos = pos + done, .n = c,
                            .mode = mode == PC_LOGITS_ALL ? PC_LOGITS_ALL : (last_chunk ? mode : PC_LOGITS_NONE),
                            .logits = mode == PC_LOGITS_ALL ? logits + (int64_t)done * f->m->hp.n_vocab : logits};
        if ((s = pc_forward_run_batch(f, &chunk, 1, err)) != PC_OK) {
            dst->n = n0;
            return s;
        }
    }
    return PC_OK;
}
