/* threadpool.c - persistent workers, atomic task counter, spin-then-sleep.
 *
 * Invariants: `claim` packs a job's generation (24 bits), its task count
 * (20 bits) and the next task index (20 bits) in one word, so a worker never
 * pairs an index with another job's count. The caller writes fn, ctx and
 * base, then publishes the new word (release). A worker claims a task by CAS
 * on `claim`, so it can only ever run a task of the job whose word it read; a
 * worker late from an old job fails its CAS and claims nothing. Jobs of more
 * than 2^20 tasks run as consecutive sub-jobs. `done` counts finished tasks and
 * the caller returns only when done == n_tasks, so ctx outlives every task
 * and fn is never rewritten while a task of its job is running. */
#include "util/threadpool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

/* ~0.5 ms of pause instructions: longer than the serial gaps of a decode step,
 * short enough not to steal a shared machine from other work. */
enum { SPIN_ITERS = 20000 };

struct pc_pool {
    int n_threads;
    pthread_t *threads;
    pthread_mutex_t run_mu; /* one job at a time: fn, ctx, base and the claim word are per job */
    pthread_mutex_t mu;
    pthread_cond_t wake;
    _Atomic unsigned generation;
    _Atomic uint64_t claim;
    _Atomic int done;
    _Atomic int stop;
    pc_task_fn fn;
    void *ctx;
    int base, n_total; /* sub-job offset and the whole job's task count */
    /* The team barrier (pc_pool_barrier): arrivals in this round, the round's
     * number, and whether a member sleeps on bar_wake (then the last arrival
     * broadcasts under bar_mu). */
    _Atomic int bar_count;
    _Atomic unsigned bar_round;
    _Atomic int bar_sleepers;
    _Atomic int bar_slept; /* members that spun out at a barrier during this team job */
    bool team;             /* the job is a team job: each thread runs member `thread`, once */
    _Atomic(const pc_pool_idle *) idle; /* pc_pool_idle_install's, or NULL */
    pthread_mutex_t bar_mu;
    pthread_cond_t bar_wake;
};

#define GEN_SHIFT 40
#define N_SHIFT 20
#define FIELD_MASK ((1u << 20) - 1)
#define GEN_MASK ((1u << 24) - 1)

typedef struct worker_arg {
    pc_pool *pool;
    int index;
} worker_arg;

int pc_cpu_count(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* One step of the installed idle work, else a pause. */
static void wait_step(pc_pool *p, int thread) {
    const pc_pool_idle *idle = atomic_load_explicit(&p->idle, memory_order_acquire);
    if (!idle || !idle->fn(idle->ctx, thread)) cpu_relax();
}

static void run_tasks(pc_pool *p, unsigned gen, int thread) {
    uint64_t v = atomic_load_explicit(&p->claim, memory_order_acquire);
    for (;;) {
        if ((unsigned)(v >> GEN_SHIFT) != (gen & GEN_MASK)) return;
        const int n = (int)((v >> N_SHIFT) & FIELD_MASK), t = (int)(v & FIELD_MASK);
        if (t >= n) return;
        if (!atomic_compare_exchange_weak_explicit(&p->claim, &v, v + 1, memory_order_acq_rel,
                                                   memory_order_acquire))
            continue;
        const bool team = p->team; /* the job's, ordered by the claim as fn is */
        p->fn(p->ctx, team ? thread : p->base + t, p->n_total, thread);
        atomic_fetch_add_explicit(&p->done, 1, memory_order_release);
        if (team) return; /* one member a thread: the n claims are the n threads */
        v = atomic_load_explicit(&p->claim, memory_order_acquire);
    }
}

static void *worker_main(void *arg) {
    worker_arg *wa = arg;
    pc_pool *p = wa->pool;
    int index = wa->index;
    free(wa);
    /* The generation before any job (0), not the one at this thread's start:
     * a job published before the thread ran is still its to join (a team
     * job's barrier waits for every thread). */
    unsigned seen = 0;
    for (;;) {
        int spins = 0;
        while (atomic_load_explicit(&p->generation, memory_order_acquire) == seen &&
               !atomic_load(&p->stop) && spins < SPIN_ITERS) {
            wait_step(p, index);
            spins++;
        }
        if (atomic_load(&p->generation) == seen && !atomic_load(&p->stop)) {
            pthread_mutex_lock(&p->mu);
            while (atomic_load(&p->generation) == seen && !atomic_load(&p->stop))
                pthread_cond_wait(&p->wake, &p->mu);
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load(&p->stop)) return NULL;
        seen = atomic_load_explicit(&p->generation, memory_order_acquire);
        run_tasks(p, seen, index);
    }
}

pc_pool *pc_pool_create(int n_threads) {
    if (n_threads <= 0) n_threads = pc_cpu_count();
    pc_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->n_threads = n_threads;
    pthread_mutex_init(&p->run_mu, NULL);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_mutex_init(&p->bar_mu, NULL);
    pthread_cond_init(&p->bar_wake, NULL);
    p->threads = calloc((size_t)n_threads, sizeof *p->threads);
    if (!p->threads) {
        pc_pool_free(p);
        return NULL;
    }
    for (int i = 1; i < n_threads; i++) {
        worker_arg *wa = malloc(sizeof *wa);
        if (!wa) {
            p->n_threads = i;
            pc_pool_free(p);
            return NULL;
        }
        wa->pool = p;
        wa->index = i;
        if (pthread_create(&p->threads[i], NULL, worker_main, wa) != 0) {
            free(wa);
            p->n_threads = i;
            pc_pool_free(p);
            return NULL;
        }
    }
    return p;
}

void pc_pool_free(pc_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, 1);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n_threads; i++)
        if (p->threads && p->threads[i]) pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->run_mu);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->bar_mu);
    pthread_cond_destroy(&p->bar_wake);
    free(p->threads);
    free(p);
}

int pc_pool_size(const pc_pool *p) { return p ? p->n_threads : 1; }

static void run_job(pc_pool *p, pc_task_fn fn, void *ctx, int base, int n, int n_total, bool team) {
    p->fn = fn;
    p->team = team;
    p->ctx = ctx;
    p->base = base;
    p->n_total = n_total;
    atomic_store_explicit(&p->done, 0, memory_order_relaxed);
    const unsigned gen = (atomic_load(&p->generation) + 1) & GEN_MASK;
    atomic_store_explicit(&p->claim, ((uint64_t)gen << GEN_SHIFT) | ((uint64_t)n << N_SHIFT), memory_order_release);
    pthread_mutex_lock(&p->mu);
    atomic_store_explicit(&p->generation, gen, memory_order_release);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    run_tasks(p, gen, 0);
    while (atomic_load_explicit(&p->done, memory_order_acquire) < n) wait_step(p, 0);
}

void pc_pool_run(pc_pool *p, pc_task_fn fn, void *ctx, int n_tasks) {
    if (n_tasks <= 0) return;
    /* Inline jobs touch no pool state, so they need not wait for the lock. */
    if (!p || p->n_threads == 1 || n_tasks == 1) {
        for (int t = 0; t < n_tasks; t++) fn(ctx, t, n_tasks, 0);
        return;
    }
    pthread_mutex_lock(&p->run_mu);
    for (int base = 0; base < n_tasks; base += (int)FIELD_MASK) {
        const int n = n_tasks - base < (int)FIELD_MASK ? n_tasks - base : (int)FIELD_MASK;
        run_job(p, fn, ctx, base, n, n_tasks, false);
    }
    pthread_mutex_unlock(&p->run_mu);
}

int pc_pool_team(pc_pool *p, pc_task_fn fn, void *ctx) {
    if (!p || p->n_threads == 1) {
        fn(ctx, 0, 1, 0);
        return 0;
    }
    pthread_mutex_lock(&p->run_mu);
    atomic_store_explicit(&p->bar_slept, 0, memory_order_relaxed); /* published by run_job's release */
    run_job(p, fn, ctx, 0, p->n_threads, p->n_threads, true);
    const int slept = atomic_load_explicit(&p->bar_slept, memory_order_relaxed); /* after done's acquire */
    pthread_mutex_unlock(&p->run_mu);
    return slept;
}

/* The last member to arrive opens the next round. A member that spun out
 * sleeps: it counts itself in bar_sleepers under bar_mu before it rechecks the
 * round, and the last arrival reads bar_sleepers after it opened the round
 * (both sequentially consistent), so either the sleeper sees the new round or
 * the last arrival sees the sleeper and broadcasts under the same mutex. */
void pc_pool_barrier(pc_pool *p) {
    if (!p || p->n_threads == 1) return;
    const unsigned round = atomic_load_explicit(&p->bar_round, memory_order_acquire);
    if (atomic_fetch_add_explicit(&p->bar_count, 1, memory_order_acq_rel) == p->n_threads - 1) {
        atomic_store_explicit(&p->bar_count, 0, memory_order_relaxed);
        atomic_fetch_add(&p->bar_round, 1);
        if (atomic_load(&p->bar_sleepers) > 0) {
            pthread_mutex_lock(&p->bar_mu);
            pthread_cond_broadcast(&p->bar_wake);
            pthread_mutex_unlock(&p->bar_mu);
        }
        return;
    }
    for (int spins = 0; spins < SPIN_ITERS; spins++) {
        if (atomic_load_explicit(&p->bar_round, memory_order_acquire) != round) return;
        cpu_relax();
    }
    atomic_fetch_add_explicit(&p->bar_slept, 1, memory_order_relaxed);
    pthread_mutex_lock(&p->bar_mu);
    atomic_fetch_add(&p->bar_sleepers, 1);
    while (atomic_load(&p->bar_round) == round) pthread_cond_wait(&p->bar_wake, &p->bar_mu);
    atomic_fetch_sub(&p->bar_sleepers, 1);
    pthread_mutex_unlock(&p->bar_mu);
}

bool pc_pool_idle_install(pc_pool *p, const pc_pool_idle *idle) {
    const pc_pool_idle *none = NULL;
    return p && atomic_compare_exchange_strong(&p->idle, &none, idle);
}

static void no_member(void *ctx, int member, int members, int thread) {
    (void)ctx;
    (void)member;
    (void)members;
    (void)thread;
}

/* A thread calls the idle work only between loading the pointer and its next
 * check for a job; a team job takes every thread, so once one has run after
 * the pointer was cleared, none holds the old one. */
void pc_pool_idle_remove(pc_pool *p, const pc_pool_idle *idle) {
    const pc_pool_idle *mine = idle;
    if (!p || !atomic_compare_exchange_strong(&p->idle, &mine, NULL)) return;
    pc_pool_team(p, no_member, NULL);
}
