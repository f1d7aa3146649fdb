/* forward.h - one transformer step over a batch of (token, position) against a KV context.
 *
 * The batch's own keys and values are appended to `dst`, a writable span, and
 * the batch attends over ctx's spans followed by dst: that is the whole
 * Prompt Cache data path at this level. ctx may hold frozen, shared module
 * spans; they are read where they live, never copied.
 *
 * A batch may hold the rows of several sequences (requests of a server): each
 * has its own ctx and dst; the matrix products run once over all rows, and
 * attention runs per sequence over its own list.
 *
 * Invariant: the logits of a token depend only on its own (token, position)
 * and on the (position, K, V) sequence it attends to, never on the batch it
 * was computed in, the other sequences beside it, the chunking or the thread
 * count (bitwise, on one ISA path). */
#ifndef PC_FORWARD_H
#define PC_FORWARD_H

#include <stdint.h>

#include "backend/backend.h"
#include "kernels/cpu/quant.h"
#include "kv/kv.h"
#include "model/model.h"
#include "pcache.h"
#include "util/threadpool.h"

typedef enum pc_logits_mode { PC_LOGITS_NONE = 0, PC_LOGITS_LAST, PC_LOGITS_ALL } pc_logits_mode;

typedef struct pc_forward pc_forward;

/* A forward on the CPU backend: scratch for batches of up to n_batch tokens and
 * contexts of up to n_ctx keys, allocated once here: pc_forward_run allocates
 * nothing for contexts within it. model and pool are borrowed and must outlive
 * the forward. */
pc_status pc_forward_create(const pc_model *model, pc_pool *pool, int32_t n_batch, int64_t n_ctx, pc_isa isa,
                            pc_forward **out, pc_error *err);
/* The same on the backend p names (backend.h); p->pool and p->shared are borrowed. */
pc_status pc_forward_create_on(const pc_model *model, const pc_backend_params *p, int32_t n_batch, int64_t n_ctx,
                               pc_forward **out, pc_error *err);
void pc_forward_free(pc_forward *f);
/* The backend this forward runs on ("cpu", "cuda"). */
const char *pc_forward_backend_name(const pc_forward *f);
pc_backend_kind pc_forward_backend_kind(const pc_forward *f);

/* A new span shaped for this model (refcount 1) where this forward's backend
 * keeps KV (host memory on the CPU, device memory on CUDA), or NULL when out
 * of memory. Release it before freeing the backend's shared state. */
pc_kv_span *pc_forward_new_span(pc_forward *f, int32_t cap);
/* The same at an explicit location; NULL also when the backend cannot make it there. */
pc_kv_span *pc_forward_new_span_at(pc_forward *f, int32_t cap, pc_kv_loc loc);
/* A frozen copy of src at loc (e.g. a device span to pinned host memory); NULL
 * when out of memory or the backend cannot read src or write loc. */
pc_kv_span *pc_forward_copy_span(pc_forward *f, const pc_kv_span *src, pc_kv_loc loc);

/* Runs n tokens at positions pos (any order, any values >= 0) in chunks of n_batch.
 * logits: NONE -> unused; LAST -> n_vocab floats for token n-1; ALL -> [n][n_vocab].
 * On error dst is left as it was before the call. */
pc_status pc_forward_run(pc_forward *f, const pc_kv_list *ctx, pc_kv_span *dst, const int32_t *tokens,
                         const int32_t *pos, int32_t n, pc_logits_mode mode, float *logits, pc_error *err);

/* One sequence's rows in a batch: tokens at pos attend over ctx's spans (may
 * be NULL) followed by dst, into which their K and V are appended. Several
 * sequences of a batch may be consecutive pieces of one request: a sequence
 * whose ctx lists another's dst sees that dst's rows of this batch too, since
 * every row's K and V are stored before any row attends. */
typedef struct pc_fwd_seq {
    const pc_kv_list *ctx;
    pc_kv_span *dst;
    const int32_t *tokens, *pos;
    int32_t n;
    pc_logits_mode mode;
    float *logits;            /* LAST: [n_vocab] for row n-1; ALL: [n][n_vocab]; NONE: unused */
} pc_fwd_seq;

/* Runs the rows of n_seqs sequences as one batch of at most n_batch rows in
 * all. No two sequences may share a dst. The inputs of every sequence are
 * checked before anything is written: on error every dst is as it was (a
 * device error of the backend on a later sequence of a batch its backend runs
 * one sequence at a time leaves the earlier ones done). */
pc_status pc_forward_run_batch(pc_forward *f, const pc_fwd_seq *seqs, int32_t n_seqs, pc_error *err);

int32_t pc_forward_batch_size(const pc_forward *f);

#endif
