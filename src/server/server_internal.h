/* server_internal.h - the pc_server object and what the server's files share.
 *
 * Threads: libmicrohttpd runs one thread per connection; each parses its
 * request, builds a pc_request and waits on it (job.h). The scheduler's one
 * thread runs every request's forward pass. Nothing here is global: the
 * server object reaches each handler through MHD's closure pointer. */
#ifndef PC_SERVER_INTERNAL_H
#define PC_SERVER_INTERNAL_H

#include <jansson.h>
#include <microhttpd.h>
#include <stdatomic.h>

#include "pcache.h"
#include "server/api_request.h"
#include "server/metrics.h"
#include "util/buf.h"

/* Who sent a request: the tenant of its API key. */
typedef struct srv_who {
    const char *tenant;      /* "" when the server has no keys: one shared namespace */
    bool can_share;          /* may register schemas every tenant sees */
} srv_who;

struct pc_server {
    pc_engine *e;
    pc_sched *sched;
    struct MHD_Daemon *mhd;
    pc_server_params p;
    pc_api_key *keys;        /* copies of p.keys */
    size_t n_keys;
    char model_id[160];
    srv_metrics m;
    _Atomic uint64_t seq;    /* request ids, and seeds of requests that name none */
    _Atomic bool draining;
    int64_t created;         /* unix time the server started (/v1/models) */
};

/* One HTTP request: MHD's per-request pointer. */
typedef struct srv_conn {
    pc_server *srv;
    pc_buf body;
    double t0;               /* first byte of the request seen */
    bool receiving;          /* body bytes have arrived: MHD takes no response until the last */
    bool refused;            /* answered early: what still arrives is dropped */
    srv_who who;
} srv_conn;

/* ---- responses (respond.c) ---- */

enum MHD_Result srv_reply_json(struct MHD_Connection *c, unsigned status, json_t *body); /* steals body */
/* Counts the error's class into s's metrics. */
enum MHD_Result srv_reply_error(pc_server *s, struct MHD_Connection *c, const srv_api_error *e);
enum MHD_Result srv_reply_text(struct MHD_Connection *c, unsigned status, const char *type, const char *text, size_t len);
/* An error object as OpenAI shapes it: {"error": {"message", "type", "param", "code"}}. New reference. */
json_t *srv_error_json(const srv_api_error *e);
/* An engine error, with the HTTP status its code stands for. */
void srv_error_from_status(srv_api_error *out, pc_status s, const pc_error *err, const char *param);

/* ---- authentication (auth.c) ---- */

/* Finds the request's key (Authorization: Bearer or X-Api-Key), comparing in
 * constant time; 0, or -1 with a 401 in *e. */
int srv_authenticate(const pc_server *s, struct MHD_Connection *c, srv_who *who, srv_api_error *e);

/* ---- endpoints ---- */

enum MHD_Result srv_handle_generate(srv_conn *cn, struct MHD_Connection *c, srv_api api);
enum MHD_Result srv_handle_schemas(srv_conn *cn, struct MHD_Connection *c, const char *method, const char *name);
enum MHD_Result srv_handle_models(pc_server *s, struct MHD_Connection *c);
enum MHD_Result srv_handle_health(pc_server *s, struct MHD_Connection *c);
enum MHD_Result srv_handle_metrics(pc_server *s, struct MHD_Connection *c);
enum MHD_Result srv_handle_cache(pc_server *s, const srv_who *who, struct MHD_Connection *c);
/* The schemas who may see, each under the name it uses (schemas.c). */
json_t *srv_schemas_json(pc_server *s, const srv_who *who);

/* The access handler MHD calls (route.c). */
enum MHD_Result srv_route(void *cls, struct MHD_Connection *c, const char *url, const char *method, const char *version,
                          const char *upload, size_t *upload_size, void **con_cls);
void srv_request_done(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode why);

#endif
