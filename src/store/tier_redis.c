/* tier_redis.c - the remote tier: entries in Redis (hiredis), shared by every
 * process and machine that points at the same server.
 *
 * An entry's image (format.h) is cut into parts of at most part_max bytes,
 * stored under <prefix><key hex>:<nonce hex>:<i>, then a manifest naming the
 * nonce, the parts' lengths and checksums is stored under <prefix><key hex>
 * with SET NX. Parts are written first, pipelined, with a lease (an expiry)
 * that is lifted only once the manifest is in, so:
 *  - a reader finds the manifest only when every part it names was written;
 *  - a writer that dies mid-write leaves parts that expire with their lease;
 *  - two writers of one key never mix parts: each writes under its own nonce,
 *    the manifest of the first wins and the second deletes its parts.
 * A reader checks the manifest, then every part's length and checksum, then
 * the entry's header against what it asked for; anything that does not check
 * out (including a manifest whose parts are gone) is deleted, logged, and
 * read as a miss.
 *
 * Redis that is down or slow (a command past the timeout) is a warning: the
 * connection is dropped, the operation reads as failed, and no new connection
 * is tried for RETRY_MS, so an outage costs requests nothing but the other
 * tiers' lookups. One line is logged when the outage starts, one when it ends.
 *
 * One connection, guarded by mu for whole commands (hiredis contexts are not
 * thread-safe); images are built and checked outside the lock.
 *
 * A write to a connection Redis has closed raises SIGPIPE, which would kill
 * the process; hiredis writes with write(2), so while this tier holds the
 * connection it blocks SIGPIPE in the calling thread and consumes one raised
 * meanwhile (no process-wide handler: the store changes no global state). */
#include <errno.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "store/resp_bulk.h"
#include "store/tier.h"
#include "util/clock.h"
#include "util/error.h"

#define RETRY_MS 2000.0
#define LEASE_MS 600000LL /* parts not claimed by a manifest within 10 minutes expire */

typedef struct redis_tier {
    pc_tier base;
    pthread_mutex_t mu;
    redisContext *c; /* NULL: not connected */
    char host[256];
    int port, timeout_ms, ttl_s;
    char prefix[128];
    size_t part_max;
    double retry_at_ms; /* no connection attempt before this */
    bool down;          /* an outage was logged and has not ended */
} redis_tier;

typedef struct pipe_guard {
    sigset_t old;
    bool pending_before;
} pipe_guard;

static void lock(redis_tier *t, pipe_guard *g) {
    sigset_t pipe_set, pending;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    sigpending(&pending);
    g->pending_before = sigismember(&pending, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &g->old);
    pthread_mutex_lock(&t->mu);
}

static void unlock(redis_tier *t, pipe_guard *g) {
    pthread_mutex_unlock(&t->mu);
    sigset_t pipe_set, pending;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    sigpending(&pending);
    if (!g->pending_before && sigismember(&pending, SIGPIPE)) {
        const struct timespec zero = {0, 0};
        sigtimedwait(&pipe_set, NULL, &zero); /* ours: the broken connection was already handled */
    }
    pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}

static struct timeval tv_of(int ms) { return (struct timeval){.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000}; }

/* Drops the connection after a failure; logs the start of an outage once. */
static pc_status fail_locked(redis_tier *t, const char *what, const char *why, pc_error *err) {
    char msg[256];
    snprintf(msg, sizeof msg, "%s", why ? why : t->c && t->c->err ? t->c->errstr : "no reply");
    if (t->c) redisFree(t->c);
    t->c = NULL;
    t->retry_at_ms = pc_store_now_ms(t->base.env) + RETRY_MS;
    atomic_fetch_add(&t->base.c.errors, 1);
    if (!t->down)
        pc_store_log(t->base.env, "redis %s:%d: %s failed (%s); serving from the other tiers, retrying every %.0f s",
                     t->host, t->port, what, msg, RETRY_MS / 1e3);
    t->down = true;
    return pc_fail(err, PC_ERR_IO, "redis %s:%d: %s failed (%s)", t->host, t->port, what, msg);
}

static pc_status connect_locked(redis_tier *t, pc_error *err) {
    if (t->c) return PC_OK;
    if (pc_store_now_ms(t->base.env) < t->retry_at_ms)
        return pc_fail(err, PC_ERR_IO, "redis %s:%d: unavailable, next attempt in %.1f s", t->host, t->port,
                       (t->retry_at_ms - pc_store_now_ms(t->base.env)) / 1e3);
    t->c = redisConnectWithTimeout(t->host, t->port, tv_of(t->timeout_ms));
    if (!t->c || t->c->err || redisSetTimeout(t->c, tv_of(t->timeout_ms)) != REDIS_OK)
        return fail_locked(t, "connecting", NULL, err);
    if (t->down) pc_store_log(t->base.env, "redis %s:%d: reachable again", t->host, t->port);
    t->down = false;
    return PC_OK;
}

static void key_of(const redis_tier *t, const pc_store_key *k, char *out, size_t cap) {
    pc_manifest_key_name(t->prefix, k->b, out, cap);
}

static void part_of(const redis_tier *t, const pc_store_key *k, uint64_t nonce, uint32_t i, char *out, size_t cap) {
    pc_manifest_part_name(t->prefix, k->b, nonce, i, out, cap);
}

/* One command and its reply; NULL (connection dropped, err set) on failure. */
static redisReply *command(redis_tier *t, const char *what, pc_error *err, int argc, const char **argv, const size_t *lens) {
    redisReply *r = redisCommandArgv(t->c, argc, argv, lens);
    if (!r) fail_locked(t, what, NULL, err);
    return r;
}

static redisReply *command2(redis_tier *t, const char *what, pc_error *err, const char *a, const char *b) {
    const char *argv[2] = {a, b};
    size_t lens[2] = {strlen(a), strlen(b)};
    return command(t, what, err, 2, argv, lens);
}

/* Deletes a manifest and, when it parses, the parts it names. */
static void delete_entry_locked(redis_tier *t, const char *mkey, const pc_store_key *k, const pc_manifest *m) {
    pc_error ignored;
    redisReply *r = command2(t, "deleting", &ignored, "DEL", mkey);
    if (r) freeReplyObject(r);
    for (uint32_t i = 0; m && t->c && i < m->n_parts; i++) {
        char pk[300];
        part_of(t, k, m->nonce, i, pk, sizeof pk);
        if ((r = command2(t, "deleting", &ignored, "DEL", pk)) != NULL) freeReplyObject(r);
    }
}

static pc_status drop_locked(redis_tier *t, const char *mkey, const pc_store_key *k, const pc_manifest *m, bool checksum,
                             const char *why) {
    atomic_fetch_add(checksum ? &t->base.c.checksum_failures : &t->base.c.rejected, 1);
    pc_store_log(t->base.env, "redis: %s: %s; entry dropped, it will be encoded afresh", mkey, why);
    delete_entry_locked(t, mkey, k, m);
    return PC_ERR_NOT_FOUND;
}

/* ---- reading ---- */

/* Checks one part's reply header and reads its bytes into place (or past
 * them when the part is not what the manifest says): 0, 1 when the entry
 * must be dropped (why filled), -1 on a connection failure. */
static int read_part(pc_resp_reader *R, const pc_manifest *m, uint32_t i, uint8_t *dst, char *why, size_t cap,
                     bool *checksum) {
    char msg[128];
    const pc_manifest_part *p = &m->parts[i];
    int64_t n = pc_resp_next_bulk(R, msg, sizeof msg);
    if (n == PC_RESP_FAIL) return -1;
    if (n == PC_RESP_NIL) return snprintf(why, cap, "part %u of %u is missing", i, m->n_parts), 1;
    if (n == PC_RESP_ERROR_REPLY) return snprintf(why, cap, "part %u cannot be read: %s", i, msg), 1;
    if ((uint64_t)n != p->len) {
        snprintf(why, cap, "part %u is %lld bytes, its manifest says %llu", i, (long long)n, (unsigned long long)p->len);
        return pc_resp_skip(R, (size_t)n) || pc_resp_crlf(R) ? -1 : 1;
    }
    if (pc_resp_read(R, dst, (size_t)n) || pc_resp_crlf(R)) return -1;
    if (pc_xxh3(dst, (size_t)n) != p->sum) {
        *checksum = true;
        return snprintf(why, cap, "part %u checksum mismatch", i), 1;
    }
    return 0;
}

/* Reads every part the manifest names into image: the GETs pipelined through
 * hiredis, the replies read by resp_bulk.c straight into place. 1 when the
 * entry must be dropped (why filled), -1 on a connection failure. */
static int read_parts(redis_tier *t, const pc_store_key *k, const pc_manifest *m, uint8_t *image, char *why, size_t cap,
                      bool *checksum, pc_error *err) {
    pc_resp_reader *R = malloc(sizeof *R);
    if (!R) return pc_fail(err, PC_ERR_NOMEM, "redis: out of memory"), -1;
    int rc = 0;
    for (uint32_t i = 0; i < m->n_parts && rc == 0; i++) {
        char pk[300];
        part_of(t, k, m->nonce, i, pk, sizeof pk);
        if (redisAppendCommand(t->c, "GET %s", pk) != REDIS_OK) rc = -1;
    }
    for (int done = 0; rc == 0 && !done;)
        if (redisBufferWrite(t->c, &done) != REDIS_OK) rc = -1;
    if (rc != 0) {
        free(R);
        return fail_locked(t, "reading", NULL, err), -1;
    }
    if (t->c->reader->pos != t->c->reader->len) { /* hiredis holds bytes of ours: never, by the protocol */
        free(R);
        return fail_locked(t, "reading", "unexpected data before the replies", err), -1;
    }
    pc_resp_reader_init(R, t->c->fd);
    int bad = 0;
    uint64_t off = 0;
    char later[PC_ERROR_MSG_MAX]; /* why the first bad part is dropped is what gets logged */
    for (uint32_t i = 0; i < m->n_parts && rc >= 0; i++) { /* every reply is read, so the connection stays in step */
        rc = read_part(R, m, i, image + off, bad ? later : why, bad ? sizeof later : cap, checksum);
        if (rc > 0) bad = 1;
        off += m->parts[i].len;
    }
    if (rc >= 0 && !pc_resp_drained(R)) R->why = "protocol error: bytes after the last reply", rc = -1;
    if (rc < 0) fail_locked(t, "reading", R->why, err);
    free(R);
    return rc < 0 ? -1 : bad;
}

/* GET of the manifest: 1 and *m parsed, 0 on a miss, -1 on failure, 2 dropped. */
static int read_manifest(redis_tier *t, const char *mkey, const pc_store_key *k, pc_manifest *m, pc_error *err) {
    redisReply *r = command2(t, "reading", err, "GET", mkey);
    if (!r) return -1;
    int rc = 0;
    pc_error perr = {0};
    if (r->type == REDIS_REPLY_NIL) {
        rc = 0;
    } else if (r->type != REDIS_REPLY_STRING) {
        drop_locked(t, mkey, k, NULL, false, "the manifest is not a string");
        rc = 2;
    } else if (pc_manifest_parse((const uint8_t *)r->str, (size_t)r->len, t->part_max, m, &perr) != PC_OK) {
        drop_locked(t, mkey, k, NULL, strstr(perr.msg, "checksum") != NULL, perr.msg);
        rc = 2;
    } else if (memcmp(m->key, k->b, 32) != 0) {
        drop_locked(t, mkey, k, NULL, false, "the manifest names another key");
        pc_manifest_free(m);
        rc = 2;
    } else {
        rc = 1;
    }
    freeReplyObject(r);
    return rc;
}

static void free_image(void *p) { free(p); }

typedef enum fetched { GOT = 0, MISS, DROPPED, FAILED } fetched;

/* Under the lock: the manifest, then every part into a new image. */
static fetched fetch_image_locked(redis_tier *t, const pc_store_desc *d, const char *mkey, pc_manifest *m,
                                  uint8_t **image, pc_error *err) {
    char why[PC_ERROR_MSG_MAX];
    bool checksum = false;
    int rc = read_manifest(t, mkey, &d->key, m, err);
    if (rc != 1) return rc == 0 ? MISS : rc == 2 ? DROPPED : FAILED;
    /* the size the entry must have, known before a byte of it moves: a manifest
     * stating another is dropped instead of sizing an allocation */
    const pc_store_env *env = t->base.env;
    const uint64_t want = pc_entry_header_len(d->n, (uint32_t)strnlen(d->label ? d->label : "", PC_ENTRY_MAX_LABEL)) +
                          (uint64_t)pc_store_payload_bytes(env->cfg.n_layer, env->cfg.dim, d->n);
    if (m->total_len != want) {
        snprintf(why, sizeof why, "its manifest states %llu bytes, an entry of %d tokens has %llu",
                 (unsigned long long)m->total_len, d->n, (unsigned long long)want);
        drop_locked(t, mkey, &d->key, m, false, why);
        return DROPPED;
    }
    if (posix_memalign((void **)image, PC_ENTRY_ALIGN, (size_t)m->total_len) != 0) {
        *image = NULL;
        pc_fail(err, PC_ERR_NOMEM, "redis: out of memory for a %llu-byte entry", (unsigned long long)m->total_len);
        return FAILED;
    }
    rc = read_parts(t, &d->key, m, *image, why, sizeof why, &checksum, err);
    if (rc > 0) drop_locked(t, mkey, &d->key, m, checksum, why);
    return rc == 0 ? GOT : rc > 0 ? DROPPED : FAILED;
}

/* Whether intact parts hold the entry asked for (why when not). The parts'
 * checksums cover every byte, so the payload is not hashed a second time. */
static bool image_is(pc_entry_header *h, const uint8_t *image, uint64_t len, const pc_store_desc *d,
                     const pc_store_env *env, char *why, size_t cap) {
    pc_error perr = {0};
    if (pc_entry_header_parse(image, (size_t)len, h, &perr) != PC_OK) return snprintf(why, cap, "%s", perr.msg), false;
    if ((uint64_t)h->header_len + h->payload_len != len) {
        snprintf(why, cap, "entry of %llu bytes, its header says %llu", (unsigned long long)len,
                 (unsigned long long)h->header_len + h->payload_len);
        return false;
    }
    return pc_store_header_matches(h, image, d, env, why, cap);
}

static pc_status redis_get(pc_tier *base, const pc_store_desc *d, pc_store_entry **out, pc_error *err) {
    redis_tier *t = (redis_tier *)base;
    char mkey[256], why[PC_ERROR_MSG_MAX];
    pc_manifest m = {0};
    uint8_t *image = NULL;
    pc_entry_header h;
    *out = NULL;
    key_of(t, &d->key, mkey, sizeof mkey);
    const double t0 = pc_now_ms();
    pipe_guard g;
    lock(t, &g);
    pc_status st = connect_locked(t, err);
    fetched f = st == PC_OK ? fetch_image_locked(t, d, mkey, &m, &image, err) : FAILED;
    unlock(t, &g);
    if (f == GOT && !image_is(&h, image, m.total_len, d, base->env, why, sizeof why)) {
        lock(t, &g); /* intact parts, but the entry in them is not this one */
        if (connect_locked(t, err) == PC_OK) drop_locked(t, mkey, &d->key, &m, false, why);
        unlock(t, &g);
        f = DROPPED;
    }
    if (f == GOT) {
        st = pc_store_entry_from_image(&h, image, d, free_image, image, out, err);
        image = NULL; /* the entry owns it now, also on failure */
        if (st == PC_OK) {
            atomic_fetch_add(&base->c.bytes_read, m.total_len);
            pc_tier_count_time(&base->c.read_ns, pc_now_ms() - t0);
        }
    } else if (f == MISS || f == DROPPED) {
        st = PC_ERR_NOT_FOUND;
    } else if (st == PC_OK) {
        st = err && err->code == PC_ERR_NOMEM ? PC_ERR_NOMEM : PC_ERR_IO;
    }
    free(image);
    pc_manifest_free(&m);
    return st;
}

/* ---- writing ---- */

typedef struct mem_sink {
    uint8_t *buf;
    size_t len, cap;
} mem_sink;

static int sink_mem(void *u, const void *p, size_t n) {
    mem_sink *s = u;
    if (n > s->cap - s->len) return -EOVERFLOW;
    memcpy(s->buf + s->len, p, n);
    s->len += n;
    return 0;
}

static uint64_t new_nonce(void) {
    uint64_t v = 0;
    if (getrandom(&v, sizeof v, 0) != (ssize_t)sizeof v) {
        struct timespec ts; /* no entropy source: distinct enough across writers of one key */
        clock_gettime(CLOCK_REALTIME, &ts);
        v = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ ((uint64_t)getpid() << 40);
    }
    return v;
}

/* Sends n commands already appended and checks every reply is a status (OK or
 * an integer); 0, or -1 after dropping the connection. */
static int expect_replies(redis_tier *t, uint32_t n, const char *what, pc_error *err) {
    int bad = 0;
    for (uint32_t i = 0; i < n; i++) {
        redisReply *r = NULL;
        if (redisGetReply(t->c, (void **)&r) != REDIS_OK || !r) return fail_locked(t, what, NULL, err), -1;
        if (r->type == REDIS_REPLY_ERROR && !bad) { /* e.g. maxmemory reached: the server refuses writes */
            pc_fail(err, PC_ERR_IO, "redis %s:%d: %s: %s", t->host, t->port, what, r->str);
            pc_store_log(t->base.env, "redis %s:%d: %s refused: %s", t->host, t->port, what, r->str);
            bad = 1;
        }
        freeReplyObject(r);
    }
    if (bad) atomic_fetch_add(&t->base.c.errors, 1);
    return bad ? -1 : 0;
}

/* Appends SET key val [NX] [PX px] (px <= 0: no expiry). */
static int append_set(redis_tier *t, const char *key, const uint8_t *val, size_t len, bool nx, long long px) {
    char ms[32];
    snprintf(ms, sizeof ms, "%lld", px);
    const char *argv[6] = {"SET", key, (const char *)val};
    size_t lens[6] = {3, strlen(key), len};
    int argc = 3;
    if (nx) argv[argc] = "NX", lens[argc++] = 2;
    if (px > 0) {
        argv[argc] = "PX", lens[argc++] = 2;
        argv[argc] = ms, lens[argc++] = strlen(ms);
    }
    return redisAppendCommandArgv(t->c, argc, argv, lens) == REDIS_OK ? 0 : -1;
}

/* Parts under a lease, then the manifest (NX), then the lease lifted. */
static pc_status write_locked(redis_tier *t, const pc_store_entry *e, const uint8_t *image, const pc_manifest *m,
                              pc_error *err) {
    char mkey[256], pk[300];
    key_of(t, &e->key, mkey, sizeof mkey);
    uint64_t off = 0;
    for (uint32_t i = 0; i < m->n_parts; i++) {
        part_of(t, &e->key, m->nonce, i, pk, sizeof pk);
        if (append_set(t, pk, image + off, (size_t)m->parts[i].len, false, LEASE_MS) != 0)
            return fail_locked(t, "writing", NULL, err);
        off += m->parts[i].len;
    }
    if (expect_replies(t, m->n_parts, "writing", err) != 0) return PC_ERR_IO;
    uint8_t mbuf[PC_MANIFEST_FIXED + 16 * 64 + 8];
    uint8_t *mb = pc_manifest_bytes(m->n_parts) <= sizeof mbuf ? mbuf : malloc(pc_manifest_bytes(m->n_parts));
    if (!mb) return pc_fail(err, PC_ERR_NOMEM, "redis: out of memory for a manifest");
    pc_manifest_write(m, mb);
    int rc = append_set(t, mkey, mb, pc_manifest_bytes(m->n_parts), true, t->ttl_s > 0 ? t->ttl_s * 1000LL : 0);
    if (mb != mbuf) free(mb);
    redisReply *r = NULL;
    if (rc != 0 || redisGetReply(t->c, (void **)&r) != REDIS_OK || !r) return fail_locked(t, "writing", NULL, err);
    const bool won = r->type == REDIS_REPLY_STATUS, lost = r->type == REDIS_REPLY_NIL;
    freeReplyObject(r);
    if (!won && !lost) return pc_fail(err, PC_ERR_IO, "redis %s:%d: writing %s: unexpected reply", t->host, t->port, mkey);
    for (uint32_t i = 0; i < m->n_parts; i++) { /* the loser's parts go; the winner's stay (for its TTL) */
        part_of(t, &e->key, m->nonce, i, pk, sizeof pk);
        int a = lost ? redisAppendCommand(t->c, "DEL %s", pk)
                : t->ttl_s > 0 ? redisAppendCommand(t->c, "PEXPIRE %s %lld", pk, t->ttl_s * 1000LL + LEASE_MS)
                               : redisAppendCommand(t->c, "PERSIST %s", pk);
        if (a != REDIS_OK) return fail_locked(t, "writing", NULL, err);
    }
    return expect_replies(t, m->n_parts, "writing", err) == 0 ? PC_OK : PC_ERR_IO;
}

static pc_status build_manifest(redis_tier *t, const pc_store_entry *e, const uint8_t *image, uint64_t len,
                                pc_manifest *m, pc_error *err) {
    m->version = PC_STORE_FORMAT_VERSION;
    m->n_parts = (uint32_t)((len + t->part_max - 1) / t->part_max);
    memcpy(m->key, e->key.b, 32);
    m->nonce = new_nonce();
    m->total_len = len;
    if (m->n_parts > PC_MANIFEST_MAX_PARTS) return pc_fail(err, PC_ERR_RANGE, "redis: entry %s needs too many parts", e->label);
    m->parts = malloc((size_t)m->n_parts * sizeof *m->parts);
    if (!m->parts) return pc_fail(err, PC_ERR_NOMEM, "redis: out of memory for a manifest");
    for (uint32_t i = 0; i < m->n_parts; i++) {
        uint64_t off = (uint64_t)i * t->part_max, l = len - off < t->part_max ? len - off : t->part_max;
        m->parts[i] = (pc_manifest_part){.len = l, .sum = pc_xxh3(image + off, (size_t)l)};
    }
    return PC_OK;
}

static pc_status redis_put(pc_tier *base, pc_store_entry *e, pc_error *err) {
    redis_tier *t = (redis_tier *)base;
    const double t0 = pc_now_ms();
    mem_sink s = {.cap = (size_t)pc_store_entry_image_bytes(e)};
    s.buf = malloc(s.cap);
    if (!s.buf) return pc_fail(err, PC_ERR_NOMEM, "redis: out of memory for a %zu-byte entry", s.cap);
    pc_manifest m = {0};
    pc_status st = pc_store_entry_emit(e, base->env, sink_mem, &s) == 0 && s.len == s.cap
                       ? build_manifest(t, e, s.buf, s.len, &m, err)
                       : pc_fail(err, PC_ERR_NOMEM, "redis: cannot serialize entry %s", e->label);
    char mkey[256];
    key_of(t, &e->key, mkey, sizeof mkey);
    pipe_guard g;
    lock(t, &g);
    if (st == PC_OK) st = connect_locked(t, err);
    redisReply *r = st == PC_OK ? command2(t, "writing", err, "EXISTS", mkey) : NULL;
    if (st == PC_OK && !r) st = PC_ERR_IO;
    bool have = r && r->type == REDIS_REPLY_INTEGER && r->integer == 1;
    if (r) freeReplyObject(r);
    if (st == PC_OK && !have) st = write_locked(t, e, s.buf, &m, err);
    unlock(t, &g);
    if (st == PC_OK && !have) {
        atomic_fetch_add(&base->c.writes, 1);
        atomic_fetch_add(&base->c.bytes_written, s.len);
        pc_tier_count_time(&base->c.write_ns, pc_now_ms() - t0);
    }
    pc_manifest_free(&m);
    free(s.buf);
    return st;
}

static bool redis_exists(pc_tier *base, const pc_store_key *k) {
    redis_tier *t = (redis_tier *)base;
    char mkey[256];
    pc_error err;
    key_of(t, k, mkey, sizeof mkey);
    pipe_guard g;
    lock(t, &g);
    redisReply *r = connect_locked(t, &err) == PC_OK ? command2(t, "looking up", &err, "EXISTS", mkey) : NULL;
    bool yes = r && r->type == REDIS_REPLY_INTEGER && r->integer == 1;
    if (r) freeReplyObject(r);
    unlock(t, &g);
    return yes;
}

static pc_status redis_remove(pc_tier *base, const pc_store_key *k, pc_error *err) {
    redis_tier *t = (redis_tier *)base;
    char mkey[256];
    key_of(t, k, mkey, sizeof mkey);
    pc_manifest m = {0};
    pipe_guard g;
    lock(t, &g);
    pc_status st = connect_locked(t, err);
    int rc = st == PC_OK ? read_manifest(t, mkey, k, &m, err) : -1;
    if (rc == 1) delete_entry_locked(t, mkey, k, &m);
    if (rc < 0 && st == PC_OK) st = PC_ERR_IO;
    unlock(t, &g);
    pc_manifest_free(&m);
    return st;
}

static void redis_stats(pc_tier *base, pc_cache_tier_stats *out) {
    (void)base;
    out->entries = out->bytes = out->budget = 0; /* Redis keeps its own accounts (INFO memory) */
}

static void redis_close(pc_tier *base) {
    redis_tier *t = (redis_tier *)base;
    if (t->c) redisFree(t->c);
    pthread_mutex_destroy(&t->mu);
    free(t);
}

/* ---- records: small named values beside the entries (the schema registry) ---- */

enum { RECORD_KEY_MAX = 700 };

/* The record's key, with the connection locked and up; on PC_OK the caller unlocks g. */
static pc_status record_open(redis_tier *t, const char *name, char key[RECORD_KEY_MAX], pipe_guard *g,
                             pc_error *err) {
    if ((size_t)snprintf(key, RECORD_KEY_MAX, "%srecord:%s:%s", t->prefix, t->base.env->model_hex, name) >=
        RECORD_KEY_MAX)
        return pc_fail(err, PC_ERR_RANGE, "redis: record name '%.64s...' is too long", name);
    lock(t, g);
    const pc_status st = connect_locked(t, err);
    if (st != PC_OK) unlock(t, g);
    return st;
}

pc_status pc_tier_redis_record_put(pc_tier *base, const char *name, const void *data, size_t len, bool nx, double ttl_s,
                                   bool *written, pc_error *err) {
    redis_tier *t = (redis_tier *)base;
    char key[RECORD_KEY_MAX];
    pipe_guard g;
    if (written) *written = false;
    pc_status st = record_open(t, name, key, &g, err);
    if (st != PC_OK) return st;
    redisReply *r = NULL;
    if (append_set(t, key, data, len, nx, ttl_s > 0 ? (long long)(ttl_s * 1000.0) + 1 : 0) != 0 ||
        redisGetReply(t->c, (void **)&r) != REDIS_OK || !r)
        st = fail_locked(t, "writing a record", NULL, err);
    else if (r->type != REDIS_REPLY_STATUS && r->type != REDIS_REPLY_NIL)
        st = pc_fail(err, PC_ERR_IO, "redis %s:%d: writing %s: unexpected reply", t->host, t->port, key);
    if (written) *written = st == PC_OK && r->type == REDIS_REPLY_STATUS;
    if (r) freeReplyObject(r);
    unlock(t, &g);
    return st;
}

pc_status pc_tier_redis_record_get(pc_tier *base, const char *name, size_t cap, char **data, size_t *len,
                                   pc_error *err) {
    redis_tier *t = (redis_tier *)base;
    char key[RECORD_KEY_MAX], end[32];
    pipe_guard g;
    *data = NULL;
    *len = 0;
    pc_status st = record_open(t, name, key, &g, err);
    if (st != PC_OK) return st;
    snprintf(end, sizeof end, "%zu", cap - 1);
    const char *argv[4] = {"GETRANGE", key, "0", end};
    size_t lens[4] = {8, strlen(key), 1, strlen(end)};
    redisReply *r = command(t, "reading a record", err, 4, argv, lens);
    if (!r) st = PC_ERR_IO;
    if (r && r->type != REDIS_REPLY_STRING)
        st = pc_fail(err, PC_ERR_IO, "redis %s:%d: reading %s: %s", t->host, t->port, key,
                     r->type == REDIS_REPLY_ERROR ? r->str : "not a string");
    else if (r && r->len == 0) /* GETRANGE reads a missing key as empty; records never are */
        st = pc_fail(err, PC_ERR_NOT_FOUND, "redis: no record %s", key);
    else if (r && !(*data = malloc(r->len + 1)))
        st = pc_fail(err, PC_ERR_NOMEM, "redis: out of memory reading %s", key);
    if (st == PC_OK) {
        memcpy(*data, r->str, r->len);
        (*data)[r->len] = '\0';
        *len = r->len;
    }
    if (r) freeReplyObject(r);
    unlock(t, &g);
    return st;
}

pc_status pc_tier_redis_record_remove(pc_tier *base, const char *name, pc_error *err) {
    redis_tier *t = (redis_tier *)base;
    char key[RECORD_KEY_MAX];
    pipe_guard g;
    pc_status st = record_open(t, name, key, &g, err);
    if (st != PC_OK) return st;
    redisReply *r = command2(t, "removing a record", err, "DEL", key);
    if (!r) st = PC_ERR_IO;
    if (r) freeReplyObject(r);
    unlock(t, &g);
    return st;
}

static const pc_tier_methods REDIS_METHODS = {
    .name = "remote", .get = redis_get, .put = redis_put, .exists = redis_exists, .remove = redis_remove,
    .stats = redis_stats, .close = redis_close,
};

/* "host:port" (the port after the last colon). */
static pc_status parse_addr(redis_tier *t, const char *addr, pc_error *err) {
    const char *colon = strrchr(addr, ':');
    char *end = NULL;
    long port = colon ? strtol(colon + 1, &end, 10) : 0;
    size_t hl = colon ? (size_t)(colon - addr) : 0;
    if (!colon || hl == 0 || hl >= sizeof t->host || !end || *end || end == colon + 1 || port <= 0 || port > 65535)
        return pc_fail(err, PC_ERR_INVALID, "--cache-redis '%s': expected host:port", addr);
    memcpy(t->host, addr, hl);
    t->host[hl] = '\0';
    t->port = (int)port;
    return PC_OK;
}

pc_status pc_tier_redis_open(const pc_store_env *env, pc_tier **out, pc_error *err) {
    redis_tier *t = calloc(1, sizeof *t);
    if (!t) return pc_fail(err, PC_ERR_NOMEM, "out of memory opening the Redis tier");
    t->base.m = &REDIS_METHODS;
    t->base.env = env;
    pthread_mutex_init(&t->mu, NULL);
    const pc_cache_params *c = &env->cfg.cache;
    t->timeout_ms = c->redis_timeout_ms > 0 ? c->redis_timeout_ms : 2000;
    t->ttl_s = c->redis_ttl_s > 0 ? c->redis_ttl_s : 0;
    t->part_max = env->cfg.redis_part_bytes ? env->cfg.redis_part_bytes : PC_PART_MAX_BYTES;
    if (t->part_max > PC_PART_MAX_BYTES) t->part_max = PC_PART_MAX_BYTES;
    const char *prefix = c->redis_prefix ? c->redis_prefix : "pcache:";
    pc_status st = strlen(prefix) < sizeof t->prefix ? parse_addr(t, c->redis, err)
                                                     : pc_fail(err, PC_ERR_INVALID, "Redis key prefix is too long");
    if (st != PC_OK) {
        redis_close(&t->base);
        return st;
    }
    snprintf(t->prefix, sizeof t->prefix, "%s", prefix);
    *out = &t->base;
    return PC_OK;
}
