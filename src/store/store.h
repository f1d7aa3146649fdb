/* store.h - the module store: encoded KV of schema pieces, by content key, in tiers.
 *
 * Design (SERVING.md, "The module store"; SQLite's pager and pcache are the model):
 *   - The unit is one encoded text piece of a schema: its K, V and positions in
 *     every layer. An entry depends only on its key's inputs, never on another
 *     entry, so evicting one never orphans another.
 *   - Keys are SHA-256 over the store format version, the model fingerprint,
 *     the schema digest, the piece's path and union configuration, its
 *     positions, the KV element type and a tenant id (store_key.c): the same in
 *     every process and on every machine.
 *   - Tiers sit behind one function table (tier.h): memory (tier_memory.c),
 *     disk (tier_disk.c), Redis (tier_redis.c). A fetch tries them in that
 *     order and copies a hit into the faster tiers; a put writes through all.
 *   - Whatever comes back from disk or Redis is checked (format, sizes,
 *     checksums, model, version, key, positions, token ids) before use; any
 *     mismatch drops the entry, logs why, and reads as a miss, so the caller
 *     encodes afresh.
 *
 * Life of an entry held by a caller (each transition names its function):
 *
 *      pc_store_fetch / pc_store_put            pc_store_release
 *   (absent) ---------------------------> PINNED ----------------> UNPINNED (in memory, evictable)
 *                                            ^                          |
 *                                            +------ pc_store_fetch ----+
 *                                                                       | budget, TTL, pc_store_remove
 *                                                                       v
 *                                                                 (freed; still on disk / in Redis)
 *
 * Invariants:
 *  1. An entry is immutable: its span is frozen and its key, positions and
 *     tokens never change after creation.
 *  2. Every successful pc_store_fetch or pc_store_put hands out one pin, and
 *     the caller gives it back with exactly one pc_store_release. While pinned,
 *     an entry's memory stays valid whatever the store does (eviction, removal,
 *     budgets): only unpinned entries are freed.
 *  3. The memory tier evicts only unpinned entries, least recently used
 *     first, entries of expired groups before the others, never entries of a
 *     pinned group. Pinned entries may hold the tier above its budget until
 *     they are released.
 *  4. A file or Redis value becomes visible only complete: files are written
 *     to a temporary name, fsync'd and renamed; Redis parts are written before
 *     the manifest that names them.
 *
 * Threads: every function here may be called from any thread at any time on
 * one store (the server's scheduler and HTTP threads share one). The memory
 * tier, the disk index and the Redis connection each have their own mutex; no
 * lock is held while a tier does I/O except the Redis connection's. */
#ifndef PC_STORE_H
#define PC_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kv/kv.h"
#include "pcache.h"
#include "store/io.h"

#define PC_STORE_FORMAT_VERSION 1u
#define PC_STORE_ELEM_F16 1u /* KV element type code in keys and files (not the GGUF type id) */

typedef struct pc_store pc_store;
typedef struct pc_store_entry pc_store_entry;

typedef struct pc_store_key {
    uint8_t b[32];
} pc_store_key;

/* What a key is made of (store_key.c hashes these, length-prefixed, in this order). */
typedef struct pc_store_key_parts {
    const uint8_t *model;   /* [32] model fingerprint */
    const uint8_t *schema;  /* [32] schema digest */
    const char *path;       /* the piece: owner module path and index, e.g. "plan/home#1" */
    const char *config;     /* union configuration it was encoded in, e.g. "plan/home"; "" = the scaffold */
    int32_t start, n;       /* positions [start, start + n) */
    uint32_t elem;          /* KV element type (PC_STORE_ELEM_F16) */
    const char *tenant;     /* "" = shared */
} pc_store_key_parts;

pc_status pc_store_key_derive(const pc_store_key_parts *p, pc_store_key *out, pc_error *err);
void pc_store_key_hex(const pc_store_key *k, char out[65]);
int pc_store_key_parse(const char *hex, pc_store_key *out); /* 0 on 64 hex digits */

/* What the caller expects an entry to be; every tier's hit is checked against it. */
typedef struct pc_store_desc {
    pc_store_key key;
    const uint8_t *group;   /* [32] the schema digest: pins and TTLs apply per group */
    int32_t start, n;       /* positions [start, start + n) */
    const int32_t *tokens;  /* [n] token ids */
    const char *label;      /* "schema:path", for listings and log lines */
    bool memory_only;       /* fetch and put touch the memory tier only (the prefix cache's blocks) */
    const char *tenant;     /* whose quota the entry counts against in memory (NULL, "": nobody's) */
} pc_store_desc;

/* How the device tier makes a copy in accelerator memory: the store itself
 * never calls a device API (the engine passes the backend's span copy). */
typedef struct pc_store_device {
    /* A new frozen copy of src (refcount 1) whose K and V live in device
     * memory (PC_KV_DEVICE), finished when this returns; NULL when it cannot
     * be made. Called from any thread. */
    pc_kv_span *(*upload)(void *ctx, const pc_kv_span *src);
    void *ctx;
} pc_store_device;

typedef struct pc_store_config {
    uint8_t model[32];      /* model fingerprint: names the disk folder, checked in every entry */
    const char *model_label; /* human name of the model, written beside the disk folder */
    int32_t n_layer, dim;   /* KV shape of the model (dim = kv heads x head dim) */
    pc_cache_params cache;
    const pc_store_io *io;  /* file system seam; NULL: the real one (io_posix.c) */
    size_t redis_part_bytes; /* 0: 16 MiB */
    double (*now_ms)(void *user); /* clock seam for TTLs and retry back-off; NULL: monotonic clock */
    void *now_user;
    const pc_store_device *device; /* NULL, or cache.gpu_off: no device tier */
    size_t device_bytes;    /* the device tier's budget (the engine resolves cache.gpu_bytes' default) */
} pc_store_config;

/* Opens the tiers cfg names. The disk index is rebuilt from the entry headers
 * found in the model's folder (files that do not check out are removed, with a
 * log line); Redis is connected lazily. A disk folder that cannot be created
 * is an error; an unreachable Redis is not. */
pc_status pc_store_open(const pc_store_config *cfg, pc_store **out, pc_error *err);
/* Safe on NULL. Every pin must have been released. */
void pc_store_close(pc_store *s);

/* A pinned entry matching d from the first tier that has one, copied into the
 * faster tiers; *src says which tier. PC_ERR_NOT_FOUND when no tier has a
 * usable one (tier failures are logged, not returned). */
pc_status pc_store_fetch(pc_store *s, const pc_store_desc *d, pc_store_entry **out, pc_kv_source *src, pc_error *err);
/* Stores span (frozen, shaped for the store's model, holding d->n tokens at
 * d->start...) under d in every tier. Takes the caller's reference to span,
 * also on failure. *out (may be NULL) receives a pinned entry. Only the
 * memory tier's failure (out of memory) is an error; slower tiers warn. */
pc_status pc_store_put(pc_store *s, const pc_store_desc *d, pc_kv_span *span, pc_store_entry **out, pc_error *err);
/* Gives back one pin. NULL-safe. */
void pc_store_release(pc_store *s, pc_store_entry *e);
/* Whether some tier holds the key (cheap: no payload is read or checked). */
bool pc_store_exists(pc_store *s, const pc_store_key *k);
/* Drops the key from every tier (pinned copies live on until released). */
pc_status pc_store_remove(pc_store *s, const pc_store_key *k, pc_error *err);

/* Memory-tier policy of a group (a schema): pinned entries are never evicted;
 * with ttl_s > 0 the group's entries leave memory ttl_s seconds from now
 * (calling again restarts the clock); ttl_s <= 0 clears the TTL. */
pc_status pc_store_set_group(pc_store *s, const uint8_t group[32], bool pin, double ttl_s, pc_error *err);
/* A tenant's memory-tier quota in bytes (0: none; cfg.cache.tenant_quota is
 * every other tenant's); lowering it evicts the tenant's unpinned entries. */
pc_status pc_store_set_quota(pc_store *s, const char *tenant, size_t bytes, pc_error *err);
/* What a tenant's entries hold in the memory tier now, and its quota (0: none). */
void pc_store_tenant_usage(pc_store *s, const char *tenant, size_t *bytes, size_t *quota);
/* The memory tier's byte budget; 0: none. */
size_t pc_store_memory_budget(pc_store *s);

const pc_kv_span *pc_store_entry_span(const pc_store_entry *e);

/* The device tier: copies of entries' K and V resident in device memory,
 * LRU under cfg->device_bytes over copies no caller holds.
 *
 * e's KV in device memory with a reference for the caller (released with
 * pc_kv_span_release when the request is done; the copy cannot be evicted
 * while it is held): the tier's copy, or one uploaded now from e's span when
 * the budget has room (unheld copies are evicted, least recently used first;
 * nothing is evicted for a copy that would not fit). NULL when the store has
 * no device tier, or the copy neither is resident nor fits: the caller then
 * reads e's own span (streamed from host memory). *uploaded (may be NULL)
 * says an upload was made by this call. */
pc_kv_span *pc_store_device_acquire(pc_store *s, const pc_store_entry *e, bool *uploaded);
/* Keeps span (frozen, in device memory, holding e's KV: computed there) as
 * e's device copy without an upload; the tier takes a reference of its own.
 * False when there is no device tier or it does not fit. */
bool pc_store_device_adopt(pc_store *s, const pc_store_entry *e, pc_kv_span *span);
bool pc_store_has_device(const pc_store *s);
const pc_store_key *pc_store_entry_key(const pc_store_entry *e);

void pc_store_stats(pc_store *s, pc_cache_stats *out);

/* Records: small named values (the schema registry) that every process on
 * the same remote tier sees, namespaced by the key prefix and the model.
 * They live in the remote tier only: without one, get is PC_ERR_NOT_FOUND,
 * put fails and remove does nothing. A tier that cannot be asked is PC_ERR_IO
 * (so "absent" and "unknown" differ). */
bool pc_store_has_records(const pc_store *s);
/* Stores a record (len > 0; nx: only if absent, *written says whether it
 * was; ttl_s > 0: it expires then). */
pc_status pc_store_record_put(pc_store *s, const char *name, const void *data, size_t len, bool nx, double ttl_s,
                              bool *written, pc_error *err);
/* The first cap bytes of a record (all of it when shorter), malloc'd and
 * NUL-terminated in *data (free it). A caller that needs it whole asks for
 * one byte more than it accepts. */
pc_status pc_store_record_get(pc_store *s, const char *name, size_t cap, char **data, size_t *len, pc_error *err);
pc_status pc_store_record_remove(pc_store *s, const char *name, pc_error *err);

/* Bytes an entry of n tokens occupies in memory and as a payload on disk. */
size_t pc_store_payload_bytes(int32_t n_layer, int32_t dim, int32_t n);

#endif
