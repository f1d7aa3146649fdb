/* prefetch.c - the weight prefetch cursor (prefetch.h).
 *
 * Positions count bytes from a span's first cache line (its start rounded
 * down to 64 bytes), so every position the cursor stops at is a line. */
#include "kernels/cpu/prefetch.h"

#include <stdint.h>

enum { LINE = 64 };

static uintptr_t first_line(const pc_wspan *s) { return (uintptr_t)s->p & ~(uintptr_t)(LINE - 1); }

/* Bytes from span s's first line to its end: the positions it holds. */
static size_t span_len(const pc_wspan *s) { return s->bytes ? (size_t)((uintptr_t)s->p + s->bytes - first_line(s)) : 0; }

void pc_pf_init(pc_pf_cursor *c, const pc_wspan *spans, int n) {
    *c = (pc_pf_cursor){.spans = spans, .n = n};
}

void pc_pf_aim(pc_pf_cursor *c, int at, size_t ahead) {
    if (at < 0 || at > c->n) return;
    int s = at;
    while (s < c->n && ahead > span_len(&c->spans[s])) ahead -= span_len(&c->spans[s++]);
    c->stop = s;
    c->stop_off = s < c->n ? ahead : 0;
    /* Behind, or past the limit: from another pass over the sequence (the
     * previous token's), so nothing ahead of `at` was asked for. */
    if (c->i < at || c->i > c->stop || (c->i == c->stop && c->off > c->stop_off)) {
        c->i = at;
        c->off = 0;
    }
}

const void *pc_pf_next(pc_pf_cursor *c) {
    while (c->i < c->n && c->off >= span_len(&c->spans[c->i])) {
        c->i++;
        c->off = 0;
    }
    if (c->i > c->stop || (c->i == c->stop && c->off >= c->stop_off) || c->i >= c->n) return NULL;
    const void *line = (const void *)(first_line(&c->spans[c->i]) + c->off);
    c->off += LINE;
    return line;
}

bool pc_pf_step(pc_pf_cursor *c, int lines) {
    bool any = false;
    for (int k = 0; k < lines; k++) {
        const void *p = pc_pf_next(c);
        if (!p) break;
        __builtin_prefetch(p, 0, 2);
        any = true;
    }
    return any;
}
