/* respond.c - responses: JSON bodies, OpenAI-shaped errors, and the HTTP
 * status each engine error stands for. */
#include <stdlib.h>
#include <string.h>

#include "server/completions.h"
#include "server/server_internal.h"

enum MHD_Result srv_reply_text(struct MHD_Connection *c, unsigned status, const char *type, const char *text, size_t len) {
    struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)text, MHD_RESPMEM_MUST_COPY);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (status == MHD_HTTP_SERVICE_UNAVAILABLE) MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, "1");
    enum MHD_Result ok = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ok;
}

enum MHD_Result srv_reply_json(struct MHD_Connection *c, unsigned status, json_t *body) {
    char *s = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!s) return srv_reply_text(c, MHD_HTTP_SERVICE_UNAVAILABLE, "application/json",
                                  "{\"error\":{\"message\":\"out of memory\",\"type\":\"server_error\"}}", 59);
    enum MHD_Result ok = srv_reply_text(c, status, "application/json", s, strlen(s));
    free(s);
    return ok;
}

json_t *srv_error_json(const srv_api_error *e) {
    return json_pack("{s:{s:s, s:s, s:o, s:o}}", "error", "message", e->msg, "type", e->type ? e->type : "server_error",
                     "param", e->param[0] ? json_string(e->param) : json_null(), "code",
                     e->code ? json_string(e->code) : json_null());
}

enum MHD_Result srv_reply_error(pc_server *s, struct MHD_Connection *c, const srv_api_error *e) {
    atomic_fetch_add(e->http >= 500 ? &s->m.status_5xx : &s->m.status_4xx, 1);
    return srv_reply_json(c, (unsigned)e->http, srv_error_json(e));
}

/* Length of the valid UTF-8 sequence at p (n bytes left), or 0. */
static size_t utf8_seq(const unsigned char *p, size_t n) {
    if (p[0] < 0x80) return 1;
    size_t len = p[0] >= 0xF0 && p[0] <= 0xF4 ? 4 : p[0] >= 0xE0 ? 3 : p[0] >= 0xC2 && p[0] < 0xE0 ? 2 : 0;
    if (len == 0 || len > n) return 0;
    for (size_t i = 1; i < len; i++)
        if ((p[i] & 0xC0) != 0x80) return 0;
    const unsigned cp = len == 2 ? 0 : len == 3 ? ((p[0] & 0x0Fu) << 12) | ((p[1] & 0x3Fu) << 6)
                                                : ((p[0] & 0x07u) << 18) | ((p[1] & 0x3Fu) << 12);
    if (len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) return 0; /* overlong, surrogate */
    if (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) return 0;
    return len;
}

json_t *srv_json_text(const char *text, size_t len) {
    json_t *j = json_stringn(text, len);
    if (j) return j;
    /* Invalid UTF-8 (a model can emit half a character at the end of a
     * stream): each bad byte becomes U+FFFD, as the detokenizer does. */
    pc_buf b = {0};
    const unsigned char *p = (const unsigned char *)text;
    bool ok = pc_buf_reserve(&b, len);
    for (size_t i = 0; ok && i < len;) {
        const size_t k = p[i] ? utf8_seq(p + i, len - i) : 0;
        ok = k ? pc_buf_append(&b, p + i, k) : pc_buf_append(&b, "\xEF\xBF\xBD", 3);
        i += k ? k : 1;
    }
    j = ok ? json_stringn(b.data, b.len) : NULL;
    pc_buf_free(&b);
    return j ? j : json_string("");
}

/* A failed engine call as an HTTP error: unknown names are 404, values past
 * their limit (an argument longer than its parameter, a prompt longer than
 * the context) 422, malformed input 400, a full queue or memory 503. */
void srv_error_from_status(srv_api_error *out, pc_status s, const pc_error *err, const char *param) {
    const char *msg = err && err->msg[0] ? err->msg : pc_strerror(s);
    switch (s) {
    case PC_ERR_NOT_FOUND: srv_api_fail(out, 404, "invalid_request_error", "not_found", param, "%s", msg); break;
    case PC_ERR_RANGE: srv_api_fail(out, 422, "invalid_request_error", "too_long", param, "%s", msg); break;
    case PC_ERR_FORMAT:
    case PC_ERR_INVALID:
    case PC_ERR_UNSUPPORTED: srv_api_fail(out, 400, "invalid_request_error", "invalid_value", param, "%s", msg); break;
    case PC_ERR_EXISTS: srv_api_fail(out, 409, "invalid_request_error", "already_exists", param, "%s", msg); break;
    case PC_ERR_QUOTA: srv_api_fail(out, 429, "insufficient_quota", "insufficient_quota", param, "%s", msg); break;
    case PC_ERR_BUSY: srv_api_fail(out, 503, "server_busy", NULL, param, "%s", msg); break;
    case PC_ERR_NOMEM: srv_api_fail(out, 503, "server_error", "out_of_memory", param, "%s", msg); break;
    default: srv_api_fail(out, 500, "server_error", NULL, param, "%s", msg); break;
    }
}
