/* kv_span.c - allocation, growth, freezing and reference counting of KV spans. */
#include <stdlib.h>
#include <string.h>

#include "kv/kv.h"
#include "util/buf.h"
#include "util/error.h"

static int32_t round_cap(int32_t cap) {
    if (cap < PC_KV_BLOCK) return PC_KV_BLOCK;
    return cap > INT32_MAX - PC_KV_BLOCK ? INT32_MAX / PC_KV_BLOCK * PC_KV_BLOCK
                                         : (cap + PC_KV_BLOCK - 1) / PC_KV_BLOCK * PC_KV_BLOCK;
}

/* Keys are zeroed: the lanes of a last, partial block are read (not used) by attention. */
static bool alloc_arrays(pc_kv_span *s, int32_t cap) {
    const size_t bytes = pc_kv_array_bytes(s->n_layer, s->dim, cap);
    s->pos = malloc((size_t)cap * sizeof *s->pos);
    if (s->mem) {
        s->k = s->mem->alloc(s->mem->ctx, bytes);
        s->v = s->mem->alloc(s->mem->ctx, bytes);
    } else {
        s->k = calloc(bytes / sizeof(pc_f16), sizeof(pc_f16));
        s->v = malloc(bytes);
    }
    return s->pos && s->k && s->v;
}

static void free_arrays(pc_kv_span *s) {
    free(s->pos);
    if (s->mem) {
        s->mem->free(s->mem->ctx, s->k);
        s->mem->free(s->mem->ctx, s->v);
    } else {
        free(s->k);
        free(s->v);
    }
}

static bool copy_bytes(const pc_kv_span *s, void *dst, const void *src, size_t bytes) {
    if (!bytes) return true;
    if (s->mem) return s->mem->copy(s->mem->ctx, dst, src, bytes);
    memcpy(dst, src, bytes);
    return true;
}

pc_kv_span *pc_kv_span_create(int32_t n_layer, int32_t dim, int32_t cap) {
    return pc_kv_span_create_in(NULL, n_layer, dim, cap);
}

pc_kv_span *pc_kv_span_create_in(const pc_kv_mem *mem, int32_t n_layer, int32_t dim, int32_t cap) {
    if (n_layer <= 0 || dim <= 0 || cap < 0) return NULL;
    pc_kv_span *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->mem = mem;
    s->n_layer = n_layer;
    s->dim = dim;
    s->cap = round_cap(cap);
    if (!alloc_arrays(s, s->cap)) {
        free_arrays(s);
        free(s);
        return NULL;
    }
    atomic_init(&s->refcount, 1);
    atomic_init(&s->frozen, false);
    return s;
}

pc_kv_span *pc_kv_span_wrap(int32_t n_layer, int32_t dim, int32_t n, int32_t cap, int32_t *pos, pc_f16 *k, pc_f16 *v,
                            void (*release)(void *owner), void *owner) {
    pc_kv_span *s = NULL;
    if (n_layer > 0 && dim > 0 && n >= 0 && cap >= n && cap % PC_KV_BLOCK == 0) s = calloc(1, sizeof *s);
    if (!s) {
        if (release) release(owner);
        return NULL;
    }
    s->n_layer = n_layer;
    s->dim = dim;
    s->n = n;
    s->cap = cap;
    s->pos = pos;
    s->k = k;
    s->v = v;
    s->release = release;
    s->owner = owner;
    atomic_init(&s->refcount, 1);
    atomic_init(&s->frozen, true);
    return s;
}

pc_kv_span *pc_kv_span_retain(pc_kv_span *s) {
    if (s) atomic_fetch_add(&s->refcount, 1);
    return s;
}

void pc_kv_span_release(pc_kv_span *s) {
    if (!s) return;
    if (atomic_fetch_sub(&s->refcount, 1) == 1) {
        if (s->release)
            s->release(s->owner);
        else
            free_arrays(s);
        free(s);
    }
}

void pc_kv_span_freeze(pc_kv_span *s) { atomic_store(&s->frozen, true); }

pc_status pc_kv_span_reserve(pc_kv_span *s, int32_t n_more, pc_error *err) {
    if (atomic_load(&s->frozen)) return pc_fail(err, PC_ERR_INVALID, "KV span is frozen (cached KV is immutable)");
    if (n_more < 0 || s->n > INT32_MAX - n_more) return pc_fail(err, PC_ERR_RANGE, "KV span size overflow");
    int32_t need = s->n + n_more;
    if (need <= s->cap) return PC_OK;
    int32_t cap = s->cap;
    while (cap < need) cap = cap > INT32_MAX / 2 ? need : cap * 2;
    cap = round_cap(cap);
    pc_kv_span t = *s;
    if (!alloc_arrays(&t, cap)) {
        free_arrays(&t);
        return pc_fail(err, PC_ERR_NOMEM, "out of memory growing a KV span to %d tokens", cap);
    }
    memcpy(t.pos, s->pos, (size_t)s->n * sizeof *s->pos);
    t.cap = cap;
    const size_t row = (size_t)s->dim * sizeof(pc_f16);
    const int32_t blocks = (s->n + PC_KV_BLOCK - 1) / PC_KV_BLOCK;
    bool copied = true;
    for (int32_t l = 0; l < s->n_layer && copied; l++)
        copied = copy_bytes(s, pc_kv_k_block(&t, l, 0), pc_kv_k_block(s, l, 0), (size_t)blocks * PC_KV_BLOCK * row) &&
                 copy_bytes(s, pc_kv_v(&t, l, 0), pc_kv_v(s, l, 0), (size_t)s->n * row);
    if (!copied) {
        free_arrays(&t);
        return pc_fail(err, PC_ERR_IO, "device error copying a KV span while growing it to %d tokens", cap);
    }
    free_arrays(s);
    s->pos = t.pos;
    s->k = t.k;
    s->v = t.v;
    s->cap = cap;
    return PC_OK;
}

static pc_status check_head_copy(const pc_kv_span *dst, const pc_kv_span *src, int32_t m, pc_error *err) {
    if (atomic_load(&dst->frozen)) return pc_fail(err, PC_ERR_INVALID, "KV span is frozen (cached KV is immutable)");
    if (dst->n != 0) return pc_fail(err, PC_ERR_INVALID, "KV head copy: the destination already holds %d tokens", dst->n);
    if (dst->n_layer != src->n_layer || dst->dim != src->dim)
        return pc_fail(err, PC_ERR_INVALID, "KV head copy: shapes differ (%d x %d vs %d x %d)", dst->n_layer, dst->dim,
                       src->n_layer, src->dim);
    if (m < 0 || m > src->n || m > dst->cap)
        return pc_fail(err, PC_ERR_RANGE, "KV head copy of %d tokens from a span of %d into one of room %d", m, src->n,
                       dst->cap);
    if (pc_kv_span_loc(dst) == PC_KV_DEVICE || pc_kv_span_loc(src) == PC_KV_DEVICE)
        return pc_fail(err, PC_ERR_UNSUPPORTED, "KV head copy: a span is in device memory");
    return PC_OK;
}

pc_status pc_kv_span_copy_head(pc_kv_span *dst, const pc_kv_span *src, int32_t m, pc_error *err) {
    pc_status st = check_head_copy(dst, src, m, err);
    if (st != PC_OK) return st;
    memcpy(dst->pos, src->pos, (size_t)m * sizeof *src->pos);
    const size_t row = (size_t)src->dim * sizeof(pc_f16);
    const int32_t full = m / PC_KV_BLOCK, rest = m % PC_KV_BLOCK;
    for (int32_t l = 0; l < src->n_layer; l++) {
        memcpy(pc_kv_k_block(dst, l, 0), pc_kv_k_block(src, l, 0), (size_t)full * PC_KV_BLOCK * row);
        /* lanes of the last block past m stay as allocated (zero): they belong to tokens dst has not got */
        for (int32_t d = 0; rest && d < src->dim; d++)
            memcpy(pc_kv_k_at(dst, l, full * PC_KV_BLOCK, d), pc_kv_k_at(src, l, full * PC_KV_BLOCK, d),
                   (size_t)rest * sizeof(pc_f16));
        memcpy(pc_kv_v(dst, l, 0), pc_kv_v(src, l, 0), (size_t)m * row);
    }
    dst->n = m;
    return PC_OK;
}

size_t pc_kv_span_bytes(const pc_kv_span *s) {
    return 2u * (size_t)s->n_layer * (size_t)s->n * (size_t)s->dim * sizeof(pc_f16);
}

size_t pc_kv_span_cap_bytes(const pc_kv_span *s) {
    return 2u * (size_t)s->n_layer * (size_t)s->cap * (size_t)s->dim * sizeof(pc_f16);
}

pc_status pc_kv_list_push(pc_kv_list *l, const pc_kv_span *s, pc_error *err) {
    if (l->n == INT32_MAX) return pc_fail(err, PC_ERR_RANGE, "KV span list: more than %d spans", INT32_MAX);
    const pc_kv_span **p = pc_array_reserve(l->spans, &l->cap, (size_t)l->n + 1, sizeof *l->spans);
    if (!p) return pc_fail(err, PC_ERR_NOMEM, "out of memory for the KV span list");
    l->spans = p;
    l->spans[l->n++] = s;
    return PC_OK;
}

void pc_kv_list_free(pc_kv_list *l) {
    free(l->spans);
    memset(l, 0, sizeof *l);
}

int64_t pc_kv_list_tokens(const pc_kv_list *l) {
    int64_t n = 0;
    for (int32_t i = 0; i < l->n; i++) n += l->spans[i]->n;
    return n;
}
