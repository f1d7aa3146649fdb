/* route.c - the access handler: receives a request's body within its limits,
 * authenticates it and hands it to its endpoint.
 *
 * MHD calls the handler first when the headers are in (*con_cls NULL), then
 * once per piece of body, then once more with no data. Limits act as early
 * as they can: a Content-Length over the limit is refused before a byte of
 * body is read; a body that grows past it, or takes longer than the upload
 * deadline to arrive (a client sending a byte a second), is refused when it
 * does. A refused connection is answered and then closed by MHD, so a 100 MB
 * body is never read into memory. */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "server/server_internal.h"
#include "util/clock.h"

/* The answer to a request refused while its body arrives. MHD takes a
 * response only before the body (with the headers) or after all of it; in
 * between, waiting for the rest is what a slow or oversized upload must not
 * get. So the error goes straight onto the socket, marked Connection: close,
 * and MHD closes the connection when the handler says no. This is safe here:
 * with a thread per connection only this thread writes to it, and no response
 * of this request has been queued. */
static enum MHD_Result refuse_now(srv_conn *cn, struct MHD_Connection *c, const srv_api_error *e) {
    atomic_fetch_add(&cn->srv->m.status_4xx, 1);
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    json_t *j = srv_error_json(e);
    char *body = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    pc_buf msg = {0};
    if (ci && body &&
        pc_buf_printf(&msg, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                            "Connection: close\r\n\r\n%s",
                      e->http, e->http == 408 ? "Request Timeout" : e->http == 413 ? "Content Too Large" : "Service Unavailable",
                      strlen(body), body)) {
        for (size_t off = 0; off < msg.len;) {
            const ssize_t n = send(ci->connect_fd, msg.data + off, msg.len - off, MSG_NOSIGNAL);
            if (n <= 0) break;
            off += (size_t)n;
        }
    }
    free(body);
    pc_buf_free(&msg);
    return MHD_NO;
}

static enum MHD_Result refuse(srv_conn *cn, struct MHD_Connection *c, int http, const char *code, const char *fmt,
                              unsigned long long v) {
    srv_api_error e;
    srv_api_fail(&e, http, "invalid_request_error", code, NULL, fmt, v);
    const bool before_body = cn->body.len == 0 && !cn->receiving;
    cn->refused = true;
    pc_buf_free(&cn->body);
    return before_body ? srv_reply_error(cn->srv, c, &e) : refuse_now(cn, c, &e);
}

static enum MHD_Result first_call(pc_server *s, struct MHD_Connection *c, void **con_cls) {
    srv_conn *cn = calloc(1, sizeof *cn);
    if (!cn) return MHD_NO;
    cn->srv = s;
    cn->t0 = pc_now_ms();
    *con_cls = cn;
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    const unsigned long long n = cl ? strtoull(cl, NULL, 10) : 0;
    if (n > s->p.max_body_bytes)
        return refuse(cn, c, 413, "body_too_large", "the body is larger than the server's limit of %llu bytes",
                      (unsigned long long)s->p.max_body_bytes);
    return MHD_YES;
}

static enum MHD_Result receive(srv_conn *cn, struct MHD_Connection *c, const char *data, size_t *size) {
    const pc_server_params *p = &cn->srv->p;
    cn->receiving = true;
    if (pc_now_ms() - cn->t0 > p->upload_timeout_s * 1e3)
        return refuse(cn, c, 408, "request_timeout", "the body did not arrive within %llu seconds",
                      (unsigned long long)p->upload_timeout_s);
    if (cn->body.len + *size > p->max_body_bytes)
        return refuse(cn, c, 413, "body_too_large", "the body is larger than the server's limit of %llu bytes",
                      (unsigned long long)p->max_body_bytes);
    if (!pc_buf_append(&cn->body, data, *size)) return refuse(cn, c, 503, "out_of_memory", "out of memory (%llu)", 0);
    *size = 0;
    return MHD_YES;
}

static srv_endpoint endpoint_of(const char *url) {
    if (!strcmp(url, "/v1/chat/completions")) return SRV_EP_CHAT;
    if (!strcmp(url, "/v1/completions")) return SRV_EP_COMPLETIONS;
    if (!strcmp(url, "/v1/schemas") || !strncmp(url, "/v1/schemas/", 12)) return SRV_EP_SCHEMAS;
    if (!strcmp(url, "/v1/models")) return SRV_EP_MODELS;
    if (!strcmp(url, "/health")) return SRV_EP_HEALTH;
    if (!strcmp(url, "/metrics")) return SRV_EP_METRICS;
    if (!strcmp(url, "/v1/cache")) return SRV_EP_CACHE;
    return SRV_EP_OTHER;
}

static enum MHD_Result wrong_method(srv_conn *cn, struct MHD_Connection *c, const char *method, const char *url) {
    srv_api_error e;
    srv_api_fail(&e, 405, "invalid_request_error", "method_not_allowed", NULL, "%s is not allowed on %s", method, url);
    return srv_reply_error(cn->srv, c, &e);
}

static enum MHD_Result dispatch(srv_conn *cn, struct MHD_Connection *c, const char *url, const char *method) {
    pc_server *s = cn->srv;
    const srv_endpoint ep = endpoint_of(url);
    atomic_fetch_add(&s->m.requests[ep], 1);
    const bool get = !strcmp(method, "GET"), post = !strcmp(method, "POST");
    if (ep == SRV_EP_HEALTH) return get ? srv_handle_health(s, c) : wrong_method(cn, c, method, url);
    srv_api_error e;
    if (srv_authenticate(s, c, &cn->who, &e)) return srv_reply_error(s, c, &e);
    switch (ep) {
    case SRV_EP_CHAT: return post ? srv_handle_generate(cn, c, SRV_CHAT) : wrong_method(cn, c, method, url);
    case SRV_EP_COMPLETIONS: return post ? srv_handle_generate(cn, c, SRV_COMPLETION) : wrong_method(cn, c, method, url);
    case SRV_EP_SCHEMAS: return srv_handle_schemas(cn, c, method, url[11] == '/' ? url + 12 : NULL);
    case SRV_EP_MODELS: return get ? srv_handle_models(s, c) : wrong_method(cn, c, method, url);
    case SRV_EP_METRICS: return get ? srv_handle_metrics(s, c) : wrong_method(cn, c, method, url);
    case SRV_EP_CACHE: return get ? srv_handle_cache(s, &cn->who, c) : wrong_method(cn, c, method, url);
    default: break;
    }
    srv_api_fail(&e, 404, "invalid_request_error", "unknown_url", NULL, "no endpoint %s %s", method, url);
    return srv_reply_error(s, c, &e);
}

enum MHD_Result srv_route(void *cls, struct MHD_Connection *c, const char *url, const char *method, const char *version,
                          const char *upload, size_t *upload_size, void **con_cls) {
    (void)version;
    srv_conn *cn = *con_cls;
    if (!cn) return first_call(cls, c, con_cls);
    if (cn->refused) { /* answered already: whatever still arrives is dropped */
        *upload_size = 0;
        return MHD_YES;
    }
    if (*upload_size) return receive(cn, c, upload, upload_size);
    return dispatch(cn, c, url, method);
}

void srv_request_done(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode why) {
    (void)cls;
    (void)c;
    (void)why;
    srv_conn *cn = *con_cls;
    if (!cn) return;
    pc_buf_free(&cn->body);
    free(cn);
    *con_cls = NULL;
}
