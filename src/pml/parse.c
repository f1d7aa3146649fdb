/* parse.c - PML text to a pc_pml_node tree, through libxml2's SAX2 interface.
 *
 * Flow: check size and UTF-8 -> scan.c lists markup positions (and, in
 * lenient mode, escapes stray '<' and '&') -> libxml2 parses from memory with
 * our own SAX handlers, which build the tree directly (no libxml2 DOM) and
 * check each element as it opens and closes.
 *
 * Safety invariants:
 *  1. libxml2 runs with XML_PARSE_NONET and without NOENT, DTDLOAD, DTDATTR
 *     or XINCLUDE; any DOCTYPE is refused (by the scan, and again by the
 *     internalSubset handler), getEntity knows no entity, so no entity is ever
 *     declared, loaded or expanded. Predefined entities and character
 *     references are the only references that decode. XML_PARSE_HUGE is on
 *     only so one text piece may pass libxml2's 10 MB lookup limit: the
 *     limits it lifts are replaced by ours (document size, depth <= 256), and
 *     the entity-amplification checks it lifts guard entities we never have.
 *  2. Errors go to this context's sax->serror only (libxml2 2.9.14 has no
 *     xmlCtxtSetErrorHandler; with sax->initialized == XML_SAX2_MAGIC and
 *     serror set, __xmlRaiseError never touches the global handlers). No
 *     global libxml2 state is written.
 *  3. The first failure wins and turns every later callback into a no-op; a
 *     failure found in a callback also stops the parser (xmlStopParser).
 *  4. Limits (size, depth, module count, tree memory) are checked before the
 *     thing that would exceed them is built.
 *
 * Whitespace: text pieces are compacted like the prototype (see pml.h); the
 * prototype wrote role tags as text substitutions before parsing and treated
 * comments as text - here role tags are nodes and comments are dropped (both
 * split text pieces), and `raw` keeps what is needed to reproduce it.
 */
#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/xmlerror.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>

#include "pml/arena.h"
#include "pml/pml.h"
#include "pml/scan.h"
#include "pml/src.h"
#include "pml/text.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/file.h"

#define LIBXML_MAX_DEPTH 256u /* our ceiling; libxml2 itself stops at 256, or 2048 with HUGE */
#define TREE_BUDGET_BASE ((size_t)256 << 20)

/* A node while its document is being parsed; n comes first so a bnode *
 * is the pc_pml_node * handed out. */
typedef struct bnode {
    pc_pml_node n;
    struct bnode *first, *last, *next; /* children, in document order */
    struct bnode *up;                  /* mutable view of n.parent */
    size_t count;
    bool tag_self_closing; /* no end-tag event will follow */
} bnode;

typedef struct parser {
    xmlParserCtxtPtr ctxt;
    bool schema;
    const char *name;
    const char *text; /* original text, BOM removed */
    size_t len;
    size_t *lines; /* offsets of line starts */
    size_t n_lines;
    size_t memo_line, memo_off, memo_col; /* last position computed (see pos_of) */
    pc_pml_options opt;
    const char *src_root;
    pc_pml_scan scan;
    size_t next_event;
    bool events_ok; /* false once the scan and libxml2 disagree: fall back to libxml2's cursor */
    size_t markup_end;
    pc_pml_arena *arena;
    pc_pml_doc *doc;
    bnode *root, *cur;
    uint32_t depth, n_modules;
    pc_buf text_buf; /* pending character data */
    size_t tstart;
    uint32_t tline, tcol; /* position of pending text when events are off */
    bool tpending;
    pc_pml_warning *warns;
    size_t n_warns, cap_warns;
    pc_error *err;    /* may be NULL: status keeps the code either way */
    pc_status status; /* of the first failure */
    bool failed;
} parser;

static const char *const SCHEMA_NAMES[] = {"schema", "module", "union", "parameter",
                                           "system", "user", "assistant", NULL};

/* ---- positions and reports ------------------------------------------------ */

static pc_status build_lines(parser *p) {
    size_t n = 1;
    for (size_t i = 0; i < p->len; i++) n += p->text[i] == '\n';
    p->lines = malloc(n * sizeof *p->lines);
    if (!p->lines) return pc_fail(p->err, PC_ERR_NOMEM, "%s: out of memory", p->name);
    p->lines[0] = 0;
    p->n_lines = 1;
    for (size_t i = 0; i < p->len; i++)
        if (p->text[i] == '\n') p->lines[p->n_lines++] = i + 1;
    return PC_OK;
}

/* Columns are counted from the last position asked for when it lies earlier
 * on the same line: positions are asked for in document order, so a long
 * single-line document costs linear time, not quadratic. */
static void pos_of(parser *p, size_t off, uint32_t *line, uint32_t *col) {
    if (off > p->len) off = p->len;
    size_t lo = 0, hi = p->n_lines;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (p->lines[mid] <= off) lo = mid;
        else hi = mid;
    }
    size_t from = p->lines[lo], base = 1;
    if (p->memo_line == lo && p->memo_off >= from && p->memo_off <= off) {
        from = p->memo_off;
        base = p->memo_col;
    }
    size_t c = base + pc_pml_utf8_count(p->text + from, off - from);
    p->memo_line = lo;
    p->memo_off = off;
    p->memo_col = c;
    *line = (uint32_t)(lo + 1);
    *col = c > UINT32_MAX ? UINT32_MAX : (uint32_t)c;
}

static void cursor_pos(const parser *p, uint32_t *line, uint32_t *col) {
    const xmlParserInput *in = p->ctxt->input;
    *line = in && in->line > 0 ? (uint32_t)in->line : 1;
    *col = in && in->col > 0 ? (uint32_t)in->col : 1;
}

static void vfail(parser *p, uint32_t line, uint32_t col, pc_status code, const char *fmt, va_list ap) {
    if (p->failed) return;
    char what[PC_ERROR_MSG_MAX];
    vsnprintf(what, sizeof what, fmt, ap);
    pc_fail(p->err, code, "%s:%u:%u: %s", p->name, line, col, what);
    p->status = code;
    p->failed = true;
    if (p->ctxt) xmlStopParser(p->ctxt);
}

__attribute__((format(printf, 5, 6)))
static void fail_at(parser *p, uint32_t line, uint32_t col, pc_status code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vfail(p, line, col, code, fmt, ap);
    va_end(ap);
}

__attribute__((format(printf, 4, 5)))
static void warn_at(parser *p, uint32_t line, uint32_t col, const char *fmt, ...) {
    char what[PC_ERROR_MSG_MAX], full[PC_ERROR_MSG_MAX + 64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    int n = snprintf(full, sizeof full, "%s:%u:%u: %s", p->name, line, col, what);
    pc_pml_warning *w = pc_array_reserve(p->warns, &p->cap_warns, p->n_warns + 1, sizeof *p->warns);
    if (!w) return; /* a lost warning is not worth failing the parse */
    p->warns = w;
    const char *msg = pc_pml_arena_strndup(p->arena, full, n < 0 ? 0 : strnlen(full, sizeof full));
    if (msg) p->warns[p->n_warns++] = (pc_pml_warning){line, col, msg};
}

/* libxml2 columns count the escaped text; give the original column. */
static uint32_t unescape_col(parser *p, uint32_t line, uint32_t col) {
    uint32_t shift = 0;
    for (size_t i = 0; i < p->scan.n_escapes; i++) {
        uint32_t l, c;
        pos_of(p, p->scan.escapes[i].off, &l, &c);
        if (l == line && c + shift < col) shift += (uint32_t)p->scan.escapes[i].extra;
    }
    return col > shift ? col - shift : 1;
}

static void on_xml_error(void *ctx, xmlErrorPtr e) {
    xmlParserCtxtPtr ctxt = ctx;
    parser *p = ctxt->_private;
    char msg[PC_ERROR_MSG_MAX];
    snprintf(msg, sizeof msg, "%s", e->message ? e->message : "unknown XML error");
    size_t l = strlen(msg);
    while (l > 0 && (msg[l - 1] == '\n' || msg[l - 1] == ' ')) msg[--l] = '\0';
    uint32_t line = e->line > 0 ? (uint32_t)e->line : 1;
    uint32_t col = unescape_col(p, line, e->int2 > 0 ? (uint32_t)e->int2 : 1);
    if (e->level == XML_ERR_WARNING) {
        warn_at(p, line, col, "XML warning: %s", msg);
        return;
    }
    if (p->failed) return;
    /* Only record: libxml2 disables SAX itself after a fatal error, and our
     * handlers ignore everything once failed is set. */
    pc_fail(p->err, PC_ERR_FORMAT, "%s:%u:%u: malformed XML: %s", p->name, line, col, msg);
    p->status = PC_ERR_FORMAT;
    p->failed = true;
}

/* ---- tree building -------------------------------------------------------- */

static void *alloc_or_fail(parser *p, size_t size) {
    void *m = pc_pml_arena_alloc(p->arena, size);
    if (!m) {
        uint32_t line, col;
        cursor_pos(p, &line, &col);
        fail_at(p, line, col, PC_ERR_NOMEM, "the document's tree is over its memory budget");
    }
    return m;
}

static char *dup_or_fail(parser *p, const char *s, size_t n) {
    char *d = pc_pml_arena_strndup(p->arena, s, n);
    if (!d) {
        uint32_t line, col;
        cursor_pos(p, &line, &col);
        fail_at(p, line, col, PC_ERR_NOMEM, "the document's tree is over its memory budget");
    }
    return d;
}

static bnode *new_node(parser *p, pc_pml_kind kind, uint32_t line, uint32_t col) {
    bnode *b = alloc_or_fail(p, sizeof *b);
    if (!b) return NULL;
    b->n.kind = kind;
    b->n.line = line;
    b->n.col = col;
    b->n.cache = true;
    b->up = p->cur;
    b->n.parent = p->cur ? &p->cur->n : NULL;
    if (p->cur) {
        if (p->cur->last) p->cur->last->next = b;
        else p->cur->first = b;
        p->cur->last = b;
        p->cur->count++;
    }
    return b;
}

static bool seal_children(parser *p, bnode *b) {
    if (!b->count) return true;
    const pc_pml_node **arr = alloc_or_fail(p, b->count * sizeof *arr);
    if (!arr) return false;
    size_t i = 0;
    for (bnode *c = b->first; c; c = c->next) arr[i++] = &c->n;
    b->n.children = (const pc_pml_node *const *)arr;
    b->n.n_children = b->count;
    return true;
}

static bool set_text(parser *p, bnode *t, const char *raw, size_t n) {
    char *r = dup_or_fail(p, raw, n);
    char *c = r ? alloc_or_fail(p, n + 1) : NULL;
    if (!c) return false;
    t->n.raw = r;
    t->n.raw_len = n;
    t->n.text_len = pc_pml_compact(raw, n, c);
    c[t->n.text_len] = '\0';
    t->n.text = c;
    return true;
}

/* ---- names and attributes ------------------------------------------------- */

/* The prototype's rule: ^[a-zA-Z_][a-zA-Z0-9_\-.]*$ */
static bool valid_name(const char *s) {
    unsigned char c = (unsigned char)s[0];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_')) return false;
    for (s++; *s; s++) {
        c = (unsigned char)*s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
              c == '-' || c == '.'))
            return false;
    }
    return true;
}

static pc_pml_role role_of(const char *name) {
    if (strcmp(name, "system") == 0) return PC_PML_ROLE_SYSTEM;
    if (strcmp(name, "user") == 0) return PC_PML_ROLE_USER;
    if (strcmp(name, "assistant") == 0) return PC_PML_ROLE_ASSISTANT;
    return PC_PML_ROLE_NONE;
}

/* libxml2 hands SAX2 attribute values with every '&' written as "&#38;"
 * (replaceEntities is off, deliberately); no other '&' can occur in them, so
 * turning each "&#38;" back into '&' gives the exact value. */
static size_t decode_amp(char *v, size_t n) {
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] == '&' && n - i >= 5 && memcmp(v + i, "&#38;", 5) == 0) {
            v[o++] = '&';
            i += 4;
        } else {
            v[o++] = v[i];
        }
    }
    v[o] = '\0';
    return o;
}

/* attributes: nb quintuples (localname, prefix, URI, value, end). */
static bool copy_attrs(parser *p, bnode *b, int nb, const xmlChar **attributes) {
    if (nb <= 0) return true;
    pc_pml_attr *a = alloc_or_fail(p, (size_t)nb * sizeof *a);
    if (!a) return false;
    for (int i = 0; i < nb; i++) {
        const xmlChar **q = attributes + 5 * i;
        if (q[1]) {
            fail_at(p, b->n.line, b->n.col, PC_ERR_FORMAT,
                    "<%s>: prefixed attribute %s:%s (namespaces are not part of PML)",
                    b->n.name ? b->n.name : pc_pml_kind_name(b->n.kind), (const char *)q[1], (const char *)q[0]);
            return false;
        }
        char *name = dup_or_fail(p, (const char *)q[0], strlen((const char *)q[0]));
        char *val = name ? dup_or_fail(p, (const char *)q[3], (size_t)(q[4] - q[3])) : NULL;
        if (!val) return false;
        decode_amp(val, (size_t)(q[4] - q[3]));
        a[i] = (pc_pml_attr){name, val};
    }
    b->n.attrs = a;
    b->n.n_attrs = (size_t)nb;
    return true;
}

/* Fails unless every attribute of b is one of allowed (NULL-terminated). */
static bool only_attrs(parser *p, bnode *b, const char *elem, const char *const *allowed, const char *listed) {
    for (size_t i = 0; i < b->n.n_attrs; i++) {
        const char *const *k = allowed;
        while (*k && strcmp(*k, b->n.attrs[i].name) != 0) k++;
        if (!*k) {
            fail_at(p, b->n.line, b->n.col, PC_ERR_FORMAT, "<%s> has no attribute \"%s\" (%s)", elem,
                    b->n.attrs[i].name, listed);
            return false;
        }
    }
    return true;
}

static bool need_name(parser *p, bnode *b, const char *elem) {
    const char *v = pc_pml_attr_get(&b->n, "name");
    if (!v) {
        fail_at(p, b->n.line, b->n.col, PC_ERR_FORMAT, "<%s> needs a name attribute", elem);
        return false;
    }
    if (!valid_name(v)) {
        fail_at(p, b->n.line, b->n.col, PC_ERR_FORMAT,
                "<%s> name \"%s\" is not a valid name (a letter or _, then letters, digits, _, - or .)", elem, v);
        return false;
    }
    b->n.name = v;
    return true;
}

static bool count_module(parser *p, bnode *b) {
    if (p->n_modules >= p->opt.max_modules) {
        fail_at(p, b->n.line, b->n.col, PC_ERR_RANGE, "more than %u modules (the limit, pc_pml_options.max_modules)",
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
        fail_at(p, m->n.line, m->n.col, PC_ERR_INVALID,
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
        fail_at(p, m->n.line, m->n.col, st, "module \"%s\": %s", m->n.name, e.msg);
        return false;
    }
    bool ok = true;
    if (len > 0) { /* the prototype skipped an empty file's piece */
        bnode *saved = p->cur;
        p->cur = m;
        bnode *t = new_node(p, PC_PML_TEXT, m->n.line, m->n.col);
        p->cur = saved;
        ok = t && set_text(p, t, text, len);
        if (ok) {
            t->n.from_src = true;
            t->n.src_path = dup_or_fail(p, resolved, strlen(resolved));
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
        fail_at(p, b->n.line, b->n.col, PC_ERR_FORMAT, "module name \"%s\" is reserved for the chat tag <%s>",
                b->n.name, b->n.name);
        return false;
    }
    const char *cache = pc_pml_attr_get(&b->n, "cache");
    if (cache && strcmp(cache, "true") != 0 && strcmp(cache, "false") != 0) {
        fail_at(p, b->n.line, b->n.col, PC_ERR_FORMAT, "module \"%s\": cache must be \"true\" or \"false\", got \"%s\"",
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
        fail_at(p, b->n.line, b->n.col, PC_ERR_FORMAT, "parameter \"%s\" needs a length attribute (in tokens)", b->n.name);
        return false;
    }
    if (!parse_length(len, &b->n.length)) {
        fail_at(p, b->n.line, b->n.col, PC_ERR_FORMAT,
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
        fail_at(p, line, col, PC_ERR_FORMAT, "the root element must be <schema name=\"...\">, found <%s>", name);
        return false;
    }
    pc_pml_kind pk = parent->n.kind;
    if (pk == PC_PML_PARAMETER) {
        fail_at(p, line, col, PC_ERR_FORMAT, "<parameter> holds nothing, found <%s> inside it", name);
        return false;
    }
    if (pk == PC_PML_UNION && strcmp(name, "module") != 0) {
        fail_at(p, line, col, PC_ERR_FORMAT, "<union> holds only <module> elements, found <%s>", name);
        return false;
    }
    if (strcmp(name, "module") == 0) { *kind = PC_PML_MODULE; return true; }
    if (strcmp(name, "union") == 0) { *kind = PC_PML_UNION; return true; }
    if (strcmp(name, "parameter") == 0) {
        if (scope_of(parent)->n.kind == PC_PML_SCHEMA) {
            fail_at(p, line, col, PC_ERR_FORMAT, "<parameter> is not allowed directly in <schema>; put it in a <module>");
            return false;
        }
        *kind = PC_PML_PARAMETER;
        return true;
    }
    if (role_of(name) != PC_PML_ROLE_NONE) {
        if (in_role(parent)) {
            fail_at(p, line, col, PC_ERR_FORMAT, "chat tags do not nest: <%s> inside a chat tag", name);
            return false;
        }
        *kind = PC_PML_ROLE;
        return true;
    }
    if (strcmp(name, "schema") == 0)
        fail_at(p, line, col, PC_ERR_FORMAT, "<schema> may only be the root element");
    else
        fail_at(p, line, col, PC_ERR_FORMAT,
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
        fail_at(p, line, col, PC_ERR_FORMAT, "the root element must be <prompt schema=\"...\">, found <%s>", name);
        return false;
    }
    if (parent->n.kind == PC_PML_ROLE) {
        fail_at(p, line, col, PC_ERR_FORMAT, "chat tags in a prompt hold only text, found <%s> inside <%s>", name,
                parent->n.name);
        return false;
    }
    if (role_of(name) != PC_PML_ROLE_NONE) {
        if (parent->n.kind != PC_PML_PROMPT) {
            fail_at(p, line, col, PC_ERR_FORMAT, "<%s> in a prompt must be a direct child of <prompt>", name);
            return false;
        }
        *kind = PC_PML_ROLE;
        return true;
    }
    if (!valid_name(name)) {
        fail_at(p, line, col, PC_ERR_FORMAT,
                "<%s> is not a module name (a letter or _, then letters, digits, _, - or .)", name);
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
            fail_at(p, b->n.line, b->n.col, PC_ERR_FORMAT, "<prompt> schema \"%s\" is not a valid schema name", s);
            return false;
        }
        b->n.name = s;
        return true;
    }
    case PC_PML_ROLE: return only_attrs(p, b, b->n.name, none, "chat tags take no attributes");
    case PC_PML_REF:
        for (size_t i = 0; i < b->n.n_attrs; i++) {
            if (!valid_name(b->n.attrs[i].name)) {
                fail_at(p, b->n.line, b->n.col, PC_ERR_FORMAT, "<%s>: \"%s\" is not a parameter name", b->n.name,
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
        fail_at(p, scope->n.line, scope->n.col, PC_ERR_NOMEM, "out of memory checking names");
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
        fail_at(p, dup->node->n.line, dup->node->n.col, PC_ERR_FORMAT,
                "%s \"%s\" is already defined in this scope (at line %u, column %u)", what, dup->name,
                first->node->n.line, first->node->n.col);
    free(v);
}

static void check_union(parser *p, const bnode *u) {
    if (!u->count) {
        fail_at(p, u->n.line, u->n.col, PC_ERR_FORMAT, "<union> holds no <module>");
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
    fail_at(p, u->n.line, u->n.col, PC_ERR_FORMAT, "<union> scaffold \"%s\" names none of its members (%s)",
            u->n.scaffold, members);
}

static void check_closed(parser *p, const bnode *b) {
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

/* ---- text ------------------------------------------------------------------ */

static void flush_text(parser *p) {
    if (!p->tpending || p->failed) return;
    p->tpending = false;
    uint32_t line = p->tline, col = p->tcol;
    if (p->events_ok) pos_of(p, p->tstart, &line, &col);
    bool blank = pc_pml_all_space(p->text_buf.data, p->text_buf.len);
    pc_pml_kind k = p->cur->n.kind;
    if (k == PC_PML_UNION || k == PC_PML_PARAMETER || k == PC_PML_REF) {
        if (!blank)
            fail_at(p, line, col, PC_ERR_FORMAT, "%s",
                    k == PC_PML_UNION       ? "text inside <union>: a union holds only <module> elements"
                    : k == PC_PML_PARAMETER ? "text inside <parameter>: a parameter holds nothing"
                                            : "text inside a module reference: it holds only nested references");
        return;
    }
    if (blank && !p->schema) return; /* prompts drop whitespace between markup */
    bnode *t = new_node(p, PC_PML_TEXT, line, col);
    if (t) set_text(p, t, p->text_buf.data, p->text_buf.len);
}

static void on_chars(void *ctx, const xmlChar *ch, int len) {
    parser *p = ((xmlParserCtxtPtr)ctx)->_private;
    if (p->failed || len <= 0 || !p->cur) return;
    if (!p->tpending) {
        p->tpending = true;
        p->text_buf.len = 0;
        p->tstart = p->markup_end;
        cursor_pos(p, &p->tline, &p->tcol);
    }
    if (!pc_buf_append(&p->text_buf, ch, (size_t)len))
        fail_at(p, p->tline, p->tcol, PC_ERR_NOMEM, "out of memory holding text");
}

/* ---- SAX handlers ----------------------------------------------------------- */

static const pc_pml_event *take_event(parser *p, pc_pml_mark kind) {
    if (p->events_ok && p->next_event < p->scan.n_events && p->scan.events[p->next_event].kind == kind)
        return &p->scan.events[p->next_event++];
    p->events_ok = false;
    return NULL;
}

static void on_start(void *ctx, const xmlChar *localname, const xmlChar *prefix, const xmlChar *URI,
                     int nb_namespaces, const xmlChar **namespaces, int nb_attributes, int nb_defaulted,
                     const xmlChar **attributes) {
    (void)namespaces;
    (void)nb_defaulted;
    parser *p = ((xmlParserCtxtPtr)ctx)->_private;
    flush_text(p);
    if (p->failed) return;
    const char *name = (const char *)localname;
    uint32_t line, col;
    const pc_pml_event *ev = take_event(p, PC_PML_MARK_START);
    if (ev) {
        pos_of(p, ev->begin, &line, &col);
        p->markup_end = ev->end;
    } else {
        cursor_pos(p, &line, &col);
    }
    if (prefix || URI || nb_namespaces) {
        fail_at(p, line, col, PC_ERR_FORMAT, "<%s%s%s>: namespaces (prefixes, xmlns) are not part of PML",
                prefix ? (const char *)prefix : "", prefix ? ":" : "", name);
        return;
    }
    if (p->depth >= p->opt.max_depth) {
        fail_at(p, line, col, PC_ERR_RANGE, "elements nest deeper than %u levels (the limit, pc_pml_options.max_depth)",
                p->opt.max_depth);
        return;
    }
    pc_pml_kind kind;
    bool ok = p->schema ? schema_kind(p, p->cur, name, line, col, &kind) : prompt_kind(p, p->cur, name, line, col, &kind);
    bnode *b = ok ? new_node(p, kind, line, col) : NULL;
    if (!b) return;
    b->tag_self_closing = ev && ev->self_closing;
    if (kind == PC_PML_ROLE) {
        b->n.role = role_of(name);
        b->n.name = name[0] == 's' ? "system" : name[0] == 'u' ? "user" : "assistant";
        b->n.self_closing = b->tag_self_closing;
    } else if (kind == PC_PML_REF) {
        b->n.name = dup_or_fail(p, name, strlen(name));
    }
    if (!copy_attrs(p, b, nb_attributes, attributes)) return;
    ok = p->schema ? schema_element(p, b, kind) : prompt_element(p, b, kind);
    if (!ok) return;
    if (!p->root) p->root = b;
    p->cur = b;
    p->depth++;
    if (kind == PC_PML_MODULE && b->n.src) load_src(p, b);
}

static void on_end(void *ctx, const xmlChar *localname, const xmlChar *prefix, const xmlChar *URI) {
    (void)localname;
    (void)prefix;
    (void)URI;
    parser *p = ((xmlParserCtxtPtr)ctx)->_private;
    flush_text(p);
    if (p->failed || !p->cur) return;
    bnode *b = p->cur;
    if (!b->tag_self_closing) {
        const pc_pml_event *ev = take_event(p, PC_PML_MARK_END);
        if (ev) p->markup_end = ev->end;
    }
    check_closed(p, b);
    if (p->failed || !seal_children(p, b)) return;
    p->cur = b->up;
    p->depth--;
}

static void on_markup(parser *p, pc_pml_mark kind) {
    flush_text(p);
    if (p->failed) return;
    const pc_pml_event *ev = take_event(p, kind);
    if (ev) p->markup_end = ev->end;
}

static void on_comment(void *ctx, const xmlChar *value) {
    (void)value;
    on_markup(((xmlParserCtxtPtr)ctx)->_private, PC_PML_MARK_COMMENT);
}

static void on_pi(void *ctx, const xmlChar *target, const xmlChar *data) {
    (void)target;
    (void)data;
    on_markup(((xmlParserCtxtPtr)ctx)->_private, PC_PML_MARK_PI);
}

static void refuse_dtd(parser *p) {
    uint32_t line, col;
    cursor_pos(p, &line, &col);
    fail_at(p, line, col, PC_ERR_FORMAT,
            "DOCTYPE, DTD and entity declarations are not allowed in PML (entities are never expanded)");
}

static void on_internal_subset(void *ctx, const xmlChar *name, const xmlChar *ext, const xmlChar *sys) {
    (void)name;
    (void)ext;
    (void)sys;
    refuse_dtd(((xmlParserCtxtPtr)ctx)->_private);
}

static void on_entity_decl(void *ctx, const xmlChar *name, int type, const xmlChar *pub, const xmlChar *sys,
                           xmlChar *content) {
    (void)name;
    (void)type;
    (void)pub;
    (void)sys;
    (void)content;
    refuse_dtd(((xmlParserCtxtPtr)ctx)->_private);
}

/* No entity is known beyond the predefined ones, which libxml2 resolves
 * before asking: an undeclared reference is then a well-formedness error. */
static xmlEntityPtr on_get_entity(void *ctx, const xmlChar *name) {
    (void)ctx;
    (void)name;
    return NULL;
}

static void init_sax(xmlSAXHandler *sax) {
    memset(sax, 0, sizeof *sax);
    sax->initialized = XML_SAX2_MAGIC;
    sax->startElementNs = on_start;
    sax->endElementNs = on_end;
    sax->characters = on_chars;
    sax->cdataBlock = on_chars;
    sax->ignorableWhitespace = on_chars; /* whitespace is content in PML */
    sax->comment = on_comment;
    sax->processingInstruction = on_pi;
    sax->internalSubset = on_internal_subset;
    sax->entityDecl = on_entity_decl;
    sax->getEntity = on_get_entity;
    sax->getParameterEntity = on_get_entity;
    sax->serror = on_xml_error;
}

/* ---- driver ------------------------------------------------------------------ */

static void set_defaults(pc_pml_options *o, const pc_pml_options *in) {
    if (in) *o = *in;
    else memset(o, 0, sizeof *o);
    if (!o->max_bytes) o->max_bytes = PC_PML_DEFAULT_MAX_BYTES;
    if (o->max_bytes > PC_PML_MAX_BYTES_LIMIT) o->max_bytes = PC_PML_MAX_BYTES_LIMIT;
    if (!o->max_depth) o->max_depth = PC_PML_DEFAULT_MAX_DEPTH;
    if (o->max_depth > LIBXML_MAX_DEPTH) o->max_depth = LIBXML_MAX_DEPTH;
    if (!o->max_modules) o->max_modules = PC_PML_DEFAULT_MAX_MODULES;
    if (!o->max_src_bytes) o->max_src_bytes = PC_PML_DEFAULT_MAX_SRC_BYTES;
}

/* Checks that need no parser: size, encoding, DOCTYPE; then scans. */
static pc_status precheck(parser *p) {
    uint32_t line, col;
    if (p->len > p->opt.max_bytes) {
        pos_of(p, p->opt.max_bytes, &line, &col);
        return pc_fail(p->err, PC_ERR_RANGE,
                       "%s:%u:%u: document is longer than the limit of %zu bytes (pc_pml_options.max_bytes); "
                       "it passes the limit here", p->name, line, col, p->opt.max_bytes);
    }
    size_t bad = 0;
    if (!pc_pml_utf8_valid(p->text, p->len, &bad)) {
        pos_of(p, bad, &line, &col);
        return pc_fail(p->err, PC_ERR_FORMAT, "%s:%u:%u: byte 0x%02x is not UTF-8 text (PML is UTF-8, without NUL)",
                       p->name, line, col, (unsigned char)p->text[bad]);
    }
    pc_status st = pc_pml_scan_text(p->text, p->len, p->opt.lenient, p->schema ? SCHEMA_NAMES : NULL, &p->scan, p->err);
    if (st != PC_OK) return st;
    if (p->scan.has_doctype) {
        pos_of(p, p->scan.doctype_off, &line, &col);
        return pc_fail(p->err, PC_ERR_FORMAT,
                       "%s:%u:%u: DOCTYPE, DTD and entity declarations are not allowed in PML (entities are never expanded)",
                       p->name, line, col);
    }
    for (size_t i = 0; i < p->scan.n_escapes; i++) {
        const pc_pml_escape *e = &p->scan.escapes[i];
        pos_of(p, e->off, &line, &col);
        warn_at(p, line, col, "lenient: escaped a raw '%c' that does not start PML markup", e->ch);
    }
    return PC_OK;
}

static pc_status run_libxml(parser *p) {
    xmlSAXHandler sax;
    init_sax(&sax);
    p->ctxt = xmlNewParserCtxt();
    if (!p->ctxt) return pc_fail(p->err, PC_ERR_NOMEM, "%s: out of memory creating the XML parser", p->name);
    memcpy(p->ctxt->sax, &sax, sizeof sax);
    p->ctxt->_private = p;
    const char *buf = p->scan.out ? p->scan.out : p->text;
    size_t n = p->scan.out ? p->scan.out_len : p->len;
    if (n > INT_MAX) return pc_fail(p->err, PC_ERR_RANGE, "%s: document too large for libxml2", p->name);
    int options = XML_PARSE_NONET | XML_PARSE_IGNORE_ENC | XML_PARSE_HUGE;
    xmlDocPtr d = xmlCtxtReadMemory(p->ctxt, buf, (int)n, NULL, "UTF-8", options);
    if (d) xmlFreeDoc(d); /* never built by our handlers; freed defensively */
    if (p->failed) return p->status;
    if (!p->ctxt->wellFormed || !p->root || p->cur) {
        uint32_t line, col;
        cursor_pos(p, &line, &col);
        return pc_fail(p->err, PC_ERR_FORMAT, "%s:%u:%u: malformed XML: %s", p->name, line, col,
                       p->root ? "the document ends inside an element" : "no root element");
    }
    return PC_OK;
}

static pc_status finish(parser *p) {
    pc_pml_doc *doc = p->doc;
    doc->root = &p->root->n;
    doc->n_modules = p->n_modules;
    doc->name = pc_pml_arena_strndup(p->arena, p->name, strlen(p->name));
    if (p->n_warns) {
        pc_pml_warning *w = pc_pml_arena_alloc(p->arena, p->n_warns * sizeof *w);
        if (w) memcpy(w, p->warns, p->n_warns * sizeof *w);
        doc->warnings = w;
        doc->n_warnings = w ? p->n_warns : 0;
    }
    if (!doc->name) return pc_fail(p->err, PC_ERR_NOMEM, "%s: out of memory", p->name);
    return PC_OK;
}

static pc_status parse_doc(bool schema, const char *text, size_t len, const char *name, const pc_pml_options *opt,
                           const char *file_dir, pc_pml_doc **out, pc_error *err) {
    if (out) *out = NULL;
    if (!out || (!text && len)) return pc_fail(err, PC_ERR_INVALID, "pc_pml_parse: NULL argument");
    parser p = {.schema = schema, .name = name ? name : "<buffer>", .text = text ? text : "", .len = len,
                .err = err, .events_ok = true, .memo_col = 1};
    set_defaults(&p.opt, opt);
    p.src_root = p.opt.src_root ? p.opt.src_root : file_dir;
    if (p.len >= 3 && memcmp(p.text, "\xEF\xBB\xBF", 3) == 0) { /* a UTF-8 BOM is not content */
        p.text += 3;
        p.len -= 3;
    }
    pc_status st = build_lines(&p);
    size_t budget = TREE_BUDGET_BASE + (p.len < p.opt.max_bytes ? p.len : p.opt.max_bytes) * 32;
    p.arena = st == PC_OK ? pc_pml_arena_new(budget) : NULL;
    p.doc = p.arena ? pc_pml_arena_alloc(p.arena, sizeof *p.doc) : NULL;
    if (st == PC_OK && !p.doc) st = pc_fail(err, PC_ERR_NOMEM, "%s: out of memory", p.name);
    if (st == PC_OK) st = precheck(&p);
    if (st == PC_OK) st = run_libxml(&p);
    if (st == PC_OK) st = finish(&p);
    if (p.ctxt) xmlFreeParserCtxt(p.ctxt);
    pc_pml_scan_free(&p.scan);
    free(p.lines);
    pc_buf_free(&p.text_buf);
    free(p.warns);
    if (st != PC_OK) {
        pc_pml_arena_free(p.arena);
        return st;
    }
    p.doc->arena = p.arena;
    *out = p.doc;
    return PC_OK;
}

pc_status pc_pml_parse_schema(const char *text, size_t len, const char *name, const pc_pml_options *opt,
                              pc_pml_doc **out, pc_error *err) {
    return parse_doc(true, text, len, name, opt, NULL, out, err);
}

pc_status pc_pml_parse_prompt(const char *text, size_t len, const char *name, const pc_pml_options *opt,
                              pc_pml_doc **out, pc_error *err) {
    return parse_doc(false, text, len, name, opt, NULL, out, err);
}

pc_status pc_pml_parse_schema_file(const char *path, const pc_pml_options *opt, pc_pml_doc **out, pc_error *err) {
    if (out) *out = NULL;
    if (!path || !out) return pc_fail(err, PC_ERR_INVALID, "pc_pml_parse_schema_file: NULL argument");
    pc_pml_options o;
    set_defaults(&o, opt);
    char *text = NULL;
    size_t len = 0;
    pc_status st = pc_file_read(path, o.max_bytes, 0, &text, &len, err);
    if (st != PC_OK) return st;
    char *dir = strdup(path);
    char *slash = dir ? strrchr(dir, '/') : NULL;
    if (dir && !slash) strcpy(dir, ".");
    else if (slash == dir) dir[1] = '\0';
    else if (slash) *slash = '\0';
    st = dir ? parse_doc(true, text, len, path, &o, dir, out, err) : pc_fail(err, PC_ERR_NOMEM, "%s: out of memory", path);
    free(dir);
    free(text);
    return st;
}
