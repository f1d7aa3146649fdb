/* tier.h - what the store's tiers share: the entry object, the tier function
 * table (SQLite's sqlite3_pcache_methods2 is the model), counters, logging and
 * the serialization of an entry into its image (format.h).
 *
 * A tier's get returns a new reference (one pin) to a checked entry or
 * PC_ERR_NOT_FOUND; a corrupt or mismatching stored entry is dropped by the
 * tier itself, logged and counted, and reads as a miss. Any other error means
 * the tier could not be asked (I/O, connection): the store logs it and goes on
 * to the next tier. put stores a copy or a reference of an entry (never
 * changes it); remove forgets a key; exists answers from what is cheap to
 * know (an index, a manifest), without reading payloads. */
#ifndef PC_STORE_TIER_H
#define PC_STORE_TIER_H

#include <pthread.h>
#include <stdatomic.h>

#include "store/format.h"
#include "store/store.h"

/* The store's configuration as every tier sees it (owned by the store). */
typedef struct pc_store_env {
    pc_store_config cfg;   /* strings point into the store's own copies */
    char model_hex[65];
} pc_store_env;

/* One line through the configured log (stderr by default): "pcache store: ...". */
void pc_store_log(const pc_store_env *env, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
double pc_store_now_ms(const pc_store_env *env);

struct pc_store_entry {
    pc_store_key key;
    uint8_t group[32];
    int32_t start, n;      /* positions [start, start + n) */
    int32_t *tokens;       /* [n], owned */
    char *label;           /* owned, NUL-terminated */
    pc_kv_span *span;      /* frozen; one reference owned by the entry */
    size_t bytes;          /* payload bytes (pc_store_payload_bytes) */
    uint64_t owner;        /* the tenant whose quota it counts against (pc_store_owner_of); 0: nobody */
    /* Memory tier bookkeeping, under its mutex (tier_memory.c): */
    int refs;              /* pins, plus one while resident */
    bool resident;
    double last_use_ms;
    pc_store_entry *prev, *next; /* LRU list, most recently used first */
};

/* A new entry (refs = 1) taking the caller's reference to span (released on failure). */
pc_status pc_store_entry_create(const pc_store_desc *d, pc_kv_span *span, pc_store_entry **out, pc_error *err);
void pc_store_entry_free(pc_store_entry *e);
/* Whether e is what d describes; why (when not) gets a short reason. */
bool pc_store_entry_matches(const pc_store_entry *e, const pc_store_desc *d, const pc_store_env *env, char *why,
                            size_t cap);
/* Checks a parsed header against the store's model and against d. */
bool pc_store_header_matches(const pc_entry_header *h, const uint8_t *image, const pc_store_desc *d,
                             const pc_store_env *env, char *why, size_t cap);
/* Builds an entry over a checked image (header then payload) that stays where
 * it is: release(owner) runs when the entry's span goes. */
pc_status pc_store_entry_from_image(const pc_entry_header *h, const uint8_t *image, const pc_store_desc *d,
                                    void (*release)(void *owner), void *owner, pc_store_entry **out, pc_error *err);

/* Serializes e's image: the header then the payload, through sink in pieces
 * (sink returns 0 or a negative errno, which stops the walk and is returned). */
int pc_store_entry_emit(const pc_store_entry *e, const pc_store_env *env, int (*sink)(void *u, const void *p, size_t n),
                        void *u);
/* Bytes of e's image. */
uint64_t pc_store_entry_image_bytes(const pc_store_entry *e);

typedef struct pc_tier_counters {
    _Atomic uint64_t hits, misses, evictions, checksum_failures, rejected, errors, writes;
    _Atomic uint64_t bytes_read, bytes_written, read_ns, write_ns;
} pc_tier_counters;

void pc_tier_counters_read(const pc_tier_counters *c, pc_cache_tier_stats *out);
void pc_tier_count_time(_Atomic uint64_t *ns, double ms);

typedef struct pc_tier pc_tier;

typedef struct pc_tier_methods {
    const char *name;
    pc_status (*get)(pc_tier *t, const pc_store_desc *d, pc_store_entry **out, pc_error *err);
    pc_status (*put)(pc_tier *t, pc_store_entry *e, pc_error *err);
    bool (*exists)(pc_tier *t, const pc_store_key *k);
    pc_status (*remove)(pc_tier *t, const pc_store_key *k, pc_error *err);
    void (*stats)(pc_tier *t, pc_cache_tier_stats *out); /* entries, bytes, budget; the store adds the counters */
    void (*close)(pc_tier *t);
} pc_tier_methods;

struct pc_tier {
    const pc_tier_methods *m;
    const pc_store_env *env;
    pc_tier_counters c;
};

pc_status pc_tier_memory_open(const pc_store_env *env, pc_tier **out, pc_error *err);
pc_status pc_tier_disk_open(const pc_store_env *env, pc_tier **out, pc_error *err);
pc_status pc_tier_redis_open(const pc_store_env *env, pc_tier **out, pc_error *err);

/* The device tier (tier_device.c; store.h says what it keeps). */
typedef struct pc_store_devtier pc_store_devtier;
/* *out = NULL (no tier) when dev is NULL or budget is 0. */
pc_status pc_store_devtier_open(const pc_store_device *dev, size_t budget, pc_store_devtier **out, pc_error *err);
void pc_store_devtier_close(pc_store_devtier *t); /* NULL-safe */
pc_kv_span *pc_store_devtier_acquire(pc_store_devtier *t, const pc_store_key *key, const pc_kv_span *host,
                                     bool *uploaded);
bool pc_store_devtier_adopt(pc_store_devtier *t, const pc_store_key *key, pc_kv_span *span);
void pc_store_devtier_remove(pc_store_devtier *t, const pc_store_key *key);
void pc_store_devtier_stats(pc_store_devtier *t, pc_cache_tier_stats *out);

/* A tenant as the memory tier's quotas know it: a 64-bit hash of its name
 * (0 for none, never 0 otherwise). */
uint64_t pc_store_owner_of(const char *tenant);

/* Memory tier extras beyond the table: pins, groups and quotas live only there. */
void pc_tier_memory_release(pc_tier *t, pc_store_entry *e);
pc_status pc_tier_memory_set_quota(pc_tier *t, uint64_t owner, size_t bytes, pc_error *err);
void pc_tier_memory_usage(pc_tier *t, uint64_t owner, size_t *bytes, size_t *quota);
pc_status pc_tier_memory_set_group(pc_tier *t, const uint8_t group[32], bool pin, double ttl_s, pc_error *err);

/* Redis tier extras: records, small named values beside the entries under
 * <prefix>record:<model hex>:<name> (store.h, pc_store_record_*). */
pc_status pc_tier_redis_record_put(pc_tier *t, const char *name, const void *data, size_t len, bool nx, double ttl_s,
                                   bool *written, pc_error *err);
pc_status pc_tier_redis_record_get(pc_tier *t, const char *name, size_t cap, char **data, size_t *len, pc_error *err);
pc_status pc_tier_redis_record_remove(pc_tier *t, const char *name, pc_error *err);

#endif
