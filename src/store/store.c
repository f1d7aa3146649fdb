/* store.c - the store object: its tiers in lookup order, promotion of hits,
 * write-through of puts, and the counters the API reports (store.h).
 *
 * Lookup goes memory, disk, remote; the first tier with a checked entry wins,
 * and the entry is put into each faster tier (a memory put keeps a reference
 * to the same entry: a mapped disk hit stays mapped, nothing is copied). A
 * tier that fails is a miss for that lookup: tiers log their own failures, so
 * one outage is one line, not one per request. */
#include <stdlib.h>
#include <string.h>

#include "store/tier.h"
#include "util/error.h"
#include "util/sha256.h"

struct pc_store {
    pc_store_env env;
    char *strings[4]; /* owned copies of the config's strings */
    pc_tier *tier[PC_N_TIERS]; /* memory always; disk and remote when configured */
    pc_store_devtier *dev;     /* the device tier, or NULL */
};

const char *pc_kv_source_name(pc_kv_source s) {
    switch (s) {
    case PC_SOURCE_MEMORY: return "memory";
    case PC_SOURCE_DISK: return "disk";
    case PC_SOURCE_REMOTE: return "remote";
    case PC_SOURCE_ENCODED: return "encoded";
    }
    return "unknown";
}

static const char *own(pc_store *s, int i, const char *str) {
    if (!str) return NULL;
    s->strings[i] = strdup(str);
    return s->strings[i];
}

pc_status pc_store_open(const pc_store_config *cfg, pc_store **out, pc_error *err) {
    *out = NULL;
    if (cfg->n_layer <= 0 || cfg->dim <= 0)
        return pc_fail(err, PC_ERR_INVALID, "store: KV shape %d layers x %d is invalid", cfg->n_layer, cfg->dim);
    pc_store *s = calloc(1, sizeof *s);
    if (!s) return pc_fail(err, PC_ERR_NOMEM, "out of memory opening the store");
    s->env.cfg = *cfg;
    pc_cache_params *c = &s->env.cfg.cache;
    c->dir = own(s, 0, cfg->cache.dir);
    c->redis = own(s, 1, cfg->cache.redis);
    c->redis_prefix = own(s, 2, cfg->cache.redis_prefix);
    s->env.cfg.model_label = own(s, 3, cfg->model_label);
    if (!s->env.cfg.io) s->env.cfg.io = pc_store_io_posix();
    pc_hex(cfg->model, 32, s->env.model_hex);
    pc_status st = PC_OK;
    if ((cfg->cache.dir && !c->dir) || (cfg->cache.redis && !c->redis) || (cfg->cache.redis_prefix && !c->redis_prefix) ||
        (cfg->model_label && !s->env.cfg.model_label))
        st = pc_fail(err, PC_ERR_NOMEM, "out of memory opening the store");
    if (st == PC_OK) st = pc_tier_memory_open(&s->env, &s->tier[PC_SOURCE_MEMORY], err);
    if (st == PC_OK && c->dir) st = pc_tier_disk_open(&s->env, &s->tier[PC_SOURCE_DISK], err);
    if (st == PC_OK && c->redis) st = pc_tier_redis_open(&s->env, &s->tier[PC_SOURCE_REMOTE], err);
    if (st == PC_OK && !c->gpu_off) st = pc_store_devtier_open(cfg->device, cfg->device_bytes, &s->dev, err);
    if (st != PC_OK) {
        pc_store_close(s);
        return st;
    }
    *out = s;
    return PC_OK;
}

void pc_store_close(pc_store *s) {
    if (!s) return;
    pc_store_devtier_close(s->dev);
    for (int i = PC_N_TIERS - 1; i >= 0; i--)
        if (s->tier[i]) s->tier[i]->m->close(s->tier[i]);
    for (int i = 0; i < 4; i++) free(s->strings[i]);
    free(s);
}

/* A hit in tier `from` goes into every faster tier; failures there were logged by the tier. */
static void promote(pc_store *s, pc_store_entry *e, int from) {
    for (int j = from - 1; j >= 0; j--) {
        pc_tier *t = s->tier[j];
        pc_error ignored;
        if (t) t->m->put(t, e, &ignored);
    }
}

pc_status pc_store_fetch(pc_store *s, const pc_store_desc *d, pc_store_entry **out, pc_kv_source *src, pc_error *err) {
    *out = NULL;
    for (int i = 0; i < (d->memory_only ? 1 : PC_N_TIERS); i++) {
        pc_tier *t = s->tier[i];
        if (!t) continue;
        pc_store_entry *e = NULL;
        pc_error terr = {0};
        pc_status st = t->m->get(t, d, &e, &terr);
        if (st == PC_ERR_NOMEM) return pc_fail(err, st, "%s", terr.msg);
        if (st != PC_OK) {
            atomic_fetch_add(&t->c.misses, 1);
            continue;
        }
        atomic_fetch_add(&t->c.hits, 1);
        promote(s, e, i);
        *out = e;
        if (src) *src = (pc_kv_source)i;
        return PC_OK;
    }
    return pc_fail(err, PC_ERR_NOT_FOUND, "store: no tier holds %s", d->label ? d->label : "the entry");
}

pc_status pc_store_put(pc_store *s, const pc_store_desc *d, pc_kv_span *span, pc_store_entry **out, pc_error *err) {
    if (out) *out = NULL;
    if (span->n_layer != s->env.cfg.n_layer || span->dim != s->env.cfg.dim || span->n != d->n || d->n <= 0 ||
        !atomic_load(&span->frozen)) {
        pc_fail(err, PC_ERR_INVALID, "store: %s: the span (%d tokens, %d layers x %d, %s) does not fit the entry (%d tokens)",
                d->label ? d->label : "entry", span->n, span->n_layer, span->dim,
                atomic_load(&span->frozen) ? "frozen" : "not frozen", d->n);
        pc_kv_span_release(span);
        return PC_ERR_INVALID;
    }
    if (pc_kv_span_loc(span) == PC_KV_DEVICE) { /* the tiers write and hash K and V from host memory */
        pc_fail(err, PC_ERR_INVALID, "store: %s: the span lives in GPU memory (copy it to host memory first)",
                d->label ? d->label : "entry");
        pc_kv_span_release(span);
        return PC_ERR_INVALID;
    }
    pc_store_entry *e = NULL;
    pc_status st = pc_store_entry_create(d, span, &e, err);
    if (st != PC_OK) return st;
    char why[256];
    if (!pc_store_entry_matches(e, d, &s->env, why, sizeof why)) {
        pc_store_entry_free(e);
        return pc_fail(err, PC_ERR_INVALID, "store: %s: %s", d->label ? d->label : "entry", why);
    }
    pc_tier *mem = s->tier[PC_SOURCE_MEMORY];
    if ((st = mem->m->put(mem, e, err)) != PC_OK) {
        pc_store_entry_free(e);
        return st;
    }
    for (int i = PC_SOURCE_DISK; i < PC_N_TIERS && !d->memory_only; i++) {
        pc_error ignored;
        if (s->tier[i]) s->tier[i]->m->put(s->tier[i], e, &ignored); /* failures: logged by the tier */
    }
    if (out)
        *out = e;
    else
        pc_store_release(s, e);
    return PC_OK;
}

void pc_store_release(pc_store *s, pc_store_entry *e) {
    if (e) pc_tier_memory_release(s->tier[PC_SOURCE_MEMORY], e);
}

bool pc_store_exists(pc_store *s, const pc_store_key *k) {
    for (int i = 0; i < PC_N_TIERS; i++)
        if (s->tier[i] && s->tier[i]->m->exists(s->tier[i], k)) return true;
    return false;
}

pc_status pc_store_remove(pc_store *s, const pc_store_key *k, pc_error *err) {
    pc_status first = PC_OK;
    pc_store_devtier_remove(s->dev, k);
    for (int i = 0; i < PC_N_TIERS; i++) {
        if (!s->tier[i]) continue;
        pc_error terr = {0};
        pc_status st = s->tier[i]->m->remove(s->tier[i], k, &terr);
        if (st != PC_OK && first == PC_OK) first = pc_fail(err, st, "%s", terr.msg);
    }
    return first;
}

pc_status pc_store_set_group(pc_store *s, const uint8_t group[32], bool pin, double ttl_s, pc_error *err) {
    return pc_tier_memory_set_group(s->tier[PC_SOURCE_MEMORY], group, pin, ttl_s, err);
}

pc_status pc_store_set_quota(pc_store *s, const char *tenant, size_t bytes, pc_error *err) {
    const uint64_t owner = pc_store_owner_of(tenant);
    if (!owner) return pc_fail(err, PC_ERR_INVALID, "store: a quota needs a tenant");
    return pc_tier_memory_set_quota(s->tier[PC_SOURCE_MEMORY], owner, bytes, err);
}

void pc_store_tenant_usage(pc_store *s, const char *tenant, size_t *bytes, size_t *quota) {
    pc_tier_memory_usage(s->tier[PC_SOURCE_MEMORY], pc_store_owner_of(tenant), bytes, quota);
}

size_t pc_store_memory_budget(pc_store *s) { return s->env.cfg.cache.mem_bytes; }

const pc_kv_span *pc_store_entry_span(const pc_store_entry *e) { return e->span; }

pc_kv_span *pc_store_device_acquire(pc_store *s, const pc_store_entry *e, bool *uploaded) {
    return pc_store_devtier_acquire(s->dev, &e->key, e->span, uploaded);
}

bool pc_store_device_adopt(pc_store *s, const pc_store_entry *e, pc_kv_span *span) {
    if (span && (span->n != e->n || span->n_layer != e->span->n_layer || span->dim != e->span->dim)) return false;
    return pc_store_devtier_adopt(s->dev, &e->key, span);
}

bool pc_store_has_device(const pc_store *s) { return s->dev != NULL; }
const pc_store_key *pc_store_entry_key(const pc_store_entry *e) { return &e->key; }

void pc_store_stats(pc_store *s, pc_cache_stats *out) {
    memset(out, 0, sizeof *out);
    for (int i = 0; i < PC_N_TIERS; i++) {
        pc_tier *t = s->tier[i];
        if (!t) continue;
        pc_cache_tier_stats *ts = &out->tier[i];
        pc_tier_counters_read(&t->c, ts);
        t->m->stats(t, ts);
        ts->enabled = true;
    }
    pc_store_devtier_stats(s->dev, &out->gpu);
}

/* Records live in the remote tier only: they are what servers sharing it tell each other. */
static pc_status no_remote(pc_error *err) {
    return pc_fail(err, PC_ERR_NOT_FOUND, "store: records need a remote tier (--cache-redis)");
}

bool pc_store_has_records(const pc_store *s) { return s->tier[PC_SOURCE_REMOTE] != NULL; }

pc_status pc_store_record_put(pc_store *s, const char *name, const void *data, size_t len, bool nx, double ttl_s,
                              bool *written, pc_error *err) {
    if (written) *written = false;
    if (len == 0) return pc_fail(err, PC_ERR_INVALID, "store: record '%.64s' is empty", name);
    pc_tier *t = s->tier[PC_SOURCE_REMOTE];
    return t ? pc_tier_redis_record_put(t, name, data, len, nx, ttl_s, written, err) : no_remote(err);
}

pc_status pc_store_record_get(pc_store *s, const char *name, size_t cap, char **data, size_t *len, pc_error *err) {
    *data = NULL;
    *len = 0;
    if (cap == 0) return pc_fail(err, PC_ERR_INVALID, "store: reading record '%.64s' into nothing", name);
    pc_tier *t = s->tier[PC_SOURCE_REMOTE];
    return t ? pc_tier_redis_record_get(t, name, cap, data, len, err) : no_remote(err);
}

pc_status pc_store_record_remove(pc_store *s, const char *name, pc_error *err) {
    pc_tier *t = s->tier[PC_SOURCE_REMOTE];
    return t ? pc_tier_redis_record_remove(t, name, err) : PC_OK;
}
