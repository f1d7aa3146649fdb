/* test_golden.c - pcache against llama.cpp on the real default model.
 *
 * Golden files (tests/data/golden/, recorded by tools/record_golden_engine.py from
 * llama-cpp-python; CI does not need llama.cpp):
 *   greedy_smollm2.json  - 64-token greedy continuations: ours must be token-for-token equal.
 *   logits_smollm2.json/.bin - last-position logits: ours must be within LOGIT_TOL.
 *
 * Tolerance (LOGIT_TOL, absolute, on logits of magnitude ~10-30): both engines
 * quantize activations to 8 bits per block of 32 with the same rule and keep KV
 * in F16, but sum in different orders (our dot products and attention reduce in
 * other groupings than ggml's), and an 8-bit activation that lands on the other
 * side of a rounding boundary moves a logit by about scale/2 * |w|. The test
 * prints the measured maximum; LOGIT_TOL is a few times that, and far below
 * the top-1/top-2 gaps that decide greedy tokens. Skips when the model is absent. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "pcache.h"

#define LOGIT_TOL 0.25

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

static void check_greedy(pc_engine *e) {
    json_error_t jerr;
    json_t *doc = json_load_file(PC_TEST_DATA "/golden/greedy_smollm2.json", 0, &jerr);
    CHECK_MSG(doc != NULL, "greedy golden: %s", jerr.text);
    if (!doc) return;
    json_t *cases = json_object_get(doc, "cases");
    size_t i;
    json_t *c;
    int n_cases = 0;
    json_array_foreach(cases, i, c) {
        size_t np, ng;
        int32_t *prompt = ids_of(json_object_get(c, "prompt_ids"), &np);
        int32_t *want = ids_of(json_object_get(c, "generated_ids"), &ng);
        pc_gen_params gp = pc_gen_default_params();
        gp.temp = 0;
        gp.n_predict = (int)ng;
        gp.ignore_eos = true;
        pc_gen_result r = {0};
        pc_error err = {0};
        pc_status s = pc_engine_generate(e, prompt, np, &gp, NULL, NULL, &r, &err);
        CHECK_MSG(s == PC_OK, "%s", err.msg);
        size_t same = 0;
        while (same < r.n_tokens && same < ng && r.tokens[same] == want[same]) same++;
        CHECK_MSG(same == ng && r.n_tokens == ng, "greedy case '%s': first %zu of %zu tokens equal",
                  json_string_value(json_object_get(c, "name")), same, ng);
        pc_gen_result_free(&r);
        free(prompt);
        free(want);
        n_cases++;
    }
    CHECK(n_cases >= 8);
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
        CHECK_MSG(am == ar, "logits '%s': argmax %d vs llama.cpp %d", name, am, ar);
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
