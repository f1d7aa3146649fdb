/* api_request.c - checking and parsing the JSON body of /v1/chat/completions
 * and /v1/completions (see api_request.h).
 *
 * Every field is checked for its type and range when present; a wrong type is
 * a 400 naming the parameter, never a silent default. Sampling defaults are
 * llama.cpp's server's (temperature 0.8, top_k 40, top_p 0.95, min_p 0.05),
 * the peer users compare us with. */
#include "server/api_request.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"

void srv_api_fail(srv_api_error *e, int http, const char *type, const char *code, const char *param, const char *fmt, ...) {
    e->http = http;
    e->type = type;
    e->code = code;
    snprintf(e->param, sizeof e->param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
}

#define BAD(e, param, ...) (srv_api_fail((e), 400, "invalid_request_error", "invalid_value", (param), __VA_ARGS__), -1)
#define BAD_TYPE(e, param, want) \
    (srv_api_fail((e), 400, "invalid_request_error", "invalid_type", (param), "'%s' must be %s", (param), (want)), -1)

void srv_gen_req_free(srv_gen_req *r) {
    if (!r) return;
    free(r->model);
    for (size_t i = 0; i < r->n_msgs; i++) free(r->msgs[i].content);
    free(r->msgs);
    free(r->pml);
    free(r->prompt);
    free(r->prompt_ids);
    for (size_t i = 0; i < r->n_stop; i++) free(r->stop[i]);
    memset(r, 0, sizeof *r);
}

/* ---- scalar fields ---- */

static int get_bool(json_t *o, const char *key, bool *out, srv_api_error *e) {
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_boolean(v)) return BAD_TYPE(e, key, "a boolean");
    *out = json_is_true(v);
    return 0;
}

/* A number in [lo, hi]; integers count as numbers. */
static int get_float(json_t *o, const char *key, double lo, double hi, float *out, srv_api_error *e) {
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_number(v)) return BAD_TYPE(e, key, "a number");
    const double d = json_number_value(v);
    if (!(d >= lo && d <= hi)) return BAD(e, key, "'%s' is %g; it must be between %g and %g", key, d, lo, hi);
    *out = (float)d;
    return 0;
}

static int get_int(json_t *o, const char *key, json_int_t lo, json_int_t hi, json_int_t *out, bool *given,
                   srv_api_error *e) {
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_integer(v)) return BAD_TYPE(e, key, "an integer");
    const json_int_t i = json_integer_value(v);
    if (i < lo || i > hi) return BAD(e, key, "'%s' is %lld; it must be between %lld and %lld", key, (long long)i,
                                     (long long)lo, (long long)hi);
    *out = i;
    if (given) *given = true;
    return 0;
}

static int dup_string(json_t *v, const char *param, char **out, srv_api_error *e) {
    if (!json_is_string(v)) return BAD_TYPE(e, param, "a string");
    const size_t n = json_string_length(v);
    *out = malloc(n + 1);
    if (!*out) return srv_api_fail(e, 503, "server_error", NULL, param, "out of memory"), -1;
    memcpy(*out, json_string_value(v), n + 1);
    return 0;
}

/* ---- stop ---- */

static int add_stop(srv_gen_req *r, json_t *v, srv_api_error *e) {
    if (!json_is_string(v)) return BAD_TYPE(e, "stop", "a string or an array of strings");
    if (json_string_length(v) == 0) return BAD(e, "stop", "a stop string must not be empty");
    if (json_string_length(v) > SRV_MAX_STOP_BYTES)
        return BAD(e, "stop", "a stop string may hold at most %d bytes", SRV_MAX_STOP_BYTES);
    if (r->n_stop == SRV_MAX_STOP) return BAD(e, "stop", "at most %d stop strings", SRV_MAX_STOP);
    if (dup_string(v, "stop", &r->stop[r->n_stop], e)) return -1;
    r->n_stop++;
    return 0;
}

static int parse_stop(json_t *o, srv_gen_req *r, srv_api_error *e) {
    json_t *v = json_object_get(o, "stop");
    if (!v || json_is_null(v)) return 0;
    if (!json_is_array(v)) return add_stop(r, v, e);
    size_t i;
    json_t *s;
    json_array_foreach(v, i, s) if (add_stop(r, s, e)) return -1;
    return 0;
}

/* ---- sampling and streaming options, common to both APIs ---- */

static int parse_options(json_t *o, srv_gen_req *r, srv_api_error *e) {
    json_int_t n = 1, max_tokens = -1, top_k = r->top_k, seed = 0;
    bool given = false;
    if (get_int(o, "n", 1, 1024, &n, NULL, e)) return -1;
    if (n != 1) return BAD(e, "n", "'n' must be 1: one choice per request");
    if (get_int(o, "max_tokens", 1, INT32_MAX, &max_tokens, NULL, e)) return -1;
    if (get_int(o, "max_completion_tokens", 1, INT32_MAX, &max_tokens, NULL, e)) return -1;
    r->max_tokens = (int32_t)max_tokens;
    if (get_float(o, "temperature", 0, 2, &r->temperature, e) || get_float(o, "top_p", 0, 1, &r->top_p, e) ||
        get_float(o, "min_p", 0, 1, &r->min_p, e) || get_float(o, "repeat_penalty", 0.01, 100, &r->repeat_penalty, e))
        return -1;
    if (get_int(o, "top_k", 0, INT32_MAX, &top_k, NULL, e)) return -1;
    r->top_k = (int32_t)top_k;
    if (get_int(o, "seed", INT64_MIN, INT64_MAX, &seed, &given, e)) return -1;
    r->has_seed = given;
    r->seed = (uint64_t)seed;
    float ignored = 0;
    if (get_float(o, "presence_penalty", -2, 2, &ignored, e) || get_float(o, "frequency_penalty", -2, 2, &ignored, e))
        return -1;
    /* chat says logprobs: true, completions logprobs: N; either asks for what we do not compute */
    json_t *lp = json_object_get(o, "logprobs");
    if (lp && !json_is_null(lp) && !json_is_false(lp) && !(json_is_integer(lp) && json_integer_value(lp) == 0))
        return BAD(e, "logprobs", "logprobs are not supported");
    bool echo = false;
    if (get_bool(o, "echo", &echo, e)) return -1;
    if (echo) return BAD(e, "echo", "echo is not supported");
    if (get_bool(o, "stream", &r->stream, e) || get_bool(o, "ignore_eos", &r->ignore_eos, e) || parse_stop(o, r, e))
        return -1;
    json_t *so = json_object_get(o, "stream_options");
    if (so && !json_is_null(so)) {
        if (!json_is_object(so)) return BAD_TYPE(e, "stream_options", "an object");
        if (!r->stream) return BAD(e, "stream_options", "stream_options is only allowed when stream is true");
        if (get_bool(so, "include_usage", &r->include_usage, e)) return -1;
    }
    return 0;
}

/* ---- chat messages ---- */

static int role_of(const char *s, const char **out) {
    if (!strcmp(s, "system") || !strcmp(s, "developer")) *out = "system";
    else if (!strcmp(s, "user")) *out = "user";
    else if (!strcmp(s, "assistant")) *out = "assistant";
    else return -1;
    return 0;
}

/* content: a string, or an array of {"type": "text", "text": ...} parts, joined. */
static int message_content(json_t *c, const char *param, char **out, srv_api_error *e) {
    if (json_is_string(c)) return dup_string(c, param, out, e);
    if (!json_is_array(c)) return BAD_TYPE(e, param, "a string or an array of text parts");
    pc_buf b = {0};
    size_t i;
    json_t *part;
    json_array_foreach(c, i, part) {
        json_t *type = json_object_get(part, "type"), *text = json_object_get(part, "text");
        if (!json_is_object(part) || !json_is_string(type) || strcmp(json_string_value(type), "text") != 0 ||
            !json_is_string(text)) {
            pc_buf_free(&b);
            return BAD(e, param, "'%s' parts must be {\"type\": \"text\", \"text\": \"...\"}: only text is supported", param);
        }
        if (!pc_buf_append(&b, json_string_value(text), json_string_length(text))) {
            pc_buf_free(&b);
            return srv_api_fail(e, 503, "server_error", NULL, param, "out of memory"), -1;
        }
    }
    *out = pc_buf_take(&b);
    return *out ? 0 : (srv_api_fail(e, 503, "server_error", NULL, param, "out of memory"), -1);
}

static int parse_message(json_t *m, size_t i, srv_msg *out, srv_api_error *e) {
    char param[64];
    snprintf(param, sizeof param, "messages[%zu]", i);
    if (!json_is_object(m)) return BAD_TYPE(e, param, "an object");
    json_t *role = json_object_get(m, "role"), *content = json_object_get(m, "content");
    snprintf(param, sizeof param, "messages[%zu].role", i);
    if (!role) return BAD(e, param, "'%s' is missing", param);
    if (!json_is_string(role)) return BAD_TYPE(e, param, "a string");
    if (role_of(json_string_value(role), &out->role))
        return BAD(e, param, "role '%s' is not supported (system, developer, user, assistant)", json_string_value(role));
    snprintf(param, sizeof param, "messages[%zu].content", i);
    if (!content || json_is_null(content)) return BAD(e, param, "'%s' is missing", param);
    return message_content(content, param, &out->content, e);
}

static int parse_messages(json_t *o, srv_gen_req *r, srv_api_error *e) {
    json_t *msgs = json_object_get(o, "messages");
    if (!msgs) return BAD(e, "messages", "'messages' is missing");
    if (!json_is_array(msgs)) return BAD_TYPE(e, "messages", "an array");
    const size_t n = json_array_size(msgs);
    if (n == 0 && !r->pml) return BAD(e, "messages", "'messages' is empty");
    if (n > SRV_MAX_MESSAGES) return BAD(e, "messages", "at most %d messages", SRV_MAX_MESSAGES);
    r->msgs = calloc(n ? n : 1, sizeof *r->msgs);
    if (!r->msgs) return srv_api_fail(e, 503, "server_error", NULL, "messages", "out of memory"), -1;
    for (size_t i = 0; i < n; i++) {
        if (parse_message(json_array_get(msgs, i), i, &r->msgs[i], e)) return -1;
        r->n_msgs++;
    }
    return 0;
}

/* ---- completion prompt ---- */

static bool starts_pml(const char *s) {
    while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n') s++;
    return strncmp(s, "<prompt", 7) == 0 && (s[7] == ' ' || s[7] == '>' || s[7] == '\t' || s[7] == '\n' || s[7] == '\r');
}

static int prompt_ids(json_t *a, srv_gen_req *r, srv_api_error *e) {
    const size_t n = json_array_size(a);
    if (n == 0) return BAD(e, "prompt", "'prompt' is empty");
    r->prompt_ids = malloc(n * sizeof *r->prompt_ids);
    if (!r->prompt_ids) return srv_api_fail(e, 503, "server_error", NULL, "prompt", "out of memory"), -1;
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(a, i);
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > INT32_MAX)
            return BAD(e, "prompt", "'prompt' token ids must be integers >= 0 (index %zu is not)", i);
        r->prompt_ids[i] = (int32_t)json_integer_value(v);
    }
    r->n_prompt_ids = n;
    return 0;
}

/* prompt: a string, [string], [ids] or [[ids]]: one prompt per request. */
static int parse_prompt(json_t *o, srv_gen_req *r, srv_api_error *e) {
    json_t *p = json_object_get(o, "prompt");
    if (!p || json_is_null(p)) return BAD(e, "prompt", "'prompt' is missing");
    if (json_is_array(p) && json_array_size(p) == 1 && !json_is_integer(json_array_get(p, 0))) p = json_array_get(p, 0);
    if (json_is_string(p)) {
        if (json_string_length(p) == 0) return BAD(e, "prompt", "'prompt' is empty");
        if (dup_string(p, "prompt", &r->prompt, e)) return -1;
        r->prompt_is_pml = starts_pml(r->prompt);
        return 0;
    }
    if (json_is_array(p) && (json_array_size(p) == 0 || json_is_integer(json_array_get(p, 0)))) return prompt_ids(p, r, e);
    if (json_is_array(p)) return BAD(e, "prompt", "one prompt per request: 'prompt' holds %zu", json_array_size(p));
    return BAD_TYPE(e, "prompt", "a string, an array of token ids, or an array of one of those");
}

/* ---- the request ---- */

static int parse_object(json_t *o, srv_api api, srv_gen_req *r, srv_api_error *e) {
    json_t *model = json_object_get(o, "model");
    if (model && !json_is_null(model) && dup_string(model, "model", &r->model, e)) return -1;
    if (parse_options(o, r, e)) return -1;
    if (api == SRV_COMPLETION) return parse_prompt(o, r, e);
    json_t *pml = json_object_get(o, "pml");
    if (pml && !json_is_null(pml)) {
        if (dup_string(pml, "pml", &r->pml, e)) return -1;
        if (!starts_pml(r->pml)) return BAD(e, "pml", "'pml' must be a <prompt schema=\"...\"> document");
    }
    return parse_messages(o, r, e);
}

int srv_parse_gen_request(const char *body, size_t len, srv_api api, srv_gen_req *out, srv_api_error *err) {
    memset(out, 0, sizeof *out);
    *out = (srv_gen_req){.api = api, .max_tokens = -1, .temperature = 0.8f, .top_p = 0.95f, .min_p = 0.05f,
                         .repeat_penalty = 1.0f, .top_k = 40};
    json_error_t je;
    json_t *o = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!o) {
        srv_api_fail(err, 400, "invalid_request_error", "invalid_json", NULL,
                     "the body is not valid JSON: %s at line %d, column %d", je.text, je.line, je.column);
        return -1;
    }
    int rc = 0;
    if (!json_is_object(o)) {
        srv_api_fail(err, 400, "invalid_request_error", "invalid_json", NULL, "the body must be a JSON object");
        rc = -1;
    } else {
        rc = parse_object(o, api, out, err);
    }
    json_decref(o);
    if (rc) srv_gen_req_free(out);
    return rc;
}
