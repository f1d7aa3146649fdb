/* store_testlib.h - what the store tests share: seeded KV spans and pieces to
 * store, a log that remembers what the store said, a clock the test moves,
 * temporary folders. Header-only (static functions), tests only. */
#ifndef PC_TESTS_STORE_TESTLIB_H
#define PC_TESTS_STORE_TESTLIB_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "store/store.h"
#include "util/sha256.h"

#define T_LAYERS 2
#define T_DIM 16

/* A piece to store: its key, tokens and the KV a seed determines. */
typedef struct t_piece {
    pc_store_key key;
    uint8_t group[32];
    int32_t start, n;
    int32_t tokens[256];
    char label[64];
    uint64_t seed;
} t_piece;

static inline uint64_t t_rng(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static const uint8_t T_MODEL[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};

/* Piece i of a pretend schema: its key comes from the real key derivation. */
static inline t_piece t_piece_make(int i, int32_t n, const char *tenant) {
    t_piece p = {.start = 10 * i, .n = n, .seed = 1000 + (uint64_t)i};
    uint64_t s = p.seed;
    for (int32_t j = 0; j < n && j < 256; j++) p.tokens[j] = (int32_t)(t_rng(&s) % 50000);
    snprintf(p.label, sizeof p.label, "test:piece#%d", i);
    memset(p.group, 0x5a, sizeof p.group);
    char path[32];
    snprintf(path, sizeof path, "piece#%d", i);
    uint8_t schema[32] = {9, 9, 9};
    pc_store_key_parts kp = {.model = T_MODEL, .schema = schema, .path = path, .config = "", .start = p.start,
                             .n = n, .elem = PC_STORE_ELEM_F16, .tenant = tenant};
    pc_store_key_derive(&kp, &p.key, NULL);
    return p;
}

static inline pc_store_desc t_desc(const t_piece *p) {
    return (pc_store_desc){.key = p->key, .group = p->group, .start = p->start, .n = p->n, .tokens = p->tokens,
                           .label = p->label};
}

/* The KV of piece p: seeded values, positions start.., frozen. */
static inline pc_kv_span *t_span(const t_piece *p) {
    pc_kv_span *s = pc_kv_span_create(T_LAYERS, T_DIM, p->n);
    if (!s) return NULL;
    uint64_t r = p->seed * 31;
    for (int32_t t = 0; t < p->n; t++) {
        s->pos[t] = p->start + t;
        for (int32_t l = 0; l < T_LAYERS; l++)
            for (int32_t d = 0; d < T_DIM; d++) {
                *pc_kv_k_at(s, l, t, d) = (pc_f16)(t_rng(&r) & 0x7bff);
                pc_kv_v(s, l, t)[d] = (pc_f16)(t_rng(&r) & 0x7bff);
            }
    }
    s->n = p->n;
    pc_kv_span_freeze(s);
    return s;
}

/* Whether span holds exactly piece p's KV and positions. */
static inline int t_span_is(const pc_kv_span *s, const t_piece *p) {
    pc_kv_span *want = t_span(p);
    int ok = want && s->n == p->n && s->n_layer == T_LAYERS && s->dim == T_DIM;
    for (int32_t t = 0; ok && t < p->n; t++) {
        ok = s->pos[t] == p->start + t;
        for (int32_t l = 0; ok && l < T_LAYERS; l++)
            for (int32_t d = 0; ok && d < T_DIM; d++)
                ok = *pc_kv_k_at(s, l, t, d) == *pc_kv_k_at(want, l, t, d) && pc_kv_v(s, l, t)[d] == pc_kv_v(want, l, t)[d];
    }
    pc_kv_span_release(want);
    return ok;
}

/* What the store logged. */
typedef struct t_log {
    int lines;
    char last[1024];
    char all[16384];
} t_log;

static inline void t_log_fn(void *user, const char *msg) {
    t_log *L = user;
    L->lines++;
    snprintf(L->last, sizeof L->last, "%s", msg);
    size_t n = strlen(L->all);
    if (n + strlen(msg) + 2 < sizeof L->all) {
        strcat(L->all, msg);
        strcat(L->all, "\n");
    }
    if (getenv("PC_TEST_VERBOSE")) fprintf(stderr, "  log: %s\n", msg);
}

typedef struct t_clock {
    double ms;
} t_clock;

static inline double t_clock_fn(void *user) { return ((t_clock *)user)->ms; }

static inline pc_store_config t_config(t_log *log) {
    pc_store_config c = {.n_layer = T_LAYERS, .dim = T_DIM, .model_label = "test model"};
    memcpy(c.model, T_MODEL, 32);
    if (log) {
        c.cache.log = t_log_fn;
        c.cache.log_user = log;
    }
    return c;
}

static inline int t_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static inline void t_rmtree(const char *dir) { nftw(dir, t_rm_one, 16, FTW_DEPTH | FTW_PHYS); }

/* Puts piece p (the store takes the span). With pin, the entry stays pinned and is returned, for
 * the caller to release; else NULL. */
static inline pc_store_entry *t_put(pc_store *s, const t_piece *p, bool pin) {
    pc_store_desc d = t_desc(p);
    pc_store_entry *e = NULL;
    pc_error err = {0};
    CHECK_MSG(pc_store_put(s, &d, t_span(p), pin ? &e : NULL, &err) == PC_OK, "put %s: %s", p->label, err.msg);
    return e;
}

/* Fetches p: the tier that served it, or -1 on a miss; checks the served KV is p's. */
static inline int t_fetch(pc_store *s, const t_piece *p) {
    pc_store_desc d = t_desc(p);
    pc_store_entry *e = NULL;
    pc_kv_source src;
    pc_error err = {0};
    pc_status st = pc_store_fetch(s, &d, &e, &src, &err);
    if (st != PC_OK) {
        CHECK_MSG(st == PC_ERR_NOT_FOUND, "fetch %s: %s", p->label, err.msg);
        return -1;
    }
    CHECK_MSG(t_span_is(pc_store_entry_span(e), p), "%s: served KV differs from what was stored", p->label);
    pc_store_release(s, e);
    return (int)src;
}

static inline pc_cache_tier_stats t_tier_stats(pc_store *s, pc_kv_source tier) {
    pc_cache_stats st;
    pc_store_stats(s, &st);
    return st.tier[tier];
}

/* A fresh temporary folder; path into buf. */
static inline const char *t_tmpdir(char *buf, size_t cap) {
    snprintf(buf, cap, "/tmp/pcache-store-test-XXXXXX");
    return mkdtemp(buf);
}

/* Path of piece p's file in store folder root. */
static inline void t_entry_path(const char *root, const t_piece *p, char *out, size_t cap) {
    char model[65], key[65];
    pc_hex(T_MODEL, 32, model);
    pc_store_key_hex(&p->key, key);
    snprintf(out, cap, "%s/%s/%s.kv", root, model, key);
}

static inline long t_file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

#endif
