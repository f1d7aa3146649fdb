/* keys.c - naming a laid-out schema's pieces in the store.
 *
 * The schema digest is SHA-256 over everything a piece's KV depends on within
 * the schema: its name, length and placeholder, every module (name, parent,
 * union, positions, cache and scaffold flags), union (parent, positions,
 * scaffold member), parameter (module, positions, fill piece) and piece (kind,
 * owner, parameter, positions, token ids). Token ids stand for the text - src=
 * files included - as the model's tokenizer reads it: an edit that changes no
 * token changes no key, and any edit that changes a token changes them all
 * (a piece attends to what precedes it, so nothing finer would be safe).
 *
 * A piece's key (store_key.c) adds the model fingerprint, the piece's path
 * and configuration (which union members were selected when it was encoded),
 * its positions, the KV element type and the tenant. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema/schema.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/sha256.h"

int32_t pc_schema_home(const pc_schema *s, int32_t owner) {
    for (int32_t x = owner; x != PC_ROOT; x = s->modules[x].parent) {
        const pc_module *m = &s->modules[x];
        if (m->union_id >= 0 && s->unions[m->union_id].scaffold != x) return x;
    }
    return PC_ROOT;
}

static void i64(pc_sha256 *h, int64_t v) { pc_sha256_u64(h, (uint64_t)v); }

static void str(pc_sha256 *h, const char *s) { pc_sha256_field(h, s ? s : "", s ? strlen(s) : 0); }

static int digest(const pc_schema *s, uint8_t out[32]) {
    /* v2: nested union members are encoded over exactly their own
     * configuration (no scaffold member of an enclosing union in context);
     * KV stored under v1 keys for such pieces is wrong and must not match. */
    static const char DOMAIN[] = "pcache-schema-v2";
    pc_sha256 h;
    pc_sha256_init(&h);
    pc_sha256_field(&h, DOMAIN, sizeof DOMAIN - 1);
    str(&h, s->name);
    i64(&h, s->length);
    i64(&h, s->placeholder);
    i64(&h, s->n_modules);
    for (int32_t i = 0; i < s->n_modules; i++) {
        const pc_module *m = &s->modules[i];
        str(&h, m->name);
        const int64_t f[] = {m->parent, m->union_id, m->start, m->len, m->cache, m->scaffold};
        for (size_t k = 0; k < sizeof f / sizeof f[0]; k++) i64(&h, f[k]);
    }
    i64(&h, s->n_unions);
    for (int32_t i = 0; i < s->n_unions; i++) {
        const pc_union *u = &s->unions[i];
        const int64_t f[] = {u->parent, u->start, u->len, u->scaffold};
        for (size_t k = 0; k < sizeof f / sizeof f[0]; k++) i64(&h, f[k]);
    }
    i64(&h, s->n_params);
    for (int32_t i = 0; i < s->n_params; i++) {
        const pc_param *p = &s->params[i];
        str(&h, p->name);
        const int64_t f[] = {p->module, p->start, p->len, p->fill_piece};
        for (size_t k = 0; k < sizeof f / sizeof f[0]; k++) i64(&h, f[k]);
    }
    i64(&h, s->n_pieces);
    for (int32_t i = 0; i < s->n_pieces; i++) {
        const pc_piece *p = &s->pieces[i];
        const int64_t f[] = {p->kind, p->owner, p->param, p->start, p->n};
        for (size_t k = 0; k < sizeof f / sizeof f[0]; k++) i64(&h, f[k]);
        for (int32_t t = 0; t < p->n; t++) i64(&h, p->tokens[t]);
    }
    return pc_sha256_final(&h, out);
}

/* Appends "a/b/c" for module m (nothing for the root), in full: a path cut
 * at some length would give two modules whose names differ past the cut -
 * two members of one union, at the same positions - the same key, and one
 * would be served the other's KV. XML names hold no '/' or '#', so the
 * path names one module. */
static bool module_path(const pc_schema *s, int32_t m, pc_buf *b) {
    if (m == PC_ROOT) return true;
    const int32_t parent = s->modules[m].parent;
    if (!module_path(s, parent, b)) return false; /* depth is bounded by the parser (<= 256) */
    return (parent == PC_ROOT || pc_buf_puts(b, "/")) && pc_buf_puts(b, s->modules[m].name);
}

static pc_status key_piece(pc_schema *s, int32_t i, int32_t k, const uint8_t model[32], pc_error *err) {
    pc_piece *p = &s->pieces[i];
    const int32_t home = p->owner == PC_ROOT ? PC_ROOT : pc_schema_home(s, p->owner);
    pc_buf label = {0}, config = {0};
    const bool ok = pc_buf_printf(&label, "%s:", s->name) && module_path(s, p->owner, &label) &&
                    pc_buf_printf(&label, "#%d", k) && module_path(s, home, &config);
    if (!ok) {
        pc_buf_free(&label);
        pc_buf_free(&config);
        return pc_fail(err, PC_ERR_NOMEM, "out of memory keying schema '%s'", s->name);
    }
    p->cached = p->owner == PC_ROOT || s->modules[p->owner].cache;
    free(p->label);
    p->label = pc_buf_take(&label);
    p->path = p->label + strlen(s->name) + 1;
    pc_store_key_parts kp = {.model = model, .schema = s->digest, .path = p->path, .config = config.data ? config.data : "",
                             .start = p->start, .n = p->n, .elem = PC_STORE_ELEM_F16, .tenant = s->tenant};
    pc_status st = pc_store_key_derive(&kp, &p->key, err);
    pc_buf_free(&config);
    return st;
}

pc_status pc_schema_keys(pc_schema *s, const uint8_t model[32], const char *tenant, pc_error *err) {
    free(s->tenant);
    s->tenant = strdup(tenant ? tenant : "");
    if (!s->tenant || digest(s, s->digest) != 0) return pc_fail(err, PC_ERR_NOMEM, "out of memory keying schema '%s'", s->name);
    pc_sha256 h;
    pc_sha256_init(&h);
    pc_sha256_update(&h, s->digest, 32);
    pc_sha256_field(&h, s->tenant, strlen(s->tenant));
    if (pc_sha256_final(&h, s->group) != 0) return pc_fail(err, PC_ERR_NOMEM, "out of memory keying schema '%s'", s->name);
    int32_t *count = calloc((size_t)s->n_modules + 1, sizeof *count); /* pieces seen per owner; [n_modules] = root */
    if (!count) return pc_fail(err, PC_ERR_NOMEM, "out of memory keying schema '%s'", s->name);
    pc_status st = PC_OK;
    for (int32_t i = 0; i < s->n_pieces && st == PC_OK; i++) {
        int32_t o = s->pieces[i].owner == PC_ROOT ? s->n_modules : s->pieces[i].owner;
        st = key_piece(s, i, count[o]++, model, err);
    }
    free(count);
    s->keyed = st == PC_OK;
    return st;
}

pc_store_desc pc_schema_piece_desc(const pc_schema *s, int32_t i) {
    const pc_piece *p = &s->pieces[i];
    return (pc_store_desc){.key = p->key, .group = s->group, .start = p->start, .n = p->n, .tokens = p->tokens,
                           .label = p->label, .tenant = s->tenant};
}
