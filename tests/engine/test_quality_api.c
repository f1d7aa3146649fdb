/* test_quality_api.c - teacher forcing, the logits observer and the KL helper
 * that `pcache run --compare` measures answer quality with.
 *
 *  1. pc_logits_kl against hand-computed values (two-token distributions),
 *     exactly 0 for equal inputs, invariant to a shift of the logits.
 *  2. Forcing: forced tokens come back as the output and detokenize to the
 *     text they were tokenized from; forcing a greedy answer reproduces its
 *     per-step logits bit for bit (forcing replaces only the choice).
 *  3. on_logits: called exactly once per generated token with steps 0..n-1, the
 *     vocabulary size, step 0 equal to first_logits, and each greedy token the
 *     argmax (lowest id on ties) of the logits it was chosen from.
 *  4. Cached vs uncached: a prompt importing exactly the scaffold gives KL 0
 *     exactly at every step and identical answers; one with an argument and a
 *     non-scaffold union member gives finite, non-negative and non-zero KL.
 * Skips the model parts when the model is absent. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "pcache.h"

/* ---------------- 1. KL by hand ---------------- */

static void check_kl_by_hand(void) {
    const float p[2] = {0.0f, (float)log(2.0)}, q[2] = {0.0f, 0.0f};
    /* P = (1/3, 2/3), Q = (1/2, 1/2) */
    const double want = (1.0 / 3) * log((1.0 / 3) / 0.5) + (2.0 / 3) * log((2.0 / 3) / 0.5);
    CHECK_NEAR(pc_logits_kl(p, q, 2), want, 1e-7);
    /* Q = (1/3, 2/3) against P = (1/2, 1/2) */
    const double back = 0.5 * log(0.5 / (1.0 / 3)) + 0.5 * log(0.5 / (2.0 / 3));
    CHECK_NEAR(pc_logits_kl(q, p, 2), back, 1e-7);
    const float r[4] = {1.5f, -2.0f, 0.25f, 3.0f}, r_shift[4] = {101.5f, 98.0f, 100.25f, 103.0f};
    CHECK(pc_logits_kl(r, r, 4) == 0.0);
    CHECK_NEAR(pc_logits_kl(r, r_shift, 4), 0.0, 1e-6);
    const float far[2] = {0.0f, 30.0f}; /* P = (e^-30/(1+e^-30), ...): KL = sum p log(p/q) vs uniform */
    const double p0 = 1.0 / (1.0 + exp(30.0)), p1 = 1.0 - p0;
    CHECK_NEAR(pc_logits_kl(far, q, 2), p0 * log(p0 / 0.5) + p1 * log(p1 / 0.5), 1e-6);
}

/* ---------------- helpers ---------------- */

typedef struct logits_log {
    float *v; /* [cap][n_vocab] */
    size_t cap, calls, next_step;
    int32_t n_vocab;
    bool in_order;
} logits_log;

static void keep(void *user, size_t step, const float *logits, int32_t n_vocab) {
    logits_log *L = user;
    L->in_order = L->in_order && step == L->next_step && n_vocab == L->n_vocab;
    L->next_step = step + 1;
    if (step < L->cap && n_vocab == L->n_vocab) memcpy(L->v + step * (size_t)n_vocab, logits, sizeof(float) * n_vocab);
    L->calls++;
}

static logits_log log_new(const pc_engine *eng, size_t cap) {
    const int32_t V = pc_engine_n_vocab(eng);
    return (logits_log){.v = calloc(cap * (size_t)V, sizeof(float)), .cap = cap, .n_vocab = V, .in_order = true};
}

static int32_t argmax(const float *x, int32_t n) {
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

static int32_t *tokens(const pc_engine *eng, const char *text, size_t *n) {
    int32_t *ids = NULL;
    pc_error err = {0};
    if (pc_engine_tokenize(eng, text, strlen(text), false, false, &ids, n, &err) != PC_OK) {
        fprintf(stderr, "tokenize: %s\n", err.msg);
        return NULL;
    }
    return ids;
}

static pc_gen_params greedy(int n) {
    pc_gen_params g = pc_gen_default_params();
    g.temp = 0;
    g.n_predict = n;
    g.ignore_eos = true;
    return g;
}

/* ---------------- 2. forcing, 3. on_logits ---------------- */

static void check_forcing_and_observer(pc_engine *eng) {
    size_t np = 0, nf = 0;
    int32_t *prompt = tokens(eng, "The weather today is", &np);
    const char *forced_text = " purple elephants dancing on the moon";
    int32_t *forced = tokens(eng, forced_text, &nf);
    if (!prompt || !forced) {
        CHECK(0);
        return;
    }
    const int32_t V = pc_engine_n_vocab(eng);
    pc_error err = {0};

    /* Forced tokens are emitted as given, even unlikely ones. */
    logits_log L = log_new(eng, nf);
    pc_gen_params g = greedy((int)nf);
    g.force_tokens = forced;
    g.n_force = nf;
    g.on_logits = keep;
    g.logits_user = &L;
    pc_gen_result r = {0};
    CHECK_MSG(pc_engine_generate(eng, prompt, np, &g, NULL, NULL, &r, &err) == PC_OK, "%s", err.msg);
    CHECK_EQ_INT(r.n_tokens, nf);
    CHECK(r.n_tokens == nf && memcmp(r.tokens, forced, nf * sizeof *forced) == 0);
    CHECK_STR(r.text ? r.text : "", forced_text);
    CHECK_EQ_INT(L.calls, nf);
    CHECK(L.in_order);
    pc_gen_result_free(&r);

    /* Greedy run, observed: one call per token, step 0 = first_logits, tokens = argmax. */
    const int n = 12;
    logits_log G = log_new(eng, (size_t)n);
    float *first = malloc(sizeof(float) * V);
    g = greedy(n);
    g.first_logits = first;
    g.on_logits = keep;
    g.logits_user = &G;
    pc_gen_result gr = {0};
    CHECK_MSG(pc_engine_generate(eng, prompt, np, &g, NULL, NULL, &gr, &err) == PC_OK, "%s", err.msg);
    CHECK_EQ_INT(gr.n_tokens, n);
    CHECK_EQ_INT(G.calls, n);
    CHECK(G.in_order);
    CHECK(memcmp(first, G.v, sizeof(float) * V) == 0);
    int argmax_ok = 0;
    for (size_t i = 0; i < gr.n_tokens; i++) argmax_ok += argmax(G.v + i * (size_t)V, V) == gr.tokens[i];
    CHECK_EQ_INT(argmax_ok, n);

    /* Forcing the greedy answer recomputes the very same logits at every step. */
    logits_log F = log_new(eng, (size_t)n);
    g = greedy(n);
    g.force_tokens = gr.tokens;
    g.n_force = gr.n_tokens;
    g.on_logits = keep;
    g.logits_user = &F;
    CHECK_MSG(pc_engine_generate(eng, prompt, np, &g, NULL, NULL, &r, &err) == PC_OK, "%s", err.msg);
    CHECK(r.n_tokens == gr.n_tokens && memcmp(r.tokens, gr.tokens, gr.n_tokens * sizeof *gr.tokens) == 0);
    CHECK_EQ_INT(F.calls, n);
    CHECK(memcmp(F.v, G.v, sizeof(float) * V * (size_t)n) == 0);
    pc_gen_result_free(&r);

    /* Without ignore_eos, generation stops at end-of-generation: calls still match tokens. */
    int32_t eog_force[2] = {forced[0], -1};
    {
        size_t ne = 0;
        int32_t *im_end = NULL;
        if (pc_engine_tokenize(eng, "<|im_end|>", 10, false, true, &im_end, &ne, &err) == PC_OK && ne == 1)
            eog_force[1] = im_end[0];
        pc_free(im_end);
    }
    CHECK(eog_force[1] >= 0);
    logits_log S = log_new(eng, 8);
    g = greedy(8);
    g.ignore_eos = false;
    g.force_tokens = eog_force;
    g.n_force = 2;
    g.on_logits = keep;
    g.logits_user = &S;
    CHECK_MSG(pc_engine_generate(eng, prompt, np, &g, NULL, NULL, &r, &err) == PC_OK, "%s", err.msg);
    CHECK_EQ_INT(r.n_tokens, 2);
    CHECK(r.stop == PC_STOP_EOG);
    CHECK_EQ_INT(S.calls, 2);
    pc_gen_result_free(&r);

    /* A forced token outside the vocabulary is refused before any compute. */
    int32_t bad = V;
    g = greedy(2);
    g.force_tokens = &bad;
    g.n_force = 1;
    CHECK(pc_engine_generate(eng, prompt, np, &g, NULL, NULL, &r, &err) == PC_ERR_RANGE);

    pc_gen_result_free(&gr);
    free(first);
    free(L.v);
    free(G.v);
    free(F.v);
    free(S.v);
    pc_free(prompt);
    pc_free(forced);
}

/* ---------------- 4. cached vs uncached ---------------- */

static const char *DOCS =
    "<schema name=\"qdocs\"><system>You answer questions about the documents.</system><user>"
    "<module name=\"rhine\">The Rhine rises in the Swiss Alps and flows north through Germany and the "
    "Netherlands into the North Sea.</module>"
    "<module name=\"trip\">We travel for <parameter name=\"days\" length=\"4\" scaffold=\"three days\"/>."
    "<union scaffold=\"home\"><module name=\"home\">We stay at home.</module><module name=\"abroad\">We go abroad "
    "to Sicily and climb Mount Etna, one of the most active volcanoes.</module></union></module></user></schema>";

typedef struct kl_stats {
    double first, sum, max;
    size_t steps;
    bool finite;
} kl_stats;

/* Uncached greedy answer (logits kept), then forced through the cached context. */
static void cached_vs_uncached(pc_engine *eng, const char *prompt, int n, kl_stats *k, bool *identical) {
    const int32_t V = pc_engine_n_vocab(eng);
    pc_error err = {0};
    pc_run_params rp = {.gen = greedy(n), .use_cache = false};
    logits_log U = log_new(eng, (size_t)n), C = log_new(eng, (size_t)n);
    rp.gen.on_logits = keep;
    rp.gen.logits_user = &U;
    pc_run_result ru = {0}, rc = {0}, rf = {0};
    CHECK_MSG(pc_engine_run(eng, prompt, strlen(prompt), "uncached", &rp, NULL, NULL, &ru, &err) == PC_OK, "%s",
              err.msg);
    rp = (pc_run_params){.gen = greedy(n), .use_cache = true};
    CHECK_MSG(pc_engine_run(eng, prompt, strlen(prompt), "cached", &rp, NULL, NULL, &rc, &err) == PC_OK, "%s", err.msg);
    rp.gen.force_tokens = ru.gen.tokens;
    rp.gen.n_force = ru.gen.n_tokens;
    rp.gen.on_logits = keep;
    rp.gen.logits_user = &C;
    CHECK_MSG(pc_engine_run(eng, prompt, strlen(prompt), "forced", &rp, NULL, NULL, &rf, &err) == PC_OK, "%s", err.msg);
    CHECK(rc.cached_tokens > 0);
    CHECK_EQ_INT(U.calls, n);
    CHECK_EQ_INT(C.calls, n);
    *k = (kl_stats){.finite = true};
    for (size_t i = 0; i < (size_t)n && U.calls == (size_t)n && C.calls == (size_t)n; i++) {
        double kl = pc_logits_kl(U.v + i * (size_t)V, C.v + i * (size_t)V, V);
        k->finite = k->finite && isfinite(kl) && kl >= 0;
        if (i == 0) k->first = kl;
        k->sum += kl;
        k->max = kl > k->max ? kl : k->max;
        k->steps++;
    }
    *identical = ru.gen.n_tokens == rc.gen.n_tokens &&
                 memcmp(ru.gen.tokens, rc.gen.tokens, ru.gen.n_tokens * sizeof(int32_t)) == 0;
    pc_run_result_free(&ru);
    pc_run_result_free(&rc);
    pc_run_result_free(&rf);
    free(U.v);
    free(C.v);
}

static void check_quality(pc_engine *eng) {
    pc_error err = {0};
    pc_schema_params sp = {0};
    if (pc_engine_schema_load(eng, DOCS, strlen(DOCS), "qdocs.xml", &sp, NULL, &err) != PC_OK) {
        CHECK_MSG(0, "%s", err.msg);
        return;
    }
    kl_stats k;
    bool same = false;
    cached_vs_uncached(eng, "<prompt schema=\"qdocs\"><rhine/><trip><home/></trip><user>Where does the Rhine rise?"
                            "</user></prompt>",
                       12, &k, &same);
    CHECK_EQ_INT(k.steps, 12);
    CHECK(k.first == 0.0 && k.max == 0.0 && k.sum == 0.0);
    CHECK(same);

    cached_vs_uncached(eng, "<prompt schema=\"qdocs\"><rhine/><trip days=\"a week\"><abroad/></trip><user>What do we "
                            "climb?</user></prompt>",
                       12, &k, &same);
    CHECK_EQ_INT(k.steps, 12);
    CHECK(k.finite);
    /* The cached argument and member did not attend to each other as in one
     * prefill, so the distributions differ somewhere. */
    CHECK_MSG(k.sum > 0, "KL sum %g", k.sum);
    printf("argument + non-scaffold member: KL first %.4g, mean %.4g, max %.4g nats; answers %s\n", k.first,
           k.sum / (double)k.steps, k.max, same ? "identical" : "differ");
}

int main(void) {
    check_kl_by_hand();
    if (access(PC_MODEL_PATH, R_OK) != 0) {
        printf("model %s absent: skipped\n", PC_MODEL_PATH);
        return check_report() ? 1 : CHECK_SKIP;
    }
    pc_engine_params p = pc_engine_default_params();
    p.model_path = PC_MODEL_PATH;
    p.n_ctx = 1024;
    pc_error err = {0};
    pc_engine *eng = NULL;
    if (pc_engine_open(&p, &eng, &err) != PC_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    check_forcing_and_observer(eng);
    check_quality(eng);
    pc_engine_free(eng);
    return check_report();
}
