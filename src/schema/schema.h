/* schema.h - a PML schema laid out: every text piece tokenized at the positions the
 * schema fixes, modules, unions and parameters with their spans of positions, and
 * (after pc_schema_keys) each piece's store key. The KV itself lives in the
 * module store (store/store.h): encoding puts it there, requests fetch it.
 *
 * Layout rules (DESIGN.md, "The contract", point 1):
 *   children of a module follow each other; all members of a union start at the
 *   union's start and the union is as long as its longest member; a parameter
 *   reserves `length` positions; L, the schema's length, is the end of its last
 *   element. Text between two module/union/parameter boundaries of one scope,
 *   with the chat markers its chat tags stand for, forms one piece: the
 *   markers exactly as the template writes them, the text between them
 *   compacted as the prototype does (pml.h, "Chat tags").
 *
 * Encoding rules (point 2): the scaffold - every module outside unions, each
 * union's scaffold member (none when the union names none), parameters filled
 * with their scaffold text or the placeholder token - is run as one causal
 * sequence at schema positions, piece by piece, each piece's KV becoming its own
 * frozen span. A non-scaffold member is encoded over the pieces of its own
 * configuration that precede it - in each union on its ancestor chain the
 * member on that chain (never that union's scaffold member, which shares its
 * positions), in every other union the scaffold member - never by running
 * the whole scaffold again. Pieces of cache="false" modules take part in
 * the scaffold run (later pieces attend to them) but their KV is not kept.
 * Each piece is encoded on its own over the pieces it attends to, so a piece
 * missing from the store (evicted, corrupt) is rebuilt alone, bit for bit.
 *
 * Invariants: pieces are sorted by start position within a scope; a piece's
 * key names exactly the inputs its KV depends on (keys.c). */
#ifndef PC_SCHEMA_H
#define PC_SCHEMA_H

#include <stdbool.h>
#include <stdint.h>

#include "forward/forward.h"
#include "kv/kv.h"
#include "pcache.h"
#include "pml/pml.h"
#include "store/store.h"
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
    bool cached;          /* kept in the store: its owner is the root or a cache="true" module */
    char *label;          /* after pc_schema_keys: "schema:module/sub#k", the owner's k-th piece */
    const char *path;     /* the label past "schema:" ("#k" at the root) */
    pc_store_key key;     /* after pc_schema_keys */
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

/* What a registration did. */
typedef struct pc_schema_ready {
    int64_t encoded_tokens;     /* tokens run through the model: 0 when every tier had what it needed */
    int32_t encoded_pieces;
    double encode_ms;
    double ready_ms;            /* the whole registration pass: lookups, loads, encoding */
    int32_t pieces_from[PC_N_TIERS + 1]; /* cached pieces by source; [PC_SOURCE_ENCODED] = encoded */
    int32_t not_loaded;         /* pieces left in a slower tier: the memory budget had no room */
    size_t kv_bytes;            /* K and V of the cached pieces' tokens */
} pc_schema_ready;

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
    pc_chat_turns end_turns; /* the conversation where the schema ends: a prompt's chat tags continue it */
    bool keyed;           /* pc_schema_keys ran */
    uint8_t digest[32];   /* SHA-256 of the laid-out schema (keys.c) */
    uint8_t group[32];    /* the store's group for pins and TTLs: digest and tenant */
    char *tenant;         /* "" = shared */
    bool published;       /* its record is in the store's shared registry: checked at each use (the engine's) */
    pc_schema_ready ready; /* what its registration did (pc_schema_encode) */
} pc_schema;

/* What layout needs from the model. */
typedef struct pc_layout_ctx {
    const pc_tokenizer *tok;
    pc_chat_format chat;  /* PC_CHAT_UNKNOWN: role tags are an error */
    bool add_bos;         /* the model's BOS rule: a BOS piece at position 0 */
    int32_t n_ctx;        /* every element must end before position n_ctx - 1: L leaves room in the context */
    int64_t max_tokens;   /* tokens of all pieces together (union members each count): the KV a schema may hold */
    int32_t placeholder;  /* token filling parameters that have no scaffold text */
    const char *default_system; /* what <system/> stands for (the template's default system message), or NULL */
} pc_layout_ctx;

/* Lays out a parsed schema. Takes ownership of doc (also on failure).
 * Errors name the schema file, line and column. Positions and the token
 * budget are checked as each element is placed, before anything is
 * allocated for it, so a refused schema costs memory in proportion to the
 * document, whatever lengths it declares. */
pc_status pc_schema_layout(pc_pml_doc *doc, const pc_layout_ctx *lc, pc_schema **out, pc_error *err);
void pc_schema_free(pc_schema *s);

/* Index of the module named name in the scope of module `scope` (PC_ROOT for
 * the schema): its children, through unions; -1 if none. */
int32_t pc_schema_find_module(const pc_schema *s, int32_t scope, const char *name);
int32_t pc_schema_find_param(const pc_schema *s, int32_t module, const char *name);

/* The home of a piece owned by `owner`: the innermost non-scaffold union member
 * among owner and its ancestors, or PC_ROOT (the scaffold). */
int32_t pc_schema_home(const pc_schema *s, int32_t owner);

/* Computes the schema digest, every piece's path and store key, and the group,
 * for the model fingerprint `model` and a tenant ("" or NULL: shared). */
pc_status pc_schema_keys(pc_schema *s, const uint8_t model[32], const char *tenant, pc_error *err);
/* What the store is asked for piece i. */
pc_store_desc pc_schema_piece_desc(const pc_schema *s, int32_t i);

/* Progress of encoding: called after each piece. */
typedef void (*pc_encode_progress_fn)(void *user, int32_t pieces_done, int32_t n_pieces, int64_t tokens_done,
                                      int64_t n_tokens, double elapsed_ms);

/* What encoding needs: the store pieces go to and come from, and a forward
 * state - given, or made on first need (most passes find every piece in the
 * store and need none; a forward state's scratch is large). */
typedef struct pc_encoder {
    pc_store *store;
    const pc_model *m;
    pc_forward *f;                  /* NULL: made by new_forward when a piece must be encoded */
    pc_status (*new_forward)(void *ctx, pc_forward **out, pc_error *err);
    void *forward_ctx;
    bool own_f;                     /* f was made here: pc_encoder_end frees it */
    pc_encode_progress_fn progress; /* may be NULL */
    void *user;
} pc_encoder;

/* Frees a forward state the encoder made. */
void pc_encoder_end(pc_encoder *enc);

/* The KV of a schema's pieces gathered for one pass (a registration, a
 * request): store entries pinned until pc_piece_kv_release, and spans
 * computed here that the store does not keep (cache="false" pieces). */
typedef struct pc_piece_kv {
    int32_t n;               /* the schema's n_pieces */
    pc_store_entry **entry;  /* [n] pinned entries, or NULL */
    pc_kv_span **local;      /* [n] spans owned here, or NULL */
    pc_kv_span **dev;        /* [n] the store's device copies of entry[i], held here, or NULL */
    pc_kv_source *source;    /* [n] where each obtained piece came from */
    bool *have;              /* [n] */
    int64_t encoded_tokens;  /* tokens run through the model in this pass */
    int32_t encoded_pieces;
    double encode_ms;        /* time in those forward passes */
    int64_t n_tokens;        /* for progress: tokens of the pieces this pass encodes at most */
    int32_t uploaded_pieces; /* pieces this pass copied from host memory into the device tier */
} pc_piece_kv;

pc_status pc_piece_kv_init(pc_piece_kv *pk, const pc_schema *s, pc_error *err);
/* Gives back every pin and span. Safe on a zeroed pk. */
void pc_piece_kv_release(pc_piece_kv *pk, pc_store *store);
/* Piece i's KV once obtained (NULL for an empty piece): its device copy
 * where the store keeps one, else the entry's or the local span. */
const pc_kv_span *pc_piece_kv_span(const pc_piece_kv *pk, int32_t i);
/* Makes piece i's KV available in pk: from the store when a tier has it,
 * else encoded over the pieces it attends to (obtained the same way) and put
 * into the store. */
pc_status pc_piece_obtain(pc_piece_kv *pk, const pc_schema *s, pc_encoder *enc, int32_t i, pc_error *err);

/* Registration: puts into the store every cached piece that no tier holds
 * (encoding it and what it attends to), then loads the others into memory
 * while the memory budget has room, so requests find them there. */
pc_status pc_schema_encode(const pc_schema *s, pc_encoder *enc, pc_schema_ready *out, pc_error *err);

#endif
