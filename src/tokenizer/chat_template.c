/* chat_template.c - recognising chat templates and rendering conversations.
 *
 * pcache runs no Jinja: each supported format is written out here as its
 * reference template renders it (ChatML/SmolLM2, Llama-2 chat, Llama-3
 * instruct, Gemma). Detection looks for each format's distinctive markers in
 * the template text, in llama.cpp's order. Rendered text never includes the
 * leading BOS: the tokenizer adds it. */
#include "tokenizer/chat_template.h"

#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/error.h"

static const char *const format_names[] = {"unknown", "chatml", "llama2", "llama3", "gemma"};

pc_chat_format pc_chat_format_from_name(const char *name) {
    for (int f = PC_CHAT_CHATML; f <= PC_CHAT_GEMMA; f++)
        if (name && strcmp(name, format_names[f]) == 0) return (pc_chat_format)f;
    return PC_CHAT_UNKNOWN;
}

const char *pc_chat_format_name(pc_chat_format f) {
    return f >= PC_CHAT_CHATML && f <= PC_CHAT_GEMMA ? format_names[f] : format_names[0];
}

static bool contains(const char *s, size_t len, const char *needle) {
    return memmem(s, len, needle, strlen(needle)) != NULL;
}

/* The template's first characters, escaped for an error message. */
static void template_head(const char *s, size_t len, char *out, size_t cap) {
    size_t k = 0;
    for (size_t i = 0; i < len && k + 5 < cap && i < 60; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n') out[k++] = '\\', out[k++] = 'n';
        else if (c < 0x20 || c == 0x7F) out[k++] = '?';
        else out[k++] = (char)c;
    }
    if (len > 60 && k + 4 < cap) memcpy(out + k, "...", 3), k += 3;
    out[k] = '\0';
}

pc_status pc_chat_detect(const char *t, size_t len, pc_chat_format *out, pc_error *err) {
    *out = PC_CHAT_UNKNOWN;
    if (!t) len = 0;
    if (contains(t, len, "<|im_start|>")) {
        /* Phi-4 and SmolVLM use <|im_start|> but are not ChatML */
        if (!contains(t, len, "<|im_sep|>") && !contains(t, len, "<end_of_utterance>")) *out = PC_CHAT_CHATML;
    } else if (contains(t, len, "[INST]")) {
        /* Mistral's templates also use [INST], with different spacing */
        if (!contains(t, len, "[SYSTEM_PROMPT]") && !contains(t, len, "[AVAILABLE_TOOLS]") &&
            !contains(t, len, "' [INST] ' + system_message"))
            *out = PC_CHAT_LLAMA2;
    } else if (contains(t, len, "<|start_header_id|>") && contains(t, len, "<|end_header_id|>")) {
        *out = PC_CHAT_LLAMA3;
    } else if (contains(t, len, "<start_of_turn>")) {
        *out = PC_CHAT_GEMMA;
    }
    if (*out != PC_CHAT_UNKNOWN) return PC_OK;
    char head[80];
    template_head(t ? t : "", len, head, sizeof head);
    return pc_fail(err, PC_ERR_UNSUPPORTED,
                   "unrecognised chat template starting \"%s\": pass --chat-template NAME (chatml, llama2, llama3, "
                   "gemma)",
                   head);
}

pc_status pc_chat_detect_gguf(const pc_gguf *g, pc_chat_format *out, pc_error *err) {
    pc_gguf_str s;
    *out = PC_CHAT_UNKNOWN;
    pc_status st = pc_gguf_get_str(g, "tokenizer.chat_template", &s, err);
    if (st == PC_ERR_NOT_FOUND)
        return pc_fail(err, PC_ERR_NOT_FOUND,
                       "the model has no tokenizer.chat_template: pass --chat-template NAME (chatml, llama2, llama3, "
                       "gemma)");
    if (st != PC_OK) return st;
    return pc_chat_detect(s.ptr, (size_t)s.len, out, err);
}

pc_chat_markers pc_chat_role_markers(pc_chat_format f, pc_chat_role role) {
    static const pc_chat_markers table[][PC_ROLE_COUNT] = {
        [PC_CHAT_CHATML] = {{"<|im_start|>system\n", "<|im_end|>\n"},
                            {"<|im_start|>user\n", "<|im_end|>\n"},
                            {"<|im_start|>assistant\n", "<|im_end|>\n"}},
        [PC_CHAT_LLAMA2] = {{"<<SYS>>\n", "\n<</SYS>>\n\n"}, {"[INST] ", " [/INST]"}, {" ", " </s>"}},
        [PC_CHAT_LLAMA3] = {{"<|start_header_id|>system<|end_header_id|>\n\n", "<|eot_id|>"},
                            {"<|start_header_id|>user<|end_header_id|>\n\n", "<|eot_id|>"},
                            {"<|start_header_id|>assistant<|end_header_id|>\n\n", "<|eot_id|>"}},
        [PC_CHAT_GEMMA] = {{"", "\n\n"},
                           {"<start_of_turn>user\n", "<end_of_turn>\n"},
                           {"<start_of_turn>model\n", "<end_of_turn>\n"}},
    };
    if (f < PC_CHAT_CHATML || f > PC_CHAT_GEMMA || role < 0 || role >= PC_ROLE_COUNT) return (pc_chat_markers){"", ""};
    return table[f][role];
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

/* ---- rendering ---- */

/* Rendering appends many pieces; the first failed append sticks, so the
 * renderers check once at the end. */
typedef struct sbuf {
    pc_buf buf;
    bool oom;
} sbuf;

static void put(sbuf *b, const char *s, size_t n) {
    if (!b->oom && !pc_buf_append(&b->buf, s, n)) b->oom = true;
}

static void puts_(sbuf *b, const char *s) { put(b, s, strlen(s)); }

static bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

static void put_trimmed(sbuf *b, const char *s) {
    size_t i = 0, j = strlen(s);
    while (i < j && is_ws(s[i])) i++;
    while (j > i && is_ws(s[j - 1])) j--;
    put(b, s + i, j - i);
}

static void render_chatml(sbuf *b, const char *default_system, const pc_chat_role *roles, const char *const *c,
                          size_t n) {
    if (n > 0 && default_system && roles[0] != PC_ROLE_SYSTEM) {
        pc_chat_markers m = pc_chat_role_markers(PC_CHAT_CHATML, PC_ROLE_SYSTEM);
        puts_(b, m.begin), puts_(b, default_system), puts_(b, m.end);
    }
    for (size_t i = 0; i < n; i++) {
        pc_chat_markers m = pc_chat_role_markers(PC_CHAT_CHATML, roles[i]);
        puts_(b, m.begin), puts_(b, c[i]), puts_(b, m.end);
    }
}

static void render_llama3(sbuf *b, const pc_chat_role *roles, const char *const *c, size_t n) {
    for (size_t i = 0; i < n; i++) {
        pc_chat_markers m = pc_chat_role_markers(PC_CHAT_LLAMA3, roles[i]);
        puts_(b, m.begin), put_trimmed(b, c[i]), puts_(b, m.end);
    }
}

/* Meta's Llama-2 chat template: the leading system message is folded into the
 * first turn as <<SYS>>...<</SYS>>; each later [INST] turn starts with BOS. */
static void render_llama2(sbuf *b, const pc_chat_role *roles, const char *const *c, size_t n) {
    size_t i = 0;
    const char *system = NULL;
    if (n > 0 && roles[0] == PC_ROLE_SYSTEM) system = c[0], i = 1;
    for (size_t first = i; i < n; i++) {
        sbuf content = {0};
        if (i == first && system) {
            pc_chat_markers s = pc_chat_role_markers(PC_CHAT_LLAMA2, PC_ROLE_SYSTEM);
            puts_(&content, s.begin), puts_(&content, system), puts_(&content, s.end);
        }
        puts_(&content, c[i]);
        if (content.oom) {
            b->oom = true;
            return;
        }
        pc_chat_markers m = pc_chat_role_markers(PC_CHAT_LLAMA2, roles[i]);
        if (roles[i] != PC_ROLE_ASSISTANT && i > first) puts_(b, "<s>");
        puts_(b, m.begin), put_trimmed(b, content.buf.data), puts_(b, m.end);
        pc_buf_free(&content.buf);
    }
}

/* Gemma: a system message's content + "\n\n" opens the next turn's content. */
static void render_gemma(sbuf *b, const pc_chat_role *roles, const char *const *c, size_t n) {
    const char *system = NULL;
    for (size_t i = 0; i < n; i++) {
        if (roles[i] == PC_ROLE_SYSTEM) {
            system = c[i];
            continue;
        }
        pc_chat_markers m = pc_chat_role_markers(PC_CHAT_GEMMA, roles[i]);
        puts_(b, m.begin);
        if (system) {
            pc_chat_markers s = pc_chat_role_markers(PC_CHAT_GEMMA, PC_ROLE_SYSTEM);
            puts_(b, s.begin), puts_(b, system), puts_(b, s.end);
            system = NULL;
        }
        put_trimmed(b, c[i]), puts_(b, m.end);
    }
}

pc_status pc_chat_format_messages_ex(pc_chat_format f, const char *default_system, const pc_chat_role *roles,
                                     const char *const *contents, size_t n, bool add_generation_prompt, char **out,
                                     pc_error *err) {
    *out = NULL;
    if (f < PC_CHAT_CHATML || f > PC_CHAT_GEMMA)
        return pc_fail(err, PC_ERR_INVALID, "chat format %d is not a known format", (int)f);
    for (size_t i = 0; i < n; i++) {
        if (roles[i] < 0 || roles[i] >= PC_ROLE_COUNT)
            return pc_fail(err, PC_ERR_INVALID, "chat message %zu: invalid role %d", i, (int)roles[i]);
        if (!contents[i]) return pc_fail(err, PC_ERR_INVALID, "chat message %zu: NULL content", i);
    }
    sbuf b = {0};
    put(&b, "", 0);
    switch (f) {
    case PC_CHAT_CHATML: render_chatml(&b, default_system, roles, contents, n); break;
    case PC_CHAT_LLAMA2: render_llama2(&b, roles, contents, n); break;
    case PC_CHAT_LLAMA3: render_llama3(&b, roles, contents, n); break;
    case PC_CHAT_GEMMA: render_gemma(&b, roles, contents, n); break;
    case PC_CHAT_UNKNOWN: break;
    }
    if (add_generation_prompt) puts_(&b, pc_chat_generation_prompt(f));
    if (b.oom) {
        pc_buf_free(&b.buf);
        return pc_fail(err, PC_ERR_NOMEM, "chat: out of memory formatting %zu messages", n);
    }
    *out = b.buf.data;
    return PC_OK;
}

pc_status pc_chat_format_messages(pc_chat_format f, const pc_chat_role *roles, const char *const *contents, size_t n,
                                  bool add_generation_prompt, char **out, pc_error *err) {
    return pc_chat_format_messages_ex(f, NULL, roles, contents, n, add_generation_prompt, out, err);
}

/* Reads the Jinja string literal at s[*i] ('...' or "...") with its escapes. */
static bool read_literal(const char *s, size_t len, size_t i, sbuf *b) {
    char q = s[i];
    if (q != '\'' && q != '"') return false;
    for (i++; i < len; i++) {
        if (s[i] == q) return !b->oom;
        if (s[i] == '\\' && i + 1 < len) {
            char e = s[++i];
            char c = e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : e;
            put(b, &c, 1);
        } else {
            put(b, s + i, 1);
        }
    }
    return false;
}

pc_status pc_chat_default_system(const char *t, size_t len, char **out, pc_error *err) {
    static const char *const conds[] = {"messages[0]['role'] != 'system'", "messages[0][\"role\"] != \"system\"",
                                        "messages[0].role != 'system'", NULL};
    static const char begin[] = "<|im_start|>system\n", end[] = "<|im_end|>\n";
    *out = NULL;
    const char *cond = NULL;
    for (int k = 0; conds[k] && !cond; k++) cond = memmem(t, len, conds[k], strlen(conds[k]));
    if (!cond) return PC_OK;
    /* the first {{ ... }} after the condition must print '<|im_start|>system\n...<|im_end|>\n' */
    const char *open = memmem(cond, len - (size_t)(cond - t), "{{", 2);
    if (!open) return PC_OK;
    size_t i = (size_t)(open - t) + 2;
    while (i < len && is_ws(t[i])) i++;
    sbuf lit = {0};
    bool ok = i < len && read_literal(t, len, i, &lit);
    const char *lp = lit.buf.data;
    const size_t ll = lit.buf.len;
    ok = ok && ll >= sizeof begin - 1 + sizeof end - 1 && memcmp(lp, begin, sizeof begin - 1) == 0 &&
         memcmp(lp + ll - (sizeof end - 1), end, sizeof end - 1) == 0;
    if (!ok) {
        bool oom = lit.oom;
        pc_buf_free(&lit.buf);
        return oom ? pc_fail(err, PC_ERR_NOMEM, "chat: out of memory reading the template") : PC_OK;
    }
    size_t n = lit.buf.len - (sizeof begin - 1) - (sizeof end - 1);
    memmove(lit.buf.data, lit.buf.data + sizeof begin - 1, n);
    lit.buf.data[n] = '\0';
    *out = lit.buf.data;
    return PC_OK;
}
