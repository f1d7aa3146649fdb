/* engine_internal.h - the pc_engine object: what every request shares.
 *
 * Shared, read-only after open: model, tokenizer, chat format, ISA, sizes.
 * Shared and locked: the schema registry (schemas_lock), the module store
 * (its tiers' own locks) and the thread pool (its own lock, job by job). Nothing per request lives here: a request's KV,
 * sampler, logits and scratch are in its pc_request and the forward state of
 * whoever steps it (request.h, step.h). */
#ifndef PC_ENGINE_INTERNAL_H
#define PC_ENGINE_INTERNAL_H

#include <pthread.h>

#include "forward/forward.h"
#include "model/model.h"
#include "pcache.h"
#include "schema/schema.h"
#include "store/store.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"
#include "util/threadpool.h"

struct pc_engine {
    pc_model *model;
    pc_tokenizer *tok;
    pc_chat_format chat;      /* PC_CHAT_UNKNOWN when the template is not recognised */
    char *default_system;     /* the template's default system message (ChatML templates that add one), or NULL */
    pc_pool *pool;
    pc_isa isa;
    pc_backend_shared *dev;     /* the model where the backend computes (CUDA: on the GPU), shared by every forward */
    int32_t n_ctx, n_batch;
    char name[128];
    int32_t placeholder;        /* token that fills parameters without scaffold text */
    pthread_rwlock_t schemas_lock; /* readers bind prompts; writers add and remove */
    struct pc_schema **schemas; /* registered schemas, owned */
    int32_t n_schemas;
    size_t cap_schemas;
    uint8_t model_digest[32];   /* the model fingerprint (pc_model_digest) */
    pc_store *store;            /* the module store: every schema's piece KV; thread-safe (store.h) */
    struct pc_prefix_index *prefix_index; /* the prefix cache's entries by parent prefix (prefix_index.h); thread-safe */
    pthread_mutex_t spare_lock;
    pc_forward *spare;          /* the last forward state a lone run gave back (pc_engine_take_forward), or NULL */
};

/* Forward state (activations, attention scratch) for batches of up to
 * n_batch rows over this engine's model, on its backend; one per stepping thread. */
pc_status pc_engine_new_forward(const pc_engine *e, int32_t n_batch, pc_forward **out, pc_error *err);
/* A forward state for a request run alone on the calling thread
 * (pc_request_run, pc_engine_eval_logits): the one the last such run gave
 * back, else a new one. Runs one after another (`pcache run`, `generate`)
 * then skip making the backend's buffers, streams and handles, which on CUDA
 * cost milliseconds of synchronous allocation inside the first token's time.
 * Give it back with pc_engine_give_forward (kept if none is, else freed). */
pc_status pc_engine_take_forward(pc_engine *e, pc_forward **out, pc_error *err);
void pc_engine_give_forward(pc_engine *e, pc_forward *f);
/* A KV span of cap tokens where the engine's backend keeps KV (host memory on
 * the CPU, GPU memory on CUDA); NULL when out of memory. */
pc_kv_span *pc_engine_new_span(const pc_engine *e, int32_t cap);

/* An encoder over the engine's store and model; a forward state is made only
 * if a piece must be encoded (pc_encoder_end frees it). */
pc_encoder pc_engine_encoder(pc_engine *e, pc_encode_progress_fn progress, void *user);

/* Look-up without locking: the caller holds schemas_lock. NULL if absent. */
/* By registered name: NAME (shared) or TENANT/NAME. The caller holds schemas_lock. */
struct pc_schema *pc_engine_find_schema(const pc_engine *e, const char *name);
/* By tenant ("" or NULL: shared) and the schema's own name. */
struct pc_schema *pc_engine_find_schema_of(const pc_engine *e, const char *tenant, const char *name);
void pc_engine_free_schemas(pc_engine *e);

/* The shared schema registry (schema_shared.c): how one registration meets it. */
typedef struct pc_shared_reg {
    const char *xml;            /* the PML to publish (publish) */
    size_t len;
    const uint8_t *want;        /* [32] registering from the registry: the digest its record names */
} pc_shared_reg;
pc_status pc_engine_schema_load_shared(pc_engine *e, const char *xml, size_t len, const char *doc_name,
                                       const pc_schema_params *p, const pc_shared_reg *sh, char **name_out,
                                       pc_error *err);
/* Before encoding s (laid out and keyed, not registered here): PC_ERR_EXISTS
 * when the registry holds another schema of its name; *same when it holds this one. */
pc_status pc_engine_shared_check(pc_engine *e, const pc_schema *s, const pc_shared_reg *sh, bool *same, pc_error *err);
/* Before registering s here (encoded): writes its record unless it came from
 * there, and marks it published; an unreachable registry leaves it unpublished
 * (this process's own). PC_ERR_EXISTS when another process published another
 * schema of its name meanwhile. */
pc_status pc_engine_shared_publish(pc_engine *e, pc_schema *s, const pc_shared_reg *sh, const pc_schema_params *p,
                                   pc_error *err);
/* Unregisters NAME or TENANT/NAME here; forget: its record goes too (when published). */
pc_status pc_engine_schema_unregister(pc_engine *e, const char *name, bool forget, pc_error *err);
/* Removes the record of a registered name (NAME or TENANT/NAME). */
void pc_engine_shared_forget(pc_engine *e, const char *name);

#endif
