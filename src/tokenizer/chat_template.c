/* chat_template.c - recognising chat templates: the format from the text of
 * tokenizer.chat_template, and a ChatML template's default system message.
 *
 * pcache runs no Jinja: detection looks for each format's distinctive markers
 * in the template text, in llama.cpp's order; chat_turns.c writes each format
 * out as its reference template renders it. */
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

/* Reading a template's string literal appends byte by byte; the first failed
 * append sticks, so the reader checks once at the end. */
typedef struct sbuf {
    pc_buf buf;
    bool oom;
} sbuf;

static void put(sbuf *b, const char *s, size_t n) {
    if (!b->oom && !pc_buf_append(&b->buf, s, n)) b->oom = true;
}

static bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

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
