/* test_forward_batch.c - a batch of several sequences (the rows of several
 * requests, each over its own span list) gives every sequence bitwise the
 * logits and the K/V it gets run alone; and bad batches are refused whole.
 *
 * The batch mixes what a server step holds: one-row decodes over contexts of
 * different lengths and span splits, multi-row prefill chunks, a sequence
 * asking for every row's logits, and two consecutive pieces of one request
 * (the second lists the first's dst). Over tiny seeded models of the weight
 * types whose matmuls take different paths for one row and for many. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "forward/forward.h"
#include "forward_fixture.h"

/* A request's context: its prompt run into spans of the given sizes. */
typedef struct ctx {
    pc_kv_span *spans[4];
    int n_spans;
    pc_kv_list list;
    int32_t next_pos;
} ctx;

static void make_ctx(fixture *fx, ctx *c, int seed, const int *sizes, int n_sizes) {
    memset(c, 0, sizeof *c);
    for (int s = 0; s < n_sizes; s++) {
        int32_t tok[64], pos[64];
        for (int i = 0; i < sizes[s]; i++) {
            tok[i] = (seed * 13 + c->next_pos * 7 + 1) % fx->m->hp.n_vocab;
            pos[i] = c->next_pos++;
        }
        pc_kv_span *sp = pc_kv_span_for_model(fx->m, sizes[s]);
        pc_error err = {0};
        CHECK_MSG(pc_forward_run(fx->f, &c->list, sp, tok, pos, sizes[s], PC_LOGITS_NONE, NULL, &err) == PC_OK, "%s",
                  err.msg);
        pc_kv_span_freeze(sp);
        c->spans[c->n_spans++] = sp;
        pc_kv_list_push(&c->list, sp, NULL);
    }
}

static void free_ctx(ctx *c) {
    for (int i = 0; i < c->n_spans; i++) pc_kv_span_release(c->spans[i]);
    pc_kv_list_free(&c->list);
}

static int same_kv(const pc_kv_span *a, const pc_kv_span *b) {
    if (a->n != b->n || memcmp(a->pos, b->pos, sizeof(int32_t) * (size_t)a->n)) return 0;
    for (int32_t l = 0; l < a->n_layer; l++)
        for (int32_t t = 0; t < a->n; t++) {
            if (memcmp(pc_kv_v(a, l, t), pc_kv_v(b, l, t), sizeof(pc_f16) * (size_t)a->dim)) return 0;
            for (int32_t d = 0; d < a->dim; d++)
                if (*pc_kv_k_at(a, l, t, d) != *pc_kv_k_at(b, l, t, d)) return 0;
        }
    return 1;
}

enum { NSEQ = 6 };

typedef struct seq_spec {
    int ctx_sizes[3], n_ctx_sizes; /* the request's context before the batch */
    int rows;                      /* rows in the batch */
    pc_logits_mode mode;
} seq_spec;

static void check_variant(const char *label, tiny_spec sp) {
    fixture fx;
    if (fixture_open(&fx, &sp, 2, 64)) {
        CHECK_MSG(0, "%s: could not build the tiny model", label);
        fixture_close(&fx);
        return;
    }
    const int V = sp.n_vocab;
    static const seq_spec specs[NSEQ] = {
        {{9, 7}, 2, 1, PC_LOGITS_LAST},  /* a decode over two cached spans */
        {{20}, 1, 1, PC_LOGITS_LAST},    /* a decode over one */
        {{0}, 0, 13, PC_LOGITS_LAST},    /* a prefill from scratch */
        {{5, 3, 30}, 3, 11, PC_LOGITS_ALL}, /* a prefill chunk after three spans, every row's logits */
        {{16}, 1, 1, PC_LOGITS_NONE},    /* a row whose logits nobody wants */
        {{8}, 1, 1, PC_LOGITS_LAST},     /* another decode */
    };
    ctx cx[NSEQ], cy[NSEQ];
    pc_kv_span *alone[NSEQ], *batched[NSEQ];
    float *lg_alone[NSEQ], *lg_batch[NSEQ];
    int32_t tok[NSEQ][16], pos[NSEQ][16];
    pc_fwd_seq seqs[NSEQ];
    for (int i = 0; i < NSEQ; i++) {
        const seq_spec *s = &specs[i];
        make_ctx(&fx, &cx[i], i, s->ctx_sizes, s->n_ctx_sizes);
        make_ctx(&fx, &cy[i], i, s->ctx_sizes, s->n_ctx_sizes);
        for (int r = 0; r < s->rows; r++) {
            tok[i][r] = (i * 5 + r * 3 + 2) % V;
            pos[i][r] = cx[i].next_pos + r;
        }
        const size_t nl = (size_t)(s->mode == PC_LOGITS_ALL ? s->rows : 1) * V;
        lg_alone[i] = calloc(nl, sizeof(float));
        lg_batch[i] = calloc(nl, sizeof(float));
        alone[i] = pc_kv_span_for_model(fx.m, 2);
        batched[i] = pc_kv_span_for_model(fx.m, 2);
        pc_error err = {0};
        CHECK_MSG(pc_forward_run(fx.f, &cx[i].list, alone[i], tok[i], pos[i], s->rows, s->mode,
                                 s->mode ? lg_alone[i] : NULL, &err) == PC_OK, "%s", err.msg);
        seqs[i] = (pc_fwd_seq){.ctx = &cy[i].list, .dst = batched[i], .tokens = tok[i], .pos = pos[i], .n = s->rows,
                               .mode = s->mode, .logits = s->mode ? lg_batch[i] : NULL};
    }
    pc_error err = {0};
    CHECK_MSG(pc_forward_run_batch(fx.f, seqs, NSEQ, &err) == PC_OK, "%s: %s", label, err.msg);
    for (int i = 0; i < NSEQ; i++) {
        const size_t nl = (size_t)(specs[i].mode == PC_LOGITS_ALL ? specs[i].rows : 1) * V;
        CHECK_MSG(memcmp(lg_alone[i], lg_batch[i], nl * sizeof(float)) == 0, "%s: sequence %d's logits differ in a batch",
                  label, i);
        CHECK_MSG(same_kv(alone[i], batched[i]), "%s: sequence %d's K/V differ in a batch", label, i);
    }
    for (int i = 0; i < NSEQ; i++) {
        free_ctx(&cx[i]);
        free_ctx(&cy[i]);
        pc_kv_span_release(alone[i]);
        pc_kv_span_release(batched[i]);
        free(lg_alone[i]);
        free(lg_batch[i]);
    }
    fixture_close(&fx);
}

/* Two consecutive pieces of one request in one batch (the second lists the
 * first's dst), beside another request: what running them one after the
 * other gives. */
static void check_consecutive_pieces(void) {
    tiny_spec sp = tiny_default();
    sp.wtype = PC_TYPE_Q4_1;
    sp.etype = PC_TYPE_Q8_0;
    fixture fx;
    if (fixture_open(&fx, &sp, 2, 32)) {
        CHECK_MSG(0, "could not build the tiny model");
        fixture_close(&fx);
        return;
    }
    const int V = sp.n_vocab;
    int32_t tok[20], pos[20];
    for (int i = 0; i < 20; i++) {
        tok[i] = (i * 11 + 5) % V;
        pos[i] = i + (i >= 9 ? 4 : 0); /* a gap, as after a short argument */
    }
    float la[64], lb[64], lother_a[64], lother_b[64];
    pc_error err = {0};
    /* one after the other */
    pc_kv_span *a1 = pc_kv_span_for_model(fx.m, 9), *a2 = pc_kv_span_for_model(fx.m, 11);
    pc_kv_list la1 = {0};
    CHECK(pc_forward_run(fx.f, NULL, a1, tok, pos, 9, PC_LOGITS_NONE, NULL, &err) == PC_OK);
    pc_kv_list_push(&la1, a1, NULL);
    CHECK(pc_forward_run(fx.f, &la1, a2, tok + 9, pos + 9, 11, PC_LOGITS_LAST, la, &err) == PC_OK);
    pc_kv_span *o1 = pc_kv_span_for_model(fx.m, 4);
    CHECK(pc_forward_run(fx.f, NULL, o1, tok + 3, pos, 4, PC_LOGITS_LAST, lother_a, &err) == PC_OK);
    /* together */
    pc_kv_span *b1 = pc_kv_span_for_model(fx.m, 9), *b2 = pc_kv_span_for_model(fx.m, 11), *o2 = pc_kv_span_for_model(fx.m, 4);
    pc_kv_list lb1 = {0};
    pc_kv_list_push(&lb1, b1, NULL);
    pc_fwd_seq seqs[3] = {
        {.ctx = NULL, .dst = b1, .tokens = tok, .pos = pos, .n = 9, .mode = PC_LOGITS_NONE},
        {.ctx = NULL, .dst = o2, .tokens = tok + 3, .pos = pos, .n = 4, .mode = PC_LOGITS_LAST, .logits = lother_b},
        {.ctx = &lb1, .dst = b2, .tokens = tok + 9, .pos = pos + 9, .n = 11, .mode = PC_LOGITS_LAST, .logits = lb},
    };
    CHECK_MSG(pc_forward_run_batch(fx.f, seqs, 3, &err) == PC_OK, "%s", err.msg);
    CHECK_MSG(memcmp(la, lb, sizeof(float) * (size_t)V) == 0, "consecutive pieces in one batch differ");
    CHECK_MSG(memcmp(lother_a, lother_b, sizeof(float) * (size_t)V) == 0, "the other request differs");
    CHECK(same_kv(a1, b1) && same_kv(a2, b2) && same_kv(o1, o2));
    pc_kv_list_free(&la1);
    pc_kv_list_free(&lb1);
    pc_kv_span *all[] = {a1, a2, o1, b1, b2, o2};
    for (int i = 0; i < 6; i++) pc_kv_span_release(all[i]);
    fixture_close(&fx);
}

/* Bad batches are refused before anything is written. */
static void check_refusals(void) {
    tiny_spec sp = tiny_default();
    fixture fx;
    if (fixture_open(&fx, &sp, 1, 8)) {
        fixture_close(&fx);
        CHECK(0);
        return;
    }
    int32_t tok[8] = {1, 2, 3, 4, 5, 6, 7, 8}, pos[8] = {0, 1, 2, 3, 4, 5, 6, 7}, bad_tok = 9999;
    float lg[64];
    pc_kv_span *a = pc_kv_span_for_model(fx.m, 8), *b = pc_kv_span_for_model(fx.m, 8), *frozen = pc_kv_span_for_model(fx.m, 8);
    pc_kv_span_freeze(frozen);
    pc_error err = {0};
    pc_fwd_seq two_a[2] = {{.dst = a, .tokens = tok, .pos = pos, .n = 2}, {.dst = a, .tokens = tok, .pos = pos, .n = 2}};
    CHECK(pc_forward_run_batch(fx.f, two_a, 2, &err) == PC_ERR_INVALID && strstr(err.msg, "share"));
    pc_fwd_seq too_many[2] = {{.dst = a, .tokens = tok, .pos = pos, .n = 5}, {.dst = b, .tokens = tok, .pos = pos, .n = 4}};
    CHECK(pc_forward_run_batch(fx.f, too_many, 2, &err) == PC_ERR_RANGE);
    pc_fwd_seq one_bad[2] = {{.dst = a, .tokens = tok, .pos = pos, .n = 2},
                             {.dst = b, .tokens = &bad_tok, .pos = pos, .n = 1, .mode = PC_LOGITS_LAST, .logits = lg}};
    CHECK(pc_forward_run_batch(fx.f, one_bad, 2, &err) == PC_ERR_RANGE && strstr(err.msg, "vocabulary"));
    pc_fwd_seq to_frozen[2] = {{.dst = a, .tokens = tok, .pos = pos, .n = 2}, {.dst = frozen, .tokens = tok, .pos = pos, .n = 1}};
    CHECK(pc_forward_run_batch(fx.f, to_frozen, 2, &err) == PC_ERR_INVALID);
    pc_fwd_seq no_buf[1] = {{.dst = a, .tokens = tok, .pos = pos, .n = 1, .mode = PC_LOGITS_LAST}};
    CHECK(pc_forward_run_batch(fx.f, no_buf, 1, &err) == PC_ERR_INVALID);
    CHECK(a->n == 0 && b->n == 0 && frozen->n == 0);
    pc_kv_span_release(a);
    pc_kv_span_release(b);
    pc_kv_span_release(frozen);
    fixture_close(&fx);
}

int main(void) {
    tiny_spec sp = tiny_default();
    check_variant("llama f32", sp);

    sp = tiny_default();
    sp.wtype = PC_TYPE_Q4_1;
    sp.etype = PC_TYPE_Q8_0;
    check_variant("llama q4_1 (default model's types)", sp);

    sp = tiny_default();
    sp.arch = "qwen2";
    sp.qkv_bias = 1;
    sp.tied = 0;
    sp.wtype = PC_TYPE_Q4_0;
    check_variant("qwen2 neox+bias q4_0", sp);

    sp = tiny_default();
    sp.n_embd = 256;
    sp.n_ff = 512;
    sp.wtype = PC_TYPE_Q4_K;
    sp.etype = PC_TYPE_Q6_K;
    sp.tied = 0;
    check_variant("llama q4_K/q6_K", sp);

    check_consecutive_pieces();
    check_refusals();
    return check_report();
}
