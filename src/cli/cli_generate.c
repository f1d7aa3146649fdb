/* cli_generate.c - `pcache generate`: tokenize as llama.cpp does, generate, stream, report speed. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "pcache.h"
#include "util/file.h"

typedef struct gen_opts {
    const char *model, *prompt, *prompt_file, *system, *chat_template;
    int threads, n_ctx, json, chat;
    const char *stops[16];
    size_t n_stop;
    pc_gen_params gp;
} gen_opts;

static void gen_usage(FILE *out) {
    fprintf(out,
            "usage: pcache generate [-m MODEL] (-p TEXT | --prompt-file F) [options]\n"
            "  -m, --model PATH       GGUF model (default: %s)\n"
            "  -p, --prompt TEXT      prompt text (BOS as the model says; special tokens not parsed)\n"
            "  -f, --prompt-file F    read the prompt text from a file\n"
            "  -n, --n-predict N      tokens to generate (default 128)\n"
            "      --temp T           temperature; 0 = greedy (default 0.8)\n"
            "      --top-k K --top-p P --min-p P --repeat-penalty R --repeat-last-n N\n"
            "      --seed S           sampling seed\n"
            "      --stop TEXT        stop string (repeatable, up to 16)\n"
            "      --ignore-eos       keep generating past end-of-generation tokens\n"
            "      --chat             wrap the prompt in the model's chat template\n"
            "      --system TEXT      system message (with --chat)\n"
            "      --chat-template N  chatml, llama2, llama3 or gemma (default: from the model)\n"
            "  -t, --threads N        threads (default: all cores)\n"
            "  -c, --ctx-size N       context size (default: the model's)\n"
            "      --json             print one JSON object instead of streaming\n",
            pc_cli_default_model());
}

static int parse_int(const char *s, const char *flag, int *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < -2147483647L || v > 2147483647L) {
        fprintf(stderr, "pcache generate: %s expects an integer, got '%s'\n", flag, s);
        return -1;
    }
    *out = (int)v;
    return 0;
}

static int parse_float(const char *s, const char *flag, float *out) {
    char *end;
    errno = 0;
    float v = strtof(s, &end);
    if (errno || *end || end == s) {
        fprintf(stderr, "pcache generate: %s expects a number, got '%s'\n", flag, s);
        return -1;
    }
    *out = v;
    return 0;
}

enum { OPT_TEMP = 256, OPT_TOPK, OPT_TOPP, OPT_MINP, OPT_REP, OPT_REPN, OPT_SEED, OPT_STOP, OPT_IGNORE_EOS, OPT_CHAT,
       OPT_SYSTEM, OPT_TEMPLATE, OPT_JSON };

static int parse_opt(gen_opts *o, int c, const char *arg) {
    int iv;
    switch (c) {
    case 'm': o->model = arg; return 0;
    case 'p': o->prompt = arg; return 0;
    case 'f': o->prompt_file = arg; return 0;
    case 'n': return parse_int(arg, "-n", &o->gp.n_predict);
    case 't': return parse_int(arg, "-t", &o->threads);
    case 'c': return parse_int(arg, "-c", &o->n_ctx);
    case OPT_TEMP: return parse_float(arg, "--temp", &o->gp.temp);
    case OPT_TOPK: return parse_int(arg, "--top-k", &o->gp.top_k);
    case OPT_TOPP: return parse_float(arg, "--top-p", &o->gp.top_p);
    case OPT_MINP: return parse_float(arg, "--min-p", &o->gp.min_p);
    case OPT_REP: return parse_float(arg, "--repeat-penalty", &o->gp.repeat_penalty);
    case OPT_REPN: return parse_int(arg, "--repeat-last-n", &o->gp.repeat_last_n);
    case OPT_SEED:
        if (parse_int(arg, "--seed", &iv)) return -1;
        o->gp.seed = (uint64_t)(uint32_t)iv;
        return 0;
    case OPT_STOP:
        if (o->n_stop == sizeof o->stops / sizeof o->stops[0]) {
            fprintf(stderr, "pcache generate: at most 16 --stop strings\n");
            return -1;
        }
        o->stops[o->n_stop++] = arg;
        return 0;
    case OPT_IGNORE_EOS: o->gp.ignore_eos = true; return 0;
    case OPT_CHAT: o->chat = 1; return 0;
    case OPT_SYSTEM: o->system = arg; return 0;
    case OPT_TEMPLATE: o->chat_template = arg; return 0;
    case OPT_JSON: o->json = 1; return 0;
    }
    return -1;
}

static int parse_args(int argc, char **argv, gen_opts *o) {
    static const struct option longs[] = {
        {"model", required_argument, 0, 'm'}, {"prompt", required_argument, 0, 'p'},
        {"prompt-file", required_argument, 0, 'f'}, {"n-predict", required_argument, 0, 'n'},
        {"threads", required_argument, 0, 't'}, {"ctx-size", required_argument, 0, 'c'},
        {"temp", required_argument, 0, OPT_TEMP}, {"top-k", required_argument, 0, OPT_TOPK},
        {"top-p", required_argument, 0, OPT_TOPP}, {"min-p", required_argument, 0, OPT_MINP},
        {"repeat-penalty", required_argument, 0, OPT_REP}, {"repeat-last-n", required_argument, 0, OPT_REPN},
        {"seed", required_argument, 0, OPT_SEED}, {"stop", required_argument, 0, OPT_STOP},
        {"ignore-eos", no_argument, 0, OPT_IGNORE_EOS}, {"chat", no_argument, 0, OPT_CHAT},
        {"system", required_argument, 0, OPT_SYSTEM}, {"chat-template", required_argument, 0, OPT_TEMPLATE},
        {"json", no_argument, 0, OPT_JSON}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:p:f:n:t:c:h", longs, NULL)) != -1) {
        if (c == 'h') {
            gen_usage(stdout);
            exit(0);
        }
        if (c == '?' || parse_opt(o, c, optarg)) return -1;
    }
    if (optind < argc) {
        fprintf(stderr, "pcache generate: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    if (!o->prompt == !o->prompt_file) {
        fprintf(stderr, "pcache generate: give exactly one of -p TEXT or --prompt-file FILE\n");
        return -1;
    }
    return 0;
}

static bool stream_cb(void *user, int32_t token, const char *text, size_t len) {
    (void)user;
    (void)token;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    return true;
}

static void print_json(const pc_gen_result *r) {
    json_t *toks = json_array();
    for (size_t i = 0; i < r->n_tokens; i++) json_array_append_new(toks, json_integer(r->tokens[i]));
    static const char *reasons[] = {"length", "eog", "stop_string", "callback", "context"};
    json_t *o = json_pack("{s:o, s:s, s:I, s:f, s:f, s:f, s:s}", "tokens", toks, "text", r->text ? r->text : "",
                          "prompt_tokens", (json_int_t)r->n_prompt, "ttft_ms", r->ttft_ms, "prefill_ms", r->prefill_ms,
                          "decode_tok_s", r->decode_tok_s, "stop", reasons[r->stop]);
    char *s = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
    if (s) puts(s);
    free(s);
    json_decref(o);
}

static char *build_prompt(pc_engine *e, const gen_opts *o, pc_error *err) {
    size_t len = 0;
    char *text = NULL;
    if (o->prompt_file && pc_file_read(o->prompt_file, PC_CLI_MAX_INPUT_BYTES, 0, &text, &len, err) != PC_OK)
        return NULL;
    if (!o->prompt_file && !(text = strdup(o->prompt))) {
        snprintf(err->msg, sizeof err->msg, "out of memory");
        return NULL;
    }
    if (!o->chat) return text;
    char *chat = NULL;
    pc_status s = pc_engine_chat_prompt(e, o->system, text, &chat, err);
    free(text);
    return s == PC_OK ? chat : NULL;
}

static int run(pc_engine *e, const gen_opts *o) {
    pc_error err = {0};
    char *text = build_prompt(e, o, &err);
    if (!text) {
        fprintf(stderr, "pcache generate: %s\n", err.msg);
        return 1;
    }
    int32_t *ids = NULL;
    size_t n = 0;
    pc_gen_result r = {0};
    pc_status s = pc_engine_tokenize(e, text, strlen(text), true, o->chat != 0, &ids, &n, &err);
    free(text);
    if (s == PC_OK) s = pc_engine_generate(e, ids, n, &o->gp, o->json ? NULL : stream_cb, NULL, &r, &err);
    pc_free(ids);
    if (s != PC_OK) {
        fprintf(stderr, "pcache generate: %s\n", err.msg);
        return 1;
    }
    if (o->json)
        print_json(&r);
    else
        fputc('\n', stdout);
    fprintf(stderr, "prompt: %zu tokens, prefill %.1f ms (%.1f tok/s), TTFT %.1f ms | decode: %zu tokens, %.1f tok/s\n",
            r.n_prompt, r.prefill_ms, r.prefill_ms > 0 ? r.n_prompt / (r.prefill_ms / 1e3) : 0.0, r.ttft_ms, r.n_tokens,
            r.decode_tok_s);
    pc_gen_result_free(&r);
    return 0;
}

int pc_cli_generate(int argc, char **argv) {
    gen_opts o = {.model = pc_cli_default_model()};
    o.gp = pc_gen_default_params();
    if (parse_args(argc, argv, &o)) {
        gen_usage(stderr);
        return 2;
    }
    o.gp.stop = o.stops;
    o.gp.n_stop = o.n_stop;
    pc_engine_params ep = pc_engine_default_params();
    ep.model_path = o.model;
    ep.n_threads = o.threads;
    ep.n_ctx = o.n_ctx;
    ep.chat_template = o.chat_template;
    pc_error err = {0};
    pc_engine *e = NULL;
    if (pc_engine_open(&ep, &e, &err) != PC_OK) {
        fprintf(stderr, "pcache generate: %s\n", err.msg);
        return 1;
    }
    int rc = run(e, &o);
    pc_engine_free(e);
    return rc;
}
