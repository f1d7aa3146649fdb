/* schema.h - a PML schema laid out: every text piece tokenized at the positions the
 * schema fixes, modules, unions and parameters with their spans of positions, and
 * (after pc_schema_encode) each piece's KV.
 *
 * Layout rules (DESIGN.md, "The contract", point 1):
 *   children of a module follow each other; all members of a union start at the
 *   union's start and the union is as long as its longest member; a parameter
 *   reserves `length` positions; L, the schema's length, is the end of its last
 *   element. Text between two module/union/parameter boundaries of one scope,
 *   with the chat role markers that role tags stand for, forms one piece, its
 *   surrounding whitespace compacted as the prototype does (pml.h).
 *
 * Encoding rules (point 2): the scaffold - every module outside unions, each
 * union's scaffold member (none when the union names none), parameters filled
 * with their scaffold text or the placeholder token - is run as one causal
 * sequence at schema positions, piece by piece, each piece's KV becoming its own
 * frozen span. A non-scaffold member is encoded over the scaffold prefix that
 * precedes its union (plus, nested, its enclosing members' pieces), never by
 * running the whole scaffold again. Pieces of cache="false" modules take part in
 * the scaffold run (later pieces attend to them) but their KV is not kept.
 *
 * Invariants: pieces are sorted by start position within a scope; piece KV is
 * frozen and reference-counted; the schema owns one reference to each. */
#ifndef PC_SCHEMA_H
#define PC_SCHEMA_H

#include <stdbool.h>
#include <stdint.h>

#include "forward/forward.h"
#include "kv/kv.h"
#include "pcache.h"
#include "pml/pml.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

#define PC_ROOT (-1) /* owner index of the schema root */

typedef enum pc_piece_kind { PC_PIECE_TEXT = 0, PC_PIECE_PARAM_FILL } pc_piece_kind;

typedef struct pc_piece {
    pc_piece_kind kind;
    int32_t owner;        /* module index, or PC_ROOT */
    int32_t param;        /* PARAM_FILL: parameter index; else -1 */
    int32_t start, n;     /* positions [start, start + n) */
    int32_t *tokens;      /* [n] */
    uint32_t line, col;   /* where the piece starts in the schema file */
    pc_kv_span *kv;       /* after encoding; NULL for cache="false" owners */
} pc_piece;

typedef struct pc_module {
    const char *name;
    int32_t parent;       /* module index or PC_ROOT */
    int32_t union_id;     /* the union it is a member of, or -1 */
    int32_t start, len;
    bool cache;           /* false when it or an ancestor says cache="false" */
    bool scaffold;        /* part of the scaffold */
    const pc_pml_node *node;
} pc_module;

typedef struct pc_union {
    int32_t parent;       /* module index or PC_ROOT */
    int32_t start, len;
    int32_t scaffold;     /* member module index, or -1 */
    const pc_pml_node *node;
} pc_union;

typedef struct pc_param {
    const char *name;
    int32_t module;       /* owning module (parameters never sit at the root) */
    int32_t start, len;
    int32_t fill_piece;   /* the piece holding its scaffold fill */
} pc_param;

typedef struct pc_schema {
    char *name;
    pc_pml_doc *doc;      /* owned: names and nodes point into it */
    pc_piece *pieces;
    int32_t n_pieces;
    pc_module *modules;
    int32_t n_modules;
    pc_union *unions;
    int32_t n_unions;
    pc_param *params;
    int32_t n_params;
    int32_t length;       /* L */
    int32_t placeholder;  /* token filling parameters without scaffold text */
    bool encoded;
    size_t kv_bytes;      /* KV held by the pieces */
    int64_t encoded_tokens;
    double encode_ms;
} pc_schema;

/* What layout needs from the model. */
typedef struct pc_layout_ctx {
    const pc_tokenizer *tok;
    pc_chat_format chat;  /* PC_CHAT_UNKNOWN: role tags are an error */
    bool add_bos;         /* the model's BOS rule: a BOS piece at position 0 */
    int32_t n_ctx;        /* L must leave room in the context */
    int32_t placeholder;  /* token filling parameters that have no scaffold text */
} pc_layout_ctx;

/* Lays out a parsed schema. Takes ownership of doc (also on failure).
 * Errors name the schema file, line and column. */
pc_status pc_schema_layout(pc_pml_doc *doc, const pc_layout_ctx *lc, pc_schema **out, pc_error *err);
void pc_schema_free(pc_schema *s);

/* Index of the module named name in the scope of module `scope` (PC_ROOT for
 * the schema): its children, through unions; -1 if none. */
int32_t pc_schema_find_module(const pc_schema *s, int32_t scope, const char *name);
int32_t pc_schema_find_param(const pc_schema *s, int32_t module, const char *name);

/* Progress of encoding: called after each piece. */
typedef void (*pc_encode_progress_fn)(void *user, int32_t pieces_done, int32_t n_pieces, int64_t tokens_done,
                                      int64_t n_tokens, double elapsed_ms);

/* Computes every piece's KV (see the encoding rules above). */
pc_status pc_schema_encode(pc_schema *s, pc_forward *f, const pc_model *m, pc_encode_progress_fn progress, void *user,
                           pc_error *err);

#endif
