/* info.c - the read-only endpoints: /health, /v1/models, /metrics, /v1/cache. */
#include <stdlib.h>
#include <string.h>

#include "server/server_internal.h"

enum MHD_Result srv_handle_health(pc_server *s, struct MHD_Connection *c) {
    /* The listener opens only once the model is loaded, so "loading" is never
     * seen here; a draining server says so, for load balancers to move on. */
    if (atomic_load(&s->draining))
        return srv_reply_json(c, MHD_HTTP_SERVICE_UNAVAILABLE, json_pack("{s:s}", "status", "shutting down"));
    return srv_reply_json(c, MHD_HTTP_OK, json_pack("{s:s}", "status", "ok"));
}

enum MHD_Result srv_handle_models(pc_server *s, struct MHD_Connection *c) {
    json_t *m = json_pack("{s:s, s:s, s:I, s:s, s:{s:i, s:i}}", "id", s->model_id, "object", "model", "created",
                          (json_int_t)s->created, "owned_by", "pcache", "meta", "n_ctx", pc_engine_n_ctx(s->e), "n_vocab",
                          pc_engine_n_vocab(s->e));
    return srv_reply_json(c, MHD_HTTP_OK, json_pack("{s:s, s:[o]}", "object", "list", "data", m));
}

enum MHD_Result srv_handle_metrics(pc_server *s, struct MHD_Connection *c) {
    pc_sched_stats st;
    pc_sched_get_stats(s->sched, &st);
    pc_buf b = {0};
    enum MHD_Result ok;
    if (srv_metrics_render(&s->m, &st, &b))
        ok = srv_reply_text(c, MHD_HTTP_OK, "text/plain; version=0.0.4", b.data, b.len);
    else
        ok = srv_reply_text(c, MHD_HTTP_SERVICE_UNAVAILABLE, "text/plain", "out of memory\n", 14);
    pc_buf_free(&b);
    return ok;
}

/* The registered schemas a tenant can see, with their KV. */
static json_t *schemas_json(pc_server *s) {
    char **names = NULL;
    size_t n = 0;
    pc_error err = {0};
    json_t *a = json_array();
    if (pc_engine_schema_list(s->e, &names, &n, &err) != PC_OK) return a;
    for (size_t i = 0; i < n; i++) {
        pc_schema_stats st;
        if (pc_engine_schema_stats(s->e, names[i], &st, &err) != PC_OK) continue; /* removed meanwhile */
        json_array_append_new(a, json_pack("{s:s, s:i, s:I}", "name", names[i], "positions", st.length, "kv_bytes",
                                           (json_int_t)st.kv_bytes));
    }
    pc_free(names);
    return a;
}

enum MHD_Result srv_handle_cache(pc_server *s, struct MHD_Connection *c) {
    return srv_reply_json(c, MHD_HTTP_OK, json_pack("{s:o}", "schemas", schemas_json(s)));
}
