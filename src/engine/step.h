/* step.h - one step of continuous batching: the next rows of several requests
 * run as one batch through the forward pass.
 *
 * Each step takes one decode row from every request that is decoding, then
 * fills what is left of the row budget with prefill chunks, oldest request
 * first; a chunk may cross from one fresh item of a request into the next
 * (their rows go in as separate sequences of the batch). Then every request
 * whose last row was computed chooses its next token. A request alone (the
 * blocking API) goes through the very same code. */
#ifndef PC_ENGINE_STEP_H
#define PC_ENGINE_STEP_H

#include "engine/request.h"

/* Per-step scratch a stepping thread keeps between steps (grows only). */
typedef struct pc_step_buf {
    pc_fwd_seq *seqs;
    pc_kv_list *views;      /* each sequence's ctx: a prefix of its request's list */
    pc_request **owner;
    bool *ends_prefill;     /* the sequence holds its request's last prompt row */
    int32_t cap;
} pc_step_buf;

void pc_step_buf_free(pc_step_buf *b);

/* Cancelled requests end first; then runs one batch of at most `budget`
 * rows over reqs[0..n) (in that priority order) and advances each: every
 * decode's row, then the oldest prefilling request's chunk, then chunks of
 * the next ones while the step's prefill rows stay within `mix` (when the
 * oldest's own chunk is shorter). A burst of new requests so gets its first
 * tokens a few requests a step, each step short, instead of all at the end
 * of one long step; a lone long prompt still goes in chunks of `budget`. A request
 * that fails (e.g. its KV cannot grow) ends alone with its error; the others
 * go on. Returns the rows run (0: nothing to do). Requests that ended are in
 * phase DONE: the caller retires them. */
int32_t pc_step_run(pc_forward *f, pc_step_buf *b, pc_request **reqs, int32_t n, int32_t budget, int32_t mix);

/* The scheduler's default mix: a couple of chat questions' fresh tokens.
 * Under a burst of 16 such requests on the 1.5B model it halved TTFT p50
 * against 512 (all at once) at the same throughput; 32 and 128 did no better. */
#define PC_SCHED_MIX_TOKENS 64

#endif
