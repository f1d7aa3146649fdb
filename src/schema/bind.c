/* bind.c - a parsed prompt against a laid-out schema, giving a plan.
 *
 * Imports: the root's pieces always; a module's own pieces when the prompt
 * names it; nested modules only when named. Unions: at most one member may be
 * named. Arguments replace their parameter's scaffold fill at the parameter's
 * positions. The prompt's text and chat tags are tokenized as one piece from
 * position L, the conversation continuing where the schema's left it (pml.h,
 * "Chat tags"): only markers become control tokens. */
#include <stdlib.h>
#include <string.h>

#include "pml/text.h"
#include "schema/piece_text.h"
#include "schema/plan.h"
#include "util/buf.h"
#include "util/error.h"

typedef struct binder {
    const pc_schema *s;
    const pc_bind_ctx *bc;
    const char *req;
    pc_error *err;
    bool *imported;      /* [n_modules] */
    int32_t *union_pick; /* [n_unions] member chosen, or -1 */
    pc_tokens *args;     /* [n_params] */
    bool *has_arg;       /* [n_params] */
    pc_piece_text text;  /* the prompt's own text and chat markers */
    pc_chat_turns turns; /* the conversation, continuing where the schema left it */
    bool text_after_turn;/* the prompt has text after its last chat turn */
} binder;

static const char *scope_name(const pc_schema *s, int32_t scope) {
    return scope == PC_ROOT ? s->name : s->modules[scope].name;
}

static pc_status bind_args(binder *B, const pc_pml_node *ref, int32_t m) {
    for (size_t i = 0; i < ref->n_attrs; i++) {
        const pc_pml_attr *a = &ref->attrs[i];
        int32_t p = pc_schema_find_param(B->s, m, a->name);
        if (p < 0)
            return pc_fail(B->err, PC_ERR_NOT_FOUND, "%s:%u:%u: module '%s' has no parameter '%s'", B->req, ref->line,
                           ref->col, B->s->modules[m].name, a->name);
        pc_tokens *t = &B->args[p];
        t->n = 0;
        pc_error e = {0};
        if (pc_tokenize(B->bc->tok, a->value, strlen(a->value), false, false, t, &e) != PC_OK)
            return pc_fail(B->err, PC_ERR_FORMAT, "%s:%u:%u: argument '%s': %s", B->req, ref->line, ref->col, a->name, e.msg);
        if ((int32_t)t->n > B->s->params[p].len)
            return pc_fail(B->err, PC_ERR_RANGE,
                           "%s:%u:%u: argument for parameter '%s' is %zu tokens, longer than its length %d", B->req,
                           ref->line, ref->col, a->name, t->n, B->s->params[p].len);
        B->has_arg[p] = true;
    }
    return PC_OK;
}

static pc_status bind_ref(binder *B, const pc_pml_node *ref, int32_t scope);

static pc_status oom(binder *B) { return pc_fail(B->err, PC_ERR_NOMEM, "%s: out of memory binding the prompt", B->req); }

static pc_status add_marker(binder *B, const char *marker, const pc_pml_node *at) {
    return pc_piece_text_marker(&B->text, marker, at->line, at->col) ? PC_OK : oom(B);
}

/* The turn is left open when it is the prompt's last element and an
 * assistant's: generation then continues that answer (see pml.h). */
static pc_status bind_role(binder *B, const pc_pml_node *n, bool last) {
    if (B->bc->chat == PC_CHAT_UNKNOWN)
        return pc_fail(B->err, PC_ERR_UNSUPPORTED, "%s:%u:%u: <%s> needs a recognised chat template", B->req, n->line,
                       n->col, n->name);
    if (n->self_closing && n->role == PC_PML_ROLE_SYSTEM && !B->bc->default_system) return PC_OK; /* <system/> */
    const pc_chat_role r = n->role == PC_PML_ROLE_SYSTEM ? PC_ROLE_SYSTEM
                           : n->role == PC_PML_ROLE_USER ? PC_ROLE_USER : PC_ROLE_ASSISTANT;
    const char *open = NULL;
    pc_error e = {0};
    if (pc_chat_turn_open(&B->turns, r, &open, &e) != PC_OK)
        return pc_fail(B->err, PC_ERR_FORMAT, "%s:%u:%u: <%s>: %s", B->req, n->line, n->col, n->name, e.msg);
    pc_status st = add_marker(B, open, n);
    const bool system_default = n->self_closing && r == PC_ROLE_SYSTEM;
    const char *def = B->bc->default_system;
    if (st == PC_OK && system_default && !pc_piece_text_add(&B->text, def, strlen(def), n->line, n->col)) st = oom(B);
    for (size_t i = 0; i < n->n_children && st == PC_OK; i++)
        if (!pc_piece_text_add(&B->text, n->children[i]->raw, n->children[i]->raw_len, n->line, n->col)) st = oom(B);
    if (st == PC_OK && !(last && r == PC_ROLE_ASSISTANT)) st = add_marker(B, pc_chat_turn_close(&B->turns), n);
    B->text_after_turn = false;
    return st;
}

/* The prompt's children: module references, and its own text and chat tags. */
static pc_status bind_children(binder *B, const pc_pml_node *n, int32_t scope) {
    pc_status st = PC_OK;
    for (size_t i = 0; i < n->n_children && st == PC_OK; i++) {
        const pc_pml_node *c = n->children[i];
        if (c->kind == PC_PML_REF) {
            st = bind_ref(B, c, scope);
        } else if (c->kind == PC_PML_TEXT) {
            if (!pc_piece_text_add(&B->text, c->raw, c->raw_len, c->line, c->col)) st = oom(B);
            B->text_after_turn = true;
        } else if (c->kind == PC_PML_ROLE) {
            st = bind_role(B, c, i + 1 == n->n_children);
        } else {
            st = pc_fail(B->err, PC_ERR_FORMAT, "%s:%u:%u: unexpected <%s> in a prompt", B->req, c->line, c->col,
                         pc_pml_kind_name(c->kind));
        }
    }
    return st;
}

static pc_status bind_ref(binder *B, const pc_pml_node *ref, int32_t scope) {
    const pc_schema *s = B->s;
    int32_t m = pc_schema_find_module(s, scope, ref->name);
    if (m < 0)
        return pc_fail(B->err, PC_ERR_NOT_FOUND, "%s:%u:%u: no module '%s' in %s '%s'", B->req, ref->line, ref->col,
                       ref->name, scope == PC_ROOT ? "schema" : "module", scope_name(s, scope));
    int32_t u = s->modules[m].union_id;
    if (u >= 0) {
        if (B->union_pick[u] >= 0 && B->union_pick[u] != m)
            return pc_fail(B->err, PC_ERR_INVALID, "%s:%u:%u: '%s' and '%s' are members of one union; select at most one",
                           B->req, ref->line, ref->col, s->modules[B->union_pick[u]].name, ref->name);
        B->union_pick[u] = m;
    }
    B->imported[m] = true;
    pc_status st = bind_args(B, ref, m);
    for (size_t i = 0; i < ref->n_children && st == PC_OK; i++) {
        const pc_pml_node *c = ref->children[i];
        if (c->kind == PC_PML_REF)
            st = bind_ref(B, c, m);
        else if (!(c->kind == PC_PML_TEXT && pc_pml_all_space(c->raw, c->raw_len)))
            st = pc_fail(B->err, PC_ERR_FORMAT, "%s:%u:%u: only module selections may appear inside <%s>", B->req,
                         c->line, c->col, ref->name);
    }
    return st;
}

static pc_status push_item(pc_plan *p, pc_plan_item it, pc_error *err) {
    pc_plan_item *a = pc_array_reserve(p->items, &p->cap, (size_t)p->n + 1, sizeof *p->items);
    if (!a) return pc_fail(err, PC_ERR_NOMEM, "out of memory building a plan");
    p->items = a;
    p->items[p->n++] = it;
    if (it.kind == PC_ITEM_CACHED) {
        p->cached_tokens += it.n;
    } else {
        p->fresh_tokens += it.n;
    }
    return PC_OK;
}

static int32_t *own_tokens(pc_plan *p, pc_tokens *t, pc_error *err) {
    int32_t **a = pc_array_reserve(p->owned, &p->cap_owned, (size_t)p->n_owned + 1, sizeof *p->owned);
    if (!a) {
        pc_fail(err, PC_ERR_NOMEM, "out of memory building a plan");
        return NULL;
    }
    p->owned = a;
    p->owned[p->n_owned++] = t->ids;
    int32_t *ids = t->ids;
    memset(t, 0, sizeof *t);
    return ids;
}

/* One item for piece i when its owner is imported. */
static pc_status plan_piece(binder *B, pc_plan *p, int32_t i) {
    const pc_piece *pc = &B->s->pieces[i];
    const bool cached = pc->owner == PC_ROOT || B->s->modules[pc->owner].cache;
    if (pc->kind == PC_PIECE_PARAM_FILL && B->has_arg[pc->param]) {
        pc_tokens *a = &B->args[pc->param];
        int32_t n = (int32_t)a->n;
        if (n == 0) return PC_OK;
        int32_t *ids = own_tokens(p, a, B->err);
        if (!ids) return PC_ERR_NOMEM;
        return push_item(p, (pc_plan_item){.kind = PC_ITEM_ARGUMENT, .start = B->s->params[pc->param].start, .n = n,
                                           .tokens = ids, .piece = -1}, B->err);
    }
    if (pc->n == 0) return PC_OK;
    return push_item(p, (pc_plan_item){.kind = cached ? PC_ITEM_CACHED : PC_ITEM_UNCACHED, .start = pc->start, .n = pc->n,
                                       .tokens = pc->tokens, .piece = i}, B->err);
}

/* The prompt's own text from position L on, with the generation prompt when
 * the conversation ends in a closed user turn. */
static pc_status plan_prompt_text(binder *B, pc_plan *p, const pc_pml_node *root) {
    if (B->bc->chat != PC_CHAT_UNKNOWN && pc_chat_turns_await_reply(&B->turns) && !B->text_after_turn &&
        add_marker(B, pc_chat_generation_prompt(B->bc->chat), root) != PC_OK)
        return PC_ERR_NOMEM;
    if (!B->text.has) return PC_OK;
    pc_tokens t = {0};
    pc_error e = {0};
    pc_status st = pc_piece_text_end(&B->text, B->bc->tok, &t, &e);
    if (st != PC_OK) {
        pc_tokens_free(&t);
        return pc_fail(B->err, st, "%s: prompt text: %s", B->req, e.msg);
    }
    if (t.n == 0) return PC_OK;
    int32_t nt = (int32_t)t.n;
    int32_t *ids = own_tokens(p, &t, B->err);
    if (!ids) return PC_ERR_NOMEM;
    return push_item(p, (pc_plan_item){.kind = PC_ITEM_PROMPT, .start = B->s->length, .n = nt, .tokens = ids,
                                       .piece = -1}, B->err);
}

static pc_status bind_all(binder *B, const pc_pml_doc *prompt, pc_plan *out) {
    const pc_pml_node *root = prompt->root;
    if (root->kind != PC_PML_PROMPT)
        return pc_fail(B->err, PC_ERR_FORMAT, "%s:%u:%u: expected a <prompt> document", B->req, root->line, root->col);
    if (!root->name || strcmp(root->name, B->s->name) != 0)
        return pc_fail(B->err, PC_ERR_NOT_FOUND, "%s:%u:%u: prompt is for schema '%s', not '%s'", B->req, root->line,
                       root->col, root->name ? root->name : "(none)", B->s->name);
    pc_status st = bind_children(B, root, PC_ROOT);
    for (int32_t i = 0; i < B->s->n_pieces && st == PC_OK; i++) {
        int32_t o = B->s->pieces[i].owner;
        if (o == PC_ROOT || B->imported[o]) st = plan_piece(B, out, i);
    }
    if (st == PC_OK) st = plan_prompt_text(B, out, root);
    return st;
}

pc_status pc_plan_bind(const pc_schema *s, const pc_pml_doc *prompt, const pc_bind_ctx *bc, pc_plan *out, pc_error *err) {
    memset(out, 0, sizeof *out);
    if (!s->keyed) return pc_fail(err, PC_ERR_INVALID, "schema '%s' has no store keys", s->name);
    binder B = {.s = s, .bc = bc, .req = prompt->name, .err = err, .turns = s->end_turns};
    size_t nm = (size_t)s->n_modules + 1, nu = (size_t)s->n_unions + 1, np = (size_t)s->n_params + 1;
    B.imported = calloc(nm, sizeof *B.imported);
    B.union_pick = malloc(nu * sizeof *B.union_pick);
    B.args = calloc(np, sizeof *B.args);
    B.has_arg = calloc(np, sizeof *B.has_arg);
    pc_status st = PC_OK;
    if (!B.imported || !B.union_pick || !B.args || !B.has_arg)
        st = pc_fail(err, PC_ERR_NOMEM, "%s: out of memory binding the prompt", B.req);
    for (size_t i = 0; st == PC_OK && i < nu; i++) B.union_pick[i] = -1;
    if (st == PC_OK) st = bind_all(&B, prompt, out);
    for (size_t i = 0; B.args && i < np; i++) pc_tokens_free(&B.args[i]);
    free(B.imported);
    free(B.union_pick);
    free(B.args);
    free(B.has_arg);
    pc_piece_text_free(&B.text);
    if (st != PC_OK) pc_plan_free(out);
    return st;
}

pc_status pc_plan_fetch(pc_plan *p, const pc_schema *s, pc_encoder *enc, pc_error *err) {
    p->store = enc->store;
    pc_status st = pc_piece_kv_init(&p->kv, s, err);
    for (int32_t i = 0; i < p->n && st == PC_OK; i++) {
        pc_plan_item *it = &p->items[i];
        if (it->kind != PC_ITEM_CACHED) continue;
        st = pc_piece_obtain(&p->kv, s, enc, it->piece, err);
        if (st == PC_OK) it->kv = pc_piece_kv_span(&p->kv, it->piece);
    }
    return st;
}

void pc_plan_free(pc_plan *p) {
    pc_piece_kv_release(&p->kv, p->store);
    for (int32_t i = 0; i < p->n_owned; i++) free(p->owned[i]);
    free(p->items);
    free(p->owned);
    memset(p, 0, sizeof *p);
}
