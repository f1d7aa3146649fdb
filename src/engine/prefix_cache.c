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
 *
 * Reuse goes to the token, as llama-server's slots do: the prompt's tail
 * after its last full block is kept too (a shorter entry, keyed the same
 * way), and the first block not found whole may still share its first m
 * tokens with a stored entry that follows the same prefix (prefix_index.h
 * finds it by comparing tokens). Those m tokens' KV depend only on
 * themselves and what precedes them, so they are copied from that entry
 * into the request's own span (pc_req_seed_head) instead of computed: the
 * same bits. Only on the CPU: there a copy is a memcpy; on the GPU the
 * request's spans are device memory and the whole blocks are what is reused.
 * On the GPU the store keeps a pinned host copy of each new block (its tiers
 * hold host memory) and adopts the block's device span as its device copy, so
 * a later request reads the block in place; GPU attention and products are
 * not bitwise independent of the split, so there a hit is close, not exact. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "engine/prefix_index.h"
#include "engine/request.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/sha256.h"

/* What a request keeps of its prompt's keys (one allocation: request.c frees it). */
typedef struct prefix_plan {
    int32_t n_blocks;          /* full blocks before the last token; block n_blocks is the tail */
    int32_t n;                 /* prompt tokens */
    const char *tenant;        /* "" = shared; a copy inside this allocation */
    pc_store_key *key;         /* [n_blocks + 1]: block k's store key, the tail's last */
    uint8_t (*chain)[32];      /* [n_blocks + 1]: chain[k] = c_{k-1}, what block k follows */
    uint8_t (*parent)[32];     /* [n_blocks + 1]: SHA-256(c_{k-1}, tenant): block k's parent in the index */
} prefix_plan;

static const uint8_t *prefix_group(void) {
    /* every block is in one group: no pin, no TTL, plain LRU */
    static const uint8_t g[32] = {'p', 'c', 'a', 'c', 'h', 'e', ' ', 'p', 'r', 'e', 'f', 'i', 'x'};
    return g;
}

static prefix_plan *plan_alloc(int32_t n_blocks, const char *tenant) {
    const size_t nk = (size_t)n_blocks + 1, tl = strlen(tenant) + 1;
    prefix_plan *pp = malloc(sizeof *pp + nk * (sizeof(pc_store_key) + 64) + tl);
    if (!pp) return NULL;
    pp->key = (pc_store_key *)(pp + 1);
    pp->chain = (uint8_t(*)[32])(pp->key + nk);
    pp->parent = pp->chain + nk;
    pp->tenant = memcpy((char *)(pp->parent + nk), tenant, tl);
    pp->n_blocks = n_blocks;
    return pp;
}

/* The chain link after prev over tokens[0..n), and its store key at positions [start, start + n). */
static pc_status entry_key(const pc_engine *e, const prefix_plan *pp, const uint8_t prev[32], const int32_t *tokens,
                           int32_t start, int32_t n, uint8_t link[32], pc_store_key *key, pc_error *err) {
    pc_sha256 h;
    pc_sha256_init(&h);
    pc_sha256_field(&h, prev, 32);
    pc_sha256_field(&h, tokens, (size_t)n * sizeof *tokens);
    if (pc_sha256_final(&h, link) != 0) return pc_fail(err, PC_ERR_NOMEM, "out of memory hashing");
    const pc_store_key_parts parts = {.model = e->model_digest, .schema = link, .path = "prefix", .config = "",
                                      .start = start, .n = n, .elem = PC_STORE_ELEM_F16, .tenant = pp->tenant};
    return pc_store_key_derive(&parts, key, err);
}

static pc_status parent_of(const prefix_plan *pp, int32_t k, pc_error *err) {
    pc_sha256 h;
    pc_sha256_init(&h);
    pc_sha256_field(&h, pp->chain[k], 32);
    pc_sha256_field(&h, pp->tenant, strlen(pp->tenant));
    return pc_sha256_final(&h, pp->parent[k]) == 0 ? PC_OK : pc_fail(err, PC_ERR_NOMEM, "out of memory hashing");
}

static pc_status plan_keys(const pc_engine *e, const int32_t *tokens, size_t n, const char *tenant, prefix_plan **out,
                           pc_error *err) {
    const int32_t B = PC_PREFIX_BLOCK;
    prefix_plan *pp = *out = plan_alloc((int32_t)((n - 1) / (size_t)B), tenant ? tenant : "");
    if (!pp) return pc_fail(err, PC_ERR_NOMEM, "out of memory keying a prompt of %zu tokens", n);
    pp->n = (int32_t)n;
    static const char SCHEME[] = "pcache prefix blocks v1";
    if (pc_sha256_digest(SCHEME, sizeof SCHEME - 1, pp->chain[0]) != 0)
        return pc_fail(err, PC_ERR_NOMEM, "out of memory hashing");
    pc_status st = PC_OK;
    for (int32_t k = 0; st == PC_OK && k <= pp->n_blocks; k++) {
        const int32_t len = k < pp->n_blocks ? B : (int32_t)n - k * B;
        uint8_t link[32];
        st = entry_key(e, pp, pp->chain[k], tokens + (size_t)k * B, k * B, len, link, &pp->key[k], err);
        if (st == PC_OK && k < pp->n_blocks) memcpy(pp->chain[k + 1], link, 32);
        if (st == PC_OK) st = parent_of(pp, k, err);
    }
    return st;
}

static pc_store_desc entry_desc(const prefix_plan *pp, const pc_store_key *key, int32_t start, int32_t n,
                                const int32_t *tokens) {
    return (pc_store_desc){.key = *key, .group = prefix_group(), .start = start, .n = n, .tokens = tokens,
                           .label = "prefix-block", .memory_only = true, .tenant = *pp->tenant ? pp->tenant : NULL};
}

/* The leading blocks the store holds, pinned, as cached items; *hits: how many. */
static pc_status add_hits(pc_request *r, const prefix_plan *pp, const int32_t *tokens, int32_t *hits, pc_error *err) {
    const int32_t B = PC_PREFIX_BLOCK;
    for (*hits = 0; *hits < pp->n_blocks; (*hits)++) {
        const int32_t k = *hits;
        const pc_store_desc d = entry_desc(pp, &pp->key[k], k * B, B, tokens + (size_t)k * B);
        pc_store_entry *en = NULL;
        pc_error miss = {0};
        if (pc_store_fetch(r->e->store, &d, &en, NULL, &miss) != PC_OK) break;
        r->prefix_pins[r->n_prefix_pins++] = en;
        pc_prefix_index_note(r->e->prefix_index, pp->parent[k], d.tokens, B); /* still wanted: refreshed */
        /* the device copy where the store keeps or can make one: read in place, not streamed */
        bool up = false;
        pc_kv_span *dev = pc_store_device_acquire(r->e->store, en, &up);
        pc_status st = pc_req_add_cached(r, dev ? dev : (pc_kv_span *)pc_store_entry_span(en), err);
        pc_kv_span_release(dev); /* the request's item holds its own reference */
        if (st != PC_OK) return st;
    }
    return PC_OK;
}

/* Whether requests compute into host memory, where a head copy is a memcpy. */
static bool host_kv(const pc_engine *e) { return pc_backend_shared_kind(e->dev) == PC_BACKEND_CPU; }

/* Block k, the first not found whole: the stored entry after the same prefix
 * sharing the most leading tokens with it, pinned (*en; NULL: none), and how
 * many of them to copy (*m, short of the block's last token, which is computed). */
static void find_head(pc_request *r, const prefix_plan *pp, const int32_t *tokens, int32_t k, pc_store_entry **en,
                      int32_t *m) {
    *en = NULL;
    *m = 0;
    const int32_t B = PC_PREFIX_BLOCK, start = k * B, len = k < pp->n_blocks ? B : pp->n - start;
    if (!host_kv(r->e) || len < 2) return;
    pc_prefix_cand c[PC_PREFIX_INDEX_WAYS];
    const int32_t nc = pc_prefix_index_find(r->e->prefix_index, pp->parent[k], tokens + start, len - 1, c);
    for (int32_t i = 0; i < nc && !*en; i++) {
        uint8_t link[32];
        pc_store_key key;
        pc_error miss = {0};
        if (entry_key(r->e, pp, pp->chain[k], c[i].tokens, start, c[i].n, link, &key, &miss) != PC_OK) return;
        const pc_store_desc d = entry_desc(pp, &key, start, c[i].n, c[i].tokens);
        if (pc_store_fetch(r->e->store, &d, en, NULL, &miss) == PC_OK) *m = c[i].common;
    }
}

/* What the store keeps of a block: host memory (its tiers hash and account K
 * and V there). A block computed in GPU memory is copied to pinned host
 * memory; NULL when that copy cannot be made. */
static pc_kv_span *store_copy(const pc_request *r, pc_kv_span *span) {
    if (pc_kv_span_loc(span) != PC_KV_DEVICE) return pc_kv_span_retain(span);
    return pc_backend_shared_host_copy(r->e->dev, span);
}

static void put_block(pc_request *r, const prefix_plan *pp, const pc_req_item *it) {
    const int32_t k = it->pos[0] / PC_PREFIX_BLOCK;
    const pc_store_desc d = entry_desc(pp, &pp->key[k], it->pos[0], it->n, it->tokens);
    pc_kv_span *keep = store_copy(r, it->span);
    if (!keep) return;
    pc_store_entry *en = NULL;
    pc_error err = {0};
    if (pc_store_put(r->e->store, &d, keep, &en, &err) != PC_OK) return;
    if (pc_kv_span_loc(it->span) == PC_KV_DEVICE) (void)pc_store_device_adopt(r->e->store, en, it->span);
    pc_store_release(r->e->store, en);
    pc_prefix_index_note(r->e->prefix_index, pp->parent[k], it->tokens, it->n);
}

/* The prompt's tail (its last item, which goes on to hold the answer): its
 * prompt rows copied into an entry of their own, for a later prompt that
 * shares some of them. */
static void put_tail(pc_request *r, const prefix_plan *pp, const pc_req_item *it) {
    const int32_t k = pp->n_blocks;
    if (!pc_store_exists(r->e->store, &pp->key[k])) {
        pc_kv_span *copy = pc_kv_span_create(it->span->n_layer, it->span->dim, it->n);
        pc_error err = {0};
        if (!copy || pc_kv_span_copy_head(copy, it->span, it->n, &err) != PC_OK) {
            pc_kv_span_release(copy);
            return;
        }
        pc_kv_span_freeze(copy);
        const pc_store_desc d = entry_desc(pp, &pp->key[k], it->pos[0], it->n, it->tokens);
        if (pc_store_put(r->e->store, &d, copy, NULL, &err) != PC_OK) return;
    }
    pc_prefix_index_note(r->e->prefix_index, pp->parent[k], it->tokens, it->n);
}

/* On the stepping thread once the prompt is computed: its new blocks go to the
 * store; one computed in GPU memory also becomes the store's device copy (no
 * upload when the next request reads it); on the CPU the tail too. Out of
 * memory or over the tenant's quota: not kept, no harm. */
static void put_blocks(void *user, pc_request *r) {
    (void)user;
    const prefix_plan *pp = r->prefix_plan;
    for (int32_t i = 0; i < r->n_items; i++) {
        const pc_req_item *it = &r->items[i];
        if (it->fresh && it->keep) put_block(r, pp, it);
    }
    const pc_req_item *last = &r->items[r->n_items - 1];
    if (host_kv(r->e) && last->span->n == last->n) put_tail(r, pp, last);
}

/* The request's items; *head (pinned in prefix_pins) and *m: what to seed its
 * first fresh item with once prepared. */
static pc_status build(pc_request *r, const int32_t *tokens, size_t n, const char *tenant, const pc_kv_span **head,
                       int32_t *m, pc_error *err) {
    prefix_plan *pp = NULL;
    pc_status st = plan_keys(r->e, tokens, n, tenant, &pp, err);
    r->prefix_plan = pp; /* the request frees it */
    if (st == PC_OK && !(r->prefix_pins = calloc((size_t)pp->n_blocks + 1, sizeof *r->prefix_pins)))
        st = pc_fail(err, PC_ERR_NOMEM, "out of memory for prefix blocks");
    int32_t hits = 0;
    if (st == PC_OK) st = add_hits(r, pp, tokens, &hits, err);
    pc_store_entry *en = NULL;
    if (st == PC_OK) find_head(r, pp, tokens, hits, &en, m);
    if (en) {
        r->prefix_pins[r->n_prefix_pins++] = en;
        *head = pc_store_entry_span(en);
    }
    const int32_t B = PC_PREFIX_BLOCK;
    for (int32_t k = hits; st == PC_OK && k < pp->n_blocks; k++)
        st = pc_req_add_fresh(r, tokens + (size_t)k * B, NULL, k * B, B, true, err);
    const size_t done = (size_t)pp->n_blocks * (size_t)B;
    if (st == PC_OK) st = pc_req_add_fresh(r, tokens + done, NULL, (int32_t)done, (int32_t)(n - done), false, err);
    if (st == PC_OK) st = pc_req_set_history(r, tokens, n, err);
    if (st == PC_OK && (hits < pp->n_blocks || host_kv(r->e))) r->on_prefilled = put_blocks;
    return st;
}

pc_status pc_request_from_prefix(pc_engine *e, const int32_t *prompt, size_t n, const pc_gen_params *p,
                                 const char *tenant, pc_request **out, pc_error *err) {
    *out = NULL;
    if (n == 0) return pc_fail(err, PC_ERR_INVALID, "empty prompt");
    if (n > (size_t)e->n_ctx) return pc_fail(err, PC_ERR_RANGE, "prompt of %zu tokens does not fit the context of %d", n, e->n_ctx);
    pc_request *r = pc_req_new(e, p, pc_now_ms());
    if (!r) return pc_fail(err, PC_ERR_NOMEM, "out of memory for a request");
    const pc_kv_span *head = NULL;
    int32_t m = 0;
    pc_status s = build(r, prompt, n, tenant, &head, &m, err);
    if (s == PC_OK) s = pc_req_prepare(r, err);
    if (s == PC_OK && head) s = pc_req_seed_head(r, head, m, err);
    if (s != PC_OK) {
        pc_request_release(r);
        return s;
    }
    *out = r;
    return PC_OK;
}
