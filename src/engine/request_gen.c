/* request_gen.c - what a request does with the logits of its last row: choose
 * the next token, stream its text, decide whether to go on.
 *
 * Text is streamed in complete UTF-8 pieces; when stop strings are set, the
 * tail that could still become a stop string is held back until it cannot.
 * Every generated token is chosen in one place (choose): the logits observer
 * sees exactly the logits of each token in the result, and teacher forcing
 * replaces only the choice, so a forced run computes what a sampled one would.
 * None of this depends on the batch the logits came from. */
#include <stdlib.h>
#include <string.h>

#include "engine/request.h"
#include "util/clock.h"
#include "util/error.h"

/* Emits what is safe to show; returns false when generation must stop. */
static bool emit(pc_request *r, int32_t tok, bool final) {
    pc_stop_set stops = {.strs = r->stops, .n = r->stops ? r->gp.n_stop : 0};
    size_t keep = 0;
    long at = stops.n ? pc_stop_find(&stops, r->text.data, r->text.len, &keep) : -1;
    size_t end = r->text.len - (final ? 0 : keep);
    if (at >= 0) {
        end = (size_t)at;
        r->text.len = (size_t)at;
        r->text.data[at] = '\0';
        r->res.gen.stop = PC_STOP_STRING;
    }
    if (end > r->emitted && r->on_text && !r->on_text(r->user, tok, r->text.data + r->emitted, end - r->emitted)) {
        r->emitted = end;
        if (at < 0) r->res.gen.stop = PC_STOP_CALLBACK;
        return false;
    }
    if (end > r->emitted) r->emitted = end;
    return at < 0;
}

static pc_status accept(pc_request *r, int32_t tok, bool *go_on, pc_error *err) {
    pc_gen_result *g = &r->res.gen;
    r->history[r->n_history++] = tok;
    g->tokens[g->n_tokens++] = tok;
    if (!r->gp.ignore_eos && pc_tokenizer_is_eog(r->e->tok, tok)) {
        g->stop = PC_STOP_EOG;
        *go_on = false;
        return PC_OK;
    }
    char piece[256];
    size_t n = pc_detok_push(&r->detok, r->e->tok, tok, piece, sizeof piece);
    if (!pc_buf_append(&r->text, piece, n < sizeof piece ? n : sizeof piece))
        return pc_fail(err, PC_ERR_NOMEM, "out of memory for generated text");
    *go_on = emit(r, tok, false);
    return PC_OK;
}

/* The token for the next step: observed, then forced or sampled. */
static int32_t choose(pc_request *r) {
    const pc_gen_params *p = &r->gp;
    const size_t step = r->res.gen.n_tokens;
    if (p->on_logits) p->on_logits(p->logits_user, step, r->logits, r->e->model->hp.n_vocab);
    if (step < p->n_force) return p->force_tokens[step];
    return pc_sampler_sample(r->sampler, r->logits, r->history, r->n_history);
}

/* The end of a generation that was not cut short: the detokenizer's pending
 * bytes and the held-back tail go out. */
static void finish_text(pc_request *r) {
    pc_gen_result *g = &r->res.gen;
    if (g->stop == PC_STOP_STRING || g->stop == PC_STOP_CALLBACK || g->stop == PC_STOP_CANCEL) return;
    char tail[16];
    size_t n = pc_detok_flush(&r->detok, tail, sizeof tail);
    if (n && !pc_buf_append(&r->text, tail, n)) {
        pc_error err;
        pc_req_finish(r, pc_fail(&err, PC_ERR_NOMEM, "out of memory for generated text"), &err);
        return;
    }
    emit(r, g->n_tokens ? g->tokens[g->n_tokens - 1] : -1, true);
}

/* Positions, not token counts, bound a context: a prompt that skips union
 * members places its text after the whole schema. */
static bool context_full(const pc_request *r) {
    return r->next_pos >= r->e->n_ctx || pc_kv_list_tokens(&r->list) >= r->e->n_ctx;
}

void pc_req_take_logits(pc_request *r) {
    pc_gen_result *g = &r->res.gen;
    const bool first = g->n_tokens == 0;
    if (first && r->gp.first_logits)
        memcpy(r->gp.first_logits, r->logits, (size_t)r->e->model->hp.n_vocab * sizeof(float));
    const int32_t tok = choose(r);
    pc_error err;
    if (tok < 0 || tok >= r->e->model->hp.n_vocab) {
        pc_req_finish(r, pc_fail(&err, PC_ERR_INVALID, "sampler returned token %d", tok), &err);
        return;
    }
    if (first) {
        const double now = pc_now_ms();
        g->ttft_ms = now - r->t0;
        g->prefill_ms = now - r->t_prefill;
        r->t_decode = now;
        r->phase = PC_REQ_DECODE;
    }
    bool go_on = true;
    pc_status s = accept(r, tok, &go_on, &err);
    if (s != PC_OK) {
        pc_req_finish(r, s, &err);
        return;
    }
    if (go_on && (int)g->n_tokens < r->gp.n_predict && context_full(r)) {
        g->stop = PC_STOP_CONTEXT;
        go_on = false;
    }
    if (go_on && (int)g->n_tokens < r->gp.n_predict) return;
    finish_text(r);
    pc_req_finish(r, PC_OK, NULL);
}
