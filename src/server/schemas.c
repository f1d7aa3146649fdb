/* schemas.c - /v1/schemas: a schema is a named, long-lived cache resource.
 *
 *   POST   /v1/schemas          {"pml": "<schema ...>"}  registers and encodes
 *   GET    /v1/schemas          the schemas registered
 *   GET    /v1/schemas/{name}   one, with its layout
 *   DELETE /v1/schemas/{name}   unregisters (requests running keep their KV)
 *
 * Encoding runs on the connection's thread with its own forward state; it
 * shares the engine's thread pool with the scheduler job by job, so requests
 * keep decoding while a schema encodes. PML errors name "pml", line and
 * column in the submitted document. src= is refused: a client must not read
 * the server's files. */
#include <stdlib.h>
#include <string.h>

#include "server/server_internal.h"

static json_t *stats_json(const char *name, const pc_schema_stats *st) {
    return json_pack("{s:s, s:s, s:i, s:i, s:i, s:i, s:i, s:I, s:f, s:I, s:I}", "name", name, "object", "schema",
                     "positions", st->length, "modules", st->n_modules, "unions", st->n_unions, "parameters", st->n_params,
                     "pieces", st->n_pieces, "encoded_tokens", (json_int_t)st->encoded_tokens, "encode_ms", st->encode_ms,
                     "kv_bytes", (json_int_t)st->kv_bytes, "kv_bytes_per_token", (json_int_t)st->kv_bytes_per_token);
}

static enum MHD_Result reply_engine_error(pc_server *s, struct MHD_Connection *c, pc_status st, const pc_error *err) {
    srv_api_error e;
    srv_error_from_status(&e, st, err, "pml");
    if (st == PC_ERR_INVALID && strstr(err->msg, "already registered")) {
        e.http = 409;
        e.code = "schema_exists";
    }
    return srv_reply_error(s, c, &e);
}

static enum MHD_Result one(pc_server *s, struct MHD_Connection *c, const char *name, unsigned status) {
    pc_schema_stats st;
    pc_error err = {0};
    char *layout = NULL;
    pc_status rc = pc_engine_schema_stats(s->e, name, &st, &err);
    if (rc == PC_OK) rc = pc_engine_schema_describe(s->e, name, &layout, &err);
    if (rc != PC_OK) return reply_engine_error(s, c, rc, &err);
    json_t *o = stats_json(name, &st);
    json_object_set_new(o, "layout", json_string(layout));
    pc_free(layout);
    return srv_reply_json(c, status, o);
}

static enum MHD_Result list(pc_server *s, struct MHD_Connection *c) {
    char **names = NULL;
    size_t n = 0;
    pc_error err = {0};
    pc_status rc = pc_engine_schema_list(s->e, &names, &n, &err);
    if (rc != PC_OK) return reply_engine_error(s, c, rc, &err);
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) {
        pc_schema_stats st;
        if (pc_engine_schema_stats(s->e, names[i], &st, &err) == PC_OK) json_array_append_new(a, stats_json(names[i], &st));
    }
    pc_free(names);
    return srv_reply_json(c, MHD_HTTP_OK, json_pack("{s:s, s:o}", "object", "list", "data", a));
}

static enum MHD_Result create(srv_conn *cn, struct MHD_Connection *c) {
    pc_server *s = cn->srv;
    srv_api_error e;
    json_error_t je;
    json_t *o = json_loadb(cn->body.data ? cn->body.data : "", cn->body.len, JSON_REJECT_DUPLICATES, &je);
    json_t *pml = o ? json_object_get(o, "pml") : NULL;
    if (!o || !json_is_object(o)) {
        srv_api_fail(&e, 400, "invalid_request_error", "invalid_json", NULL, "the body is not a JSON object: %s",
                     o ? "another JSON value" : je.text);
    } else if (!pml) {
        srv_api_fail(&e, 400, "invalid_request_error", "invalid_value", "pml", "'pml' is missing");
    } else if (!json_is_string(pml)) {
        srv_api_fail(&e, 400, "invalid_request_error", "invalid_type", "pml", "'pml' must be a string");
    } else {
        char *name = NULL;
        pc_error err = {0};
        pc_status rc = pc_engine_schema_load(s->e, json_string_value(pml), json_string_length(pml), "pml", NULL, &name, &err);
        json_decref(o);
        if (rc != PC_OK) return reply_engine_error(s, c, rc, &err);
        enum MHD_Result ok = one(s, c, name, MHD_HTTP_CREATED);
        free(name);
        return ok;
    }
    json_decref(o);
    return srv_reply_error(s, c, &e);
}

static enum MHD_Result remove_one(pc_server *s, struct MHD_Connection *c, const char *name) {
    pc_error err = {0};
    pc_status rc = pc_engine_schema_remove(s->e, name, &err);
    if (rc != PC_OK) return reply_engine_error(s, c, rc, &err);
    return srv_reply_json(c, MHD_HTTP_OK, json_pack("{s:s, s:s, s:b}", "name", name, "object", "schema", "deleted", 1));
}

enum MHD_Result srv_handle_schemas(srv_conn *cn, struct MHD_Connection *c, const char *method, const char *name) {
    pc_server *s = cn->srv;
    const bool get = !strcmp(method, "GET");
    if (!name && get) return list(s, c);
    if (!name && !strcmp(method, "POST")) return create(cn, c);
    if (name && *name && get) return one(s, c, name, MHD_HTTP_OK);
    if (name && *name && !strcmp(method, "DELETE")) return remove_one(s, c, name);
    srv_api_error e;
    srv_api_fail(&e, 405, "invalid_request_error", "method_not_allowed", NULL, "%s is not allowed on /v1/schemas%s%s",
                 method, name ? "/" : "", name ? name : "");
    return srv_reply_error(s, c, &e);
}
