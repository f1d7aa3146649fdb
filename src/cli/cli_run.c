/* cli_run.c - `pcache run` (a PML prompt against a schema, cached or not) and
 * `pcache schema` (encode a schema and print its layout). */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "pcache.h"

typedef struct run_opts {
    const char *model, *schemas[16], *prompt, *chat_template;
    int n_schemas, threads, n_ctx, json, no_cache, compare, lenient, quiet, repeat;
    pc_gen_params gp;
} run_opts;

static void run_usage(FILE *out) {
    fprintf(out,
            "usage: pcache run [-m MODEL] --schema S.xml --prompt P.xml [options]\n"
            "  --schema S.xml        schema to register (repeatable)\n"
            "  --prompt P.xml        the PML prompt to run\n"
            "  --no-cache            plain full prefill of the very same tokens at the same positions\n"
            "  --compare             run cached, then uncached, and report both TTFTs\n"
            "  --repeat N            run each mode N times and report the median TTFT\n"
            "  -n N --temp T --seed S --top-k K --top-p P\n"
            "  --lenient             accept raw '<' in module text (with warnings)\n"
            "  --json                one JSON object: text, tokens, ttft_ms, cached_tokens, fresh_tokens\n"
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
    case R_PROMPT: o->prompt = arg; return 0;
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
    if (need_prompt && !o->prompt) return fprintf(stderr, "pcache run: --prompt P.xml is required\n"), -1;
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

/* Runs the prompt o->repeat times (keeping the last result, with the median TTFT). */
static int run_once(pc_engine *e, const run_opts *o, const char *xml, size_t len, bool cache, pc_run_result *r,
                    double *ttfts) {
    pc_run_params rp = {.gen = o->gp, .use_cache = cache, .lenient = o->lenient};
    pc_error err = {0};
    bool stream = !o->json && (cache || !o->compare);
    if (stream) fprintf(stderr, "--- answer (%s) ---\n", cache ? "cached" : "no cache");
    for (int i = 0; i < o->repeat; i++) {
        pc_run_result_free(r);
        pc_status s = pc_engine_run(e, xml, len, o->prompt, &rp, stream && i == 0 ? print_piece : NULL, NULL, r, &err);
        if (s != PC_OK) {
            fprintf(stderr, "pcache run: %s\n", err.msg);
            return -1;
        }
        ttfts[i] = r->gen.ttft_ms;
        if (stream && i == 0) fputc('\n', stdout);
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

static int run_prompt(pc_engine *e, const run_opts *o) {
    size_t len = 0;
    char *xml = pc_cli_read_file(o->prompt, &len);
    if (!xml) return fprintf(stderr, "pcache run: cannot read '%s': %s\n", o->prompt, strerror(errno)), 1;
    pc_run_result a = {0}, b = {0};
    double ta[64], tb[64];
    int rc = run_once(e, o, xml, len, !o->no_cache, &a, ta);
    if (rc == 0 && o->compare) rc = run_once(e, o, xml, len, false, &b, tb);
    if (rc == 0 && o->compare) {
        bool same = a.gen.n_tokens == b.gen.n_tokens &&
                    !memcmp(a.gen.tokens, b.gen.tokens, a.gen.n_tokens * sizeof *a.gen.tokens);
        fprintf(stderr, "TTFT: %.1f ms cached vs %.1f ms without the cache: %.1fx faster; answers %s\n", a.gen.ttft_ms,
                b.gen.ttft_ms, b.gen.ttft_ms / a.gen.ttft_ms, same ? "identical" : "differ");
    }
    if (rc == 0 && o->json) {
        json_t *j = o->compare ? json_pack("{s:o, s:o}", "cached", result_json(&a, ta, o->repeat), "uncached",
                                           result_json(&b, tb, o->repeat))
                               : result_json(&a, ta, o->repeat);
        char *s = json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII);
        if (s) puts(s);
        free(s);
        json_decref(j);
    }
    pc_run_result_free(&a);
    pc_run_result_free(&b);
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
    if (rc == 0 && need_prompt) rc = run_prompt(e, &o);
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
