/* cli_run.c - `pcache run` (PML prompts against schemas, cached or not) and
 * `pcache schema` (encode a schema and print its layout).
 *
 * Schemas are registered once; prompts run in the order given. --compare also
 * measures the cached answer's quality against the uncached one, the reference
 * a user would otherwise get: the uncached run's per-step logits are kept, then
 * its tokens are teacher-forced through the cached context and each step's
 * distributions are compared (KL in nats). */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "pcache.h"
#include "util/file.h"

#define MAX_PROMPTS 64
/* Steps of reference logits kept for the quality measure (n_vocab floats each). */
#define MAX_QUALITY_STEPS 256

typedef struct run_opts {
    const char *model, *schemas[16], *prompts[MAX_PROMPTS], *chat_template;
    int n_schemas, n_prompts, threads, n_ctx, json, no_cache, compare, lenient, quiet, repeat;
    pc_gen_params gp;
} run_opts;

static void run_usage(FILE *out) {
    fprintf(out,
            "usage: pcache run [-m MODEL] --schema S.xml --prompt P.xml [options]\n"
            "  --schema S.xml        schema to register (repeatable)\n"
            "  --prompt P.xml        a PML prompt to run (repeatable: run in order, schemas registered once)\n"
            "  --no-cache            plain full prefill of the very same tokens at the same positions\n"
            "  --compare             run cached, then uncached: both TTFTs, and the cached answer's quality\n"
            "                        (first-token agreement, KL(uncached || cached) per step, identical answers)\n"
            "  --repeat N            run each mode N times and report the median TTFT\n"
            "  -n N --temp T --seed S --top-k K --top-p P\n"
            "  --lenient             accept raw '<' in module text (with warnings)\n"
            "  --json                one JSON object per prompt and line: prompt, text, tokens, ttft_ms, ...\n"
            "  -t THREADS -c CTX --chat-template NAME\n");
}

enum { R_SCHEMA = 300, R_PROMPT, R_NOCACHE, R_COMPARE, R_TEMP, R_SEED, R_TOPK, R_TOPP, R_LENIENT, R_JSON, R_TEMPLATE,
       R_QUIET, R_REPEAT };

static int num(const char *s, const char *flag, double *out) {
    char *end;
    errno = 0;
    *out = strtod(s, &end);
    if (errno || *end || end == s) {
        fprintf(stderr, "pcache: %s expects a number, got '%s'\n", flag, s);
        return -1;
    }
    return 0;
}

static int run_opt(run_opts *o, int c, const char *arg) {
    double v = 0;
    switch (c) {
    case 'm': o->model = arg; return 0;
    case R_SCHEMA:
        if (o->n_schemas == 16) return fprintf(stderr, "pcache: at most 16 --schema\n"), -1;
        o->schemas[o->n_schemas++] = arg;
        return 0;
    case R_PROMPT:
        if (o->n_prompts == MAX_PROMPTS) return fprintf(stderr, "pcache: at most %d --prompt\n", MAX_PROMPTS), -1;
        o->prompts[o->n_prompts++] = arg;
        return 0;
    case R_NOCACHE: o->no_cache = 1; return 0;
    case R_COMPARE: o->compare = 1; return 0;
    case R_LENIENT: o->lenient = 1; return 0;
    case R_JSON: o->json = 1; return 0;
    case R_QUIET: o->quiet = 1; return 0;
    case R_TEMPLATE: o->chat_template = arg; return 0;
    }
    if (num(arg, "option", &v)) return -1;
    switch (c) {
    case 'n': o->gp.n_predict = (int)v; return 0;
    case 't': o->threads = (int)v; return 0;
    case 'c': o->n_ctx = (int)v; return 0;
    case R_TEMP: o->gp.temp = (float)v; return 0;
    case R_SEED: o->gp.seed = (uint64_t)v; return 0;
    case R_TOPK: o->gp.top_k = (int)v; return 0;
    case R_TOPP: o->gp.top_p = (float)v; return 0;
    case R_REPEAT: o->repeat = (int)v; return o->repeat >= 1 && o->repeat <= 64 ? 0 : -1;
    }
    return -1;
}

static int parse_run(int argc, char **argv, run_opts *o, int need_prompt) {
    static const struct option longs[] = {
        {"model", required_argument, 0, 'm'}, {"schema", required_argument, 0, R_SCHEMA},
        {"prompt", required_argument, 0, R_PROMPT}, {"no-cache", no_argument, 0, R_NOCACHE},
        {"compare", no_argument, 0, R_COMPARE}, {"n-predict", required_argument, 0, 'n'},
        {"temp", required_argument, 0, R_TEMP}, {"seed", required_argument, 0, R_SEED},
        {"top-k", required_argument, 0, R_TOPK}, {"top-p", required_argument, 0, R_TOPP},
        {"lenient", no_argument, 0, R_LENIENT}, {"json", no_argument, 0, R_JSON},
        {"threads", required_argument, 0, 't'}, {"ctx-size", required_argument, 0, 'c'},
        {"chat-template", required_argument, 0, R_TEMPLATE}, {"quiet", no_argument, 0, R_QUIET},
        {"repeat", required_argument, 0, R_REPEAT},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:n:t:c:h", longs, NULL)) != -1) {
        if (c == 'h') return run_usage(stdout), exit(0), 0;
        if (c == '?' || run_opt(o, c, optarg)) return -1;
    }
    for (; optind < argc; optind++) { /* `pcache schema S.xml` */
        if (need_prompt || o->n_schemas == 16) return fprintf(stderr, "pcache: unexpected argument '%s'\n", argv[optind]), -1;
        o->schemas[o->n_schemas++] = argv[optind];
    }
    if (o->n_schemas == 0) return fprintf(stderr, "pcache: no schema given\n"), -1;
    if (need_prompt && !o->n_prompts) return fprintf(stderr, "pcache run: --prompt P.xml is required\n"), -1;
    return 0;
}

static pc_engine *open_engine(const run_opts *o) {
    pc_engine_params ep = pc_engine_default_params();
    ep.model_path = o->model;
    ep.n_threads = o->threads;
    ep.n_ctx = o->n_ctx;
    ep.chat_template = o->chat_template;
    pc_error err = {0};
    pc_engine *e = NULL;
    if (pc_engine_open(&ep, &e, &err) != PC_OK) fprintf(stderr, "pcache: %s\n", err.msg);
    return e;
}

static int load_schemas(pc_engine *e, const run_opts *o, char **names) {
    for (int i = 0; i < o->n_schemas; i++) {
        double last = -1e9;
        char *warnings = NULL;
        pc_schema_params sp = {.lenient = o->lenient, .progress = o->quiet ? NULL : pc_cli_encode_progress,
                               .progress_user = &last, .warnings = &warnings};
        pc_error err = {0};
        pc_status s = pc_engine_schema_load_file(e, o->schemas[i], &sp, &names[i], &err);
        if (warnings) fprintf(stderr, "%s", warnings);
        free(warnings);
        if (s != PC_OK) {
            fprintf(stderr, "pcache: %s\n", err.msg);
            return -1;
        }
        pc_schema_stats st;
        if (!o->quiet && pc_engine_schema_stats(e, names[i], &st, &err) == PC_OK)
            fprintf(stderr, "schema '%s': %lld tokens encoded in %.0f ms, KV %.1f MiB (%zu bytes/token)\n", names[i],
                    (long long)st.encoded_tokens, st.encode_ms, st.kv_bytes / 1048576.0, st.kv_bytes_per_token);
    }
    return 0;
}

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

static json_t *result_json(const pc_run_result *r, const double *ttfts, int n_runs) {
    json_t *all = json_array();
    for (int i = 0; i < n_runs; i++) json_array_append_new(all, json_real(ttfts[i]));
    return json_pack("{s:s, s:o, s:f, s:o, s:I, s:I, s:f, s:f, s:I, s:o, s:o}", "text", r->gen.text ? r->gen.text : "",
                     "tokens", int_array(r->gen.tokens, r->gen.n_tokens), "ttft_ms", r->gen.ttft_ms, "ttft_all_ms", all,
                     "cached_tokens", (json_int_t)r->cached_tokens, "fresh_tokens", (json_int_t)r->fresh_tokens,
                     "assemble_ms", r->assemble_ms, "decode_tok_s", r->gen.decode_tok_s, "kv_bytes",
                     (json_int_t)r->kv_bytes, "input_tokens", int_array(r->input_tokens, r->n_input), "input_pos",
                     int_array(r->input_pos, r->n_input));
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
static int measure_quality(pc_engine *e, const run_opts *o, const char *path, const char *xml, size_t len,
                           const pc_run_result *cached, const pc_run_result *ref, quality *q) {
    size_t n = ref->gen.n_tokens < q->ref->n ? ref->gen.n_tokens : q->ref->n;
    pc_run_params rp = {.gen = o->gp, .use_cache = true, .lenient = o->lenient};
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
    pc_error err = {0};
    pc_status s = pc_engine_run(e, xml, len, path, &rp, NULL, NULL, &r, &err);
    pc_run_result_free(&r);
    if (s != PC_OK) return fprintf(stderr, "pcache run: quality pass: %s\n", err.msg), -1;
    fprintf(stderr,
            "quality: first token %s, KL(uncached||cached) first %.3g nats, mean %.3g, max %.3g over %zu steps; "
            "%s answers %s\n",
            q->first_agree ? "agrees" : "DIFFERS", q->kl_first, q->steps ? q->kl_sum / (double)q->steps : 0.0,
            q->kl_max, q->steps, o->gp.temp <= 0 ? "greedy" : "sampled", q->identical ? "identical" : "differ");
    return 0;
}

static json_t *quality_json(const quality *q, bool greedy) {
    return json_pack("{s:b, s:f, s:f, s:f, s:b, s:I, s:b}", "first_token_agree", q->first_agree, "kl_first",
                     q->kl_first, "kl_mean", q->steps ? q->kl_sum / (double)q->steps : 0.0, "kl_max", q->kl_max,
                     "identical", q->identical, "steps", (json_int_t)q->steps, "greedy", greedy);
}

/* Runs the prompt o->repeat times (keeping the last result, with the median
 * TTFT); capture, when given, receives the first run's per-step logits. */
static int run_once(pc_engine *e, const run_opts *o, const char *path, const char *xml, size_t len, bool cache,
                    logit_log *capture, pc_run_result *r, double *ttfts) {
    pc_run_params rp = {.gen = o->gp, .use_cache = cache, .lenient = o->lenient};
    pc_error err = {0};
    bool stream = !o->json && (cache || !o->compare);
    if (stream) fprintf(stderr, "--- answer (%s) ---\n", cache ? "cached" : "no cache");
    for (int i = 0; i < o->repeat; i++) {
        pc_run_result_free(r);
        rp.gen.on_logits = capture && i == 0 ? keep_logits : NULL;
        rp.gen.logits_user = capture;
        pc_status s = pc_engine_run(e, xml, len, path, &rp, stream && i == 0 ? print_piece : NULL, NULL, r, &err);
        if (s != PC_OK) {
            fprintf(stderr, "pcache run: %s\n", err.msg);
            return -1;
        }
        ttfts[i] = r->gen.ttft_ms;
        if (stream && i == 0) {
            fputc('\n', stdout);
            fflush(stdout);
        }
    }
    double sorted[64];
    memcpy(sorted, ttfts, (size_t)o->repeat * sizeof *sorted);
    qsort(sorted, (size_t)o->repeat, sizeof *sorted, cmp_double);
    r->gen.ttft_ms = sorted[o->repeat / 2];
    fprintf(stderr, "%-9s TTFT %8.1f ms | cached tokens %lld, fresh tokens %lld | assembly %.3f ms | decode %.1f tok/s\n",
            cache ? "cached:" : "no cache:", r->gen.ttft_ms, (long long)r->cached_tokens, (long long)r->fresh_tokens,
            r->assemble_ms, r->gen.decode_tok_s);
    return 0;
}

static void print_json(json_t *j) {
    char *s = json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_PRESERVE_ORDER);
    if (s) puts(s);
    fflush(stdout);
    free(s);
    json_decref(j);
}

/* Cached, then uncached with its logits kept, then the quality pass. */
static int compare(pc_engine *e, const run_opts *o, const char *path, const char *xml, size_t len) {
    pc_run_result a = {0}, b = {0};
    double ta[64], tb[64];
    const int32_t V = pc_engine_n_vocab(e);
    size_t steps = o->gp.n_predict < MAX_QUALITY_STEPS ? (size_t)o->gp.n_predict : MAX_QUALITY_STEPS;
    logit_log ref = {.v = malloc(steps * (size_t)V * sizeof(float)), .cap = steps, .n_vocab = V};
    quality q = {.ref = &ref};
    int rc = ref.v ? 0 : (fprintf(stderr, "pcache run: out of memory for %zu steps of logits\n", steps), -1);
    if (rc == 0) rc = run_once(e, o, path, xml, len, !o->no_cache, NULL, &a, ta);
    if (rc == 0) rc = run_once(e, o, path, xml, len, false, &ref, &b, tb);
    if (rc == 0)
        fprintf(stderr, "TTFT: %.1f ms cached vs %.1f ms without the cache: %.1fx faster\n", a.gen.ttft_ms,
                b.gen.ttft_ms, b.gen.ttft_ms / a.gen.ttft_ms);
    if (rc == 0) rc = measure_quality(e, o, path, xml, len, &a, &b, &q);
    if (rc == 0 && o->json)
        print_json(json_pack("{s:s, s:o, s:o, s:o}", "prompt", path, "cached", result_json(&a, ta, o->repeat),
                             "uncached", result_json(&b, tb, o->repeat), "quality",
                             quality_json(&q, o->gp.temp <= 0)));
    pc_run_result_free(&a);
    pc_run_result_free(&b);
    free(ref.v);
    return rc;
}

static int run_prompt(pc_engine *e, const run_opts *o, const char *path) {
    size_t len = 0;
    char *xml = NULL;
    pc_error err = {0};
    if (pc_file_read(path, PC_CLI_MAX_INPUT_BYTES, 0, &xml, &len, &err) != PC_OK)
        return fprintf(stderr, "pcache run: %s\n", err.msg), 1;
    int rc = 0;
    if (o->compare) {
        rc = compare(e, o, path, xml, len);
    } else {
        pc_run_result a = {0};
        double ta[64];
        rc = run_once(e, o, path, xml, len, !o->no_cache, NULL, &a, ta);
        if (rc == 0 && o->json) {
            json_t *j = json_pack("{s:s}", "prompt", path), *res = result_json(&a, ta, o->repeat);
            json_object_update(j, res);
            json_decref(res);
            print_json(j);
        }
        pc_run_result_free(&a);
    }
    free(xml);
    return rc ? 1 : 0;
}

static int with_engine(int argc, char **argv, int need_prompt) {
    run_opts o = {.model = pc_cli_default_model(), .repeat = 1};
    o.gp = pc_gen_default_params();
    o.gp.n_predict = 64;
    if (parse_run(argc, argv, &o, need_prompt)) {
        run_usage(stderr);
        return 2;
    }
    pc_engine *e = open_engine(&o);
    if (!e) return 1;
    char *names[16] = {0};
    int rc = load_schemas(e, &o, names) ? 1 : 0;
    for (int i = 0, loaded = rc == 0; loaded && need_prompt && i < o.n_prompts; i++) {
        if (o.n_prompts > 1 && !o.quiet) fprintf(stderr, "=== prompt %s ===\n", o.prompts[i]);
        if (run_prompt(e, &o, o.prompts[i])) rc = 1; /* the other prompts still run */
    }
    for (int i = 0; rc == 0 && !need_prompt && i < o.n_schemas; i++) {
        char *desc = NULL;
        pc_error err = {0};
        if (pc_engine_schema_describe(e, names[i], &desc, &err) != PC_OK) {
            fprintf(stderr, "pcache schema: %s\n", err.msg);
            rc = 1;
        } else {
            fputs(desc, stdout);
        }
        free(desc);
    }
    for (int i = 0; i < 16; i++) free(names[i]);
    pc_engine_free(e);
    return rc;
}

int pc_cli_run(int argc, char **argv) { return with_engine(argc, argv, 1); }
int pc_cli_schema(int argc, char **argv) { return with_engine(argc, argv, 0); }
