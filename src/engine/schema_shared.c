/* schema_shared.c - the schema registry shared by every process on one remote
 * tier (Redis): SERVING.md's "several servers, one Redis".
 *
 * A published schema leaves a record in the store (pc_store_record_*) named
 * "schema:NAME" or "schema:TENANT/NAME" (the store adds its key prefix and the
 * model), holding its digest, pin, TTL and PML text:
 *
 *     pcache-schema 1 <digest, 64 hex digits>\n
 *     pin <0|1> ttl <seconds>\n
 *     <the PML>
 *
 * The record is the truth every process agrees on: a process that does not
 * hold a name finds the record and registers its PML (the pieces come from
 * the store, so nothing another process encoded is encoded again); a
 * process holding a published schema checks, at each use, that the record
 * still names the same digest, and unregisters its copy when the record is
 * gone (DELETE on any process, or the TTL, which the record carries as its
 * Redis expiry) or re-registers the record's version. The check reads only
 * the first line (GETRANGE): one round trip per prompt.
 *
 * What a record holds is input from outside the process: it is parsed with
 * limits, its PML goes through the same parser and layout as a POST, and a
 * schema whose layout here gives another digest than the record's is refused.
 * A registry that cannot be reached changes nothing: each process keeps
 * serving what it holds. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_internal.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/sha256.h"

#define MAGIC "pcache-schema 1 "
#define HEAD_BYTES 128                           /* the first line, and room to spare */
#define RECORD_MAX ((size_t)64 << 20)            /* PML text a record may hold */

typedef struct record {
    uint8_t digest[32];
    bool pin;
    double ttl_s;
    const char *pml; /* into the record's text */
    size_t pml_len;
} record;

static void record_name(const char *registered, char *out, size_t cap) { snprintf(out, cap, "schema:%s", registered); }

static void registered_of(const pc_schema *s, char *out, size_t cap) {
    snprintf(out, cap, "%s%s%s", s->tenant, *s->tenant ? "/" : "", s->name);
}

/* The digest of a record's first line; false when it is not one. */
static bool parse_head(const char *t, size_t len, uint8_t digest[32]) {
    const size_t m = strlen(MAGIC);
    return len >= m + 64 && !memcmp(t, MAGIC, m) && pc_unhex(t + m, 32, digest) == 0 && (len == m + 64 || t[m + 64] == '\n');
}

static pc_status parse_record(const char *t, size_t len, const char *where, record *r, pc_error *err) {
    const char *nl1 = memchr(t, '\n', len);
    const char *nl2 = nl1 ? memchr(nl1 + 1, '\n', len - (size_t)(nl1 + 1 - t)) : NULL;
    int pin = -1, used = 0;
    char line[96];
    const size_t l2 = nl2 ? (size_t)(nl2 - nl1 - 1) : 0;
    if (nl2 && l2 < sizeof line) {
        memcpy(line, nl1 + 1, l2);
        line[l2] = '\0';
    }
    if (!parse_head(t, len, r->digest) || !nl2 || l2 >= sizeof line ||
        sscanf(line, "pin %d ttl %lf%n", &pin, &r->ttl_s, &used) != 2 || (size_t)used != l2 || (pin != 0 && pin != 1) ||
        !(r->ttl_s >= 0 && r->ttl_s < 1e12))
        return pc_fail(err, PC_ERR_FORMAT, "%s: the shared registry's record is malformed (not a pcache-schema 1 record)",
                       where);
    r->pin = pin == 1;
    r->pml = nl2 + 1;
    r->pml_len = len - (size_t)(r->pml - t);
    return PC_OK;
}

pc_status pc_engine_shared_check(pc_engine *e, const pc_schema *s, const pc_shared_reg *sh, bool *same, pc_error *err) {
    *same = false;
    if (sh->want) { /* registering from the record itself */
        if (!memcmp(sh->want, s->digest, 32)) return PC_OK;
        char a[17], b[17];
        pc_hex(sh->want, 8, a);
        pc_hex(s->digest, 8, b);
        return pc_fail(err, PC_ERR_FORMAT,
                       "%s: schema '%s' of the shared registry lays out differently here (digest %s... there, %s... "
                       "here): is this process on another model or version?", s->doc->name, s->name, a, b);
    }
    char reg[512], name[520], *head = NULL;
    size_t n = 0;
    uint8_t d[32];
    registered_of(s, reg, sizeof reg);
    record_name(reg, name, sizeof name);
    pc_error rerr = {0};
    if (pc_store_record_get(e->store, name, HEAD_BYTES, &head, &n, &rerr) != PC_OK) return PC_OK; /* absent or unknown */
    const bool ok = parse_head(head, n, d);
    free(head);
    if (!ok) return PC_OK; /* a malformed record: this registration replaces it */
    *same = !memcmp(d, s->digest, 32);
    if (*same) return PC_OK;
    char a[17], b[17];
    pc_hex(d, 8, a);
    pc_hex(s->digest, 8, b);
    return pc_fail(err, PC_ERR_EXISTS,
                   "%s: a different schema named '%s' is already registered%s%s on a server sharing this Redis (digest "
                   "%s..., this one %s...): remove it first or choose another name",
                   s->doc->name, s->name, *s->tenant ? " for tenant " : "", s->tenant, a, b);
}

static pc_status write_record(pc_engine *e, const pc_schema *s, const char *name, const pc_shared_reg *sh,
                              const pc_schema_params *p, bool *written, pc_error *err) {
    char hex[65];
    pc_hex(s->digest, 32, hex);
    const double ttl = p && p->ttl_s > 0 ? p->ttl_s : 0;
    pc_buf b = {0};
    pc_status st = pc_buf_printf(&b, "%s%s\npin %d ttl %.17g\n", MAGIC, hex, p && p->pin ? 1 : 0, ttl) &&
                           pc_buf_append(&b, sh->xml, sh->len)
                       ? pc_store_record_put(e->store, name, b.data, b.len, true, ttl, written, err)
                       : pc_fail(err, PC_ERR_NOMEM, "out of memory publishing schema '%s'", s->name);
    pc_buf_free(&b);
    return st;
}

pc_status pc_engine_shared_publish(pc_engine *e, pc_schema *s, const pc_shared_reg *sh, const pc_schema_params *p,
                                   pc_error *err) {
    if (sh->want) { /* it came from the record: in the registry already */
        s->published = true;
        return PC_OK;
    }
    if (!sh->xml || sh->len > RECORD_MAX) return PC_OK; /* too big to share: this process's own */
    char reg[512], name[520];
    registered_of(s, reg, sizeof reg);
    record_name(reg, name, sizeof name);
    bool written = false;
    pc_error rerr = {0};
    if (write_record(e, s, name, sh, p, &written, &rerr) != PC_OK) return PC_OK; /* unreachable: unpublished */
    if (!written) { /* another process published the name meanwhile (SET NX lost) */
        bool same = false;
        pc_status st = pc_engine_shared_check(e, s, &(pc_shared_reg){0}, &same, err);
        if (st != PC_OK) return st;
    }
    s->published = true;
    return PC_OK;
}

void pc_engine_shared_forget(pc_engine *e, const char *registered) {
    char name[520];
    pc_error ignored;
    record_name(registered, name, sizeof name);
    pc_store_record_remove(e->store, name, &ignored);
}

/* What this process holds under a registered name. */
typedef struct held {
    bool present, published;
    uint8_t digest[32];
} held;

static held held_of(pc_engine *e, const char *registered) {
    held h = {0};
    pthread_rwlock_rdlock(&e->schemas_lock);
    const pc_schema *s = pc_engine_find_schema(e, registered);
    if (s) {
        h.present = true;
        h.published = s->published;
        memcpy(h.digest, s->digest, 32);
    }
    pthread_rwlock_unlock(&e->schemas_lock);
    return h;
}

/* Registers the record's schema here, replacing what is held under its name. */
static pc_status adopt(pc_engine *e, const char *registered, const char *name, const held *h, pc_error *err) {
    char *text = NULL;
    size_t n = 0;
    pc_error rerr = {0};
    pc_status st = pc_store_record_get(e->store, name, RECORD_MAX + HEAD_BYTES + 1, &text, &n, &rerr);
    if (st != PC_OK) return PC_OK; /* gone meanwhile, or unreachable: nothing changes */
    record r;
    char where[560], tenant[256] = "";
    snprintf(where, sizeof where, "redis %s", name);
    if (n > RECORD_MAX + HEAD_BYTES) st = pc_fail(err, PC_ERR_RANGE, "%s: the shared registry's record is over %zu bytes", where, RECORD_MAX);
    if (st == PC_OK) st = parse_record(text, n, where, &r, err);
    const char *slash = strchr(registered, '/');
    if (st == PC_OK && slash) {
        if ((size_t)(slash - registered) >= sizeof tenant) st = pc_fail(err, PC_ERR_RANGE, "%s: tenant too long", where);
        else memcpy(tenant, registered, (size_t)(slash - registered));
    }
    if (st == PC_OK && h->present && h->published && !memcmp(h->digest, r.digest, 32)) st = PC_ERR_EXISTS; /* current */
    if (st == PC_OK && h->present) pc_engine_schema_unregister(e, registered, false, &rerr);
    if (st == PC_OK) {
        const pc_schema_params p = {.tenant = slash ? tenant : NULL, .pin = r.pin, .ttl_s = r.ttl_s};
        const pc_shared_reg sh = {.want = r.digest};
        char *got = NULL;
        st = pc_engine_schema_load_shared(e, r.pml, r.pml_len, where, &p, &sh, &got, err);
        if (st == PC_OK && strcmp(got, registered) != 0) { /* the record's PML names another schema */
            pc_engine_schema_unregister(e, got, false, &rerr);
            st = pc_fail(err, PC_ERR_FORMAT, "%s: the record's schema is named '%s', not '%s'", where, got, registered);
        }
        free(got);
    }
    free(text);
    return st == PC_ERR_EXISTS ? PC_OK : st;
}

pc_status pc_engine_schema_sync(pc_engine *e, const char *registered, pc_error *err) {
    if (!pc_store_has_records(e->store) || !registered || !*registered) return PC_OK;
    const held h = held_of(e, registered);
    if (h.present && !h.published) return PC_OK; /* this process's own (pcache serve --schema) */
    char name[520], *head = NULL;
    size_t n = 0;
    pc_error rerr = {0};
    if (strlen(registered) > 500) return PC_OK; /* no such record can exist */
    record_name(registered, name, sizeof name);
    pc_status st = pc_store_record_get(e->store, name, HEAD_BYTES, &head, &n, &rerr);
    uint8_t d[32];
    const bool ok = st == PC_OK && parse_head(head, n, d);
    free(head);
    if (st == PC_ERR_NOT_FOUND && h.present) /* removed elsewhere, or expired */
        pc_engine_schema_unregister(e, registered, false, &rerr);
    if (!ok || (h.present && !memcmp(d, h.digest, 32))) return PC_OK;
    return adopt(e, registered, name, &h, err);
}
