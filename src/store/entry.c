/* entry.c - store entries: creation, the checks every tier's hit goes through,
 * entries over images read from disk or Redis, and serialization to an image.
 *
 * An image's payload is a KV span's own arrays (format.h), so an entry over a
 * mapped file is a span pointing into the mapping: attention reads the page
 * cache in place. Serialization writes zeros wherever the span holds no token
 * (the lanes of a last partial key block, value rows and positions past n), so
 * an image never carries uninitialized memory and two writers of one key write
 * the same bytes. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "store/tier.h"
#include "util/hash.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/sha256.h"

void pc_store_log(const pc_store_env *env, const char *fmt, ...) {
    char line[768];
    int n = snprintf(line, sizeof line, "pcache store: ");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    if (env->cfg.cache.log)
        env->cfg.cache.log(env->cfg.cache.log_user, line);
    else
        fprintf(stderr, "%s\n", line);
}

double pc_store_now_ms(const pc_store_env *env) {
    return env->cfg.now_ms ? env->cfg.now_ms(env->cfg.now_user) : pc_now_ms();
}

size_t pc_store_payload_bytes(int32_t n_layer, int32_t dim, int32_t n) {
    pc_entry_layout L;
    return pc_entry_layout_of(n_layer, dim, (n + 7) / 8 * 8, &L) ? (size_t)L.len : 0;
}

uint64_t pc_store_owner_of(const char *tenant) {
    if (!tenant || !*tenant) return 0;
    const uint64_t h = pc_hash64(PC_HASH64_INIT, tenant, strlen(tenant));
    return h ? h : 1;
}

pc_status pc_store_entry_create(const pc_store_desc *d, pc_kv_span *span, pc_store_entry **out, pc_error *err) {
    *out = NULL;
    pc_store_entry *e = calloc(1, sizeof *e);
    const char *label = d->label ? d->label : "";
    if (e) {
        e->tokens = malloc((size_t)(d->n > 0 ? d->n : 1) * sizeof *e->tokens);
        e->label = strdup(label);
    }
    if (!e || !e->tokens || !e->label) {
        if (e) {
            free(e->tokens);
            free(e->label);
        }
        free(e);
        pc_kv_span_release(span);
        return pc_fail(err, PC_ERR_NOMEM, "out of memory for store entry '%s'", label);
    }
    e->key = d->key;
    if (d->group) memcpy(e->group, d->group, 32);
    e->owner = pc_store_owner_of(d->tenant);
    e->start = d->start;
    e->n = d->n;
    if (d->n > 0) memcpy(e->tokens, d->tokens, (size_t)d->n * sizeof *e->tokens);
    e->span = span;
    e->bytes = pc_store_payload_bytes(span->n_layer, span->dim, d->n);
    e->refs = 1;
    *out = e;
    return PC_OK;
}

void pc_store_entry_free(pc_store_entry *e) {
    if (!e) return;
    pc_kv_span_release(e->span);
    free(e->tokens);
    free(e->label);
    free(e);
}

static bool why_not(char *why, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool why_not(char *why, size_t cap, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, cap, fmt, ap);
    va_end(ap);
    return false;
}

bool pc_store_entry_matches(const pc_store_entry *e, const pc_store_desc *d, const pc_store_env *env, char *why,
                            size_t cap) {
    const pc_kv_span *s = e->span;
    if (memcmp(e->key.b, d->key.b, 32) != 0) return why_not(why, cap, "key differs");
    if (s->n_layer != env->cfg.n_layer || s->dim != env->cfg.dim || s->n != d->n)
        return why_not(why, cap, "shape %d layers x %d x %d tokens, expected %d x %d x %d", s->n_layer, s->dim, s->n,
                       env->cfg.n_layer, env->cfg.dim, d->n);
    if (e->start != d->start || e->n != d->n)
        return why_not(why, cap, "positions [%d, +%d), expected [%d, +%d)", e->start, e->n, d->start, d->n);
    if (memcmp(e->tokens, d->tokens, (size_t)d->n * sizeof *d->tokens) != 0)
        return why_not(why, cap, "token ids differ from the piece's");
    for (int32_t i = 0; i < d->n; i++)
        if (s->pos[i] != d->start + i) return why_not(why, cap, "position %d of the KV is %d, expected %d", i, s->pos[i], d->start + i);
    return true;
}

bool pc_store_header_matches(const pc_entry_header *h, const uint8_t *image, const pc_store_desc *d,
                             const pc_store_env *env, char *why, size_t cap) {
    if (memcmp(h->model, env->cfg.model, 32) != 0) {
        char hex[65];
        pc_hex(h->model, 32, hex);
        return why_not(why, cap, "written for another model (%.16s..., this is %.16s...)", hex, env->model_hex);
    }
    if (memcmp(h->key, d->key.b, 32) != 0) return why_not(why, cap, "its header holds another key");
    if (h->n_layer != env->cfg.n_layer || h->dim != env->cfg.dim)
        return why_not(why, cap, "shape %d layers x %d, the model's is %d x %d", h->n_layer, h->dim, env->cfg.n_layer,
                       env->cfg.dim);
    if (h->start != d->start || h->n != d->n)
        return why_not(why, cap, "positions [%d, +%d), expected [%d, +%d)", h->start, h->n, d->start, d->n);
    if (memcmp(image + h->tokens_off, d->tokens, (size_t)d->n * sizeof *d->tokens) != 0)
        return why_not(why, cap, "token ids differ from the piece's");
    return true;
}

pc_status pc_store_entry_from_image(const pc_entry_header *h, const uint8_t *image, const pc_store_desc *d,
                                    void (*release)(void *owner), void *owner, pc_store_entry **out, pc_error *err) {
    pc_entry_layout L;
    pc_entry_layout_of(h->n_layer, h->dim, h->cap, &L); /* checked by the header parser */
    uint8_t *payload = (uint8_t *)image + h->header_len;
    pc_kv_span *span = pc_kv_span_wrap(h->n_layer, h->dim, h->n, h->cap, (int32_t *)(void *)(payload + L.pos_off),
                                       (pc_f16 *)(void *)(payload + L.k_off), (pc_f16 *)(void *)(payload + L.v_off),
                                       release, owner);
    if (!span) return pc_fail(err, PC_ERR_NOMEM, "out of memory for store entry '%s'", d->label ? d->label : "");
    return pc_store_entry_create(d, span, out, err);
}

uint64_t pc_store_entry_image_bytes(const pc_store_entry *e) {
    return (uint64_t)pc_entry_header_len(e->n, (uint32_t)strnlen(e->label, PC_ENTRY_MAX_LABEL)) + e->bytes;
}

/* ---- serialization ---- */

/* Gathers small writes into large ones; also hashes the payload. */
typedef struct emitter {
    int (*sink)(void *u, const void *p, size_t n);
    void *u;
    uint8_t *buf;
    size_t len, cap;
    XXH3_state_t *hash; /* NULL: not hashing */
    int rc;
} emitter;

static void emit_flush(emitter *E) {
    if (E->rc == 0 && E->len && E->sink) E->rc = E->sink(E->u, E->buf, E->len);
    E->len = 0;
}

static void emit(emitter *E, const void *p, size_t n) {
    if (E->hash) XXH3_64bits_update(E->hash, p, n);
    if (!E->sink) return;
    if (n >= E->cap) {
        emit_flush(E);
        if (E->rc == 0) E->rc = E->sink(E->u, p, n);
        return;
    }
    if (E->len + n > E->cap) emit_flush(E);
    memcpy(E->buf + E->len, p, n);
    E->len += n;
}

static void emit_zeros(emitter *E, size_t n) {
    static const uint8_t Z[4096];
    while (n) {
        size_t k = n < sizeof Z ? n : sizeof Z;
        emit(E, Z, k);
        n -= k;
    }
}

/* The payload of e (format.h): positions, keys, values for cap = round8(n) tokens. */
static void emit_payload(emitter *E, const pc_store_entry *e, const pc_entry_layout *L) {
    const pc_kv_span *s = e->span;
    const int32_t n = e->n, cap = (n + 7) / 8 * 8, blocks = cap / PC_KV_BLOCK;
    emit(E, s->pos, (size_t)n * sizeof *s->pos);
    emit_zeros(E, L->k_off - (uint64_t)n * sizeof *s->pos);
    const size_t blk = (size_t)s->dim * PC_KV_BLOCK * sizeof(pc_f16), row = (size_t)s->dim * sizeof(pc_f16);
    pc_f16 *last = (n % PC_KV_BLOCK) ? malloc(blk) : NULL;
    for (int32_t l = 0; l < s->n_layer; l++) {
        const int32_t full = n / PC_KV_BLOCK;
        emit(E, pc_kv_k_block(s, l, 0), (size_t)full * blk);
        if (full < blocks) { /* a partial last block: lanes past n are zero */
            if (!last) {
                if (E->rc == 0) E->rc = -ENOMEM;
                return;
            }
            memcpy(last, pc_kv_k_block(s, l, full), blk);
            for (int32_t d = 0; d < s->dim; d++)
                for (int32_t j = n % PC_KV_BLOCK; j < PC_KV_BLOCK; j++) last[(size_t)d * PC_KV_BLOCK + (size_t)j] = 0;
            emit(E, last, blk);
        }
    }
    free(last);
    emit_zeros(E, L->v_off - L->k_off - (uint64_t)s->n_layer * (uint64_t)blocks * blk);
    for (int32_t l = 0; l < s->n_layer; l++) {
        emit(E, pc_kv_v(s, l, 0), (size_t)n * row);
        emit_zeros(E, (size_t)(cap - n) * row);
    }
}

int pc_store_entry_emit(const pc_store_entry *e, const pc_store_env *env, int (*sink)(void *u, const void *p, size_t n),
                        void *u) {
    pc_entry_header h = {.version = PC_STORE_FORMAT_VERSION, .elem = PC_STORE_ELEM_F16,
                         .layout = PC_ENTRY_LAYOUT_SPAN, .n_layer = e->span->n_layer, .dim = e->span->dim,
                         .start = e->start, .n = e->n, .cap = (e->n + 7) / 8 * 8,
                         .label_len = (uint32_t)strnlen(e->label, PC_ENTRY_MAX_LABEL)};
    pc_entry_layout L;
    if (!pc_entry_layout_of(h.n_layer, h.dim, h.cap, &L)) return -EINVAL;
    memcpy(h.key, e->key.b, 32);
    memcpy(h.model, env->cfg.model, 32);
    memcpy(h.group, e->group, 32);
    h.header_len = pc_entry_header_len(h.n, h.label_len);
    h.payload_len = L.len;
    XXH3_state_t *st = XXH3_createState();
    emitter E = {.cap = 1u << 20, .hash = st};
    E.buf = malloc(E.cap);
    uint8_t *head = malloc(h.header_len);
    if (!st || !E.buf || !head) E.rc = -ENOMEM;
    if (E.rc == 0) { /* first pass: the payload's checksum, which the header carries */
        XXH3_64bits_reset(st);
        emit_payload(&E, e, &L);
        h.payload_sum = XXH3_64bits_digest(st);
    }
    if (E.rc == 0) {
        pc_entry_header_write(&h, e->tokens, e->label, head);
        E.hash = NULL;
        E.sink = sink;
        E.u = u;
        emit(&E, head, h.header_len);
        emit_payload(&E, e, &L);
        emit_flush(&E);
    }
    XXH3_freeState(st);
    free(E.buf);
    free(head);
    return E.rc;
}

/* ---- counters ---- */

void pc_tier_count_time(_Atomic uint64_t *ns, double ms) { atomic_fetch_add(ns, (uint64_t)(ms * 1e6)); }

void pc_tier_counters_read(const pc_tier_counters *c, pc_cache_tier_stats *out) {
    out->hits = atomic_load(&c->hits);
    out->misses = atomic_load(&c->misses);
    out->evictions = atomic_load(&c->evictions);
    out->checksum_failures = atomic_load(&c->checksum_failures);
    out->rejected = atomic_load(&c->rejected);
    out->errors = atomic_load(&c->errors);
    out->writes = atomic_load(&c->writes);
    out->bytes_read = atomic_load(&c->bytes_read);
    out->bytes_written = atomic_load(&c->bytes_written);
    out->read_ms = (double)atomic_load(&c->read_ns) / 1e6;
    out->write_ms = (double)atomic_load(&c->write_ns) / 1e6;
}
