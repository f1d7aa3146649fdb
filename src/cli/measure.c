/* measure.c - TTFT over repeated runs, and the quality of a cached answer.
 *
 * Quality is measured against the reference a user would otherwise get, the
 * uncached answer: its per-step logits are kept, then its tokens are
 * teacher-forced through the cached context and each step's distributions are
 * compared (KL in nats), so both sides see the very same token history. */
#include "cli/measure.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Steps of reference logits kept for the quality measure (n_vocab floats each). */
#define MAX_QUALITY_STEPS 256

static bool print_piece(void *user, int32_t token, const char *text, size_t len) {
    (void)user;
    (void)token;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    return true;
}

static json_t *int_array(const int32_t *v, size_t n) {
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) json_array_append_new(a, json_integer(v[i]));
    return a;
}

/* Where each cached piece came from: [{path, start, tokens, source}]. */
static json_t *pieces_json(const pc_run_result *r) {
    json_t *a = json_array();
    for (size_t i = 0; i < r->n_pieces; i++)
        json_array_append_new(a, json_pack("{s:s, s:i, s:i, s:s}", "path", r->pieces[i].path, "start",
                                           (int)r->pieces[i].start, "tokens", (int)r->pieces[i].n, "source",
                                           pc_kv_source_name(r->pieces[i].source)));
    return a;
}

json_t *pc_cli_result_json(const pc_run_result *r, const double *ttfts, int n_runs) {
    json_t *all = json_array();
    for (int i = 0; i < n_runs; i++) json_array_append_new(all, json_real(ttfts[i]));
    json_t *j = json_pack("{s:s, s:o, s:s, s:f, s:o, s:I, s:I, s:f, s:f, s:I, s:o, s:o}", "text", r->gen.text ? r->gen.text : "",
                          "tokens", int_array(r->gen.tokens, r->gen.n_tokens), "stop",
                          pc_stop_reason_name(r->gen.stop), "ttft_ms", r->gen.ttft_ms, "ttft_all_ms",
                          all, "cached_tokens", (json_int_t)r->cached_tokens, "fresh_tokens", (json_int_t)r->fresh_tokens,
                          "assemble_ms", r->assemble_ms, "decode_tok_s", r->gen.decode_tok_s, "kv_bytes",
                          (json_int_t)r->kv_bytes, "input_tokens", int_array(r->input_tokens, r->n_input), "input_pos",
                          int_array(r->input_pos, r->n_input));
    json_object_set_new(j, "pieces", pieces_json(r));
    json_object_set_new(j, "encoded_tokens", json_integer((json_int_t)r->encoded_tokens));
    json_object_set_new(j, "fetch_ms", json_real(r->fetch_ms));
    /* from the first forward step to the first token: TTFT less parsing, binding, the store and set-up */
    json_object_set_new(j, "prefill_ms", json_real(r->gen.prefill_ms));
    return j;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Per-step logits of the reference (uncached) answer, kept on its first run. */
typedef struct logit_log {
    float *v; /* [cap][n_vocab] */
    size_t cap, n;
    int32_t n_vocab;
} logit_log;

static void keep_logits(void *user, size_t step, const float *logits, int32_t n_vocab) {
    logit_log *L = user;
    if (step >= L->cap || n_vocab != L->n_vocab) return;
    memcpy(L->v + step * (size_t)n_vocab, logits, (size_t)n_vocab * sizeof *logits);
    if (step + 1 > L->n) L->n = step + 1;
}

pc_status pc_cli_run_repeated(pc_engine *e, const pc_cli_run_cfg *cfg, const pc_cli_prompt *p, bool cache,
                              bool quiet_answer, void *logits_user, pc_run_result *r, double *ttfts, pc_error *err) {
    pc_run_params rp = {.gen = cfg->gen, .use_cache = cache, .lenient = cfg->lenient, .tenant = cfg->tenant};
    const bool stream = !cfg->json && !quiet_answer;
    if (stream) fprintf(stderr, "--- answer (%s) ---\n", cache ? "cached" : "no cache");
    for (int i = 0; i < cfg->repeat; i++) {
        pc_run_result_free(r);
        rp.gen.on_logits = logits_user && i == 0 ? keep_logits : NULL;
        rp.gen.logits_user = logits_user;
        pc_status s = pc_engine_run(e, p->xml, p->len, p->path, &rp, stream && i == 0 ? print_piece : NULL, NULL, r, err);
        if (s != PC_OK) return s;
        ttfts[i] = r->gen.ttft_ms;
        if (stream && i == 0) {
            fputc('\n', stdout);
            fflush(stdout);
        }
    }
    double sorted[PC_CLI_MAX_REPEAT];
    memcpy(sorted, ttfts, (size_t)cfg->repeat * sizeof *sorted);
    qsort(sorted, (size_t)cfg->repeat, sizeof *sorted, cmp_double);
    r->gen.ttft_ms = sorted[cfg->repeat / 2];
    fprintf(stderr, "%-9s TTFT %8.1f ms | cached tokens %lld, fresh tokens %lld | assembly %.3f ms | decode %.1f tok/s",
            cache ? "cached:" : "no cache:", r->gen.ttft_ms, (long long)r->cached_tokens, (long long)r->fresh_tokens,
            r->assemble_ms, r->gen.decode_tok_s);
    int from[PC_N_TIERS + 1] = {0};
    for (size_t i = 0; i < r->n_pieces; i++) from[r->pieces[i].source]++;
    if (from[PC_SOURCE_DISK] || from[PC_SOURCE_REMOTE] || from[PC_SOURCE_ENCODED]) /* a memory hit says nothing */
        fprintf(stderr, " | pieces from memory %d, disk %d, redis %d, encoded %d (%lld tokens)", from[PC_SOURCE_MEMORY],
                from[PC_SOURCE_DISK], from[PC_SOURCE_REMOTE], from[PC_SOURCE_ENCODED], (long long)r->encoded_tokens);
    fputc('\n', stderr);
    return PC_OK;
}

/* ---- quality ---- */

typedef struct quality {
    const logit_log *ref;
    size_t steps;
    double kl_first, kl_sum, kl_max;
    bool first_agree, identical;
} quality;

static int32_t argmax(const float *x, int32_t n) {
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

static void compare_logits(void *user, size_t step, const float *logits, int32_t n_vocab) {
    quality *q = user;
    if (step >= q->ref->n || n_vocab != q->ref->n_vocab) return;
    const float *ref = q->ref->v + step * (size_t)n_vocab;
    const double kl = pc_logits_kl(ref, logits, n_vocab);
    if (step == 0) {
        q->kl_first = kl;
        q->first_agree = argmax(ref, n_vocab) == argmax(logits, n_vocab);
    }
    q->kl_sum += kl;
    if (kl > q->kl_max) q->kl_max = kl;
    q->steps++;
}

/* Teacher-forces the reference answer through the cached context (untimed). */
static pc_status measure_quality(pc_engine *e, const pc_cli_run_cfg *cfg, const pc_cli_prompt *p,
                                 const pc_run_result *cached, const pc_run_result *ref, quality *q, pc_error *err) {
    size_t n = ref->gen.n_tokens < q->ref->n ? ref->gen.n_tokens : q->ref->n;
    pc_run_params rp = {.gen = cfg->gen, .use_cache = true, .lenient = cfg->lenient, .tenant = cfg->tenant};
    rp.gen.force_tokens = ref->gen.tokens;
    rp.gen.n_force = n;
    rp.gen.n_predict = (int)n;
    rp.gen.ignore_eos = true; /* the reference's own end token is forced too */
    rp.gen.stop = NULL;
    rp.gen.n_stop = 0;
    rp.gen.first_logits = NULL;
    rp.gen.on_logits = compare_logits;
    rp.gen.logits_user = q;
    q->identical = cached->gen.n_tokens == ref->gen.n_tokens &&
                   !memcmp(cached->gen.tokens, ref->gen.tokens, ref->gen.n_tokens * sizeof *ref->gen.tokens);
    pc_run_result r = {0};
    pc_status s = pc_engine_run(e, p->xml, p->len, p->path, &rp, NULL, NULL, &r, err);
    pc_run_result_free(&r);
    if (s != PC_OK) return s;
    fprintf(stderr,
            "quality: first token %s, KL(uncached||cached) first %.3g nats, mean %.3g, max %.3g over %zu steps; "
            "%s answers %s\n",
            q->first_agree ? "agrees" : "DIFFERS", q->kl_first, q->steps ? q->kl_sum / (double)q->steps : 0.0,
            q->kl_max, q->steps, cfg->gen.temp <= 0 ? "greedy" : "sampled", q->identical ? "identical" : "differ");
    return PC_OK;
}

static json_t *quality_json(const quality *q, bool greedy) {
    return json_pack("{s:b, s:f, s:f, s:f, s:b, s:I, s:b}", "first_token_agree", q->first_agree, "kl_first",
                     q->kl_first, "kl_mean", q->steps ? q->kl_sum / (double)q->steps : 0.0, "kl_max", q->kl_max,
                     "identical", q->identical, "steps", (json_int_t)q->steps, "greedy", greedy);
}

void pc_cli_print_json(json_t *j) {
    char *s = json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_PRESERVE_ORDER);
    if (s) puts(s);
    fflush(stdout);
    free(s);
    json_decref(j);
}

pc_status pc_cli_compare(pc_engine *e, const pc_cli_run_cfg *cfg, const pc_cli_prompt *p, bool cached_side,
                         pc_error *err) {
    pc_run_result a = {0}, b = {0};
    double ta[PC_CLI_MAX_REPEAT], tb[PC_CLI_MAX_REPEAT];
    const int32_t V = pc_engine_n_vocab(e);
    size_t steps = cfg->gen.n_predict < MAX_QUALITY_STEPS ? (size_t)cfg->gen.n_predict : MAX_QUALITY_STEPS;
    logit_log ref = {.v = malloc(steps * (size_t)V * sizeof(float)), .cap = steps, .n_vocab = V};
    quality q = {.ref = &ref};
    pc_status st = PC_OK;
    if (!ref.v) {
        snprintf(err->msg, sizeof err->msg, "out of memory for %zu steps of logits", steps);
        st = err->code = PC_ERR_NOMEM;
    }
    if (st == PC_OK) st = pc_cli_run_repeated(e, cfg, p, cached_side, !cached_side, NULL, &a, ta, err);
    if (st == PC_OK) st = pc_cli_run_repeated(e, cfg, p, false, true, &ref, &b, tb, err);
    if (st == PC_OK)
        fprintf(stderr, "TTFT: %.1f ms cached vs %.1f ms without the cache: %.1fx faster\n", a.gen.ttft_ms,
                b.gen.ttft_ms, b.gen.ttft_ms / a.gen.ttft_ms);
    if (st == PC_OK) st = measure_quality(e, cfg, p, &a, &b, &q, err);
    if (st == PC_OK && cfg->json)
        pc_cli_print_json(json_pack("{s:s, s:o, s:o, s:o}", "prompt", p->path, "cached",
                                    pc_cli_result_json(&a, ta, cfg->repeat), "uncached",
                                    pc_cli_result_json(&b, tb, cfg->repeat), "quality",
                                    quality_json(&q, cfg->gen.temp <= 0)));
    pc_run_result_free(&a);
    pc_run_result_free(&b);
    free(ref.v);
    return st;
}

/* "PATH:LINE:COL: ..." names a position in the prompt's file. */
static bool position_in(const char *msg, const char *path, long *line, long *col) {
    size_t n = strlen(path);
    if (strncmp(msg, path, n) != 0 || msg[n] != ':') return false;
    char *end = NULL;
    *line = strtol(msg + n + 1, &end, 10);
    if (end == msg + n + 1 || *end != ':') return false;
    const char *c = end + 1;
    *col = strtol(c, &end, 10);
    return end != c && *end == ':' && *line > 0 && *col > 0;
}

json_t *pc_cli_error_json(const char *path, const pc_error *err) {
    long line = 0, col = 0;
    const bool at = position_in(err->msg, path, &line, &col);
    json_t *e = json_pack("{s:s, s:s, s:o, s:o}", "message", err->msg, "file", path, "line",
                          at ? json_integer(line) : json_null(), "column", at ? json_integer(col) : json_null());
    return json_pack("{s:s, s:o}", "prompt", path, "error", e);
}
