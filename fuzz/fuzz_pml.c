/* fuzz_pml.c - libFuzzer target for the PML parser.
 *
 * Each input is parsed as a schema and as a prompt, strict and lenient, with
 * default and with tight limits. Every tree that comes back is walked and its
 * invariants checked (parent links, lengths, names, kinds under unions), so a
 * dangling pointer or a broken rule traps instead of passing silently. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "pml/pml.h"

static pc_pml_walk_action check_node(const pc_pml_node *n, uint32_t depth, void *user) {
    (void)user;
    (void)depth;
    for (size_t i = 0; i < n->n_children; i++)
        if (n->children[i]->parent != n) __builtin_trap();
    for (size_t i = 0; i < n->n_attrs; i++)
        if (strlen(n->attrs[i].name) == 0) __builtin_trap();
    switch (n->kind) {
    case PC_PML_TEXT:
        if (n->n_children || strlen(n->raw) != n->raw_len || strlen(n->text) != n->text_len ||
            n->text_len > n->raw_len || (n->raw_len && !n->text_len))
            __builtin_trap();
        break;
    case PC_PML_UNION:
        if (!n->n_children) __builtin_trap();
        for (size_t i = 0; i < n->n_children; i++)
            if (n->children[i]->kind != PC_PML_MODULE) __builtin_trap();
        break;
    case PC_PML_PARAMETER:
        if (n->n_children || n->length == 0 || n->length > PC_PML_MAX_PARAM_LENGTH) __builtin_trap();
        break;
    case PC_PML_MODULE:
    case PC_PML_REF: {
        /* names are unique in their scope, so the look-up finds this very node */
        const pc_pml_node *scope = n->parent;
        while (scope && (scope->kind == PC_PML_UNION || scope->kind == PC_PML_ROLE)) scope = scope->parent;
        if (!n->name || !scope || pc_pml_find_module(scope, n->name) != n) __builtin_trap();
        break;
    }
    default: break;
    }
    if (n->line == 0 || n->col == 0) __builtin_trap();
    return PC_PML_WALK_CONTINUE;
}

static void run(const uint8_t *data, size_t size, bool schema, const pc_pml_options *o) {
    pc_pml_doc *d = NULL;
    pc_error e;
    pc_status st = schema ? pc_pml_parse_schema((const char *)data, size, "fuzz", o, &d, &e)
                          : pc_pml_parse_prompt((const char *)data, size, "fuzz", o, &d, &e);
    if (st == PC_OK) {
        if (!d || !d->root) __builtin_trap();
        pc_pml_walk(d->root, check_node, NULL);
        for (size_t i = 0; i < d->n_warnings; i++)
            if (strlen(d->warnings[i].msg) == 0) __builtin_trap();
    } else if (d != NULL || e.code != st || strlen(e.msg) == 0) {
        __builtin_trap();
    }
    pc_pml_doc_free(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const pc_pml_options opts[] = {
        {.lenient = false},
        {.lenient = true},
        {.lenient = true, .max_depth = 6, .max_modules = 8, .max_bytes = 4096},
    };
    for (size_t i = 0; i < sizeof opts / sizeof *opts; i++) {
        run(data, size, true, &opts[i]);
        run(data, size, false, &opts[i]);
    }
    return 0;
}
