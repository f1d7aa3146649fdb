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
};

#endif
