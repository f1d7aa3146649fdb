/* elements.c - PML's rules for each element: which element may stand where,
 * which attributes it takes and what they must hold, names unique in their
 * scope, unions that name a member as scaffold, and a module's src= text.
 *
 * The parse driver (parse.c) calls these as elements open and close; every
 * rule fails through pc_pml_fail_at with the element's line and column. What
 * is PML lives here; how XML is read lives in the driver. */
#include <stdlib.h>
#include <string.h>

#include "pml/parse_internal.h"
#include "pml/src.h"
#include "pml/text.h"
#include "util/error.h"

/* ---- names and attributes ------------------------------------------------- */

/* XML 1.0's NameStartChar, less ':' (namespaces are not part of PML). */
static bool name_start(uint32_t c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (c >= 0xC0 && c <= 0xD6) ||
           (c >= 0xD8 && c <= 0xF6) || (c >= 0xF8 && c <= 0x2FF) || (c >= 0x370 && c <= 0x37D) ||
           (c >= 0x37F && c <= 0x1FFF) || (c >= 0x200C && c <= 0x200D) || (c >= 0x2070 && c <= 0x218F) ||
           (c >= 0x2C00 && c <= 0x2FEF) || (c >= 0x3001 && c <= 0xD7FF) || (c >= 0xF900 && c <= 0xFDCF) ||
           (c >= 0xFDF0 && c <= 0xFFFD) || (c >= 0x10000 && c <= 0xEFFFF);
}

/* XML 1.0's NameChar, less ':'. */
static bool name_char(uint32_t c) {
    return name_start(c) || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == 0xB7 ||
           (c >= 0x300 && c <= 0x36F) || (c >= 0x203F && c <= 0x2040);
}

/* PML.md: names follow XML's rules (letters of any script, digits, _, -, .;
 * "unit.py" and "café" are names), which the prototype's ASCII rule
 * ^[a-zA-Z_][a-zA-Z0-9_\-.]*$ is a subset of. */
static bool valid_name(const char *s) {
    const size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        size_t len = 0;
        uint32_t c = pc_pml_utf8_decode((const unsigned char *)s + i, n - i, &len);
        if (!len || !(i == 0 ? name_start(c) : name_char(c))) return false;
        i += len;
    }
    return n > 0;
}

static pc_pml_role role_of(const char *name) {
    if (strcmp(name, "system") == 0) return PC_PML_ROLE_SYSTEM;
    if (strcmp(name, "user") == 0) return PC_PML_ROLE_USER;
    if (strcmp(name, "assistant") == 0) return PC_PML_ROLE_ASSISTANT;
    return PC_PML_ROLE_NONE;
}

/* Fails unless every attribute of b is one of allowed (NULL-terminated). */
static bool only_attrs(parser *p, bnode *b, const char *elem, const char *const *allowed, const char *listed) {
    for (size_t i = 0; i < b->n.n_attrs; i++) {
        const char *const *k = allowed;
        while (*k && strcmp(*k, b->n.attrs[i].name) != 0) k++;
        if (!*k) {
            pc_pml_fail_at(p, b->n.line, b->n.col, PC_ERR_FORMAT, "<%s> has no attribute \"%s\" (%s)", elem,
                           b->n.attrs[i].name, listed);
            return false;
        }
    }
    return true;
}

static bool need_name(parser *p, bnode *b, const char *elem) {
    const char *v = pc_pml_attr_get(&b->n, "name");
    if (!v) {
        pc_pml_fail_at(p, b->n.line, b->n.col, PC_ERR_FORMAT, "<%s> needs a name attribute", elem);
        return false;
    }
    if (!valid_name(v)) {
        pc_pml_fail_at(p, b->n.line, b->n.col, PC_ERR_FORMAT,
                       "<%s> name \"%s\" is not a valid name (an XML name: a letter or _, then letters, digits, _, - or .)",
                       elem, v);
        return false;
    }
    b->n.name = v;
    return true;
}

static bool count_module(parser *p, bnode *b) {
    if (p->n_modules >= p->opt.max_modules) {
        pc_pml_fail_at(p, b->n.line, b->n.col, PC_ERR_RANGE,
                       "more than %u modules (the limit, pc_pml_options.max_modules)",
                       p->opt.max_modules);
        return false;
    }
    p->n_modules++;
    return true;
}

/* ---- schema elements ------------------------------------------------------ */

static bool in_role(const bnode *b) {
    for (; b; b = b->up)
        if (b->n.kind == PC_PML_ROLE) return true;
    return false;
}

/* The nearest MODULE or SCHEMA at or above b. */
static const bnode *scope_of(const bnode *b) {
    while (b && b->n.kind != PC_PML_MODULE && b->n.kind != PC_PML_SCHEMA) b = b->up;
    return b;
}

static bool load_src(parser *p, bnode *m) {
    if (!p->src_root) {
        pc_pml_fail_at(p, m->n.line, m->n.col, PC_ERR_INVALID,
                       "module \"%s\": src=\"%s\" needs a folder to resolve against (parse the schema from a file "
                       "or set pc_pml_options.src_root)", m->n.name, m->n.src);
        return false;
    }
    char *text = NULL, *resolved = NULL;
    size_t len = 0;
    pc_error e;
    pc_error_clear(&e);
    pc_status st = pc_pml_src_read(p->src_root, m->n.src, p->opt.max_src_bytes, &text, &len, &resolved, &e);
    if (st != PC_OK) {
        pc_pml_fail_at(p, m->n.line, m->n.col, st, "module \"%s\": %s", m->n.name, e.msg);
        return false;
    }
    bool ok = true;
    if (len > 0) { /* the prototype skipped an empty file's piece */
        bnode *saved = p->cur;
        p->cur = m;
        bnode *t = pc_pml_new_node(p, PC_PML_TEXT, m->n.line, m->n.col);
        p->cur = saved;
        ok = t && pc_pml_set_text(p, t, text, len);
        if (ok) {
            t->n.from_src = true;
            t->n.src_path = pc_pml_dup(p, resolved, strlen(resolved));
            ok = t->n.src_path != NULL;
        }
    }
    free(text);
    free(resolved);
    return ok;
}

static bool module_attrs(parser *p, bnode *b) {
    static const char *const allowed[] = {"name", "cache", "src", NULL};
    if (!only_attrs(p, b, "module", allowed, "expected name, cache, src") || !need_name(p, b, "module"))
        return false;
    if (role_of(b->n.name) != PC_PML_ROLE_NONE) {
        pc_pml_fail_at(p, b->n.line, b->n.col, PC_ERR_FORMAT, "module name \"%s\" is reserved for the chat tag <%s>",
                       b->n.name, b->n.name);
        return false;
    }
    const char *cache = pc_pml_attr_get(&b->n, "cache");
    if (cache && strcmp(cache, "true") != 0 && strcmp(cache, "false") != 0) {
        pc_pml_fail_at(p, b->n.line, b->n.col, PC_ERR_FORMAT,
                       "module \"%s\": cache must be \"true\" or \"false\", got \"%s\"",
                       b->n.name, cache);
        return false;
    }
    b->n.cache = !cache || strcmp(cache, "true") == 0;
    b->n.src = pc_pml_attr_get(&b->n, "src");
    return count_module(p, b);
}

static bool parse_length(const char *v, uint32_t *out) {
    while (*v == ' ') v++;
    uint64_t x = 0;
    const char *d = v;
    while (*v >= '0' && *v <= '9') {
        x = x * 10 + (uint64_t)(*v - '0');
        if (x > PC_PML_MAX_PARAM_LENGTH) return false;
        v++;
    }
    while (*v == ' ') v++;
    if (v == d || *v || x == 0) return false;
    *out = (uint32_t)x;
    return true;
}

static bool parameter_attrs(parser *p, bnode *b) {
    static const char *const allowed[] = {"name", "length", "scaffold", NULL};
    if (!only_attrs(p, b, "parameter", allowed, "expected name, length, scaffold") || !need_name(p, b, "parameter"))
        return false;
    const char *len = pc_pml_attr_get(&b->n, "length");
    if (!len) {
        pc_pml_fail_at(p, b->n.line, b->n.col, PC_ERR_FORMAT,
                       "parameter \"%s\" needs a length attribute (in tokens)", b->n.name);
        return false;
    }
    if (!parse_length(len, &b->n.length)) {
        pc_pml_fail_at(p, b->n.line, b->n.col, PC_ERR_FORMAT,
                       "parameter \"%s\": length must be a whole number from 1 to %u, got \"%s\"", b->n.name,
                       PC_PML_MAX_PARAM_LENGTH, len);
        return false;
    }
    b->n.scaffold = pc_pml_attr_get(&b->n, "scaffold");
    return true;
}

/* Kind of a schema element named `name` under parent, or fails. */
static bool schema_kind(parser *p, const bnode *parent, const char *name, uint32_t line, uint32_t col,
                        pc_pml_kind *kind) {
    if (!parent) {
        if (strcmp(name, "schema") == 0) { *kind = PC_PML_SCHEMA; return true; }
        pc_pml_fail_at(p, line, col, PC_ERR_FORMAT, "the root element must be <schema name=\"...\">, found <%s>", name);
        return false;
    }
    pc_pml_kind pk = parent->n.kind;
    if (pk == PC_PML_PARAMETER) {
        pc_pml_fail_at(p, line, col, PC_ERR_FORMAT, "<parameter> holds nothing, found <%s> inside it", name);
        return false;
    }
    if (pk == PC_PML_UNION && strcmp(name, "module") != 0) {
        pc_pml_fail_at(p, line, col, PC_ERR_FORMAT, "<union> holds only <module> elements, found <%s>", name);
        return false;
    }
    if (strcmp(name, "module") == 0) { *kind = PC_PML_MODULE; return true; }
    if (strcmp(name, "union") == 0) { *kind = PC_PML_UNION; return true; }
    if (strcmp(name, "parameter") == 0) {
        if (scope_of(parent)->n.kind == PC_PML_SCHEMA) {
            pc_pml_fail_at(p, line, col, PC_ERR_FORMAT,
                           "<parameter> is not allowed directly in <schema>; put it in a <module>");
            return false;
        }
        *kind = PC_PML_PARAMETER;
        return true;
    }
    if (role_of(name) != PC_PML_ROLE_NONE) {
        if (in_role(parent)) {
            pc_pml_fail_at(p, line, col, PC_ERR_FORMAT, "chat tags do not nest: <%s> inside a chat tag", name);
            return false;
        }
        *kind = PC_PML_ROLE;
        return true;
    }
    if (strcmp(name, "schema") == 0)
        pc_pml_fail_at(p, line, col, PC_ERR_FORMAT, "<schema> may only be the root element");
    else
        pc_pml_fail_at(p, line, col, PC_ERR_FORMAT,
                       "unknown element <%s> in a schema (expected module, union, parameter, system, user or assistant)", name);
    return false;
}

static bool schema_element(parser *p, bnode *b, pc_pml_kind kind) {
    static const char *const schema_allowed[] = {"name", NULL};
    static const char *const union_allowed[] = {"scaffold", NULL};
    static const char *const none[] = {NULL};
    switch (kind) {
    case PC_PML_SCHEMA:
        return only_attrs(p, b, "schema", schema_allowed, "expected name") && need_name(p, b, "schema");
    case PC_PML_MODULE: return module_attrs(p, b);
    case PC_PML_UNION:
        if (!only_attrs(p, b, "union", union_allowed, "expected scaffold")) return false;
        b->n.scaffold = pc_pml_attr_get(&b->n, "scaffold");
        return true;
    case PC_PML_PARAMETER: return parameter_attrs(p, b);
    case PC_PML_ROLE:
        return only_attrs(p, b, b->n.name, none, "chat tags take no attributes");
    default: return false;
    }
}

/* ---- prompt elements ------------------------------------------------------ */

static bool prompt_kind(parser *p, const bnode *parent, const char *name, uint32_t line, uint32_t col,
                        pc_pml_kind *kind) {
    if (!parent) {
        if (strcmp(name, "prompt") == 0) { *kind = PC_PML_PROMPT; return true; }
        pc_pml_fail_at(p, line, col, PC_ERR_FORMAT,
                       "the root element must be <prompt schema=\"...\">, found <%s>", name);
        return false;
    }
    if (parent->n.kind == PC_PML_ROLE) {
        pc_pml_fail_at(p, line, col, PC_ERR_FORMAT,
                       "chat tags in a prompt hold only text, found <%s> inside <%s>", name,
                       parent->n.name);
        return false;
    }
    if (role_of(name) != PC_PML_ROLE_NONE) {
        if (parent->n.kind != PC_PML_PROMPT) {
            pc_pml_fail_at(p, line, col, PC_ERR_FORMAT, "<%s> in a prompt must be a direct child of <prompt>", name);
            return false;
        }
        *kind = PC_PML_ROLE;
        return true;
    }
    if (!valid_name(name)) {
        pc_pml_fail_at(p, line, col, PC_ERR_FORMAT,
                       "<%s> is not a module name (an XML name: a letter or _, then letters, digits, _, - or .)", name);
        return false;
    }
    *kind = PC_PML_REF;
    return true;
}

static bool prompt_element(parser *p, bnode *b, pc_pml_kind kind) {
    static const char *const prompt_allowed[] = {"schema", NULL};
    static const char *const none[] = {NULL};
    switch (kind) {
    case PC_PML_PROMPT: {
        if (!only_attrs(p, b, "prompt", prompt_allowed, "expected schema")) return false;
        const char *s = pc_pml_attr_get(&b->n, "schema");
        if (s && !valid_name(s)) {
            pc_pml_fail_at(p, b->n.line, b->n.col, PC_ERR_FORMAT,
                           "<prompt> schema \"%s\" is not a valid schema name", s);
            return false;
        }
        b->n.name = s;
        return true;
    }
    case PC_PML_ROLE: return only_attrs(p, b, b->n.name, none, "chat tags take no attributes");
    case PC_PML_REF:
        for (size_t i = 0; i < b->n.n_attrs; i++) {
            if (!valid_name(b->n.attrs[i].name)) {
                pc_pml_fail_at(p, b->n.line, b->n.col, PC_ERR_FORMAT, "<%s>: \"%s\" is not a parameter name", b->n.name,
                               b->n.attrs[i].name);
                return false;
            }
        }
        return count_module(p, b);
    default: return false;
    }
}

/* ---- closing checks ------------------------------------------------------- */

typedef struct named { const char *name; const bnode *node; } named;

static int named_cmp(const void *a, const void *b) {
    const named *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c) return c;
    if (x->node->n.line != y->node->n.line) return x->node->n.line < y->node->n.line ? -1 : 1;
    return x->node->n.col < y->node->n.col ? -1 : x->node->n.col > y->node->n.col;
}

/* Collects the names of `want` nodes visible in b's scope: through unions
 * (for modules) and role tags, never into another module. */
static void collect(const bnode *b, pc_pml_kind want, named *out, size_t *n) {
    for (const bnode *c = b->first; c; c = c->next) {
        if (c->n.kind == want) out[(*n)++] = (named){c->n.name, c};
        else if (c->n.kind == PC_PML_ROLE || (c->n.kind == PC_PML_UNION && want == PC_PML_MODULE)) collect(c, want, out, n);
    }
}

static size_t count_in_scope(const bnode *b) {
    size_t n = 0;
    for (const bnode *c = b->first; c; c = c->next)
        n += (c->n.kind == PC_PML_ROLE || c->n.kind == PC_PML_UNION) ? count_in_scope(c) + 1 : 1;
    return n;
}

static void unique_in_scope(parser *p, const bnode *scope, pc_pml_kind want, const char *what) {
    size_t cap = count_in_scope(scope), n = 0;
    if (cap < 2) return;
    named *v = malloc(cap * sizeof *v);
    if (!v) {
        pc_pml_fail_at(p, scope->n.line, scope->n.col, PC_ERR_NOMEM, "out of memory checking names");
        return;
    }
    collect(scope, want, v, &n);
    qsort(v, n, sizeof *v, named_cmp);
    const named *dup = NULL, *first = NULL;
    for (size_t i = 1; i < n; i++) {
        if (strcmp(v[i].name, v[i - 1].name) != 0) continue;
        const bnode *d = v[i].node;
        if (!dup || d->n.line < dup->node->n.line || (d->n.line == dup->node->n.line && d->n.col < dup->node->n.col)) {
            dup = &v[i];
            size_t j = i - 1;
            while (j > 0 && strcmp(v[j - 1].name, v[i].name) == 0) j--;
            first = &v[j];
        }
    }
    if (dup)
        pc_pml_fail_at(p, dup->node->n.line, dup->node->n.col, PC_ERR_FORMAT,
                       "%s \"%s\" is already defined in this scope (at line %u, column %u)", what, dup->name,
                       first->node->n.line, first->node->n.col);
    free(v);
}

static void check_union(parser *p, const bnode *u) {
    if (!u->count) {
        pc_pml_fail_at(p, u->n.line, u->n.col, PC_ERR_FORMAT, "<union> holds no <module>");
        return;
    }
    if (!u->n.scaffold) return;
    char members[256] = "";
    size_t used = 0;
    for (const bnode *c = u->first; c; c = c->next) {
        if (strcmp(c->n.name, u->n.scaffold) == 0) return;
        int w = snprintf(members + used, sizeof members - used, "%s%s", used ? ", " : "", c->n.name);
        if (w > 0) used = used + (size_t)w < sizeof members ? used + (size_t)w : sizeof members - 1;
    }
    pc_pml_fail_at(p, u->n.line, u->n.col, PC_ERR_FORMAT, "<union> scaffold \"%s\" names none of its members (%s)",
                   u->n.scaffold, members);
}

void pc_pml_element_close(parser *p, const bnode *b) {
    switch (b->n.kind) {
    case PC_PML_UNION: check_union(p, b); break;
    case PC_PML_SCHEMA:
    case PC_PML_MODULE:
        unique_in_scope(p, b, PC_PML_MODULE, "module");
        unique_in_scope(p, b, PC_PML_PARAMETER, "parameter");
        break;
    case PC_PML_PROMPT:
    case PC_PML_REF: unique_in_scope(p, b, PC_PML_REF, "module reference"); break;
    default: break;
    }
}

/* ---- the entry points ------------------------------------------------------- */

bool pc_pml_element_kind(parser *p, const bnode *parent, const char *name, uint32_t line, uint32_t col,
                         pc_pml_kind *kind) {
    return p->schema ? schema_kind(p, parent, name, line, col, kind) : prompt_kind(p, parent, name, line, col, kind);
}

bool pc_pml_element_open(parser *p, bnode *b, const char *name) {
    if (b->n.kind == PC_PML_ROLE) {
        b->n.role = role_of(name);
        b->n.name = name[0] == 's' ? "system" : name[0] == 'u' ? "user" : "assistant";
        b->n.self_closing = b->tag_self_closing;
    } else if (b->n.kind == PC_PML_REF) {
        b->n.name = pc_pml_dup(p, name, strlen(name));
        if (!b->n.name) return false;
    }
    bool ok = p->schema ? schema_element(p, b, b->n.kind) : prompt_element(p, b, b->n.kind);
    if (ok && b->n.kind == PC_PML_MODULE && b->n.src) ok = load_src(p, b);
    return ok;
}
