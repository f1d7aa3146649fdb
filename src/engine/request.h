/* request.h - one request's own state, apart from what the engine shares.
 *
 * A request holds its input in position order as items - cached spans
 * (frozen, shared, retained) and fresh runs of tokens, each computed into a
 * span of its own - and its generation state: sampler, history, logits, the
 * text so far and the result. Nothing of it lives in the engine, so any
 * number of requests can be in flight; pc_step runs the next rows of several
 * of them as one batch.
 *
 * Life: pc_req_new -> items added -> pc_req_prepare -> PREFILL (fresh items
 * computed in order, in chunks of any size) -> DECODE (one token a step) ->
 * DONE, when on_done is called, exactly once. A request that fails or is
 * cancelled at any point goes to DONE with its status.
 *
 * Invariants:
 *  1. list.spans[i] is items[i].span: each item, cached or fresh, is one span
 *     in position order, so the context of fresh item k is the first k spans,
 *     and a request attends over the same list whether it runs alone or in a
 *     batch beside others: the same bits (forward.h).
 *  2. Items before next_item are complete; item next_item has item_done of
 *     its rows computed. Generated tokens go into the last item's span.
 *  3. Only the thread stepping a request touches its state. Other threads
 *     only set `cancel` and retain or release it. */
#ifndef PC_ENGINE_REQUEST_H
#define PC_ENGINE_REQUEST_H

#include <stdatomic.h>

#include "engine/engine_internal.h"
#include "engine/sampler.h"
#include "util/buf.h"

typedef struct pc_req_item {
    pc_kv_span *span;       /* cached: a retained frozen span; fresh: the span it is computed into (owned) */
    int32_t *tokens, *pos;  /* fresh: [n], owned; cached: NULL */
    int32_t n;
    bool fresh;
    bool keep;              /* fresh: freeze the span when computed (it becomes shareable, e.g. a prefix block) */
} pc_req_item;

typedef enum pc_req_phase { PC_REQ_NEW = 0, PC_REQ_PREFILL, PC_REQ_DECODE, PC_REQ_DONE } pc_req_phase;

/* Called on the stepping thread once the last prompt row is computed, right
 * after the first token is chosen and streamed (before, when n_predict is 1;
 * step.c says why): the request's prompt spans are complete and hold no
 * generated row yet. */
typedef void (*pc_req_prefilled_fn)(void *user, pc_request *r);

struct pc_request {
    pc_engine *e;
    _Atomic int refs;
    _Atomic bool cancel;
    _Atomic bool submitted; /* set once, by the one pc_sched_submit that takes it */
    pc_req_phase phase;

    /* input */
    pc_req_item *items;
    int32_t n_items;
    size_t cap_items;
    pc_kv_list list;        /* items' spans, invariant 1 */
    int32_t next_item, item_done;
    int32_t *prompt;        /* history seed for the repetition penalty (default: the last item's tokens) */
    size_t n_prompt_hist;

    /* generation */
    pc_gen_params gp;       /* gp.stop points into stops (copied strings) */
    char **stops;
    pc_sampler *sampler;
    float *logits;          /* [n_vocab] the logits of the row just computed */
    int32_t *history;       /* [cap_history] prompt seed + generated */
    size_t n_history, cap_history;
    int32_t next_pos;       /* position of the next generated token */
    pc_detok detok;
    pc_buf text;            /* generated so far (cut at a stop string) */
    size_t emitted;         /* bytes of text handed to on_text */

    pc_run_result res;
    pc_piece_kv pins;       /* the store entries of its cached spans, pinned until the request is freed */
    pc_store_entry **prefix_pins; /* plain prompts: the prefix blocks it reuses, pinned likewise */
    int32_t n_prefix_pins;
    void *prefix_plan;            /* prefix_cache.c's keys of the prompt's blocks, to keep those it computes (one allocation) */
    pc_status status;
    pc_error err;
    double t0;              /* request start: TTFT counts from here */
    double t_prefill, t_decode;

    pc_token_cb on_text;
    pc_done_cb on_done;
    void *user;
    pc_req_prefilled_fn on_prefilled;
    void *prefilled_user;
};

/* A request with copies of p (and its stop strings); t0 is its start. NULL on OOM. */
pc_request *pc_req_new(pc_engine *e, const pc_gen_params *p, double t0);
/* Appends a cached span (retained; must be frozen). */
pc_status pc_req_add_cached(pc_request *r, pc_kv_span *span, pc_error *err);
/* Appends a fresh run of n tokens at positions pos (both copied; pos NULL:
 * start, start+1, ...). keep: see pc_req_item. */
pc_status pc_req_add_fresh(pc_request *r, const int32_t *tokens, const int32_t *pos, int32_t start, int32_t n, bool keep,
                           pc_error *err);
/* Seeds the history the repetition penalty sees (copied). */
pc_status pc_req_set_history(pc_request *r, const int32_t *tokens, size_t n, pc_error *err);
/* Checks the input against the model and the context, allocates the spans and
 * the generation state; the request is then ready to step. */
pc_status pc_req_prepare(pc_request *r, pc_error *err);

/* Ends the request (DONE) with status s (err may be NULL when s is PC_OK) and
 * calls on_done. Idempotent. */
void pc_req_finish(pc_request *r, pc_status s, const pc_error *err);

/* After a step computed r->logits for the request's last row: chooses the
 * next token (first or later), streams its text and may end the request. */
void pc_req_take_logits(pc_request *r);

/* After pc_req_prepare: the first m tokens of the first fresh item are the
 * first m of src (a cached span of the same tokens after the same context),
 * copied instead of computed; they count as cached. m < the item's length,
 * so its last rows (and the prompt's logits) are still computed. */
pc_status pc_req_seed_head(pc_request *r, const pc_kv_span *src, int32_t m, pc_error *err);

/* Rows the request still has to prefill. */
int64_t pc_req_prefill_left(const pc_request *r);

#endif
