/* request.c - a request's life: its items, the checks and allocations that
 * make it ready to step, its end, and the references other threads hold.
 * See request.h for the invariants. */
#include "engine/request.h"

#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/clock.h"
#include "util/error.h"

/* Generated tokens get this much room in the last span up front; it grows
 * (doubling) beyond, so a large max_tokens costs nothing until used. */
enum { GEN_ROOM = 512 };

static pc_status copy_stops(pc_request *r, const pc_gen_params *p) {
    if (!p->n_stop) return PC_OK;
    r->stops = calloc(p->n_stop, sizeof *r->stops);
    if (!r->stops) return PC_ERR_NOMEM;
    for (size_t i = 0; i < p->n_stop; i++)
        if (p->stop[i] && !(r->stops[i] = strdup(p->stop[i]))) return PC_ERR_NOMEM;
    r->gp.stop = (const char *const *)r->stops;
    return PC_OK;
}

pc_request *pc_req_new(pc_engine *e, const pc_gen_params *p, double t0) {
    pc_request *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->e = e;
    atomic_init(&r->refs, 1);
    atomic_init(&r->cancel, false);
    atomic_init(&r->submitted, false);
    r->gp = *p;
    r->gp.stop = NULL;
    r->t0 = t0;
    if (copy_stops(r, p) != PC_OK) {
        r->gp.n_stop = p->n_stop;
        pc_request_release(r);
        return NULL;
    }
    return r;
}

static pc_status push_item(pc_request *r, const pc_req_item *it, pc_error *err) {
    if (r->phase != PC_REQ_NEW) return pc_fail(err, PC_ERR_INVALID, "request: items are added before it is prepared");
    pc_req_item *a = pc_array_reserve(r->items, &r->cap_items, (size_t)r->n_items + 1, sizeof *r->items);
    if (!a) return pc_fail(err, PC_ERR_NOMEM, "out of memory for the request's items");
    r->items = a;
    r->items[r->n_items++] = *it;
    return PC_OK;
}

pc_status pc_req_add_cached(pc_request *r, pc_kv_span *span, pc_error *err) {
    if (!atomic_load(&span->frozen)) return pc_fail(err, PC_ERR_INVALID, "request: a cached span must be frozen");
    pc_req_item it = {.span = pc_kv_span_retain(span), .n = span->n};
    pc_status s = push_item(r, &it, err);
    if (s != PC_OK) pc_kv_span_release(span);
    return s;
}

pc_status pc_req_add_fresh(pc_request *r, const int32_t *tokens, const int32_t *pos, int32_t start, int32_t n, bool keep,
                           pc_error *err) {
    if (n <= 0) return pc_fail(err, PC_ERR_INVALID, "request: an empty run of fresh tokens");
    if (start < 0 || start > INT32_MAX - n) return pc_fail(err, PC_ERR_RANGE, "request: position %d out of range", start);
    pc_req_item it = {.n = n, .fresh = true, .keep = keep};
    it.tokens = malloc((size_t)n * sizeof *it.tokens);
    it.pos = malloc((size_t)n * sizeof *it.pos);
    pc_status s = PC_OK;
    if (!it.tokens || !it.pos) s = pc_fail(err, PC_ERR_NOMEM, "out of memory for %d fresh tokens", n);
    if (s == PC_OK) {
        memcpy(it.tokens, tokens, (size_t)n * sizeof *tokens);
        for (int32_t i = 0; i < n; i++) it.pos[i] = pos ? pos[i] : start + i;
        for (int32_t i = 0; i < n && s == PC_OK; i++)
            if (it.pos[i] < 0) s = pc_fail(err, PC_ERR_RANGE, "request: negative position %d", it.pos[i]);
        if (s == PC_OK) s = push_item(r, &it, err);
    }
    if (s != PC_OK) {
        free(it.tokens);
        free(it.pos);
    }
    return s;
}

pc_status pc_req_set_history(pc_request *r, const int32_t *tokens, size_t n, pc_error *err) {
    free(r->prompt);
    r->prompt = malloc((n ? n : 1) * sizeof *r->prompt);
    if (!r->prompt) return pc_fail(err, PC_ERR_NOMEM, "out of memory for the request's history");
    memcpy(r->prompt, tokens, n * sizeof *tokens);
    r->n_prompt_hist = n;
    return PC_OK;
}

/* ---- prepare ---- */

/* The highest position of the input, cached or fresh: where the answer
 * starts is one past it. */
static int32_t last_position(const pc_request *r) {
    int32_t last = -1;
    for (int32_t i = 0; i < r->n_items; i++) {
        const pc_req_item *it = &r->items[i];
        const int32_t *pos = it->fresh ? it->pos : it->span->pos;
        for (int32_t t = 0; t < it->n; t++) last = pos[t] > last ? pos[t] : last;
    }
    return last;
}

static pc_status check_items(pc_request *r, int64_t *total, pc_error *err) {
    const int32_t n_vocab = r->e->model->hp.n_vocab;
    if (r->n_items == 0) return pc_fail(err, PC_ERR_INVALID, "empty prompt");
    if (!r->items[r->n_items - 1].fresh)
        return pc_fail(err, PC_ERR_INVALID, "request: the last item must be fresh (its logits start generation)");
    *total = 0;
    for (int32_t i = 0; i < r->n_items; i++) {
        const pc_req_item *it = &r->items[i];
        *total += it->n;
        for (int32_t t = 0; it->fresh && t < it->n; t++)
            if (it->tokens[t] < 0 || it->tokens[t] >= n_vocab)
                return pc_fail(err, PC_ERR_RANGE, "token %d at prompt index %d is outside the vocabulary of %d",
                               it->tokens[t], t, n_vocab);
    }
    if (*total + 1 > r->e->n_ctx)
        return pc_fail(err, PC_ERR_RANGE, "the prompt's %lld tokens leave no room for an answer in the context of %d",
                       (long long)*total, r->e->n_ctx);
    const int32_t last = last_position(r);
    if ((int64_t)last + 1 >= r->e->n_ctx)
        return pc_fail(err, PC_ERR_RANGE,
                       "the prompt's last position is %d: no position is left for an answer in the context of %d", last,
                       r->e->n_ctx);
    return PC_OK;
}

static pc_status check_params(const pc_request *r, pc_error *err) {
    const pc_gen_params *p = &r->gp;
    if (p->n_predict <= 0) return pc_fail(err, PC_ERR_INVALID, "n_predict %d must be > 0", p->n_predict);
    if (p->n_force && !p->force_tokens) return pc_fail(err, PC_ERR_INVALID, "n_force %zu without force_tokens", p->n_force);
    for (size_t i = 0; i < p->n_force; i++)
        if (p->force_tokens[i] < 0 || p->force_tokens[i] >= r->e->model->hp.n_vocab)
            return pc_fail(err, PC_ERR_RANGE, "force_tokens[%zu] = %d is outside the vocabulary of %d", i,
                           p->force_tokens[i], r->e->model->hp.n_vocab);
    return PC_OK;
}

static pc_status make_spans(pc_request *r, int64_t total, pc_error *err) {
    for (int32_t i = 0; i < r->n_items; i++) {
        pc_req_item *it = &r->items[i];
        if (it->fresh) {
            int64_t cap = it->n;
            if (i == r->n_items - 1) {
                const int64_t room = r->e->n_ctx - total;
                cap += r->gp.n_predict < GEN_ROOM ? r->gp.n_predict : GEN_ROOM;
                cap = cap > it->n + room ? it->n + room : cap;
            }
            if (!(it->span = pc_engine_new_span(r->e, (int32_t)cap)))
                return pc_fail(err, PC_ERR_NOMEM, "out of memory for the KV of %d fresh tokens", it->n);
            r->res.fresh_tokens += it->n;
        } else {
            r->res.cached_tokens += it->n;
        }
        pc_status s = pc_kv_list_push(&r->list, it->span, err);
        if (s != PC_OK) return s;
    }
    return PC_OK;
}

static pc_status make_history(pc_request *r, pc_error *err) {
    const pc_req_item *last = &r->items[r->n_items - 1];
    const int32_t *seed = r->prompt ? r->prompt : last->tokens;
    const size_t n_seed = r->prompt ? r->n_prompt_hist : (size_t)last->n;
    r->cap_history = n_seed + (size_t)r->gp.n_predict;
    r->history = malloc(r->cap_history * sizeof *r->history);
    r->res.gen.tokens = malloc((size_t)r->gp.n_predict * sizeof *r->res.gen.tokens);
    if (!r->history || !r->res.gen.tokens) return pc_fail(err, PC_ERR_NOMEM, "out of memory preparing generation");
    memcpy(r->history, seed, n_seed * sizeof *seed);
    r->n_history = n_seed;
    return PC_OK;
}

pc_status pc_req_prepare(pc_request *r, pc_error *err) {
    if (r->phase != PC_REQ_NEW) return pc_fail(err, PC_ERR_INVALID, "request: prepared twice");
    int64_t total = 0;
    pc_status s = check_items(r, &total, err);
    if (s == PC_OK) s = check_params(r, err);
    if (s == PC_OK) s = make_spans(r, total, err);
    if (s == PC_OK) s = make_history(r, err);
    if (s != PC_OK) return s;
    const pc_gen_params *p = &r->gp;
    pc_sampler_params sp = {.temp = p->temp, .top_k = p->top_k, .top_p = p->top_p, .min_p = p->min_p,
                            .repeat_penalty = p->repeat_penalty, .repeat_last_n = p->repeat_last_n, .seed = p->seed};
    r->sampler = pc_sampler_create(&sp, r->e->model->hp.n_vocab);
    r->logits = malloc((size_t)r->e->model->hp.n_vocab * sizeof *r->logits);
    if (!r->sampler || !r->logits || !pc_buf_reserve(&r->text, 256))
        return pc_fail(err, PC_ERR_NOMEM, "out of memory preparing generation");
    r->text.data[0] = '\0';
    r->next_pos = last_position(r) + 1;
    r->res.gen.n_prompt = (size_t)r->res.fresh_tokens;
    r->next_item = 0;
    while (r->next_item < r->n_items && !r->items[r->next_item].fresh) r->next_item++;
    r->phase = PC_REQ_PREFILL;
    return PC_OK;
}

pc_status pc_req_seed_head(pc_request *r, const pc_kv_span *src, int32_t m, pc_error *err) {
    if (r->phase != PC_REQ_PREFILL || r->item_done != 0 || r->next_item >= r->n_items)
        return pc_fail(err, PC_ERR_INVALID, "request: seeded after its prefill started");
    pc_req_item *it = &r->items[r->next_item];
    if (m <= 0 || m >= it->n)
        return pc_fail(err, PC_ERR_RANGE, "request: a head of %d tokens of an item of %d", m, it->n);
    for (int32_t t = 0; t < m; t++)
        if (src->pos[t] != it->pos[t])
            return pc_fail(err, PC_ERR_INVALID, "request: seed token %d is at position %d, not %d", t, src->pos[t],
                           it->pos[t]);
    pc_status s = pc_kv_span_copy_head(it->span, src, m, err);
    if (s != PC_OK) return s;
    r->item_done = m;
    r->res.fresh_tokens -= m;
    r->res.cached_tokens += m;
    r->res.gen.n_prompt = (size_t)r->res.fresh_tokens;
    return PC_OK;
}

int64_t pc_req_prefill_left(const pc_request *r) {
    if (r->phase != PC_REQ_PREFILL) return 0;
    int64_t left = -r->item_done;
    for (int32_t i = r->next_item; i < r->n_items; i++)
        if (r->items[i].fresh) left += r->items[i].n;
    return left;
}

/* ---- end ---- */

static void record_kv_bytes(pc_request *r) {
    r->res.kv_bytes = 0;
    for (int32_t i = 0; i < r->n_items; i++)
        if (r->items[i].fresh) r->res.kv_bytes += pc_kv_span_cap_bytes(r->items[i].span);
    r->res.gen.kv_bytes = r->n_items && r->items[r->n_items - 1].span ? pc_kv_span_cap_bytes(r->items[r->n_items - 1].span) : 0;
}

void pc_req_finish(pc_request *r, pc_status s, const pc_error *err) {
    if (r->phase == PC_REQ_DONE) return;
    r->phase = PC_REQ_DONE;
    r->status = s;
    if (s != PC_OK) {
        r->err.code = s;
        memcpy(r->err.msg, err ? err->msg : pc_strerror(s), sizeof r->err.msg);
        r->err.msg[sizeof r->err.msg - 1] = '\0';
    }
    const double now = pc_now_ms();
    if (r->t_decode > 0) r->res.gen.decode_ms = now - r->t_decode;
    const pc_gen_result *g = &r->res.gen;
    r->res.gen.decode_tok_s = g->n_tokens > 1 && g->decode_ms > 0 ? (double)(g->n_tokens - 1) / (g->decode_ms / 1e3) : 0;
    r->res.gen.text = r->text.data;
    record_kv_bytes(r);
    if (r->on_done) r->on_done(r->user, s, s == PC_OK ? NULL : &r->err, s == PC_OK ? &r->res : NULL);
}

/* ---- public: references, callbacks, cancel ---- */

void pc_request_set_callbacks(pc_request *r, pc_token_cb on_text, pc_done_cb on_done, void *user) {
    r->on_text = on_text;
    r->on_done = on_done;
    r->user = user;
}

static void free_request(pc_request *r) {
    for (int32_t i = 0; i < r->n_items; i++) {
        pc_kv_span_release(r->items[i].span);
        free(r->items[i].tokens);
        free(r->items[i].pos);
    }
    free(r->items);
    pc_kv_list_free(&r->list);
    free(r->prompt);
    for (size_t i = 0; r->stops && i < r->gp.n_stop; i++) free(r->stops[i]);
    free(r->stops);
    pc_sampler_free(r->sampler);
    free(r->logits);
    free(r->history);
    pc_buf_free(&r->text);
    free(r->res.gen.tokens);
    free(r->res.input_tokens);
    free(r->res.input_pos);
    free(r->res.pieces);
    pc_piece_kv_release(&r->pins, r->e->store); /* after the spans: nothing reads them any more */
    for (int32_t i = 0; i < r->n_prefix_pins; i++) pc_store_release(r->e->store, r->prefix_pins[i]);
    free(r->prefix_pins);
    free(r->prefix_plan);
    free(r);
}

void pc_request_release(pc_request *r) {
    if (r && atomic_fetch_sub(&r->refs, 1) == 1) free_request(r);
}
