/* cmd_generate.c - `pcache generate`: tokenize as llama.cpp does, generate,
 * stream the answer (or print one JSON object), report speed on stderr. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "util/file.h"

typedef struct gen_cmd {
    const char *prompt, *prompt_file, *system;
    bool chat, json;
} gen_cmd;

#define G(f) offsetof(gen_cmd, f)
static const pc_cli_opt GENERATE_TABLE[] = {
    {"prompt", 'p', PC_OPT_STRING, G(prompt), "TEXT", "prompt text (BOS as the model says; special tokens not parsed)", 0, 0},
    {"prompt-file", 'f', PC_OPT_STRING, G(prompt_file), "FILE", "read the prompt text from a file", 0, 0},
    {"chat", 0, PC_OPT_FLAG, G(chat), NULL, "wrap the prompt in the model's chat template", 0, 0},
    {"system", 0, PC_OPT_STRING, G(system), "TEXT", "system message (with --chat)", 0, 0},
    {"json", 0, PC_OPT_FLAG, G(json), NULL, "print one JSON object instead of streaming", 0, 0},
    {0},
};

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
    json_t *o = json_pack("{s:o, s:s, s:I, s:f, s:f, s:f, s:s}", "tokens", toks, "text", r->text ? r->text : "",
                          "prompt_tokens", (json_int_t)r->n_prompt, "ttft_ms", r->ttft_ms, "prefill_ms", r->prefill_ms,
                          "decode_tok_s", r->decode_tok_s, "stop", pc_stop_reason_name(r->stop));
    char *s = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
    if (s) puts(s);
    free(s);
    json_decref(o);
}

static char *read_prompt(const gen_cmd *o, pc_error *err) {
    size_t len = 0;
    char *text = NULL;
    if (o->prompt_file && pc_file_read(o->prompt_file, PC_CLI_MAX_INPUT_BYTES, 0, &text, &len, err) != PC_OK)
        return NULL;
    if (!o->prompt_file && !(text = strdup(o->prompt))) snprintf(err->msg, sizeof err->msg, "out of memory");
    return text;
}

/* The prompt's tokens: the text as is, or with --chat wrapped in the chat
 * template, whose markers alone become control tokens. */
static pc_status prompt_tokens(pc_engine *e, const gen_cmd *o, int32_t **ids, size_t *n, pc_error *err) {
    char *text = read_prompt(o, err);
    if (!text) return PC_ERR_IO;
    pc_status s = o->chat ? pc_engine_chat_tokenize(e, o->system, text, ids, n, err)
                          : pc_engine_tokenize(e, text, strlen(text), true, false, ids, n, err);
    free(text);
    return s;
}

static int generate(pc_engine *e, const gen_cmd *o, const pc_gen_params *gp) {
    pc_error err = {0};
    int32_t *ids = NULL;
    size_t n = 0;
    pc_gen_result r = {0};
    pc_status s = prompt_tokens(e, o, &ids, &n, &err);
    if (s == PC_OK) s = pc_engine_generate(e, ids, n, gp, o->json ? NULL : stream_cb, NULL, &r, &err);
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
    gen_cmd o = {0};
    pc_cli_engine_opts eo = pc_cli_engine_defaults();
    pc_cli_gen_opts go = pc_cli_gen_defaults(128);
    const pc_cli_group groups[] = {{"prompt", GENERATE_TABLE, &o},
                                   {"model", pc_cli_engine_table, &eo},
                                   {"generation", pc_cli_gen_table, &go}};
    const pc_cli_spec spec = {"generate", "pcache generate [-m MODEL] (-p TEXT | -f FILE) [options]",
                              "Runs a prompt through the model and streams the answer.", groups,
                              sizeof groups / sizeof *groups, NULL};
    int rc = pc_cli_parse(&spec, argc, argv);
    if (rc == PC_CLI_PARSED && !o.prompt == !o.prompt_file) {
        fprintf(stderr, "pcache generate: give exactly one of -p TEXT or -f FILE (see pcache generate --help)\n");
        rc = PC_CLI_BAD;
    }
    pc_engine *e = rc == PC_CLI_PARSED ? pc_cli_engine_open("generate", &eo) : NULL;
    if (e) {
        const pc_gen_params gp = pc_cli_gen_params(&go);
        rc = generate(e, &o, &gp);
        pc_engine_free(e);
    } else if (rc == PC_CLI_PARSED) {
        rc = 1;
    }
    pc_cli_list_free(&go.stops);
    return rc == PC_CLI_HELP ? 0 : rc;
}
