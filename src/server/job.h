/* job.h - a request as its connection thread sees it: text arriving from the
 * scheduler, its end, and its client going away.
 *
 * The scheduler's callbacks (its thread) append text and mark the end under
 * the job's mutex, then write the job's eventfd. The connection thread waits
 * in poll() on that eventfd and on its client's socket together, so a client
 * that hangs up is noticed at once, even while its request is still
 * prefilling, and its request is cancelled (freeing its slot at the next
 * step) instead of running to max_tokens for nobody.
 *
 * Lifetime: two references, the connection thread's and the callbacks'
 * (dropped in on_done, which the scheduler calls exactly once). */
#ifndef PC_SERVER_JOB_H
#define PC_SERVER_JOB_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>

#include "pcache.h"
#include "util/buf.h"

/* What the response needs from a finished request. */
typedef struct srv_usage {
    int64_t prompt_tokens;     /* cached + computed */
    int64_t cached_tokens;
    int64_t completion_tokens;
    pc_stop_reason stop;
    double ttft_ms, decode_tok_s;
    json_t *modules;           /* PML prompts: [{path, tokens, source}] per cached piece; NULL otherwise */
} srv_usage;

typedef struct srv_job {
    pthread_mutex_t mu;
    int efd;                   /* eventfd: readable when text or the end arrived */
    pc_buf text;               /* produced and not yet taken */
    bool done;
    pc_status status;
    pc_error err;
    srv_usage usage;
    _Atomic int refs;
    pc_request *req;           /* the connection thread's reference (for cancel) */
    bool plain;                /* a plain prompt (not PML): set by the connection thread before it reads usage */
} srv_job;

/* A job for r (takes the caller's reference to r); sets r's callbacks. NULL on OOM. */
srv_job *srv_job_new(pc_request *r);
void srv_job_release(srv_job *j);

typedef enum srv_wait { SRV_WAIT_READY = 0, SRV_WAIT_GONE } srv_wait;

/* Blocks until the job has text not yet taken or is done (READY), or the
 * client on fd hung up (GONE: the request is then cancelled). */
srv_wait srv_job_wait(srv_job *j, int client_fd);

/* Moves the pending text into out (appended) and says whether the job is
 * done; *usage etc. are valid once done. false when out of memory. */
bool srv_job_take(srv_job *j, pc_buf *out, bool *done);

#endif
