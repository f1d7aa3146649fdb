/* fuzz_schema.c - libFuzzer target: PML schemas and prompts through layout
 * and binding, the paths that turn untrusted PML into positions and tokens.
 *
 * The input is a schema, then (after the first NUL byte) a prompt; its first
 * byte picks the chat format. The schema is laid out against the real model's
 * tokenizer (env PC_MODEL_PATH, else the default models/ path; the target
 * needs it) with a small context and token budget, then the prompt is bound
 * to it. Encoding needs the model's weights and is left out: the schema is
 * marked keyed with no keys or KV, which binding never reads. Invariants: every
 * piece lies inside the schema's positions; L leaves room for the prompt; the
 * pieces hold no more tokens than the budget; every token is in the
 * vocabulary; every plan item lies inside the schema, and the prompt's own
 * text starts at L. Refusals must say why. */
#include <stdlib.h>
#include <string.h>

#include "schema/plan.h"

#define FUZZ_CTX 2048
#define FUZZ_MAX_TOKENS 16384

#ifndef PC_FUZZ_DEFAULT_MODEL
#define PC_FUZZ_DEFAULT_MODEL "models/SmolLM2-135M-Instruct.Q4_1.gguf"
#endif

static const pc_tokenizer *tokenizer(void) {
    static pc_tokenizer *tok; /* fuzz harness only: loaded once per process */
    if (tok) return tok;
    const char *path = getenv("PC_MODEL_PATH");
    pc_gguf *g = NULL;
    if (pc_gguf_open(path && *path ? path : PC_FUZZ_DEFAULT_MODEL, &g, NULL) != PC_OK ||
        pc_tokenizer_load(g, &tok, NULL) != PC_OK)
        abort(); /* the target is meaningless without a vocabulary */
    pc_gguf_close(g);
    return tok;
}

static void check_tokens(const int32_t *ids, int32_t n, int32_t n_vocab) {
    for (int32_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= n_vocab) __builtin_trap();
}

static void check_schema(const pc_schema *s, int32_t n_vocab) {
    if (s->length < 0 || s->length > FUZZ_CTX - 1) __builtin_trap();
    int64_t total = 0;
    for (int32_t i = 0; i < s->n_pieces; i++) {
        const pc_piece *p = &s->pieces[i];
        if (p->start < 0 || p->n < 0 || (int64_t)p->start + p->n > s->length) __builtin_trap();
        check_tokens(p->tokens, p->n, n_vocab);
        total += p->n;
    }
    if (total > FUZZ_MAX_TOKENS) __builtin_trap();
}

static void check_plan(const pc_plan *p, const pc_schema *s, int32_t n_vocab) {
    for (int32_t i = 0; i < p->n; i++) {
        const pc_plan_item *it = &p->items[i];
        if (it->start < 0 || it->n <= 0) __builtin_trap();
        if (it->kind == PC_ITEM_PROMPT ? it->start != s->length : (int64_t)it->start + it->n > s->length)
            __builtin_trap();
        check_tokens(it->tokens, it->n, n_vocab);
    }
}

static void bind(pc_schema *s, const char *xml, size_t len, pc_chat_format f, const pc_tokenizer *tok) {
    pc_pml_doc *d = NULL;
    pc_error e;
    if (pc_pml_parse_prompt(xml, len, "fuzz-prompt", NULL, &d, &e) != PC_OK) return;
    pc_bind_ctx bc = {.tok = tok, .chat = f, .default_system = "Default."};
    pc_plan plan;
    pc_status st = pc_plan_bind(s, d, &bc, &plan, &e);
    if (st == PC_OK) check_plan(&plan, s, pc_tokenizer_n_vocab(tok));
    else if (strlen(e.msg) == 0) __builtin_trap();
    pc_plan_free(&plan);
    pc_pml_doc_free(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const pc_tokenizer *tok = tokenizer();
    const pc_chat_format f = (pc_chat_format)(data[0] % 5); /* PC_CHAT_UNKNOWN .. PC_CHAT_GEMMA */
    const char *text = (const char *)data + 1;
    const size_t n = size - 1;
    const char *nul = memchr(text, '\0', n);
    const size_t schema_len = nul ? (size_t)(nul - text) : n;
    pc_pml_doc *doc = NULL;
    pc_error e;
    if (pc_pml_parse_schema(text, schema_len, "fuzz-schema", NULL, &doc, &e) != PC_OK) return 0;
    pc_layout_ctx lc = {.tok = tok, .chat = f, .add_bos = pc_tokenizer_add_bos(tok), .n_ctx = FUZZ_CTX,
                        .max_tokens = FUZZ_MAX_TOKENS, .placeholder = 0, .default_system = "Default."};
    pc_schema *s = NULL;
    pc_status st = pc_schema_layout(doc, &lc, &s, &e); /* takes doc */
    if (st != PC_OK) {
        if (s || strlen(e.msg) == 0) __builtin_trap();
        return 0;
    }
    check_schema(s, pc_tokenizer_n_vocab(tok));
    s->keyed = true; /* see the file comment: binding references no KV or store key here */
    if (nul) bind(s, nul + 1, n - schema_len - 1, f, tok);
    pc_schema_free(s);
    return 0;
}
