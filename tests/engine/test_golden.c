/* test_golden.c - pcache against llama.cpp on the real default model.
 *
 * Golden files (tests/data/golden/, recorded by tools/record_golden_engine.py from
 * llama-cpp-python 0.3.36; CI does not need llama.cpp):
 *   greedy_smollm2.json      13 prompts x 64 greedy tokens, with llama.cpp's top-1/top-2
 *                            logit gap at every step;
 *   logits_smollm2.json/.bin last-position logits of 7 prompts (5 to 302 tokens).
 *
 * Why a tolerance, and how large. Both engines quantize activations to 8 bits per
 * block with the same rule and keep KV in F16, but sum in other orders. In a
 * 30-layer Q4_1 model an ulp-sized difference flips some 8-bit rounding, and the
 * flips compound: measured here, pcache's own scalar and AVX-512 paths differ by up
 * to 1.27 in the last-position logits of the same prompt, and llama.cpp's batched and
 * token-by-token paths differ from each other by 0.86-1.36 (recorded beside the
 * goldens), choosing another greedy token within 8-27 steps in 6 of 13 prompts. So:
 *   - logits: max |ours - llama.cpp| <= LOGIT_TOL = 1.5 (that spread), and the same
 *     argmax wherever llama.cpp's top-1/top-2 gap exceeds it;
 *   - greedy: teacher-forced on llama.cpp's 64 tokens, our argmax equals llama.cpp's
 *     token at every step whose gap exceeds LOGIT_TOL (a decision noise cannot flip);
 *     the steps below it are counted and reported, as is the free-running prefix. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "engine/engine_internal.h"
#include "pcache.h"

#define LOGIT_TOL 1.5

static pc_engine *open_engine(void) {
    pc_engine_params p = pc_engine_default_params();
    p.model_path = PC_MODEL_PATH;
    p.n_ctx = 4096;
    pc_engine *e = NULL;
    pc_error err = {0};
    if (pc_engine_open(&p, &e, &err) != PC_OK) {
        fprintf(stderr, "open: %s\n", err.msg);
        return NULL;
    }
    return e;
}

static int32_t *ids_of(json_t *arr, size_t *n) {
    *n = json_array_size(arr);
    int32_t *ids = malloc((*n ? *n : 1) * sizeof *ids);
    for (size_t i = 0; i < *n; i++) ids[i] = (int32_t)json_integer_value(json_array_get(arr, i));
    return ids;
}

static int argmax(const float *v, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[b]) b = i;
    return b;
}

/* Teacher-forced: prompt + golden tokens in one batch, logits at every step. */
static void check_case_forced(pc_engine *e, json_t *c, int *decided, int *agree_all, int *steps) {
    size_t np, ng;
    int32_t *prompt = ids_of(json_object_get(c, "prompt_ids"), &np);
    int32_t *gold = ids_of(json_object_get(c, "generated_ids"), &ng);
    json_t *gaps = json_object_get(c, "step_top1_top2_gap");
    const int V = pc_engine_n_vocab(e), n = (int)(np + ng - 1);
    int32_t *toks = malloc(sizeof *toks * (size_t)n), *pos = malloc(sizeof *pos * (size_t)n);
    float *lg = malloc(sizeof(float) * (size_t)V * (size_t)n);
    memcpy(toks, prompt, np * sizeof *toks);
    memcpy(toks + np, gold, (ng - 1) * sizeof *toks);
    for (int i = 0; i < n; i++) pos[i] = i;
    pc_kv_span *span = pc_kv_span_for_model(e->model, n);
    pc_error err = {0};
    pc_forward *f = NULL;
    CHECK_MSG(pc_engine_new_forward(e, 0, &f, &err) == PC_OK, "%s", err.msg);
    CHECK_MSG(f && pc_forward_run(f, NULL, span, toks, pos, n, PC_LOGITS_ALL, lg, &err) == PC_OK, "%s", err.msg);
    pc_forward_free(f);
    const char *name = json_string_value(json_object_get(c, "name"));
    for (size_t i = 0; i < ng; i++) {
        const int mine = argmax(lg + (size_t)(np - 1 + i) * V, V);
        const double gap = json_real_value(json_array_get(gaps, i));
        (*steps)++;
        if (mine == gold[i]) (*agree_all)++;
        if (gap > LOGIT_TOL) {
            (*decided)++;
            CHECK_MSG(mine == gold[i], "greedy '%s' step %zu: ours %d, llama.cpp %d (its gap %.2f)", name, i, mine,
                      gold[i], gap);
        }
    }
    pc_kv_span_release(span);
    free(toks); free(pos); free(lg); free(prompt); free(gold);
}

/* Free-running greedy generation: how far it stays on llama.cpp's path (reported). */
static size_t free_running_prefix(pc_engine *e, json_t *c) {
    size_t np, ng;
    int32_t *prompt = ids_of(json_object_get(c, "prompt_ids"), &np);
    int32_t *want = ids_of(json_object_get(c, "generated_ids"), &ng);
    pc_gen_params gp = pc_gen_default_params();
    gp.temp = 0;
    gp.n_predict = (int)ng;
    gp.ignore_eos = true;
    pc_gen_result r = {0};
    pc_error err = {0};
    CHECK_MSG(pc_engine_generate(e, prompt, np, &gp, NULL, NULL, &r, &err) == PC_OK, "%s", err.msg);
    CHECK(r.n_tokens == ng);
    size_t same = 0;
    while (same < r.n_tokens && same < ng && r.tokens[same] == want[same]) same++;
    pc_gen_result_free(&r);
    free(prompt);
    free(want);
    return same;
}

static void check_greedy(pc_engine *e) {
    json_error_t jerr;
    json_t *doc = json_load_file(PC_TEST_DATA "/golden/greedy_smollm2.json", 0, &jerr);
    CHECK_MSG(doc != NULL, "greedy golden: %s", jerr.text);
    if (!doc) return;
    size_t i;
    json_t *c;
    int n_cases = 0, decided = 0, agree = 0, steps = 0;
    json_array_foreach(json_object_get(doc, "cases"), i, c) {
        check_case_forced(e, c, &decided, &agree, &steps);
        size_t same = free_running_prefix(e, c);
        printf("greedy '%s': free-running run equals llama.cpp for the first %zu of 64 tokens\n",
               json_string_value(json_object_get(c, "name")), same);
        n_cases++;
    }
    CHECK(n_cases >= 8);
    CHECK(decided > 300);
    printf("teacher-forced greedy: %d/%d steps agree with llama.cpp; all %d steps with a gap > %.1f were checked\n",
           agree, steps, decided, LOGIT_TOL);
    json_decref(doc);
}

static float *load_bin(size_t *n_floats) {
    FILE *f = fopen(PC_TEST_DATA "/golden/logits_smollm2.bin", "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    float *b = malloc((size_t)sz);
    *n_floats = fread(b, 1, (size_t)sz, f) / sizeof(float);
    fclose(f);
    return b;
}

static void check_logits(pc_engine *e) {
    json_error_t jerr;
    json_t *doc = json_load_file(PC_TEST_DATA "/golden/logits_smollm2.json", 0, &jerr);
    size_t n_floats = 0;
    float *bin = load_bin(&n_floats);
    CHECK_MSG(doc && bin, "logits golden missing");
    if (!doc || !bin) {
        json_decref(doc);
        free(bin);
        return;
    }
    const int V = pc_engine_n_vocab(e);
    float *mine = malloc(sizeof(float) * V);
    double worst = 0;
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(doc, "prompts"), i, p) {
        size_t np;
        int32_t *ids = ids_of(json_object_get(p, "prompt_ids"), &np);
        size_t off = (size_t)json_integer_value(json_object_get(p, "offset_bytes")) / sizeof(float);
        CHECK(off + (size_t)V <= n_floats);
        pc_error err = {0};
        CHECK_MSG(pc_engine_eval_logits(e, ids, np, mine, &err) == PC_OK, "%s", err.msg);
        const float *ref = bin + off;
        double md = 0;
        int am = 0, ar = 0;
        for (int v = 0; v < V; v++) {
            md = fmax(md, fabs((double)mine[v] - ref[v]));
            if (mine[v] > mine[am]) am = v;
            if (ref[v] > ref[ar]) ar = v;
        }
        worst = fmax(worst, md);
        const char *name = json_string_value(json_object_get(p, "name"));
        CHECK_MSG(md <= LOGIT_TOL, "logits '%s' (%zu tokens): max abs diff %.4f > %.2f", name, np, md, LOGIT_TOL);
        const double gap = json_real_value(json_object_get(p, "top1_top2_gap"));
        if (gap > LOGIT_TOL) CHECK_MSG(am == ar, "logits '%s': argmax %d vs llama.cpp %d (gap %.2f)", name, am, ar, gap);
        free(ids);
    }
    printf("last-position logits: max abs difference to llama.cpp %.4f (tolerance %.2f)\n", worst, LOGIT_TOL);
    free(mine);
    free(bin);
    json_decref(doc);
}

int main(void) {
    if (access(PC_MODEL_PATH, R_OK) != 0) {
        printf("model %s absent: skipped\n", PC_MODEL_PATH);
        return CHECK_SKIP;
    }
    pc_engine *e = open_engine();
    CHECK(e != NULL);
    if (e) {
        check_logits(e);
        check_greedy(e);
    }
    pc_engine_free(e);
    return check_report();
}
