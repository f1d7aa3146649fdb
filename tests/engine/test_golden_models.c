/* test_golden_models.c - pcache on the real Qwen2.5-Coder models, against llama.cpp and itself.
 *
 * For each model of the table that scripts/get_model.sh has put in models/ (absent
 * ones are skipped and said so; none present: the test skips):
 *   1. Tokenization: every golden prompt tokenizes to llama.cpp's ids exactly.
 *   2. Greedy (golden recorded by tools/record_golden_models.py from llama.cpp,
 *      the build llama-bench runs, flash attention and repacking on): teacher-forced on llama.cpp's tokens, our argmax equals llama.cpp's
 *      token at every step whose top-1/top-2 logit gap exceeds LOGIT_TOL, and our
 *      log-probability of llama.cpp's token is within LOGPROB_TOL of its own at every
 *      step; the free-running prefix that matches llama.cpp is reported.
 *   3. Exactness on these weight types (Q4_K, Q5_0, Q6_K, Q8_0): the last position's
 *      logits of a prompt prefilled in one batch equal, bit for bit, those of the
 *      same prompt prefilled in two pieces, the second attending to the first's KV
 *      (what a cached prompt does), and those of a one-token-at-a-time prefill.
 * Why LOGIT_TOL = 1.5 (test_golden.c has the measurement on SmolLM2): both engines
 * quantize activations per block with the same rule but sum in other orders, and an
 * ulp-sized difference flips 8-bit roundings that compound over the layers.
 * LOGPROB_TOL = 0.5: on the 0.5B model the largest difference measured was 0.23
 * (every SIMD path and the scalar one give pcache the same bits, so it holds on any CPU). */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "golden_case.h"

#define LOGIT_TOL 1.5
#define LOGPROB_TOL 0.5

typedef struct model_case {
    const char *name, *file, *golden; /* golden: NULL when none is recorded */
} model_case;

static const model_case MODELS[] = {
    {"qwen2.5-coder-0.5b", "qwen2.5-coder-0.5b-instruct.gguf", "greedy_qwen2.5-coder-0.5b.json"},
    {"qwen2.5-coder-1.5b", "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf", "greedy_qwen2.5-coder-1.5b.json"},
};

static pc_engine *open_engine(const char *path) {
    pc_engine_params p = pc_engine_default_params();
    p.model_path = path;
    p.n_ctx = 1024;
    pc_engine *e = NULL;
    pc_error err = {0};
    if (pc_engine_open(&p, &e, &err) != PC_OK) {
        fprintf(stderr, "open %s: %s\n", path, err.msg);
        return NULL;
    }
    return e;
}

/* log softmax(v)[k], in double. */
static double log_prob(const float *v, int n, int k) {
    double m = v[0], s = 0;
    for (int i = 1; i < n; i++) m = fmax(m, v[i]);
    for (int i = 0; i < n; i++) s += exp((double)v[i] - m);
    return (double)v[k] - m - log(s);
}

static void check_tokens(pc_engine *e, json_t *c) {
    size_t n_want, n_got = 0;
    int32_t *want = golden_ids(json_object_get(c, "prompt_ids"), &n_want), *got = NULL;
    const char *text = json_string_value(json_object_get(c, "text"));
    pc_error err = {0};
    const bool parse = json_is_true(json_object_get(c, "parse_special"));
    CHECK_MSG(pc_engine_tokenize(e, text, strlen(text), true, parse, &got, &n_got, &err) == PC_OK, "%s", err.msg);
    CHECK_MSG(n_got == n_want && got && memcmp(got, want, n_want * sizeof *want) == 0,
              "tokens of '%s': %zu ids, llama.cpp %zu (or other ids)", json_string_value(json_object_get(c, "name")),
              n_got, n_want);
    free(got);
    free(want);
}

typedef struct tally {
    int steps, agree, decided;
    double worst_lp; /* largest |our log-prob - llama.cpp's| of llama.cpp's token */
} tally;

/* Teacher-forced on llama.cpp's tokens: decided steps agree, every step's log-prob is close. */
static void check_forced(pc_engine *e, pc_forward *f, json_t *c, tally *t) {
    golden_forced g;
    if (!golden_forced_run(e, f, c, &g)) return;
    json_t *gaps = json_object_get(c, "step_top1_top2_gap"), *tops = json_object_get(c, "step_top_logprobs");
    const char *name = json_string_value(json_object_get(c, "name"));
    for (size_t i = 0; i < g.n_gold; i++) {
        const float *row = golden_forced_row(&g, i);
        const int mine = golden_argmax(row, g.n_vocab);
        const double gap = json_real_value(json_array_get(gaps, i));
        const double theirs = json_real_value(json_array_get(json_array_get(json_array_get(tops, i), 0), 1));
        const double lp = log_prob(row, g.n_vocab, g.gold[i]);
        t->worst_lp = fmax(t->worst_lp, fabs(lp - theirs));
        CHECK_MSG(fabs(lp - theirs) <= LOGPROB_TOL, "'%s' step %zu: log-prob of llama.cpp's token %.3f, its own %.3f",
                  name, i, lp, theirs);
        t->steps++;
        if (mine == g.gold[i]) t->agree++;
        if (gap > LOGIT_TOL) {
            t->decided++;
            CHECK_MSG(mine == g.gold[i], "greedy '%s' step %zu: ours %d, llama.cpp %d (its gap %.2f)", name, i, mine,
                      g.gold[i], gap);
        }
    }
    golden_forced_free(&g);
}

static void check_golden(pc_engine *e, pc_forward *f, const model_case *m) {
    char path[512];
    snprintf(path, sizeof path, "%s/golden/%s", PC_TEST_DATA, m->golden);
    json_error_t jerr;
    json_t *doc = json_load_file(path, 0, &jerr);
    CHECK_MSG(doc != NULL, "%s: %s", path, jerr.text);
    if (!doc) return;
    tally t = {0};
    size_t i, n_cases = 0, free_same = 0, free_all = 0;
    json_t *c;
    json_array_foreach(json_object_get(doc, "cases"), i, c) {
        check_tokens(e, c);
        check_forced(e, f, c, &t);
        free_same += golden_free_running(e, c);
        free_all += json_array_size(json_object_get(c, "generated_ids"));
        n_cases++;
    }
    CHECK(n_cases >= 8 && t.decided > t.steps / 2);
    printf("%s: %zu prompts tokenized as llama.cpp does; teacher-forced greedy %d/%d steps agree, all %d with a gap "
           "> %.1f checked; log-probs of llama.cpp's tokens within %.3f; free-running runs follow llama.cpp for %zu "
           "of %zu tokens\n",
           m->name, n_cases, t.agree, t.steps, t.decided, LOGIT_TOL, t.worst_lp, free_same, free_all);
    json_decref(doc);
}

/* Prefill of tokens [from, to) at their positions into dst over ctx; logits of the last. */
static void prefill(pc_forward *f, const pc_kv_list *ctx, pc_kv_span *dst, const int32_t *toks, int from, int to,
                    float *logits) {
    int32_t *pos = malloc(sizeof *pos * (size_t)(to - from));
    for (int i = from; i < to; i++) pos[i - from] = i;
    pc_error err = {0};
    CHECK_MSG(pc_forward_run(f, ctx, dst, toks + from, pos, to - from, PC_LOGITS_LAST, logits, &err) == PC_OK,
              "%s", err.msg);
    free(pos);
}

/* Logits of one batch == two pieces (the second over the first's KV) == token by token, bitwise. */
static void check_exact(pc_engine *e, pc_forward *f, const model_case *m) {
    enum { N = 150, CUT = 97 };
    const int V = pc_engine_n_vocab(e);
    int32_t toks[N];
    for (int i = 0; i < N; i++) toks[i] = (int32_t)((i * 7919 + 13) % 20000); /* ordinary text-range ids */
    float *one = malloc(sizeof(float) * V), *two = malloc(sizeof(float) * V), *each = malloc(sizeof(float) * V);
    pc_kv_span *a = pc_kv_span_for_model(e->model, N), *b = pc_kv_span_for_model(e->model, N - CUT),
               *c = pc_kv_span_for_model(e->model, N);
    prefill(f, NULL, a, toks, 0, N, one);
    prefill(f, NULL, c, toks, 0, CUT, two); /* c: the first piece, then token by token below */
    pc_kv_list l = {0};
    pc_error err = {0};
    CHECK(pc_kv_list_push(&l, c, &err) == PC_OK);
    prefill(f, &l, b, toks, CUT, N, two);
    pc_kv_list_free(&l);
    CHECK_MSG(memcmp(one, two, sizeof(float) * V) == 0, "%s: one batch vs two pieces differ", m->name);
    for (int i = CUT; i < N; i++) prefill(f, NULL, c, toks, i, i + 1, each);
    CHECK_MSG(memcmp(one, each, sizeof(float) * V) == 0, "%s: one batch vs token by token differ", m->name);
    printf("%s: last logits of %d tokens bitwise equal in one batch, in pieces of %d + %d, and token by token\n",
           m->name, N, CUT, N - CUT);
    pc_kv_span_release(a);
    pc_kv_span_release(b);
    pc_kv_span_release(c);
    free(one);
    free(two);
    free(each);
}

int main(void) {
    int ran = 0;
    for (size_t i = 0; i < sizeof MODELS / sizeof MODELS[0]; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", PC_MODELS_DIR, MODELS[i].file);
        if (access(path, R_OK) != 0) {
            printf("%s: %s absent (scripts/get_model.sh %s fetches it): skipped\n", MODELS[i].name, path,
                   MODELS[i].name);
            continue;
        }
        pc_engine *e = open_engine(path);
        CHECK(e != NULL);
        if (!e) continue;
        ran++;
        pc_forward *f = NULL;
        pc_error err = {0};
        CHECK_MSG(pc_engine_new_forward(e, 0, &f, &err) == PC_OK, "%s", err.msg);
        if (f) {
            check_exact(e, f, &MODELS[i]);
            if (MODELS[i].golden) check_golden(e, f, &MODELS[i]);
        }
        pc_forward_free(f);
        pc_engine_free(e);
    }
    if (!ran) return CHECK_SKIP;
    return check_report();
}
