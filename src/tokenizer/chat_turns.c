/* chat_turns.c - the markers between chat messages, chat text that remembers
 * where they are, and conversations rendered as each reference template
 * renders them (ChatML/SmolLM2, Llama-2 chat, Llama-3 instruct, Gemma).
 *
 * Invariants: every marker comes from pc_chat_turn_open / pc_chat_turn_close /
 * pc_chat_generation_prompt, for the renderer and for PML alike; a
 * pc_chat_text's marker ranges are sorted, disjoint and inside its text;
 * content is never recorded as a marker, so it never becomes a control token. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/chat_template.h"
#include "util/error.h"

/* ---- turns ---- */

/* The markers that depend on nothing but the role. */
typedef struct turn_markers {
    const char *open, *close;
} turn_markers;

static turn_markers plain_markers(pc_chat_format f, pc_chat_role r) {
    static const turn_markers table[][PC_ROLE_COUNT] = {
        [PC_CHAT_CHATML] = {{"<|im_start|>system\n", "<|im_end|>\n"},
                            {"<|im_start|>user\n", "<|im_end|>\n"},
                            {"<|im_start|>assistant\n", "<|im_end|>\n"}},
        [PC_CHAT_LLAMA2] = {{"[INST] <<SYS>>\n", "\n<</SYS>>\n\n"}, {"[INST] ", " [/INST]"}, {" ", " </s>"}},
        [PC_CHAT_LLAMA3] = {{"<|start_header_id|>system<|end_header_id|>\n\n", "<|eot_id|>"},
                            {"<|start_header_id|>user<|end_header_id|>\n\n", "<|eot_id|>"},
                            {"<|start_header_id|>assistant<|end_header_id|>\n\n", "<|eot_id|>"}},
        [PC_CHAT_GEMMA] = {{"<start_of_turn>user\n", "\n\n"},
                           {"<start_of_turn>user\n", "<end_of_turn>\n"},
                           {"<start_of_turn>model\n", "<end_of_turn>\n"}},
    };
    return table[f][r];
}

static const char *role_name(pc_chat_role r) {
    return r == PC_ROLE_SYSTEM ? "system" : r == PC_ROLE_USER ? "user" : "assistant";
}

pc_chat_turns pc_chat_turns_start(pc_chat_format f) { return (pc_chat_turns){.format = f}; }

/* Llama-2 and Gemma: the system message opens the first user turn. */
static bool folds_system(pc_chat_format f) { return f == PC_CHAT_LLAMA2 || f == PC_CHAT_GEMMA; }

static pc_status refuse_order(const pc_chat_turns *t, pc_chat_role r, const char *why, pc_error *err) {
    return pc_fail(err, PC_ERR_INVALID, "a %s turn cannot come here in the %s chat format: %s", role_name(r),
                   pc_chat_format_name(t->format), why);
}

pc_status pc_chat_turn_open(pc_chat_turns *t, pc_chat_role r, const char **marker, pc_error *err) {
    *marker = "";
    if (t->format < PC_CHAT_CHATML || t->format > PC_CHAT_GEMMA || r < 0 || r >= PC_ROLE_COUNT)
        return pc_fail(err, PC_ERR_INVALID, "chat format %d has no turn of role %d", (int)t->format, (int)r);
    if (t->open) return refuse_order(t, r, "the previous turn is still open", err);
    if (folds_system(t->format) && r == PC_ROLE_SYSTEM && t->n_turns > 0)
        return refuse_order(t, r, "a system message may only come first", err);
    if (t->system_folded && r != PC_ROLE_USER)
        return refuse_order(t, r, "the system message must be followed by a user turn, which carries it", err);
    turn_markers m = plain_markers(t->format, r);
    if (t->system_folded) *marker = ""; /* the user turn continues the one the system message opened */
    else if (t->format == PC_CHAT_LLAMA2 && r == PC_ROLE_USER && t->n_turns > 0) *marker = "<s>[INST] ";
    else *marker = m.open;
    t->system_folded = false;
    t->n_turns++;
    t->last = r;
    t->open = true;
    return PC_OK;
}

const char *pc_chat_turn_close(pc_chat_turns *t) {
    if (!t->open) return "";
    t->open = false;
    if (folds_system(t->format) && t->last == PC_ROLE_SYSTEM) t->system_folded = true;
    return plain_markers(t->format, t->last).close;
}

const char *pc_chat_generation_prompt(pc_chat_format f) {
    switch (f) {
    case PC_CHAT_CHATML: return "<|im_start|>assistant\n";
    case PC_CHAT_LLAMA3: return "<|start_header_id|>assistant<|end_header_id|>\n\n";
    case PC_CHAT_GEMMA: return "<start_of_turn>model\n";
    case PC_CHAT_LLAMA2: /* the model continues right after " [/INST]" */
    case PC_CHAT_UNKNOWN: break;
    }
    return "";
}

bool pc_chat_turns_await_reply(const pc_chat_turns *t) {
    return t->n_turns > 0 && t->last == PC_ROLE_USER && !t->open;
}

/* ---- text with markers ---- */

bool pc_chat_text_marker(pc_chat_text *t, const char *marker) {
    const size_t begin = t->text.len, n = strlen(marker);
    if (!pc_buf_append(&t->text, marker, n)) return false;
    if (n == 0) return true;
    if (t->n_markers && t->markers[t->n_markers - 1].end == begin) { /* touching markers merge */
        t->markers[t->n_markers - 1].end = begin + n;
        return true;
    }
    pc_text_range *m = pc_array_reserve(t->markers, &t->cap_markers, t->n_markers + 1, sizeof *t->markers);
    if (!m) return false;
    t->markers = m;
    t->markers[t->n_markers++] = (pc_text_range){begin, begin + n};
    return true;
}

bool pc_chat_text_content(pc_chat_text *t, const char *s, size_t n) { return pc_buf_append(&t->text, s, n); }

void pc_chat_text_free(pc_chat_text *t) {
    if (!t) return;
    pc_buf_free(&t->text);
    free(t->markers);
    *t = (pc_chat_text){0};
}

pc_status pc_chat_text_tokenize(const pc_tokenizer *tok, const pc_chat_text *t, bool add_special, pc_tokens *out,
                                pc_error *err) {
    return pc_tokenize_marked(tok, t->text.data ? t->text.data : "", t->text.len, t->markers, t->n_markers,
                              add_special, out, err);
}

/* ---- rendering ---- */

typedef enum trim { TRIM_NONE, TRIM_BOTH, TRIM_RIGHT } trim;

/* Where each reference template strips a message: ChatML nowhere; Llama-3
 * every message; Gemma every message but the system one; Llama-2 the whole
 * first turn ("<<SYS>>...<</SYS>>\n\n" + user), so a user message that
 * follows the system message keeps its leading whitespace. */
static trim trim_of(pc_chat_format f, pc_chat_role r, bool after_system) {
    switch (f) {
    case PC_CHAT_LLAMA3: return TRIM_BOTH;
    case PC_CHAT_GEMMA: return r == PC_ROLE_SYSTEM ? TRIM_NONE : TRIM_BOTH;
    case PC_CHAT_LLAMA2: return r == PC_ROLE_SYSTEM ? TRIM_NONE : after_system ? TRIM_RIGHT : TRIM_BOTH;
    default: return TRIM_NONE;
    }
}

static bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

static bool put_content(pc_chat_text *out, const char *s, trim how) {
    size_t i = 0, j = strlen(s);
    while (how == TRIM_BOTH && i < j && is_ws(s[i])) i++;
    while (how != TRIM_NONE && j > i && is_ws(s[j - 1])) j--;
    return pc_chat_text_content(out, s + i, j - i);
}

static pc_status render_turn(pc_chat_turns *t, pc_chat_role r, const char *content, pc_chat_text *out, pc_error *err) {
    const bool after_system = t->system_folded;
    const char *open = NULL;
    pc_status st = pc_chat_turn_open(t, r, &open, err);
    if (st != PC_OK) return st;
    if (!pc_chat_text_marker(out, open) || !put_content(out, content, trim_of(t->format, r, after_system)) ||
        !pc_chat_text_marker(out, pc_chat_turn_close(t)))
        return pc_fail(err, PC_ERR_NOMEM, "chat: out of memory rendering a conversation");
    return PC_OK;
}

pc_status pc_chat_render(pc_chat_format f, const char *default_system, const pc_chat_role *roles,
                         const char *const *contents, size_t n, bool add_generation_prompt, pc_chat_text *out,
                         pc_error *err) {
    if (f < PC_CHAT_CHATML || f > PC_CHAT_GEMMA)
        return pc_fail(err, PC_ERR_INVALID, "chat format %d is not a known format", (int)f);
    for (size_t i = 0; i < n; i++) {
        if (roles[i] < 0 || roles[i] >= PC_ROLE_COUNT)
            return pc_fail(err, PC_ERR_INVALID, "chat message %zu: invalid role %d", i, (int)roles[i]);
        if (!contents[i]) return pc_fail(err, PC_ERR_INVALID, "chat message %zu: NULL content", i);
    }
    pc_chat_turns t = pc_chat_turns_start(f);
    pc_status st = PC_OK;
    if (f == PC_CHAT_CHATML && default_system && n > 0 && roles[0] != PC_ROLE_SYSTEM)
        st = render_turn(&t, PC_ROLE_SYSTEM, default_system, out, err);
    for (size_t i = 0; i < n && st == PC_OK; i++) {
        st = render_turn(&t, roles[i], contents[i], out, err);
        if (st != PC_OK) pc_fail_wrap(err, "chat message %zu", i);
    }
    if (st == PC_OK && add_generation_prompt && !pc_chat_text_marker(out, pc_chat_generation_prompt(f)))
        st = pc_fail(err, PC_ERR_NOMEM, "chat: out of memory rendering a conversation");
    return st;
}

pc_status pc_chat_format_messages_ex(pc_chat_format f, const char *default_system, const pc_chat_role *roles,
                                     const char *const *contents, size_t n, bool add_generation_prompt, char **out,
                                     pc_error *err) {
    *out = NULL;
    pc_chat_text t = {0};
    pc_status st = pc_chat_render(f, default_system, roles, contents, n, add_generation_prompt, &t, err);
    char *s = st == PC_OK ? pc_buf_take(&t.text) : NULL;
    if (st == PC_OK && !s) st = pc_fail(err, PC_ERR_NOMEM, "chat: out of memory rendering a conversation");
    pc_chat_text_free(&t);
    *out = s;
    return st;
}

pc_status pc_chat_format_messages(pc_chat_format f, const pc_chat_role *roles, const char *const *contents, size_t n,
                                  bool add_generation_prompt, char **out, pc_error *err) {
    return pc_chat_format_messages_ex(f, NULL, roles, contents, n, add_generation_prompt, out, err);
}
