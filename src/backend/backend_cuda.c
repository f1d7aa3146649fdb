/* backend_cuda.c - the CUDA backend: device memory, weights, streams, the
 * per-chunk step upload, KV streamed from host memory, CUDA graphs for
 * decode. Every step of a block is one or two launches of kernels/cuda (or a
 * cuBLAS product); this file decides what runs where, never how.
 *
 * Device buffers (nb = n_batch, E, Q, KV, FF as in backend_cpu.c, QKV = Q + 2 KV):
 *   x [nb][E] f32 residual stream        xn [nb][E] bf16 normed input
 *   qkv [nb][QKV] f32: q, k, v side by side (one product writes all three)
 *   q16 [nb][Q] f16 rotated queries      att [nb][Q] bf16
 *   gu [nb][2 FF] bf16: gate, up side by side; gate becomes silu(gate) * up
 *   wscratch: the largest weight matrix as bf16 (quantized weights, long chunks,
 *             when no bf16 copy is kept)
 *   xq: up to PC_CU_GEMV_MAX rows of the widest product input as int8 blocks
 * Weights: q|k|v and gate|up of a layer are stored as one matrix each (rows
 * concatenated) so a layer runs 4 products, not 7. Quantized matrices keep
 * their blocks (read by the small-batch kernel) and, when device memory
 * allows, a bf16 copy for cuBLAS on long chunks.
 *   logits_d [lg_rows][n_vocab] f32      part_o, part_ml: attention split partials
 *   step: what the kernels read per chunk (pc_cu_step and its arrays), built in
 *         pinned host memory and uploaded with one copy
 *   stage[2]: one layer of K and V of the context's host spans, double buffered
 *
 * Invariants:
 *  1. Everything above is allocated in pc_backend_cuda_create; a chunk
 *     allocates nothing (device spans come from the stream-ordered pool).
 *  2. Every CUDA and cuBLAS call goes through CK/CKB: the first failure is
 *     kept with its file, line and call, the next logits/end reports it, and
 *     the backend refuses further chunks.
 *  3. end() returns after the stream is idle, so the pinned step buffer and the
 *     staging buffers are free for the next chunk.
 *  4. A short chunk (up to GRAPH_ROWS tokens, device spans only, the logits of
 *     its last token: a decode step, or the fresh suffix of a cached prompt)
 *     runs as a CUDA graph from the second time its shape is seen: its
 *     kernels read everything that changes from the step in device memory, so
 *     one capture replays every later chunk of that shape. The first sighting
 *     runs the same launches eagerly: a server whose chunk sizes vary pays no
 *     capture for a size seen once, and the results are bitwise the same. */
#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "kernels/cpu/ops.h"
#include "kernels/cuda/kernels.h"
#include "util/error.h"

enum {
    MAX_SPANS = 1024,    /* spans in one context */
    MAX_HOST_SPANS = 64, /* of which streamed from host memory */
    BLAS_WS = 32 << 20,  /* cuBLAS workspace bytes */
    LOGIT_BYTES = 256 << 20,
    VEC_ROWS = 8, /* query rows up to which attention takes the VEC kernel (else FEWQ up to 32, else MMA) */
    /* Chunks of up to this many tokens run as graphs: launch gaps and host
     * work are a visible share of them (32 fresh tokens on the 7B shape: ~330
     * launches in ~7 ms); longer ones are bound by their products. */
    GRAPH_ROWS = 64,
    N_GRAPHS = 4, /* shapes kept captured (least recently used replaced) */
};

_Static_assert(PC_CU_KV_BLOCK == PC_KV_BLOCK, "kernels and kv.h disagree on the key block");

typedef struct dweight {
    const void *host; /* the GGUF data this is a copy of */
    void *dev;        /* the stored bytes in device memory (vectors, the embedding), or NULL */
    pc_type type;     /* of dev */
    void *mm;         /* the matrix: the stored blocks when the kernels read them, else bf16; NULL for vectors */
    pc_type mm_type;
    void *bf;         /* a bf16 copy of a quantized matrix, or NULL */
    int32_t group;    /* rows of the fused matrix starting here (q|k|v, gate|up); 0: not a group's first */
} dweight;

/* A chunk shape's graph: what the captured launches bake in is the token
 * count (row offsets, grid sizes, cuBLAS shapes) and the attention split. */
typedef struct step_graph {
    int32_t n, split;       /* the key */
    int32_t tiles_cap;      /* slices the capture holds: replay while the context fits */
    cudaGraphExec_t exec;   /* NULL: seen once, not captured yet */
    uint64_t used;          /* last use, for replacement */
} step_graph;

typedef struct staged {
    const pc_kv_span *span;
    int32_t index;  /* in the list */
    size_t k_off, v_off; /* elements into a stage buffer */
    size_t k_elems, v_elems;
} staged;

/* What CK and dalloc keep, in the shared state and in each backend: the first
 * failure (file, line, call) and the device allocations made at create. */
typedef struct cuda_core {
    cudaError_t err;
    char where[480];
    void **allocs;
    int32_t n_allocs, cap_allocs;
} cuda_core;

/* The model on the device, shared by every backend (forward) of an engine. */
typedef struct cuda_shared {
    pc_backend_shared base;   /* kind CUDA, the model */
    cuda_core core;
    int device, n_sm;
    cudaStream_t stream;      /* uploads */
    dweight *w;               /* sorted by host pointer */
    int32_t n_w;
    bool keep_bf16;           /* bf16 copies of quantized matrices */
    bool no_copies;           /* the caller said never keep them */
    pc_kv_mem mem_device, mem_pinned;
} cuda_shared;

typedef struct cuda_backend {
    pc_backend base;
    cuda_core core;
    cuda_shared *sh;
    bool own_shared;
    const pc_model *m;
    int32_t nb;
    int64_t n_ctx;
    int32_t E, Q, KV, FF, V, R;
    cudaStream_t stream, copy_stream;
    cublasHandle_t blas;
    void *blas_ws;
    float *x, *qkv, *q, *k, *v, *logits_d, *part_o, *part_ml;
    void *xn, *q16, *att, *gu, *gate, *up, *wscratch;
    void *xq; /* a small batch's product input as int8 blocks (pc_cu_quantize_q8) */
    int32_t QKV;
    size_t wscratch_bytes;
    int32_t lg_rows;
    size_t part_blocks;
    float *logits_h; /* pinned [n_vocab] */
    unsigned char *step_h, *step_d;
    size_t step_cap;
    void *stage[2];
    size_t stage_elems; /* per K or V region of a stage buffer */
    cudaEvent_t ev_copied[2], ev_used[2];
    /* the batch in progress: one sequence (max_seqs) */
    pc_chunk c;
    const pc_bseq *sq;
    staged host[MAX_HOST_SPANS];
    int32_t n_host;
    int32_t n_tiles, n_split, tiles_cap;
    pc_cu_attn_kernel attn_kernel;
    float *logits_out;
    /* short chunks' graphs (invariant 4) */
    step_graph graphs[N_GRAPHS];
    uint64_t graph_clock;
    step_graph *cur;            /* this chunk's entry, or NULL: not a graph's shape */
    bool capturing, replaying;  /* this chunk: captured then launched, or the graph launched */
} cuda_backend;

static cuda_backend *cub(pc_backend *b) { return (cuda_backend *)b; }

/* ---- error keeping ---- */

static bool ck_at(cuda_core *k, cudaError_t e, const char *file, int line, const char *what) {
    if (e == cudaSuccess) return true;
    if (k->err == cudaSuccess) {
        k->err = e;
        snprintf(k->where, sizeof k->where, "%.80s:%d: %.160s: %.60s (%.120s)", file, line, what, cudaGetErrorName(e),
                 cudaGetErrorString(e));
    }
    return false;
}

static bool ckb_at(cuda_core *k, cublasStatus_t e, const char *file, int line, const char *what) {
    if (e == CUBLAS_STATUS_SUCCESS) return true;
    if (k->err == cudaSuccess) {
        k->err = cudaErrorUnknown;
        snprintf(k->where, sizeof k->where, "%.80s:%d: %.160s: cuBLAS status %d", file, line, what, (int)e);
    }
    return false;
}

/* b: a cuda_backend or a cuda_shared (anything with a cuda_core named core). */
#define CK(b, expr) ck_at(&(b)->core, (expr), __FILE__, __LINE__, #expr)
#define CKB(b, expr) ckb_at(&(b)->core, (expr), __FILE__, __LINE__, #expr)
#define REPORT(b, err) report_core(&(b)->core, (err))
#define DALLOC(b, bytes) dalloc_core(&(b)->core, (bytes))
#define DFREE(b, p) dfree_core(&(b)->core, (p))

static pc_status report_core(const cuda_core *k, pc_error *err) {
    if (k->err == cudaSuccess) return PC_OK;
    return pc_fail(err, PC_ERR_IO, "backend cuda: %s", k->where);
}

/* ---- device memory made at create ---- */

static void *dalloc_core(cuda_core *k, size_t bytes) {
    if (k->n_allocs == k->cap_allocs) {
        int32_t cap = k->cap_allocs ? 2 * k->cap_allocs : 64;
        void **p = realloc(k->allocs, (size_t)cap * sizeof *p);
        if (!p) return NULL;
        k->allocs = p;
        k->cap_allocs = cap;
    }
    void *p = NULL;
    if (!ck_at(k, cudaMalloc(&p, bytes ? bytes : 256), __FILE__, __LINE__, "cudaMalloc")) return NULL;
    k->allocs[k->n_allocs++] = p;
    return p;
}

/* Frees one allocation made by dalloc (a temporary of create). */
static void dfree_core(cuda_core *k, void *p) {
    for (int32_t i = 0; i < k->n_allocs; i++)
        if (k->allocs[i] == p) {
            ck_at(k, cudaFree(p), __FILE__, __LINE__, "cudaFree");
            k->allocs[i] = k->allocs[--k->n_allocs];
            return;
        }
}

static void free_core(cuda_core *k) {
    for (int32_t i = 0; i < k->n_allocs; i++) (void)cudaFree(k->allocs[i]);
    free(k->allocs);
    k->allocs = NULL;
    k->n_allocs = k->cap_allocs = 0;
}

/* ---- span memory: device spans, pinned host spans ----
 *
 * Device spans come from the device's stream-ordered pool on the shared
 * state's stream, which keeps freed memory (release threshold raised at
 * create): every request makes and drops spans, and a synchronous cudaMalloc
 * there cost a driver round trip per request. A span is read by any
 * backend's stream, so alloc returns only once its zero fill has finished
 * (the stream synchronized); it is freed on that stream after its last
 * reader let go, which is after that reader's batch ended (end() waits for
 * its stream), so nothing still reads memory the pool hands out again. */

static void *dev_span_alloc(void *ctx, size_t bytes) {
    cuda_shared *sh = ctx;
    void *p = NULL;
    if (cudaSetDevice(sh->device) != cudaSuccess || cudaMallocAsync(&p, bytes, sh->stream) != cudaSuccess) {
        (void)cudaGetLastError();
        return NULL;
    }
    if (cudaMemsetAsync(p, 0, bytes, sh->stream) != cudaSuccess || cudaStreamSynchronize(sh->stream) != cudaSuccess) {
        (void)cudaFreeAsync(p, sh->stream);
        (void)cudaStreamSynchronize(sh->stream);
        (void)cudaGetLastError();
        return NULL;
    }
    return p;
}

static void dev_span_free(void *ctx, void *p) {
    cuda_shared *sh = ctx;
    if (p && cudaFreeAsync(p, sh->stream) != cudaSuccess) (void)cudaGetLastError();
}

static bool dev_span_copy(void *ctx, void *dst, const void *src, size_t bytes) {
    cuda_shared *sh = ctx;
    if (cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, sh->stream) == cudaSuccess &&
        cudaStreamSynchronize(sh->stream) == cudaSuccess)
        return true;
    (void)cudaGetLastError();
    return false;
}

static void *pinned_alloc(void *ctx, size_t bytes) {
    (void)ctx;
    void *p = NULL;
    if (cudaHostAlloc(&p, bytes, cudaHostAllocPortable) != cudaSuccess) {
        (void)cudaGetLastError();
        return NULL;
    }
    memset(p, 0, bytes);
    return p;
}

static void pinned_free(void *ctx, void *p) {
    (void)ctx;
    if (p) (void)cudaFreeHost(p);
}

static bool pinned_copy(void *ctx, void *dst, const void *src, size_t bytes) {
    (void)ctx;
    memcpy(dst, src, bytes);
    return true;
}

/* ---- weights ---- */

static int cmp_host(const void *a, const void *b) {
    const char *x = ((const dweight *)a)->host, *y = ((const dweight *)b)->host;
    return x < y ? -1 : x > y;
}

static const dweight *find_weight(const cuda_shared *b, const void *host) {
    int32_t lo = 0, hi = b->n_w - 1;
    while (lo <= hi) {
        const int32_t mid = (lo + hi) / 2;
        const char *h = b->w[mid].host;
        if (h == host) return &b->w[mid];
        if (h < (const char *)host) lo = mid + 1; else hi = mid - 1;
    }
    abort(); /* every weight the forward names was uploaded at create */
}

static size_t weight_bytes(const pc_weight *w) { return pc_row_size(w->type, w->ne0) * (size_t)w->ne1; }

static dweight *new_entry(cuda_shared *b, const void *host) {
    for (int32_t j = 0; j < b->n_w; j++)
        if (b->w[j].host == host) return &b->w[j];
    dweight *d = &b->w[b->n_w++];
    memset(d, 0, sizeof *d);
    d->host = host;
    return d;
}

/* Uploads go through cudaMemcpyAsync on the backend's stream: a plain
 * cudaMemcpy from pageable memory may return before its DMA lands, and the
 * conversion kernels run on a stream that does not wait for the default one. */

/* A vector or the embedding: its stored bytes. */
static pc_status upload_raw(cuda_shared *b, const pc_weight *w, pc_error *err) {
    if (!w->data) return PC_OK;
    dweight *d = new_entry(b, w->data);
    if (d->dev) return PC_OK;
    const size_t bytes = weight_bytes(w);
    d->type = w->type;
    d->dev = DALLOC(b, bytes);
    if (!d->dev || !CK(b, cudaMemcpyAsync(d->dev, w->data, bytes, cudaMemcpyHostToDevice, b->stream))) return REPORT(b, err);
    return PC_OK;
}

/* Matrices ws[0..k) of one input, stored as one matrix of their rows
 * concatenated (k = 1: alone). Types the kernels read keep their blocks, f16
 * and f32 become bf16 (converted on the device). */
static pc_status upload_group(cuda_shared *b, const pc_weight *const *ws, int k, pc_error *err) {
    for (int i = 1; i < k; i++)
        if (ws[i]->type != ws[0]->type || ws[i]->ne0 != ws[0]->ne0) {
            for (int j = 0; j < k; j++) {
                pc_status s = upload_group(b, &ws[j], 1, err);
                if (s != PC_OK) return s;
            }
            return PC_OK;
        }
    const pc_type t = ws[0]->type, mt = pc_cu_type_supported(t) ? t : PC_TYPE_BF16;
    if (mt != t && t != PC_TYPE_F16 && t != PC_TYPE_F32)
        return pc_fail(err, PC_ERR_UNSUPPORTED, "backend cuda: weight type %s has no GPU kernel", pc_type_name(t));
    const int64_t n_in = ws[0]->ne0;
    const size_t mrow = pc_row_size(mt, n_in);
    int64_t rows = 0;
    for (int i = 0; i < k; i++) rows += ws[i]->ne1;
    dweight *first = new_entry(b, ws[0]->data);
    if (first->mm) return PC_OK; /* tied: the embedding already uploaded as this matrix */
    if (k == 1 && first->dev && mt == t) { /* the embedding, read as a matrix too */
        first->mm = first->dev, first->mm_type = t;
    } else {
        char *base = DALLOC(b, mrow * (size_t)rows);
        if (!base) return REPORT(b, err);
        int64_t r = 0;
        for (int i = 0; i < k && b->core.err == cudaSuccess; i++) {
            dweight *d = new_entry(b, ws[i]->data);
            d->mm = base + (size_t)r * mrow;
            d->mm_type = mt;
            if (mt == t) {
                CK(b, cudaMemcpyAsync(d->mm, ws[i]->data, weight_bytes(ws[i]), cudaMemcpyHostToDevice, b->stream));
            } else {
                void *tmp = DALLOC(b, weight_bytes(ws[i]));
                if (tmp && CK(b, cudaMemcpyAsync(tmp, ws[i]->data, weight_bytes(ws[i]), cudaMemcpyHostToDevice, b->stream)) &&
                    CK(b, pc_cu_dequant_rows(t, tmp, n_in, ws[i]->ne1, d->mm, 1, b->stream)))
                    CK(b, cudaStreamSynchronize(b->stream));
                if (tmp) DFREE(b, tmp);
            }
            r += ws[i]->ne1;
        }
    }
    first->group = k > 1 ? (int32_t)rows : 0;
    if (b->keep_bf16 && mt != PC_TYPE_BF16 && b->core.err == cudaSuccess) {
        char *bf = DALLOC(b, (size_t)n_in * (size_t)rows * sizeof(pc_bf16));
        if (bf && CK(b, pc_cu_dequant_rows(mt, first->mm, n_in, rows, bf, 1, b->stream))) {
            int64_t r = 0;
            for (int i = 0; i < k; i++) {
                new_entry(b, ws[i]->data)->bf = bf + (size_t)r * (size_t)n_in * sizeof(pc_bf16);
                r += ws[i]->ne1;
            }
        }
    }
    return REPORT(b, err);
}

/* Bytes of bf16 copies of the quantized matrices: kept when they fit in half the free memory. */
static size_t bf16_copy_bytes(const pc_model *m) {
    size_t n = 0;
    const pc_weight *out = &m->output;
    if (pc_cu_type_supported(out->type) && out->type != PC_TYPE_BF16) n += (size_t)out->ne0 * (size_t)out->ne1 * 2;
    for (int32_t l = 0; l < m->hp.n_layer; l++) {
        const pc_layer_weights *w = &m->layers[l];
        const pc_weight *ws[] = {&w->wq, &w->wk, &w->wv, &w->wo, &w->ffn_gate, &w->ffn_up, &w->ffn_down};
        for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++)
            if (pc_cu_type_supported(ws[i]->type) && ws[i]->type != PC_TYPE_BF16)
                n += (size_t)ws[i]->ne0 * (size_t)ws[i]->ne1 * 2;
    }
    return n;
}

static size_t n_weights(const pc_model *m) { return 8 + (size_t)m->hp.n_layer * 12; }

static pc_status upload_weights(cuda_shared *b, pc_error *err) {
    const pc_model *m = b->base.m;
    if (!(b->w = calloc(n_weights(m), sizeof *b->w))) return pc_fail(err, PC_ERR_NOMEM, "backend cuda: out of memory");
    size_t free_b = 0, total_b = 0;
    CK(b, cudaMemGetInfo(&free_b, &total_b));
    b->keep_bf16 = !b->no_copies && bf16_copy_bytes(m) <= free_b / 2;
    pc_status s = upload_raw(b, &m->tok_embd, err);
    if (s == PC_OK) s = upload_raw(b, &m->output_norm, err);
    const pc_weight *out[1] = {&m->output};
    if (s == PC_OK) s = upload_group(b, out, 1, err);
    for (int32_t l = 0; l < m->hp.n_layer && s == PC_OK; l++) {
        const pc_layer_weights *w = &m->layers[l];
        const pc_weight *vec[] = {&w->attn_norm, &w->bq, &w->bk, &w->bv, &w->ffn_norm};
        for (size_t j = 0; j < sizeof vec / sizeof vec[0] && s == PC_OK; j++) s = upload_raw(b, vec[j], err);
        const pc_weight *qkv[3] = {&w->wq, &w->wk, &w->wv}, *gu[2] = {&w->ffn_gate, &w->ffn_up};
        const pc_weight *wo[1] = {&w->wo}, *down[1] = {&w->ffn_down};
        if (s == PC_OK) s = upload_group(b, qkv, 3, err);
        if (s == PC_OK) s = upload_group(b, wo, 1, err);
        if (s == PC_OK) s = upload_group(b, gu, 2, err);
        if (s == PC_OK) s = upload_group(b, down, 1, err);
    }
    qsort(b->w, (size_t)b->n_w, sizeof *b->w, cmp_host);
    return s;
}

/* ---- the step: what the kernels read per chunk ---- */

static size_t align256(size_t n) { return (n + 255) & ~(size_t)255; }

/* Bytes of a step for n tokens, t tiles and s spans. */
static size_t step_bytes(const cuda_backend *b, int32_t n, int32_t t, int32_t s) {
    return align256(sizeof(pc_cu_step)) + 2 * align256((size_t)n * sizeof(int32_t)) +
           2 * align256((size_t)n * (size_t)(b->R ? b->R : 1) * sizeof(float)) + align256((size_t)t * sizeof(pc_cu_tile)) +
           align256((size_t)t * PC_CU_TILE * sizeof(int32_t)) +
           align256((size_t)b->m->hp.n_layer * (size_t)s * sizeof(pc_cu_span_layer));
}

typedef struct carver {
    unsigned char *h, *d;
    size_t off;
} carver;

/* Host and device addresses of the next array of bytes in the step. */
static void *carve(carver *cv, size_t bytes, const void **dev) {
    void *h = cv->h + cv->off;
    *dev = cv->d + cv->off;
    cv->off += align256(bytes);
    return h;
}

static int32_t span_rows(const pc_bseq *c, int32_t i) {
    const pc_kv_span *s = c->list->spans[i];
    return s == c->dst ? c->row0 + c->n : s->n;
}

static int32_t count_tiles(const pc_bseq *c) {
    int32_t t = 0;
    for (int32_t i = 0; i < c->list->n; i++) t += (span_rows(c, i) + PC_CU_TILE - 1) / PC_CU_TILE;
    return t;
}

static void fill_tiles(const pc_bseq *c, pc_cu_tile *tiles, int32_t *kpos) {
    int32_t t = 0;
    for (int32_t i = 0; i < c->list->n; i++) {
        const pc_kv_span *s = c->list->spans[i];
        const int32_t n = span_rows(c, i);
        for (int32_t r0 = 0; r0 < n; r0 += PC_CU_TILE, t++) {
            const int32_t k = n - r0 < PC_CU_TILE ? n - r0 : PC_CU_TILE;
            int32_t mn = INT32_MAX;
            for (int32_t j = 0; j < PC_CU_TILE; j++) {
                const int32_t p = j < k ? s->pos[r0 + j] : INT32_MAX;
                kpos[(size_t)t * PC_CU_TILE + j] = p;
                mn = p < mn ? p : mn;
            }
            tiles[t] = (pc_cu_tile){.span = i, .row0 = r0, .n = k, .min_pos = mn};
        }
    }
}

static const staged *find_staged(const cuda_backend *b, int32_t index) {
    for (int32_t i = 0; i < b->n_host; i++)
        if (b->host[i].index == index) return &b->host[i];
    return NULL;
}

static void fill_spans(const cuda_backend *b, pc_cu_span_layer *tab) {
    const pc_kv_list *l = b->sq->list;
    const size_t D = (size_t)b->KV;
    for (int32_t layer = 0; layer < b->m->hp.n_layer; layer++)
        for (int32_t i = 0; i < l->n; i++) {
            const pc_kv_span *s = l->spans[i];
            const staged *h = find_staged(b, i);
            pc_cu_span_layer *e = &tab[(size_t)layer * (size_t)l->n + (size_t)i];
            if (h) {
                const pc_f16 *base = b->stage[layer % 2];
                e->k = base + h->k_off;
                e->v = base + b->stage_elems + h->v_off;
            } else {
                e->k = s->k + (size_t)layer * (size_t)s->cap * D;
                e->v = s->v + (size_t)layer * (size_t)s->cap * D;
            }
        }
}

static void build_step(cuda_backend *b, int32_t n_tiles) {
    const pc_bseq *c = b->sq;
    const pc_hparams *hp = &b->m->hp;
    carver cv = {.h = b->step_h, .d = b->step_d, .off = 0};
    const void *dp;
    pc_cu_step *st = carve(&cv, sizeof *st, &dp);
    memset(st, 0, sizeof *st);
    st->n = c->n;
    st->row0 = c->row0;
    st->n_tiles = n_tiles;
    st->n_spans = c->list->n;
    st->dst_k = c->dst->k;
    st->dst_v = c->dst->v;
    st->dst_layer_stride = (int64_t)c->dst->cap * b->KV;
    int32_t *tok = carve(&cv, (size_t)c->n * sizeof *tok, &dp);
    st->tokens = dp;
    int32_t *qpos = carve(&cv, (size_t)c->n * sizeof *qpos, &dp);
    st->qpos = dp;
    memcpy(tok, b->c.tokens, (size_t)c->n * sizeof *tok);
    memcpy(qpos, c->pos, (size_t)c->n * sizeof *qpos);
    const int32_t R = b->R;
    float *rc = carve(&cv, (size_t)c->n * (size_t)(R ? R : 1) * sizeof(float), &dp);
    st->rope_cos = dp;
    float *rs = carve(&cv, (size_t)c->n * (size_t)(R ? R : 1) * sizeof(float), &dp);
    st->rope_sin = dp;
    const float *ff = b->m->rope_freqs.data;
    for (int32_t t = 0; t < c->n && R; t++)
        pc_rope_cache(rc + (size_t)t * R, rs + (size_t)t * R, c->pos[t], hp->rope_dim, hp->rope_theta, hp->rope_scale, ff);
    pc_cu_tile *tiles = carve(&cv, (size_t)n_tiles * sizeof *tiles, &dp);
    st->tiles = dp;
    int32_t *kpos = carve(&cv, (size_t)n_tiles * PC_CU_TILE * sizeof *kpos, &dp);
    st->kpos = dp;
    fill_tiles(c, tiles, kpos);
    pc_cu_span_layer *tab = carve(&cv, (size_t)hp->n_layer * (size_t)c->list->n * sizeof *tab, &dp);
    st->spans = dp;
    fill_spans(b, tab);
    CK(b, cudaMemcpyAsync(b->step_d, b->step_h, cv.off, cudaMemcpyHostToDevice, b->stream));
}

/* ---- host spans: one layer at a time into the stage buffers ---- */

static pc_status plan_staging(cuda_backend *b, pc_error *err) {
    const pc_kv_list *l = b->sq->list;
    size_t k_off = 0, v_off = 0;
    b->n_host = 0;
    for (int32_t i = 0; i < l->n; i++) {
        const pc_kv_span *s = l->spans[i];
        if (pc_kv_span_loc(s) == PC_KV_DEVICE) continue;
        if (s == b->sq->dst) return pc_fail(err, PC_ERR_INVALID, "backend cuda: the span being written must live in GPU memory");
        if (b->n_host == MAX_HOST_SPANS)
            return pc_fail(err, PC_ERR_RANGE, "backend cuda: more than %d host-memory spans in one context", MAX_HOST_SPANS);
        const size_t rows8 = (size_t)(s->n + PC_KV_BLOCK - 1) / PC_KV_BLOCK * PC_KV_BLOCK;
        staged *h = &b->host[b->n_host++];
        *h = (staged){.span = s, .index = i, .k_off = k_off, .v_off = v_off, .k_elems = rows8 * (size_t)b->KV,
                      .v_elems = (size_t)s->n * (size_t)b->KV};
        k_off += h->k_elems;
        v_off += rows8 * (size_t)b->KV;
        if (k_off > b->stage_elems)
            return pc_fail(err, PC_ERR_RANGE, "backend cuda: host-memory spans of this context exceed the staging for %lld tokens",
                           (long long)b->n_ctx);
    }
    return PC_OK;
}

/* Queues the copy of layer `layer` of every host span into stage[layer % 2]. */
static void stage_layer(cuda_backend *b, int32_t layer) {
    pc_f16 *base = b->stage[layer % 2];
    for (int32_t i = 0; i < b->n_host; i++) {
        const staged *h = &b->host[i];
        const pc_kv_span *s = h->span;
        const size_t lay = (size_t)layer * (size_t)s->cap * (size_t)b->KV;
        CK(b, cudaMemcpyAsync(base + h->k_off, s->k + lay, h->k_elems * sizeof(pc_f16), cudaMemcpyHostToDevice, b->copy_stream));
        CK(b, cudaMemcpyAsync(base + b->stage_elems + h->v_off, s->v + lay, h->v_elems * sizeof(pc_f16),
                              cudaMemcpyHostToDevice, b->copy_stream));
    }
    CK(b, cudaEventRecord(b->ev_copied[layer % 2], b->copy_stream));
}

/* ---- attention plan ---- */

/* graph: the chunk has a graph's shape (streamed or not: a streamed chunk is
 * planned alike, so both give bitwise the same logits). */
static void plan_attention(cuda_backend *b, int32_t n, int32_t n_tiles, bool graph) {
    const pc_hparams *hp = &b->m->hp;
    const int32_t G = hp->n_head / hp->n_head_kv, rows = n * G;
    b->attn_kernel = rows <= VEC_ROWS ? PC_CU_ATTN_VEC : rows <= 32 ? PC_CU_ATTN_FEWQ : PC_CU_ATTN_MMA;
    const int32_t q_tiles = b->attn_kernel == PC_CU_ATTN_MMA ? (rows + PC_CU_QROWS - 1) / PC_CU_QROWS : 1;
    const int32_t base = q_tiles * hp->n_head_kv, target = pc_cu_attn_blocks_per_sm(b->attn_kernel) * b->sh->n_sm;
    /* a graph replays with the split it was captured with, so it is sized for
     * the largest context, not the current one */
    const int32_t tiles = graph ? (int32_t)(b->n_ctx / PC_CU_TILE + 1) : n_tiles;
    /* no more blocks than one wave of resident ones: a split just past a whole wave leaves a second
     * wave nearly empty (32 rows over 8192 keys, 32 heads, MMA on the H200: split 9, 288 blocks on
     * 264 slots, 93.5 us; split 4 and 16, 81.7 and 80.9 us) */
    int32_t split = target / base;
    if (split > tiles / 2) split = tiles / 2;
    if ((size_t)split * (size_t)base > b->part_blocks) split = (int32_t)(b->part_blocks / (size_t)base);
    b->n_split = split < 1 ? 1 : split;
    /* a graph's slices must hold any later step's: room for the context to
     * grow to n_ctx and for twice as many spans (a new capture beyond) */
    const int32_t cap_tiles = graph ? tiles + 2 * b->sq->list->n + 8 : n_tiles;
    b->tiles_cap = pc_cu_attn_tiles_cap(cap_tiles, b->n_split);
}

/* ---- steps ---- */

static bool idle(const cuda_backend *b) { return b->replaying || b->core.err != cudaSuccess; }

static bool graph_shape(const pc_chunk *c) { return c->n <= GRAPH_ROWS && c->n_logits == 1; }

/* The entry of shape (n, split): found, or made (replacing the least recently
 * used one) with no graph yet. */
static step_graph *graph_entry(cuda_backend *b, int32_t n, int32_t split, bool *found) {
    step_graph *g = NULL, *old = &b->graphs[0];
    for (int i = 0; i < N_GRAPHS && !g; i++) {
        step_graph *e = &b->graphs[i];
        if (e->used && e->n == n && e->split == split) g = e;
        if (e->used < old->used) old = e;
    }
    *found = g != NULL;
    if (!g) {
        g = old;
        if (g->exec) CK(b, cudaGraphExecDestroy(g->exec));
        *g = (step_graph){.n = n, .split = split};
    }
    g->used = ++b->graph_clock;
    return g;
}

static pc_status cuda_begin(pc_backend *bb, const pc_chunk *c, pc_error *err) {
    cuda_backend *b = cub(bb);
    if (b->core.err != cudaSuccess) return REPORT(b, err);
    if (c->n_seqs != 1) return pc_fail(err, PC_ERR_INVALID, "backend cuda: a batch of %d sequences (it takes 1)", c->n_seqs);
    const pc_bseq *q = &c->seqs[0];
    if (q->list->n > MAX_SPANS)
        return pc_fail(err, PC_ERR_RANGE, "backend cuda: context of %d spans (at most %d)", q->list->n, MAX_SPANS);
    if (pc_kv_span_loc(q->dst) != PC_KV_DEVICE)
        return pc_fail(err, PC_ERR_INVALID, "backend cuda: the span being written must live in GPU memory");
    if (c->n > b->nb) return pc_fail(err, PC_ERR_RANGE, "backend cuda: batch of %d tokens (at most %d)", c->n, b->nb);
    b->c = *c;
    b->sq = q;
    pc_status s = plan_staging(b, err);
    if (s != PC_OK) return s;
    const int32_t n_tiles = count_tiles(q);
    if (step_bytes(b, c->n, n_tiles, q->list->n) > b->step_cap)
        return pc_fail(err, PC_ERR_RANGE, "backend cuda: context of %d key tiles does not fit the step buffer", n_tiles);
    const bool shape = graph_shape(c);
    b->n_tiles = n_tiles;
    plan_attention(b, c->n, n_tiles, shape);
    b->logits_out = NULL;
    build_step(b, n_tiles);
    for (int32_t l = 0; l < 2 && l < b->m->hp.n_layer && b->n_host; l++) stage_layer(b, l);
    bool seen = false;
    b->cur = shape && b->n_host == 0 ? graph_entry(b, c->n, b->n_split, &seen) : NULL;
    b->replaying = b->cur && b->cur->exec && b->cur->tiles_cap >= pc_cu_attn_tiles_cap(n_tiles, b->n_split);
    if (b->replaying) b->tiles_cap = b->cur->tiles_cap;
    b->capturing = seen && !b->replaying;
    if (b->capturing && !CK(b, cudaStreamBeginCapture(b->stream, cudaStreamCaptureModeThreadLocal))) b->capturing = false;
    return REPORT(b, err);
}

static void cuda_embed(pc_backend *bb, const pc_weight *te, void *x) {
    cuda_backend *b = cub(bb);
    if (idle(b)) return;
    const dweight *d = find_weight(b->sh, te->data);
    CK(b, pc_cu_embed(d->type, d->dev, te->ne0, (const pc_cu_step *)b->step_d, b->c.n, x, b->stream));
}

static void cuda_norm(pc_backend *bb, void *y, const void *x, const pc_weight *w, int32_t n) {
    cuda_backend *b = cub(bb);
    if (idle(b)) return;
    const dweight *d = find_weight(b->sh, w->data);
    CK(b, pc_cu_rmsnorm(x, d->dev, n, b->E, b->m->hp.norm_eps, y, 1, b->stream));
}

/* Row strides (elements) of the activation buffers the products read and write. */
static int64_t stride_of(const cuda_backend *b, const void *p) {
    if (p == b->q || p == b->k || p == b->v) return b->QKV;
    if (p == b->gate || p == b->up) return 2 * (int64_t)b->FF;
    if (p == b->att) return b->Q;
    if (p == b->logits_d) return b->V;
    return b->E; /* x, xn */
}

/* y = x W^T (or y += ...) for rows of a weight (several fused ones when rows
 * spans them). The small-batch kernel reads the stored blocks once a pass;
 * longer chunks use cuBLAS on bf16 (the kept copy, or dequantized now). */
static void mm_rows(cuda_backend *b, const dweight *d, int64_t n_in, int64_t rows, const void *x, int32_t n, void *y,
                    pc_cu_out out) {
    const int64_t xs = stride_of(b, x), ys = stride_of(b, y);
    /* bf16: cuBLAS is faster from 2 rows (bench/gemv_sandbox.cu); a quantized matrix
     * with a bf16 copy: its blocks are fewer bytes up to 2 rows */
    const int32_t gemv_max = d->mm_type == PC_TYPE_BF16 ? 1 : d->bf ? 2 : PC_CU_GEMV_MAX;
    if (n <= gemv_max) {
        /* Q4_0, Q4_K, Q6_K: int8 dot products on x rounded to 8 bits (gemv_q8.cu),
         * fewer instructions a weight than the float kernel, which keeps the other
         * types (and is the reference). Decode at 8224 on the H200, old and new in
         * one call: 7B Q4_0 4.68 -> 3.68 ms, 1.5B Q4_K 2.89 -> 2.55. Q4_1 was tried
         * and left out: SmolLM2 1.23 -> 1.25 ms, no gain. */
        const pc_type mt = d->mm_type;
        if (pc_cu_gemv_q8_takes(mt, d->mm, n_in)) {
            CK(b, pc_cu_gemv_q8(mt, d->mm, n_in, rows, x, xs, n, b->xq, y, ys, out, b->stream));
            return;
        }
        CK(b, pc_cu_gemv(d->mm_type, d->mm, n_in, rows, x, xs, n, y, ys, out, b->stream));
        return;
    }
    const void *W = d->mm_type == PC_TYPE_BF16 ? d->mm : d->bf;
    if (!W) {
        if (!CK(b, pc_cu_dequant_rows(d->mm_type, d->mm, n_in, rows, b->wscratch, 1, b->stream))) return;
        W = b->wscratch;
    }
    const float alpha = 1.0f, beta = out == PC_CU_OUT_ADD_F32 ? 1.0f : 0.0f;
    const cudaDataType ct = out == PC_CU_OUT_BF16 ? CUDA_R_16BF : CUDA_R_32F;
    CKB(b, cublasGemmEx(b->blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)rows, n, (int)n_in, &alpha, W, CUDA_R_16BF, (int)n_in, x,
                        CUDA_R_16BF, (int)xs, &beta, y, ct, (int)ys, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

static void mm(cuda_backend *b, const pc_weight *w, const void *x, int32_t n, void *y, pc_cu_out out) {
    mm_rows(b, find_weight(b->sh, w->data), w->ne0, w->ne1, x, n, y, out);
}

/* True when ws[0..k) are one fused matrix and ys[0..k) its outputs side by side. */
static bool fused(const cuda_backend *b, const pc_weight *const *ws, void *const *ys, int k, size_t esize) {
    const dweight *d0 = find_weight(b->sh, ws[0]->data);
    int64_t rows = 0;
    for (int i = 0; i < k; i++) {
        if ((const char *)ys[i] != (const char *)ys[0] + (size_t)rows * esize) return false;
        rows += ws[i]->ne1;
    }
    return k > 1 && d0->group == rows;
}

static void cuda_matmul(pc_backend *bb, const pc_weight *const *ws, void *const *ys, int k, const void *x, int32_t n) {
    cuda_backend *b = cub(bb);
    if (idle(b)) return;
    const pc_cu_out out = ys[0] == b->gate ? PC_CU_OUT_BF16 : PC_CU_OUT_F32;
    const size_t esize = out == PC_CU_OUT_BF16 ? sizeof(pc_bf16) : sizeof(float);
    if (fused(b, ws, ys, k, esize)) {
        const dweight *d0 = find_weight(b->sh, ws[0]->data);
        mm_rows(b, d0, ws[0]->ne0, d0->group, x, n, ys[0], out);
        return;
    }
    for (int i = 0; i < k; i++) mm(b, ws[i], x, n, ys[i], out);
}

static void cuda_matmul_add(pc_backend *bb, const pc_weight *w, const void *x, int32_t n, void *y) {
    cuda_backend *b = cub(bb);
    if (idle(b)) return;
    mm(b, w, x, n, y, PC_CU_OUT_ADD_F32);
}

static const void *vec_or_null(cuda_backend *b, const pc_weight *w) { return w->data ? find_weight(b->sh, w->data)->dev : NULL; }

static void cuda_qkv(pc_backend *bb, const pc_layer_weights *w, int32_t layer) {
    cuda_backend *b = cub(bb);
    if (idle(b)) return;
    const pc_hparams *hp = &b->m->hp;
    const pc_cu_qkv_args a = {.step = (const pc_cu_step *)b->step_d, .n = b->c.n, .layer = layer, .q = b->q, .k = b->k,
                              .v = b->v, .bq = vec_or_null(b, &w->bq), .bk = vec_or_null(b, &w->bk),
                              .bv = vec_or_null(b, &w->bv), .qkv_stride = b->QKV, .q16 = b->q16, .n_head = hp->n_head,
                              .n_head_kv = hp->n_head_kv, .head_dim = hp->head_dim, .rope_dim = hp->rope_dim,
                              .rope = b->m->arch->pos == PC_POS_ROPE_NEOX ? 2 : 1};
    CK(b, pc_cu_qkv(&a, b->stream));
}

static void cuda_attention(pc_backend *bb, int32_t layer) {
    cuda_backend *b = cub(bb);
    if (idle(b)) return;
    const pc_hparams *hp = &b->m->hp;
    if (b->n_host) CK(b, cudaStreamWaitEvent(b->stream, b->ev_copied[layer % 2], 0));
    const pc_cu_attn_args a = {.step = (const pc_cu_step *)b->step_d, .q16 = b->q16, .out = b->att,
                               .part_o = b->part_o, .part_ml = b->part_ml, .n = b->c.n, .n_head = hp->n_head,
                               .n_head_kv = hp->n_head_kv, .head_dim = hp->head_dim, .layer = layer,
                               .n_split = b->n_split, .tiles_cap = b->tiles_cap,
                               .scale = 1.0f / sqrtf((float)hp->head_dim),
                               .kernel = b->attn_kernel};
    CK(b, pc_cu_attention(&a, b->stream));
    if (b->n_host && layer + 2 < hp->n_layer) {
        CK(b, cudaEventRecord(b->ev_used[layer % 2], b->stream));
        CK(b, cudaStreamWaitEvent(b->copy_stream, b->ev_used[layer % 2], 0));
        stage_layer(b, layer + 2);
    }
}

static void cuda_swiglu(pc_backend *bb, int32_t n) {
    cuda_backend *b = cub(bb);
    if (idle(b)) return;
    CK(b, pc_cu_swiglu(b->gate, b->up, b->gate, n, b->FF, 2 * (int64_t)b->FF, b->stream));
}

/* Rows one at a time into pinned memory (a short chunk's graph copies there),
 * several in runs of adjacent rows straight to out. */
static pc_status cuda_logits(pc_backend *bb, const pc_weight *norm, const pc_weight *head, const int32_t *rows,
                             int32_t n, float *out, pc_error *err) {
    cuda_backend *b = cub(bb);
    if (n == 1) {
        b->logits_out = out; /* copied from logits_h once the stream is idle (end) */
        if (idle(b)) return REPORT(b, err);
        const dweight *nw = find_weight(b->sh, norm->data);
        CK(b, pc_cu_rmsnorm(b->x + (size_t)rows[0] * b->E, nw->dev, 1, b->E, b->m->hp.norm_eps, b->xn, 1, b->stream));
        mm(b, head, b->xn, 1, b->logits_d, PC_CU_OUT_F32);
        CK(b, cudaMemcpyAsync(b->logits_h, b->logits_d, (size_t)b->V * sizeof(float), cudaMemcpyDeviceToHost, b->stream));
        return REPORT(b, err);
    }
    const dweight *nw = find_weight(b->sh, norm->data);
    for (int32_t r = 0, k; r < n && b->core.err == cudaSuccess; r += k) {
        for (k = 1; r + k < n && k < b->lg_rows && rows[r + k] == rows[r] + k; k++) {}
        CK(b, pc_cu_rmsnorm(b->x + (size_t)rows[r] * b->E, nw->dev, k, b->E, b->m->hp.norm_eps, b->xn, 1, b->stream));
        mm(b, head, b->xn, k, b->logits_d, PC_CU_OUT_F32);
        CK(b, cudaMemcpyAsync(out + (size_t)r * b->V, b->logits_d, (size_t)k * b->V * sizeof(float),
                              cudaMemcpyDeviceToHost, b->stream));
        CK(b, cudaStreamSynchronize(b->stream));
    }
    return REPORT(b, err);
}

/* Ends a capture and makes it this shape's graph (replacing an older one). */
static bool finish_capture(cuda_backend *b) {
    cudaGraph_t g = NULL;
    step_graph *e = b->cur;
    b->capturing = false;
    if (!CK(b, cudaStreamEndCapture(b->stream, &g)) || !g) return false;
    if (e->exec) CK(b, cudaGraphExecDestroy(e->exec));
    e->exec = NULL;
    if (CK(b, cudaGraphInstantiate(&e->exec, g, 0))) e->tiles_cap = b->tiles_cap;
    CK(b, cudaGraphDestroy(g));
    return e->exec != NULL;
}

static pc_status cuda_end(pc_backend *bb, pc_error *err) {
    cuda_backend *b = cub(bb);
    const bool launch = b->capturing ? finish_capture(b) : b->replaying;
    if (launch && b->core.err == cudaSuccess) CK(b, cudaGraphLaunch(b->cur->exec, b->stream));
    b->cur = NULL;
    b->replaying = false;
    CK(b, cudaStreamSynchronize(b->stream));
    if (b->n_host) CK(b, cudaStreamSynchronize(b->copy_stream));
    if (b->core.err == cudaSuccess && b->logits_out) memcpy(b->logits_out, b->logits_h, (size_t)b->V * sizeof(float));
    b->logits_out = NULL;
    return REPORT(b, err);
}

/* ---- spans ---- */

static pc_kv_span *shared_span_at(cuda_shared *sh, int32_t cap, pc_kv_loc loc) {
    const pc_hparams *hp = &sh->base.m->hp;
    const pc_kv_mem *mem = loc == PC_KV_DEVICE ? &sh->mem_device : loc == PC_KV_PINNED ? &sh->mem_pinned : NULL;
    return pc_kv_span_create_in(mem, hp->n_layer, hp->n_head_kv * hp->head_dim, cap);
}

static pc_kv_span *shared_span_new(pc_backend_shared *s, int32_t cap) {
    return shared_span_at((cuda_shared *)s, cap, PC_KV_DEVICE);
}

/* Copies src's rows of K and V (keys in whole blocks of 8, kv.h) into d, layer
 * by layer on stream s, then waits for them (always: nothing may still write d
 * after a failure); on success d takes src's positions and count and is frozen.
 * Returns the first error. */
static cudaError_t copy_span_rows(pc_kv_span *d, const pc_kv_span *src, cudaStream_t s) {
    const size_t D = (size_t)src->dim, rows8 = (size_t)(src->n + PC_KV_BLOCK - 1) / PC_KV_BLOCK * PC_KV_BLOCK;
    cudaError_t e = cudaSuccess;
    for (int32_t l = 0; e == cudaSuccess && l < src->n_layer; l++) {
        e = cudaMemcpyAsync(d->k + (size_t)l * d->cap * D, src->k + (size_t)l * src->cap * D, rows8 * D * sizeof(pc_f16),
                            cudaMemcpyDefault, s);
        if (e == cudaSuccess)
            e = cudaMemcpyAsync(d->v + (size_t)l * d->cap * D, src->v + (size_t)l * src->cap * D,
                                (size_t)src->n * D * sizeof(pc_f16), cudaMemcpyDefault, s);
    }
    const cudaError_t w = cudaStreamSynchronize(s);
    if (e == cudaSuccess) e = w;
    if (e != cudaSuccess) return e;
    memcpy(d->pos, src->pos, (size_t)src->n * sizeof *d->pos);
    d->n = src->n;
    pc_kv_span_freeze(d);
    return cudaSuccess;
}

/* Not through CK: a copy that fails (out of device memory, say) is a NULL for
 * the caller to fall back on, not a failure of the shared state. */
static pc_kv_span *shared_copy_at(cuda_shared *sh, const pc_kv_span *src, pc_kv_loc loc) {
    pc_kv_span *d = shared_span_at(sh, src->n, loc);
    if (!d) return NULL;
    if (cudaSetDevice(sh->device) != cudaSuccess || copy_span_rows(d, src, sh->stream) != cudaSuccess) {
        (void)cudaGetLastError();
        pc_kv_span_release(d);
        return NULL;
    }
    return d;
}

static pc_kv_span *shared_device_copy(pc_backend_shared *s, const pc_kv_span *src) {
    return shared_copy_at((cuda_shared *)s, src, PC_KV_DEVICE);
}

static pc_kv_span *shared_host_copy(pc_backend_shared *s, const pc_kv_span *src) {
    return shared_copy_at((cuda_shared *)s, src, PC_KV_PINNED);
}

static size_t shared_device_free(pc_backend_shared *s) {
    size_t free_b = 0, total = 0;
    if (cudaSetDevice(((cuda_shared *)s)->device) != cudaSuccess || cudaMemGetInfo(&free_b, &total) != cudaSuccess) {
        (void)cudaGetLastError();
        return 0;
    }
    return free_b;
}

static pc_kv_span *cuda_span_new(pc_backend *bb, int32_t cap, pc_kv_loc loc) {
    return shared_span_at(cub(bb)->sh, cap, loc);
}

static pc_kv_span *cuda_span_copy(pc_backend *bb, const pc_kv_span *src, pc_kv_loc loc) {
    cuda_backend *b = cub(bb);
    pc_kv_span *s = cuda_span_new(bb, src->n, loc);
    if (!s) return NULL;
    if (!CK(b, copy_span_rows(s, src, b->stream)) || b->core.err != cudaSuccess) {
        pc_kv_span_release(s);
        return NULL;
    }
    return s;
}

/* ---- create / free ---- */

static void shared_free(pc_backend_shared *s) {
    cuda_shared *sh = (cuda_shared *)s;
    if (!sh) return;
    if (sh->stream) (void)cudaStreamSynchronize(sh->stream);
    free_core(&sh->core);
    if (sh->stream) (void)cudaStreamDestroy(sh->stream);
    free(sh->w);
    free(sh);
}

static const pc_backend_shared_ops cuda_shared_ops = {.free = shared_free, .span_new = shared_span_new,
                                                      .device_copy = shared_device_copy, .host_copy = shared_host_copy,
                                                      .device_free = shared_device_free};

static void cuda_free(pc_backend *bb) {
    cuda_backend *b = cub(bb);
    if (b->stream) (void)cudaStreamSynchronize(b->stream);
    for (int i = 0; i < N_GRAPHS; i++)
        if (b->graphs[i].exec) (void)cudaGraphExecDestroy(b->graphs[i].exec);
    if (b->blas) (void)cublasDestroy(b->blas);
    for (int i = 0; i < 2; i++) {
        if (b->ev_copied[i]) (void)cudaEventDestroy(b->ev_copied[i]);
        if (b->ev_used[i]) (void)cudaEventDestroy(b->ev_used[i]);
    }
    free_core(&b->core);
    if (b->step_h) (void)cudaFreeHost(b->step_h);
    if (b->logits_h) (void)cudaFreeHost(b->logits_h);
    if (b->copy_stream) (void)cudaStreamDestroy(b->copy_stream);
    if (b->stream) (void)cudaStreamDestroy(b->stream);
    if (b->own_shared) shared_free(&b->sh->base);
    free(b);
}

static const pc_backend_ops cuda_ops = {
    .name = "cuda", .free = cuda_free, .span_new = cuda_span_new, .span_copy = cuda_span_copy, .begin = cuda_begin,
    .embed = cuda_embed, .norm = cuda_norm, .matmul = cuda_matmul, .matmul_add = cuda_matmul_add, .qkv = cuda_qkv,
    .attention = cuda_attention, .swiglu = cuda_swiglu, .logits = cuda_logits, .end = cuda_end,
};

static pc_status check_model(const pc_model *m, pc_error *err) {
    const pc_arch_desc *a = m->arch;
    const char *what = a->pos == PC_POS_ALIBI ? "ALiBi" : a->norm != PC_NORM_RMS ? "LayerNorm"
                       : a->ffn != PC_FFN_SWIGLU ? "a feed-forward other than SwiGLU" : a->qk_norm ? "q/k norms"
                       : a->post_norms ? "post-norms" : a->embd_scale ? "scaled embeddings" : NULL;
    if (what) return pc_fail(err, PC_ERR_UNSUPPORTED, "backend cuda: architecture '%s' uses %s, which has no GPU kernel yet", a->name, what);
    if (m->hp.head_dim != 64 && m->hp.head_dim != 128)
        return pc_fail(err, PC_ERR_UNSUPPORTED, "backend cuda: head dim %d (the attention kernels take 64 and 128)", m->hp.head_dim);
    if (m->hp.n_embd % 32 || m->hp.n_ff % 32)
        return pc_fail(err, PC_ERR_UNSUPPORTED, "backend cuda: embedding %d and feed-forward %d must be multiples of 32", m->hp.n_embd, m->hp.n_ff);
    return PC_OK;
}

/* Elements of the largest matrix a product dequantizes at once: a weight, or
 * a fused q|k|v or gate|up. */
static size_t largest_matrix(const pc_model *m) {
    size_t best = (size_t)m->output.ne0 * (size_t)m->output.ne1;
    for (int32_t l = 0; l < m->hp.n_layer; l++) {
        const pc_layer_weights *w = &m->layers[l];
        const size_t E = (size_t)w->wq.ne0;
        const size_t n[] = {E * (size_t)(w->wq.ne1 + w->wk.ne1 + w->wv.ne1), (size_t)w->wo.ne0 * (size_t)w->wo.ne1,
                            E * (size_t)(w->ffn_gate.ne1 + w->ffn_up.ne1), (size_t)w->ffn_down.ne0 * (size_t)w->ffn_down.ne1};
        for (size_t i = 0; i < sizeof n / sizeof n[0]; i++) best = n[i] > best ? n[i] : best;
    }
    return best;
}

static pc_status alloc_buffers(cuda_backend *b, pc_error *err) {
    const size_t nb = (size_t)b->nb, f = sizeof(float), h = sizeof(uint16_t);
    b->x = DALLOC(b, nb * b->E * f);
    b->xn = DALLOC(b, nb * b->E * h);
    b->qkv = DALLOC(b, nb * b->QKV * f);
    b->q = b->qkv;
    b->k = b->qkv ? b->qkv + b->Q : NULL;
    b->v = b->qkv ? b->qkv + b->Q + b->KV : NULL;
    b->q16 = DALLOC(b, nb * b->Q * h);
    b->att = DALLOC(b, nb * b->Q * h);
    b->gu = DALLOC(b, nb * 2 * b->FF * h);
    b->gate = b->gu;
    b->up = b->gu ? (char *)b->gu + (size_t)b->FF * h : NULL;
    /* dequantized per long product only when the shared state keeps no bf16 copies */
    b->wscratch_bytes = b->sh->keep_bf16 ? 256 : largest_matrix(b->m) * sizeof(pc_bf16);
    b->wscratch = DALLOC(b, b->wscratch_bytes);
    const int32_t widest = b->E > b->Q ? (b->E > b->FF ? b->E : b->FF) : (b->Q > b->FF ? b->Q : b->FF);
    b->xq = DALLOC(b, pc_cu_q8_bytes(widest, PC_CU_GEMV_MAX));
    b->lg_rows = (int32_t)(LOGIT_BYTES / ((size_t)b->V * f));
    if (b->lg_rows > b->nb) b->lg_rows = b->nb;
    if (b->lg_rows < 1) b->lg_rows = 1;
    b->logits_d = DALLOC(b, (size_t)b->lg_rows * b->V * f);
    b->part_blocks = (size_t)4 * b->sh->n_sm + 64;
    b->part_o = DALLOC(b, b->part_blocks * PC_CU_QROWS * (size_t)b->m->hp.head_dim * f);
    b->part_ml = DALLOC(b, b->part_blocks * PC_CU_QROWS * 2 * f);
    b->blas_ws = DALLOC(b, BLAS_WS);
    b->stage_elems = (size_t)(b->n_ctx + PC_KV_BLOCK * MAX_HOST_SPANS) * (size_t)b->KV;
    b->stage[0] = DALLOC(b, 2 * b->stage_elems * h);
    b->stage[1] = DALLOC(b, 2 * b->stage_elems * h);
    const int32_t max_tiles = (int32_t)(b->n_ctx / PC_CU_TILE) + MAX_SPANS;
    b->step_cap = step_bytes(b, b->nb, max_tiles, MAX_SPANS);
    b->step_d = DALLOC(b, b->step_cap);
    if (b->core.err == cudaSuccess) CK(b, cudaHostAlloc((void **)&b->step_h, b->step_cap, cudaHostAllocDefault));
    if (b->core.err == cudaSuccess) CK(b, cudaHostAlloc((void **)&b->logits_h, (size_t)b->V * f, cudaHostAllocDefault));
    if (b->core.err != cudaSuccess)
        return pc_fail(err, PC_ERR_NOMEM, "backend cuda: device buffers for batch %d, context %lld: %s", b->nb,
                       (long long)b->n_ctx, b->core.where);
    return PC_OK;
}

/* A forward's own: streams, events, the attention kernels' shared memory, cuBLAS. */
static pc_status init_streams(cuda_backend *b, pc_error *err) {
    if (!CK(b, cudaSetDevice(b->sh->device))) return REPORT(b, err);
    CK(b, cudaStreamCreateWithFlags(&b->stream, cudaStreamNonBlocking));
    CK(b, cudaStreamCreateWithFlags(&b->copy_stream, cudaStreamNonBlocking));
    for (int i = 0; i < 2; i++) {
        CK(b, cudaEventCreateWithFlags(&b->ev_copied[i], cudaEventDisableTiming));
        CK(b, cudaEventCreateWithFlags(&b->ev_used[i], cudaEventDisableTiming));
    }
    CK(b, pc_cu_attention_init());
    if (b->core.err != cudaSuccess) return REPORT(b, err);
    if (!CKB(b, cublasCreate(&b->blas)) || !CKB(b, cublasSetStream(b->blas, b->stream))) return REPORT(b, err);
    return PC_OK;
}

bool pc_backend_cuda_available(char *why, size_t why_cap) {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n == 0) {
        if (why && why_cap) snprintf(why, why_cap, "no CUDA GPU (%s)", e != cudaSuccess ? cudaGetErrorString(e) : "0 devices");
        (void)cudaGetLastError();
        return false;
    }
    struct cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess || prop.major < 9) {
        if (why && why_cap)
            snprintf(why, why_cap, "GPU 0 (%s) has compute capability %d.%d; the kernels are built for 9.0 (sm_90)", prop.name,
                     prop.major, prop.minor);
        return false;
    }
    return true;
}

/* The device's default pool keeps what spans give back instead of returning
 * it to the driver at every synchronization (its default), so a request's
 * spans are carved from memory the pool already holds. */
static bool keep_pool_memory(cuda_shared *sh) {
    cudaMemPool_t pool;
    uint64_t keep = UINT64_MAX;
    return CK(sh, cudaDeviceGetDefaultMemPool(&pool, sh->device)) &&
           CK(sh, cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep));
}

pc_status pc_backend_cuda_shared_create(const pc_model *m, const pc_backend_params *p, pc_backend_shared **out,
                                        pc_error *err) {
    *out = NULL;
    char why[256];
    if (!pc_backend_cuda_available(why, sizeof why)) return pc_fail(err, PC_ERR_UNSUPPORTED, "backend cuda: %s", why);
    pc_status s = check_model(m, err);
    if (s != PC_OK) return s;
    cuda_shared *sh = calloc(1, sizeof *sh);
    if (!sh) return pc_fail(err, PC_ERR_NOMEM, "out of memory creating the CUDA backend");
    sh->base = (pc_backend_shared){.kind = PC_BACKEND_CUDA, .ops = &cuda_shared_ops, .m = m};
    sh->device = p->device;
    sh->no_copies = p->no_weight_copies;
    sh->mem_device = (pc_kv_mem){.loc = PC_KV_DEVICE, .alloc = dev_span_alloc, .free = dev_span_free, .copy = dev_span_copy, .ctx = sh};
    sh->mem_pinned = (pc_kv_mem){.loc = PC_KV_PINNED, .alloc = pinned_alloc, .free = pinned_free, .copy = pinned_copy, .ctx = sh};
    struct cudaDeviceProp prop;
    if (CK(sh, cudaSetDevice(sh->device)) && CK(sh, cudaGetDeviceProperties(&prop, sh->device)) &&
        CK(sh, cudaStreamCreateWithFlags(&sh->stream, cudaStreamNonBlocking)) && keep_pool_memory(sh)) {
        sh->n_sm = prop.multiProcessorCount;
        if ((s = upload_weights(sh, err)) == PC_OK) s = CK(sh, cudaStreamSynchronize(sh->stream)) ? PC_OK : REPORT(sh, err);
    } else {
        s = REPORT(sh, err);
    }
    if (s != PC_OK) {
        shared_free(&sh->base);
        return s;
    }
    *out = &sh->base;
    return PC_OK;
}

pc_status pc_backend_cuda_create(const pc_model *m, const pc_backend_params *p, int32_t nb, int64_t n_ctx,
                                 pc_backend **out, pc_error *err) {
    *out = NULL;
    cuda_backend *b = calloc(1, sizeof *b);
    if (!b) return pc_fail(err, PC_ERR_NOMEM, "out of memory creating the CUDA backend");
    pc_status s = PC_OK;
    if (p->shared) {
        b->sh = (cuda_shared *)p->shared;
    } else {
        pc_backend_shared *own = NULL;
        if ((s = pc_backend_cuda_shared_create(m, p, &own, err)) != PC_OK) {
            free(b);
            return s;
        }
        b->sh = (cuda_shared *)own;
        b->own_shared = true;
    }
    const pc_hparams *hp = &m->hp;
    b->base.ops = &cuda_ops;
    b->base.kind = PC_BACKEND_CUDA;
    b->base.span_loc = PC_KV_DEVICE;
    b->base.max_seqs = 1;
    b->m = m;
    b->nb = nb;
    b->n_ctx = n_ctx;
    b->E = hp->n_embd;
    b->Q = hp->n_head * hp->head_dim;
    b->KV = hp->n_head_kv * hp->head_dim;
    b->QKV = b->Q + 2 * b->KV;
    b->FF = hp->n_ff;
    b->V = hp->n_vocab;
    b->R = hp->rope_dim / 2;
    if ((s = init_streams(b, err)) == PC_OK && (s = alloc_buffers(b, err)) == PC_OK &&
        CKB(b, cublasSetWorkspace(b->blas, b->blas_ws, BLAS_WS)))
        s = CK(b, cudaStreamSynchronize(b->stream)) ? PC_OK : REPORT(b, err);
    else if (s == PC_OK)
        s = REPORT(b, err);
    if (s != PC_OK) {
        cuda_free(&b->base);
        return s;
    }
    b->base.acts = (pc_acts){.x = b->x, .xn = b->xn, .q = b->q, .k = b->k, .v = b->v, .att = b->att, .gate = b->gate,
                             .up = b->up};
    *out = &b->base;
    return PC_OK;
}
