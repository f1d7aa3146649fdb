/* test_step_mix.c - how one step shares its rows among new requests
 * (step.h), on the real default model.
 *
 *  1. A burst of four 30-token prompts with mix 64: the first step finishes
 *     the two oldest prompts (their first tokens come out) and starts the
 *     third with the rows left (4); the second step runs the two decodes, the
 *     third's last 26 rows and the fourth's 30; then only decodes.
 *  2. The oldest prefilling request is not held to mix: a 300-token prompt
 *     beside the burst goes in chunks of the whole budget (128).
 *  3. However the rows were shared, every request's first-token logits and
 *     greedy tokens are bitwise those it gives alone (pc_request_run).
 * Skips when the model is absent. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "engine/step.h"

enum { N_PRED = 4, K = 5 };

typedef struct outcome {
    int32_t tokens[N_PRED];
    size_t n_tokens;
    float *first_logits;
    int done;
} outcome;

static void on_done(void *user, pc_status status, const pc_error *err, const pc_run_result *r) {
    outcome *o = user;
    o->done++;
    CHECK_MSG(status == PC_OK, "%s", err ? err->msg : "?");
    if (status != PC_OK) return;
    o->n_tokens = r->gen.n_tokens;
    memcpy(o->tokens, r->gen.tokens, r->gen.n_tokens * sizeof(int32_t));
}

static pc_request *make(pc_engine *e, const int32_t *ids, size_t n, outcome *o) {
    pc_gen_params g = pc_gen_default_params();
    g.n_predict = N_PRED;
    g.temp = 0;
    g.ignore_eos = true;
    g.first_logits = o->first_logits;
    pc_request *r = NULL;
    pc_error err = {0};
    CHECK_MSG(pc_request_from_tokens(e, ids, n, &g, &r, &err) == PC_OK, "%s", err.msg);
    if (r) pc_request_set_callbacks(r, NULL, on_done, o);
    return r;
}

static int32_t *prompt(pc_engine *e, int k, size_t want) {
    char text[8192] = "";
    for (int i = 0; strlen(text) < 8 * want; i++) {
        char line[128];
        snprintf(line, sizeof line, "Note %d of list %d: keep the answer short and plain. ", i, k);
        strcat(text, line);
    }
    int32_t *ids = NULL;
    size_t n = 0;
    pc_error err = {0};
    CHECK_MSG(pc_engine_tokenize(e, text, strlen(text), true, false, &ids, &n, &err) == PC_OK, "%s", err.msg);
    CHECK(n >= want);
    return ids;
}

static bool phase_is(const pc_request *r, pc_req_phase p, int64_t left) {
    return r->phase == p && pc_req_prefill_left(r) == left;
}

static void check_mix(pc_engine *e) {
    const size_t len[K] = {30, 30, 30, 30, 300};
    int32_t *ids[K];
    outcome alone[K], busy[K];
    pc_request *r[K];
    for (int k = 0; k < K; k++) {
        ids[k] = prompt(e, k, len[k]);
        alone[k] = (outcome){.first_logits = calloc((size_t)pc_engine_n_vocab(e), sizeof(float))};
        busy[k] = (outcome){.first_logits = calloc((size_t)pc_engine_n_vocab(e), sizeof(float))};
        pc_request *a = make(e, ids[k], len[k], &alone[k]);
        pc_error err = {0};
        if (a) CHECK_MSG(pc_request_run(a, &err) == PC_OK, "%s", err.msg);
        pc_request_release(a);
        r[k] = make(e, ids[k], len[k], &busy[k]);
    }
    pc_forward *f = NULL;
    pc_error err = {0};
    CHECK_MSG(pc_engine_new_forward(e, 128, &f, &err) == PC_OK, "%s", err.msg);
    for (int k = 0; k < K; k++)
        if (!r[k] || !f) goto out;
    pc_step_buf b = {0};
    /* the burst alone first: four requests, then the long one joins */
    CHECK_EQ_INT(pc_step_run(f, &b, r, 4, 128, 64), 64);
    CHECK(phase_is(r[0], PC_REQ_DECODE, 0) && phase_is(r[1], PC_REQ_DECODE, 0));
    CHECK(phase_is(r[2], PC_REQ_PREFILL, 26) && phase_is(r[3], PC_REQ_PREFILL, 30));
    CHECK_EQ_INT(pc_step_run(f, &b, r, 4, 128, 64), 2 + 26 + 30);
    for (int k = 0; k < 4; k++) CHECK(phase_is(r[k], PC_REQ_DECODE, 0));
    /* the long prompt is the oldest prefilling one: the whole budget less the decodes' rows */
    CHECK_EQ_INT(pc_step_run(f, &b, r, K, 128, 64), 4 + 124);
    CHECK(phase_is(r[4], PC_REQ_PREFILL, 300 - 124));
    for (int guard = 0; guard < 100; guard++) {
        bool all = true;
        for (int k = 0; k < K; k++) all = all && r[k]->phase == PC_REQ_DONE;
        if (all) break;
        pc_step_run(f, &b, r, K, 128, 64);
    }
    pc_step_buf_free(&b);
    for (int k = 0; k < K; k++) {
        CHECK_EQ_INT(busy[k].done, 1);
        CHECK_MSG(busy[k].n_tokens == N_PRED && !memcmp(busy[k].tokens, alone[k].tokens, sizeof alone[k].tokens) &&
                      !memcmp(busy[k].first_logits, alone[k].first_logits,
                              (size_t)pc_engine_n_vocab(e) * sizeof(float)),
                  "request %d: batched answer differs from its answer alone", k);
    }
out:
    pc_forward_free(f);
    for (int k = 0; k < K; k++) {
        pc_request_release(r[k]);
        free(alone[k].first_logits);
        free(busy[k].first_logits);
        pc_free(ids[k]);
    }
}

int main(void) {
    if (access(PC_MODEL_PATH, R_OK) != 0) {
        printf("model %s absent: skipped\n", PC_MODEL_PATH);
        return CHECK_SKIP;
    }
    pc_engine_params p = pc_engine_default_params();
    p.model_path = PC_MODEL_PATH;
    p.n_ctx = 1024;
    pc_engine *e = NULL;
    pc_error err = {0};
    CHECK_MSG(pc_engine_open(&p, &e, &err) == PC_OK, "%s", err.msg);
    if (e) check_mix(e);
    pc_engine_free(e);
    return check_report();
}
