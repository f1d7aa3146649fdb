/* schemas.c - /v1/schemas: a schema is a named, long-lived cache resource.
 *
 *   POST   /v1/schemas          {"pml": "<schema ...>"}  registers and encodes (201); the
 *                               same schema again changes nothing (200), another schema
 *                               of a registered name is 409
 *   GET    /v1/schemas          the schemas registered
 *   GET    /v1/schemas/{name}   one, with its layout
 *   DELETE /v1/schemas/{name}   unregisters (requests running keep their KV)
 *
 * Encoding runs on the connection's thread with its own forward state; it
 * shares the engine's thread pool with the scheduler job by job, so requests
 * keep decoding while a schema encodes. PML errors name "pml", line and
 * column in the submitted document. src= is refused: a client must not read
 * the server's files.
 *
 * Tenants: a schema is the tenant's own (registered as TENANT/NAME in the
 * engine, its store keys namespaced by the tenant) unless a key allowed to
 * share registers it with "shared": true. A client names schemas by their
 * plain name; it sees its own and the shared ones, and no other tenant's
 * (a name never holds '/', so it cannot spell another tenant's).
 *
 * With --cache-redis a schema registered here is published in the store's
 * shared registry: every server on the same Redis and model finds it by name
 * (prompts, GET, DELETE), and a DELETE or its TTL ends it on all of them. */
#include <stdlib.h>
#include <string.h>

#include "server/server_internal.h"

/* The registered name a client's plain name stands for: its tenant's own
 * schema, else a shared one ("" when neither exists). */
static void resolve(pc_server *s, const srv_who *who, const char *name, char *out, size_t cap) {
    pc_schema_stats st;
    pc_error err = {0};
    out[0] = '\0';
    if (strchr(name, '/')) return;
    if (*who->tenant) {
        snprintf(out, cap, "%s/%s", who->tenant, name);
        pc_engine_schema_sync(s->e, out, &err); /* registered on another server: found in the shared registry */
        if (pc_engine_schema_stats(s->e, out, &st, &err) == PC_OK) return;
    }
    snprintf(out, cap, "%s", name);
    pc_engine_schema_sync(s->e, out, &err);
    if (pc_engine_schema_stats(s->e, out, &st, &err) != PC_OK) out[0] = '\0';
}

/* The plain name of a registered one the client may see; NULL when it may not. */
static const char *visible_name(const srv_who *who, const char *registered) {
    const char *slash = strchr(registered, '/');
    if (!slash) return registered; /* shared */
    const size_t n = strlen(who->tenant);
    return n && (size_t)(slash - registered) == n && !strncmp(registered, who->tenant, n) ? slash + 1 : NULL;
}

static enum MHD_Result not_found(pc_server *s, struct MHD_Connection *c, const char *name) {
    srv_api_error e;
    srv_api_fail(&e, 404, "invalid_request_error", "schema_not_found", "name", "no schema named '%.200s' is registered",
                 name);
    return srv_reply_error(s, c, &e);
}

static json_t *stats_json(const char *name, bool shared, const pc_schema_stats *st) {
    json_t *from = json_object();
    for (int t = 0; t <= PC_N_TIERS; t++)
        json_object_set_new(from, pc_kv_source_name((pc_kv_source)t), json_integer(st->pieces_from[t]));
    return json_pack("{s:s, s:s, s:b, s:i, s:i, s:i, s:i, s:i, s:I, s:f, s:f, s:I, s:I, s:o}", "name", name, "object",
                     "schema", "shared", shared, "positions", st->length, "modules", st->n_modules, "unions",
                     st->n_unions, "parameters", st->n_params, "pieces", st->n_pieces, "encoded_tokens",
                     (json_int_t)st->encoded_tokens, "encode_ms", st->encode_ms, "ready_ms", st->ready_ms, "kv_bytes",
                     (json_int_t)st->kv_bytes, "kv_bytes_per_token", (json_int_t)st->kv_bytes_per_token,
                     "pieces_from", from);
}

static enum MHD_Result reply_engine_error(pc_server *s, struct MHD_Connection *c, pc_status st, const pc_error *err) {
    srv_api_error e;
    srv_error_from_status(&e, st, err, "pml");
    return srv_reply_error(s, c, &e);
}

/* registered: the engine's name; name: the client's. */
static enum MHD_Result one(pc_server *s, struct MHD_Connection *c, const char *registered, const char *name,
                           unsigned status) {
    pc_schema_stats st;
    pc_error err = {0};
    char *layout = NULL;
    pc_status rc = pc_engine_schema_stats(s->e, registered, &st, &err);
    if (rc == PC_OK) rc = pc_engine_schema_describe(s->e, registered, &layout, &err);
    if (rc == PC_ERR_NOT_FOUND) return not_found(s, c, name); /* removed meanwhile */
    if (rc != PC_OK) return reply_engine_error(s, c, rc, &err);
    json_t *o = stats_json(name, !strchr(registered, '/'), &st);
    json_object_set_new(o, "layout", json_string(layout));
    pc_free(layout);
    return srv_reply_json(c, status, o);
}

json_t *srv_schemas_json(pc_server *s, const srv_who *who) {
    char **names = NULL;
    size_t n = 0;
    pc_error err = {0};
    json_t *a = json_array();
    if (pc_engine_schema_list(s->e, &names, &n, &err) != PC_OK) return a;
    for (size_t i = 0; i < n; i++) {
        pc_schema_stats st;
        const char *name = visible_name(who, names[i]);
        if (name && pc_engine_schema_stats(s->e, names[i], &st, &err) == PC_OK) /* else removed meanwhile */
            json_array_append_new(a, stats_json(name, name == names[i], &st));
    }
    pc_free(names);
    return a;
}

static int bool_field(json_t *o, const char *key, bool *out, srv_api_error *e) {
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_boolean(v))
        return srv_api_fail(e, 400, "invalid_request_error", "invalid_type", key, "'%s' must be a boolean", key), -1;
    *out = json_is_true(v);
    return 0;
}

/* The registration options of a POST body: pml, shared, pin, ttl. */
static int parse_create(const srv_conn *cn, json_t *o, pc_schema_params *sp, srv_api_error *e) {
    json_t *pml = json_object_get(o, "pml"), *ttl = json_object_get(o, "ttl");
    bool shared = false;
    if (!pml) return srv_api_fail(e, 400, "invalid_request_error", "invalid_value", "pml", "'pml' is missing"), -1;
    if (!json_is_string(pml))
        return srv_api_fail(e, 400, "invalid_request_error", "invalid_type", "pml", "'pml' must be a string"), -1;
    if (ttl && !json_is_null(ttl) && (!json_is_number(ttl) || json_number_value(ttl) <= 0))
        return srv_api_fail(e, 400, "invalid_request_error", "invalid_value", "ttl",
                            "'ttl' must be a positive number of seconds or null"), -1;
    if (bool_field(o, "pin", &sp->pin, e) || bool_field(o, "shared", &shared, e)) return -1;
    if (shared && !cn->who.can_share)
        return srv_api_fail(e, 403, "permission_error", "forbidden", "shared",
                            "this API key may not register shared schemas"), -1;
    sp->ttl_s = ttl && json_is_number(ttl) ? json_number_value(ttl) : 0;
    sp->tenant = shared ? NULL : cn->who.tenant;
    return 0;
}

static enum MHD_Result create(srv_conn *cn, struct MHD_Connection *c) {
    pc_server *s = cn->srv;
    srv_api_error e;
    json_error_t je;
    json_t *o = json_loadb(cn->body.data ? cn->body.data : "", cn->body.len, JSON_REJECT_DUPLICATES, &je);
    bool already = false;
    pc_schema_params sp = {.already = &already, .publish = true}; /* every server on the same Redis serves it */
    if (!o || !json_is_object(o)) {
        srv_api_fail(&e, 400, "invalid_request_error", "invalid_json", NULL, "the body is not a JSON object: %s",
                     o ? "another JSON value" : je.text);
    } else if (parse_create(cn, o, &sp, &e) == 0) {
        json_t *pml = json_object_get(o, "pml");
        char *name = NULL;
        pc_error err = {0};
        pc_status rc = pc_engine_schema_load(s->e, json_string_value(pml), json_string_length(pml), "pml", &sp, &name, &err);
        json_decref(o);
        if (rc != PC_OK) return reply_engine_error(s, c, rc, &err);
        const char *slash = strchr(name, '/');
        /* the same schema again is a no-op: 200 and the registered one's description */
        enum MHD_Result ok = one(s, c, name, slash ? slash + 1 : name, already ? MHD_HTTP_OK : MHD_HTTP_CREATED);
        free(name);
        return ok;
    }
    json_decref(o);
    return srv_reply_error(s, c, &e);
}

static enum MHD_Result remove_one(srv_conn *cn, struct MHD_Connection *c, const char *registered, const char *name) {
    pc_server *s = cn->srv;
    if (!strchr(registered, '/') && *cn->who.tenant && !cn->who.can_share) {
        srv_api_error e;
        srv_api_fail(&e, 403, "permission_error", "forbidden", "name",
                     "the schema '%.200s' is shared: this API key may not remove it", name);
        return srv_reply_error(s, c, &e);
    }
    pc_error err = {0};
    pc_status rc = pc_engine_schema_remove(s->e, registered, &err);
    if (rc == PC_ERR_NOT_FOUND) return not_found(s, c, name);
    if (rc != PC_OK) return reply_engine_error(s, c, rc, &err);
    return srv_reply_json(c, MHD_HTTP_OK, json_pack("{s:s, s:s, s:b}", "name", name, "object", "schema", "deleted", 1));
}

enum MHD_Result srv_handle_schemas(srv_conn *cn, struct MHD_Connection *c, const char *method, const char *name) {
    pc_server *s = cn->srv;
    const bool get = !strcmp(method, "GET");
    if (!name && get)
        return srv_reply_json(c, MHD_HTTP_OK, json_pack("{s:s, s:o}", "object", "list", "data", srv_schemas_json(s, &cn->who)));
    if (!name && !strcmp(method, "POST")) return create(cn, c);
    const bool del = name && !strcmp(method, "DELETE");
    if (name && *name && (get || del)) {
        char registered[512];
        resolve(s, &cn->who, name, registered, sizeof registered);
        if (!*registered) return not_found(s, c, name);
        return get ? one(s, c, registered, name, MHD_HTTP_OK) : remove_one(cn, c, registered, name);
    }
    srv_api_error e;
    srv_api_fail(&e, 405, "invalid_request_error", "method_not_allowed", NULL, "%s is not allowed on /v1/schemas%s%s",
                 method, name ? "/" : "", name ? name : "");
    return srv_reply_error(s, c, &e);
}
