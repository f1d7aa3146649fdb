/* threadpool.h - a fixed pool of worker threads for data-parallel loops.
 *
 * pc_pool_run(pool, fn, ctx, n) calls fn(ctx, i, n, thread) once for every
 * task i in [0, n) and returns when all have finished. The calling thread
 * takes part, so a pool of size T has T-1 workers. Tasks are claimed through
 * an atomic counter; a kernel that needs bitwise reproducibility must make
 * each task's result independent of which thread ran it (all our kernels do:
 * a task owns disjoint outputs). Workers spin briefly between jobs because a
 * decode step issues hundreds of short jobs, then sleep on a condition variable.
 * Not re-entrant: fn must not call pc_pool_run on the same pool. */
#ifndef PC_UTIL_THREADPOOL_H
#define PC_UTIL_THREADPOOL_H

#include <stdbool.h>

typedef struct pc_pool pc_pool;

/* fn(ctx, task, n_tasks, thread): thread is in [0, pc_pool_size) and indexes per-thread scratch. */
typedef void (*pc_task_fn)(void *ctx, int task, int n_tasks, int thread);

/* n_threads <= 0 means one per online CPU. Returns NULL on failure. Free with pc_pool_free. */
pc_pool *pc_pool_create(int n_threads);
void pc_pool_free(pc_pool *pool);
int pc_pool_size(const pc_pool *pool);
void pc_pool_run(pc_pool *pool, pc_task_fn fn, void *ctx, int n_tasks);

/* A team job: fn(ctx, member, n_members, thread) runs once on every thread of
 * the pool at the same time, member == thread (the caller is member 0), so
 * members may wait for each other in pc_pool_barrier and a thread's state
 * (its cursor in the weights, pc_pool_idle) follows its member from one team
 * job to the next; returns when all have returned. A sleeping worker is
 * woken, so barriers cannot deadlock. Not re-entrant, as pc_pool_run.
 * Returns how many times a member spun out at a barrier and slept: 0 while
 * the members run side by side, > 0 when one waited for a time slice (the
 * CPUs are shared), where a pc_pool_run job would have lost less. */
int pc_pool_team(pc_pool *pool, pc_task_fn fn, void *ctx);
/* Inside a team job: returns once every member has called it (as many times).
 * Spins briefly, then sleeps: the machine may be shared. Its release orders
 * every member's writes before the barrier before every read after it. */
void pc_pool_barrier(pc_pool *pool);

/* Work for a thread of the pool while it waits for work: a worker between
 * jobs, the caller for the last tasks of its job. fn(ctx, thread) takes one
 * small step that may stop at any point (asking for the cache lines the
 * thread's next team member reads) and returns false when it has none left;
 * the thread then spins as it would without. */
typedef struct pc_pool_idle {
    bool (*fn)(void *ctx, int thread);
    void *ctx;
} pc_pool_idle;
/* Installs *idle (which must stay valid until removed) unless another is
 * installed; false then. */
bool pc_pool_idle_install(pc_pool *pool, const pc_pool_idle *idle);
/* Removes idle if it is installed, and returns once no thread can call it
 * (every worker has taken part in a job since). */
void pc_pool_idle_remove(pc_pool *pool, const pc_pool_idle *idle);

/* Number of online CPUs (at least 1). */
int pc_cpu_count(void);

#endif
