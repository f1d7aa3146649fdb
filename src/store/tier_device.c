/* tier_device.c - the device tier: copies of entries' K and V resident in
 * accelerator memory under a byte budget (store.h, "The device tier").
 *
 * It is not one of the tiers behind pc_tier_methods: those hash, serialize and
 * write host memory, while this one only keeps spans the accelerator reads in
 * place. It holds spans, not entries, so a copy outlives the host entry it was
 * made from (a memory-tier eviction does not cost a new upload) and a request
 * holds a copy with a span reference, the same way it holds any span.
 *
 * The store never calls a device API: copies are made by the table the engine
 * hands in (pc_store_device, the backend's span copy).
 *
 * Invariants (under mu):
 *  1. A copy is indexed iff it is on the LRU list; used is the sum of the
 *     indexed copies' bytes, and stays <= budget except while every copy over
 *     it is held by a reader.
 *  2. A copy is held by a reader iff its span's refcount is above 1 (the tier
 *     owns one reference). Readers get their reference only under mu
 *     (pc_store_device_acquire) and give it back without it, so a count of 1
 *     seen under mu stays 1 until mu is released: eviction frees only such
 *     copies ("pinned while a request reads them").
 *  3. One copy per key: an upload runs under mu, so two requests for the same
 *     piece never upload it twice (uploads are bound by the host link, so
 *     serialising them costs little). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/keymap.h"
#include "store/tier.h"
#include "util/clock.h"
#include "util/error.h"

typedef struct dev_copy {
    pc_store_key key;
    pc_kv_span *span;             /* frozen, in device memory; one reference is the tier's */
    size_t bytes;
    struct dev_copy *prev, *next; /* LRU, most recently used first */
} dev_copy;

struct pc_store_devtier {
    pc_store_device dev;
    size_t budget, used, entries;
    pthread_mutex_t mu;
    pc_keymap map;
    dev_copy *head, *tail;
    pc_tier_counters c;           /* hits, misses, evictions, writes = uploads, bytes_written, write_ns */
};

static void unlink_lru(pc_store_devtier *t, dev_copy *d) {
    if (d->prev) d->prev->next = d->next; else t->head = d->next;
    if (d->next) d->next->prev = d->prev; else t->tail = d->prev;
    d->prev = d->next = NULL;
}

static void push_head(pc_store_devtier *t, dev_copy *d) {
    d->prev = NULL;
    d->next = t->head;
    if (t->head) t->head->prev = d; else t->tail = d;
    t->head = d;
}

/* Drops d from the index; its span goes when its last reader lets go. */
static void drop(pc_store_devtier *t, dev_copy *d) {
    pc_keymap_del(&t->map, &d->key);
    unlink_lru(t, d);
    t->used -= d->bytes;
    t->entries--;
    pc_kv_span_release(d->span);
    free(d);
}

static bool held(const dev_copy *d) { return atomic_load(&d->span->refcount) > 1; }

/* Frees unheld copies, least recently used first, until need more bytes fit
 * the budget; false (nothing freed beyond what was needed) when they cannot. */
static bool make_room(pc_store_devtier *t, size_t need) {
    if (need > t->budget) return false;
    size_t freeable = 0;
    for (dev_copy *d = t->tail; d && t->used - freeable + need > t->budget; d = d->prev)
        if (!held(d)) freeable += d->bytes;
    if (t->used - freeable + need > t->budget) return false; /* evict nothing for a copy that would not fit */
    for (dev_copy *d = t->tail; d && t->used + need > t->budget;) {
        dev_copy *prev = d->prev;
        if (!held(d)) {
            drop(t, d);
            atomic_fetch_add(&t->c.evictions, 1);
        }
        d = prev;
    }
    return true;
}

/* Indexes span (taking the caller's reference) under key; false when it
 * does not fit or the index cannot grow (span released then). */
static bool insert(pc_store_devtier *t, const pc_store_key *key, pc_kv_span *span) {
    const size_t bytes = pc_kv_span_cap_bytes(span);
    dev_copy *d = make_room(t, bytes) ? calloc(1, sizeof *d) : NULL;
    if (!d || pc_keymap_put(&t->map, key, d) != 0) {
        free(d);
        pc_kv_span_release(span);
        return false;
    }
    *d = (dev_copy){.key = *key, .span = span, .bytes = bytes};
    push_head(t, d);
    t->used += bytes;
    t->entries++;
    return true;
}

pc_status pc_store_devtier_open(const pc_store_device *dev, size_t budget, pc_store_devtier **out, pc_error *err) {
    *out = NULL;
    if (!dev || !dev->upload || !budget) return PC_OK; /* no device tier */
    pc_store_devtier *t = calloc(1, sizeof *t);
    if (!t) return pc_fail(err, PC_ERR_NOMEM, "out of memory opening the device tier");
    t->dev = *dev;
    t->budget = budget;
    pthread_mutex_init(&t->mu, NULL);
    *out = t;
    return PC_OK;
}

/* Copies still held by readers live on with them (a span's last release frees
 * it); the engine frees the backend only after every request is gone. */
void pc_store_devtier_close(pc_store_devtier *t) {
    if (!t) return;
    while (t->head) drop(t, t->head);
    pc_keymap_free(&t->map);
    pthread_mutex_destroy(&t->mu);
    free(t);
}

pc_kv_span *pc_store_devtier_acquire(pc_store_devtier *t, const pc_store_key *key, const pc_kv_span *host,
                                     bool *uploaded) {
    if (uploaded) *uploaded = false;
    if (!t) return NULL;
    pc_kv_span *out = NULL;
    pthread_mutex_lock(&t->mu);
    dev_copy *d = pc_keymap_get(&t->map, key);
    if (d && (d->span->n != host->n || d->span->n_layer != host->n_layer || d->span->dim != host->dim)) {
        drop(t, d); /* not this entry's shape (keys are content hashes: a bug upstream); never read */
        d = NULL;
    }
    if (d) {
        unlink_lru(t, d);
        push_head(t, d);
        out = pc_kv_span_retain(d->span);
        atomic_fetch_add(&t->c.hits, 1);
    } else {
        atomic_fetch_add(&t->c.misses, 1);
        const double t0 = pc_now_ms();
        const int32_t rows = (host->n + PC_KV_BLOCK - 1) / PC_KV_BLOCK * PC_KV_BLOCK;
        /* room first: a copy that could not be kept is not made */
        pc_kv_span *copy = make_room(t, 2 * pc_kv_array_bytes(host->n_layer, host->dim, rows)) ? t->dev.upload(t->dev.ctx, host)
                                                                                             : NULL;
        if (!copy && t->used + 2 * pc_kv_array_bytes(host->n_layer, host->dim, rows) <= t->budget)
            atomic_fetch_add(&t->c.errors, 1); /* there was room: the device could not make the copy */
        if (copy && pc_kv_span_loc(copy) != PC_KV_DEVICE) { /* the table broke its contract: not kept */
            pc_kv_span_release(copy);
            copy = NULL;
            atomic_fetch_add(&t->c.errors, 1);
        }
        if (copy && insert(t, key, pc_kv_span_retain(copy))) {
            out = copy; /* the caller's reference; the tier's is the one insert took */
            atomic_fetch_add(&t->c.writes, 1);
            atomic_fetch_add(&t->c.bytes_written, pc_kv_span_bytes(copy));
            pc_tier_count_time(&t->c.write_ns, pc_now_ms() - t0);
            if (uploaded) *uploaded = true;
        } else if (copy) {
            pc_kv_span_release(copy);
        }
    }
    pthread_mutex_unlock(&t->mu);
    return out;
}

bool pc_store_devtier_adopt(pc_store_devtier *t, const pc_store_key *key, pc_kv_span *span) {
    if (!t || !span || pc_kv_span_loc(span) != PC_KV_DEVICE || !atomic_load(&span->frozen)) return false;
    pthread_mutex_lock(&t->mu);
    bool kept = pc_keymap_get(&t->map, key) != NULL; /* already resident: one copy per key */
    if (!kept) kept = insert(t, key, pc_kv_span_retain(span));
    pthread_mutex_unlock(&t->mu);
    return kept;
}

void pc_store_devtier_remove(pc_store_devtier *t, const pc_store_key *key) {
    if (!t) return;
    pthread_mutex_lock(&t->mu);
    dev_copy *d = pc_keymap_get(&t->map, key);
    if (d) drop(t, d);
    pthread_mutex_unlock(&t->mu);
}

void pc_store_devtier_stats(pc_store_devtier *t, pc_cache_tier_stats *out) {
    memset(out, 0, sizeof *out);
    if (!t) return;
    pc_tier_counters_read(&t->c, out);
    pthread_mutex_lock(&t->mu);
    out->enabled = true;
    out->entries = t->entries;
    out->bytes = t->used;
    out->budget = t->budget;
    pthread_mutex_unlock(&t->mu);
}
