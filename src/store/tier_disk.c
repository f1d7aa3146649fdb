/* tier_disk.c - the disk tier: one file per entry in a folder per model, an
 * index rebuilt from the files' headers at start, LRU under a byte budget.
 *
 * Layout: <dir>/<model fingerprint hex>/<key hex>.kv, each file an entry image
 * (format.h). A file is written as .<key hex>.<pid>.<n>.tmp, fsync'd, renamed
 * into place and the folder fsync'd, so a reader sees a whole file or none:
 * a crash leaves at most a temporary file, which the next start removes once
 * its writer is gone.
 *
 * A hit is mapped read-only and its payload checksum verified through the
 * mapping; the entry's span then points into the mapping, so attention reads
 * the page cache in place. Where the seam cannot map, the file is read once
 * into memory. The mapping outlives the file: eviction or replacement by
 * another process unlinks or renames over it, never writes into it.
 *
 * Several processes may share a folder: a key this process has not indexed is
 * looked up on disk before being called a miss, and files vanish only by
 * unlink/rename. Each process keeps the budget of its own view.
 *
 * Invariants (under mu): the map and the LRU list hold the same items; bytes
 * is the sum of their sizes. No lock is held during file I/O. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/keymap.h"
#include "store/tier.h"
#include "util/clock.h"
#include "util/error.h"

/* A temporary file older than this is abandoned even if its pid is alive (pid reuse). */
#define STALE_TMP_NS (3600LL * 1000000000LL)

typedef struct disk_item {
    pc_store_key key;
    uint64_t size;
    int64_t stamp; /* LRU order: mtime at start, then a counter */
    struct disk_item *prev, *next;
} disk_item;

typedef struct disk_tier {
    pc_tier base;
    const pc_store_io *io;
    char *dir; /* <root>/<model hex> */
    pthread_mutex_t mu;
    pc_keymap map;
    disk_item *head, *tail;
    uint64_t bytes, budget;
    size_t entries;
    uint64_t nonce;
    int64_t clock;
} disk_tier;

static void path_of(const disk_tier *t, const pc_store_key *k, char *out, size_t cap) {
    char hex[65];
    pc_store_key_hex(k, hex);
    snprintf(out, cap, "%s/%s.kv", t->dir, hex);
}

/* ---- index (under mu) ---- */

static void lru_unlink(disk_tier *t, disk_item *it) {
    if (it->prev) it->prev->next = it->next; else t->head = it->next;
    if (it->next) it->next->prev = it->prev; else t->tail = it->prev;
    it->prev = it->next = NULL;
}

static void lru_push(disk_tier *t, disk_item *it) {
    it->prev = NULL;
    it->next = t->head;
    if (t->head) t->head->prev = it; else t->tail = it;
    t->head = it;
}

/* Indexes key (or refreshes it) as most recently used. */
static void index_put(disk_tier *t, const pc_store_key *k, uint64_t size) {
    disk_item *it = pc_keymap_get(&t->map, k);
    if (it) {
        lru_unlink(t, it);
        t->bytes -= it->size;
    } else {
        it = calloc(1, sizeof *it);
        if (!it || pc_keymap_put(&t->map, k, it) != 0) { /* the file stays; only this process's view misses it */
            free(it);
            return;
        }
        it->key = *k;
        t->entries++;
    }
    it->size = size;
    it->stamp = ++t->clock;
    t->bytes += size;
    lru_push(t, it);
}

static bool index_drop(disk_tier *t, const pc_store_key *k) {
    disk_item *it = pc_keymap_del(&t->map, k);
    if (!it) return false;
    lru_unlink(t, it);
    t->bytes -= it->size;
    t->entries--;
    free(it);
    return true;
}

/* Unlinks least recently used files until `incoming` more bytes fit. */
static void make_room(disk_tier *t, uint64_t incoming) {
    while (t->tail && t->bytes + incoming > t->budget) {
        char path[4096];
        pc_store_key k = t->tail->key;
        path_of(t, &k, path, sizeof path);
        index_drop(t, &k);
        int rc = t->io->unlink(t->io->ctx, path);
        if (rc != 0 && rc != -ENOENT) pc_store_log(t->base.env, "disk: evicting %s: %s", path, strerror(-rc));
        atomic_fetch_add(&t->base.c.evictions, 1);
    }
}

/* ---- reading ---- */

typedef struct image_owner {
    const pc_store_io *io;
    void *base;
    size_t len;
    bool mapped;
} image_owner;

static void release_image(void *p) {
    image_owner *o = p;
    if (o->mapped)
        o->io->unmap(o->io->ctx, o->base, o->len);
    else
        free(o->base);
    free(o);
}

/* An I/O failure: counted, logged (the store moves on to the next tier), returned. */
static pc_status io_fail(disk_tier *t, pc_error *err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static pc_status io_fail(disk_tier *t, pc_error *err, const char *fmt, ...) {
    char msg[PC_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    atomic_fetch_add(&t->base.c.errors, 1);
    pc_store_log(t->base.env, "disk: %s", msg);
    return pc_fail(err, PC_ERR_IO, "disk: %s", msg);
}

/* Counts a failed header check as a checksum failure or another rejection
 * (format.c names the checksum in its message). */
static bool is_checksum(const char *why) { return strstr(why, "checksum") != NULL; }

/* Drops a stored entry that does not check out: counted, logged, removed. */
static pc_status drop(disk_tier *t, const char *path, const pc_store_key *k, bool checksum, const char *why) {
    atomic_fetch_add(checksum ? &t->base.c.checksum_failures : &t->base.c.rejected, 1);
    pc_store_log(t->base.env, "disk: %s: %s; entry dropped, it will be encoded afresh", path, why);
    pthread_mutex_lock(&t->mu);
    index_drop(t, k);
    pthread_mutex_unlock(&t->mu);
    t->io->unlink(t->io->ctx, path);
    return PC_ERR_NOT_FOUND;
}

/* Reads and parses the header of an open entry file of `size` bytes into *buf (malloc'd). */
static int read_header(const pc_store_io *io, int fd, uint64_t size, uint8_t **buf, pc_entry_header *h, pc_error *perr) {
    uint32_t hl = 0;
    uint8_t head[PC_ENTRY_FIXED];
    *buf = NULL;
    if (size < PC_ENTRY_FIXED) return pc_fail(perr, PC_ERR_FORMAT, "file of %llu bytes is too short for a header", (unsigned long long)size), 1;
    int rc = pc_io_read_all(io, fd, head, sizeof head, 0);
    if (rc != 0) return pc_fail(perr, PC_ERR_IO, "reading: %s", strerror(-rc)), -1;
    if (pc_entry_header_peek(head, sizeof head, &hl, perr) != PC_OK) return 1;
    if (hl > size) return pc_fail(perr, PC_ERR_FORMAT, "file of %llu bytes is shorter than its %u-byte header", (unsigned long long)size, hl), 1;
    *buf = malloc(hl);
    if (!*buf) return pc_fail(perr, PC_ERR_NOMEM, "out of memory reading a header"), -1;
    if ((rc = pc_io_read_all(io, fd, *buf, hl, 0)) != 0) return pc_fail(perr, PC_ERR_IO, "reading: %s", strerror(-rc)), -1;
    if (pc_entry_header_parse(*buf, hl, h, perr) != PC_OK) return 1;
    if ((uint64_t)h->header_len + h->payload_len != size)
        return pc_fail(perr, PC_ERR_FORMAT, "file is %llu bytes, its header says %llu (truncated or extended)",
                       (unsigned long long)size, (unsigned long long)h->header_len + h->payload_len), 1;
    return 0;
}

/* The whole file in memory: mapped where the seam can, else read once. */
static image_owner *load_image(disk_tier *t, int fd, uint64_t size, pc_error *err) {
    image_owner *o = calloc(1, sizeof *o);
    if (!o) return pc_fail(err, PC_ERR_NOMEM, "out of memory"), NULL;
    o->io = t->io;
    o->len = (size_t)size;
    o->base = t->io->map(t->io->ctx, fd, o->len);
    o->mapped = o->base != NULL;
    if (!o->mapped) {
        int rc = posix_memalign(&o->base, PC_ENTRY_ALIGN, o->len) == 0 ? 0 : -ENOMEM;
        if (rc == 0) rc = pc_io_read_all(t->io, fd, o->base, o->len, 0);
        if (rc != 0) {
            free(o->base);
            free(o);
            return pc_fail(err, PC_ERR_IO, "reading: %s", strerror(-rc)), NULL;
        }
    }
    return o;
}

/* Header checked; maps or reads, verifies the payload, builds the entry. */
static pc_status load_entry(disk_tier *t, int fd, const char *path, const pc_entry_header *h, const pc_store_desc *d,
                            pc_store_entry **out, pc_error *err) {
    pc_error lerr = {0};
    image_owner *o = load_image(t, fd, (uint64_t)h->header_len + h->payload_len, &lerr);
    if (!o) return io_fail(t, err, "%s: %s", path, lerr.msg);
    const uint8_t *img = o->base;
    const uint64_t sum = pc_xxh3(img + h->header_len, (size_t)h->payload_len);
    if (sum != h->payload_sum) {
        char why[128];
        snprintf(why, sizeof why, "payload checksum mismatch (stored %016llx, computed %016llx)",
                 (unsigned long long)h->payload_sum, (unsigned long long)sum);
        release_image(o);
        return drop(t, path, &d->key, true, why);
    }
    pc_status st = pc_store_entry_from_image(h, img, d, release_image, o, out, err);
    char why[256];
    if (st == PC_OK && !pc_store_entry_matches(*out, d, t->base.env, why, sizeof why)) {
        pc_store_entry_free(*out);
        *out = NULL;
        return drop(t, path, &d->key, false, why);
    }
    return st;
}

static pc_status disk_get(pc_tier *base, const pc_store_desc *d, pc_store_entry **out, pc_error *err) {
    disk_tier *t = (disk_tier *)base;
    char path[4096], why[PC_ERROR_MSG_MAX];
    *out = NULL;
    path_of(t, &d->key, path, sizeof path);
    const double t0 = pc_now_ms();
    int fd = t->io->open(t->io->ctx, path, O_RDONLY, 0);
    if (fd < 0) {
        pthread_mutex_lock(&t->mu);
        index_drop(t, &d->key); /* evicted by another process, or never here */
        pthread_mutex_unlock(&t->mu);
        if (fd == -ENOENT) return PC_ERR_NOT_FOUND;
        return io_fail(t, err, "opening %s: %s", path, fd == -EINVAL ? "not a regular file" : strerror(-fd));
    }
    uint64_t size = 0;
    uint8_t *hbuf = NULL;
    pc_entry_header h;
    pc_error perr = {0};
    int rc = t->io->fstat(t->io->ctx, fd, &size, NULL);
    int bad = rc != 0 ? (pc_fail(&perr, PC_ERR_IO, "stat: %s", strerror(-rc)), -1) : read_header(t->io, fd, size, &hbuf, &h, &perr);
    pc_status st;
    if (bad < 0) {
        st = io_fail(t, err, "%s: %s", path, perr.msg);
    } else if (bad > 0) {
        st = drop(t, path, &d->key, is_checksum(perr.msg), perr.msg);
    } else if (!pc_store_header_matches(&h, hbuf, d, base->env, why, sizeof why)) {
        st = drop(t, path, &d->key, false, why);
    } else {
        st = load_entry(t, fd, path, &h, d, out, err);
    }
    free(hbuf);
    if (st == PC_OK) {
        t->io->touch(t->io->ctx, fd); /* LRU order for the next start; a failure only costs that */
        pthread_mutex_lock(&t->mu);
        index_put(t, &d->key, size);
        pthread_mutex_unlock(&t->mu);
        atomic_fetch_add(&base->c.bytes_read, size);
        pc_tier_count_time(&base->c.read_ns, pc_now_ms() - t0);
    }
    t->io->close(t->io->ctx, fd);
    return st;
}

/* ---- writing ---- */

typedef struct fd_sink {
    const pc_store_io *io;
    int fd;
} fd_sink;

static int sink_fd(void *u, const void *p, size_t n) {
    fd_sink *s = u;
    return pc_io_write_all(s->io, s->fd, p, n);
}

static int fsync_dir(const pc_store_io *io, const char *dir) {
    int fd = io->open(io->ctx, dir, O_RDONLY | O_DIRECTORY, 0);
    if (fd < 0) return fd;
    int rc = io->fsync(io->ctx, fd);
    io->close(io->ctx, fd);
    return rc;
}

/* Writes the image to a temporary file, fsyncs it, renames it into place. */
static int write_file(disk_tier *t, const pc_store_entry *e, const char *path, const char **step) {
    char tmp[4096], hex[65];
    pc_store_key_hex(&e->key, hex);
    pthread_mutex_lock(&t->mu);
    const uint64_t nonce = ++t->nonce;
    pthread_mutex_unlock(&t->mu);
    snprintf(tmp, sizeof tmp, "%s/.%s.%ld.%llu.tmp", t->dir, hex, (long)getpid(), (unsigned long long)nonce);
    *step = "creating";
    int fd = t->io->open(t->io->ctx, tmp, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0) return fd;
    fd_sink s = {.io = t->io, .fd = fd};
    *step = "writing";
    int rc = pc_store_entry_emit(e, t->base.env, sink_fd, &s);
    if (rc == 0) {
        *step = "syncing";
        rc = t->io->fsync(t->io->ctx, fd);
    }
    int rc_close = t->io->close(t->io->ctx, fd);
    if (rc == 0) rc = rc_close;
    if (rc == 0) {
        *step = "renaming";
        rc = t->io->rename(t->io->ctx, tmp, path);
    }
    if (rc != 0) {
        t->io->unlink(t->io->ctx, tmp);
        return rc;
    }
    *step = "syncing the folder of";
    return fsync_dir(t->io, t->dir);
}

static pc_status disk_put(pc_tier *base, pc_store_entry *e, pc_error *err) {
    disk_tier *t = (disk_tier *)base;
    char path[4096];
    path_of(t, &e->key, path, sizeof path);
    const uint64_t size = pc_store_entry_image_bytes(e);
    pthread_mutex_lock(&t->mu);
    bool have = pc_keymap_get(&t->map, &e->key) != NULL;
    if (!have && t->budget && size > t->budget) {
        pthread_mutex_unlock(&t->mu);
        pc_store_log(base->env, "disk: %s is %llu bytes, more than the disk budget of %llu: not written", e->label,
                     (unsigned long long)size, (unsigned long long)t->budget);
        return pc_fail(err, PC_ERR_NOMEM, "disk: %s is larger than the disk budget", e->label);
    }
    if (!have && t->budget) make_room(t, size);
    pthread_mutex_unlock(&t->mu);
    if (have || t->io->stat(t->io->ctx, path, NULL, NULL) == 0) return PC_OK; /* immutable: already there */
    const double t0 = pc_now_ms();
    const char *step = "";
    int rc = write_file(t, e, path, &step);
    if (rc != 0) return io_fail(t, err, "%s %s: %s; the entry stays in the other tiers", step, path, strerror(-rc));
    pthread_mutex_lock(&t->mu);
    index_put(t, &e->key, size);
    pthread_mutex_unlock(&t->mu);
    atomic_fetch_add(&base->c.writes, 1);
    atomic_fetch_add(&base->c.bytes_written, size);
    pc_tier_count_time(&base->c.write_ns, pc_now_ms() - t0);
    return PC_OK;
}

static bool disk_exists(pc_tier *base, const pc_store_key *k) {
    disk_tier *t = (disk_tier *)base;
    pthread_mutex_lock(&t->mu);
    bool yes = pc_keymap_get(&t->map, k) != NULL;
    pthread_mutex_unlock(&t->mu);
    if (yes) return true;
    char path[4096];
    path_of(t, k, path, sizeof path);
    return t->io->stat(t->io->ctx, path, NULL, NULL) == 0; /* written by another process */
}

static pc_status disk_remove(pc_tier *base, const pc_store_key *k, pc_error *err) {
    disk_tier *t = (disk_tier *)base;
    char path[4096];
    path_of(t, k, path, sizeof path);
    pthread_mutex_lock(&t->mu);
    index_drop(t, k);
    pthread_mutex_unlock(&t->mu);
    int rc = t->io->unlink(t->io->ctx, path);
    if (rc != 0 && rc != -ENOENT) return pc_fail(err, PC_ERR_IO, "disk: removing %s: %s", path, strerror(-rc));
    return PC_OK;
}

static void disk_stats(pc_tier *base, pc_cache_tier_stats *out) {
    disk_tier *t = (disk_tier *)base;
    pthread_mutex_lock(&t->mu);
    out->entries = t->entries;
    out->bytes = t->bytes;
    out->budget = t->budget;
    pthread_mutex_unlock(&t->mu);
}

static void disk_close(pc_tier *base) {
    disk_tier *t = (disk_tier *)base;
    while (t->head) index_drop(t, &t->head->key);
    pc_keymap_free(&t->map);
    pthread_mutex_destroy(&t->mu);
    free(t->dir);
    free(t);
}

static const pc_tier_methods DISK_METHODS = {
    .name = "disk", .get = disk_get, .put = disk_put, .exists = disk_exists, .remove = disk_remove,
    .stats = disk_stats, .close = disk_close,
};

/* ---- start: the index from the files' headers ---- */

typedef struct found {
    pc_store_key key;
    uint64_t size;
    int64_t mtime;
} found;

typedef struct scan {
    disk_tier *t;
    found *v;
    size_t n, cap;
} scan;

/* A temporary file is abandoned when its writer is gone or it is old. */
static void scan_tmp(disk_tier *t, const char *path, const char *name) {
    const char *dot = strchr(name + 1, '.');
    long pid = dot ? strtol(dot + 1, NULL, 10) : 0;
    int64_t mtime = 0;
    if (t->io->stat(t->io->ctx, path, NULL, &mtime) != 0) return;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    const int64_t age = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec - mtime;
    const bool gone = pid <= 0 || (kill((pid_t)pid, 0) != 0 && errno == ESRCH);
    if (gone || age > STALE_TMP_NS) {
        pc_store_log(t->base.env, "disk: removing %s, an unfinished write whose writer is gone", path);
        t->io->unlink(t->io->ctx, path);
    }
}

static void scan_entry(scan *S, const char *path, const pc_store_key *k) {
    disk_tier *t = S->t;
    int fd = t->io->open(t->io->ctx, path, O_RDONLY, 0);
    if (fd < 0) return;
    uint64_t size = 0;
    int64_t mtime = 0;
    uint8_t *hbuf = NULL;
    pc_entry_header h;
    pc_error perr = {0};
    int bad = t->io->fstat(t->io->ctx, fd, &size, &mtime) != 0 ? -1 : read_header(t->io, fd, size, &hbuf, &h, &perr);
    t->io->close(t->io->ctx, fd);
    const char *why = perr.msg;
    if (bad == 0 && memcmp(h.model, t->base.env->cfg.model, 32) != 0) bad = 1, why = "written for another model";
    if (bad == 0 && memcmp(h.key, k->b, 32) != 0) bad = 1, why = "its header holds another key than its name";
    if (bad == 0 && (h.n_layer != t->base.env->cfg.n_layer || h.dim != t->base.env->cfg.dim))
        bad = 1, why = "its KV shape is not the model's";
    free(hbuf);
    if (bad > 0) {
        atomic_fetch_add(is_checksum(why) ? &t->base.c.checksum_failures : &t->base.c.rejected, 1);
        pc_store_log(t->base.env, "disk: %s: %s; entry dropped", path, why);
        t->io->unlink(t->io->ctx, path);
        return;
    }
    if (bad < 0) return; /* unreadable now: left on disk, looked up again on demand */
    if (S->n == S->cap) {
        size_t cap = S->cap ? S->cap * 2 : 64;
        found *v = realloc(S->v, cap * sizeof *v);
        if (!v) return; /* no memory for the index: the file is looked up on demand */
        S->v = v;
        S->cap = cap;
    }
    S->v[S->n++] = (found){.key = *k, .size = size, .mtime = mtime};
}

static int scan_one(void *user, const char *name) {
    scan *S = user;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", S->t->dir, name);
    const size_t len = strlen(name);
    pc_store_key k;
    if (name[0] == '.' && len > 4 && strcmp(name + len - 4, ".tmp") == 0)
        scan_tmp(S->t, path, name);
    else if (len == 67 && strcmp(name + 64, ".kv") == 0) {
        char hex[65];
        memcpy(hex, name, 64);
        hex[64] = '\0';
        if (pc_store_key_parse(hex, &k) == 0) scan_entry(S, path, &k);
    }
    return 0;
}

static int by_mtime(const void *a, const void *b) {
    const found *x = a, *y = b;
    return x->mtime < y->mtime ? -1 : x->mtime > y->mtime;
}

static pc_status rebuild_index(disk_tier *t, pc_error *err) {
    scan S = {.t = t};
    int rc = t->io->list(t->io->ctx, t->dir, scan_one, &S);
    if (rc != 0) {
        free(S.v);
        return pc_fail(err, PC_ERR_IO, "disk: listing %s: %s", t->dir, strerror(-rc));
    }
    if (S.n) qsort(S.v, S.n, sizeof *S.v, by_mtime); /* oldest first, so the newest ends up most recent */
    for (size_t i = 0; i < S.n; i++) index_put(t, &S.v[i].key, S.v[i].size);
    free(S.v);
    if (t->budget) make_room(t, 0);
    return PC_OK;
}

static void write_model_label(disk_tier *t) {
    const char *label = t->base.env->cfg.model_label;
    char path[4096];
    snprintf(path, sizeof path, "%s/model.txt", t->dir);
    if (!label || t->io->stat(t->io->ctx, path, NULL, NULL) == 0) return;
    int fd = t->io->open(t->io->ctx, path, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0) return; /* a convenience for people listing the folder: never an error */
    pc_io_write_all(t->io, fd, label, strlen(label));
    pc_io_write_all(t->io, fd, "\n", 1);
    t->io->close(t->io->ctx, fd);
}

pc_status pc_tier_disk_open(const pc_store_env *env, pc_tier **out, pc_error *err) {
    const char *root = env->cfg.cache.dir;
    disk_tier *t = calloc(1, sizeof *t);
    size_t len = strlen(root) + 66;
    if (t) t->dir = malloc(len);
    if (!t || !t->dir) {
        free(t);
        return pc_fail(err, PC_ERR_NOMEM, "out of memory opening the disk tier");
    }
    t->base.m = &DISK_METHODS;
    t->base.env = env;
    t->io = env->cfg.io;
    t->budget = env->cfg.cache.disk_bytes;
    pthread_mutex_init(&t->mu, NULL);
    snprintf(t->dir, len, "%s/%s", root, env->model_hex);
    int rc = t->io->mkdir(t->io->ctx, root);
    if (rc == 0) rc = t->io->mkdir(t->io->ctx, t->dir);
    pc_status st = rc == 0 ? PC_OK : pc_fail(err, PC_ERR_IO, "disk: cannot create cache folder %s: %s", t->dir, strerror(-rc));
    if (st == PC_OK) {
        write_model_label(t);
        st = rebuild_index(t, err);
    }
    if (st != PC_OK) {
        disk_close(&t->base);
        return st;
    }
    *out = &t->base;
    return PC_OK;
}
