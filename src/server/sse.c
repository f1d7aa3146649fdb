/* sse.c - streaming answers as server-sent events: one `data: {chunk}\n\n`
 * per batch of new text, then the chunk with finish_reason, the usage chunk
 * when stream_options.include_usage asks for it, and `data: [DONE]`.
 *
 * MHD calls the reader on the connection's own thread (thread per
 * connection), so the reader may block until the request has more text. It
 * hands out at most `max` bytes a call; what is formatted beyond that waits
 * in `out` for the next call. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/completions.h"

typedef enum stream_state { ST_FIRST = 0, ST_TEXT, ST_ENDED } stream_state;

typedef struct srv_stream {
    srv_reply rp;
    pc_buf out;          /* formatted, [sent, len) not yet handed to MHD */
    size_t sent;
    pc_buf text;         /* text taken from the job, to be formatted */
    stream_state state;
    bool failed;         /* out of memory formatting: end the stream */
} srv_stream;

static bool put_event(srv_stream *st, json_t *chunk) {
    char *s = chunk ? json_dumps(chunk, JSON_COMPACT) : NULL;
    json_decref(chunk);
    const bool ok = s && pc_buf_printf(&st->out, "data: %s\n\n", s);
    free(s);
    if (!ok) st->failed = true;
    return ok;
}

static json_t *chunk_json(const srv_stream *st, json_t *choices) {
    const srv_reply *rp = &st->rp;
    return json_pack("{s:s, s:s, s:I, s:s, s:o}", "id", rp->id, "object",
                     rp->api == SRV_CHAT ? "chat.completion.chunk" : "text_completion", "created",
                     (json_int_t)rp->created, "model", rp->model, "choices", choices);
}

/* One choice: chat deltas carry the role first, then content; completions carry text. */
static json_t *choice_json(const srv_stream *st, const char *text, size_t len, const char *finish) {
    json_t *fr = finish ? json_string(finish) : json_null();
    if (st->rp.api == SRV_COMPLETION)
        return json_pack("{s:i, s:o, s:n, s:o}", "index", 0, "text", srv_json_text(text, len), "logprobs", "finish_reason", fr);
    json_t *delta = json_object();
    if (st->state == ST_FIRST) json_object_set_new(delta, "role", json_string("assistant"));
    if (len || (st->state == ST_FIRST && !finish)) json_object_set_new(delta, "content", srv_json_text(text, len));
    return json_pack("{s:i, s:o, s:n, s:o}", "index", 0, "delta", delta, "logprobs", "finish_reason", fr);
}

static void put_text(srv_stream *st) {
    if (st->text.len == 0 && st->state != ST_FIRST) return;
    if (!pc_buf_reserve(&st->text, 0)) { /* data exists from here on */
        st->failed = true;
        return;
    }
    put_event(st, chunk_json(st, json_pack("[o]", choice_json(st, st->text.data ? st->text.data : "", st->text.len, NULL))));
    st->state = ST_TEXT;
    st->text.len = 0;
    st->text.data[0] = '\0';
}

static void put_end(srv_stream *st) {
    const srv_job *j = st->rp.job;
    if (j->status != PC_OK) { /* the request failed after the stream began: an error event, as OpenAI sends */
        srv_api_error e;
        srv_error_from_status(&e, j->status, &j->err, NULL);
        put_event(st, srv_error_json(&e));
    } else {
        srv_count_done(st->rp.srv, j);
        put_event(st, chunk_json(st, json_pack("[o]", choice_json(st, "", 0, srv_finish_reason(j->usage.stop)))));
        if (st->rp.include_usage) {
            json_t *c = chunk_json(st, json_array());
            json_object_set_new(c, "usage", srv_usage_json(&j->usage));
            json_object_set_new(c, "pcache", srv_pcache_json(&j->usage));
            put_event(st, c);
        }
    }
    if (!pc_buf_puts(&st->out, "data: [DONE]\n\n")) st->failed = true;
    st->state = ST_ENDED;
}

static ssize_t read_stream(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    srv_stream *st = cls;
    for (;;) {
        if (st->sent < st->out.len) {
            const size_t n = st->out.len - st->sent < max ? st->out.len - st->sent : max;
            memcpy(buf, st->out.data + st->sent, n);
            st->sent += n;
            return (ssize_t)n;
        }
        if (st->state == ST_ENDED || st->failed) return st->failed ? MHD_CONTENT_READER_END_WITH_ERROR
                                                                   : MHD_CONTENT_READER_END_OF_STREAM;
        st->out.len = st->sent = 0; /* all handed out: reuse the buffer */
        if (st->out.data) st->out.data[0] = '\0';
        if (srv_job_wait(st->rp.job, st->rp.fd) == SRV_WAIT_GONE) {
            atomic_fetch_add(&st->rp.srv->m.disconnects, 1);
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        bool done = false;
        if (!srv_job_take(st->rp.job, &st->text, &done)) st->failed = true;
        put_text(st);
        if (done) put_end(st);
    }
}

/* MHD is done with the response, whether it was sent whole or the client
 * left: a request still running for nobody is cancelled. */
static void free_stream(void *cls) {
    srv_stream *st = cls;
    pc_request_cancel(st->rp.job->req);
    srv_job_release(st->rp.job);
    pc_buf_free(&st->out);
    pc_buf_free(&st->text);
    free(st);
}

enum MHD_Result srv_stream_start(const srv_reply *rp, struct MHD_Connection *c) {
    srv_stream *st = calloc(1, sizeof *st);
    if (!st) {
        pc_request_cancel(rp->job->req);
        srv_job_release(rp->job);
        return MHD_NO;
    }
    st->rp = *rp;
    struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, read_stream, st, free_stream);
    if (!r) {
        free_stream(st);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    enum MHD_Result ok = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ok;
}
