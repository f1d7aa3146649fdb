/* tier_memory.c - the memory tier: entries by key, LRU under a byte budget, pins,
 * and per-group (per-schema) pins and TTLs.
 *
 * Invariants (under mu):
 *  1. An entry is resident iff the map holds it iff it is on the LRU list;
 *     a resident entry's refs counts one for the tier plus one per pin.
 *  2. bytes is the sum of resident entries' bytes.
 *  3. Eviction takes only entries with refs == 1 (unpinned), and never one of a
 *     pinned group; an entry of an expired group leaves as soon as it is
 *     unpinned. Over the budget, the least recently used go first.
 *  4. Pins are taken only under mu (get, put), so an entry seen unpinned here
 *     cannot be pinned behind the tier's back while it is being evicted.
 *  5. A tenant's account holds the bytes of its resident entries; with a
 *     quota, a put that would pass it first evicts that tenant's own unpinned
 *     entries (least recently used first) and is refused when they are not
 *     enough: one tenant filling its quota never evicts another's entries. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/keymap.h"
#include "store/tier.h"
#include "util/error.h"

typedef struct group {
    uint8_t digest[32];
    bool pin;
    double expires_ms; /* 0: no TTL */
} group;

typedef struct account {
    uint64_t owner;
    size_t bytes;
    size_t quota;  /* 0: none */
    bool set;      /* quota set for this tenant (else the default) */
} account;

typedef struct mem_tier {
    pc_tier base;
    pthread_mutex_t mu;
    pc_keymap map;
    pc_store_entry *head, *tail; /* most / least recently used */
    size_t bytes, entries, budget;
    group *groups;
    int32_t n_groups, cap_groups;
    account *accounts;
    int32_t n_accounts, cap_accounts;
    size_t default_quota;
} mem_tier;

/* The account of an owner (created on first use); NULL for nobody or out of memory. */
static account *account_of(mem_tier *t, uint64_t owner) {
    if (!owner) return NULL;
    for (int32_t i = 0; i < t->n_accounts; i++)
        if (t->accounts[i].owner == owner) return &t->accounts[i];
    if (t->n_accounts == t->cap_accounts) {
        const int32_t cap = t->cap_accounts ? t->cap_accounts * 2 : 8;
        account *a = realloc(t->accounts, (size_t)cap * sizeof *a);
        if (!a) return NULL;
        t->accounts = a;
        t->cap_accounts = cap;
    }
    account *a = &t->accounts[t->n_accounts++];
    *a = (account){.owner = owner, .quota = t->default_quota};
    return a;
}

static const group *find_group(const mem_tier *t, const uint8_t digest[32]) {
    for (int32_t i = 0; i < t->n_groups; i++)
        if (memcmp(t->groups[i].digest, digest, 32) == 0) return &t->groups[i];
    return NULL;
}

static bool expired(const mem_tier *t, const pc_store_entry *e, double now) {
    const group *g = find_group(t, e->group);
    return g && g->expires_ms > 0 && now >= g->expires_ms;
}

static bool group_pinned(const mem_tier *t, const pc_store_entry *e) {
    const group *g = find_group(t, e->group);
    return g && g->pin;
}

static void unlink_lru(mem_tier *t, pc_store_entry *e) {
    if (e->prev) e->prev->next = e->next; else t->head = e->next;
    if (e->next) e->next->prev = e->prev; else t->tail = e->prev;
    e->prev = e->next = NULL;
}

static void push_head(mem_tier *t, pc_store_entry *e) {
    e->prev = NULL;
    e->next = t->head;
    if (t->head) t->head->prev = e; else t->tail = e;
    t->head = e;
}

/* Drops the tier's reference; returns the entry when it is now free to free
 * (the caller frees it after unlocking), else NULL. */
static pc_store_entry *unindex(mem_tier *t, pc_store_entry *e) {
    pc_keymap_del(&t->map, &e->key);
    unlink_lru(t, e);
    e->resident = false;
    t->bytes -= e->bytes;
    t->entries--;
    account *a = account_of(t, e->owner);
    if (a) a->bytes -= e->bytes;
    return --e->refs == 0 ? e : NULL;
}

/* Evicts per invariant 3; the unpinned entries it drops have refs 0 after
 * unindexing and are freed here (their memory is no longer reachable). */
static void enforce(mem_tier *t) {
    const double now = pc_store_now_ms(t->base.env);
    pc_store_entry *e = t->tail;
    while (e) {
        pc_store_entry *prev = e->prev;
        bool over = t->budget != SIZE_MAX && t->bytes > t->budget;
        if (e->refs == 1 && (expired(t, e, now) || (over && !group_pinned(t, e)))) {
            atomic_fetch_add(&t->base.c.evictions, 1);
            pc_store_entry_free(unindex(t, e));
        }
        e = prev;
    }
}

/* Makes room for `need` more bytes of owner a within its quota by evicting
 * its own unpinned entries, least recently used first; false when they are
 * not enough. */
static bool fit_quota(mem_tier *t, account *a, size_t need) {
    if (!a || !a->quota) return true;
    for (pc_store_entry *e = t->tail; e && a->bytes + need > a->quota;) {
        pc_store_entry *prev = e->prev;
        if (e->owner == a->owner && e->refs == 1 && !group_pinned(t, e)) {
            atomic_fetch_add(&t->base.c.evictions, 1);
            pc_store_entry_free(unindex(t, e));
        }
        e = prev;
    }
    return a->bytes + need <= a->quota;
}

static pc_status mem_get(pc_tier *base, const pc_store_desc *d, pc_store_entry **out, pc_error *err) {
    (void)err;
    mem_tier *t = (mem_tier *)base;
    char why[256];
    pc_store_entry *gone = NULL, *e;
    pthread_mutex_lock(&t->mu);
    e = pc_keymap_get(&t->map, &d->key);
    if (e && expired(t, e, pc_store_now_ms(base->env))) {
        gone = unindex(t, e);
        e = NULL;
    } else if (e && !pc_store_entry_matches(e, d, base->env, why, sizeof why)) {
        pc_store_log(base->env, "memory: entry %s dropped: %s", e->label, why);
        atomic_fetch_add(&base->c.rejected, 1);
        gone = unindex(t, e);
        e = NULL;
    } else if (e) {
        e->refs++;
        unlink_lru(t, e);
        push_head(t, e);
        e->last_use_ms = pc_store_now_ms(base->env);
    }
    pthread_mutex_unlock(&t->mu);
    pc_store_entry_free(gone);
    *out = e;
    return e ? PC_OK : PC_ERR_NOT_FOUND;
}

static pc_status mem_put(pc_tier *base, pc_store_entry *e, pc_error *err) {
    mem_tier *t = (mem_tier *)base;
    pc_status st = PC_OK;
    pthread_mutex_lock(&t->mu);
    account *a = NULL;
    if (e->resident || pc_keymap_get(&t->map, &e->key)) {
        /* already held: entries of one key are identical */
    } else if (expired(t, e, pc_store_now_ms(base->env))) {
        /* the schema's TTL has run out: nothing of it is kept */
    } else if (e->owner && !(a = account_of(t, e->owner))) {
        st = pc_fail(err, PC_ERR_NOMEM, "out of memory accounting store entry '%s'", e->label);
    } else if (!fit_quota(t, a, e->bytes)) {
        st = pc_fail(err, PC_ERR_QUOTA,
                     "'%s' (%zu bytes) does not fit its tenant's memory quota of %zu bytes: the tenant's pinned or "
                     "in-use entries hold %zu", e->label, e->bytes, a->quota, a->bytes);
    } else if (pc_keymap_put(&t->map, &e->key, e) != 0) {
        st = pc_fail(err, PC_ERR_NOMEM, "out of memory indexing store entry '%s'", e->label);
    } else {
        e->refs++;
        e->resident = true;
        e->last_use_ms = pc_store_now_ms(base->env);
        push_head(t, e);
        t->bytes += e->bytes;
        t->entries++;
        if (a) a->bytes += e->bytes;
        atomic_fetch_add(&base->c.writes, 1);
        enforce(t);
    }
    pthread_mutex_unlock(&t->mu);
    return st;
}

static bool mem_exists(pc_tier *base, const pc_store_key *k) {
    mem_tier *t = (mem_tier *)base;
    pthread_mutex_lock(&t->mu);
    const pc_store_entry *e = pc_keymap_get(&t->map, k);
    bool yes = e && !expired(t, e, pc_store_now_ms(base->env));
    pthread_mutex_unlock(&t->mu);
    return yes;
}

static pc_status mem_remove(pc_tier *base, const pc_store_key *k, pc_error *err) {
    (void)err;
    mem_tier *t = (mem_tier *)base;
    pthread_mutex_lock(&t->mu);
    pc_store_entry *e = pc_keymap_get(&t->map, k), *gone = e ? unindex(t, e) : NULL;
    pthread_mutex_unlock(&t->mu);
    pc_store_entry_free(gone);
    return PC_OK;
}

void pc_tier_memory_release(pc_tier *base, pc_store_entry *e) {
    mem_tier *t = (mem_tier *)base;
    pthread_mutex_lock(&t->mu);
    int left = --e->refs;
    if (e->resident && left == 1) enforce(t); /* may free e: not touched after */
    pthread_mutex_unlock(&t->mu);
    if (left == 0) pc_store_entry_free(e); /* not resident: nobody else can reach it */
}

pc_status pc_tier_memory_set_group(pc_tier *base, const uint8_t digest[32], bool pin, double ttl_s, pc_error *err) {
    mem_tier *t = (mem_tier *)base;
    pc_status st = PC_OK;
    pthread_mutex_lock(&t->mu);
    group *g = (group *)find_group(t, digest);
    if (!g && t->n_groups == t->cap_groups) {
        int32_t cap = t->cap_groups ? t->cap_groups * 2 : 8;
        group *a = realloc(t->groups, (size_t)cap * sizeof *a);
        if (a) {
            t->groups = a;
            t->cap_groups = cap;
        }
    }
    if (!g && t->n_groups < t->cap_groups) {
        g = &t->groups[t->n_groups++];
        memcpy(g->digest, digest, 32);
    }
    if (g) {
        g->pin = pin;
        g->expires_ms = ttl_s > 0 ? pc_store_now_ms(base->env) + ttl_s * 1e3 : 0;
        enforce(t);
    } else {
        st = pc_fail(err, PC_ERR_NOMEM, "out of memory recording a schema's cache policy");
    }
    pthread_mutex_unlock(&t->mu);
    return st;
}

pc_status pc_tier_memory_set_quota(pc_tier *base, uint64_t owner, size_t bytes, pc_error *err) {
    mem_tier *t = (mem_tier *)base;
    pthread_mutex_lock(&t->mu);
    account *a = account_of(t, owner);
    if (a) {
        a->quota = bytes;
        a->set = true;
        fit_quota(t, a, 0); /* a lowered quota: the tenant's unpinned entries over it go now */
    }
    pthread_mutex_unlock(&t->mu);
    return a ? PC_OK : pc_fail(err, PC_ERR_NOMEM, "out of memory recording a tenant's quota");
}

void pc_tier_memory_usage(pc_tier *base, uint64_t owner, size_t *bytes, size_t *quota) {
    mem_tier *t = (mem_tier *)base;
    *bytes = 0;
    *quota = owner ? t->default_quota : 0;
    pthread_mutex_lock(&t->mu);
    for (int32_t i = 0; owner && i < t->n_accounts; i++)
        if (t->accounts[i].owner == owner) {
            *bytes = t->accounts[i].bytes;
            *quota = t->accounts[i].quota;
        }
    pthread_mutex_unlock(&t->mu);
}

static void mem_stats(pc_tier *base, pc_cache_tier_stats *out) {
    mem_tier *t = (mem_tier *)base;
    pthread_mutex_lock(&t->mu);
    out->entries = t->entries;
    out->bytes = t->bytes;
    out->budget = t->budget == SIZE_MAX ? 0 : t->budget;
    pthread_mutex_unlock(&t->mu);
}

/* Every pin must be back (store.h, invariant 2); an entry still pinned is a
 * caller's bug, and freeing it would pull memory from under that caller. */
static void mem_close(pc_tier *base) {
    mem_tier *t = (mem_tier *)base;
    while (t->head) {
        pc_store_entry *e = t->head, *gone = unindex(t, e);
        if (gone)
            pc_store_entry_free(gone);
        else
            pc_store_log(base->env, "memory: entry %s still pinned at close: left to its holder", e->label);
    }
    pc_keymap_free(&t->map);
    free(t->groups);
    free(t->accounts);
    pthread_mutex_destroy(&t->mu);
    free(t);
}

static const pc_tier_methods MEMORY_METHODS = {
    .name = "memory", .get = mem_get, .put = mem_put, .exists = mem_exists, .remove = mem_remove,
    .stats = mem_stats, .close = mem_close,
};

pc_status pc_tier_memory_open(const pc_store_env *env, pc_tier **out, pc_error *err) {
    mem_tier *t = calloc(1, sizeof *t);
    if (!t) return pc_fail(err, PC_ERR_NOMEM, "out of memory opening the memory tier");
    t->base.m = &MEMORY_METHODS;
    t->base.env = env;
    t->budget = env->cfg.cache.mem_bytes ? env->cfg.cache.mem_bytes : SIZE_MAX;
    t->default_quota = env->cfg.cache.tenant_quota;
    pthread_mutex_init(&t->mu, NULL);
    *out = &t->base;
    return PC_OK;
}
