/* test_store_device.c - the store's device tier, on a pretend device whose
 * memory is host memory marked PC_KV_DEVICE (so the test runs everywhere and
 * can read the copies back): copies are made once and reused, pieces encoded
 * "on the device" are adopted without an upload, the budget holds, eviction
 * is least recently used over copies no reader holds and never frees a held
 * one, a copy that cannot fit evicts nothing, device errors read as misses,
 * removal drops the copy, no device table means no tier, and readers on
 * several threads always see the right KV (run under TSan/ASan by test.sh). */
#include <pthread.h>
#include <stdint.h>

#include "store_testlib.h"

typedef struct fake_dev {
    pc_kv_mem mem;
    _Atomic int uploads;
    _Atomic bool fail;   /* the next uploads fail, as a device out of memory would */
} fake_dev;

static void *fake_alloc(void *ctx, size_t bytes) { (void)ctx; return calloc(1, bytes); }
static void fake_free(void *ctx, void *p) { (void)ctx; free(p); }
static bool fake_copy(void *ctx, void *dst, const void *src, size_t bytes) {
    (void)ctx;
    memcpy(dst, src, bytes);
    return true;
}

/* A frozen copy of src in the pretend device memory, element by element (its
 * capacity may differ from src's). */
static pc_kv_span *fake_make(fake_dev *f, const pc_kv_span *src) {
    pc_kv_span *d = pc_kv_span_create_in(&f->mem, src->n_layer, src->dim, src->n);
    if (!d) return NULL;
    for (int32_t t = 0; t < src->n; t++) {
        d->pos[t] = src->pos[t];
        for (int32_t l = 0; l < src->n_layer; l++)
            for (int32_t j = 0; j < src->dim; j++) {
                *pc_kv_k_at(d, l, t, j) = *pc_kv_k_at(src, l, t, j);
                pc_kv_v(d, l, t)[j] = pc_kv_v(src, l, t)[j];
            }
    }
    d->n = src->n;
    pc_kv_span_freeze(d);
    return d;
}

static pc_kv_span *fake_upload(void *ctx, const pc_kv_span *src) {
    fake_dev *f = ctx;
    if (atomic_load(&f->fail)) return NULL;
    atomic_fetch_add(&f->uploads, 1);
    return fake_make(f, src);
}

static fake_dev *fake_new(void) {
    fake_dev *f = calloc(1, sizeof *f);
    f->mem = (pc_kv_mem){.loc = PC_KV_DEVICE, .alloc = fake_alloc, .free = fake_free, .copy = fake_copy, .ctx = f};
    return f;
}

/* Bytes one copy of an n-token piece takes (capacity rounded to the key block). */
static size_t copy_bytes(int32_t n) {
    const int32_t cap = (n + PC_KV_BLOCK - 1) / PC_KV_BLOCK * PC_KV_BLOCK;
    return 2 * pc_kv_array_bytes(T_LAYERS, T_DIM, cap);
}

static pc_store *open_dev(fake_dev *f, size_t budget, t_log *log) {
    pc_store_config c = t_config(log);
    const pc_store_device dev = {.upload = fake_upload, .ctx = f};
    c.device = &dev;
    c.device_bytes = budget;
    pc_store *s = NULL;
    pc_error err = {0};
    CHECK_MSG(pc_store_open(&c, &s, &err) == PC_OK, "%s", err.msg);
    return s;
}

static pc_cache_tier_stats gpu_stats(pc_store *s) {
    pc_cache_stats st;
    pc_store_stats(s, &st);
    return st.gpu;
}

static void check_reuse_budget_eviction(void) {
    fake_dev *f = fake_new();
    t_log log = {0};
    pc_store *s = open_dev(f, 2 * copy_bytes(16) + 100, &log); /* room for two copies */
    CHECK(pc_store_has_device(s));
    t_piece p[4];
    pc_store_entry *e[4];
    for (int i = 0; i < 4; i++) {
        p[i] = t_piece_make(i, 16, "");
        e[i] = t_put(s, &p[i], true);
    }
    bool up = false;
    pc_kv_span *d0 = pc_store_device_acquire(s, e[0], &up);
    CHECK(d0 && up && pc_kv_span_loc(d0) == PC_KV_DEVICE && t_span_is(d0, &p[0]));
    pc_kv_span *again = pc_store_device_acquire(s, e[0], &up);
    CHECK(again == d0 && !up); /* resident: the same memory, no second upload */
    pc_kv_span_release(again);
    pc_kv_span *d1 = pc_store_device_acquire(s, e[1], &up);
    CHECK(d1 && up && t_span_is(d1, &p[1]));
    pc_cache_tier_stats g = gpu_stats(s);
    CHECK(g.enabled && g.entries == 2 && g.bytes == 2 * copy_bytes(16) && g.writes == 2 && g.hits == 1 && g.misses == 2);
    /* both copies held: a third does not fit and nothing is evicted for it */
    pc_kv_span *d2 = pc_store_device_acquire(s, e[2], &up);
    CHECK(!d2 && !up);
    g = gpu_stats(s);
    CHECK(g.evictions == 0 && g.entries == 2 && f->uploads == 2 && g.errors == 0);
    /* d0 let go: it is the least recently used unheld copy and makes room */
    pc_kv_span_release(d0);
    d2 = pc_store_device_acquire(s, e[2], &up);
    CHECK(d2 && up && t_span_is(d2, &p[2]));
    g = gpu_stats(s);
    CHECK(g.evictions == 1 && g.entries == 2 && g.bytes <= g.budget);
    CHECK(t_span_is(d1, &p[1])); /* the held copy is untouched */
    /* d1 (held) and d2 (held): piece 0 comes back only after one is let go */
    pc_kv_span_release(d2);
    d0 = pc_store_device_acquire(s, e[0], &up);
    CHECK(d0 && up && t_span_is(d0, &p[0]) && f->uploads == 4);
    CHECK(t_span_is(d1, &p[1]));
    /* adopt: a copy computed on the device is kept without an upload */
    pc_kv_span_release(d0);
    pc_kv_span *made = fake_make(f, pc_store_entry_span(e[3]));
    CHECK(pc_store_device_adopt(s, e[3], made));
    pc_kv_span *d3 = pc_store_device_acquire(s, e[3], &up);
    CHECK(d3 == made && !up && f->uploads == 4);
    pc_kv_span_release(made);
    CHECK(t_span_is(d3, &p[3]));
    /* a span of another shape is not adopted */
    t_piece q = t_piece_make(9, 8, "");
    pc_kv_span *qh = t_span(&q), *wrong = fake_make(f, qh);
    CHECK(!pc_store_device_adopt(s, e[2], wrong));
    pc_kv_span_release(wrong);
    pc_kv_span_release(qh);
    /* removal drops the copy: the next read uploads again */
    pc_kv_span_release(d3);
    pc_error err = {0};
    CHECK(pc_store_remove(s, &p[3].key, &err) == PC_OK);
    pc_kv_span *d3b = pc_store_device_acquire(s, e[3], &up); /* e[3] is still pinned: its host span reads */
    CHECK(d3b && up && t_span_is(d3b, &p[3]));
    pc_kv_span_release(d3b);
    pc_kv_span_release(d1);
    for (int i = 0; i < 4; i++) pc_store_release(s, e[i]);
    pc_store_close(s);
    free(f);
}

static void check_too_big_and_errors(void) {
    fake_dev *f = fake_new();
    pc_store *s = open_dev(f, copy_bytes(16) + 10, NULL);
    t_piece small = t_piece_make(0, 16, ""), big = t_piece_make(1, 100, "");
    pc_store_entry *es = t_put(s, &small, true), *eb = t_put(s, &big, true);
    bool up = true;
    pc_kv_span *ds = pc_store_device_acquire(s, es, &up);
    pc_kv_span_release(ds);
    CHECK(ds && up);
    /* larger than the whole budget: no upload, the resident copy stays */
    CHECK(!pc_store_device_acquire(s, eb, &up) && !up);
    pc_cache_tier_stats g = gpu_stats(s);
    CHECK(g.entries == 1 && g.evictions == 0 && f->uploads == 1);
    /* a device that cannot make the copy: a miss and an error, never a bad span */
    pc_error err = {0};
    CHECK(pc_store_remove(s, &small.key, &err) == PC_OK);
    atomic_store(&f->fail, true);
    CHECK(!pc_store_device_acquire(s, es, &up) && !up);
    g = gpu_stats(s);
    CHECK(g.errors == 1 && g.entries == 0);
    atomic_store(&f->fail, false);
    ds = pc_store_device_acquire(s, es, &up);
    CHECK(ds && up && t_span_is(ds, &small));
    pc_kv_span_release(ds);
    pc_store_release(s, es);
    pc_store_release(s, eb);
    pc_store_close(s);
    free(f);
}

/* No table, a zero budget or gpu_off: no device tier, reads fall back to the entry's span. */
static void check_no_tier(void) {
    fake_dev *f = fake_new();
    for (int mode = 0; mode < 3; mode++) {
        pc_store_config c = t_config(NULL);
        const pc_store_device dev = {.upload = fake_upload, .ctx = f};
        c.device = mode == 0 ? NULL : &dev;
        c.device_bytes = mode == 1 ? 0 : 1 << 20;
        c.cache.gpu_off = mode == 2;
        if (mode == 0) c.device_bytes = 1 << 20;
        pc_store *s = NULL;
        pc_error err = {0};
        CHECK(pc_store_open(&c, &s, &err) == PC_OK);
        t_piece p = t_piece_make(0, 16, "");
        pc_store_entry *e = t_put(s, &p, true);
        bool up = true;
        CHECK(!pc_store_has_device(s) && !pc_store_device_acquire(s, e, &up) && !up);
        CHECK(!gpu_stats(s).enabled);
        pc_store_release(s, e);
        pc_store_close(s);
    }
    CHECK(f->uploads == 0);
    free(f);
}

/* Readers on several threads over four pieces and room for two copies:
 * every span handed out holds its piece's KV while it is held. */
typedef struct reader {
    pc_store *s;
    pc_store_entry **e;
    const t_piece *p;
    int bad, got;
    uint64_t seed;
} reader;

static void *read_loop(void *arg) {
    reader *r = arg;
    for (int it = 0; it < 300; it++) {
        const int i = (int)(t_rng(&r->seed) % 4);
        pc_kv_span *d = pc_store_device_acquire(r->s, r->e[i], NULL);
        if (!d) continue;
        r->got++;
        if (!t_span_is(d, &r->p[i])) r->bad++;
        pc_kv_span_release(d);
    }
    return NULL;
}

static void check_threads(void) {
    fake_dev *f = fake_new();
    pc_store *s = open_dev(f, 2 * copy_bytes(16), NULL);
    t_piece p[4];
    pc_store_entry *e[4];
    for (int i = 0; i < 4; i++) {
        p[i] = t_piece_make(i, 16, "");
        e[i] = t_put(s, &p[i], true);
    }
    reader r[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        r[i] = (reader){.s = s, .e = e, .p = p, .seed = 77 + (uint64_t)i};
        pthread_create(&th[i], NULL, read_loop, &r[i]);
    }
    int got = 0, bad = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        got += r[i].got;
        bad += r[i].bad;
    }
    pc_cache_tier_stats g = gpu_stats(s);
    CHECK_MSG(bad == 0 && got > 0, "%d of %d reads saw the wrong KV", bad, got);
    CHECK(g.bytes <= g.budget && g.entries <= 2 && g.writes == (uint64_t)f->uploads);
    for (int i = 0; i < 4; i++) pc_store_release(s, e[i]);
    pc_store_close(s);
    free(f);
}

int main(void) {
    check_reuse_budget_eviction();
    check_too_big_and_errors();
    check_no_tier();
    check_threads();
    return check_report();
}
