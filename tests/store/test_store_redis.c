/* test_store_redis.c - the Redis tier against a real redis-server, and Redis
 * failing in every way the issue names (through tcp_proxy.h, which cuts or
 * stalls the connection exactly where asked).
 *
 *  1. An entry written in parts (small parts here, so several) is read back by
 *     another store, bit for bit, and promoted to memory; its keys are a
 *     manifest plus the parts, all persistent, or expiring after the TTL (the
 *     parts after the manifest).
 *  2. Two processes: what a child process writes, the parent reads.
 *  3. Damage in Redis: a manifest without one of its parts, a corrupt part, a
 *     corrupt manifest, a manifest under another entry's key: each detected,
 *     counted, logged, deleted, never served.
 *  4. Failures: Redis unreachable (one warning, requests served, no retry
 *     storm), dying mid-write (no manifest becomes visible; the parts written
 *     expire with their lease), dying mid-read (a miss, the entry kept and
 *     served once Redis is back), hanging (the timeout turns it into a miss).
 *  5. Two writers of one key at once: one manifest, only its parts remain.
 *  6. Listing (pcache cache ls|verify|rm): labels read from the parts'
 *     headers; verify finds a corrupt part; removal deletes manifest and parts.
 * Skips (exit 77) only when no Redis can be had. */
#include <pthread.h>
#include <sys/wait.h>

#include "redis_fixture.h"
#include "store/format.h"
#include "store_testlib.h"
#include "tcp_proxy.h"

/* The Redis every check shares, and the count behind each check's key prefix. */
typedef struct suite {
    redis_fixture rf;
    int prefix_no;
} suite;

typedef struct rs {
    char prefix[96];
    t_log log;
    t_clock clk;
    const redis_fixture *rf;
} rs;

/* A key prefix of its own for each check: they all share one Redis. */
static void rs_init(rs *R, suite *S) {
    memset(R, 0, sizeof *R);
    snprintf(R->prefix, sizeof R->prefix, "pctest:%d:%d:", (int)getpid(), ++S->prefix_no);
    R->clk.ms = 1e6;
    R->rf = &S->rf;
}

static pc_store *open_redis(rs *R, const char *addr, int timeout_ms, int ttl_s) {
    pc_store_config c = t_config(&R->log);
    c.cache.redis = addr;
    c.cache.redis_prefix = R->prefix;
    c.cache.redis_timeout_ms = timeout_ms;
    c.cache.redis_ttl_s = ttl_s;
    c.redis_part_bytes = 4096;
    c.now_ms = t_clock_fn;
    c.now_user = &R->clk;
    pc_store *s = NULL;
    pc_error err = {0};
    CHECK_MSG(pc_store_open(&c, &s, &err) == PC_OK, "%s", err.msg);
    return s;
}

static void key_name(const rs *R, const t_piece *p, char *out, size_t cap) {
    char hex[65];
    pc_store_key_hex(&p->key, hex);
    snprintf(out, cap, "%s%s", R->prefix, hex);
}

static long long pttl(const rs *R, const char *key) {
    redisContext *c = rf_connect(R->rf);
    redisReply *r = c ? redisCommand(c, "PTTL %s", key) : NULL;
    long long v = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -100;
    if (r) freeReplyObject(r);
    if (c) redisFree(c);
    return v;
}

/* Runs a command on the test's own connection. */
static void raw(const rs *R, const char *fmt, const char *a, const char *b) {
    redisContext *c = rf_connect(R->rf);
    redisReply *r = c ? redisCommand(c, fmt, a, b) : NULL;
    CHECK_MSG(r && r->type != REDIS_REPLY_ERROR, "%s on %s", fmt, a);
    if (r) freeReplyObject(r);
    if (c) redisFree(c);
}

/* Names of keys under a pattern (up to cap). */
static int list_keys(const rs *R, const char *pattern, char names[][160], int cap) {
    redisContext *c = rf_connect(R->rf);
    redisReply *r = c ? redisCommand(c, "KEYS %s", pattern) : NULL;
    int n = 0;
    for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements && n < cap; i++)
        snprintf(names[n++], 160, "%s", r->element[i]->str);
    if (r) freeReplyObject(r);
    if (c) redisFree(c);
    return n;
}

static void part_name(const rs *R, const t_piece *p, int i, char *out, size_t cap) {
    char mkey[160], pattern[200], names[16][160];
    key_name(R, p, mkey, sizeof mkey);
    snprintf(pattern, sizeof pattern, "%s:*:%d", mkey, i);
    out[0] = '\0';
    if (list_keys(R, pattern, names, 16) == 1) snprintf(out, cap, "%s", names[0]);
}

/* ---------------- 1, 2. round trip, TTL, two processes ---------------- */

static const long N_PARTS = 4; /* a 60-token entry: 12544 bytes in 4096-byte parts */

static void check_roundtrip(suite *S) {
    rs R;
    rs_init(&R, S);
    t_piece p = t_piece_make(0, 60, "");
    pc_store *a = open_redis(&R, R.rf->addr, 2000, 0);
    t_put(a, &p, false);
    CHECK_EQ_INT(redis_fixture_count(R.rf, R.prefix), 1 + N_PARTS);
    pc_cache_tier_stats rt = t_tier_stats(a, PC_SOURCE_REMOTE);
    CHECK(rt.enabled && rt.writes == 1 && rt.bytes_written == 12544);
    pc_store_close(a);
    pc_store *b = open_redis(&R, R.rf->addr, 2000, 0);
    CHECK_EQ_INT(t_fetch(b, &p), PC_SOURCE_REMOTE);
    CHECK_EQ_INT(t_fetch(b, &p), PC_SOURCE_MEMORY);
    rt = t_tier_stats(b, PC_SOURCE_REMOTE);
    CHECK(rt.hits == 1 && rt.bytes_read == 12544 && rt.checksum_failures == 0);
    char mkey[160], part[160];
    key_name(&R, &p, mkey, sizeof mkey);
    part_name(&R, &p, 0, part, sizeof part);
    CHECK_MSG(pttl(&R, mkey) == -1 && pttl(&R, part) == -1, "manifest %lld, part %lld: not persistent", pttl(&R, mkey),
              pttl(&R, part));
    CHECK_EQ_INT(R.log.lines, 0);
    pc_store_close(b);
    redis_fixture_clear(R.rf, R.prefix);

    rs_init(&R, S);
    a = open_redis(&R, R.rf->addr, 2000, 100);
    t_put(a, &p, false);
    key_name(&R, &p, mkey, sizeof mkey);
    part_name(&R, &p, 3, part, sizeof part);
    long long tm = pttl(&R, mkey), tp = pttl(&R, part);
    CHECK_MSG(tm > 0 && tm <= 100000 && tp > tm, "TTL: manifest %lld ms, part %lld ms", tm, tp);
    pc_store_close(a);
    redis_fixture_clear(R.rf, R.prefix);
}

static void check_two_processes(suite *S) {
    rs R;
    rs_init(&R, S);
    t_piece p = t_piece_make(7, 50, "");
    pid_t pid = fork();
    if (pid == 0) {
        pc_store *s = open_redis(&R, R.rf->addr, 2000, 0);
        t_put(s, &p, false);
        pc_store_close(s);
        _exit(check_state()->failed ? 1 : 0);
    }
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    pc_store *s = open_redis(&R, R.rf->addr, 2000, 0);
    CHECK_EQ_INT(t_fetch(s, &p), PC_SOURCE_REMOTE);
    pc_store_close(s);
    redis_fixture_clear(R.rf, R.prefix);
}

/* ---------------- 3. damage ---------------- */

static void check_damage(suite *S, const char *what, void (*damage)(rs *R, const t_piece *p), bool checksum,
                         const char *why) {
    rs R;
    rs_init(&R, S);
    t_piece p = t_piece_make(1, 60, "");
    pc_store *s = open_redis(&R, R.rf->addr, 2000, 0);
    t_put(s, &p, false);
    pc_store_close(s);
    damage(&R, &p);
    s = open_redis(&R, R.rf->addr, 2000, 0);
    CHECK_MSG(t_fetch(s, &p) == -1, "%s: served", what);
    pc_cache_tier_stats rt = t_tier_stats(s, PC_SOURCE_REMOTE);
    CHECK_MSG(rt.checksum_failures == (checksum ? 1u : 0u) && rt.rejected == (checksum ? 0u : 1u),
              "%s: checksum failures %llu, rejected %llu", what, (unsigned long long)rt.checksum_failures,
              (unsigned long long)rt.rejected);
    CHECK_MSG(strstr(R.log.all, why) && strstr(R.log.all, "dropped"), "%s: log lacks '%s': %s", what, why, R.log.all);
    char mkey[160];
    key_name(&R, &p, mkey, sizeof mkey);
    CHECK_MSG(pttl(&R, mkey) == -2, "%s: the manifest is still there", what);
    t_put(s, &p, false); /* encoded afresh and written again */
    pc_store_close(s);
    s = open_redis(&R, R.rf->addr, 2000, 0);
    CHECK_MSG(t_fetch(s, &p) == PC_SOURCE_REMOTE, "%s: not served after being written again", what);
    pc_store_close(s);
    redis_fixture_clear(R.rf, R.prefix);
}

static void d_missing_part(rs *R, const t_piece *p) {
    char part[160];
    part_name(R, p, 2, part, sizeof part);
    raw(R, "DEL %s%s", part, "");
}

static void d_corrupt_part(rs *R, const t_piece *p) {
    char part[160];
    part_name(R, p, 1, part, sizeof part);
    raw(R, "SETRANGE %s 100 %s", part, "X");
}

static void d_corrupt_manifest(rs *R, const t_piece *p) {
    char mkey[160];
    key_name(R, p, mkey, sizeof mkey);
    raw(R, "SETRANGE %s 70 %s", mkey, "Z");
}

/* The manifest of another piece, under this piece's key. */
static void d_other_manifest(rs *R, const t_piece *p) {
    t_piece q = t_piece_make(2, 60, "");
    pc_store *s = open_redis(R, R->rf->addr, 2000, 0);
    t_put(s, &q, false);
    pc_store_close(s);
    char mine[160], theirs[160];
    key_name(R, p, mine, sizeof mine);
    key_name(R, &q, theirs, sizeof theirs);
    raw(R, "RENAME %s %s", theirs, mine);
}

/* A well-formed manifest (its checksum right) that states a size no entry of
 * this piece can have: refused before anything is allocated for it. */
static void d_oversized_manifest(rs *R, const t_piece *p) {
    char mkey[160];
    key_name(R, p, mkey, sizeof mkey);
    redisContext *c = rf_connect(R->rf);
    redisReply *r = c ? redisCommand(c, "GET %s", mkey) : NULL;
    pc_manifest m = {0};
    CHECK(r && r->type == REDIS_REPLY_STRING &&
          pc_manifest_parse((const uint8_t *)r->str, (size_t)r->len, 1u << 24, &m, NULL) == PC_OK);
    if (r) freeReplyObject(r);
    if (m.parts) { /* one more part (each within the part limit), so the total grows by 4096 */
        pc_manifest_part *more = realloc(m.parts, (m.n_parts + 1) * sizeof *more);
        CHECK(more != NULL);
        if (!more) return;
        m.parts = more;
        m.parts[m.n_parts++] = (pc_manifest_part){.len = 4096, .sum = 0};
        m.total_len += 4096;
        uint8_t buf[1024];
        pc_manifest_write(&m, buf);
        r = redisCommand(c, "SET %s %b", mkey, buf, pc_manifest_bytes(m.n_parts));
        CHECK(r && r->type == REDIS_REPLY_STATUS);
        if (r) freeReplyObject(r);
        pc_manifest_free(&m);
    }
    if (c) redisFree(c);
}

static void check_all_damage(suite *S) {
    check_damage(S, "manifest without one of its parts", d_missing_part, false, "part 2 of 4 is missing");
    check_damage(S, "corrupt part", d_corrupt_part, true, "part 1 checksum mismatch");
    check_damage(S, "corrupt manifest", d_corrupt_manifest, true, "manifest checksum mismatch");
    check_damage(S, "another entry's manifest", d_other_manifest, false, "names another key");
    check_damage(S, "a manifest stating another size", d_oversized_manifest, false,
                 "states 16640 bytes, an entry of 60 tokens has 12544");
}

/* ---------------- 4. failures ---------------- */

static void check_unreachable(suite *S) {
    rs R;
    rs_init(&R, S);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", rf_free_port()); /* nobody listens there */
    pc_store *s = open_redis(&R, addr, 500, 0);
    t_piece p = t_piece_make(3, 20, ""), q = t_piece_make(4, 20, "");
    t_put(s, &p, false); /* served: memory holds it */
    CHECK_EQ_INT(t_fetch(s, &p), PC_SOURCE_MEMORY);
    CHECK_EQ_INT(t_fetch(s, &q), -1);
    CHECK(!pc_store_exists(s, &q.key));
    CHECK_MSG(R.log.lines == 1 && strstr(R.log.last, addr) && strstr(R.log.last, "serving from the other tiers"),
              "%d lines: %s", R.log.lines, R.log.all);
    pc_cache_tier_stats rt = t_tier_stats(s, PC_SOURCE_REMOTE);
    CHECK_EQ_INT(rt.errors, 1); /* later calls within the back-off do not even try */
    R.clk.ms += 5000;          /* past the back-off: one more attempt, no second warning */
    CHECK_EQ_INT(t_fetch(s, &q), -1);
    CHECK_EQ_INT(t_tier_stats(s, PC_SOURCE_REMOTE).errors, 2);
    CHECK_EQ_INT(R.log.lines, 1);
    pc_store_close(s);
}

static void check_dies_mid_write(suite *S) {
    rs R;
    rs_init(&R, S);
    tcp_proxy px;
    CHECK(tcp_proxy_start(&px, R.rf->port) == 0);
    pc_store *s = open_redis(&R, px.addr, 2000, 0);
    t_piece p = t_piece_make(5, 60, "");
    tcp_proxy_cut_up(&px, 6000); /* the EXISTS, then part 0, then half of part 1 */
    t_put(s, &p, false);                  /* served from memory all the same */
    CHECK_EQ_INT(t_fetch(s, &p), PC_SOURCE_MEMORY);
    CHECK_MSG(strstr(R.log.all, "writing failed"), "log: %s", R.log.all);
    char mkey[160], names[16][160], pattern[200];
    key_name(&R, &p, mkey, sizeof mkey);
    CHECK_MSG(pttl(&R, mkey) == -2, "a manifest became visible after a failed write");
    snprintf(pattern, sizeof pattern, "%s*", R.prefix);
    int n = list_keys(&R, pattern, names, 16);
    CHECK_MSG(n >= 1, "part 0 should have been written before the cut");
    for (int i = 0; i < n; i++)
        CHECK_MSG(pttl(&R, names[i]) > 0, "%s: a part without a lease would never go", names[i]);
    tcp_proxy_heal(&px);
    pc_store *fresh = open_redis(&R, R.rf->addr, 2000, 0);
    CHECK_EQ_INT(t_fetch(fresh, &p), -1);
    pc_store_close(fresh);
    pc_store_close(s);
    tcp_proxy_stop(&px);
    redis_fixture_clear(R.rf, R.prefix);
}

static void check_dies_mid_read(suite *S) {
    rs R;
    rs_init(&R, S);
    t_piece p = t_piece_make(6, 60, "");
    pc_store *w = open_redis(&R, R.rf->addr, 2000, 0);
    t_put(w, &p, false);
    pc_store_close(w);
    tcp_proxy px;
    CHECK(tcp_proxy_start(&px, R.rf->port) == 0);
    pc_store *s = open_redis(&R, px.addr, 2000, 0);
    tcp_proxy_cut_down(&px, 3000); /* the manifest's reply, then part of part 0 */
    CHECK_EQ_INT(t_fetch(s, &p), -1);
    CHECK_MSG(strstr(R.log.all, "reading failed"), "log: %s", R.log.all);
    CHECK_EQ_INT(t_tier_stats(s, PC_SOURCE_REMOTE).errors, 1);
    tcp_proxy_heal(&px);
    R.clk.ms += 5000; /* past the back-off */
    CHECK_EQ_INT(t_fetch(s, &p), PC_SOURCE_REMOTE); /* nothing was dropped for a broken connection */
    CHECK_MSG(strstr(R.log.last, "reachable again"), "log: %s", R.log.all);
    pc_store_close(s);
    tcp_proxy_stop(&px);
    redis_fixture_clear(R.rf, R.prefix);
}

static void check_hangs(suite *S) {
    rs R;
    rs_init(&R, S);
    t_piece p = t_piece_make(8, 60, "");
    pc_store *w = open_redis(&R, R.rf->addr, 2000, 0);
    t_put(w, &p, false);
    pc_store_close(w);
    tcp_proxy px;
    CHECK(tcp_proxy_start(&px, R.rf->port) == 0);
    pc_store *s = open_redis(&R, px.addr, 200, 0);
    CHECK(pc_store_exists(s, &p.key)); /* connected and answering */
    tcp_proxy_stall(&px);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK_EQ_INT(t_fetch(s, &p), -1);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    CHECK_MSG(ms < 2000, "a hanging Redis held the request %.0f ms with a 200 ms timeout", ms);
    CHECK_MSG(strstr(R.log.all, "reading failed"), "log: %s", R.log.all);
    tcp_proxy_heal(&px);
    pc_store_close(s);
    tcp_proxy_stop(&px);
    redis_fixture_clear(R.rf, R.prefix);
}

/* ---------------- 5. two writers of one key ---------------- */

typedef struct writer {
    rs *R;
    const t_piece *p;
    pc_status st; /* checked by the main thread: the harness's counters are not thread-safe */
} writer;

static void *write_one(void *arg) {
    writer *w = arg;
    pc_store_config c = t_config(NULL);
    c.cache.redis = w->R->rf->addr;
    c.cache.redis_prefix = w->R->prefix;
    c.redis_part_bytes = 4096;
    pc_store *s = NULL;
    w->st = pc_store_open(&c, &s, NULL);
    pc_store_desc d = t_desc(w->p);
    if (w->st == PC_OK) w->st = pc_store_put(s, &d, t_span(w->p), NULL, NULL);
    pc_store_close(s);
    return NULL;
}

static void check_racing_writers(suite *S) {
    rs R;
    rs_init(&R, S);
    t_piece p = t_piece_make(9, 60, "");
    for (int round = 0; round < 5; round++) {
        pthread_t th[2];
        writer w[2] = {{&R, &p, PC_OK}, {&R, &p, PC_OK}};
        for (int i = 0; i < 2; i++) pthread_create(&th[i], NULL, write_one, &w[i]);
        for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
        CHECK(w[0].st == PC_OK && w[1].st == PC_OK);
        CHECK_EQ_INT(redis_fixture_count(R.rf, R.prefix), 1 + N_PARTS);
        char names[16][160], pattern[200];
        snprintf(pattern, sizeof pattern, "%s*", R.prefix);
        int n = list_keys(&R, pattern, names, 16);
        for (int i = 0; i < n; i++) CHECK_MSG(pttl(&R, names[i]) == -1, "%s: not persistent", names[i]);
        pc_store *s = open_redis(&R, R.rf->addr, 2000, 0);
        CHECK_EQ_INT(t_fetch(s, &p), PC_SOURCE_REMOTE);
        pc_store_close(s);
        redis_fixture_clear(R.rf, R.prefix);
    }
}

/* ---------------- 6. listing ---------------- */

typedef struct listing {
    int n, bad;
    char labels[256], why[256];
    pc_cache_entry_info last; /* where and label point into the buffers below */
    char where_buf[256], label_buf[256];
} listing;

static bool list_one(void *user, const pc_cache_entry_info *e) {
    listing *L = user;
    L->n++;
    strncat(L->labels, e->label, sizeof L->labels - strlen(L->labels) - 2);
    strcat(L->labels, ";");
    if (e->problem) L->bad++, snprintf(L->why, sizeof L->why, "%s", e->problem);
    L->last = *e;
    snprintf(L->where_buf, sizeof L->where_buf, "%s", e->where);
    snprintf(L->label_buf, sizeof L->label_buf, "%s", e->label);
    L->last.where = L->where_buf;
    L->last.label = L->label_buf;
    return true;
}

static void check_listing(suite *S) {
    rs R;
    rs_init(&R, S);
    t_piece p = t_piece_make(1, 60, ""), q = t_piece_make(2, 9, "");
    pc_store *s = open_redis(&R, R.rf->addr, 2000, 0);
    t_put(s, &p, false);
    t_put(s, &q, false);
    pc_store_close(s);
    pc_cache_params cp = {.redis = R.rf->addr, .redis_prefix = R.prefix};
    listing L = {0};
    pc_error err = {0};
    CHECK_MSG(pc_cache_scan(&cp, true, list_one, &L, &err) == PC_OK, "%s", err.msg);
    CHECK_MSG(L.n == 2 && L.bad == 0 && strstr(L.labels, "test:piece#1;") && strstr(L.labels, "test:piece#2;"),
              "%d listed, %d bad, %s", L.n, L.bad, L.labels);
    d_corrupt_part(&R, &p);
    memset(&L, 0, sizeof L);
    CHECK(pc_cache_scan(&cp, false, list_one, &L, &err) == PC_OK && L.bad == 0); /* ls reads headers only */
    memset(&L, 0, sizeof L);
    CHECK(pc_cache_scan(&cp, true, list_one, &L, &err) == PC_OK);
    CHECK_MSG(L.bad == 1 && strstr(L.why, "part 1 checksum"), "%d bad: %s", L.bad, L.why);
    memset(&L, 0, sizeof L);
    CHECK(pc_cache_scan(&cp, false, list_one, &L, &err) == PC_OK && L.n == 2);
    long before = redis_fixture_count(R.rf, R.prefix);
    CHECK(pc_cache_remove(&cp, &L.last, &err) == PC_OK);
    long after = redis_fixture_count(R.rf, R.prefix);
    CHECK_MSG(before - after == 1 + (strstr(L.last.label, "#1") ? N_PARTS : 2), "removed %ld keys", before - after); /* 9 tokens: 6208 bytes, 2 parts */
    redis_fixture_clear(R.rf, R.prefix);
}

int main(void) {
    suite S = {0};
    /* SIGPIPE keeps its default (death): a cut connection must be an error
     * return from the tier, which blocks the signal itself. */
    if (redis_fixture_start(&S.rf) != 0) {
        printf("skipped: %s\n", S.rf.why);
        return CHECK_SKIP;
    }
    check_roundtrip(&S);
    check_two_processes(&S);
    check_all_damage(&S);
    check_unreachable(&S);
    check_dies_mid_write(&S);
    check_dies_mid_read(&S);
    check_hangs(&S);
    check_racing_writers(&S);
    check_listing(&S);
    redis_fixture_stop(&S.rf);
    return check_report();
}
