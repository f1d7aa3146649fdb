/* chat_template.h - recognised chat formats and their role markers.
 *
 * pcache does not run Jinja: it recognises the common templates from the text
 * of tokenizer.chat_template and knows each role's begin and end markers, which
 * is what PML chat tags and --chat need. */
#ifndef PC_TOKENIZER_CHAT_TEMPLATE_H
#define PC_TOKENIZER_CHAT_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>

#include "pcache.h"
#include "tokenizer/tokenizer.h"

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

/* Role markers as text: what goes before and after a message of that role
 * (e.g. ChatML user: "<|im_start|>user\n" and "<|im_end|>\n"). Static strings. */
typedef struct pc_chat_markers {
    const char *begin;
    const char *end;
} pc_chat_markers;
pc_chat_markers pc_chat_role_markers(pc_chat_format f, pc_chat_role role);
/* The text that opens the assistant's reply (generation prompt). */
const char *pc_chat_generation_prompt(pc_chat_format f);

/* Formats a conversation into text; roles[i] with contents[i]; appends the
 * generation prompt when add_generation_prompt. Caller frees *out with pc_free.
 * The text starts after the BOS token (the tokenizer adds it). Llama-2, Llama-3
 * and Gemma trim ASCII whitespace around contents as their templates do; Gemma
 * has no system role: a system message becomes a prefix (content + "\n\n")
 * of the next turn, as Gemma 3's template renders it. */
pc_status pc_chat_format_messages(pc_chat_format f, const pc_chat_role *roles, const char *const *contents,
                                  size_t n, bool add_generation_prompt, char **out, pc_error *err);

/* The system message a ChatML template adds when the conversation does not
 * start with one (SmolLM2's: "You are a helpful AI assistant named SmolLM,
 * trained by Hugging Face"). *out = NULL when the template has no such rule;
 * else a copy the caller frees with pc_free. */
pc_status pc_chat_default_system(const char *template_text, size_t len, char **out, pc_error *err);

/* pc_chat_format_messages, plus: when default_system is non-NULL and the
 * first message is not a system message, a system message with that content
 * comes first (ChatML templates with that rule; see pc_chat_default_system). */
pc_status pc_chat_format_messages_ex(pc_chat_format f, const char *default_system, const pc_chat_role *roles,
                                     const char *const *contents, size_t n, bool add_generation_prompt, char **out,
                                     pc_error *err);

#endif
