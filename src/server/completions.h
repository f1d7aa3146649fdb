/* completions.h - what the generation endpoints share: a request in flight
 * as the answer sees it, the JSON pieces of an answer, and the stream. */
#ifndef PC_SERVER_COMPLETIONS_H
#define PC_SERVER_COMPLETIONS_H

#include "server/job.h"
#include "server/server_internal.h"

typedef struct srv_reply {
    pc_server *srv;
    srv_job *job;
    srv_api api;
    int fd;                  /* the client's socket: its hang-up cancels the request */
    char id[48];             /* "chatcmpl-..." / "cmpl-..." */
    char model[160];
    int64_t created;
    bool stream, include_usage;
} srv_reply;

/* OpenAI's finish_reason for a stop reason. */
const char *srv_finish_reason(pc_stop_reason r);
json_t *srv_usage_json(const srv_usage *u);   /* usage, with prompt_tokens_details.cached_tokens */
json_t *srv_pcache_json(const srv_usage *u);  /* the "pcache" object: what the cache did */
/* A JSON string of text[0..len) (invalid UTF-8 replaced by U+FFFD). */
json_t *srv_json_text(const char *text, size_t len);
/* Counts a finished request into the metrics. */
void srv_count_done(pc_server *s, const srv_job *j);

/* Answers with an SSE stream of chunks; takes rp->job. */
enum MHD_Result srv_stream_start(const srv_reply *rp, struct MHD_Connection *c);

#endif
