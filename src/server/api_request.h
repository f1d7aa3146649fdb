/* api_request.h - an OpenAI-style generation request (chat or completion),
 * checked and parsed out of its JSON body.
 *
 * Parsing knows nothing of the engine: it checks JSON, types, ranges and
 * presence, and names the offending parameter, so every malformed body gets a
 * 400 before anything is tokenized. What needs the model (the model name, the
 * context size, PML binding) is checked later. This is the fuzzed surface of
 * the server (fuzz/fuzz_server.c). Unknown fields are ignored, as OpenAI's
 * own API and llama.cpp's server do. */
#ifndef PC_SERVER_API_REQUEST_H
#define PC_SERVER_API_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>


#define SRV_MAX_STOP 16
#define SRV_MAX_STOP_BYTES 256
#define SRV_MAX_MESSAGES 1024

typedef enum srv_api { SRV_CHAT = 0, SRV_COMPLETION } srv_api;

typedef struct srv_msg {
    const char *role;        /* "system" (also for "developer"), "user" or "assistant": static */
    char *content;           /* text parts joined */
} srv_msg;

typedef struct srv_gen_req {
    srv_api api;
    char *model;             /* NULL when not given */
    srv_msg *msgs;           /* chat */
    size_t n_msgs;
    char *pml;               /* chat: the PML prompt the messages follow; NULL: a plain chat */
    char *prompt;            /* completion: text, NULL when given as token ids */
    int32_t *prompt_ids;     /* completion: token ids */
    size_t n_prompt_ids;
    bool prompt_is_pml;      /* completion: the prompt is a <prompt> document */
    bool stream, include_usage;
    int32_t max_tokens;      /* -1: not given */
    float temperature, top_p, min_p, repeat_penalty;
    int32_t top_k;
    bool has_seed;
    uint64_t seed;
    bool ignore_eos;         /* llama.cpp's extension: generate past end-of-generation tokens */
    char *stop[SRV_MAX_STOP];
    size_t n_stop;
} srv_gen_req;

/* A failed check, in the terms of OpenAI's error object. */
typedef struct srv_api_error {
    int http;                /* 400, 404, 413, 422, ... */
    const char *type;        /* "invalid_request_error", ... */
    const char *code;        /* e.g. "invalid_type"; NULL for none */
    char param[64];          /* the offending parameter, "" for none */
    char msg[512];
} srv_api_error;

void srv_api_fail(srv_api_error *e, int http, const char *type, const char *code, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

/* Parses body[0..len) (any bytes) as a request of kind api. 0 on success;
 * else -1 with *err filled (out is then empty). Free with srv_gen_req_free. */
int srv_parse_gen_request(const char *body, size_t len, srv_api api, srv_gen_req *out, srv_api_error *err);
void srv_gen_req_free(srv_gen_req *r);

#endif
