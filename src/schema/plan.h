/* plan.h - a prompt bound to its schema: what to reuse, what to compute, where.
 *
 * A plan is a list of items in position order. A cached item is a piece's
 * frozen KV span, referenced, never copied; a fresh item holds tokens to
 * compute at their positions (arguments, cache="false" modules, the prompt's
 * own text, which always comes last, from position L on). */
#ifndef PC_SCHEMA_PLAN_H
#define PC_SCHEMA_PLAN_H

#include "schema/schema.h"

typedef enum pc_item_kind { PC_ITEM_CACHED = 0, PC_ITEM_ARGUMENT, PC_ITEM_UNCACHED, PC_ITEM_PROMPT } pc_item_kind;

typedef struct pc_plan_item {
    pc_item_kind kind;
    int32_t start, n;
    const int32_t *tokens;  /* cached/uncached: the piece's; argument/prompt: owned by the plan */
    pc_kv_span *kv;         /* CACHED: the piece's span (the plan holds a reference) */
} pc_plan_item;

typedef struct pc_plan {
    pc_plan_item *items;
    int32_t n;
    size_t cap;
    int32_t **owned;        /* token arrays the plan allocated */
    int32_t n_owned;
    size_t cap_owned;
    int64_t cached_tokens, fresh_tokens;
} pc_plan;

/* What binding needs beyond the schema. */
typedef struct pc_bind_ctx {
    const pc_tokenizer *tok;
    pc_chat_format chat;
} pc_bind_ctx;

/* Binds a parsed prompt to schema s (which must be encoded). Errors name the
 * request, line and column, and for unknown names the scope searched. The
 * plan holds references to s's spans: s may be dropped while the plan lives. */
pc_status pc_plan_bind(const pc_schema *s, const pc_pml_doc *prompt, const pc_bind_ctx *bc, pc_plan *out, pc_error *err);
void pc_plan_free(pc_plan *p);

#endif
