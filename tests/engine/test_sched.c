/* test_sched.c - the scheduler on the real default model.
 *
 *  1. Batching is invisible: plain prompts of very different lengths (one
 *     longer than a step, so it is prefilled in chunks beside others' decodes)
 *     and PML prompts (cached spans, an argument, the prompt's text), greedy
 *     and seeded-sampled, all submitted at once to a scheduler with fewer
 *     slots than requests, give bitwise the first-token logits and the tokens
 *     each gives alone through the blocking API; streamed pieces add up to the
 *     final text; each on_done runs exactly once.
 *  2. Cancel: a streaming request cancelled from another thread ends at its
 *     next step with PC_STOP_CANCEL, and its slot goes to a waiting request.
 *  3. Limits: a full queue answers PC_ERR_BUSY; a draining or stopped
 *     scheduler too; a drain with a deadline gives up at it.
 *  4. Stop with requests in flight: every one gets its on_done, cancelled.
 * scripts/test.sh also runs it under ThreadSanitizer. Skips when the model is
 * absent. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "pcache.h"

/* What a request left behind: written on the scheduler thread, read after
 * drain (the scheduler's lock orders the two). */
typedef struct outcome {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done_calls, pieces;
    pc_status status;
    pc_stop_reason stop;
    int32_t tokens[256];
    size_t n_tokens;
    char streamed[4096], text[4096];
    size_t streamed_len;
    float *first_logits;
} outcome;

static void outcome_init(outcome *o, int n_vocab) {
    memset(o, 0, sizeof *o);
    pthread_mutex_init(&o->mu, NULL);
    pthread_cond_init(&o->cv, NULL);
    o->first_logits = calloc((size_t)n_vocab, sizeof(float));
}

static void outcome_free(outcome *o) {
    pthread_mutex_destroy(&o->mu);
    pthread_cond_destroy(&o->cv);
    free(o->first_logits);
}

static bool on_text(void *user, int32_t token, const char *text, size_t len) {
    (void)token;
    outcome *o = user;
    pthread_mutex_lock(&o->mu);
    if (o->streamed_len + len < sizeof o->streamed) {
        memcpy(o->streamed + o->streamed_len, text, len);
        o->streamed_len += len;
    }
    o->pieces++;
    pthread_cond_broadcast(&o->cv);
    pthread_mutex_unlock(&o->mu);
    return true;
}

static void on_done(void *user, pc_status status, const pc_error *err, const pc_run_result *r) {
    outcome *o = user;
    pthread_mutex_lock(&o->mu);
    o->done_calls++;
    o->status = status;
    if (status != PC_OK) fprintf(stderr, "request failed: %s\n", err ? err->msg : "?");
    if (r) {
        o->stop = r->gen.stop;
        o->n_tokens = r->gen.n_tokens < 256 ? r->gen.n_tokens : 256;
        memcpy(o->tokens, r->gen.tokens, o->n_tokens * sizeof(int32_t));
        snprintf(o->text, sizeof o->text, "%s", r->gen.text ? r->gen.text : "");
    }
    pthread_cond_broadcast(&o->cv);
    pthread_mutex_unlock(&o->mu);
}

/* ---------------- the requests ---------------- */

static const char *SCHEMA =
    "<schema name=\"desk\"><system>You are a helpful librarian.</system><user>"
    "<module name=\"rivers\">The Rhine rises in the Swiss Alps and flows into the North Sea. The Danube rises in the "
    "Black Forest and flows into the Black Sea.</module>"
    "<module name=\"who\">The reader is called <parameter name=\"name\" length=\"6\" scaffold=\"Alex\"/>.</module>"
    "<module name=\"mountains\">Mont Blanc is the highest mountain of the Alps.</module></user></schema>";

typedef struct req_spec {
    const char *user;   /* plain: the user message; NULL for PML */
    const char *pml;
    int n_predict;
    float temp;
    int repeat;         /* plain: repeat the user message this many times (a long prompt) */
    bool ignore_eos;    /* runs its n_predict tokens whatever the model would say */
} req_spec;

static const req_spec SPECS[] = {
    {"Hi.", NULL, 24, 0, 1, false},
    {"Name three rivers of Europe and say where each one rises.", NULL, 40, 0, 1, false},
    {"Summarise this text in one sentence: the quick brown fox jumps over the lazy dog. ", NULL, 16, 0, 12, false},
    {NULL, "<prompt schema=\"desk\"><rivers/><who name=\"Kim\"/><user>Where does the Danube rise?</user></prompt>", 32, 0, 0, false},
    {"Write a haiku about the sea.", NULL, 32, 0.8f, 1, false},
    {NULL, "<prompt schema=\"desk\"><mountains/><user>What is the highest mountain of the Alps?</user></prompt>", 20, 0, 0, false},
    {"What is two plus two?", NULL, 12, 0, 1, false},
    {NULL, "<prompt schema=\"desk\"><rivers/><mountains/><user>Tell me about the Rhine.</user></prompt>", 28, 0.7f, 0, false},
};
enum { N_REQ = sizeof SPECS / sizeof SPECS[0] };

static pc_gen_params gen_of(const req_spec *s, float *first_logits) {
    pc_gen_params g = pc_gen_default_params();
    g.n_predict = s->n_predict;
    g.temp = s->temp;
    g.seed = 1234;
    g.ignore_eos = s->ignore_eos;
    g.first_logits = first_logits;
    return g;
}

static int32_t *plain_tokens(const pc_engine *eng, const req_spec *s, size_t *n) {
    const int repeat = s->repeat;
    size_t len = strlen(s->user) * (size_t)repeat + 1;
    char *user = malloc(len), *text = NULL;
    user[0] = '\0';
    for (int i = 0; i < repeat; i++) strcat(user, s->user);
    pc_error err = {0};
    int32_t *ids = NULL;
    CHECK_MSG(pc_engine_chat_prompt(eng, NULL, user, &text, &err) == PC_OK, "%s", err.msg);
    CHECK_MSG(pc_engine_tokenize(eng, text, strlen(text), true, true, &ids, n, &err) == PC_OK, "%s", err.msg);
    free(user);
    pc_free(text);
    return ids;
}

static pc_request *make_request(pc_engine *eng, const req_spec *s, float *first_logits) {
    pc_error err = {0};
    pc_request *r = NULL;
    if (s->user) {
        size_t n = 0;
        int32_t *ids = plain_tokens(eng, s, &n);
        pc_gen_params g = gen_of(s, first_logits);
        CHECK_MSG(pc_request_from_tokens(eng, ids, n, &g, &r, &err) == PC_OK, "%s", err.msg);
        pc_free(ids);
    } else {
        pc_run_params rp = {.gen = gen_of(s, first_logits), .use_cache = true};
        CHECK_MSG(pc_request_from_pml(eng, s->pml, strlen(s->pml), "test", &rp, &r, &err) == PC_OK, "%s", err.msg);
    }
    return r;
}

/* ---------------- 1. batching is invisible ---------------- */

static void run_alone(pc_engine *eng, const req_spec *s, outcome *o) {
    pc_request *r = make_request(eng, s, o->first_logits);
    if (!r) return;
    pc_request_set_callbacks(r, on_text, on_done, o);
    pc_error err = {0};
    CHECK_MSG(pc_request_run(r, &err) == PC_OK, "%s", err.msg);
    pc_request_release(r);
}

static void check_batched_equals_alone(pc_engine *eng, int n_vocab) {
    outcome alone[N_REQ], busy[N_REQ];
    for (int i = 0; i < N_REQ; i++) {
        outcome_init(&alone[i], n_vocab);
        outcome_init(&busy[i], n_vocab);
        run_alone(eng, &SPECS[i], &alone[i]);
    }
    /* fewer slots than requests, steps shorter than the long prompt */
    pc_sched_params sp = {.max_active = 5, .max_queued = 16, .step_tokens = 48};
    pc_sched *S = NULL;
    pc_error err = {0};
    CHECK_MSG(pc_sched_start(eng, &sp, &S, &err) == PC_OK, "%s", err.msg);
    if (!S) return;
    for (int i = 0; i < N_REQ; i++) {
        pc_request *r = make_request(eng, &SPECS[i], busy[i].first_logits);
        if (!r) continue;
        pc_request_set_callbacks(r, on_text, on_done, &busy[i]);
        CHECK_MSG(pc_sched_submit(S, r, &err) == PC_OK, "%s", err.msg);
        pc_request_release(r);
    }
    CHECK(pc_sched_drain(S, 0));
    pc_sched_stats st;
    pc_sched_get_stats(S, &st);
    CHECK_EQ_INT(st.completed, N_REQ);
    CHECK_EQ_INT(st.active + st.queued, 0);
    /* decodes and prefill chunks shared steps: fewer steps than rows */
    CHECK_MSG(st.rows > st.steps, "%llu rows in %llu steps", (unsigned long long)st.rows, (unsigned long long)st.steps);
    pc_sched_free(S);
    for (int i = 0; i < N_REQ; i++) {
        const outcome *a = &alone[i], *b = &busy[i];
        CHECK_EQ_INT(a->done_calls, 1);
        CHECK_EQ_INT(b->done_calls, 1);
        CHECK_MSG(a->n_tokens > 0 && a->n_tokens == b->n_tokens &&
                      memcmp(a->tokens, b->tokens, a->n_tokens * sizeof(int32_t)) == 0,
                  "request %d: tokens differ batched (%zu) and alone (%zu)", i, b->n_tokens, a->n_tokens);
        CHECK_MSG(memcmp(a->first_logits, b->first_logits, sizeof(float) * (size_t)n_vocab) == 0,
                  "request %d: first-token logits differ batched and alone", i);
        CHECK_MSG(strcmp(a->text, b->text) == 0, "request %d: text differs", i);
        CHECK_MSG(b->streamed_len == strlen(b->text) && memcmp(b->streamed, b->text, b->streamed_len) == 0,
                  "request %d: streamed pieces do not add up to the text", i);
    }
    for (int i = 0; i < N_REQ; i++) {
        outcome_free(&alone[i]);
        outcome_free(&busy[i]);
    }
}

/* ---------------- 2. cancel; 3. limits; 4. stop ---------------- */

static pc_request *long_request(pc_engine *eng, outcome *o) {
    /* Its 200 tokens are never all generated: it is cancelled or stopped. Past the end-of-generation token,
     * or a fast decode could finish it (EOG) before a drain's deadline that the test expects it to outlive. */
    static const req_spec s = {"Count from one to one hundred, one number per line.", NULL, 200, 0, 1, true};
    pc_request *r = make_request(eng, &s, NULL);
    pc_request_set_callbacks(r, on_text, on_done, o);
    return r;
}

static void wait_pieces(outcome *o, int n) {
    pthread_mutex_lock(&o->mu);
    while (o->pieces < n && o->done_calls == 0) pthread_cond_wait(&o->cv, &o->mu);
    pthread_mutex_unlock(&o->mu);
}

static void wait_done(outcome *o) {
    pthread_mutex_lock(&o->mu);
    while (o->done_calls == 0) pthread_cond_wait(&o->cv, &o->mu);
    pthread_mutex_unlock(&o->mu);
}

static void check_cancel_and_limits(pc_engine *eng, int n_vocab) {
    pc_sched_params sp = {.max_active = 1, .max_queued = 1, .step_tokens = 64};
    pc_sched *S = NULL;
    pc_error err = {0};
    CHECK_MSG(pc_sched_start(eng, &sp, &S, &err) == PC_OK, "%s", err.msg);
    if (!S) return;
    outcome a, b, c;
    outcome_init(&a, n_vocab);
    outcome_init(&b, n_vocab);
    outcome_init(&c, n_vocab);
    pc_request *ra = long_request(eng, &a), *rb = long_request(eng, &b), *rc = long_request(eng, &c);
    CHECK(pc_sched_submit(S, ra, &err) == PC_OK);
    CHECK(pc_sched_submit(S, rb, &err) == PC_OK);
    CHECK(pc_sched_submit(S, rc, &err) == PC_ERR_BUSY); /* one slot, one place in the queue */
    CHECK(strstr(err.msg, "busy") != NULL);
    CHECK(pc_sched_submit(S, ra, &err) == PC_ERR_INVALID); /* twice */
    wait_pieces(&a, 3);
    pc_request_cancel(ra);
    wait_done(&a);
    CHECK_EQ_INT(a.stop, PC_STOP_CANCEL);
    CHECK(a.n_tokens > 0 && a.n_tokens < 200);
    wait_pieces(&b, 1); /* the freed slot went to the queued request (b still streams: read its fields only under its lock) */
    CHECK(!pc_sched_drain(S, 50)); /* b runs on: the drain gives up at its deadline */
    /* 4. stop with b in flight: its on_done runs, cancelled */
    pc_sched_stop(S);
    CHECK_EQ_INT(b.done_calls, 1);
    CHECK_EQ_INT(b.stop, PC_STOP_CANCEL);
    CHECK_EQ_INT(a.done_calls, 1);
    CHECK_EQ_INT(c.done_calls, 0); /* never accepted */
    outcome e;
    outcome_init(&e, n_vocab);
    pc_request *re = long_request(eng, &e);
    CHECK(pc_sched_submit(S, re, &err) == PC_ERR_BUSY); /* stopped, not yet freed: refused */
    pc_sched_free(S);
    pc_request_release(re);
    outcome_free(&e);
    pc_request_release(ra);
    pc_request_release(rb);
    pc_request_release(rc);
    outcome_free(&a);
    outcome_free(&b);
    outcome_free(&c);

    /* 3. a draining scheduler refuses new work */
    CHECK(pc_sched_start(eng, &sp, &S, &err) == PC_OK);
    CHECK(pc_sched_drain(S, 100));
    outcome d;
    outcome_init(&d, n_vocab);
    pc_request *rd = long_request(eng, &d);
    CHECK(pc_sched_submit(S, rd, &err) == PC_ERR_BUSY);
    pc_sched_free(S);
    CHECK_EQ_INT(d.done_calls, 0);
    pc_request_release(rd);
    outcome_free(&d);
}

int main(void) {
    if (access(PC_MODEL_PATH, R_OK) != 0) {
        printf("model %s absent: skipped\n", PC_MODEL_PATH);
        return CHECK_SKIP;
    }
    pc_engine_params p = pc_engine_default_params();
    p.model_path = PC_MODEL_PATH;
    p.n_ctx = 2048;
    pc_error err = {0};
    pc_engine *eng = NULL;
    if (pc_engine_open(&p, &eng, &err) != PC_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    const int n_vocab = pc_engine_n_vocab(eng);
    CHECK_MSG(pc_engine_schema_load(eng, SCHEMA, strlen(SCHEMA), "desk.xml", NULL, NULL, &err) == PC_OK, "%s", err.msg);
    check_batched_equals_alone(eng, n_vocab);
    check_cancel_and_limits(eng, n_vocab);
    pc_engine_free(eng);
    return check_report();
}
