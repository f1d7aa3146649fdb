/* job.c - the scheduler's callbacks on one side, a connection thread's wait
 * on the other (job.h). */
#include "server/job.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

static void notify(srv_job *j) {
    const uint64_t one = 1;
    /* a full counter (never, in practice) still leaves the fd readable */
    ssize_t w = write(j->efd, &one, sizeof one);
    (void)w;
}

/* Scheduler thread: never blocks beyond the job's own short lock. */
static bool on_text(void *user, int32_t token, const char *text, size_t len) {
    (void)token;
    srv_job *j = user;
    pthread_mutex_lock(&j->mu);
    const bool ok = pc_buf_append(&j->text, text, len);
    pthread_mutex_unlock(&j->mu);
    notify(j);
    return ok; /* out of memory for the text: stop generating */
}

/* Where each cached piece of a PML prompt came from (SERVING.md's per-module
 * breakdown). Built here because r lives only during the callback. */
static json_t *modules_json(const pc_run_result *r) {
    if (!r->n_pieces) return NULL;
    json_t *a = json_array();
    for (size_t i = 0; a && i < r->n_pieces; i++)
        json_array_append_new(a, json_pack("{s:s, s:i, s:i, s:s}", "path", r->pieces[i].path, "start",
                                           r->pieces[i].start, "tokens", r->pieces[i].n, "source",
                                           pc_kv_source_name(r->pieces[i].source)));
    return a;
}

static void on_done(void *user, pc_status status, const pc_error *err, const pc_run_result *r) {
    srv_job *j = user;
    pthread_mutex_lock(&j->mu);
    j->done = true;
    j->status = status;
    if (err) j->err = *err;
    if (r)
        j->usage = (srv_usage){.prompt_tokens = r->cached_tokens + r->fresh_tokens, .cached_tokens = r->cached_tokens,
                               .completion_tokens = (int64_t)r->gen.n_tokens, .stop = r->gen.stop,
                               .ttft_ms = r->gen.ttft_ms, .decode_tok_s = r->gen.decode_tok_s,
                               .modules = modules_json(r)};
    pthread_mutex_unlock(&j->mu);
    notify(j);
    srv_job_release(j);
}

srv_job *srv_job_new(pc_request *r) {
    srv_job *j = calloc(1, sizeof *j);
    if (!j) return NULL;
    j->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (j->efd < 0) {
        free(j);
        return NULL;
    }
    pthread_mutex_init(&j->mu, NULL);
    atomic_init(&j->refs, 2);
    j->req = r;
    pc_request_set_callbacks(r, on_text, on_done, j);
    return j;
}

void srv_job_release(srv_job *j) {
    if (!j || atomic_fetch_sub(&j->refs, 1) != 1) return;
    pc_request_release(j->req);
    pc_buf_free(&j->text);
    json_decref(j->usage.modules);
    close(j->efd);
    pthread_mutex_destroy(&j->mu);
    free(j);
}

static bool ready(srv_job *j) {
    pthread_mutex_lock(&j->mu);
    const bool r = j->done || j->text.len > 0;
    pthread_mutex_unlock(&j->mu);
    return r;
}

srv_wait srv_job_wait(srv_job *j, int client_fd) {
    for (;;) {
        if (ready(j)) return SRV_WAIT_READY;
        /* POLLRDHUP: the client closed its end. Data it sends (a pipelined
         * request) is not asked for, so it cannot wake us. */
        struct pollfd p[2] = {{.fd = j->efd, .events = POLLIN}, {.fd = client_fd, .events = POLLRDHUP}};
        if (poll(p, client_fd >= 0 ? 2 : 1, -1) < 0) {
            if (errno != EINTR) usleep(1000); /* poll itself failing (ENOMEM): do not spin */
            continue;
        }
        if (client_fd >= 0 && (p[1].revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL))) {
            pc_request_cancel(j->req);
            return SRV_WAIT_GONE;
        }
        if (p[0].revents & POLLIN) {
            uint64_t v;
            ssize_t rd = read(j->efd, &v, sizeof v);
            (void)rd;
        }
    }
}

bool srv_job_take(srv_job *j, pc_buf *out, bool *done) {
    pthread_mutex_lock(&j->mu);
    const bool ok = j->text.len == 0 || pc_buf_append(out, j->text.data, j->text.len);
    if (ok && j->text.len) {
        j->text.len = 0;
        j->text.data[0] = '\0';
    }
    *done = j->done && j->text.len == 0;
    pthread_mutex_unlock(&j->mu);
    return ok;
}
