/* test_store_threads.c - the store shared by threads, as the server's
 * scheduler and HTTP threads share it (run under ThreadSanitizer in CI,
 * under AddressSanitizer in the sanitizer suite).
 *
 * Threads fetch pieces at random from a store whose memory budget holds a
 * quarter of them (with a disk tier behind), encode (put) what is missing,
 * and check the KV of every entry they hold pinned, twice: right after the
 * fetch and again after other threads have churned the tier. A pinned entry
 * freed or changed under its reader fails the second check (ASan sees the
 * use after free, TSan the race). At the end nothing is left pinned and the
 * tier is back within its budget. */
#include <pthread.h>
#include <sched.h>

#include "store_testlib.h"

#define N_PIECES 16
#define N_THREADS 4
#define ROUNDS 300

/* Filled in main before any worker starts and only read by the workers after. */
typedef struct shared {
    pc_store *store;
    t_piece pieces[N_PIECES];
} shared;

typedef struct worker {
    const shared *sh;
    uint64_t rng;
    int bad, hits, puts;
} worker;

static void *work(void *arg) {
    worker *w = arg;
    pc_store *const S = w->sh->store;
    for (int r = 0; r < ROUNDS; r++) {
        const t_piece *p = &w->sh->pieces[t_rng(&w->rng) % N_PIECES];
        pc_store_desc d = t_desc(p);
        pc_store_entry *e = NULL;
        if (pc_store_fetch(S, &d, &e, NULL, NULL) == PC_OK) {
            w->hits++;
        } else if (pc_store_put(S, &d, t_span(p), &e, NULL) == PC_OK) {
            w->puts++;
        } else {
            w->bad++;
            continue;
        }
        if (!t_span_is(pc_store_entry_span(e), p)) w->bad++;
        for (int y = 0; y < 3; y++) sched_yield(); /* let the others evict around us */
        if (!t_span_is(pc_store_entry_span(e), p)) w->bad++;
        pc_store_release(S, e);
    }
    return NULL;
}

int main(void) {
    char root[64];
    CHECK(t_tmpdir(root, sizeof root) != NULL);
    shared sh = {0};
    for (int i = 0; i < N_PIECES; i++) sh.pieces[i] = t_piece_make(i, 24 + i, "");
    pc_store_config c = t_config(NULL);
    c.cache.mem_bytes = N_PIECES / 4 * pc_store_payload_bytes(T_LAYERS, T_DIM, 32);
    c.cache.dir = root;
    pc_error err = {0};
    CHECK_MSG(pc_store_open(&c, &sh.store, &err) == PC_OK, "%s", err.msg);
    pthread_t th[N_THREADS];
    worker w[N_THREADS];
    for (int i = 0; i < N_THREADS; i++) {
        w[i] = (worker){.sh = &sh, .rng = 77 + (uint64_t)i};
        pthread_create(&th[i], NULL, work, &w[i]);
    }
    int bad = 0, hits = 0, puts = 0;
    for (int i = 0; i < N_THREADS; i++) {
        pthread_join(th[i], NULL);
        bad += w[i].bad;
        hits += w[i].hits;
        puts += w[i].puts;
    }
    CHECK_MSG(bad == 0, "%d entries were wrong while pinned", bad);
    CHECK_EQ_INT(hits + puts, N_THREADS * ROUNDS);
    pc_cache_stats st;
    pc_store_stats(sh.store, &st);
    CHECK_MSG(st.tier[0].evictions > 0, "the budget never evicted: the test did not churn");
    CHECK_MSG(st.tier[1].hits > 0, "evicted entries never came back from disk");
    CHECK(st.tier[0].bytes <= c.cache.mem_bytes);
    printf("%d hits, %d puts, %llu evictions, %llu disk hits\n", hits, puts,
           (unsigned long long)st.tier[0].evictions, (unsigned long long)st.tier[1].hits);
    pc_store_close(sh.store);
    t_rmtree(root);
    return check_report();
}
