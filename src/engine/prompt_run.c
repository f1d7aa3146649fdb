/* prompt_run.c - running a PML prompt: bind it to its schema, assemble the
 * context from cached spans without copying, compute only what is fresh
 * (arguments, cache="false" modules, the prompt's text), then generate.
 *
 * Fresh items are computed in position order, each over the spans of the
 * items before it, so every query sees exactly the keys at positions <= its
 * own. With use_cache off, the very same tokens at the very same positions go
 * through one plain prefill: the baseline that cached runs are measured and
 * checked against. */
#include <stdlib.h>
#include <string.h>

#include "engine/engine_internal.h"
#include "schema/plan.h"
#include "util/clock.h"
#include "util/error.h"

void pc_run_result_free(pc_run_result *r) {
    if (!r) return;
    pc_gen_result_free(&r->gen);
    free(r->input_tokens);
    free(r->input_pos);
    memset(r, 0, sizeof *r);
}

typedef struct run_state {
    pc_engine *e;
    pc_plan plan;
    pc_kv_list list;
    pc_kv_span **fresh;  /* request-owned spans, released at the end */
    int32_t n_fresh;
    int32_t *tokens, *pos; /* the input handed to generation */
    size_t n;
    double compute_ms;     /* fresh items computed while assembling */
    size_t kv_bytes;       /* KV allocated for fresh items */
} run_state;

static pc_status compute_fresh(run_state *R, const pc_plan_item *it, pc_error *err) {
    pc_kv_span *span = pc_kv_span_for_model(R->e->model, it->n);
    int32_t *pos = malloc((size_t)it->n * sizeof *pos);
    pc_status st = PC_OK;
    if (!span || !pos) st = pc_fail(err, PC_ERR_NOMEM, "out of memory computing fresh tokens");
    for (int32_t i = 0; st == PC_OK && i < it->n; i++) pos[i] = it->start + i;
    double t0 = pc_now_ms();
    if (st == PC_OK) st = pc_forward_run(R->e->fwd, &R->list, span, it->tokens, pos, it->n, PC_LOGITS_NONE, NULL, err);
    R->compute_ms += pc_now_ms() - t0;
    if (span) R->kv_bytes += pc_kv_span_cap_bytes(span);
    free(pos);
    if (st == PC_OK) {
        R->fresh[R->n_fresh++] = span;
        st = pc_kv_list_push(&R->list, span, err);
    } else {
        pc_kv_span_release(span);
    }
    return st;
}

/* The last item becomes the generation input; it is computed fresh even when
 * cached, because its last token's logits are not kept. */
static pc_status set_input(run_state *R, const pc_plan_item *it, pc_error *err) {
    R->tokens = malloc((size_t)it->n * sizeof *R->tokens);
    R->pos = malloc((size_t)it->n * sizeof *R->pos);
    if (!R->tokens || !R->pos) return pc_fail(err, PC_ERR_NOMEM, "out of memory assembling the request");
    memcpy(R->tokens, it->tokens, (size_t)it->n * sizeof *R->tokens);
    for (int32_t i = 0; i < it->n; i++) R->pos[i] = it->start + i;
    R->n = (size_t)it->n;
    return PC_OK;
}

static pc_status assemble_cached(run_state *R, pc_error *err) {
    const pc_plan *p = &R->plan;
    R->fresh = malloc(((size_t)p->n + 1) * sizeof *R->fresh);
    if (!R->fresh) return pc_fail(err, PC_ERR_NOMEM, "out of memory assembling the request");
    for (int32_t i = 0; i + 1 < p->n; i++) {
        const pc_plan_item *it = &p->items[i];
        pc_status st = it->kind == PC_ITEM_CACHED ? pc_kv_list_push(&R->list, it->kv, err) : compute_fresh(R, it, err);
        if (st != PC_OK) return st;
    }
    return set_input(R, &p->items[p->n - 1], err);
}

/* Baseline: every item's tokens at their positions, one plain prefill. */
static pc_status assemble_plain(run_state *R, pc_error *err) {
    const pc_plan *p = &R->plan;
    size_t total = (size_t)(p->cached_tokens + p->fresh_tokens);
    R->tokens = malloc(total * sizeof *R->tokens);
    R->pos = malloc(total * sizeof *R->pos);
    if (!R->tokens || !R->pos) return pc_fail(err, PC_ERR_NOMEM, "out of memory assembling the request");
    size_t k = 0;
    for (int32_t i = 0; i < p->n; i++)
        for (int32_t j = 0; j < p->items[i].n; j++) {
            R->tokens[k] = p->items[i].tokens[j];
            R->pos[k++] = p->items[i].start + j;
        }
    R->n = k;
    return PC_OK;
}

/* The whole input, for callers that replay it elsewhere (benchmarks, baselines). */
static pc_status record_input(const pc_plan *p, pc_run_result *out, pc_error *err) {
    size_t total = (size_t)(p->cached_tokens + p->fresh_tokens), k = 0;
    out->input_tokens = malloc((total ? total : 1) * sizeof *out->input_tokens);
    out->input_pos = malloc((total ? total : 1) * sizeof *out->input_pos);
    if (!out->input_tokens || !out->input_pos) return pc_fail(err, PC_ERR_NOMEM, "out of memory recording the input");
    for (int32_t i = 0; i < p->n; i++)
        for (int32_t j = 0; j < p->items[i].n; j++) {
            out->input_tokens[k] = p->items[i].tokens[j];
            out->input_pos[k++] = p->items[i].start + j;
        }
    out->n_input = k;
    return PC_OK;
}

/* Parses the prompt document and finds the registered schema it names. */
static pc_status parse_prompt(pc_engine *e, const char *xml, size_t len, const char *req, const pc_run_params *p,
                              pc_pml_doc **doc, const pc_schema **schema, pc_error *err) {
    pc_pml_options o = {.lenient = p->lenient};
    pc_status st = pc_pml_parse_prompt(xml, len, req ? req : "request", &o, doc, err);
    if (st != PC_OK) return st;
    const pc_pml_node *root = (*doc)->root;
    *schema = root->name ? pc_engine_find_schema(e, root->name) : NULL;
    if (*schema) return PC_OK;
    if (!root->name)
        return pc_fail(err, PC_ERR_NOT_FOUND, "%s:%u:%u: the prompt names no schema; 'schema=' is registered",
                       (*doc)->name, root->line, root->col);
    return pc_fail(err, PC_ERR_NOT_FOUND, "%s:%u:%u: no schema named '%s' is registered", (*doc)->name, root->line,
                   root->col, root->name);
}

/* Parses the prompt, then binds it to its schema: the plan of cached spans and fresh tokens. */
static pc_status plan_prompt(pc_engine *e, const char *xml, size_t len, const char *req, const pc_run_params *p,
                             pc_plan *plan, double *bind_ms, pc_error *err) {
    pc_pml_doc *doc = NULL;
    const pc_schema *s = NULL;
    pc_status st = parse_prompt(e, xml, len, req, p, &doc, &s, err);
    if (st == PC_OK) {
        pc_bind_ctx bc = {.tok = e->tok, .chat = e->chat};
        double tb = pc_now_ms();
        st = pc_plan_bind(s, doc, &bc, plan, err);
        *bind_ms = pc_now_ms() - tb;
        if (st == PC_OK && plan->n == 0)
            st = pc_fail(err, PC_ERR_INVALID, "%s: the prompt imports nothing and has no text", doc->name);
    }
    pc_pml_doc_free(doc);
    return st;
}

static void run_state_free(run_state *R) {
    for (int32_t i = 0; i < R->n_fresh; i++) pc_kv_span_release(R->fresh[i]);
    free(R->fresh);
    pc_kv_list_free(&R->list);
    pc_plan_free(&R->plan);
    free(R->tokens);
    free(R->pos);
}

pc_status pc_engine_run(pc_engine *e, const char *xml, size_t len, const char *req, const pc_run_params *p,
                        pc_token_cb cb, void *user, pc_run_result *out, pc_error *err) {
    memset(out, 0, sizeof *out);
    const double t0 = pc_now_ms();
    run_state R = {.e = e};
    double bind_ms = 0;
    pc_status st = plan_prompt(e, xml, len, req, p, &R.plan, &bind_ms, err);
    if (st == PC_OK) {
        double ta = pc_now_ms();
        st = p->use_cache ? assemble_cached(&R, err) : assemble_plain(&R, err);
        out->assemble_ms = bind_ms + (pc_now_ms() - ta - R.compute_ms);
    }
    if (st == PC_OK) {
        const pc_plan_item *last = &R.plan.items[R.plan.n - 1];
        out->cached_tokens = p->use_cache ? R.plan.cached_tokens - (last->kind == PC_ITEM_CACHED ? last->n : 0) : 0;
        out->fresh_tokens = R.plan.cached_tokens + R.plan.fresh_tokens - out->cached_tokens;
        pc_gen_input in = {.ctx = p->use_cache ? &R.list : NULL, .tokens = R.tokens, .pos = R.pos, .n = R.n, .t0 = t0};
        st = pc_gen_run(e, &in, &p->gen, cb, user, &out->gen, err);
        out->kv_bytes = R.kv_bytes + out->gen.kv_bytes;
    }
    if (st == PC_OK) st = record_input(&R.plan, out, err);
    if (st != PC_OK) pc_run_result_free(out);
    run_state_free(&R);
    return st;
}
