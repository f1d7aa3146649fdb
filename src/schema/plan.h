/* plan.h - a prompt bound to its schema: what to reuse, what to compute, where.
 *
 * A plan is a list of items in position order. A cached item is a piece's
 * frozen KV span from the module store, pinned while the plan lives, never
 * copied; a fresh item holds tokens to compute at their positions (arguments,
 * cache="false" modules, the prompt's own text, which always comes last, from
 * position L on). Binding decides the items; pc_plan_fetch gets the cached
 * items' KV (memory, disk, Redis, else encoding) and says where each came from. */
#ifndef PC_SCHEMA_PLAN_H
#define PC_SCHEMA_PLAN_H

#include "schema/schema.h"

typedef enum pc_item_kind { PC_ITEM_CACHED = 0, PC_ITEM_ARGUMENT, PC_ITEM_UNCACHED, PC_ITEM_PROMPT } pc_item_kind;

typedef struct pc_plan_item {
    pc_item_kind kind;
    int32_t start, n;
    const int32_t *tokens;  /* cached/uncached: the piece's; argument/prompt: owned by the plan */
    int32_t piece;          /* cached/uncached: the schema's piece index; else -1 */
    const pc_kv_span *kv;   /* CACHED, after pc_plan_fetch: the piece's span (pinned by the plan) */
} pc_plan_item;

typedef struct pc_plan {
    pc_plan_item *items;
    int32_t n;
    size_t cap;
    int32_t **owned;        /* token arrays the plan allocated */
    int32_t n_owned;
    size_t cap_owned;
    int64_t cached_tokens, fresh_tokens;
    pc_piece_kv kv;         /* after pc_plan_fetch: the pins on the cached items' entries */
    pc_store *store;        /* where those pins go back */
} pc_plan;

/* What binding needs beyond the schema. */
typedef struct pc_bind_ctx {
    const pc_tokenizer *tok;
    pc_chat_format chat;
    const char *default_system; /* what <system/> stands for, or NULL (as pc_layout_ctx) */
} pc_bind_ctx;

/* Binds a parsed prompt to schema s (which must be keyed). Errors name the
 * request, line and column, and for unknown names the scope searched. */
pc_status pc_plan_bind(const pc_schema *s, const pc_pml_doc *prompt, const pc_bind_ctx *bc, pc_plan *out, pc_error *err);
/* Gets every cached item's KV, pinned until pc_plan_free: s must live until
 * this returns; afterwards the plan needs only the store. */
pc_status pc_plan_fetch(pc_plan *p, const pc_schema *s, pc_encoder *enc, pc_error *err);
void pc_plan_free(pc_plan *p);

#endif
