/* engine_internal.h - the pc_engine object, shared by the engine's files. */
#ifndef PC_ENGINE_INTERNAL_H
#define PC_ENGINE_INTERNAL_H

#include "forward/forward.h"
#include "model/model.h"
#include "pcache.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"
#include "util/threadpool.h"

struct pc_engine {
    pc_model *model;
    pc_tokenizer *tok;
    pc_chat_format chat;      /* PC_CHAT_UNKNOWN when the template is not recognised */
    pc_pool *pool;
    pc_forward *fwd;
    pc_isa isa;
    int32_t n_ctx, n_batch;
    float *logits;            /* [n_vocab] */
    char name[128];
    struct pc_schema **schemas; /* registered schemas, owned */
    int32_t n_schemas;
    size_t cap_schemas;
    int32_t placeholder;        /* token that fills parameters without scaffold text */
};

/* What a generation starts from: a context of spans (may be NULL) and the
 * tokens to prefill after it, at their positions; decoding continues at
 * pos[n-1] + 1. t0 is the request's start, from which TTFT is measured. */
typedef struct pc_gen_input {
    const pc_kv_list *ctx;
    const int32_t *tokens;
    const int32_t *pos;
    size_t n;
    double t0;
} pc_gen_input;

struct pc_schema *pc_engine_find_schema(const pc_engine *e, const char *name); /* NULL if absent */
void pc_engine_free_schemas(pc_engine *e);

pc_status pc_gen_run(pc_engine *e, const pc_gen_input *in, const pc_gen_params *p, pc_token_cb cb, void *user,
                     pc_gen_result *out, pc_error *err);

#endif
