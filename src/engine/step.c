/* step.c - building one batch from the active requests and handing each its
 * logits; see step.h. */
#include "engine/step.h"

#include <stdlib.h>
#include <string.h>

#include "util/clock.h"
#include "util/error.h"

void pc_step_buf_free(pc_step_buf *b) {
    free(b->seqs);
    free(b->views);
    free(b->owner);
    free(b->ends_prefill);
    memset(b, 0, sizeof *b);
}

static bool buf_reserve(pc_step_buf *b, int32_t n) {
    if (n <= b->cap) return true;
    pc_fwd_seq *s = realloc(b->seqs, (size_t)n * sizeof *s);
    if (s) b->seqs = s;
    pc_kv_list *v = realloc(b->views, (size_t)n * sizeof *v);
    if (v) b->views = v;
    pc_request **o = realloc(b->owner, (size_t)n * sizeof *o);
    if (o) b->owner = o;
    bool *e = realloc(b->ends_prefill, (size_t)n * sizeof *e);
    if (e) b->ends_prefill = e;
    if (!s || !v || !o || !e) return false;
    b->cap = n;
    return true;
}

/* Sequence k of the batch: rows of item `item` of r, [from, from + n). */
static void add_seq(pc_step_buf *b, int32_t k, pc_request *r, int32_t item, int32_t from, int32_t n,
                    const int32_t *tokens, const int32_t *pos, bool last_row) {
    b->views[k] = (pc_kv_list){.spans = r->list.spans, .n = item, .cap = item};
    b->seqs[k] = (pc_fwd_seq){.ctx = &b->views[k], .dst = r->items[item].span, .tokens = tokens + from,
                              .pos = pos + from, .n = n, .mode = last_row ? PC_LOGITS_LAST : PC_LOGITS_NONE,
                              .logits = last_row ? r->logits : NULL};
    b->owner[k] = r;
    b->ends_prefill[k] = last_row && r->phase == PC_REQ_PREFILL;
}

/* A decoding request's row: its last token at its next position. */
static bool plan_decode(pc_step_buf *b, int32_t *k, pc_request *r) {
    pc_error err;
    const int32_t last = r->n_items - 1;
    pc_status s = pc_kv_span_reserve(r->items[last].span, 1, &err);
    if (s != PC_OK) {
        pc_req_finish(r, s, &err);
        return false;
    }
    add_seq(b, (*k)++, r, last, 0, 1, (const int32_t *)&r->history[r->n_history - 1], &r->next_pos, true);
    return true;
}

/* Prefill rows of r within *budget: from its current item on, crossing into
 * the next fresh items while rows are left. */
static void plan_prefill(pc_step_buf *b, int32_t *k, pc_request *r, int32_t *budget) {
    if (r->t_prefill == 0) r->t_prefill = pc_now_ms();
    int32_t item = r->next_item, done = r->item_done;
    while (*budget > 0 && item < r->n_items) {
        const pc_req_item *it = &r->items[item];
        if (!it->fresh) {
            item++;
            continue;
        }
        const int32_t c = it->n - done < *budget ? it->n - done : *budget;
        add_seq(b, (*k)++, r, item, done, c, it->tokens, it->pos, item == r->n_items - 1 && done + c == it->n);
        *budget -= c;
        done += c;
        if (done == it->n) {
            item++;
            done = 0;
        }
    }
}

/* Advances the prefill cursors of the requests whose rows just ran. */
static void advance_prefill(pc_request *r, int32_t rows) {
    while (rows > 0) {
        pc_req_item *it = &r->items[r->next_item];
        const int32_t c = it->n - r->item_done < rows ? it->n - r->item_done : rows;
        r->item_done += c;
        rows -= c;
        if (r->item_done == it->n) {
            if (it->keep) pc_kv_span_freeze(it->span);
            r->item_done = 0;
            r->next_item++;
            while (r->next_item < r->n_items && !r->items[r->next_item].fresh) r->next_item++;
        }
    }
}

static void end_cancelled(pc_request **reqs, int32_t n) {
    for (int32_t i = 0; i < n; i++)
        if (reqs[i]->phase != PC_REQ_DONE && atomic_load(&reqs[i]->cancel)) {
            reqs[i]->res.gen.stop = PC_STOP_CANCEL;
            pc_req_finish(reqs[i], PC_OK, NULL);
        }
}

static int32_t plan(pc_step_buf *b, pc_request **reqs, int32_t n, int32_t budget, int32_t mix) {
    int32_t k = 0;
    for (int32_t i = 0; i < n && budget > 0; i++)
        if (reqs[i]->phase == PC_REQ_DECODE && plan_decode(b, &k, reqs[i])) budget--;
    bool oldest = true;
    for (int32_t i = 0; i < n && budget > 0; i++) {
        if (reqs[i]->phase != PC_REQ_PREFILL) continue;
        int32_t rows = oldest ? budget : (budget < mix ? budget : mix);
        if (rows <= 0) break;
        const int32_t asked = rows;
        plan_prefill(b, &k, reqs[i], &rows);
        budget -= asked - rows;
        mix -= asked - rows;
        oldest = false;
    }
    return k;
}

/* The batch failed as a whole (only out of memory can do that: inputs were
 * checked when the requests were prepared): each of its requests ends. */
static void fail_batch(pc_step_buf *b, int32_t k, pc_status s, const pc_error *err) {
    for (int32_t i = 0; i < k; i++) pc_req_finish(b->owner[i], s, err);
}

/* The prompt is computed: its first token goes out before on_prefilled keeps
 * the prompt's blocks for later requests (about a millisecond of the first
 * token's wait on the 1.5B model), unless that token is the request's last:
 * then the blocks are kept first, so that a client sending its next request
 * at once finds them. (A first token that is EOS still ends one early: its
 * follow-up may miss what is being stored, and computes it.) */
static void first_token(pc_request *r) {
    const bool keep_first = r->on_prefilled && r->gp.n_predict <= 1;
    if (keep_first) r->on_prefilled(r->prefilled_user, r);
    pc_req_take_logits(r);
    if (r->on_prefilled && !keep_first) r->on_prefilled(r->prefilled_user, r);
}

int32_t pc_step_run(pc_forward *f, pc_step_buf *b, pc_request **reqs, int32_t n, int32_t budget, int32_t mix) {
    end_cancelled(reqs, n);
    /* one sequence per decode, and a prefill splits into at most one per item */
    int32_t most = 0;
    for (int32_t i = 0; i < n; i++) most += reqs[i]->phase == PC_REQ_DECODE ? 1 : reqs[i]->n_items;
    if (budget > pc_forward_batch_size(f)) budget = pc_forward_batch_size(f);
    pc_error err;
    if (!buf_reserve(b, most)) {
        pc_fail(&err, PC_ERR_NOMEM, "out of memory planning a batch of %d requests", n);
        for (int32_t i = 0; i < n; i++) pc_req_finish(reqs[i], PC_ERR_NOMEM, &err);
        return 0;
    }
    const int32_t k = plan(b, reqs, n, budget, mix);
    if (k == 0) return 0;
    pc_status s = pc_forward_run_batch(f, b->seqs, k, &err);
    if (s != PC_OK) {
        fail_batch(b, k, s, &err);
        return 0;
    }
    int32_t rows = 0;
    for (int32_t i = 0; i < k; i++) {
        pc_request *r = b->owner[i];
        rows += b->seqs[i].n;
        if (r->phase == PC_REQ_DECODE) { /* its one row, planned by plan_decode */
            r->next_pos++;
            pc_req_take_logits(r);
            continue;
        }
        advance_prefill(r, b->seqs[i].n);
        if (b->ends_prefill[i]) first_token(r);
    }
    return rows;
}
