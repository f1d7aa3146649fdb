/* scan_redis.c - the entries in Redis under a prefix, for `pcache cache`: each
 * manifest found by SCAN (never KEYS, which blocks a shared server), its
 * header read from the first parts (GETRANGE: no payload moves for a
 * listing), and with verify every part read and checked against the manifest.
 * Removal deletes the manifest first, then the parts, so no reader ever sees a
 * manifest whose parts are going. */
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/format.h"
#include "store/scan.h"
#include "store/store.h"
#include "util/error.h"
#include "util/sha256.h"

static redisContext *connect_to(const pc_cache_params *p, pc_error *err) {
    const char *colon = strrchr(p->redis, ':');
    char host[256];
    if (!colon || colon == p->redis || (size_t)(colon - p->redis) >= sizeof host) {
        pc_fail(err, PC_ERR_INVALID, "--cache-redis '%s': expected host:port", p->redis);
        return NULL;
    }
    memcpy(host, p->redis, (size_t)(colon - p->redis));
    host[colon - p->redis] = '\0';
    const int ms = p->redis_timeout_ms > 0 ? p->redis_timeout_ms : 2000;
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    redisContext *c = redisConnectWithTimeout(host, atoi(colon + 1), tv);
    if (!c || c->err || redisSetTimeout(c, tv) != REDIS_OK) {
        pc_fail(err, PC_ERR_IO, "redis %s: %s", p->redis, c ? c->errstr : "out of memory");
        if (c) redisFree(c);
        return NULL;
    }
    return c;
}

static const char *prefix_of(const pc_cache_params *p) { return p->redis_prefix ? p->redis_prefix : "pcache:"; }

/* The first `want` bytes of the entry image, gathered from its parts. */
static uint8_t *read_head(redisContext *c, const char *prefix, const pc_manifest *m, size_t want) {
    uint8_t *buf = malloc(want ? want : 1);
    size_t got = 0;
    char pk[320];
    for (uint32_t i = 0; buf && i < m->n_parts && got < want; i++) {
        pc_manifest_part_name(prefix, m->key, m->nonce, i, pk, sizeof pk);
        size_t take = want - got < m->parts[i].len ? want - got : (size_t)m->parts[i].len;
        redisReply *r = redisCommand(c, "GETRANGE %s 0 %lld", pk, (long long)take - 1); /* hiredis knows no %zu */
        bool ok = r && r->type == REDIS_REPLY_STRING && (size_t)r->len == take;
        if (ok) memcpy(buf + got, r->str, take);
        if (r) freeReplyObject(r);
        if (!ok) break;
        got += take;
    }
    if (buf && got < want) {
        free(buf);
        buf = NULL;
    }
    return buf;
}

/* Reads every part and checks it against the manifest; "" when all check out. */
static void verify_parts(redisContext *c, const char *prefix, const pc_manifest *m, char *problem, size_t cap) {
    char pk[320];
    for (uint32_t i = 0; i < m->n_parts && !problem[0]; i++) {
        pc_manifest_part_name(prefix, m->key, m->nonce, i, pk, sizeof pk);
        redisReply *r = redisCommand(c, "GET %s", pk);
        if (!r || r->type != REDIS_REPLY_STRING)
            snprintf(problem, cap, "part %u of %u is missing", i, m->n_parts);
        else if ((uint64_t)r->len != m->parts[i].len)
            snprintf(problem, cap, "part %u is %zu bytes, its manifest says %llu", i, (size_t)r->len,
                     (unsigned long long)m->parts[i].len);
        else if (pc_xxh3(r->str, (size_t)r->len) != m->parts[i].sum)
            snprintf(problem, cap, "part %u checksum mismatch", i);
        if (r) freeReplyObject(r);
    }
}

typedef struct listed {
    pc_cache_entry_info info;
    char model[65], key[65], label[PC_ENTRY_MAX_LABEL + 1], problem[PC_ERROR_MSG_MAX];
} listed;

/* What one manifest key holds; false when the key is not a manifest at all. */
static bool inspect(redisContext *c, const char *prefix, const char *name, bool verify, listed *L) {
    const size_t pl = strlen(prefix);
    pc_store_key k;
    if (strlen(name) != pl + 64 || pc_store_key_parse(name + pl, &k) != 0) return false;
    memset(L, 0, sizeof *L);
    L->info = (pc_cache_entry_info){.tier = PC_SOURCE_REMOTE, .where = name, .model = L->model, .key = L->key,
                                    .label = L->label};
    snprintf(L->key, sizeof L->key, "%s", name + pl);
    redisReply *r = redisCommand(c, "GET %s", name);
    pc_manifest m = {0};
    pc_error perr = {0};
    if (!r || r->type != REDIS_REPLY_STRING) {
        snprintf(L->problem, sizeof L->problem, "the manifest cannot be read (%s)", !r ? c->errstr : r->type == REDIS_REPLY_NIL ? "no such key" : r->type == REDIS_REPLY_ERROR ? r->str : "not a string");
    } else if (pc_manifest_parse((const uint8_t *)r->str, (size_t)r->len, PC_PART_MAX_BYTES, &m, &perr) != PC_OK) {
        snprintf(L->problem, sizeof L->problem, "%s", perr.msg);
    } else if (memcmp(m.key, k.b, 32) != 0) {
        snprintf(L->problem, sizeof L->problem, "the manifest names another key");
    } else {
        L->info.bytes = m.total_len;
        uint8_t *head = read_head(c, prefix, &m, PC_ENTRY_FIXED);
        uint32_t hl = 0;
        if (!head || pc_entry_header_peek(head, PC_ENTRY_FIXED, &hl, &perr) != PC_OK || hl > m.total_len) {
            snprintf(L->problem, sizeof L->problem, "%s", head ? (perr.msg[0] ? perr.msg : "header longer than the entry")
                                                             : "part 0 is missing");
        } else {
            free(head);
            head = read_head(c, prefix, &m, hl);
            pc_entry_header h;
            if (!head || pc_entry_header_parse(head, hl, &h, &perr) != PC_OK) {
                snprintf(L->problem, sizeof L->problem, "%s", head ? perr.msg : "a part is missing");
            } else {
                pc_hex(h.model, 32, L->model);
                snprintf(L->label, sizeof L->label, "%.*s", (int)h.label_len, (const char *)head + h.label_off);
                L->info.start = h.start;
                L->info.n = h.n;
                if (verify) verify_parts(c, prefix, &m, L->problem, sizeof L->problem);
            }
        }
        free(head);
    }
    if (r) freeReplyObject(r);
    pc_manifest_free(&m);
    L->info.problem = L->problem[0] ? L->problem : NULL;
    return true;
}

pc_status pc_cache_scan_redis(const pc_cache_params *p, bool verify, pc_cache_entry_fn fn, void *user, pc_error *err) {
    redisContext *c = connect_to(p, err);
    if (!c) return PC_ERR_IO;
    const char *prefix = prefix_of(p);
    char cursor[32] = "0", pattern[300];
    snprintf(pattern, sizeof pattern, "%s*", prefix);
    listed *L = malloc(sizeof *L);
    pc_status st = L ? PC_OK : pc_fail(err, PC_ERR_NOMEM, "out of memory listing Redis");
    bool go = true;
    do {
        redisReply *r = st == PC_OK ? redisCommand(c, "SCAN %s MATCH %s COUNT 1000", cursor, pattern) : NULL;
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[0]->type != REDIS_REPLY_STRING) {
            if (st == PC_OK) st = pc_fail(err, PC_ERR_IO, "redis %s: SCAN failed: %s", p->redis, c->err ? c->errstr : "bad reply");
            if (r) freeReplyObject(r);
            break;
        }
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
        for (size_t i = 0; go && i < r->element[1]->elements; i++)
            if (inspect(c, prefix, r->element[1]->element[i]->str, verify, L)) go = fn(user, &L->info);
        freeReplyObject(r);
    } while (go && strcmp(cursor, "0") != 0);
    free(L);
    redisFree(c);
    return st;
}

pc_status pc_cache_remove_redis(const pc_cache_params *p, const char *manifest_key, pc_error *err) {
    redisContext *c = connect_to(p, err);
    if (!c) return PC_ERR_IO;
    redisReply *r = redisCommand(c, "GET %s", manifest_key);
    pc_manifest m = {0};
    pc_error perr = {0};
    bool parsed = r && r->type == REDIS_REPLY_STRING &&
                  pc_manifest_parse((const uint8_t *)r->str, (size_t)r->len, PC_PART_MAX_BYTES, &m, &perr) == PC_OK;
    if (r) freeReplyObject(r);
    r = redisCommand(c, "DEL %s", manifest_key);
    pc_status st = r && r->type == REDIS_REPLY_INTEGER ? PC_OK
                                                       : pc_fail(err, PC_ERR_IO, "redis %s: deleting %s failed", p->redis, manifest_key);
    if (r) freeReplyObject(r);
    char pk[320];
    for (uint32_t i = 0; parsed && st == PC_OK && i < m.n_parts; i++) {
        pc_manifest_part_name(prefix_of(p), m.key, m.nonce, i, pk, sizeof pk);
        if ((r = redisCommand(c, "DEL %s", pk)) != NULL) freeReplyObject(r);
    }
    pc_manifest_free(&m);
    redisFree(c);
    return st;
}
