/* test_prefix_cache.c - the automatic prefix cache of plain prompts, on the
 * real default model.
 *
 *  1. Exactness: a prompt of 4 blocks and a bit, cold (blocks computed and
 *     kept) and warm (blocks reused), gives bitwise the first-token logits and
 *     the greedy tokens of the same prompt without the cache.
 *  2. Reuse to the token, as llama-server's: warm, cached_tokens is every
 *     token but the last; a prompt sharing the first 2 blocks and a half
 *     reuses exactly those 2.5 blocks, one sharing 100 tokens exactly 100,
 *     one sharing the full blocks and 5 tokens of the tail those, one
 *     differing in its second token only the first (the hash chain); each
 *     answer bitwise the plain one's.
 *  3. Tenants: another tenant reuses nothing of the first's blocks.
 *  3b. Stale index: a tenant's entries evicted (its quota lowered) after the
 *     index noted them: nothing reused, the answer exact.
 *  4. Budget: a memory tier too small for the blocks keeps it within its
 *     budget (once no request pins them) and answers stay exact.
 *  5. Through the scheduler, several requests sharing a prefix at once: the
 *     same tokens as alone.
 * Skips when the model is absent. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "pcache.h"

enum { B = PC_PREFIX_BLOCK, N_PRED = 12 };

typedef struct outcome {
    int32_t tokens[N_PRED];
    size_t n_tokens;
    int64_t cached;
    float *first_logits;
    int done;
} outcome;

static void on_done(void *user, pc_status status, const pc_error *err, const pc_run_result *r) {
    outcome *o = user;
    o->done++;
    if (status != PC_OK) {
        fprintf(stderr, "request failed: %s\n", err ? err->msg : "?");
        return;
    }
    o->n_tokens = r->gen.n_tokens;
    memcpy(o->tokens, r->gen.tokens, r->gen.n_tokens * sizeof(int32_t));
    o->cached = r->cached_tokens;
}

static pc_gen_params greedy(float *first_logits) {
    pc_gen_params g = pc_gen_default_params();
    g.n_predict = N_PRED;
    g.temp = 0;
    g.ignore_eos = true;
    g.first_logits = first_logits;
    return g;
}

/* tenant NULL: without the prefix cache. */
static pc_request *make(pc_engine *e, const int32_t *ids, size_t n, const char *tenant, outcome *o) {
    pc_gen_params g = greedy(o->first_logits);
    pc_request *r = NULL;
    pc_error err = {0};
    const pc_status st = tenant ? pc_request_from_prefix(e, ids, n, &g, *tenant ? tenant : NULL, &r, &err)
                                : pc_request_from_tokens(e, ids, n, &g, &r, &err);
    CHECK_MSG(st == PC_OK, "%s", err.msg);
    if (r) pc_request_set_callbacks(r, NULL, on_done, o);
    return r;
}

static outcome run(pc_engine *e, const int32_t *ids, size_t n, const char *tenant) {
    outcome o = {.first_logits = calloc((size_t)pc_engine_n_vocab(e), sizeof(float))};
    pc_request *r = make(e, ids, n, tenant, &o);
    pc_error err = {0};
    if (r) CHECK_MSG(pc_request_run(r, &err) == PC_OK, "%s", err.msg);
    pc_request_release(r);
    return o;
}

static bool same(pc_engine *e, const outcome *a, const outcome *b) {
    return a->n_tokens == N_PRED && a->n_tokens == b->n_tokens &&
           !memcmp(a->tokens, b->tokens, sizeof a->tokens) &&
           !memcmp(a->first_logits, b->first_logits, (size_t)pc_engine_n_vocab(e) * sizeof(float));
}

/* A chat prompt of n tokens at least: a long system text, cut to n. */
static int32_t *prompt(pc_engine *e, const char *topic, size_t want, size_t *n) {
    char text[16384] = "";
    for (int i = 0; strlen(text) < 6 * want && i < 200; i++) {
        char line[160];
        snprintf(line, sizeof line, "Rule %d about %s: answer briefly, cite the rule, and never guess. ", i, topic);
        strcat(text, line);
    }
    int32_t *ids = NULL;
    pc_error err = {0};
    CHECK_MSG(pc_engine_tokenize(e, text, strlen(text), true, true, &ids, n, &err) == PC_OK, "%s", err.msg);
    CHECK(*n >= want);
    *n = want;
    return ids;
}

static pc_engine *open_engine(size_t mem) {
    pc_engine_params p = pc_engine_default_params();
    p.model_path = PC_MODEL_PATH;
    p.n_ctx = 1024;
    p.cache.mem_bytes = mem;
    pc_engine *e = NULL;
    pc_error err = {0};
    CHECK_MSG(pc_engine_open(&p, &e, &err) == PC_OK, "%s", err.msg);
    return e;
}

static void free_outcome(outcome *o) {
    free(o->first_logits);
}

/* ids with token `at` changed, under tenant: reuses `want` tokens, answers as without the cache. */
static void check_fork(pc_engine *e, const int32_t *ids, size_t n, size_t at, const char *tenant, int64_t want) {
    int32_t *fork = malloc(n * sizeof *fork);
    memcpy(fork, ids, n * sizeof *fork);
    fork[at] = ids[at] == 100 ? 101 : 100;
    outcome f = run(e, fork, n, tenant), fp = run(e, fork, n, NULL);
    CHECK_MSG(f.cached == want, "fork at %zu: %lld tokens reused, want %lld", at, (long long)f.cached, (long long)want);
    CHECK_MSG(same(e, &f, &fp), "fork at %zu: the prefix-cached answer differs from the plain one", at);
    free_outcome(&f);
    free_outcome(&fp);
    free(fork);
}

static void check_exact_and_reuse(void) {
    pc_engine *e = open_engine(0);
    if (!e) return;
    size_t n = 0;
    int32_t *ids = prompt(e, "rivers", 4 * B + 9, &n);
    outcome plain = run(e, ids, n, NULL), cold = run(e, ids, n, "a"), warm = run(e, ids, n, "a");
    CHECK_EQ_INT(plain.cached, 0);
    CHECK_EQ_INT(cold.cached, 0);
    CHECK_EQ_INT(warm.cached, (int64_t)n - 1);
    CHECK_MSG(same(e, &plain, &cold), "cold prefix-cached answer differs from the plain one");
    CHECK_MSG(same(e, &plain, &warm), "warm prefix-cached answer differs from the plain one");

    /* every token before the last: n = 4B + 1 reuses 4 blocks, n = 4B 3 blocks and 63 tokens of the 4th */
    outcome o = run(e, ids, 4 * B + 1, "a");
    CHECK_EQ_INT(o.cached, 4 * B);
    free_outcome(&o);
    o = run(e, ids, 4 * B, "a");
    CHECK_EQ_INT(o.cached, 4 * B - 1);
    free_outcome(&o);

    /* a prompt sharing 2.5 blocks reuses them (2 whole, the half copied from block 2) */
    int32_t *fork = malloc(n * sizeof *fork);
    memcpy(fork, ids, n * sizeof *fork);
    fork[2 * B + B / 2] = ids[2 * B + B / 2] == 100 ? 101 : 100;
    outcome f = run(e, fork, n, "a"), fp = run(e, fork, n, NULL);
    CHECK_EQ_INT(f.cached, 2 * B + B / 2);
    CHECK_MSG(same(e, &f, &fp), "a partly reused prompt's answer differs from the plain one");
    check_fork(e, ids, n, 100, "a", 100);          /* inside block 1: 36 of its tokens copied */
    check_fork(e, ids, n, 4 * B + 5, "a", 4 * B + 5); /* inside the tail, which was kept */
    check_fork(e, ids, n, 1, "a", 1);               /* the hash chain: only token 0 is shared */

    /* another tenant: nothing of a's */
    o = run(e, ids, n, "b");
    CHECK_EQ_INT(o.cached, 0);
    CHECK(same(e, &plain, &o));
    free_outcome(&o);
    o = run(e, ids, n, ""); /* the shared namespace is another one too */
    CHECK_EQ_INT(o.cached, 0);
    free_outcome(&o);

    /* stale index: q's entries evicted after they were noted */
    o = run(e, ids, n, "q");
    free_outcome(&o);
    check_fork(e, ids, n, 100, "q", 100);
    pc_error err = {0};
    CHECK_MSG(pc_engine_set_tenant_quota(e, "q", 1, &err) == PC_OK, "%s", err.msg);
    size_t held = 0, quota = 0;
    pc_engine_tenant_usage(e, "q", &held, &quota);
    CHECK_EQ_INT(held, 0);
    check_fork(e, ids, n, 100, "q", 0);

    pc_cache_stats cs;
    pc_engine_cache_stats(e, &cs);
    CHECK(!cs.tier[PC_SOURCE_DISK].enabled && !cs.tier[PC_SOURCE_REMOTE].enabled);
    CHECK(cs.tier[PC_SOURCE_MEMORY].hits >= 4 + 4 + 3 + 2);
    free_outcome(&plain);
    free_outcome(&cold);
    free_outcome(&warm);
    free_outcome(&f);
    free_outcome(&fp);
    free(fork);
    pc_free(ids);
    pc_engine_free(e);
}

static void check_budget(void) {
    /* room for about two blocks of the 135M model (23040 bytes a token) */
    const size_t budget = (size_t)2 * B * 23040 + 1000;
    pc_engine *e = open_engine(budget);
    if (!e) return;
    size_t n = 0;
    int32_t *ids = prompt(e, "mountains", 5 * B + 3, &n);
    outcome plain = run(e, ids, n, NULL);
    for (int i = 0; i < 3; i++) {
        outcome o = run(e, ids, n, "a");
        CHECK(same(e, &plain, &o));
        pc_cache_stats cs;
        pc_engine_cache_stats(e, &cs);
        CHECK_MSG(cs.tier[PC_SOURCE_MEMORY].bytes <= budget, "memory tier holds %llu bytes, budget %zu",
                  (unsigned long long)cs.tier[PC_SOURCE_MEMORY].bytes, budget);
        free_outcome(&o);
    }
    pc_cache_stats cs;
    pc_engine_cache_stats(e, &cs);
    CHECK(cs.tier[PC_SOURCE_MEMORY].evictions > 0);
    free_outcome(&plain);
    pc_free(ids);
    pc_engine_free(e);
}

static void check_scheduler(void) {
    pc_engine *e = open_engine(0);
    if (!e) return;
    enum { K = 4 };
    size_t n = 0;
    int32_t *ids = prompt(e, "lakes", 3 * B + 20, &n);
    outcome alone[K], busy[K];
    int32_t *p[K];
    for (int k = 0; k < K; k++) { /* a shared prefix of 3 blocks, each its own ending */
        p[k] = malloc(n * sizeof *p[k]);
        memcpy(p[k], ids, n * sizeof *ids);
        p[k][n - 5] = 200 + k;
        alone[k] = run(e, p[k], n, NULL);
        busy[k] = (outcome){.first_logits = calloc((size_t)pc_engine_n_vocab(e), sizeof(float))};
    }
    pc_sched_params sp = {.max_active = K, .max_queued = K, .step_tokens = 48};
    pc_error err = {0};
    for (int round = 0; round < 2; round++) { /* cold then warm; a drained scheduler takes no more */
        pc_sched *S = NULL;
        CHECK_MSG(pc_sched_start(e, &sp, &S, &err) == PC_OK, "%s", err.msg);
        if (!S) break;
        for (int k = 0; k < K; k++) {
            free(busy[k].first_logits);
            busy[k] = (outcome){.first_logits = calloc((size_t)pc_engine_n_vocab(e), sizeof(float))};
            pc_request *r = make(e, p[k], n, "s", &busy[k]);
            if (r) CHECK_MSG(pc_sched_submit(S, r, &err) == PC_OK, "%s", err.msg);
            pc_request_release(r);
        }
        CHECK(pc_sched_drain(S, 0));
        for (int k = 0; k < K; k++) {
            CHECK_EQ_INT(busy[k].done, 1);
            CHECK_MSG(same(e, &alone[k], &busy[k]), "round %d request %d: batched prefix-cached answer differs", round, k);
            if (round == 1) CHECK_EQ_INT(busy[k].cached, (int64_t)n - 1); /* 3 blocks and its own tail */
        }
        pc_sched_free(S);
    }
    for (int k = 0; k < K; k++) {
        free_outcome(&alone[k]);
        free_outcome(&busy[k]);
        free(p[k]);
    }
    pc_free(ids);
    pc_engine_free(e);
}

int main(void) {
    if (access(PC_MODEL_PATH, R_OK) != 0) {
        printf("model %s absent: skipped\n", PC_MODEL_PATH);
        return CHECK_SKIP;
    }
    check_exact_and_reuse();
    check_budget();
    check_scheduler();
    return check_report();
}
