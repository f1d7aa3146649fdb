/* layout.c - PML syntax tree to positions and tokens (see schema.h for the rules).
 *
 * One recursive walk. Text and chat markers of a scope accumulate (piece_text)
 * until a module, union or parameter boundary (or the scope's end) ends them
 * as one piece, as the prototype's parser saw the text once role tags had
 * been replaced by template strings - except that markers are exactly the
 * template's (the turn writer's), untouched by the whitespace rule, and only
 * they may become control tokens. */
#include <stdlib.h>
#include <string.h>

#include "pml/text.h"
#include "schema/piece_text.h"
#include "schema/schema.h"
#include "util/buf.h"
#include "util/error.h"

typedef struct lay {
    const pc_layout_ctx *lc;
    pc_schema *s;
    pc_error *err;
    const char *file;
    pc_piece_text acc;    /* the current piece's text */
    pc_chat_turns turns;  /* the conversation so far, in document order */
    int32_t pos;          /* next free position; never past lc->n_ctx - 1 (see take_positions) */
    int64_t tokens;       /* tokens of all pieces so far (union members each count) */
    size_t cap_pieces, cap_modules, cap_unions, cap_params;
} lay;

static pc_status oom(lay *L) { return pc_fail(L->err, PC_ERR_NOMEM, "%s: out of memory laying out", L->file); }

/* Room for one more module, union, parameter or piece (each an array of the schema). */
static pc_status reserve_module(lay *L) {
    pc_module *p = pc_array_reserve(L->s->modules, &L->cap_modules, (size_t)L->s->n_modules + 1, sizeof *p);
    if (p) L->s->modules = p;
    return p ? PC_OK : oom(L);
}

static pc_status reserve_union(lay *L) {
    pc_union *p = pc_array_reserve(L->s->unions, &L->cap_unions, (size_t)L->s->n_unions + 1, sizeof *p);
    if (p) L->s->unions = p;
    return p ? PC_OK : oom(L);
}

static pc_status reserve_param(lay *L) {
    pc_param *p = pc_array_reserve(L->s->params, &L->cap_params, (size_t)L->s->n_params + 1, sizeof *p);
    if (p) L->s->params = p;
    return p ? PC_OK : oom(L);
}

static pc_status reserve_piece(lay *L) {
    pc_piece *p = pc_array_reserve(L->s->pieces, &L->cap_pieces, (size_t)L->s->n_pieces + 1, sizeof *p);
    if (p) L->s->pieces = p;
    return p ? PC_OK : oom(L);
}

/* Claims positions [pos, pos + n) for what starts at line:col, before
 * anything is allocated for it. Refused when they pass the context (a schema
 * must leave room for the prompt's own text) - checked in 64-bit arithmetic,
 * so no sum of lengths wraps - or when the schema's tokens in all, each union
 * member counting, would pass lc->max_tokens: each is KV kept in memory. */
static pc_status take_positions(lay *L, int64_t n, int64_t n_tokens, uint32_t line, uint32_t col, const char *what,
                                const char *name) {
    const int64_t end = (int64_t)L->pos + n, limit = (int64_t)L->lc->n_ctx - 1;
    if (end > limit)
        return pc_fail(L->err, PC_ERR_RANGE,
                       "%s:%u:%u: %s%s%s%s ends at position %lld, past the context of %d positions (a schema must "
                       "leave room for the prompt's text)", L->file, line, col, what, name ? " '" : "", name ? name : "",
                       name ? "'" : "", (long long)end, L->lc->n_ctx);
    if (L->tokens + n_tokens > L->lc->max_tokens)
        return pc_fail(L->err, PC_ERR_RANGE,
                       "%s:%u:%u: %s%s%s%s brings the schema to %lld tokens of KV in all (each union member counts), "
                       "over its limit of %lld (pc_schema_params.max_kv_bytes)", L->file, line, col, what,
                       name ? " '" : "", name ? name : "", name ? "'" : "", (long long)(L->tokens + n_tokens),
                       (long long)L->lc->max_tokens);
    L->tokens += n_tokens;
    return PC_OK;
}

/* Places a piece at the next positions; the positions were taken already. */
static pc_status push_piece(lay *L, pc_piece_kind kind, int32_t owner, int32_t param, int32_t *tokens, int32_t n,
                            uint32_t line, uint32_t col) {
    pc_schema *s = L->s;
    if (reserve_piece(L) != PC_OK) {
        free(tokens);
        return PC_ERR_NOMEM;
    }
    s->pieces[s->n_pieces++] = (pc_piece){.kind = kind, .owner = owner, .param = param, .start = L->pos, .n = n,
                                          .tokens = tokens, .line = line, .col = col};
    L->pos += n;
    return PC_OK;
}

static pc_status tokenize(lay *L, const char *text, size_t len, bool special, uint32_t line, uint32_t col,
                          pc_tokens *out) {
    pc_error e = {0};
    if (pc_tokenize(L->lc->tok, text, len, false, special, out, &e) != PC_OK)
        return pc_fail(L->err, PC_ERR_FORMAT, "%s:%u:%u: cannot tokenize text: %s", L->file, line, col, e.msg);
    return PC_OK;
}

/* Ends the current piece of scope `owner`: tokenize and place it. */
static pc_status flush(lay *L, int32_t owner) {
    if (!L->acc.has) return PC_OK;
    const uint32_t line = L->acc.line, col = L->acc.col;
    pc_tokens t = {0};
    pc_error e = {0};
    pc_status st = pc_piece_text_end(&L->acc, L->lc->tok, &t, &e);
    if (st != PC_OK) st = pc_fail(L->err, st, "%s:%u:%u: cannot tokenize text: %s", L->file, line, col, e.msg);
    if (st == PC_OK && t.n) st = take_positions(L, (int64_t)t.n, (int64_t)t.n, line, col, "text", NULL);
    if (st != PC_OK || t.n == 0) {
        pc_tokens_free(&t);
        return st;
    }
    return push_piece(L, PC_PIECE_TEXT, owner, -1, t.ids, (int32_t)t.n, line, col);
}

static pc_status add_text(lay *L, const pc_pml_node *n) {
    return pc_piece_text_add(&L->acc, n->raw, n->raw_len, n->line, n->col) ? PC_OK : oom(L);
}

static pc_status add_marker(lay *L, const char *marker, const pc_pml_node *at) {
    return pc_piece_text_marker(&L->acc, marker, at->line, at->col) ? PC_OK : oom(L);
}

static pc_status lay_children(lay *L, const pc_pml_node *n, int32_t owner, bool scaffold, bool cache);

static pc_chat_role chat_role(pc_pml_role r) {
    return r == PC_PML_ROLE_SYSTEM ? PC_ROLE_SYSTEM : r == PC_PML_ROLE_USER ? PC_ROLE_USER : PC_ROLE_ASSISTANT;
}

/* <system/>: the template's default system message as a system turn, or
 * nothing when the template has none (see pml.h). */
static pc_status lay_default_system(lay *L, const pc_pml_node *n) {
    const char *open = NULL;
    pc_error e = {0};
    if (!L->lc->default_system) return PC_OK;
    if (pc_chat_turn_open(&L->turns, PC_ROLE_SYSTEM, &open, &e) != PC_OK)
        return pc_fail(L->err, PC_ERR_FORMAT, "%s:%u:%u: <system/>: %s", L->file, n->line, n->col, e.msg);
    pc_status st = add_marker(L, open, n);
    if (st == PC_OK && !pc_piece_text_add(&L->acc, L->lc->default_system, strlen(L->lc->default_system), n->line, n->col))
        st = oom(L);
    if (st == PC_OK) st = add_marker(L, pc_chat_turn_close(&L->turns), n);
    return st;
}

static pc_status lay_role(lay *L, const pc_pml_node *n, int32_t owner, bool scaffold, bool cache) {
    if (L->lc->chat == PC_CHAT_UNKNOWN)
        return pc_fail(L->err, PC_ERR_UNSUPPORTED,
                       "%s:%u:%u: <%s> needs the model's chat template, which is not recognised (choose one with "
                       "--chat-template)", L->file, n->line, n->col, n->name);
    if (n->self_closing && n->role == PC_PML_ROLE_SYSTEM) return lay_default_system(L, n);
    const char *open = NULL;
    pc_error e = {0};
    if (pc_chat_turn_open(&L->turns, chat_role(n->role), &open, &e) != PC_OK)
        return pc_fail(L->err, PC_ERR_FORMAT, "%s:%u:%u: <%s>: %s", L->file, n->line, n->col, n->name, e.msg);
    pc_status st = add_marker(L, open, n);
    if (st == PC_OK) st = lay_children(L, n, owner, scaffold, cache);
    if (st == PC_OK) st = add_marker(L, pc_chat_turn_close(&L->turns), n);
    return st;
}

/* The tokens that stand in for a parameter while the schema is encoded: its
 * scaffold text, else `length` placeholders. Called once its positions are
 * taken, so the placeholders never outgrow the context. */
static pc_status param_fill(lay *L, const pc_pml_node *n, pc_tokens *t) {
    if (n->scaffold) {
        pc_status st = tokenize(L, n->scaffold, strlen(n->scaffold), false, n->line, n->col, t);
        if (st != PC_OK) return st;
        if (t->n > n->length) {
            const size_t got = t->n;
            pc_tokens_free(t);
            return pc_fail(L->err, PC_ERR_FORMAT, "%s:%u:%u: scaffold of parameter '%s' is %zu tokens, longer than its length %u",
                           L->file, n->line, n->col, n->name, got, n->length);
        }
        return PC_OK;
    }
    for (uint32_t i = 0; i < n->length; i++)
        if (!pc_tokens_push(t, L->lc->placeholder)) {
            pc_tokens_free(t);
            return oom(L);
        }
    return PC_OK;
}

static pc_status lay_param(lay *L, const pc_pml_node *n, int32_t owner) {
    pc_schema *s = L->s;
    pc_status st = take_positions(L, n->length, n->length, n->line, n->col, "parameter", n->name);
    if (st == PC_OK && reserve_param(L) != PC_OK) st = PC_ERR_NOMEM;
    pc_tokens t = {0};
    if (st == PC_OK) st = param_fill(L, n, &t);
    if (st != PC_OK) return st;
    const int32_t idx = s->n_params, end = L->pos + (int32_t)n->length;
    s->params[idx] = (pc_param){.name = n->name, .module = owner, .start = L->pos, .len = (int32_t)n->length,
                                .fill_piece = s->n_pieces};
    s->n_params++;
    L->tokens -= (int64_t)n->length - (int64_t)t.n; /* a scaffold text may be shorter than the slot */
    st = push_piece(L, PC_PIECE_PARAM_FILL, owner, idx, t.ids, (int32_t)t.n, n->line, n->col);
    L->pos = end;
    return st;
}

static pc_status lay_module(lay *L, const pc_pml_node *n, int32_t parent, int32_t union_id, bool scaffold, bool cache) {
    pc_schema *s = L->s;
    if (reserve_module(L) != PC_OK) return PC_ERR_NOMEM;
    int32_t idx = s->n_modules++;
    s->modules[idx] = (pc_module){.name = n->name, .parent = parent, .union_id = union_id, .start = L->pos,
                                  .cache = cache && n->cache, .scaffold = scaffold, .node = n};
    pc_status st = lay_children(L, n, idx, scaffold, cache && n->cache);
    if (st == PC_OK) st = flush(L, idx);
    s->modules[idx].len = L->pos - s->modules[idx].start;
    return st;
}

/* Do two ends of union members leave the conversation where the same markers follow? */
static bool same_turns(const pc_chat_turns *a, const pc_chat_turns *b) {
    return (a->n_turns > 0) == (b->n_turns > 0) && a->last == b->last && a->open == b->open &&
           a->system_folded == b->system_folded;
}

/* Every member starts from the conversation as it stands at the union, and
 * must leave it in the same turn: what follows the union is laid out once,
 * whichever member a prompt selects. */
static pc_status lay_union(lay *L, const pc_pml_node *n, int32_t owner, bool scaffold, bool cache) {
    pc_schema *s = L->s;
    if (reserve_union(L) != PC_OK) return PC_ERR_NOMEM;
    int32_t uid = s->n_unions++;
    const int32_t start = L->pos;
    const pc_chat_turns at_start = L->turns;
    pc_chat_turns after = at_start;
    const pc_pml_node *first = NULL;
    s->unions[uid] = (pc_union){.parent = owner, .start = start, .scaffold = -1, .node = n};
    int32_t longest = 0;
    for (size_t i = 0; i < n->n_children; i++) {
        const pc_pml_node *m = n->children[i];
        if (m->kind != PC_PML_MODULE) continue;
        bool is_sc = n->scaffold && strcmp(n->scaffold, m->name) == 0;
        if (is_sc) s->unions[uid].scaffold = s->n_modules;
        L->pos = start;
        L->turns = at_start;
        pc_status st = lay_module(L, m, owner, uid, scaffold && is_sc, cache);
        if (st != PC_OK) return st;
        if (first && !same_turns(&L->turns, &after))
            return pc_fail(L->err, PC_ERR_FORMAT,
                           "%s:%u:%u: member '%s' leaves the conversation in another chat turn than member '%s' "
                           "(chat tags in a union's members must open and close the same turns)",
                           L->file, m->line, m->col, m->name, first->name);
        if (!first) first = m, after = L->turns;
        longest = L->pos - start > longest ? L->pos - start : longest;
    }
    s->unions[uid].len = longest;
    L->pos = start + longest;
    L->turns = after;
    return PC_OK;
}

static pc_status lay_children(lay *L, const pc_pml_node *n, int32_t owner, bool scaffold, bool cache) {
    pc_status st = PC_OK;
    for (size_t i = 0; i < n->n_children && st == PC_OK; i++) {
        const pc_pml_node *c = n->children[i];
        switch (c->kind) {
        case PC_PML_TEXT: st = add_text(L, c); break;
        case PC_PML_ROLE: st = lay_role(L, c, owner, scaffold, cache); break;
        case PC_PML_MODULE:
            if ((st = flush(L, owner)) == PC_OK) st = lay_module(L, c, owner, -1, scaffold, cache);
            break;
        case PC_PML_UNION:
            if ((st = flush(L, owner)) == PC_OK) st = lay_union(L, c, owner, scaffold, cache);
            break;
        case PC_PML_PARAMETER:
            if ((st = flush(L, owner)) == PC_OK) st = lay_param(L, c, owner);
            break;
        default:
            st = pc_fail(L->err, PC_ERR_FORMAT, "%s:%u:%u: unexpected <%s> in a schema", L->file, c->line, c->col,
                         pc_pml_kind_name(c->kind));
        }
    }
    return st;
}

static pc_status lay_root(lay *L, const pc_pml_node *root) {
    if (L->lc->add_bos) {
        pc_status st = take_positions(L, 1, 1, root->line, root->col, "the BOS token", NULL);
        int32_t *bos = st == PC_OK ? malloc(sizeof *bos) : NULL;
        if (!bos) return st == PC_OK ? oom(L) : st;
        *bos = pc_tokenizer_bos(L->lc->tok);
        st = push_piece(L, PC_PIECE_TEXT, PC_ROOT, -1, bos, 1, root->line, root->col);
        if (st != PC_OK) return st;
    }
    pc_status st = lay_children(L, root, PC_ROOT, true, true);
    if (st == PC_OK) st = flush(L, PC_ROOT);
    if (st != PC_OK) return st;
    L->s->length = L->pos; /* take_positions kept it below the context */
    L->s->end_turns = L->turns;
    return PC_OK;
}

pc_status pc_schema_layout(pc_pml_doc *doc, const pc_layout_ctx *lc, pc_schema **out, pc_error *err) {
    *out = NULL;
    pc_schema *s = calloc(1, sizeof *s);
    if (!s) {
        pc_pml_doc_free(doc);
        return pc_fail(err, PC_ERR_NOMEM, "out of memory laying out a schema");
    }
    s->doc = doc;
    s->name = strdup(doc->root->name ? doc->root->name : "");
    s->placeholder = lc->placeholder;
    lay L = {.lc = lc, .s = s, .err = err, .file = doc->name, .turns = pc_chat_turns_start(lc->chat)};
    pc_status st = s->name ? lay_root(&L, doc->root) : pc_fail(err, PC_ERR_NOMEM, "out of memory");
    pc_piece_text_free(&L.acc);
    if (st != PC_OK) {
        pc_schema_free(s);
        return st;
    }
    *out = s;
    return PC_OK;
}

void pc_schema_free(pc_schema *s) {
    if (!s) return;
    for (int32_t i = 0; i < s->n_pieces; i++) {
        free(s->pieces[i].tokens);
        free(s->pieces[i].label);
    }
    free(s->pieces);
    free(s->modules);
    free(s->unions);
    free(s->params);
    free(s->name);
    free(s->tenant);
    pc_pml_doc_free(s->doc);
    free(s);
}

int32_t pc_schema_find_module(const pc_schema *s, int32_t scope, const char *name) {
    for (int32_t i = 0; i < s->n_modules; i++)
        if (s->modules[i].parent == scope && strcmp(s->modules[i].name, name) == 0) return i;
    return -1;
}

int32_t pc_schema_find_param(const pc_schema *s, int32_t module, const char *name) {
    for (int32_t i = 0; i < s->n_params; i++)
        if (s->params[i].module == module && strcmp(s->params[i].name, name) == 0) return i;
    return -1;
}
