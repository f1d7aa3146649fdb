/* parse_internal.h - what the PML parse driver (parse.c) and PML's element
 * rules (elements.c) share: the parser's state and the tree under construction.
 *
 * Invariants: the first failure wins (p->failed; later failures are ignored
 * and the libxml2 parser is stopped); nodes are carved from the document's
 * arena and linked in document order; p->cur is the innermost open element. */
#ifndef PC_PML_PARSE_INTERNAL_H
#define PC_PML_PARSE_INTERNAL_H

#include <libxml/parser.h>

#include "pml/arena.h"
#include "pml/pml.h"
#include "pml/scan.h"
#include "util/buf.h"

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

/* ---- parse.c: reports and tree building ---- */

/* Records the failure "name:line:col: what" (the first one only) and stops the parser. */
void pc_pml_fail_at(parser *p, uint32_t line, uint32_t col, pc_status code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* Arena memory or a copy of s[0..n); NULL after failing with "over its memory budget". */
void *pc_pml_alloc(parser *p, size_t size);
char *pc_pml_dup(parser *p, const char *s, size_t n);
/* A new child of p->cur (the root when there is none). */
bnode *pc_pml_new_node(parser *p, pc_pml_kind kind, uint32_t line, uint32_t col);
/* Gives TEXT node t its raw and compacted text. */
bool pc_pml_set_text(parser *p, bnode *t, const char *raw, size_t n);

/* ---- elements.c: PML's rules ---- */

/* The kind of element `name` under parent (NULL: the root), or fails. */
bool pc_pml_element_kind(parser *p, const bnode *parent, const char *name, uint32_t line, uint32_t col,
                         pc_pml_kind *kind);
/* Checks a new element's attributes (already copied to b) and fills the
 * node's fields from them; reads a module's src= text. */
bool pc_pml_element_open(parser *p, bnode *b, const char *name);
/* Checks an element as it closes (unique names, union scaffold). */
void pc_pml_element_close(parser *p, const bnode *b);

#endif
