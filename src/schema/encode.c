/* encode.c - a schema's piece KV, from the module store or computed, each
 * piece exactly as the scaffold's prefill would compute it.
 *
 * A piece is encoded in the configuration of its "home": the innermost
 * non-scaffold union member among its owner's ancestors (itself included), or
 * the scaffold when there is none. The configuration of a home Y selects, in
 * every union on Y's ancestor chain, the member on that chain (and so not
 * that union's scaffold member, which shares its positions), and in every
 * other union its scaffold member. A piece attends over the pieces of its
 * configuration that precede it: those of its own home before it, and (for Y
 * not the scaffold) those of enclosing configurations before Y's start.
 * Pieces are stored in document order and a configuration's pieces are in
 * position order, so "precede" is "lower index".
 *
 * pc_piece_obtain fetches a piece from the store, or computes it over its
 * context - each context piece obtained the same way, recursively - and puts
 * it into the store. Every piece is computed alone over the same span list a
 * whole-schema pass would build, and attention's result does not depend on
 * how the context is split into spans (kv.h), so a piece rebuilt after an
 * eviction is bit for bit what the first encoding stored. */
#include <stdlib.h>
#include <string.h>

#include "schema/schema.h"
#include "util/clock.h"
#include "util/error.h"

/* The member that union u holds in the configuration of home y: the member
 * on y's ancestor chain when the chain passes through u, else u's scaffold
 * member (-1: none). */
static int32_t chosen_member(const pc_schema *s, int32_t u, int32_t y) {
    for (int32_t x = y; x != PC_ROOT; x = s->modules[x].parent)
        if (s->modules[x].union_id == u) return x;
    return s->unions[u].scaffold;
}

/* Is module x selected in the configuration of home y (PC_ROOT: the
 * scaffold)? Only when every union on x's ancestor chain holds the member
 * on that chain: a scaffold member is not selected where y's chain chose
 * another member of its union, although both sit at the same positions. */
static bool selected(const pc_schema *s, int32_t x, int32_t y) {
    for (; x != PC_ROOT; x = s->modules[x].parent) {
        const int32_t u = s->modules[x].union_id;
        if (u >= 0 && chosen_member(s, u, y) != x) return false;
    }
    return true;
}

static int32_t home_of_piece(const pc_schema *s, const pc_piece *p) {
    return p->owner == PC_ROOT ? PC_ROOT : pc_schema_home(s, p->owner);
}

/* Is piece q in the context of a piece of home y (q precedes it by index)? */
static bool in_context(const pc_schema *s, int32_t q, int32_t y) {
    const pc_piece *p = &s->pieces[q];
    if (p->n == 0 || !selected(s, p->owner, y)) return false;
    if (home_of_piece(s, p) == y) return true;
    return y != PC_ROOT && p->start < s->modules[y].start;
}

pc_status pc_piece_kv_init(pc_piece_kv *pk, const pc_schema *s, pc_error *err) {
    memset(pk, 0, sizeof *pk);
    const size_t n = (size_t)s->n_pieces + 1;
    pk->n = s->n_pieces;
    pk->entry = calloc(n, sizeof *pk->entry);
    pk->local = calloc(n, sizeof *pk->local);
    pk->dev = calloc(n, sizeof *pk->dev);
    pk->source = calloc(n, sizeof *pk->source);
    pk->have = calloc(n, sizeof *pk->have);
    if (!pk->entry || !pk->local || !pk->dev || !pk->source || !pk->have) {
        pc_piece_kv_release(pk, NULL);
        return pc_fail(err, PC_ERR_NOMEM, "out of memory gathering the KV of schema '%s'", s->name);
    }
    return PC_OK;
}

void pc_piece_kv_release(pc_piece_kv *pk, pc_store *store) {
    for (int32_t i = 0; pk->entry && i < pk->n; i++) {
        if (pk->dev) pc_kv_span_release(pk->dev[i]);
        if (pk->entry[i]) pc_store_release(store, pk->entry[i]);
        if (pk->local) pc_kv_span_release(pk->local[i]);
    }
    free(pk->entry);
    free(pk->local);
    free(pk->dev);
    free(pk->source);
    free(pk->have);
    memset(pk, 0, sizeof *pk);
}

const pc_kv_span *pc_piece_kv_span(const pc_piece_kv *pk, int32_t i) {
    if (pk->dev[i]) return pk->dev[i];
    if (pk->entry[i]) return pc_store_entry_span(pk->entry[i]);
    return pk->local[i];
}

void pc_encoder_end(pc_encoder *enc) {
    if (enc->own_f) pc_forward_free(enc->f);
    enc->f = NULL;
    enc->own_f = false;
}

static pc_status encoder_forward(pc_encoder *enc, pc_error *err) {
    if (enc->f) return PC_OK;
    if (!enc->new_forward) return pc_fail(err, PC_ERR_INVALID, "an encoder without a forward state");
    pc_status st = enc->new_forward(enc->forward_ctx, &enc->f, err);
    enc->own_f = st == PC_OK;
    return st;
}

/* What the store keeps of a new span: host memory (its tiers write and hash
 * K and V). A span in GPU memory is copied to pinned host memory, which the
 * GPU reads back layer by layer at the link's full speed; NULL when that copy
 * cannot be made (the piece then stays local, as when the store refuses it). */
static pc_kv_span *store_copy(pc_encoder *enc, pc_kv_span *span) {
    if (pc_kv_span_loc(span) != PC_KV_DEVICE) return pc_kv_span_retain(span);
    return pc_forward_copy_span(enc->f, span, PC_KV_PINNED);
}

/* Runs piece i over ctx; the new frozen span goes to the store (cached
 * pieces) or stays in pk (cache="false" pieces, or a store that refused it). */
static pc_status compute(pc_piece_kv *pk, const pc_schema *s, pc_encoder *enc, int32_t i, const pc_kv_list *ctx,
                         pc_error *err) {
    const pc_piece *p = &s->pieces[i];
    pc_status fst = encoder_forward(enc, err);
    if (fst != PC_OK) return fst;
    pc_kv_span *span = pc_forward_new_span(enc->f, p->n); /* where the backend writes KV: GPU memory on CUDA */
    int32_t *pos = malloc((size_t)p->n * sizeof *pos);
    if (!span || !pos) {
        free(pos);
        pc_kv_span_release(span);
        return pc_fail(err, PC_ERR_NOMEM, "out of memory encoding schema '%s'", s->name);
    }
    for (int32_t t = 0; t < p->n; t++) pos[t] = p->start + t;
    const double t0 = pc_now_ms();
    pc_status st = pc_forward_run(enc->f, ctx, span, p->tokens, pos, p->n, PC_LOGITS_NONE, NULL, err);
    pk->encode_ms += pc_now_ms() - t0;
    free(pos);
    if (st != PC_OK) {
        pc_kv_span_release(span);
        return pc_fail_wrap(err, "%s:%u:%u: encoding", s->doc->name, p->line, p->col);
    }
    pc_kv_span_freeze(span);
    pk->local[i] = span;
    pc_kv_span *keep = p->cached ? store_copy(enc, span) : NULL;
    if (keep) { /* the store takes a reference of its own; a refusal (no memory) leaves the local one */
        pc_store_desc d = pc_schema_piece_desc(s, i);
        pc_error perr = {0};
        const pc_status ps = pc_store_put(enc->store, &d, keep, &pk->entry[i], &perr);
        if (ps == PC_OK) {
            /* computed in device memory: it becomes the device copy, no upload */
            if (pc_store_device_adopt(enc->store, pk->entry[i], span)) pk->dev[i] = pc_kv_span_retain(span);
            pc_kv_span_release(span);
            pk->local[i] = NULL;
        } else if (ps == PC_ERR_QUOTA) { /* the tenant's share of memory is spoken for: refuse, never hold it outside */
            return pc_fail(err, ps, "%s:%u:%u: schema '%s'%s%s: %s", s->doc->name, p->line, p->col, s->name,
                           *s->tenant ? " of tenant " : "", s->tenant, perr.msg);
        }
    }
    pk->source[i] = PC_SOURCE_ENCODED;
    pk->have[i] = true;
    pk->encoded_tokens += p->n;
    pk->encoded_pieces++;
    if (enc->progress)
        enc->progress(enc->user, pk->encoded_pieces, s->n_pieces, pk->encoded_tokens,
                      pk->n_tokens > pk->encoded_tokens ? pk->n_tokens : pk->encoded_tokens, pk->encode_ms);
    return PC_OK;
}

pc_status pc_piece_obtain(pc_piece_kv *pk, const pc_schema *s, pc_encoder *enc, int32_t i, pc_error *err) {
    if (pk->have[i]) return PC_OK;
    const pc_piece *p = &s->pieces[i];
    if (p->n == 0) {
        pk->have[i] = true;
        return PC_OK;
    }
    if (p->cached) {
        pc_store_desc d = pc_schema_piece_desc(s, i);
        pc_status st = pc_store_fetch(enc->store, &d, &pk->entry[i], &pk->source[i], err);
        if (st == PC_OK) {
            bool up = false; /* the device copy where the store keeps or can make one: read in place, not streamed */
            pk->dev[i] = pc_store_device_acquire(enc->store, pk->entry[i], &up);
            pk->uploaded_pieces += up;
            pk->have[i] = true;
            return PC_OK;
        }
        if (st != PC_ERR_NOT_FOUND) return st;
    }
    const int32_t y = home_of_piece(s, p);
    pc_kv_list ctx = {0};
    pc_status st = PC_OK;
    for (int32_t q = 0; q < i && st == PC_OK; q++) {
        if (!in_context(s, q, y)) continue;
        st = pc_piece_obtain(pk, s, enc, q, err);
        if (st == PC_OK) st = pc_kv_list_push(&ctx, pc_piece_kv_span(pk, q), err);
    }
    if (st == PC_OK) st = compute(pk, s, enc, i, &ctx, err);
    pc_kv_list_free(&ctx);
    return st;
}

/* The loading pass of a registration: pieces left in slower tiers come into
 * memory (fetch promotes them), as many as the memory budget holds - no more,
 * or a schema larger than the budget would only evict its own first pieces. */
static pc_status warm(pc_piece_kv *pk, const pc_schema *s, pc_encoder *enc, pc_schema_ready *out, pc_error *err) {
    const int32_t dim = enc->m->hp.n_head_kv * enc->m->hp.head_dim;
    const size_t budget = pc_store_memory_budget(enc->store);
    size_t held = 0;
    for (int32_t i = 0; i < s->n_pieces; i++) {
        const pc_piece *p = &s->pieces[i];
        if (!p->cached || p->n == 0) continue;
        const size_t bytes = pc_store_payload_bytes(enc->m->hp.n_layer, dim, p->n);
        if (budget && held + bytes > budget) {
            out->not_loaded += !pk->have[i];
            continue;
        }
        held += bytes;
        if (pk->have[i]) continue;
        pc_status st = pc_piece_obtain(pk, s, enc, i, err);
        if (st != PC_OK) return st;
    }
    return PC_OK;
}

pc_status pc_schema_encode(const pc_schema *s, pc_encoder *enc, pc_schema_ready *out, pc_error *err) {
    memset(out, 0, sizeof *out);
    if (!s->keyed) return pc_fail(err, PC_ERR_INVALID, "schema '%s' has no store keys", s->name);
    const double t0 = pc_now_ms();
    pc_piece_kv pk;
    pc_status st = pc_piece_kv_init(&pk, s, err);
    if (st != PC_OK) return st;
    bool *missing = calloc((size_t)s->n_pieces + 1, sizeof *missing);
    if (!missing) st = pc_fail(err, PC_ERR_NOMEM, "out of memory encoding schema '%s'", s->name);
    for (int32_t i = 0; st == PC_OK && i < s->n_pieces; i++) {
        const pc_piece *p = &s->pieces[i];
        missing[i] = p->cached && p->n > 0 && !pc_store_exists(enc->store, &p->key);
        if (missing[i]) pk.n_tokens += p->n;
    }
    for (int32_t i = 0; st == PC_OK && i < s->n_pieces; i++)
        if (missing[i]) st = pc_piece_obtain(&pk, s, enc, i, err);
    if (st == PC_OK) st = warm(&pk, s, enc, out, err);
    for (int32_t i = 0; i < s->n_pieces; i++) {
        const pc_piece *p = &s->pieces[i];
        if (!p->cached || p->n == 0) continue;
        out->kv_bytes += (size_t)p->n * pc_model_kv_bytes_per_token(enc->m);
        if (pk.have[i]) out->pieces_from[pk.source[i]]++;
    }
    out->encoded_tokens = pk.encoded_tokens;
    out->encoded_pieces = pk.encoded_pieces;
    out->encode_ms = pk.encode_ms;
    free(missing);
    pc_piece_kv_release(&pk, enc->store);
    out->ready_ms = pc_now_ms() - t0;
    return st;
}
