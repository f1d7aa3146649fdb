/* generate.c - prefill, then decode and sample until a stop condition, streaming text.
 *
 * Text is streamed in complete UTF-8 pieces; when stop strings are set, the
 * tail that could still become a stop string is held back until it cannot.
 * Every generated token is chosen in one place (choose): the logits observer
 * sees exactly the logits of each token in out->tokens, and teacher forcing
 * replaces only the choice, so a forced run computes what a sampled one would.
 * Also the KL divergence between two logit vectors, for quality measurements. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_internal.h"
#include "engine/sampler.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/error.h"

pc_gen_params pc_gen_default_params(void) {
    return (pc_gen_params){.n_predict = 128, .temp = 0.8f, .top_k = 40, .top_p = 0.95f, .min_p = 0.05f,
                           .repeat_penalty = 1.0f, .repeat_last_n = 64, .seed = 0x5eed};
}

void pc_gen_result_free(pc_gen_result *r) {
    if (!r) return;
    free(r->tokens);
    free(r->text);
    memset(r, 0, sizeof *r);
}

typedef struct gen_state {
    pc_engine *e;
    const pc_gen_input *in;
    int32_t next_pos;
    const pc_gen_params *p;
    pc_token_cb cb;
    void *user;
    pc_sampler *sampler;
    pc_kv_span *span;
    int32_t *history; /* prompt + generated */
    size_t n_history;
    pc_buf text;      /* generated so far (cut at a stop string) */
    size_t emitted;   /* bytes of text handed to cb */
    pc_detok detok;
    pc_stop_set stops;
    pc_gen_result *out;
} gen_state;

/* Emits what is safe to show; returns false when generation must stop. */
static bool emit(gen_state *g, int32_t tok, bool final) {
    size_t keep = 0;
    long at = g->stops.n ? pc_stop_find(&g->stops, g->text.data, g->text.len, &keep) : -1;
    size_t end = g->text.len - (final ? 0 : keep);
    if (at >= 0) {
        end = (size_t)at;
        g->text.len = (size_t)at;
        g->text.data[at] = '\0';
        g->out->stop = PC_STOP_STRING;
    }
    if (end > g->emitted && g->cb && !g->cb(g->user, tok, g->text.data + g->emitted, end - g->emitted)) {
        g->emitted = end;
        if (at < 0) g->out->stop = PC_STOP_CALLBACK;
        return false;
    }
    if (end > g->emitted) g->emitted = end;
    return at < 0;
}

static pc_status accept(gen_state *g, int32_t tok, bool *go_on, pc_error *err) {
    pc_gen_result *r = g->out;
    g->history[g->n_history++] = tok;
    r->tokens[r->n_tokens++] = tok;
    if (!g->p->ignore_eos && pc_tokenizer_is_eog(g->e->tok, tok)) {
        r->stop = PC_STOP_EOG;
        *go_on = false;
        return PC_OK;
    }
    char piece[256];
    size_t n = pc_detok_push(&g->detok, g->e->tok, tok, piece, sizeof piece);
    if (!pc_buf_append(&g->text, piece, n < sizeof piece ? n : sizeof piece))
        return pc_fail(err, PC_ERR_NOMEM, "out of memory for generated text");
    *go_on = emit(g, tok, false);
    return PC_OK;
}

/* The token for the next step: observed, then forced or sampled. */
static int32_t choose(gen_state *g) {
    const pc_gen_params *p = g->p;
    const size_t step = g->out->n_tokens;
    if (p->on_logits) p->on_logits(p->logits_user, step, g->e->logits, g->e->model->hp.n_vocab);
    if (step < p->n_force) return p->force_tokens[step];
    return pc_sampler_sample(g->sampler, g->e->logits, g->history, g->n_history);
}

static pc_status decode_loop(gen_state *g, int32_t first, pc_error *err) {
    pc_engine *e = g->e;
    const int32_t n_vocab = e->model->hp.n_vocab;
    bool go_on = true;
    pc_status s = accept(g, first, &go_on, err);
    double t0 = pc_now_ms();
    while (s == PC_OK && go_on && (int)g->out->n_tokens < g->p->n_predict) {
        if ((g->in->ctx ? pc_kv_list_tokens(g->in->ctx) : 0) + g->span->n >= e->n_ctx) {
            g->out->stop = PC_STOP_CONTEXT;
            break;
        }
        int32_t tok = g->history[g->n_history - 1], pos = g->next_pos++;
        s = pc_forward_run(e->fwd, g->in->ctx, g->span, &tok, &pos, 1, PC_LOGITS_LAST, e->logits, err);
        if (s != PC_OK) break;
        int32_t next = choose(g);
        if (next < 0 || next >= n_vocab) return pc_fail(err, PC_ERR_INVALID, "sampler returned token %d", next);
        s = accept(g, next, &go_on, err);
    }
    g->out->decode_ms = pc_now_ms() - t0;
    if (s == PC_OK) {
        char tail[16];
        size_t n = pc_detok_flush(&g->detok, tail, sizeof tail);
        if (n && g->out->stop != PC_STOP_STRING && !pc_buf_append(&g->text, tail, n))
            return pc_fail(err, PC_ERR_NOMEM, "out of memory for generated text");
        if (g->out->stop != PC_STOP_STRING && g->out->stop != PC_STOP_CALLBACK) emit(g, g->history[g->n_history - 1], true);
    }
    return s;
}

static pc_status prepare(gen_state *g, size_t n, pc_error *err) {
    pc_engine *e = g->e;
    const pc_gen_params *p = g->p;
    if (n == 0) return pc_fail(err, PC_ERR_INVALID, "empty prompt");
    if (p->n_predict <= 0) return pc_fail(err, PC_ERR_INVALID, "n_predict %d must be > 0", p->n_predict);
    if (p->n_force && !p->force_tokens) return pc_fail(err, PC_ERR_INVALID, "n_force %zu without force_tokens", p->n_force);
    for (size_t i = 0; i < p->n_force; i++)
        if (p->force_tokens[i] < 0 || p->force_tokens[i] >= e->model->hp.n_vocab)
            return pc_fail(err, PC_ERR_RANGE, "force_tokens[%zu] = %d is outside the vocabulary of %d", i,
                           p->force_tokens[i], e->model->hp.n_vocab);
    const int64_t before = g->in->ctx ? pc_kv_list_tokens(g->in->ctx) : 0;
    if (before + (int64_t)n + 1 > e->n_ctx)
        return pc_fail(err, PC_ERR_RANGE, "prompt of %lld tokens does not fit the context of %d",
                       (long long)(before + (int64_t)n), e->n_ctx);
    pc_sampler_params sp = {.temp = p->temp, .top_k = p->top_k, .top_p = p->top_p, .min_p = p->min_p,
                            .repeat_penalty = p->repeat_penalty, .repeat_last_n = p->repeat_last_n, .seed = p->seed};
    size_t room = n + (size_t)p->n_predict;
    g->sampler = pc_sampler_create(&sp, e->model->hp.n_vocab);
    g->span = pc_kv_span_for_model(e->model, (int32_t)(room < (size_t)e->n_ctx ? room : (size_t)e->n_ctx));
    g->history = malloc(room * sizeof *g->history);
    g->out->tokens = malloc((size_t)p->n_predict * sizeof *g->out->tokens);
    g->stops.strs = (char **)p->stop;
    g->stops.n = p->n_stop;
    if (!g->sampler || !g->span || !g->history || !g->out->tokens || !pc_buf_reserve(&g->text, 0))
        return pc_fail(err, PC_ERR_NOMEM, "out of memory preparing generation");
    return PC_OK;
}

pc_status pc_gen_run(pc_engine *e, const pc_gen_input *in, const pc_gen_params *p, pc_token_cb cb, void *user,
                     pc_gen_result *out, pc_error *err) {
    memset(out, 0, sizeof *out);
    gen_state g = {.e = e, .in = in, .p = p, .cb = cb, .user = user, .out = out};
    const double t0 = in->t0;
    const size_t n = in->n;
    pc_status s = prepare(&g, n, err);
    if (s == PC_OK) {
        memcpy(g.history, in->tokens, n * sizeof *in->tokens);
        g.n_history = n;
        double tp = pc_now_ms();
        s = pc_forward_run(e->fwd, in->ctx, g.span, in->tokens, in->pos, (int32_t)n, PC_LOGITS_LAST, e->logits, err);
        out->prefill_ms = pc_now_ms() - tp;
        out->kv_bytes = pc_kv_span_cap_bytes(g.span);
        if (s == PC_OK && p->first_logits)
            memcpy(p->first_logits, e->logits, (size_t)e->model->hp.n_vocab * sizeof(float));
        g.next_pos = in->pos[n - 1] + 1;
    }
    if (s == PC_OK) {
        out->n_prompt = n;
        int32_t first = choose(&g);
        out->ttft_ms = pc_now_ms() - t0;
        s = decode_loop(&g, first, err);
        out->decode_tok_s = out->n_tokens > 1 && out->decode_ms > 0 ? (double)(out->n_tokens - 1) / (out->decode_ms / 1e3) : 0;
    }
    out->text = g.text.data;
    pc_sampler_free(g.sampler);
    pc_kv_span_release(g.span);
    free(g.history);
    if (s != PC_OK) pc_gen_result_free(out);
    return s;
}

pc_status pc_engine_generate(pc_engine *e, const int32_t *prompt, size_t n, const pc_gen_params *p, pc_token_cb cb,
                             void *user, pc_gen_result *out, pc_error *err) {
    double t0 = pc_now_ms();
    int32_t *pos = malloc((n ? n : 1) * sizeof *pos);
    if (!pos) return pc_fail(err, PC_ERR_NOMEM, "out of memory for positions");
    for (size_t i = 0; i < n; i++) pos[i] = (int32_t)i;
    pc_gen_input in = {.ctx = NULL, .tokens = prompt, .pos = pos, .n = n, .t0 = t0};
    pc_status s = pc_gen_run(e, &in, p, cb, user, out, err);
    free(pos);
    return s;
}

pc_status pc_engine_eval_logits(pc_engine *e, const int32_t *prompt, size_t n, float *logits, pc_error *err) {
    if (n == 0 || (int64_t)n > e->n_ctx) return pc_fail(err, PC_ERR_RANGE, "prompt of %zu tokens does not fit the context of %d", n, e->n_ctx);
    pc_kv_span *span = pc_kv_span_for_model(e->model, (int32_t)n);
    int32_t *pos = malloc(n * sizeof *pos);
    pc_status s = PC_OK;
    if (!span || !pos) s = pc_fail(err, PC_ERR_NOMEM, "out of memory evaluating %zu tokens", n);
    for (size_t i = 0; s == PC_OK && i < n; i++) pos[i] = (int32_t)i;
    if (s == PC_OK) s = pc_forward_run(e->fwd, NULL, span, prompt, pos, (int32_t)n, PC_LOGITS_LAST, logits, err);
    free(pos);
    pc_kv_span_release(span);
    return s;
}

/* log-softmax normalizers in double: max + log(sum(exp(x - max))). */
static double log_norm(const float *x, int32_t n) {
    double mx = x[0];
    for (int32_t i = 1; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    double sum = 0;
    for (int32_t i = 0; i < n; i++) sum += exp((double)x[i] - mx);
    return mx + log(sum);
}

double pc_logits_kl(const float *ref_logits, const float *logits, int32_t n) {
    if (n <= 0) return 0;
    const double zp = log_norm(ref_logits, n), zq = log_norm(logits, n);
    double kl = 0;
    for (int32_t i = 0; i < n; i++) {
        const double lp = (double)ref_logits[i] - zp, lq = (double)logits[i] - zq;
        kl += exp(lp) * (lp - lq);
    }
    return kl > 0 ? kl : 0;
}
