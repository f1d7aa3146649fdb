/* chat_template.h - recognised chat formats and their role markers.
 *
 * pcache does not run Jinja: it recognises the common templates from the text
 * of tokenizer.chat_template and knows each format's markers between messages,
 * which is what PML chat tags and --chat need. */
#ifndef PC_TOKENIZER_CHAT_TEMPLATE_H
#define PC_TOKENIZER_CHAT_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>

#include "pcache.h"
#include "tokenizer/tokenizer.h"
#include "util/buf.h"

typedef enum pc_chat_format {
    PC_CHAT_UNKNOWN = 0,
    PC_CHAT_CHATML,
    PC_CHAT_LLAMA2,
    PC_CHAT_LLAMA3,
    PC_CHAT_GEMMA,
} pc_chat_format;

typedef enum pc_chat_role { PC_ROLE_SYSTEM = 0, PC_ROLE_USER, PC_ROLE_ASSISTANT, PC_ROLE_COUNT } pc_chat_role;

/* Name <-> format ("chatml", "llama2", "llama3", "gemma"); PC_CHAT_UNKNOWN if unknown. */
pc_chat_format pc_chat_format_from_name(const char *name);
const char *pc_chat_format_name(pc_chat_format f);

/* Recognises a template text; PC_CHAT_UNKNOWN with err naming the template's
 * first characters and the --chat-template flag when it is not recognised. */
pc_status pc_chat_detect(const char *template_text, size_t len, pc_chat_format *out, pc_error *err);
/* Detects from the model's tokenizer.chat_template (error if absent). */
pc_status pc_chat_detect_gguf(const pc_gguf *g, pc_chat_format *out, pc_error *err);

/* ---- turns: the markers between messages (chat_turns.c) ----
 *
 * The one source of every role marker: the renderer below and PML's chat tags
 * (schema layout, prompt binding) both ask the turn writer, so they produce
 * the same markers by construction. The markers opening a turn depend on the
 * conversation so far: Llama-2 and Gemma fold a leading system message into
 * the first user turn, and Llama-2 opens each later user turn with BOS. */

typedef struct pc_chat_turns {
    pc_chat_format format;
    int32_t n_turns;    /* turns opened so far */
    pc_chat_role last;  /* role of the last turn opened (when n_turns > 0) */
    bool open;          /* that turn is not closed yet */
    bool system_folded; /* Llama-2, Gemma: a closed system turn waits for the user turn that carries it */
} pc_chat_turns;

/* The state of a conversation not yet started. */
pc_chat_turns pc_chat_turns_start(pc_chat_format f);
/* The marker that opens a turn of role r (a static string, maybe ""),
 * advancing t. Fails with PC_ERR_INVALID and a message without position when
 * the format has no such turn there: a turn is open; Llama-2 and Gemma: a
 * system turn other than the first, or anything but a user turn after it. */
pc_status pc_chat_turn_open(pc_chat_turns *t, pc_chat_role r, const char **marker, pc_error *err);
/* The marker that closes the open turn ("" when none is). */
const char *pc_chat_turn_close(pc_chat_turns *t);
/* The marker that opens the assistant's reply (the generation prompt); ""
 * for Llama-2, whose model answers right after " [/INST]". */
const char *pc_chat_generation_prompt(pc_chat_format f);
/* Does the conversation end in a closed user turn, so a reply is due? */
bool pc_chat_turns_await_reply(const pc_chat_turns *t);

/* ---- text with markers ----
 * Chat text is tokenized with control tokens recognised only inside its
 * markers (pc_tokenize_marked): content that spells "<|im_start|>" stays text. */

typedef struct pc_chat_text {
    pc_buf text;
    pc_text_range *markers; /* byte ranges of text; sorted, disjoint (adjacent markers merge) */
    size_t n_markers, cap_markers;
} pc_chat_text;

bool pc_chat_text_marker(pc_chat_text *t, const char *marker); /* false: out of memory */
bool pc_chat_text_content(pc_chat_text *t, const char *s, size_t n);
void pc_chat_text_free(pc_chat_text *t);
/* Appends the tokens of t to out (BOS/EOS as pc_tokenize's add_special). */
pc_status pc_chat_text_tokenize(const pc_tokenizer *tok, const pc_chat_text *t, bool add_special, pc_tokens *out,
                                pc_error *err);

/* Renders a conversation as its format's reference template does: roles[i]
 * with contents[i], each content trimmed where that template trims it; the
 * generation prompt after when add_generation_prompt. default_system (may be
 * NULL): ChatML templates that add a system message when the conversation
 * does not start with one (see pc_chat_default_system). The text starts
 * after the BOS token (the tokenizer adds it). Appends to *out. */
pc_status pc_chat_render(pc_chat_format f, const char *default_system, const pc_chat_role *roles,
                         const char *const *contents, size_t n, bool add_generation_prompt, pc_chat_text *out,
                         pc_error *err);

/* pc_chat_render as one string, *out malloc'd (pc_free). Tokenizing it with
 * special parsing would let the contents forge markers: tokenize a
 * pc_chat_text instead. */
pc_status pc_chat_format_messages(pc_chat_format f, const pc_chat_role *roles, const char *const *contents,
                                  size_t n, bool add_generation_prompt, char **out, pc_error *err);
pc_status pc_chat_format_messages_ex(pc_chat_format f, const char *default_system, const pc_chat_role *roles,
                                     const char *const *contents, size_t n, bool add_generation_prompt, char **out,
                                     pc_error *err);

/* The system message a ChatML template adds when the conversation does not
 * start with one (SmolLM2's: "You are a helpful AI assistant named SmolLM,
 * trained by Hugging Face"). *out = NULL when the template has no such rule;
 * else a copy the caller frees with pc_free. */
pc_status pc_chat_default_system(const char *template_text, size_t len, char **out, pc_error *err);

#endif
