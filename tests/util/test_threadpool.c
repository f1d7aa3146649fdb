/* test_threadpool.c - every task of every job runs exactly once, on jobs of
 * changing sizes back to back (the pattern of a forward pass: 1, 3, 200, 2 ...),
 * which is where a worker late from one job could claim into the next; and
 * the same when several threads submit jobs to one pool at once (a server's
 * scheduler and a schema encoding share the engine's pool). Team jobs: every
 * member runs once, on distinct threads at once, and no member leaves a
 * barrier before all reached it - including a team job that is the pool's
 * first job, published before its workers have started, and team jobs between
 * ordinary jobs, with waits long enough that barriers sleep, which the team
 * job then reports (the CPU backend backs off its team path on that). A team
 * member is its thread's index, so per-thread state follows it from job to
 * job. The pool's idle work (pc_pool_idle_install) runs on waiting threads,
 * only one is installed at a time, and none runs once it is removed. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

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

enum { ROUNDS = 40 };

typedef struct team_job {
    pc_pool *pool;
    _Atomic int arrived[ROUNDS];
    _Atomic int members[8], threads[8];
    _Atomic int early, bad;
    int slow; /* this member dawdles before each barrier: the others spin out and sleep */
} team_job;

static void team_task(void *ctx, int member, int n, int thread) {
    team_job *j = ctx;
    if (n != pc_pool_size(j->pool) || member < 0 || member >= n || thread < 0 || thread >= n) {
        atomic_fetch_add(&j->bad, 1);
        return;
    }
    atomic_fetch_add(&j->members[member], 1);
    atomic_fetch_add(&j->threads[thread], 1);
    if (member != thread) atomic_fetch_add(&j->bad, 1);
    for (int r = 0; r < ROUNDS; r++) {
        if (member == j->slow && r % 8 == 0) /* round 0 far past the barrier's spin */
            nanosleep(&(struct timespec){.tv_nsec = r == 0 ? 20000000 : 2000000}, NULL);
        atomic_fetch_add(&j->arrived[r], 1);
        pc_pool_barrier(j->pool);
        if (atomic_load(&j->arrived[r]) != n) atomic_fetch_add(&j->early, 1);
    }
}

static void check_team(int threads) {
    int wrong = 0, unslept = 0;
    pc_pool *kept = NULL;
    for (int rep = 0; rep < 20; rep++) {
        pc_pool *p = rep % 5 == 0 || rep == 1 ? pc_pool_create(threads) : NULL; /* a fresh pool's first job is a team */
        if (p) {
            pc_pool_free(kept);
            kept = p;
        }
        team_job j = {.pool = kept, .slow = rep % threads};
        const int slept = pc_pool_team(kept, team_task, &j);
        unslept += threads > 1 ? slept == 0 : slept != 0; /* one thread never waits */
        for (int m = 0; m < threads; m++) wrong += atomic_load(&j.members[m]) != 1 || atomic_load(&j.threads[m]) != 1;
        wrong += atomic_load(&j.early) + atomic_load(&j.bad);
        job o = {.hits = calloc(3, sizeof(_Atomic int)), .n = 3};
        pc_pool_run(kept, task, &o, 3); /* an ordinary job between team jobs */
        for (int t = 0; t < 3; t++) wrong += atomic_load(&o.hits[t]) != 1;
        free(o.hits);
        if (rep == 19) {
            pc_pool_free(kept);
            kept = NULL;
        }
    }
    CHECK_MSG(wrong == 0, "team of %d threads: %d wrong members, threads or barrier exits", threads, wrong);
    CHECK_MSG(unslept == 0, "team of %d threads: %d of 20 jobs misreport their barrier sleeps", threads, unslept);
}

typedef struct idle_count {
    _Atomic int calls[4];
    _Atomic int removed, late; /* calls after pc_pool_idle_remove returned */
} idle_count;

static bool count_idle(void *ctx, int thread) {
    idle_count *c = ctx;
    if (thread >= 0 && thread < 4) atomic_fetch_add(&c->calls[thread], 1);
    if (atomic_load(&c->removed)) atomic_fetch_add(&c->late, 1);
    return atomic_load(&c->calls[thread]) % 2; /* some steps with work, some without */
}

static void slow_task(void *ctx, int t, int n, int thread) {
    (void)ctx;
    (void)n;
    (void)thread;
    if (t == 0) nanosleep(&(struct timespec){.tv_nsec = 300000}, NULL); /* the others wait for it */
}

static void check_idle(int threads) {
    pc_pool *p = pc_pool_create(threads);
    idle_count a = {0}, b = {0};
    const pc_pool_idle ia = {count_idle, &a}, ib = {count_idle, &b};
    CHECK(pc_pool_idle_install(p, &ia));
    CHECK(!pc_pool_idle_install(p, &ib)); /* one at a time */
    pc_pool_idle_remove(p, &ib);           /* not installed: a stays */
    for (int rep = 0; rep < 50; rep++) pc_pool_run(p, slow_task, NULL, threads);
    int calls = 0;
    for (int t = 0; t < threads; t++) calls += atomic_load(&a.calls[t]);
    CHECK_MSG(threads == 1 || calls > 0, "%d threads: the idle work never ran", threads);
    CHECK(atomic_load(&b.calls[0]) + atomic_load(&b.calls[1]) == 0);
    pc_pool_idle_remove(p, &ia);
    atomic_store(&a.removed, 1);
    for (int rep = 0; rep < 20; rep++) pc_pool_run(p, slow_task, NULL, threads);
    nanosleep(&(struct timespec){.tv_nsec = 2000000}, NULL); /* workers spinning between jobs */
    CHECK_MSG(atomic_load(&a.late) == 0, "%d threads: idle work ran %d times after its removal", threads,
              atomic_load(&a.late));
    CHECK(pc_pool_idle_install(p, &ib)); /* free again */
    pc_pool_idle_remove(p, &ib);
    pc_pool_free(p);
}

int main(void) {
    for (int threads = 1; threads <= 3; threads++) check_idle(threads);
    check_concurrent_callers();
    for (int threads = 1; threads <= 4; threads++) check_team(threads);
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
