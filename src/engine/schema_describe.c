/* schema_describe.c - the human-readable layout of a registered schema
 * (`pcache schema`): modules and unions with positions, token counts, KV bytes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_internal.h"
#include "schema/schema.h"
#include "util/error.h"

typedef struct own_stats {
    int64_t tokens;
    size_t bytes;
} own_stats;

/* KV bytes: K and V of the owner's cached pieces' tokens. */
static own_stats own(const pc_schema *s, int32_t owner, size_t bpt) {
    own_stats o = {0, 0};
    for (int32_t i = 0; i < s->n_pieces; i++)
        if (s->pieces[i].owner == owner) {
            o.tokens += s->pieces[i].n;
            if (s->pieces[i].cached) o.bytes += (size_t)s->pieces[i].n * bpt;
        }
    return o;
}

static void print_scope(FILE *f, const pc_schema *s, int32_t scope, int depth, size_t bpt);

static void print_module(FILE *f, const pc_schema *s, int32_t i, int depth, size_t bpt) {
    const pc_module *m = &s->modules[i];
    own_stats o = own(s, i, bpt);
    fprintf(f, "%*smodule %-20s [%6d, %6d)  own %5lld tokens  KV %9zu bytes%s%s\n", depth * 2, "", m->name, m->start,
            m->start + m->len, (long long)o.tokens, o.bytes, m->cache ? "" : "  cache=false",
            m->scaffold ? "  scaffold" : "");
    for (int32_t p = 0; p < s->n_params; p++)
        if (s->params[p].module == i)
            fprintf(f, "%*sparameter %-17s [%6d, %6d)  length %d\n", depth * 2 + 2, "", s->params[p].name,
                    s->params[p].start, s->params[p].start + s->params[p].len, s->params[p].len);
    print_scope(f, s, i, depth + 1, bpt);
}

static void print_scope(FILE *f, const pc_schema *s, int32_t scope, int depth, size_t bpt) {
    for (int32_t i = 0; i < s->n_modules; i++) {
        const pc_module *m = &s->modules[i];
        if (m->parent != scope) continue;
        if (m->union_id >= 0) {
            const pc_union *u = &s->unions[m->union_id];
            bool first = true;
            for (int32_t j = 0; j < i; j++)
                if (s->modules[j].union_id == m->union_id) first = false;
            if (first)
                fprintf(f, "%*sunion                       [%6d, %6d)  scaffold: %s\n", depth * 2, "", u->start,
                        u->start + u->len, u->scaffold >= 0 ? s->modules[u->scaffold].name : "(none)");
            print_module(f, s, i, depth + 1, bpt);
        } else {
            print_module(f, s, i, depth, bpt);
        }
    }
}

static pc_status describe(const pc_engine *e, const pc_schema *s, char **out, pc_error *err) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return pc_fail(err, PC_ERR_NOMEM, "out of memory describing schema '%s'", s->name);
    const size_t bpt = pc_model_kv_bytes_per_token(e->model);
    own_stats r = own(s, PC_ROOT, bpt);
    int64_t scaffold = 0;
    for (int32_t i = 0; i < s->n_pieces; i++) {
        int32_t o = s->pieces[i].owner;
        if (o == PC_ROOT || s->modules[o].scaffold) scaffold += s->pieces[i].n;
    }
    fprintf(f, "schema '%s' (%s): L = %d positions, %d modules, %d unions, %d parameters, %d pieces\n", s->name,
            s->doc->name, s->length, s->n_modules, s->n_unions, s->n_params, s->n_pieces);
    const pc_schema_ready *rd = &s->ready;
    fprintf(f, "KV: %zu bytes in all, %zu bytes per token (2 x %d layers x %d kv heads x %d dims x 2 bytes)\n",
            rd->kv_bytes, bpt, e->model->hp.n_layer, e->model->hp.n_head_kv, e->model->hp.head_dim);
    fprintf(f, "encoded %lld tokens in %.1f ms; scaffold: %lld tokens\n", (long long)rd->encoded_tokens, rd->encode_ms,
            (long long)scaffold);
    fprintf(f, "ready in %.1f ms: pieces from memory %d, disk %d, remote %d, encoded %d%s\n", rd->ready_ms,
            rd->pieces_from[PC_SOURCE_MEMORY], rd->pieces_from[PC_SOURCE_DISK], rd->pieces_from[PC_SOURCE_REMOTE],
            rd->pieces_from[PC_SOURCE_ENCODED], rd->not_loaded ? " (some left out of memory: budget)" : "");
    fprintf(f, "root text: %lld tokens, KV %zu bytes\n", (long long)r.tokens, r.bytes);
    print_scope(f, s, PC_ROOT, 0, bpt);
    fclose(f);
    *out = buf;
    return PC_OK;
}

pc_status pc_engine_schema_describe(const pc_engine *e, const char *name, char **out, pc_error *err) {
    pthread_rwlock_t *lock = &((pc_engine *)e)->schemas_lock; /* the lock is not part of the engine's value */
    pthread_rwlock_rdlock(lock);
    const pc_schema *s = pc_engine_find_schema(e, name);
    pc_status st = s ? describe(e, s, out, err) : pc_fail(err, PC_ERR_NOT_FOUND, "no schema named '%s' is registered", name);
    pthread_rwlock_unlock(lock);
    return st;
}
