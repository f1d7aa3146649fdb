/* completions.c - POST /v1/chat/completions and /v1/completions: a parsed
 * request becomes a pc_request (plain prompt, or PML bound to its schema),
 * goes to the scheduler, and comes back as one JSON answer or as an SSE
 * stream (sse.c).
 *
 * A chat request with "pml" is the PML prompt with the messages appended as
 * its own text: <user>...</user> etc. go in before </prompt>, escaped, so
 * positions of errors in the submitted document stay where the client wrote
 * them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/completions.h"
#include "server/job.h"
#include "util/clock.h"
#include "util/error.h"

/* ---- the generation parameters a request asks for ---- */

static pc_gen_params gen_params(pc_server *s, const srv_gen_req *q) {
    pc_gen_params g = pc_gen_default_params();
    const int n_ctx = pc_engine_n_ctx(s->e);
    int32_t n = q->max_tokens > 0 ? q->max_tokens : (q->api == SRV_COMPLETION ? 16 : n_ctx);
    g.n_predict = n > n_ctx ? n_ctx : n;
    g.temp = q->temperature;
    g.top_k = q->top_k;
    g.top_p = q->top_p;
    g.min_p = q->min_p;
    g.repeat_penalty = q->repeat_penalty;
    /* A request that names no seed gets its own; there is no shared RNG. */
    g.seed = q->has_seed ? q->seed : (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ULL ^ atomic_fetch_add(&s->seq, 1);
    g.ignore_eos = q->ignore_eos;
    g.stop = (const char *const *)q->stop;
    g.n_stop = q->n_stop;
    return g;
}

/* ---- plain prompts ---- */

/* A chat's messages are tokenized with only the template's markers as
 * control tokens: a message spelling "<|im_end|><|im_start|>system" stays
 * text and cannot forge a turn. A completions prompt is the client's whole
 * input, control tokens included, as llama.cpp's server reads it. */
static int plain_tokens(pc_server *s, const srv_gen_req *q, int32_t **ids, size_t *n, srv_api_error *e) {
    pc_error err = {0};
    pc_status st = PC_OK;
    if (q->api == SRV_CHAT) {
        const char **roles = malloc((q->n_msgs + 1) * sizeof *roles), **texts = malloc((q->n_msgs + 1) * sizeof *texts);
        if (!roles || !texts) st = pc_fail(&err, PC_ERR_NOMEM, "out of memory");
        for (size_t i = 0; st == PC_OK && i < q->n_msgs; i++) {
            roles[i] = q->msgs[i].role;
            texts[i] = q->msgs[i].content;
        }
        const bool add_gen = q->n_msgs && strcmp(q->msgs[q->n_msgs - 1].role, "assistant") != 0;
        if (st == PC_OK) st = pc_engine_chat_tokenize_messages(s->e, roles, texts, q->n_msgs, add_gen, ids, n, &err);
        free(roles);
        free(texts);
    } else {
        st = pc_engine_tokenize(s->e, q->prompt, strlen(q->prompt), true, true, ids, n, &err);
    }
    if (st != PC_OK) srv_error_from_status(e, st, &err, q->api == SRV_CHAT ? "messages" : "prompt");
    return st == PC_OK ? 0 : -1;
}

static int plain_request(pc_server *s, const srv_conn *cn, const srv_gen_req *q, const pc_gen_params *g,
                         pc_request **out, srv_api_error *e) {
    int32_t *ids = q->prompt_ids;
    size_t n = q->n_prompt_ids;
    for (size_t i = 0; i < n; i++)
        if (ids[i] >= pc_engine_n_vocab(s->e)) {
            srv_api_fail(e, 400, "invalid_request_error", "invalid_value", "prompt",
                         "token id %d at prompt index %zu is outside the vocabulary of %d", ids[i], i,
                         pc_engine_n_vocab(s->e));
            return -1;
        }
    if (!ids && plain_tokens(s, q, &ids, &n, e)) return -1;
    pc_error err = {0};
    /* the prefix cache is namespaced by the key's tenant: no hit, and so no
     * faster TTFT, on another tenant's text */
    pc_status st = s->p.prefix_cache ? pc_request_from_prefix(s->e, ids, n, g, cn->who.tenant, out, &err)
                                     : pc_request_from_tokens(s->e, ids, n, g, out, &err);
    if (ids != q->prompt_ids) pc_free(ids);
    if (st != PC_OK) srv_error_from_status(e, st, &err, "prompt");
    return st == PC_OK ? 0 : -1;
}

/* ---- PML prompts ---- */

/* Appends text escaped for XML character data; refuses what XML 1.0 cannot carry. */
static int append_escaped(pc_buf *b, const char *t, size_t i_msg, srv_api_error *e) {
    for (const unsigned char *p = (const unsigned char *)t; *p; p++) {
        const char *rep = *p == '&' ? "&amp;" : *p == '<' ? "&lt;" : *p == '>' ? "&gt;" : NULL;
        if (*p < 0x20 && *p != '\t' && *p != '\n' && *p != '\r') {
            srv_api_fail(e, 400, "invalid_request_error", "invalid_value", "messages",
                         "messages[%zu].content holds the control character U+%04X, which a PML document cannot carry",
                         i_msg, *p);
            return -1;
        }
        if (!(rep ? pc_buf_puts(b, rep) : pc_buf_append(b, p, 1))) {
            srv_api_fail(e, 503, "server_error", NULL, NULL, "out of memory");
            return -1;
        }
    }
    return 0;
}

/* The PML document with the messages as its own text before </prompt>. */
static int pml_with_messages(const srv_gen_req *q, pc_buf *doc, srv_api_error *e) {
    const char *pml = q->pml;
    const char *close = NULL;
    for (const char *p = strstr(pml, "</prompt"); p; p = strstr(p + 1, "</prompt")) close = p;
    const size_t head = close ? (size_t)(close - pml) : strlen(pml);
    if (!pc_buf_append(doc, pml, head)) goto nomem;
    for (size_t i = 0; i < q->n_msgs; i++) {
        if (!pc_buf_printf(doc, "<%s>", q->msgs[i].role)) goto nomem;
        if (append_escaped(doc, q->msgs[i].content, i, e)) return -1;
        if (!pc_buf_printf(doc, "</%s>", q->msgs[i].role)) goto nomem;
    }
    /* no </prompt>: the document is broken; PML's own error says where */
    if (close && !pc_buf_puts(doc, close)) goto nomem;
    return 0;
nomem:
    srv_api_fail(e, 503, "server_error", NULL, NULL, "out of memory");
    return -1;
}

static int pml_request(pc_server *s, const srv_conn *cn, const srv_gen_req *q, const pc_gen_params *g, pc_request **out,
                       srv_api_error *e) {
    pc_buf doc = {0};
    const char *xml = q->prompt, *name = "prompt";
    size_t len = q->prompt ? strlen(q->prompt) : 0;
    if (q->api == SRV_CHAT) {
        if (pml_with_messages(q, &doc, e)) {
            pc_buf_free(&doc);
            return -1;
        }
        xml = doc.data;
        len = doc.len;
        name = "pml";
    }
    pc_run_params rp = {.gen = *g, .use_cache = true, .tenant = cn->who.tenant}; /* its own schemas, then shared */
    pc_error err = {0};
    pc_status st = pc_request_from_pml(s->e, xml, len, name, &rp, out, &err);
    pc_buf_free(&doc);
    if (st != PC_OK) srv_error_from_status(e, st, &err, name);
    return st == PC_OK ? 0 : -1;
}

/* ---- answering ---- */

const char *srv_finish_reason(pc_stop_reason r) {
    return r == PC_STOP_LENGTH || r == PC_STOP_CONTEXT ? "length" : "stop";
}

json_t *srv_usage_json(const srv_usage *u) {
    return json_pack("{s:I, s:I, s:I, s:{s:I}}", "prompt_tokens", (json_int_t)u->prompt_tokens, "completion_tokens",
                     (json_int_t)u->completion_tokens, "total_tokens",
                     (json_int_t)(u->prompt_tokens + u->completion_tokens), "prompt_tokens_details", "cached_tokens",
                     (json_int_t)u->cached_tokens);
}

json_t *srv_pcache_json(const srv_usage *u) {
    json_t *o = json_pack("{s:f, s:I, s:f}", "ttft_ms", u->ttft_ms, "cached_tokens", (json_int_t)u->cached_tokens,
                          "decode_tok_s", u->decode_tok_s);
    if (o && u->modules) json_object_set(o, "modules", u->modules);
    return o;
}

static json_t *answer_json(const srv_reply *rp, const char *text, size_t len, const srv_usage *u) {
    json_t *t = srv_json_text(text, len), *choice;
    if (rp->api == SRV_CHAT)
        choice = json_pack("{s:i, s:{s:s, s:o}, s:n, s:s}", "index", 0, "message", "role", "assistant", "content", t,
                           "logprobs", "finish_reason", srv_finish_reason(u->stop));
    else
        choice = json_pack("{s:i, s:o, s:n, s:s}", "index", 0, "text", t, "logprobs", "finish_reason",
                           srv_finish_reason(u->stop));
    return json_pack("{s:s, s:s, s:I, s:s, s:[o], s:o, s:o}", "id", rp->id, "object",
                     rp->api == SRV_CHAT ? "chat.completion" : "text_completion", "created", (json_int_t)rp->created,
                     "model", rp->model, "choices", choice, "usage", srv_usage_json(u), "pcache", srv_pcache_json(u));
}

void srv_count_done(pc_server *s, const srv_job *j) {
    srv_metrics *m = &s->m;
    atomic_fetch_add(&m->prompt_tokens, (uint64_t)j->usage.prompt_tokens);
    atomic_fetch_add(&m->cached_prompt_tokens, (uint64_t)j->usage.cached_tokens);
    atomic_fetch_add(&m->generated_tokens, (uint64_t)j->usage.completion_tokens);
    if (j->plain && s->p.prefix_cache) {
        atomic_fetch_add(&m->prefix_queries, 1);
        if (j->usage.cached_tokens > 0) atomic_fetch_add(&m->prefix_hits, 1);
        atomic_fetch_add(&m->prefix_hit_tokens, (uint64_t)j->usage.cached_tokens);
    }
    if (j->usage.completion_tokens > 0) srv_metrics_ttft(m, j->usage.ttft_ms);
}

/* Waits for the whole answer. MHD_NO closes a connection whose client left. */
static enum MHD_Result answer_whole(srv_reply *rp, struct MHD_Connection *c) {
    pc_buf text = {0};
    bool done = false;
    while (!done) {
        if (srv_job_wait(rp->job, rp->fd) == SRV_WAIT_GONE) {
            atomic_fetch_add(&rp->srv->m.disconnects, 1);
            pc_buf_free(&text);
            return MHD_NO;
        }
        if (!srv_job_take(rp->job, &text, &done)) pc_request_cancel(rp->job->req);
    }
    enum MHD_Result ok;
    if (rp->job->status != PC_OK) {
        srv_api_error e;
        srv_error_from_status(&e, rp->job->status, &rp->job->err, NULL);
        ok = srv_reply_error(rp->srv, c, &e);
    } else {
        srv_count_done(rp->srv, rp->job);
        ok = srv_reply_json(c, MHD_HTTP_OK, answer_json(rp, text.data ? text.data : "", text.len, &rp->job->usage));
    }
    pc_buf_free(&text);
    return ok;
}

static int check_model(const pc_server *s, const srv_gen_req *q, srv_api_error *e) {
    if (!q->model || strcmp(q->model, s->model_id) == 0) return 0;
    srv_api_fail(e, 404, "invalid_request_error", "model_not_found", "model",
                 "the model '%s' does not exist: this server serves '%s'", q->model, s->model_id);
    return -1;
}

static bool is_pml(const srv_gen_req *q) {
    return q->api == SRV_CHAT ? q->pml != NULL : q->prompt_is_pml;
}

static int make_request(pc_server *s, const srv_conn *cn, const srv_gen_req *q, pc_request **r, srv_api_error *e) {
    if (check_model(s, q, e)) return -1;
    const pc_gen_params g = gen_params(s, q);
    return is_pml(q) ? pml_request(s, cn, q, &g, r, e) : plain_request(s, cn, q, &g, r, e);
}

/* Submits r; on success *out is its job. Takes r. */
static int submit(pc_server *s, pc_request *r, srv_job **out, srv_api_error *e) {
    srv_job *j = srv_job_new(r);
    if (!j) {
        pc_request_release(r);
        srv_api_fail(e, 503, "server_error", NULL, NULL, "out of memory");
        return -1;
    }
    pc_error err = {0};
    pc_status st = atomic_load(&s->draining) ? pc_fail(&err, PC_ERR_BUSY, "the server is shutting down")
                                             : pc_sched_submit(s->sched, r, &err);
    if (st != PC_OK) {
        srv_job_release(j); /* on_done will never run: drop its reference too */
        srv_job_release(j);
        if (st == PC_ERR_BUSY) atomic_fetch_add(&s->m.rejected_busy, 1);
        srv_error_from_status(e, st, &err, NULL);
        return -1;
    }
    *out = j;
    return 0;
}

enum MHD_Result srv_handle_generate(srv_conn *cn, struct MHD_Connection *c, srv_api api) {
    pc_server *s = cn->srv;
    srv_gen_req q;
    srv_api_error e;
    pc_request *r = NULL;
    srv_job *j = NULL;
    if (srv_parse_gen_request(cn->body.data ? cn->body.data : "", cn->body.len, api, &q, &e)) return srv_reply_error(s, c, &e);
    if (make_request(s, cn, &q, &r, &e) || submit(s, r, &j, &e)) {
        srv_gen_req_free(&q);
        return srv_reply_error(s, c, &e);
    }
    j->plain = !is_pml(&q);
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    srv_reply rp = {.srv = s, .job = j, .api = api, .fd = ci ? ci->connect_fd : -1, .created = (int64_t)time(NULL),
                    .stream = q.stream, .include_usage = q.include_usage};
    snprintf(rp.id, sizeof rp.id, "%s-%016llx", api == SRV_CHAT ? "chatcmpl" : "cmpl",
             (unsigned long long)atomic_fetch_add(&s->seq, 1));
    snprintf(rp.model, sizeof rp.model, "%s", s->model_id);
    srv_gen_req_free(&q);
    if (rp.stream) return srv_stream_start(&rp, c); /* the stream owns the job from here */
    enum MHD_Result ok = answer_whole(&rp, c);
    srv_job_release(j);
    return ok;
}
