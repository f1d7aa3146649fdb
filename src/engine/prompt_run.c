/* prompt_run.c - a PML prompt as a request: bind it to its schema, get the
 * cached pieces' KV from the module store (memory, disk, Redis, else encoded;
 * pinned until the request is freed), list those spans (never copied) and the
 * fresh runs it must compute (arguments, cache="false" modules, the prompt's
 * text), in position order.
 *
 * Fresh items are computed in position order, each over the spans of the
 * items before it, so every query sees exactly the keys at positions <= its
 * own. With use_cache off, the very same tokens at the very same positions go
 * through one plain prefill: the baseline that cached runs are measured and
 * checked against. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/request.h"
#include "schema/plan.h"
#include "schema/schema.h"
#include "util/clock.h"
#include "util/error.h"

void pc_run_result_free(pc_run_result *r) {
    if (!r) return;
    pc_gen_result_free(&r->gen);
    free(r->input_tokens);
    free(r->input_pos);
    free(r->pieces); /* one block with the paths */
    memset(r, 0, sizeof *r);
}

/* Where each cached piece came from, in one block (structs, then paths): the
 * schema may be gone when the result is read. */
static pc_status record_pieces(const pc_plan *p, const pc_schema *s, pc_run_result *out, pc_error *err) {
    size_t n = 0, chars = 0;
    for (int32_t i = 0; i < p->n; i++)
        if (p->items[i].kind == PC_ITEM_CACHED) n++, chars += strlen(s->pieces[p->items[i].piece].path) + 1;
    if (!n) return PC_OK;
    out->pieces = malloc(n * sizeof *out->pieces + chars);
    if (!out->pieces) return pc_fail(err, PC_ERR_NOMEM, "out of memory recording the request's pieces");
    char *str = (char *)(out->pieces + n);
    for (int32_t i = 0; i < p->n; i++) {
        const pc_plan_item *it = &p->items[i];
        if (it->kind != PC_ITEM_CACHED) continue;
        const char *path = s->pieces[it->piece].path;
        const size_t len = strlen(path) + 1;
        memcpy(str, path, len);
        out->pieces[out->n_pieces++] = (pc_run_piece){.path = str, .start = it->start, .n = it->n,
                                                      .source = p->kv.source[it->piece]};
        str += len;
    }
    return PC_OK;
}

/* The cached items' KV from the store, while the schema is held (registry
 * read lock): pieces no tier has are encoded here, on the caller's thread. */
static pc_status fetch_pieces(pc_engine *e, const pc_schema *s, pc_plan *plan, pc_run_result *res, pc_error *err) {
    const double tf = pc_now_ms();
    pc_encoder enc = pc_engine_encoder(e, NULL, NULL);
    pc_status st = pc_plan_fetch(plan, s, &enc, err);
    pc_encoder_end(&enc);
    res->fetch_ms = pc_now_ms() - tf;
    res->encoded_tokens = plan->kv.encoded_tokens;
    return st == PC_OK ? record_pieces(plan, s, res, err) : st;
}

/* The last item starts generation, so it is computed fresh even when cached:
 * a cached span keeps no logits. */
static pc_status items_cached(pc_request *r, const pc_plan *p, pc_error *err) {
    pc_status st = PC_OK;
    for (int32_t i = 0; st == PC_OK && i < p->n; i++) {
        const pc_plan_item *it = &p->items[i];
        if (it->kind == PC_ITEM_CACHED && i + 1 < p->n) /* retaining a frozen span changes only its count */
            st = pc_req_add_cached(r, (pc_kv_span *)it->kv, err);
        else
            st = pc_req_add_fresh(r, it->tokens, NULL, it->start, it->n, false, err);
    }
    return st;
}

/* Baseline: every item's tokens at their positions, one fresh run. */
static pc_status items_plain(pc_request *r, const pc_plan *p, pc_error *err) {
    const size_t total = (size_t)(p->cached_tokens + p->fresh_tokens);
    int32_t *tokens = malloc(total * sizeof *tokens), *pos = malloc(total * sizeof *pos);
    pc_status st = PC_OK;
    if (!tokens || !pos) st = pc_fail(err, PC_ERR_NOMEM, "out of memory assembling the request");
    size_t k = 0;
    for (int32_t i = 0; st == PC_OK && i < p->n; i++)
        for (int32_t j = 0; j < p->items[i].n; j++) {
            tokens[k] = p->items[i].tokens[j];
            pos[k++] = p->items[i].start + j;
        }
    if (st == PC_OK) st = pc_req_add_fresh(r, tokens, pos, 0, (int32_t)k, false, err);
    free(tokens);
    free(pos);
    return st;
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

/* The registered schema a prompt names: the tenant's own, else a shared one.
 * The caller holds schemas_lock. */
static pc_status find_schema(pc_engine *e, const pc_pml_doc *doc, const char *tenant, const pc_schema **schema,
                             pc_error *err) {
    const pc_pml_node *root = doc->root;
    *schema = root->name && tenant && *tenant ? pc_engine_find_schema_of(e, tenant, root->name) : NULL;
    if (!*schema && root->name) *schema = pc_engine_find_schema_of(e, "", root->name);
    if (*schema) return PC_OK;
    if (!root->name)
        return pc_fail(err, PC_ERR_NOT_FOUND, "%s:%u:%u: the prompt names no schema: write <prompt schema=\"NAME\">",
                       doc->name, root->line, root->col);
    return pc_fail(err, PC_ERR_NOT_FOUND, "%s:%u:%u: no schema named '%s' is registered", doc->name, root->line,
                   root->col, root->name);
}

/* Brings the schema names the prompt may bind to in line with the shared
 * registry (pc_engine_schema_sync): the tenant's own, then the shared one. */
static pc_status sync_named(pc_engine *e, const pc_pml_doc *doc, const char *tenant, pc_error *err) {
    const char *name = doc->root->name;
    if (!name || strchr(name, '/')) return PC_OK;
    if (tenant && *tenant) {
        char reg[512];
        if ((size_t)snprintf(reg, sizeof reg, "%s/%s", tenant, name) < sizeof reg) {
            pc_status st = pc_engine_schema_sync(e, reg, err);
            if (st != PC_OK) return st;
        }
    }
    return pc_engine_schema_sync(e, name, err);
}

/* The plan's highest position must leave one for the answer: checked before
 * anything is computed, since positions (not the count of tokens, which
 * skips unselected union members) are what a context bounds. */
static pc_status check_positions(const pc_engine *e, const pc_plan *plan, const pc_pml_doc *doc, int32_t schema_len,
                                 pc_error *err) {
    int64_t last = -1;
    for (int32_t i = 0; i < plan->n; i++) {
        const int64_t end = (int64_t)plan->items[i].start + plan->items[i].n - 1;
        last = end > last ? end : last;
    }
    if (last + 1 < e->n_ctx) return PC_OK;
    return pc_fail(err, PC_ERR_RANGE,
                   "%s:%u:%u: the prompt's last position is %lld (its text starts after the schema's %d): no position "
                   "is left for an answer in the context of %d", doc->name, doc->root->line, doc->root->col,
                   (long long)last, schema_len, e->n_ctx);
}

/* Parses the prompt, then binds it to its schema and (cached runs) gets the
 * pieces' KV, under the registry's read lock: the plan pins the entries it
 * read, so the schema may be removed as soon as the lock is released. res
 * receives where each piece came from. */
static pc_status plan_prompt(pc_engine *e, const char *xml, size_t len, const char *req, const pc_run_params *p,
                             pc_plan *plan, pc_run_result *res, double *bind_ms, pc_error *err) {
    pc_pml_options o = {.lenient = p->lenient};
    pc_pml_doc *doc = NULL;
    pc_status st = pc_pml_parse_prompt(xml, len, req ? req : "request", &o, &doc, err);
    if (st != PC_OK) return st;
    st = sync_named(e, doc, p->tenant, err);
    if (st != PC_OK) {
        pc_pml_doc_free(doc);
        return st;
    }
    pthread_rwlock_rdlock(&e->schemas_lock);
    const pc_schema *s = NULL;
    int32_t schema_len = 0;
    st = find_schema(e, doc, p->tenant, &s, err);
    if (st == PC_OK) {
        pc_bind_ctx bc = {.tok = e->tok, .chat = e->chat, .default_system = e->default_system};
        const double tb = pc_now_ms();
        st = pc_plan_bind(s, doc, &bc, plan, err);
        *bind_ms = pc_now_ms() - tb;
        schema_len = s->length;
    }
    if (st == PC_OK && plan->n == 0)
        st = pc_fail(err, PC_ERR_INVALID, "%s: the prompt imports nothing and has no text", doc->name);
    if (st == PC_OK) st = check_positions(e, plan, doc, schema_len, err);
    if (st == PC_OK && p->use_cache) st = fetch_pieces(e, s, plan, res, err);
    pthread_rwlock_unlock(&e->schemas_lock);
    pc_pml_doc_free(doc);
    return st;
}

pc_status pc_request_from_pml(pc_engine *e, const char *xml, size_t len, const char *req_name, const pc_run_params *p,
                              pc_request **out, pc_error *err) {
    *out = NULL;
    const double t0 = pc_now_ms();
    pc_plan plan = {0};
    pc_run_result got = {0}; /* pieces and their sources, until the request exists */
    double bind_ms = 0, list_ms = 0;
    pc_status st = plan_prompt(e, xml, len, req_name, p, &plan, &got, &bind_ms, err);
    pc_request *r = NULL;
    if (st == PC_OK && !(r = pc_req_new(e, &p->gen, t0))) st = pc_fail(err, PC_ERR_NOMEM, "out of memory for a request");
    if (st == PC_OK) { /* the pins move to the request: released when it is freed */
        r->pins = plan.kv;
        memset(&plan.kv, 0, sizeof plan.kv);
        r->res.pieces = got.pieces;
        r->res.n_pieces = got.n_pieces;
        r->res.encoded_tokens = got.encoded_tokens;
        r->res.fetch_ms = got.fetch_ms;
        got.pieces = NULL;
    }
    if (st == PC_OK) {
        const double tl = pc_now_ms();
        st = p->use_cache ? items_cached(r, &plan, err) : items_plain(r, &plan, err);
        list_ms = pc_now_ms() - tl;
    }
    if (st == PC_OK) st = record_input(&plan, &r->res, err);
    if (st == PC_OK) st = pc_req_prepare(r, err);
    pc_plan_free(&plan);
    free(got.pieces);
    if (st != PC_OK) {
        pc_request_release(r);
        return st;
    }
    r->res.assemble_ms = bind_ms + list_ms; /* parsing and allocating the request's own KV are not assembly */
    *out = r;
    return PC_OK;
}

pc_status pc_engine_run(pc_engine *e, const char *xml, size_t len, const char *req, const pc_run_params *p,
                        pc_token_cb cb, void *user, pc_run_result *out, pc_error *err) {
    memset(out, 0, sizeof *out);
    pc_request *r = NULL;
    pc_status st = pc_request_from_pml(e, xml, len, req, p, &r, err);
    if (st != PC_OK) return st;
    pc_request_set_callbacks(r, cb, NULL, user);
    st = pc_request_run(r, err);
    if (st != PC_OK) pc_fail_wrap(err, "%s", req ? req : "request");
    if (st == PC_OK) {
        /* the result moves to the caller */
        *out = r->res;
        out->gen.text = pc_buf_take(&r->text);
        memset(&r->res, 0, sizeof r->res);
    }
    pc_request_release(r);
    return st;
}
