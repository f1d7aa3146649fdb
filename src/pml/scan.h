/* scan.h - a lexical pre-pass over PML text, before libxml2 sees it.
 *
 * It does two jobs that libxml2's SAX interface cannot:
 *  1. Positions. It lists every piece of markup (start tag, end tag,
 *     comment, processing instruction) with its byte offsets, so the parser
 *     gives each node the line and column of its '<' and knows whether a tag
 *     was self-closing. For a well-formed document the k-th start tag here is
 *     the k-th startElementNs there; the list stops at the first thing it
 *     does not understand, where libxml2 reports an error anyway.
 *  2. Lenient mode. A '<' that cannot start markup (or, for schemas, starts
 *     a tag whose name is not a PML element) and a '&' that does not start a
 *     character or predefined entity reference are escaped into a copy of
 *     the text; each escape is recorded so warnings and libxml2's error
 *     columns can name the place in the original text.
 * A <!DOCTYPE is never escaped: the scan stops there and reports it. */
#ifndef PC_PML_SCAN_H
#define PC_PML_SCAN_H

#include <stdbool.h>
#include <stddef.h>

#include "pcache.h"

typedef enum pc_pml_mark {
    PC_PML_MARK_START,   /* <name ...> or <name .../> */
    PC_PML_MARK_END,     /* </name> */
    PC_PML_MARK_COMMENT, /* <!-- ... --> */
    PC_PML_MARK_PI,      /* <?target ...?> other than the XML declaration */
} pc_pml_mark;

typedef struct pc_pml_event {
    pc_pml_mark kind;
    bool self_closing;  /* START only */
    size_t begin, end;  /* offsets of '<' and one past '>' in the original text */
} pc_pml_event;

typedef struct pc_pml_escape {
    size_t off;   /* offset of the escaped byte in the original text */
    char ch;      /* '<', '&' or '>' (the '>' of a "]]>" in text) */
    size_t extra; /* bytes the escape adds ("&lt;" adds 3) */
} pc_pml_escape;

typedef struct pc_pml_scan {
    pc_pml_event *events;
    size_t n_events;
    char *out;      /* lenient mode with escapes: the escaped text; else NULL */
    size_t out_len;
    pc_pml_escape *escapes;
    size_t n_escapes;
    bool has_doctype;
    size_t doctype_off;
} pc_pml_scan;

/* Scans s[0..n). known: NULL, or a NULL-terminated list of the only element
 * names lenient mode accepts as tags. Fails only for lack of memory. */
pc_status pc_pml_scan_text(const char *s, size_t n, bool lenient, const char *const *known,
                           pc_pml_scan *out, pc_error *err);

void pc_pml_scan_free(pc_pml_scan *sc);

#endif
