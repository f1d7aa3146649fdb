/* parse.c - the PML parse driver: PML text to a pc_pml_node tree, through
 * libxml2's SAX2 interface.
 *
 * Flow: check size and UTF-8 -> scan.c lists markup positions (and, in
 * lenient mode, escapes stray '<' and '&') -> libxml2 parses from memory with
 * our own SAX handlers, which build the tree directly (no libxml2 DOM); each
 * element is checked against PML's rules (elements.c) as it opens and closes.
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

#include "pml/parse_internal.h"
#include "pml/text.h"
#include "util/error.h"
#include "util/file.h"

#define LIBXML_MAX_DEPTH 256u /* our ceiling; libxml2 itself stops at 256, or 2048 with HUGE */
#define TREE_BUDGET_BASE ((size_t)256 << 20)

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
void pc_pml_fail_at(parser *p, uint32_t line, uint32_t col, pc_status code, const char *fmt, ...) {
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

void *pc_pml_alloc(parser *p, size_t size) {
    void *m = pc_pml_arena_alloc(p->arena, size);
    if (!m) {
        uint32_t line, col;
        cursor_pos(p, &line, &col);
        pc_pml_fail_at(p, line, col, PC_ERR_NOMEM, "the document's tree is over its memory budget");
    }
    return m;
}

char *pc_pml_dup(parser *p, const char *s, size_t n) {
    char *d = pc_pml_arena_strndup(p->arena, s, n);
    if (!d) {
        uint32_t line, col;
        cursor_pos(p, &line, &col);
        pc_pml_fail_at(p, line, col, PC_ERR_NOMEM, "the document's tree is over its memory budget");
    }
    return d;
}

bnode *pc_pml_new_node(parser *p, pc_pml_kind kind, uint32_t line, uint32_t col) {
    bnode *b = pc_pml_alloc(p, sizeof *b);
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
    const pc_pml_node **arr = pc_pml_alloc(p, b->count * sizeof *arr);
    if (!arr) return false;
    size_t i = 0;
    for (bnode *c = b->first; c; c = c->next) arr[i++] = &c->n;
    b->n.children = (const pc_pml_node *const *)arr;
    b->n.n_children = b->count;
    return true;
}

bool pc_pml_set_text(parser *p, bnode *t, const char *raw, size_t n) {
    char *r = pc_pml_dup(p, raw, n);
    char *c = r ? pc_pml_alloc(p, n + 1) : NULL;
    if (!c) return false;
    t->n.raw = r;
    t->n.raw_len = n;
    t->n.text_len = pc_pml_compact(raw, n, c);
    c[t->n.text_len] = '\0';
    t->n.text = c;
    return true;
}

/* ---- attributes ------------------------------------------------------------ */

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
static bool copy_attrs(parser *p, bnode *b, const char *elem, int nb, const xmlChar **attributes) {
    if (nb <= 0) return true;
    pc_pml_attr *a = pc_pml_alloc(p, (size_t)nb * sizeof *a);
    if (!a) return false;
    for (int i = 0; i < nb; i++) {
        const xmlChar **q = attributes + 5 * i;
        if (q[1]) {
            pc_pml_fail_at(p, b->n.line, b->n.col, PC_ERR_FORMAT,
                           "<%s>: prefixed attribute %s:%s (namespaces are not part of PML)",
                           elem, (const char *)q[1], (const char *)q[0]);
            return false;
        }
        char *name = pc_pml_dup(p, (const char *)q[0], strlen((const char *)q[0]));
        char *val = name ? pc_pml_dup(p, (const char *)q[3], (size_t)(q[4] - q[3])) : NULL;
        if (!val) return false;
        decode_amp(val, (size_t)(q[4] - q[3]));
        a[i] = (pc_pml_attr){name, val};
    }
    b->n.attrs = a;
    b->n.n_attrs = (size_t)nb;
    return true;
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
            pc_pml_fail_at(p, line, col, PC_ERR_FORMAT, "%s",
                           k == PC_PML_UNION       ? "text inside <union>: a union holds only <module> elements"
                           : k == PC_PML_PARAMETER ? "text inside <parameter>: a parameter holds nothing"
                                            : "text inside a module reference: it holds only nested references");
        return;
    }
    if (blank && !p->schema) return; /* prompts drop whitespace between markup */
    bnode *t = pc_pml_new_node(p, PC_PML_TEXT, line, col);
    if (t) pc_pml_set_text(p, t, p->text_buf.data, p->text_buf.len);
}

static void on_chars(void *ctx, const xmlChar *ch, int len) {
    parser *p = ((xmlParserCtxtPtr)ctx)->_private;
    if (p->failed || len <= 0 || !p->cur) return;
    if (!p->tpending) {
        p->tpending = true;
        pc_buf_clear(&p->text_buf);
        p->tstart = p->markup_end;
        cursor_pos(p, &p->tline, &p->tcol);
    }
    if (!pc_buf_append(&p->text_buf, ch, (size_t)len))
        pc_pml_fail_at(p, p->tline, p->tcol, PC_ERR_NOMEM, "out of memory holding text");
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
        pc_pml_fail_at(p, line, col, PC_ERR_FORMAT, "<%s%s%s>: namespaces (prefixes, xmlns) are not part of PML",
                       prefix ? (const char *)prefix : "", prefix ? ":" : "", name);
        return;
    }
    if (p->depth >= p->opt.max_depth) {
        pc_pml_fail_at(p, line, col, PC_ERR_RANGE,
                       "elements nest deeper than %u levels (the limit, pc_pml_options.max_depth)",
                       p->opt.max_depth);
        return;
    }
    pc_pml_kind kind;
    bnode *b = pc_pml_element_kind(p, p->cur, name, line, col, &kind) ? pc_pml_new_node(p, kind, line, col) : NULL;
    if (!b) return;
    b->tag_self_closing = ev && ev->self_closing;
    if (!copy_attrs(p, b, name, nb_attributes, attributes) || !pc_pml_element_open(p, b, name)) return;
    if (!p->root) p->root = b;
    p->cur = b;
    p->depth++;
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
    pc_pml_element_close(p, b);
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
    pc_pml_fail_at(p, line, col, PC_ERR_FORMAT,
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
