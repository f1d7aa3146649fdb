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
    pc_cache_stats cs;
    pc_engine_cache_stats(s->e, &cs);
    pc_buf b = {0};
    enum MHD_Result ok;
    if (srv_metrics_render(&s->m, &st, &cs, &b))
        ok = srv_reply_text(c, MHD_HTTP_OK, "text/plain; version=0.0.4", b.data, b.len);
    else
        ok = srv_reply_text(c, MHD_HTTP_SERVICE_UNAVAILABLE, "text/plain", "out of memory\n", 14);
    pc_buf_free(&b);
    return ok;
}

static json_t *tier_json(const pc_cache_tier_stats *x) {
    return json_pack("{s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "enabled", x->enabled, "entries",
                     (json_int_t)x->entries, "bytes", (json_int_t)x->bytes, "budget", (json_int_t)x->budget, "hits",
                     (json_int_t)x->hits, "misses", (json_int_t)x->misses, "evictions", (json_int_t)x->evictions,
                     "writes", (json_int_t)x->writes, "rejected", (json_int_t)(x->rejected + x->checksum_failures),
                     "errors", (json_int_t)x->errors);
}

/* The store's tiers: what they hold and how they have done since the start;
 * "gpu" is the device tier of a GPU backend (writes: uploads from host memory).
 * Counts are the server's, over every tenant (no tenant's text shows in them). */
static json_t *tiers_json(pc_server *s) {
    pc_cache_stats cs;
    pc_engine_cache_stats(s->e, &cs);
    json_t *o = json_object();
    for (int t = 0; t < PC_N_TIERS; t++) json_object_set_new(o, pc_kv_source_name((pc_kv_source)t), tier_json(&cs.tier[t]));
    json_object_set_new(o, "gpu", tier_json(&cs.gpu));
    return o;
}

enum MHD_Result srv_handle_cache(pc_server *s, const srv_who *who, struct MHD_Connection *c) {
    size_t bytes = 0, quota = 0; /* the caller's own tenant only */
    pc_engine_tenant_usage(s->e, who->tenant, &bytes, &quota);
    return srv_reply_json(c, MHD_HTTP_OK,
                          json_pack("{s:s, s:o, s:o, s:{s:I, s:I}}", "object", "cache", "tiers", tiers_json(s), "schemas",
                                    srv_schemas_json(s, who), "tenant", "memory_bytes", (json_int_t)bytes,
                                    "memory_quota", (json_int_t)quota));
}
