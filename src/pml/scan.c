/* scan.c - lexical pre-pass over PML text (see scan.h).
 *
 * Invariants: offsets always refer to the original text; the escaped copy
 * differs from it only by the recorded escapes, none of which adds a line;
 * markup is recognised with XML's own grammar for tags (names, quoted
 * attribute values without '<'), so in a well-formed document the events
 * match libxml2's callbacks one for one. */
#include "pml/scan.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/error.h"

typedef struct scanner {
    const char *s;
    size_t n;
    bool lenient;
    const char *const *known;
    pc_pml_scan *out;
    size_t copied; /* original bytes already copied to out->out */
    size_t cap_events, cap_escapes, cap_out;
    bool nomem;
} scanner;

static bool is_name_start(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' || c >= 0x80;
}

static bool is_name_char(unsigned char c) {
    return is_name_start(c) || (c >= '0' && c <= '9') || c == '-' || c == '.';
}

static bool is_ws(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static bool starts(const scanner *sc, size_t i, const char *lit) {
    size_t l = strlen(lit);
    return sc->n - i >= l && memcmp(sc->s + i, lit, l) == 0;
}

/* Offset one past the first occurrence of lit at or after i, or SIZE_MAX. */
static size_t find_after(const scanner *sc, size_t i, const char *lit) {
    size_t l = strlen(lit);
    for (; i + l <= sc->n; i++) {
        const char *p = memchr(sc->s + i, lit[0], sc->n - i);
        if (!p) return SIZE_MAX;
        i = (size_t)(p - sc->s);
        if (i + l <= sc->n && memcmp(p, lit, l) == 0) return i + l;
    }
    return SIZE_MAX;
}

static size_t scan_name(const scanner *sc, size_t i) {
    if (i >= sc->n || !is_name_start((unsigned char)sc->s[i])) return i;
    while (i < sc->n && is_name_char((unsigned char)sc->s[i])) i++;
    return i;
}

static size_t skip_ws(const scanner *sc, size_t i) {
    while (i < sc->n && is_ws((unsigned char)sc->s[i])) i++;
    return i;
}

static bool name_known(const scanner *sc, size_t b, size_t e) {
    if (!sc->known) return true;
    for (const char *const *k = sc->known; *k; k++)
        if (strlen(*k) == e - b && memcmp(*k, sc->s + b, e - b) == 0) return true;
    return false;
}

/* A start tag at i ('<' then a name start): its end, or 0 when it is not one. */
static size_t start_tag(const scanner *sc, size_t i, bool *self_closing) {
    size_t ne = scan_name(sc, i + 1);
    if (ne == i + 1 || !name_known(sc, i + 1, ne)) return 0;
    size_t j = ne;
    for (;;) {
        size_t k = skip_ws(sc, j);
        if (k >= sc->n) return 0;
        if (sc->s[k] == '>') { *self_closing = false; return k + 1; }
        if (sc->s[k] == '/') {
            if (k + 1 < sc->n && sc->s[k + 1] == '>') { *self_closing = true; return k + 2; }
            return 0;
        }
        if (k == j) return 0; /* attributes need whitespace before them */
        size_t ae = scan_name(sc, k);
        if (ae == k) return 0;
        k = skip_ws(sc, ae);
        if (k >= sc->n || sc->s[k] != '=') return 0;
        k = skip_ws(sc, k + 1);
        if (k >= sc->n || (sc->s[k] != '"' && sc->s[k] != '\'')) return 0;
        const char *q = memchr(sc->s + k + 1, sc->s[k], sc->n - k - 1);
        if (!q || memchr(sc->s + k + 1, '<', (size_t)(q - sc->s) - k - 1)) return 0;
        j = (size_t)(q - sc->s) + 1;
    }
}

static size_t end_tag(const scanner *sc, size_t i) {
    size_t ne = scan_name(sc, i + 2);
    if (ne == i + 2 || !name_known(sc, i + 2, ne)) return 0;
    size_t k = skip_ws(sc, ne);
    return k < sc->n && sc->s[k] == '>' ? k + 1 : 0;
}

static void add_event(scanner *sc, pc_pml_mark kind, bool self_closing, size_t b, size_t e) {
    pc_pml_scan *o = sc->out;
    pc_pml_event *ev = pc_array_reserve(o->events, &sc->cap_events, o->n_events + 1, sizeof *o->events);
    if (!ev) {
        sc->nomem = true;
        return;
    }
    o->events = ev;
    o->events[o->n_events++] = (pc_pml_event){kind, self_closing, b, e};
}

static void append_out(scanner *sc, const char *p, size_t len) {
    pc_pml_scan *o = sc->out;
    const size_t need = o->out_len + len + 1; /* cannot wrap: both are offsets into the text */
    char *buf = pc_array_reserve(o->out, &sc->cap_out, need, 1);
    if (!buf) {
        sc->nomem = true;
        return;
    }
    o->out = buf;
    memcpy(o->out + o->out_len, p, len);
    o->out_len += len;
}

static void escape_at(scanner *sc, size_t i, const char *with) {
    pc_pml_scan *o = sc->out;
    pc_pml_escape *esc = pc_array_reserve(o->escapes, &sc->cap_escapes, o->n_escapes + 1, sizeof *o->escapes);
    if (!esc) {
        sc->nomem = true;
        return;
    }
    o->escapes = esc;
    o->escapes[o->n_escapes++] = (pc_pml_escape){i, sc->s[i], strlen(with) - 1};
    append_out(sc, sc->s + sc->copied, i - sc->copied);
    append_out(sc, with, strlen(with));
    sc->copied = i + 1;
}

/* Length of a character or predefined entity reference at i, or 0. */
static size_t reference(const scanner *sc, size_t i) {
    static const char *const predefined[] = {"&lt;", "&gt;", "&amp;", "&quot;", "&apos;"};
    for (size_t k = 0; k < sizeof predefined / sizeof *predefined; k++)
        if (starts(sc, i, predefined[k])) return strlen(predefined[k]);
    if (!starts(sc, i, "&#")) return 0;
    size_t j = i + 2;
    bool hex = j < sc->n && sc->s[j] == 'x';
    j += hex;
    size_t d = j;
    while (j < sc->n && j - d < 8 &&
           ((sc->s[j] >= '0' && sc->s[j] <= '9') ||
            (hex && ((sc->s[j] >= 'a' && sc->s[j] <= 'f') || (sc->s[j] >= 'A' && sc->s[j] <= 'F')))))
        j++;
    return j > d && j < sc->n && sc->s[j] == ';' ? j + 1 - i : 0;
}

/* Markup at i ('<'): records it and returns the offset after it; returns i
 * when it is not markup, SIZE_MAX when scanning must stop here. */
static size_t markup(scanner *sc, size_t i) {
    bool sc_flag = false;
    size_t e;
    if (starts(sc, i, "<!--")) {
        e = find_after(sc, i + 4, "-->");
        if (e != SIZE_MAX) add_event(sc, PC_PML_MARK_COMMENT, false, i, e);
        return e;
    }
    if (starts(sc, i, "<![CDATA[")) return find_after(sc, i + 9, "]]>");
    if (starts(sc, i, "<!DOCTYPE")) {
        sc->out->has_doctype = true;
        sc->out->doctype_off = i;
        return SIZE_MAX;
    }
    if (starts(sc, i, "<?")) {
        e = find_after(sc, i + 2, "?>");
        bool decl = i == 0 && starts(sc, i, "<?xml") && i + 5 < sc->n && is_ws((unsigned char)sc->s[i + 5]);
        if (e != SIZE_MAX && !decl) add_event(sc, PC_PML_MARK_PI, false, i, e);
        return e;
    }
    if (starts(sc, i, "</")) {
        e = end_tag(sc, i);
        if (e) add_event(sc, PC_PML_MARK_END, false, i, e);
        return e ? e : i;
    }
    e = start_tag(sc, i, &sc_flag);
    if (e) add_event(sc, PC_PML_MARK_START, sc_flag, i, e);
    return e ? e : i;
}

pc_status pc_pml_scan_text(const char *s, size_t n, bool lenient, const char *const *known,
                           pc_pml_scan *out, pc_error *err) {
    memset(out, 0, sizeof *out);
    scanner sc = {.s = s, .n = n, .lenient = lenient, .known = lenient ? known : NULL, .out = out};
    size_t i = 0;
    while (i < n && !sc.nomem) {
        char c = s[i];
        if (c == '<') {
            size_t e = markup(&sc, i);
            if (e == SIZE_MAX) break;
            if (e != i) { i = e; continue; }
            if (!lenient) break; /* libxml2 reports the error at this '<' */
            escape_at(&sc, i, "&lt;");
        } else if (c == '&' && lenient && !reference(&sc, i)) {
            escape_at(&sc, i, "&amp;");
        } else if (c == '>' && lenient && i >= 2 && s[i - 1] == ']' && s[i - 2] == ']') {
            escape_at(&sc, i, "&gt;");
        }
        i++;
    }
    if (!sc.nomem && out->n_escapes) append_out(&sc, s + sc.copied, n - sc.copied);
    if (sc.nomem) {
        pc_pml_scan_free(out);
        return pc_fail(err, PC_ERR_NOMEM, "out of memory while scanning PML text");
    }
    return PC_OK;
}

void pc_pml_scan_free(pc_pml_scan *sc) {
    if (!sc) return;
    free(sc->events);
    free(sc->out);
    free(sc->escapes);
    memset(sc, 0, sizeof *sc);
}
