/* encode.c - computing the KV of every piece of a schema, each exactly once.
 *
 * A piece is encoded in the configuration of its "home": the innermost
 * non-scaffold union member among its owner's ancestors (itself included), or
 * the scaffold when there is none. The configuration of a home Y selects, in
 * every union on Y's ancestor chain, the member on that chain, and elsewhere
 * the scaffold members. Its pieces attend over the pieces of that
 * configuration that precede them - already encoded, because pieces are stored
 * in document order and a configuration's pieces are in position order. */
#include <stdlib.h>

#include "schema/schema.h"
#include "util/clock.h"
#include "util/error.h"

typedef struct enc {
    pc_schema *s;
    pc_forward *f;
    const pc_model *m;
    pc_error *err;
    int32_t *home;        /* [n_modules] */
    pc_kv_list ctx;
    pc_encode_progress_fn progress;
    void *user;
    int32_t done;
    int64_t tokens_done, n_tokens;
    double t0;
} enc;

static bool is_ancestor_or_self(const pc_schema *s, int32_t a, int32_t x) {
    for (; x != PC_ROOT; x = s->modules[x].parent)
        if (x == a) return true;
    return false;
}

static int32_t home_of(const pc_schema *s, int32_t owner) {
    for (int32_t x = owner; x != PC_ROOT; x = s->modules[x].parent) {
        const pc_module *m = &s->modules[x];
        if (m->union_id >= 0 && s->unions[m->union_id].scaffold != x) return x;
    }
    return PC_ROOT;
}

/* Is module x selected in the configuration of home y (PC_ROOT: the scaffold)? */
static bool selected(const pc_schema *s, int32_t x, int32_t y) {
    for (; x != PC_ROOT; x = s->modules[x].parent) {
        const pc_module *m = &s->modules[x];
        if (m->union_id < 0 || s->unions[m->union_id].scaffold == x) continue;
        if (y == PC_ROOT || !is_ancestor_or_self(s, x, y)) return false;
    }
    return true;
}

static pc_status encode_piece(enc *E, pc_piece *p) {
    pc_kv_span *span = pc_kv_span_for_model(E->m, p->n);
    int32_t *pos = malloc((size_t)p->n * sizeof *pos);
    if (!span || !pos) {
        free(pos);
        pc_kv_span_release(span);
        return pc_fail(E->err, PC_ERR_NOMEM, "out of memory encoding schema '%s'", E->s->name);
    }
    for (int32_t i = 0; i < p->n; i++) pos[i] = p->start + i;
    pc_status st = pc_forward_run(E->f, &E->ctx, span, p->tokens, pos, p->n, PC_LOGITS_NONE, NULL, E->err);
    free(pos);
    if (st != PC_OK) {
        pc_kv_span_release(span);
        return pc_fail_wrap(E->err, "%s:%u:%u: encoding", E->s->doc->name, p->line, p->col);
    }
    pc_kv_span_freeze(span);
    p->kv = span;
    E->done++;
    E->tokens_done += p->n;
    if (E->progress) E->progress(E->user, E->done, E->s->n_pieces, E->tokens_done, E->n_tokens, pc_now_ms() - E->t0);
    return PC_OK;
}

/* Encodes the pieces whose home is y, over the preceding pieces of y's configuration. */
static pc_status encode_home(enc *E, int32_t y) {
    pc_schema *s = E->s;
    E->ctx.n = 0;
    const int32_t ystart = y == PC_ROOT ? 0 : s->modules[y].start;
    for (int32_t i = 0; i < s->n_pieces; i++) {
        pc_piece *p = &s->pieces[i];
        if (p->n == 0 || !selected(s, p->owner, y)) continue;
        bool mine = (p->owner == PC_ROOT ? PC_ROOT : E->home[p->owner]) == y;
        if (!mine && (y == PC_ROOT || p->start >= ystart)) continue;
        if (mine) {
            pc_status st = encode_piece(E, p);
            if (st != PC_OK) return st;
        }
        pc_status st = pc_kv_list_push(&E->ctx, p->kv, E->err);
        if (st != PC_OK) return st;
    }
    return PC_OK;
}

/* cache="false" pieces served their purpose as context; requests recompute them. */
static void drop_uncached(pc_schema *s) {
    s->kv_bytes = 0;
    for (int32_t i = 0; i < s->n_pieces; i++) {
        pc_piece *p = &s->pieces[i];
        if (p->owner != PC_ROOT && !s->modules[p->owner].cache) {
            pc_kv_span_release(p->kv);
            p->kv = NULL;
        }
        if (p->kv) s->kv_bytes += pc_kv_span_bytes(p->kv);
    }
}

pc_status pc_schema_encode(pc_schema *s, pc_forward *f, const pc_model *m, pc_encode_progress_fn progress, void *user,
                           pc_error *err) {
    if (s->encoded) return PC_OK;
    enc E = {.s = s, .f = f, .m = m, .err = err, .progress = progress, .user = user, .t0 = pc_now_ms()};
    E.home = malloc(((size_t)s->n_modules + 1) * sizeof *E.home);
    if (!E.home) return pc_fail(err, PC_ERR_NOMEM, "out of memory encoding schema '%s'", s->name);
    for (int32_t i = 0; i < s->n_modules; i++) E.home[i] = home_of(s, i);
    for (int32_t i = 0; i < s->n_pieces; i++) E.n_tokens += s->pieces[i].n;
    pc_status st = encode_home(&E, PC_ROOT);
    for (int32_t y = 0; y < s->n_modules && st == PC_OK; y++)
        if (E.home[y] == y) st = encode_home(&E, y);
    free(E.home);
    pc_kv_list_free(&E.ctx);
    if (st != PC_OK) {
        for (int32_t i = 0; i < s->n_pieces; i++) {
            pc_kv_span_release(s->pieces[i].kv);
            s->pieces[i].kv = NULL;
        }
        return st;
    }
    drop_uncached(s);
    s->encoded = true;
    s->encoded_tokens = E.tokens_done;
    s->encode_ms = pc_now_ms() - E.t0;
    return PC_OK;
}
