/* test_threadpool.c - every task of every job runs exactly once, on jobs of
 * changing sizes back to back (the pattern of a forward pass: 1, 3, 200, 2 ...),
 * which is where a worker late from one job could claim into the next; and
 * the same when several threads submit jobs to one pool at once (a server's
 * scheduler and a schema encoding share the engine's pool). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "check.h"
#include "util/threadpool.h"

typedef struct job {
    _Atomic int *hits;
    int n;
    _Atomic int bad;
} job;

static void task(void *ctx, int t, int n, int thread) {
    job *j = ctx;
    if (n != j->n || t < 0 || t >= n || thread < 0 || thread >= 4) {
        atomic_fetch_add(&j->bad, 1);
        return;
    }
    atomic_fetch_add(&j->hits[t], 1);
}

typedef struct submitter {
    pc_pool *pool;
    int wrong;
} submitter;

static void *submit_jobs(void *arg) {
    submitter *s = arg;
    static const int sizes[] = {3, 1, 200, 2, 64, 7};
    for (int rep = 0; rep < 2000; rep++) {
        const int n = sizes[rep % (int)(sizeof sizes / sizeof sizes[0])];
        job j = {.hits = calloc((size_t)n, sizeof(_Atomic int)), .n = n};
        pc_pool_run(s->pool, task, &j, n);
        for (int t = 0; t < n; t++) s->wrong += atomic_load(&j.hits[t]) != 1;
        s->wrong += atomic_load(&j.bad);
        free(j.hits);
    }
    return NULL;
}

static void check_concurrent_callers(void) {
    pc_pool *p = pc_pool_create(3);
    submitter subs[3] = {{p, 0}, {p, 0}, {p, 0}};
    pthread_t th[3];
    for (int i = 0; i < 3; i++) CHECK(pthread_create(&th[i], NULL, submit_jobs, &subs[i]) == 0);
    for (int i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
        CHECK_MSG(subs[i].wrong == 0, "caller %d: %d tasks ran other than once", i, subs[i].wrong);
    }
    pc_pool_free(p);
}

int main(void) {
    check_concurrent_callers();
    static const int sizes[] = {1, 2, 3, 200, 2, 7, 1000, 1, 5, 64, 3, 2};
    for (int threads = 1; threads <= 4; threads++) {
        pc_pool *p = pc_pool_create(threads);
        CHECK(p != NULL && pc_pool_size(p) == threads);
        int wrong = 0;
        for (int rep = 0; rep < 3000; rep++) {
            const int n = sizes[rep % (int)(sizeof sizes / sizeof sizes[0])];
            job j = {.hits = calloc((size_t)n, sizeof(_Atomic int)), .n = n};
            pc_pool_run(p, task, &j, n);
            for (int t = 0; t < n; t++) wrong += atomic_load(&j.hits[t]) != 1;
            wrong += atomic_load(&j.bad);
            free(j.hits);
        }
        CHECK_MSG(wrong == 0, "%d threads: %d tasks ran other than once", threads, wrong);
        pc_pool_free(p);
    }
    pc_pool_free(NULL);
    return check_report();
}
