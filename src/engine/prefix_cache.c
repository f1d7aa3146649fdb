/* prefix_cache.c - the automatic prefix cache of plain prompts.
 *
 * A plain prompt is cut into blocks of PC_PREFIX_BLOCK tokens. Block k's KV
 * depends on every token before it (attention is causal), so its key is a
 * hash chain, as vLLM's and SGLang's: c_k = SHA-256(c_{k-1}, block k's
 * tokens), c_{-1} naming the scheme; the store key adds the model, the
 * positions and the tenant, so a tenant never hits another tenant's blocks.
 * Blocks live in the module store's memory tier only (memory_only): its
 * budget and LRU govern them beside the schemas' pieces, and a request pins
 * the blocks it reads for its life.
 *
 * A request takes the longest run of leading blocks the store holds as cached
 * spans. The full blocks after it become fresh items of their own, frozen
 * once computed and put in the store when the prompt is prefilled; the rest
 * (at least one token: its logits start generation) is the last fresh item.
 * Attention gives the same bits however the sequence is split into spans
 * (kernels/cpu/attention.c), so a hit changes no output bit.
 * On the GPU the store keeps a pinned host copy of each new block (its tiers
 * hold host memory) and adopts the block's device span as its device copy, so
 * a later request reads the block in place; GPU attention and products are
 * not bitwise independent of the split, so there a hit is close, not exact. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "engine/request.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/sha256.h"

typedef struct prefix_plan {
    int32_t n_blocks;          /* full blocks before the last token */
    uint8_t (*chain)[32];      /* [n_blocks] c_k */
    pc_store_key *key;         /* [n_blocks] */
    const char *tenant;        /* the request's (not owned) */
} prefix_plan;

static const uint8_t *prefix_group(void) {
    /* every block is in one group: no pin, no TTL, plain LRU */
    static const uint8_t g[32] = {'p', 'c', 'a', 'c', 'h', 'e', ' ', 'p', 'r', 'e', 'f', 'i', 'x'};
    return g;
}

static pc_status plan_keys(const pc_engine *e, const int32_t *tokens, size_t n, const char *tenant, prefix_plan *pp,
                           pc_error *err) {
    const int32_t B = PC_PREFIX_BLOCK;
    pp->n_blocks = (int32_t)((n - 1) / (size_t)B);
    if (pp->n_blocks == 0) return PC_OK;
    pp->chain = malloc((size_t)pp->n_blocks * sizeof *pp->chain);
    pp->key = malloc((size_t)pp->n_blocks * sizeof *pp->key);
    if (!pp->chain || !pp->key) return pc_fail(err, PC_ERR_NOMEM, "out of memory keying %d prefix blocks", pp->n_blocks);
    static const char SCHEME[] = "pcache prefix blocks v1";
    pc_sha256_digest(SCHEME, sizeof SCHEME - 1, pp->chain[0]); /* c_{-1}, overwritten below */
    uint8_t prev[32];
    memcpy(prev, pp->chain[0], 32);
    for (int32_t k = 0; k < pp->n_blocks; k++) {
        pc_sha256 h;
        pc_sha256_init(&h);
        pc_sha256_field(&h, prev, 32);
        pc_sha256_field(&h, tokens + (size_t)k * B, (size_t)B * sizeof *tokens);
        if (pc_sha256_final(&h, pp->chain[k]) != 0) return pc_fail(err, PC_ERR_NOMEM, "out of memory hashing");
        memcpy(prev, pp->chain[k], 32);
        const pc_store_key_parts parts = {.model = e->model_digest, .schema = pp->chain[k], .path = "prefix",
                                          .config = "", .start = k * B, .n = B, .elem = PC_STORE_ELEM_F16,
                                          .tenant = tenant ? tenant : ""};
        pc_status st = pc_store_key_derive(&parts, &pp->key[k], err);
        if (st != PC_OK) return st;
    }
    return PC_OK;
}

static pc_store_desc block_desc(const prefix_plan *pp, const int32_t *tokens, int32_t k) {
    return (pc_store_desc){.key = pp->key[k], .group = prefix_group(), .start = k * PC_PREFIX_BLOCK,
                           .n = PC_PREFIX_BLOCK, .tokens = tokens + (size_t)k * PC_PREFIX_BLOCK,
                           .label = "prefix-block", .memory_only = true, .tenant = pp->tenant};
}

/* The leading blocks the store holds, pinned, as cached items; *hits: how many. */
static pc_status add_hits(pc_request *r, const prefix_plan *pp, const int32_t *tokens, int32_t *hits, pc_error *err) {
    for (*hits = 0; *hits < pp->n_blocks; (*hits)++) {
        const pc_store_desc d = block_desc(pp, tokens, *hits);
        pc_store_entry *en = NULL;
        pc_error miss = {0};
        if (pc_store_fetch(r->e->store, &d, &en, NULL, &miss) != PC_OK) break;
        r->prefix_pins[r->n_prefix_pins++] = en;
        /* the device copy where the store keeps or can make one: read in place, not streamed */
        bool up = false;
        pc_kv_span *dev = pc_store_device_acquire(r->e->store, en, &up);
        pc_status st = pc_req_add_cached(r, dev ? dev : (pc_kv_span *)pc_store_entry_span(en), err);
        pc_kv_span_release(dev); /* the request's item holds its own reference */
        if (st != PC_OK) return st;
    }
    return PC_OK;
}

/* What the store keeps of a block: host memory (its tiers hash and account K
 * and V there). A block computed in GPU memory is copied to pinned host
 * memory; NULL when that copy cannot be made. */
static pc_kv_span *store_copy(const pc_request *r, pc_kv_span *span) {
    if (pc_kv_span_loc(span) != PC_KV_DEVICE) return pc_kv_span_retain(span);
    return pc_backend_shared_host_copy(r->e->dev, span);
}

/* On the stepping thread once the prompt is computed: its new blocks go to the
 * store; one computed in GPU memory also becomes the store's device copy (no
 * upload when the next request reads it). Out of memory or over the tenant's
 * quota: not kept, no harm. */
static void put_blocks(void *user, pc_request *r) {
    (void)user;
    for (int32_t i = 0; i < r->n_items; i++) {
        const pc_req_item *it = &r->items[i];
        if (!it->fresh || !it->keep) continue;
        const int32_t k = it->pos[0] / PC_PREFIX_BLOCK;
        const pc_store_desc d = {.key = r->prefix_keys[k], .group = prefix_group(), .start = it->pos[0], .n = it->n,
                                 .tokens = it->tokens, .label = "prefix-block", .memory_only = true,
                                 .tenant = r->prefix_tenant};
        pc_kv_span *keep = store_copy(r, it->span);
        if (!keep) continue;
        pc_store_entry *en = NULL;
        pc_error err = {0};
        if (pc_store_put(r->e->store, &d, keep, &en, &err) != PC_OK) continue;
        if (pc_kv_span_loc(it->span) == PC_KV_DEVICE) (void)pc_store_device_adopt(r->e->store, en, it->span);
        pc_store_release(r->e->store, en);
    }
}

static pc_status build(pc_request *r, const int32_t *tokens, size_t n, const char *tenant, pc_error *err) {
    prefix_plan pp = {.tenant = tenant};
    pc_status st = plan_keys(r->e, tokens, n, tenant, &pp, err);
    if (st == PC_OK && pp.n_blocks) {
        r->prefix_pins = calloc((size_t)pp.n_blocks, sizeof *r->prefix_pins);
        if (!r->prefix_pins) st = pc_fail(err, PC_ERR_NOMEM, "out of memory for prefix blocks");
    }
    int32_t hits = 0;
    if (st == PC_OK) st = add_hits(r, &pp, tokens, &hits, err);
    const int32_t B = PC_PREFIX_BLOCK;
    for (int32_t k = hits; st == PC_OK && k < pp.n_blocks; k++)
        st = pc_req_add_fresh(r, tokens + (size_t)k * B, NULL, k * B, B, true, err);
    const size_t done = (size_t)pp.n_blocks * (size_t)B;
    if (st == PC_OK) st = pc_req_add_fresh(r, tokens + done, NULL, (int32_t)done, (int32_t)(n - done), false, err);
    if (st == PC_OK) st = pc_req_set_history(r, tokens, n, err);
    if (st == PC_OK && hits < pp.n_blocks) { /* some blocks are new: keep their keys for put_blocks */
        r->prefix_keys = pp.key;
        pp.key = NULL;
        r->on_prefilled = put_blocks;
        if (tenant && *tenant && !(r->prefix_tenant = strdup(tenant)))
            st = pc_fail(err, PC_ERR_NOMEM, "out of memory for a request");
    }
    free(pp.chain);
    free(pp.key);
    return st;
}

pc_status pc_request_from_prefix(pc_engine *e, const int32_t *prompt, size_t n, const pc_gen_params *p,
                                 const char *tenant, pc_request **out, pc_error *err) {
    *out = NULL;
    if (n == 0) return pc_fail(err, PC_ERR_INVALID, "empty prompt");
    if (n > (size_t)e->n_ctx) return pc_fail(err, PC_ERR_RANGE, "prompt of %zu tokens does not fit the context of %d", n, e->n_ctx);
    pc_request *r = pc_req_new(e, p, pc_now_ms());
    if (!r) return pc_fail(err, PC_ERR_NOMEM, "out of memory for a request");
    pc_status s = build(r, prompt, n, tenant, err);
    if (s == PC_OK) s = pc_req_prepare(r, err);
    if (s != PC_OK) {
        pc_request_release(r);
        return s;
    }
    *out = r;
    return PC_OK;
}
