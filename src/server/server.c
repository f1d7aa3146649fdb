/* server.c - starting and stopping the server: the scheduler, then the
 * listener; a graceful stop the other way round.
 *
 * Stop order, and why: (1) the draining flag, so a request arriving on a
 * kept-alive connection gets 503; (2) quiesce the listener: no new
 * connections; (3) drain the scheduler up to the deadline: answers in flight
 * complete and stream out; (4) stop the scheduler, which cancels what is
 * left and so wakes every connection thread still waiting on a request; (5)
 * stop MHD, which closes the connections and joins their threads; (6) free
 * the scheduler, which no connection thread can reach any more. */
#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "server/server_internal.h"
#include "util/error.h"

pc_server_params pc_server_default_params(void) {
    return (pc_server_params){.host = "127.0.0.1", .port = 8080, .parallel = 4, .max_queued = 64,
                              .max_body_bytes = (size_t)16 << 20, .idle_timeout_s = 600, .upload_timeout_s = 30,
                              .max_connections = 256, .drain_timeout_s = 60, .prefix_cache = true};
}

static void normalize(pc_server_params *p) {
    if (!p->host) p->host = "127.0.0.1";
    if (p->parallel <= 0) p->parallel = 4;
    if (p->max_queued < 0) p->max_queued = 64;
    if (p->max_body_bytes == 0) p->max_body_bytes = (size_t)16 << 20;
    if (p->idle_timeout_s <= 0) p->idle_timeout_s = 600;
    if (p->upload_timeout_s <= 0) p->upload_timeout_s = 30;
    if (p->max_connections <= 0) p->max_connections = 256;
    if (p->drain_timeout_s <= 0) p->drain_timeout_s = 60;
}

static pc_status copy_keys(pc_server *s, const pc_server_params *p, pc_error *err) {
    if (p->n_keys == 0) return PC_OK;
    s->keys = calloc(p->n_keys, sizeof *s->keys);
    if (!s->keys) return pc_fail(err, PC_ERR_NOMEM, "out of memory for API keys");
    for (size_t i = 0; i < p->n_keys; i++) {
        s->n_keys++;
        s->keys[i].key = strdup(p->keys[i].key);
        s->keys[i].tenant = strdup(p->keys[i].tenant ? p->keys[i].tenant : "");
        s->keys[i].can_share = p->keys[i].can_share;
        s->keys[i].quota = p->keys[i].quota;
        if (!s->keys[i].key || !s->keys[i].tenant) return pc_fail(err, PC_ERR_NOMEM, "out of memory for API keys");
    }
    return PC_OK;
}

/* Each tenant's quota of the memory tier: what one of its keys names, else the default. */
static pc_status set_quotas(pc_server *s, pc_error *err) {
    pc_status st = PC_OK;
    for (size_t i = 0; i < s->n_keys && st == PC_OK; i++) {
        size_t q = s->keys[i].quota;
        for (size_t j = 0; j < s->n_keys && !q; j++)
            if (!strcmp(s->keys[j].tenant, s->keys[i].tenant)) q = s->keys[j].quota;
        if (!q) q = s->p.tenant_quota;
        if (q && *s->keys[i].tenant) st = pc_engine_set_tenant_quota(s->e, s->keys[i].tenant, q, err);
    }
    return st;
}

/* The listening address: numeric or a name, IPv4 or IPv6. */
static pc_status resolve(const char *host, int port, struct sockaddr_storage *sa, bool *v6, pc_error *err) {
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *res = NULL;
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    const int rc = getaddrinfo(host, ps, &hints, &res);
    if (rc != 0) return pc_fail(err, PC_ERR_INVALID, "cannot listen on '%s': %s", host, gai_strerror(rc));
    memcpy(sa, res->ai_addr, res->ai_addrlen);
    *v6 = res->ai_family == AF_INET6;
    freeaddrinfo(res);
    return PC_OK;
}

static pc_status start_http(pc_server *s, pc_error *err) {
    struct sockaddr_storage sa;
    bool v6 = false;
    pc_status st = resolve(s->p.host, s->p.port, &sa, &v6, err);
    if (st != PC_OK) return st;
    const unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC |
                           MHD_USE_POLL | (v6 ? MHD_USE_IPv6 : 0);
    s->mhd = MHD_start_daemon(flags, (uint16_t)s->p.port, NULL, NULL, srv_route, s, MHD_OPTION_SOCK_ADDR,
                              (struct sockaddr *)&sa, MHD_OPTION_NOTIFY_COMPLETED, srv_request_done, s,
                              MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)s->p.idle_timeout_s,
                              MHD_OPTION_CONNECTION_LIMIT, (unsigned)s->p.max_connections,
                              MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u, MHD_OPTION_END);
    if (!s->mhd) return pc_fail(err, PC_ERR_IO, "cannot listen on %s port %d (in use, or not allowed)", s->p.host, s->p.port);
    return PC_OK;
}

pc_status pc_server_start(pc_engine *e, const pc_server_params *p, pc_server **out, pc_error *err) {
    *out = NULL;
    pc_server *s = calloc(1, sizeof *s);
    if (!s) return pc_fail(err, PC_ERR_NOMEM, "out of memory starting the server");
    s->e = e;
    s->p = p ? *p : pc_server_default_params();
    normalize(&s->p);
    s->p.keys = NULL; /* the copies below are the server's own */
    s->created = (int64_t)time(NULL);
    atomic_init(&s->seq, (uint64_t)s->created << 20);
    atomic_init(&s->draining, false);
    snprintf(s->model_id, sizeof s->model_id, "%s", p && p->model_alias ? p->model_alias : pc_engine_model_name(e));
    pc_status st = copy_keys(s, p ? p : &s->p, err);
    if (st == PC_OK) st = set_quotas(s, err);
    pc_sched_params sp = {.max_active = s->p.parallel, .max_queued = s->p.max_queued, .step_tokens = s->p.step_tokens,
                          .mix_tokens = s->p.mix_tokens};
    if (st == PC_OK) st = pc_sched_start(e, &sp, &s->sched, err);
    if (st == PC_OK) st = start_http(s, err);
    if (st != PC_OK) {
        pc_server_stop(s);
        return st;
    }
    *out = s;
    return PC_OK;
}

int pc_server_port(const pc_server *s) {
    const union MHD_DaemonInfo *i = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
    return i ? (int)i->port : -1;
}

void pc_server_stop(pc_server *s) {
    if (!s) return;
    atomic_store(&s->draining, true);
    if (s->mhd) {
        const MHD_socket fd = MHD_quiesce_daemon(s->mhd);
        if (fd != MHD_INVALID_SOCKET) close(fd);
    }
    if (s->sched) {
        pc_sched_drain(s->sched, s->p.drain_timeout_s * 1e3);
        pc_sched_stop(s->sched);
    }
    if (s->mhd) MHD_stop_daemon(s->mhd);
    pc_sched_free(s->sched);
    pc_api_keys_free(s->keys, s->n_keys);
    free(s);
}
