/* golden_case.h - one recorded llama.cpp greedy case (tests/data/golden/greedy_*.json, written by
 * tools/record_golden_*.py: prompt_ids, generated_ids and per-step logit facts) run through the
 * engine, for the golden tests of every model. What counts as agreement stays in each test: the
 * tolerances differ per model and are argued there. */
#ifndef PC_TESTS_GOLDEN_CASE_H
#define PC_TESTS_GOLDEN_CASE_H

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "engine/engine_internal.h"
#include "pcache.h"

static inline int32_t *golden_ids(json_t *arr, size_t *n) {
    *n = json_array_size(arr);
    int32_t *ids = malloc((*n ? *n : 1) * sizeof *ids);
    for (size_t i = 0; i < *n; i++) ids[i] = (int32_t)json_integer_value(json_array_get(arr, i));
    return ids;
}

static inline int golden_argmax(const float *v, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[b]) b = i;
    return b;
}

/* Teacher forcing: the prompt and llama.cpp's tokens in one batch, so step i's logits (row(i)) are
 * ours for the token llama.cpp chose at step i, whatever we would have chosen before it. */
typedef struct golden_forced {
    int32_t *prompt, *gold;
    size_t n_prompt, n_gold;
    int n_vocab;
    float *logits;
} golden_forced;

static inline const float *golden_forced_row(const golden_forced *g, size_t step) {
    return g->logits + (g->n_prompt - 1 + step) * (size_t)g->n_vocab;
}

static inline void golden_forced_free(golden_forced *g) {
    free(g->prompt);
    free(g->gold);
    free(g->logits);
    memset(g, 0, sizeof *g);
}

/* false (after a failed check) when the forward fails; g is then already freed. */
static inline bool golden_forced_run(pc_engine *e, pc_forward *f, json_t *c, golden_forced *g) {
    memset(g, 0, sizeof *g);
    g->prompt = golden_ids(json_object_get(c, "prompt_ids"), &g->n_prompt);
    g->gold = golden_ids(json_object_get(c, "generated_ids"), &g->n_gold);
    g->n_vocab = pc_engine_n_vocab(e);
    const int n = (int)(g->n_prompt + g->n_gold - 1);
    int32_t *toks = malloc(sizeof *toks * (size_t)n), *pos = malloc(sizeof *pos * (size_t)n);
    g->logits = malloc(sizeof(float) * (size_t)g->n_vocab * (size_t)n);
    memcpy(toks, g->prompt, g->n_prompt * sizeof *toks);
    memcpy(toks + g->n_prompt, g->gold, (g->n_gold - 1) * sizeof *toks);
    for (int i = 0; i < n; i++) pos[i] = i;
    pc_kv_span *span = pc_kv_span_for_model(e->model, n);
    pc_error err = {0};
    const bool ok = pc_forward_run(f, NULL, span, toks, pos, n, PC_LOGITS_ALL, g->logits, &err) == PC_OK;
    CHECK_MSG(ok, "teacher-forced '%s': %s", json_string_value(json_object_get(c, "name")), err.msg);
    pc_kv_span_release(span);
    free(toks);
    free(pos);
    if (!ok) golden_forced_free(g);
    return ok;
}

/* Free-running greedy generation of as many tokens as llama.cpp made: how many of them, from the
 * first, are llama.cpp's (reported, not asserted: see each test for why). */
static inline size_t golden_free_running(pc_engine *e, json_t *c) {
    size_t np, ng;
    int32_t *prompt = golden_ids(json_object_get(c, "prompt_ids"), &np);
    int32_t *want = golden_ids(json_object_get(c, "generated_ids"), &ng);
    pc_gen_params gp = pc_gen_default_params();
    gp.temp = 0;
    gp.n_predict = (int)ng;
    gp.ignore_eos = true;
    pc_gen_result r = {0};
    pc_error err = {0};
    CHECK_MSG(pc_engine_generate(e, prompt, np, &gp, NULL, NULL, &r, &err) == PC_OK, "%s", err.msg);
    CHECK_MSG(r.n_tokens == ng, "free-running '%s': %zu tokens, asked for %zu",
              json_string_value(json_object_get(c, "name")), r.n_tokens, ng);
    size_t same = 0;
    while (same < r.n_tokens && same < ng && r.tokens[same] == want[same]) same++;
    pc_gen_result_free(&r);
    free(prompt);
    free(want);
    return same;
}

#endif
