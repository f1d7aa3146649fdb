/* generate.c - the blocking API: a plain prompt run as one request alone on
 * the calling thread, with its own forward state, through the same step
 * code the scheduler uses (step.h). Also the logits of a prompt and the KL
 * divergence between two logit vectors, for quality measurements. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/step.h"
#include "util/clock.h"
#include "util/error.h"

pc_gen_params pc_gen_default_params(void) {
    return (pc_gen_params){.n_predict = 128, .temp = 0.8f, .top_k = 40, .top_p = 0.95f, .min_p = 0.05f,
                           .repeat_penalty = 1.0f, .repeat_last_n = 64, .seed = 0x5eed};
}

const char *pc_stop_reason_name(pc_stop_reason r) {
    switch (r) {
    case PC_STOP_LENGTH: return "length";
    case PC_STOP_EOG: return "eog";
    case PC_STOP_STRING: return "stop_string";
    case PC_STOP_CALLBACK: return "callback";
    case PC_STOP_CONTEXT: return "context";
    case PC_STOP_CANCEL: return "cancel";
    }
    return "?";
}

void pc_gen_result_free(pc_gen_result *r) {
    if (!r) return;
    free(r->tokens);
    free(r->text);
    memset(r, 0, sizeof *r);
}

/* ---- running one request alone, on the calling thread ---- */

pc_status pc_request_run(pc_request *r, pc_error *err) {
    if (atomic_load(&r->submitted)) return pc_fail(err, PC_ERR_INVALID, "request: it belongs to a scheduler");
    if (r->phase != PC_REQ_PREFILL && r->phase != PC_REQ_DECODE)
        return pc_fail(err, PC_ERR_INVALID, "request: run before it is prepared, or after it ended");
    pc_forward *f = NULL;
    pc_status s = pc_engine_take_forward(r->e, &f, err);
    if (s != PC_OK) {
        pc_req_finish(r, s, err);
        return s;
    }
    pc_step_buf b = {0};
    while (r->phase != PC_REQ_DONE) pc_step_run(f, &b, &r, 1, pc_forward_batch_size(f), 0);
    pc_step_buf_free(&b);
    if (r->status == PC_OK)
        pc_engine_give_forward(r->e, f);
    else
        pc_forward_free(f); /* a backend that failed refuses further batches: not kept */
    if (r->status != PC_OK && err) *err = r->err;
    return r->status;
}

pc_status pc_request_from_tokens(pc_engine *e, const int32_t *prompt, size_t n, const pc_gen_params *p,
                                 pc_request **out, pc_error *err) {
    *out = NULL;
    if (n == 0) return pc_fail(err, PC_ERR_INVALID, "empty prompt");
    if (n > (size_t)e->n_ctx) return pc_fail(err, PC_ERR_RANGE, "prompt of %zu tokens does not fit the context of %d", n, e->n_ctx);
    pc_request *r = pc_req_new(e, p, pc_now_ms());
    if (!r) return pc_fail(err, PC_ERR_NOMEM, "out of memory for a request");
    pc_status s = pc_req_add_fresh(r, prompt, NULL, 0, (int32_t)n, false, err);
    if (s == PC_OK) s = pc_req_prepare(r, err);
    if (s != PC_OK) {
        pc_request_release(r);
        return s;
    }
    *out = r;
    return PC_OK;
}

/* Moves a finished request's generation result to the caller. */
static void take_gen_result(pc_request *r, pc_gen_result *out) {
    *out = r->res.gen;
    out->text = pc_buf_take(&r->text);
    r->res.gen.tokens = NULL;
    r->res.gen.text = NULL;
}

pc_status pc_engine_generate(pc_engine *e, const int32_t *prompt, size_t n, const pc_gen_params *p, pc_token_cb cb,
                             void *user, pc_gen_result *out, pc_error *err) {
    memset(out, 0, sizeof *out);
    pc_request *r = NULL;
    pc_status s = pc_request_from_tokens(e, prompt, n, p, &r, err);
    if (s != PC_OK) return s;
    pc_request_set_callbacks(r, cb, NULL, user);
    s = pc_request_run(r, err);
    if (s == PC_OK) take_gen_result(r, out);
    pc_request_release(r);
    return s;
}

pc_status pc_engine_eval_logits(pc_engine *e, const int32_t *prompt, size_t n, float *logits, pc_error *err) {
    if (n == 0 || (int64_t)n > e->n_ctx) return pc_fail(err, PC_ERR_RANGE, "prompt of %zu tokens does not fit the context of %d", n, e->n_ctx);
    pc_kv_span *span = pc_engine_new_span(e, (int32_t)n);
    int32_t *pos = malloc(n * sizeof *pos);
    pc_forward *f = NULL;
    pc_status s = PC_OK;
    if (!span || !pos) s = pc_fail(err, PC_ERR_NOMEM, "out of memory evaluating %zu tokens", n);
    if (s == PC_OK) s = pc_engine_take_forward(e, &f, err);
    for (size_t i = 0; s == PC_OK && i < n; i++) pos[i] = (int32_t)i;
    if (s == PC_OK) s = pc_forward_run(f, NULL, span, prompt, pos, (int32_t)n, PC_LOGITS_LAST, logits, err);
    if (s == PC_OK)
        pc_engine_give_forward(e, f);
    else
        pc_forward_free(f);
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
