/* tree.c - reading a parsed PML tree: names, attributes, scoped look-ups,
 * walking, and freeing the document.
 *
 * Invariant: nothing here writes to a tree, so any number of threads may
 * read one document at once. */
#include <string.h>

#include "pml/arena.h"
#include "pml/pml.h"

void pc_pml_doc_free(pc_pml_doc *doc) {
    if (!doc) return;
    pc_pml_arena_free(doc->arena); /* the doc itself lives in its arena */
}

const char *pc_pml_kind_name(pc_pml_kind k) {
    switch (k) {
    case PC_PML_SCHEMA: return "schema";
    case PC_PML_MODULE: return "module";
    case PC_PML_UNION: return "union";
    case PC_PML_PARAMETER: return "parameter";
    case PC_PML_TEXT: return "text";
    case PC_PML_ROLE: return "role";
    case PC_PML_PROMPT: return "prompt";
    case PC_PML_REF: return "module reference";
    }
    return "?";
}

const char *pc_pml_attr_get(const pc_pml_node *n, const char *name) {
    if (!n || !name) return NULL;
    for (size_t i = 0; i < n->n_attrs; i++)
        if (strcmp(n->attrs[i].name, name) == 0) return n->attrs[i].value;
    return NULL;
}

/* Searches n's children for kind `want` named name, descending through role
 * tags and (when through_unions) unions, never into modules or references. */
static const pc_pml_node *find_in(const pc_pml_node *n, pc_pml_kind want, const char *name, bool through_unions) {
    for (size_t i = 0; i < n->n_children; i++) {
        const pc_pml_node *c = n->children[i];
        if (c->kind == want && c->name && strcmp(c->name, name) == 0) return c;
        if (c->kind == PC_PML_ROLE || (through_unions && c->kind == PC_PML_UNION)) {
            const pc_pml_node *f = find_in(c, want, name, through_unions);
            if (f) return f;
        }
    }
    return NULL;
}

const pc_pml_node *pc_pml_find_module(const pc_pml_node *scope, const char *name) {
    if (!scope || !name) return NULL;
    bool prompt = scope->kind == PC_PML_PROMPT || scope->kind == PC_PML_REF;
    return find_in(scope, prompt ? PC_PML_REF : PC_PML_MODULE, name, !prompt);
}

const pc_pml_node *pc_pml_find_parameter(const pc_pml_node *scope, const char *name) {
    if (!scope || !name) return NULL;
    return find_in(scope, PC_PML_PARAMETER, name, false);
}

static bool walk(const pc_pml_node *n, uint32_t depth, pc_pml_visit_fn fn, void *user) {
    pc_pml_walk_action a = fn(n, depth, user);
    if (a == PC_PML_WALK_STOP) return false;
    if (a == PC_PML_WALK_SKIP) return true;
    for (size_t i = 0; i < n->n_children; i++)
        if (!walk(n->children[i], depth + 1, fn, user)) return false;
    return true;
}

bool pc_pml_walk(const pc_pml_node *n, pc_pml_visit_fn fn, void *user) {
    if (!n || !fn) return true;
    return walk(n, 0, fn, user);
}
