/* scan.c - the stored entries as `pcache cache ls|verify|rm` see them, without
 * a model: every model folder under a cache folder, every entry in Redis
 * under a prefix (scan_redis.c). Each entry's header is read and checked;
 * verify also checks every payload checksum. Nothing is changed except by
 * pc_cache_remove. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/scan.h"
#include "store/tier.h"
#include "util/error.h"
#include "util/sha256.h"

typedef struct disk_walk {
    const pc_store_io *io;
    const char *root;
    char model_hex[65];
    bool verify;
    pc_cache_entry_fn fn;
    void *user;
    bool stop;
} disk_walk;

/* Reads an entry's header (verify: the whole file) and says what is wrong with
 * it, if anything, into problem. */
static void inspect(disk_walk *W, int fd, const char *name, uint64_t size, pc_cache_entry_info *info, char *problem,
                    size_t cap, char *label, size_t label_cap) {
    const pc_store_io *io = W->io;
    uint8_t head[PC_ENTRY_FIXED];
    uint32_t hl = 0;
    pc_entry_header h;
    pc_error perr = {0};
    uint8_t *buf = NULL;
    int rc = size < PC_ENTRY_FIXED ? -EIO : pc_io_read_all(io, fd, head, sizeof head, 0);
    if (rc == 0 && pc_entry_header_peek(head, sizeof head, &hl, &perr) == PC_OK) {
        const size_t want = W->verify ? (size_t)size : (hl < size ? hl : (size_t)size);
        buf = malloc(want ? want : 1);
        rc = buf ? pc_io_read_all(io, fd, buf, want, 0) : -ENOMEM;
        if (rc == 0 && pc_entry_header_parse(buf, want, &h, &perr) != PC_OK) hl = 0;
    } else {
        hl = 0;
    }
    if (rc != 0) {
        snprintf(problem, cap, "cannot read: %s", size < PC_ENTRY_FIXED ? "file too short for a header" : strerror(-rc));
    } else if (hl == 0) {
        snprintf(problem, cap, "%s", perr.msg);
    } else {
        char model[65], key[65];
        pc_hex(h.model, 32, model);
        pc_hex(h.key, 32, key);
        info->start = h.start;
        info->n = h.n;
        snprintf(label, label_cap, "%.*s", (int)h.label_len, (const char *)buf + h.label_off);
        if ((uint64_t)h.header_len + h.payload_len != size)
            snprintf(problem, cap, "file is %llu bytes, its header says %llu (truncated or extended)",
                     (unsigned long long)size, (unsigned long long)h.header_len + h.payload_len);
        else if (strcmp(model, W->model_hex) != 0)
            snprintf(problem, cap, "written for model %.16s..., in the folder of %.16s...", model, W->model_hex);
        else if (strncmp(key, name, 64) != 0)
            snprintf(problem, cap, "its header holds another key than its name");
        else if (W->verify && pc_xxh3(buf + h.header_len, (size_t)h.payload_len) != h.payload_sum)
            snprintf(problem, cap, "payload checksum mismatch");
    }
    free(buf);
}

static int walk_entry(void *user, const char *name) {
    disk_walk *W = user;
    const size_t len = strlen(name);
    if (len != 67 || strcmp(name + 64, ".kv") != 0) return 0;
    char path[4096], problem[PC_ERROR_MSG_MAX] = "", label[PC_ENTRY_MAX_LABEL + 1] = "", key[65];
    snprintf(path, sizeof path, "%s/%s/%s", W->root, W->model_hex, name);
    snprintf(key, sizeof key, "%.64s", name);
    pc_cache_entry_info info = {.where = path, .tier = PC_SOURCE_DISK, .model = W->model_hex, .key = key, .label = label};
    int fd = W->io->open(W->io->ctx, path, O_RDONLY, 0);
    uint64_t size = 0;
    int64_t mtime = 0;
    int rc = fd < 0 ? fd : W->io->fstat(W->io->ctx, fd, &size, &mtime);
    if (rc != 0) {
        snprintf(problem, sizeof problem, "cannot read: %s", rc == -EINVAL ? "not a regular file" : strerror(-rc));
    } else {
        info.bytes = size;
        info.mtime_s = mtime / 1000000000;
        inspect(W, fd, name, size, &info, problem, sizeof problem, label, sizeof label);
    }
    if (fd >= 0) W->io->close(W->io->ctx, fd);
    info.problem = problem[0] ? problem : NULL;
    if (!W->fn(W->user, &info)) W->stop = true;
    return W->stop;
}

static int walk_model(void *user, const char *name) {
    disk_walk *W = user;
    pc_store_key k;
    if (pc_store_key_parse(name, &k) != 0) return 0; /* not a model folder */
    snprintf(W->model_hex, sizeof W->model_hex, "%s", name);
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/%s", W->root, name);
    W->io->list(W->io->ctx, dir, walk_entry, W);
    return W->stop;
}

pc_status pc_cache_scan(const pc_cache_params *p, bool verify, pc_cache_entry_fn fn, void *user, pc_error *err) {
    if (!p->dir && !p->redis) return pc_fail(err, PC_ERR_INVALID, "no cache folder and no Redis given");
    if (p->dir) {
        disk_walk W = {.io = pc_store_io_posix(), .root = p->dir, .verify = verify, .fn = fn, .user = user};
        int rc = W.io->list(W.io->ctx, p->dir, walk_model, &W);
        if (rc < 0) return pc_fail(err, PC_ERR_IO, "cache folder %s: %s", p->dir, strerror(-rc));
        if (W.stop) return PC_OK;
    }
    return p->redis ? pc_cache_scan_redis(p, verify, fn, user, err) : PC_OK;
}

pc_status pc_cache_remove(const pc_cache_params *p, const pc_cache_entry_info *e, pc_error *err) {
    if (e->tier == PC_SOURCE_REMOTE) return pc_cache_remove_redis(p, e->where, err);
    int rc = pc_store_io_posix()->unlink(NULL, e->where);
    if (rc != 0 && rc != -ENOENT) return pc_fail(err, PC_ERR_IO, "removing %s: %s", e->where, strerror(-rc));
    return PC_OK;
}
