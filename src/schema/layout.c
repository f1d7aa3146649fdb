/* layout.c - PML syntax tree to positions and tokens (see schema.h for the rules).
 *
 * One recursive walk. Text and role markers of a scope accumulate in a buffer
 * until a module, union or parameter boundary (or the scope's end) flushes
 * them as one piece, exactly as the prototype's parser saw the text once role
 * tags had been replaced by template strings. */
#include <stdlib.h>
#include <string.h>

#include "pml/text.h"
#include "schema/schema.h"
#include "util/buf.h"
#include "util/error.h"

typedef struct lay {
    const pc_layout_ctx *lc;
    pc_schema *s;
    pc_error *err;
    const char *file;
    pc_buf acc;           /* the current text run */
    bool acc_has;
    uint32_t acc_line, acc_col;
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

static pc_status acc_append(lay *L, const char *t, size_t n, const pc_pml_node *at) {
    if (!L->acc_has) {
        L->acc_has = true;
        L->acc_line = at->line;
        L->acc_col = at->col;
    }
    return pc_buf_append(&L->acc, t, n) ? PC_OK : oom(L);
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

/* Ends the current text run of scope `owner`: compact, tokenize, place. */
static pc_status flush(lay *L, int32_t owner) {
    if (!L->acc_has) return PC_OK;
    L->acc_has = false;
    char *c = malloc(L->acc.len + 1);
    if (!c) return oom(L);
    size_t n = pc_pml_compact(L->acc.data, L->acc.len, c);
    L->acc.len = 0;
    pc_tokens t = {0};
    pc_status st = n ? tokenize(L, c, n, true, L->acc_line, L->acc_col, &t) : PC_OK;
    free(c);
    if (st == PC_OK && t.n) st = take_positions(L, (int64_t)t.n, (int64_t)t.n, L->acc_line, L->acc_col, "text", NULL);
    if (st != PC_OK || t.n == 0) {
        pc_tokens_free(&t);
        return st;
    }
    return push_piece(L, PC_PIECE_TEXT, owner, -1, t.ids, (int32_t)t.n, L->acc_line, L->acc_col);
}

static pc_status lay_children(lay *L, const pc_pml_node *n, int32_t owner, bool scaffold, bool cache);

static pc_status lay_role(lay *L, const pc_pml_node *n, int32_t owner, bool scaffold, bool cache) {
    if (L->lc->chat == PC_CHAT_UNKNOWN)
        return pc_fail(L->err, PC_ERR_UNSUPPORTED,
                       "%s:%u:%u: <%s> needs the model's chat template, which is not recognised (choose one with "
                       "--chat-template)", L->file, n->line, n->col, n->name);
    pc_chat_role r = n->role == PC_PML_ROLE_SYSTEM ? PC_ROLE_SYSTEM
                     : n->role == PC_PML_ROLE_USER ? PC_ROLE_USER : PC_ROLE_ASSISTANT;
    pc_chat_markers mk = pc_chat_role_markers(L->lc->chat, r);
    pc_status st = acc_append(L, mk.begin, strlen(mk.begin), n);
    if (st == PC_OK) st = lay_children(L, n, owner, scaffold, cache);
    if (st == PC_OK) st = acc_append(L, mk.end, strlen(mk.end), n);
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
            pc_tokens_free(t);
            return pc_fail(L->err, PC_ERR_FORMAT, "%s:%u:%u: scaffold of parameter '%s' is %zu tokens, longer than its length %u",
                           L->file, n->line, n->col, n->name, t->n, n->length);
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

static pc_status lay_union(lay *L, const pc_pml_node *n, int32_t owner, bool scaffold, bool cache) {
    pc_schema *s = L->s;
    if (reserve_union(L) != PC_OK) return PC_ERR_NOMEM;
    int32_t uid = s->n_unions++;
    const int32_t start = L->pos;
    s->unions[uid] = (pc_union){.parent = owner, .start = start, .scaffold = -1, .node = n};
    int32_t longest = 0;
    for (size_t i = 0; i < n->n_children; i++) {
        const pc_pml_node *m = n->children[i];
        if (m->kind != PC_PML_MODULE) continue;
        bool is_sc = n->scaffold && strcmp(n->scaffold, m->name) == 0;
        if (is_sc) s->unions[uid].scaffold = s->n_modules;
        L->pos = start;
        pc_status st = lay_module(L, m, owner, uid, scaffold && is_sc, cache);
        if (st != PC_OK) return st;
        longest = L->pos - start > longest ? L->pos - start : longest;
    }
    s->unions[uid].len = longest;
    L->pos = start + longest;
    return PC_OK;
}

static pc_status lay_children(lay *L, const pc_pml_node *n, int32_t owner, bool scaffold, bool cache) {
    pc_status st = PC_OK;
    for (size_t i = 0; i < n->n_children && st == PC_OK; i++) {
        const pc_pml_node *c = n->children[i];
        switch (c->kind) {
        case PC_PML_TEXT: st = acc_append(L, c->raw, c->raw_len, c); break;
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
    lay L = {.lc = lc, .s = s, .err = err, .file = doc->name};
    pc_status st = s->name ? lay_root(&L, doc->root) : pc_fail(err, PC_ERR_NOMEM, "out of memory");
    pc_buf_free(&L.acc);
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
