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

#include "check.h"
#include "default_model.h"
#include "golden_case.h"

#define LOGIT_TOL 1.5

/* Teacher-forced on llama.cpp's tokens: every step whose gap exceeds the noise must agree. */
static void check_case_forced(pc_engine *e, pc_forward *f, json_t *c, int *decided, int *agree_all, int *steps) {
    golden_forced g;
    if (!golden_forced_run(e, f, c, &g)) return;
    json_t *gaps = json_object_get(c, "step_top1_top2_gap");
    const char *name = json_string_value(json_object_get(c, "name"));
    for (size_t i = 0; i < g.n_gold; i++) {
        const int mine = golden_argmax(golden_forced_row(&g, i), g.n_vocab);
        const double gap = json_real_value(json_array_get(gaps, i));
        (*steps)++;
        if (mine == g.gold[i]) (*agree_all)++;
        if (gap > LOGIT_TOL) {
            (*decided)++;
            CHECK_MSG(mine == g.gold[i], "greedy '%s' step %zu: ours %d, llama.cpp %d (its gap %.2f)", name, i, mine,
                      g.gold[i], gap);
        }
    }
    golden_forced_free(&g);
}

static void check_greedy(pc_engine *e, pc_forward *f) {
    json_error_t jerr;
    json_t *doc = json_load_file(PC_TEST_DATA "/golden/greedy_smollm2.json", 0, &jerr);
    CHECK_MSG(doc != NULL, "greedy golden: %s", jerr.text);
    if (!doc) return;
    size_t i;
    json_t *c;
    int n_cases = 0, decided = 0, agree = 0, steps = 0;
    json_array_foreach(json_object_get(doc, "cases"), i, c) {
        check_case_forced(e, f, c, &decided, &agree, &steps);
        size_t same = golden_free_running(e, c);
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
        int32_t *ids = golden_ids(json_object_get(p, "prompt_ids"), &np);
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
    pc_engine *e = NULL;
    const int rc = test_engine_open(4096, &e);
    if (rc) return rc;
    pc_forward *f = NULL;
    pc_error err = {0};
    CHECK_MSG(pc_engine_new_forward(e, 0, &f, &err) == PC_OK, "%s", err.msg);
    check_logits(e);
    if (f) check_greedy(e, f);
    pc_forward_free(f);
    pc_engine_free(e);
    return check_report();
}
