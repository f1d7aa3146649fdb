/* backend.h - the table of steps the forward pass runs on: CPU, CUDA.
 *
 * forward.c is the one place that knows the order of a transformer block; a
 * backend knows how to run each step on its own memory (ggml's
 * ggml_backend_i is the model). A backend owns what it computes on: its
 * activations (pc_acts, sized once at create for chunks of up to n_batch
 * tokens and contexts of up to n_ctx keys), its copy of the weights if it
 * needs one, and the KV spans it makes (span_new). forward.c never reads an
 * activation: it hands the backend's buffers back to it.
 *
 * One batch (the rows of one or more sequences, each over its own span list)
 * runs as
 *   begin, embed, per layer { norm, matmul (q, k, v), qkv, attention,
 *   matmul_add (wo), norm, matmul (gate, up), swiglu, matmul_add (down) },
 *   logits (when asked), end.
 * Steps may only be queued (CUDA runs them on a stream); logits and end
 * return once the logits are in host memory and the batch's KV rows written.
 *
 * What every forward of one model on one backend shares (the weights where the
 * backend computes, and the memory KV spans are made in) is a
 * pc_backend_shared: an engine makes one and hands it to each forward it
 * creates, so a CUDA model is uploaded once, not once per forward.
 *
 * Invariants:
 *  1. Steps do not fail. begin checks everything that could (span locations,
 *     sizes, device errors are reported by logits and end), so a step that
 *     cannot run is a bug and aborts.
 *  2. The CPU backend computes, bit for bit, what forward.c computed before
 *     this table existed, with the same kernels and the same threads.
 *  3. A backend reads spans in place (zero copy) wherever it can address them;
 *     the CUDA backend copies host spans layer by layer into device staging,
 *     overlapping the copy with compute, and reads device spans in place.
 *  4. Spans a backend made must be released before its shared state is freed. */
#ifndef PC_BACKEND_H
#define PC_BACKEND_H

#include <stdbool.h>
#include <stdint.h>

#include "kernels/cpu/quant.h"
#include "kv/kv.h"
#include "model/model.h"
#include "pcache.h"
#include "util/threadpool.h"

typedef enum pc_backend_kind { PC_BACKEND_AUTO = -1, PC_BACKEND_CPU = 0, PC_BACKEND_CUDA = 1 } pc_backend_kind;

/* "cpu", "cuda", "auto" -> kind; false for anything else. */
bool pc_backend_kind_parse(const char *name, pc_backend_kind *out);
const char *pc_backend_kind_name(pc_backend_kind k);
/* True when this build has the CUDA backend and a usable GPU is present.
 * why (may be NULL) receives a one-line reason when it is not. */
bool pc_backend_cuda_available(char *why, size_t why_cap);

typedef struct pc_backend_shared pc_backend_shared;

/* What a kind of shared state does (the pc_backend_shared_* functions below
 * call through it). device_copy and host_copy return NULL, device_free 0,
 * on a backend without device memory. */
typedef struct pc_backend_shared_ops {
    void (*free)(pc_backend_shared *s);
    pc_kv_span *(*span_new)(pc_backend_shared *s, int32_t cap);
    pc_kv_span *(*device_copy)(pc_backend_shared *s, const pc_kv_span *src);
    pc_kv_span *(*host_copy)(pc_backend_shared *s, const pc_kv_span *src);
    size_t (*device_free)(pc_backend_shared *s);
} pc_backend_shared_ops;

/* The kind of every shared state, its operations and its model; a backend's
 * own state follows it (the CPU's is only this). */
struct pc_backend_shared {
    pc_backend_kind kind;
    const pc_backend_shared_ops *ops;
    const pc_model *m;
};

typedef struct pc_backend_params {
    pc_backend_kind kind;   /* AUTO: CUDA when available, else CPU */
    pc_pool *pool;          /* CPU: the threads (borrowed) */
    pc_isa isa;             /* CPU: the SIMD path */
    int device;             /* CUDA: device ordinal */
    bool no_weight_copies;  /* CUDA: never keep bf16 copies of quantized matrices (dequantize per long product) */
    pc_backend_shared *shared; /* borrowed, of this kind and model; NULL: the backend makes its own */
} pc_backend_params;

/* The weights and span memory of model m on the backend p names (AUTO
 * resolved). m is borrowed. Thread-safe to share between forwards. */
pc_status pc_backend_shared_create(const pc_model *m, const pc_backend_params *p, pc_backend_shared **out,
                                   pc_error *err);
void pc_backend_shared_free(pc_backend_shared *s); /* NULL-safe; after every span it made is released */
pc_backend_kind pc_backend_shared_kind(const pc_backend_shared *s);
/* A new span of the model's shape (refcount 1) where this backend keeps KV; NULL when out of memory. */
pc_kv_span *pc_backend_shared_span_new(pc_backend_shared *s, int32_t cap);

/* A new frozen copy of src (any location) with K and V in device memory,
 * finished when this returns; NULL on a backend without device memory, when
 * out of memory, or on a device error. Thread-safe. (The module store's
 * device tier makes its copies with this.) */
pc_kv_span *pc_backend_shared_device_copy(pc_backend_shared *s, const pc_kv_span *src);
/* A new frozen copy of src in pinned host memory, finished when this returns
 * (what the module store keeps of a span computed in device memory: its tiers
 * write and hash K and V from host memory); NULL on a backend without device
 * memory or on failure. Thread-safe. */
pc_kv_span *pc_backend_shared_host_copy(pc_backend_shared *s, const pc_kv_span *src);
/* Device memory free now, in bytes; 0 on a backend without device memory. */
size_t pc_backend_shared_device_free(pc_backend_shared *s);

/* The activations of one chunk; nb = n_batch. Element types are the
 * backend's own (CPU: f32 everywhere). */
typedef struct pc_acts {
    void *x;          /* [nb][n_embd] residual stream */
    void *xn;         /* [nb][n_embd] normed input of a sublayer */
    void *q;          /* [nb][n_head * head_dim] */
    void *k, *v;      /* [nb][n_head_kv * head_dim] */
    void *att;        /* [nb][n_head * head_dim] attention output */
    void *gate, *up;  /* [nb][n_ff]; gate holds silu(gate) * up after swiglu */
} pc_acts;

/* One sequence of a batch. */
typedef struct pc_bseq {
    const pc_kv_list *list;   /* its context: its ctx spans, then dst */
    pc_kv_span *dst;          /* rows [row0, row0 + n) are this batch's; pos and n already set */
    const int32_t *pos;       /* [n] */
    int32_t off;              /* its first row in the batch */
    int32_t row0;
    int32_t n;
} pc_bseq;

/* What the steps of one batch share. */
typedef struct pc_chunk {
    const pc_bseq *seqs;      /* at most the backend's max_seqs */
    int32_t n_seqs;
    const int32_t *tokens;    /* [n] every row, sequence after sequence */
    const int32_t *pos;       /* [n] */
    int32_t n;
    int32_t n_logits;         /* rows of logits the batch will ask for */
} pc_chunk;

typedef struct pc_backend pc_backend;

typedef struct pc_backend_ops {
    const char *name;
    void (*free)(pc_backend *b);
    /* A new span of this model's shape (refcount 1) with K and V at loc; NULL
     * when out of memory or loc is not one this backend makes. */
    pc_kv_span *(*span_new)(pc_backend *b, int32_t cap, pc_kv_loc loc);
    /* A new frozen copy of src (any location this backend reads) at loc. */
    pc_kv_span *(*span_copy)(pc_backend *b, const pc_kv_span *src, pc_kv_loc loc);
    pc_status (*begin)(pc_backend *b, const pc_chunk *c, pc_error *err);
    void (*embed)(pc_backend *b, const pc_weight *tok_embd, void *x);
    /* y[0, n) = rmsnorm(x[0, n)) * w, rows of n_embd */
    void (*norm)(pc_backend *b, void *y, const void *x, const pc_weight *w, int32_t n);
    /* ys[i] = x ws[i]^T for k <= 4 weights sharing the input x of n rows */
    void (*matmul)(pc_backend *b, const pc_weight *const *ws, void *const *ys, int k, const void *x, int32_t n);
    /* y += x w^T */
    void (*matmul_add)(pc_backend *b, const pc_weight *w, const void *x, int32_t n, void *y);
    /* q, k, v biases; RoPE of q and k at the rows' positions; every sequence's
     * K and V into its dst's rows (all stored before any row attends) */
    void (*qkv)(pc_backend *b, const pc_layer_weights *w, int32_t layer);
    /* matmul (q, k, v) then qkv, the same bits in fewer steps; NULL: the
     * forward runs those two */
    void (*matmul_qkv)(pc_backend *b, const pc_layer_weights *w, int32_t layer, const void *x, int32_t n);
    /* att = attention of each sequence's q over its list, by position */
    void (*attention)(pc_backend *b, int32_t layer);
    void (*swiglu)(pc_backend *b, int32_t n);
    /* gate = swiglu(x wg^T, x wu^T), the bits of matmul then swiglu in fewer
     * steps; NULL: the forward runs those two */
    void (*matmul_swiglu)(pc_backend *b, const pc_weight *wg, const pc_weight *wu, const void *x, int32_t n);
    /* x += down(swiglu(xn wg^T, xn wu^T)) with the layer's feed-forward
     * weights, the bits of matmul_swiglu then matmul_add in fewer steps;
     * NULL: the forward runs those */
    void (*ffn)(pc_backend *b, const pc_layer_weights *w, const void *xn, int32_t n);
    /* What follows attention up to the next layer's attention: matmul_add of
     * wo, the feed-forward block (norm, ffn) and, when next is not NULL, the
     * next layer's attention norm and matmul_qkv (layer + 1), with their bits
     * in fewer steps. false: nothing done, the forward runs those steps
     * (chunks this backend does not take this way); NULL: never taken. */
    bool (*after_attention)(pc_backend *b, const pc_layer_weights *w, const pc_layer_weights *next, int32_t layer,
                            int32_t n);
    /* out[i] = (rmsnorm(x[rows[i]]) * norm) head^T for i < n, in host memory */
    pc_status (*logits)(pc_backend *b, const pc_weight *norm, const pc_weight *head, const int32_t *rows, int32_t n,
                        float *out, pc_error *err);
    /* The batch's work is done and its KV rows are written. */
    pc_status (*end)(pc_backend *b, pc_error *err);
} pc_backend_ops;

struct pc_backend {
    const pc_backend_ops *ops;
    pc_backend_kind kind;
    pc_kv_loc span_loc;       /* where span_new puts spans by default */
    int32_t max_seqs;         /* sequences a batch may hold (the forward runs more one after another) */
    pc_acts acts;
};

/* A backend for model m with activations for chunks of n_batch tokens and
 * contexts of n_ctx keys. m (and p->pool) are borrowed and must outlive it. */
pc_status pc_backend_create(const pc_model *m, const pc_backend_params *p, int32_t n_batch, int64_t n_ctx,
                            pc_backend **out, pc_error *err);
void pc_backend_free(pc_backend *b); /* NULL-safe */

/* The backends; pc_backend_create picks one. */
pc_status pc_backend_cpu_create(const pc_model *m, const pc_backend_params *p, int32_t n_batch, int64_t n_ctx,
                                pc_backend **out, pc_error *err);
pc_status pc_backend_cuda_create(const pc_model *m, const pc_backend_params *p, int32_t n_batch, int64_t n_ctx,
                                 pc_backend **out, pc_error *err);
/* The CUDA shared state (pc_backend_shared_create picks it). */
pc_status pc_backend_cuda_shared_create(const pc_model *m, const pc_backend_params *p, pc_backend_shared **out,
                                        pc_error *err);

#endif
