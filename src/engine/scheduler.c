/* scheduler.c - continuous batching: one thread owns a forward state and
 * steps every active request together (step.h); other threads submit,
 * cancel and read statistics.
 *
 * States of a submitted request: QUEUED (in `queue`, under mu) -> ACTIVE (in
 * `active`, touched only by the scheduler thread) -> retired (on_done has run,
 * the scheduler's reference is released). Admission happens between steps,
 * so a step never sees a request appear or vanish.
 *
 * Invariants:
 *  1. n_active <= max_active, n_active + n_queue <= max_active + max_queued;
 *     both change under mu, so drain can wait for "both zero" on one
 *     condition variable.
 *  2. Every submitted request gets exactly one on_done, on this thread: when
 *     it ends in a step, when it is found cancelled, or at stop.
 *  3. The scheduler holds one reference to each request it knows of. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/step.h"
#include "util/error.h"

struct pc_sched {
    pc_engine *e;
    pc_sched_params p;
    pc_forward *fwd;
    pc_step_buf buf;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t wake;   /* work arrived, a queued request was cancelled, or stop */
    pthread_cond_t idle;   /* n_queue and n_active fell to zero */
    pc_request **queue;    /* [max_active + max_queued] FIFO, under mu */
    int32_t n_queue;
    pc_request **active;   /* [max_active] admission order = prefill priority */
    int32_t n_active;      /* written under mu by the scheduler thread */
    pc_request **gone;     /* [max_active + max_queued] ended outside mu, released under it */
    bool stopping, draining;
    pc_sched_stats stats;  /* under mu */
};

pc_sched_params pc_sched_default_params(void) {
    return (pc_sched_params){.max_active = 4, .max_queued = 64, .step_tokens = 0, .mix_tokens = 0};
}

/* ---- the scheduler thread ---- */

static void count_end(pc_sched *s, const pc_request *r) {
    if (r->status != PC_OK)
        s->stats.failed++;
    else if (r->res.gen.stop == PC_STOP_CANCEL)
        s->stats.cancelled++;
    else
        s->stats.completed++;
    s->stats.prompt_tokens += (uint64_t)r->res.fresh_tokens;
    s->stats.generated_tokens += r->res.gen.n_tokens;
}

/* Moves the queued requests found cancelled to s->gone; under mu. No wake-up
 * is needed for them: while anything waits, every slot is busy, so steps run
 * and each comes through here. */
static int32_t take_cancelled(pc_sched *s) {
    int32_t k = 0, g = 0;
    for (int32_t i = 0; i < s->n_queue; i++) {
        pc_request *r = s->queue[i];
        if (atomic_load(&r->cancel))
            s->gone[g++] = r;
        else
            s->queue[k++] = r;
    }
    s->n_queue = k;
    return g;
}

static void admit(pc_sched *s) {
    int32_t take = s->p.max_active - s->n_active;
    take = take < s->n_queue ? take : s->n_queue;
    if (take <= 0) return;
    memcpy(s->active + s->n_active, s->queue, (size_t)take * sizeof *s->queue);
    memmove(s->queue, s->queue + take, (size_t)(s->n_queue - take) * sizeof *s->queue);
    s->n_active += take;
    s->n_queue -= take;
}

/* Ends requests that never ran (cancelled, or stopped); outside mu, so that
 * on_done never runs under the scheduler's lock. */
static void end_unrun(pc_request **rs, int32_t n) {
    for (int32_t i = 0; i < n; i++) {
        rs[i]->res.gen.stop = PC_STOP_CANCEL;
        pc_req_finish(rs[i], PC_OK, NULL);
    }
}

/* Drops the scheduler's reference to ended requests; under mu. */
static void let_go(pc_sched *s, pc_request **rs, int32_t n) {
    for (int32_t i = 0; i < n; i++) {
        count_end(s, rs[i]);
        pc_request_release(rs[i]);
    }
}

static void retire(pc_sched *s) {
    int32_t k = 0;
    for (int32_t i = 0; i < s->n_active; i++) {
        if (s->active[i]->phase == PC_REQ_DONE)
            let_go(s, &s->active[i], 1);
        else
            s->active[k++] = s->active[i];
    }
    s->n_active = k;
    if (s->n_active == 0 && s->n_queue == 0) pthread_cond_broadcast(&s->idle);
}

/* At stop: every request still known ends (invariant 2); enters and leaves under mu. */
static void stop_all(pc_sched *s) {
    int32_t g = 0;
    for (int32_t i = 0; i < s->n_active; i++) s->gone[g++] = s->active[i];
    for (int32_t i = 0; i < s->n_queue; i++) s->gone[g++] = s->queue[i];
    s->n_active = s->n_queue = 0;
    pthread_mutex_unlock(&s->mu);
    end_unrun(s->gone, g);
    pthread_mutex_lock(&s->mu);
    let_go(s, s->gone, g);
    pthread_cond_broadcast(&s->idle);
}

static void *sched_main(void *arg) {
    pc_sched *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->stopping && s->n_active == 0 && s->n_queue == 0) pthread_cond_wait(&s->wake, &s->mu);
        if (s->stopping) break;
        const int32_t g = take_cancelled(s);
        admit(s);
        pthread_mutex_unlock(&s->mu);
        end_unrun(s->gone, g);
        const int32_t rows = pc_step_run(s->fwd, &s->buf, s->active, s->n_active, s->p.step_tokens,
                                        s->p.mix_tokens);
        pthread_mutex_lock(&s->mu);
        let_go(s, s->gone, g);
        if (rows > 0) {
            s->stats.steps++;
            s->stats.rows += (uint64_t)rows;
        }
        retire(s);
    }
    stop_all(s);
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* ---- the API ---- */

static void sched_free(pc_sched *s) {
    pc_forward_free(s->fwd);
    pc_step_buf_free(&s->buf);
    free(s->queue);
    free(s->active);
    free(s->gone);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->wake);
    pthread_cond_destroy(&s->idle);
    free(s);
}

pc_status pc_sched_start(pc_engine *e, const pc_sched_params *p, pc_sched **out, pc_error *err) {
    *out = NULL;
    pc_sched *s = calloc(1, sizeof *s);
    if (!s) return pc_fail(err, PC_ERR_NOMEM, "out of memory starting the scheduler");
    s->e = e;
    s->p = p ? *p : pc_sched_default_params();
    if (s->p.max_active <= 0) s->p.max_active = 4;
    if (s->p.max_queued < 0) s->p.max_queued = 64;
    if (s->p.step_tokens <= 0) s->p.step_tokens = e->n_batch;
    if (s->p.mix_tokens <= 0) s->p.mix_tokens = PC_SCHED_MIX_TOKENS;
    /* every active request must get its decode row in every step */
    if (s->p.step_tokens < s->p.max_active) s->p.step_tokens = s->p.max_active;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->wake, NULL);
    pthread_condattr_t ca; /* drain's deadline is on the monotonic clock */
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->idle, &ca);
    pthread_condattr_destroy(&ca);
    const size_t most = (size_t)s->p.max_active + (size_t)s->p.max_queued;
    s->queue = calloc(most, sizeof *s->queue);
    s->active = calloc((size_t)s->p.max_active, sizeof *s->active);
    s->gone = calloc(most, sizeof *s->gone);
    pc_status st = s->queue && s->active && s->gone ? pc_engine_new_forward(e, s->p.step_tokens, &s->fwd, err)
                                         : pc_fail(err, PC_ERR_NOMEM, "out of memory starting the scheduler");
    if (st == PC_OK && pthread_create(&s->thread, NULL, sched_main, s) != 0)
        st = pc_fail(err, PC_ERR_NOMEM, "cannot start the scheduler thread");
    if (st != PC_OK) {
        s->stopping = true; /* no thread to join */
        sched_free(s);
        return st;
    }
    *out = s;
    return PC_OK;
}

pc_status pc_sched_submit(pc_sched *s, pc_request *r, pc_error *err) {
    /* The flag first: once a scheduler has the request, its phase is that
     * thread's to read and write. */
    bool no = false;
    if (!atomic_compare_exchange_strong(&r->submitted, &no, true))
        return pc_fail(err, PC_ERR_INVALID, "request: already submitted to a scheduler");
    if (r->phase != PC_REQ_PREFILL) {
        atomic_store(&r->submitted, false);
        return pc_fail(err, PC_ERR_INVALID, "request: submitted before it was prepared, or after it ran");
    }
    pc_status st = PC_OK;
    pthread_mutex_lock(&s->mu);
    if (s->draining || s->stopping)
        st = pc_fail(err, PC_ERR_BUSY, "the server is shutting down");
    else if (s->n_active + s->n_queue >= s->p.max_active + s->p.max_queued)
        st = pc_fail(err, PC_ERR_BUSY, "all %d slots are busy and %d requests wait: try again later", s->p.max_active,
                     s->n_queue);
    if (st == PC_OK) {
        atomic_fetch_add(&r->refs, 1);
        s->queue[s->n_queue++] = r;
        pthread_cond_signal(&s->wake);
    }
    pthread_mutex_unlock(&s->mu);
    if (st != PC_OK) atomic_store(&r->submitted, false);
    return st;
}

/* A flag is enough: an active request ends at the next step, and a queued
 * one is swept out between steps (take_cancelled says why steps are running). */
void pc_request_cancel(pc_request *r) {
    if (r) atomic_store(&r->cancel, true);
}

void pc_sched_get_stats(pc_sched *s, pc_sched_stats *out) {
    pthread_mutex_lock(&s->mu);
    *out = s->stats;
    out->active = s->n_active;
    out->queued = s->n_queue;
    pthread_mutex_unlock(&s->mu);
}

bool pc_sched_drain(pc_sched *s, double timeout_ms) {
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    const double end_ns = (double)until.tv_nsec + (timeout_ms > 0 ? timeout_ms : 0) * 1e6;
    until.tv_sec += (time_t)(end_ns / 1e9);
    until.tv_nsec = (long)(end_ns - (double)(time_t)(end_ns / 1e9) * 1e9);
    pthread_mutex_lock(&s->mu);
    s->draining = true;
    int rc = 0;
    while ((s->n_active > 0 || s->n_queue > 0) && rc == 0)
        rc = timeout_ms > 0 ? pthread_cond_timedwait(&s->idle, &s->mu, &until) : pthread_cond_wait(&s->idle, &s->mu);
    const bool idle = s->n_active == 0 && s->n_queue == 0;
    pthread_mutex_unlock(&s->mu);
    return idle;
}

void pc_sched_stop(pc_sched *s) {
    pthread_mutex_lock(&s->mu);
    const bool was = s->stopping;
    s->stopping = true;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->mu);
    if (!was) pthread_join(s->thread, NULL);
}

void pc_sched_free(pc_sched *s) {
    if (!s) return;
    pc_sched_stop(s);
    sched_free(s);
}
