/* model.h - transformer architectures as table entries, hyper-parameters, and weights bound in place.
 *
 * An architecture is a row of pc_arch_desc: which norms, which RoPE ordering
 * (or ALiBi), which feed-forward, which optional tensors. The forward pass
 * reads these flags; adding gemma3, falcon or mpt means adding a row and the
 * small kernels it names, not forking the layer loop.
 *
 * Weights are bound in place: each pc_weight points into the GGUF mapping,
 * which the model keeps open for its lifetime, and that pointer and type are
 * what every backend reads. On CPUs with a SIMD path the matrices also get a
 * repacked copy for the CPU kernels (kernels/cpu/pack.h), owned by the model. */
#ifndef PC_MODEL_H
#define PC_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "gguf/gguf.h"
#include "kv/kv.h"
#include "pcache.h"
#include "tensor/types.h"
#include "util/threadpool.h"

typedef enum pc_norm_kind { PC_NORM_RMS = 0, PC_NORM_LAYER } pc_norm_kind;
typedef enum pc_pos_kind { PC_POS_ROPE_NORMAL = 0, PC_POS_ROPE_NEOX, PC_POS_ALIBI } pc_pos_kind;
typedef enum pc_ffn_kind { PC_FFN_SWIGLU = 0, PC_FFN_GEGLU, PC_FFN_GELU } pc_ffn_kind;

typedef struct pc_arch_desc {
    const char *name;      /* general.architecture and the metadata key prefix */
    pc_norm_kind norm;
    pc_pos_kind pos;
    pc_ffn_kind ffn;
    bool qkv_bias_allowed; /* Qwen2: q/k/v biases */
    bool qk_norm;          /* Gemma 3: per-head RMSNorm of q and k */
    bool post_norms;       /* Gemma 3: norms after attention and ffn outputs */
    bool embd_scale;       /* Gemma: embeddings times sqrt(n_embd) */
} pc_arch_desc;

/* The row for an architecture name, or NULL. */
const pc_arch_desc *pc_arch_find(const char *name, size_t len);

typedef struct pc_hparams {
    int32_t n_vocab;
    int32_t n_embd;
    int32_t n_layer;
    int32_t n_head;
    int32_t n_head_kv;
    int32_t head_dim;     /* key/value length per head */
    int32_t n_ff;
    int32_t n_ctx_train;
    float norm_eps;
    float rope_theta;     /* freq base */
    float rope_scale;     /* linear position scale: positions are divided by it (1 = none) */
    int32_t rope_dim;     /* dimensions rotated per head (<= head_dim) */
} pc_hparams;

typedef struct pc_weight {
    pc_type type;
    const void *data;     /* in the mapping: the GGUF blocks */
    const void *packed;   /* the CPU's repacked copy (pc_pack of data), inside pc_model.pack_buf; or NULL */
    int64_t ne0, ne1;     /* ne0 = input (row) length, ne1 = rows */
} pc_weight;

typedef struct pc_layer_weights {
    pc_weight attn_norm;  /* [n_embd] F32 */
    pc_weight wq, wk, wv; /* [n_embd] -> n_head*head_dim / n_head_kv*head_dim */
    pc_weight bq, bk, bv; /* optional biases (data NULL when absent) */
    pc_weight wo;         /* n_head*head_dim -> n_embd */
    pc_weight q_norm, k_norm;         /* optional [head_dim] */
    pc_weight attn_post_norm;         /* optional [n_embd] */
    pc_weight ffn_norm;               /* [n_embd] */
    pc_weight ffn_gate, ffn_up;       /* n_embd -> n_ff */
    pc_weight ffn_down;               /* n_ff -> n_embd */
    pc_weight ffn_post_norm;          /* optional */
} pc_layer_weights;

typedef struct pc_model {
    pc_gguf *gguf;        /* owned; weights point into it */
    const pc_arch_desc *arch;
    pc_hparams hp;
    pc_weight tok_embd;   /* [n_vocab rows of n_embd] */
    pc_weight output_norm;
    pc_weight output;     /* tok_embd when tied */
    pc_weight rope_freqs; /* optional per-dimension frequency factors [rope_dim/2] F32 */
    pc_layer_weights *layers; /* [n_layer] */
    void *pack_buf;       /* owned: every weight's packed copy, pack_bytes in all (NULL: none) */
    size_t pack_bytes;
} pc_model;

/* Takes ownership of g on success and on failure (closes it). Packs the
 * matrices for the CPU when this CPU has a SIMD path (pc_model_pack). */
pc_status pc_model_load(pc_gguf *g, pc_model **out, pc_error *err);
/* Gives every matrix of a packable type (kernels/cpu/pack.h) its repacked copy,
 * spread over the threads of a temporary pool; then hints the OS that the GGUF
 * pages of matrices only the CPU kernels read are not needed (the bytes stay
 * valid for other readers). In model_pack.c. */
pc_status pc_model_pack(pc_model *m, pc_error *err);

/* 1 when pc_model_pack released the GGUF pages of the tensor whose data starts
 * at data (a packed matrix other than the embedding table): a later reader of
 * those bytes (the fingerprint) should release them again. */
int pc_model_pages_released(const pc_model *m, const void *data);
void pc_model_free(pc_model *m);

/* A new KV span shaped for this model's layers and K/V heads (refcount 1), or
 * NULL when out of memory. The span is kv's; only its shape is the model's. */
static inline pc_kv_span *pc_kv_span_for_model(const pc_model *m, int32_t cap) {
    return pc_kv_span_create(m->hp.n_layer, m->hp.n_head_kv * m->hp.head_dim, cap);
}

/* The model fingerprint (model_digest.c): SHA-256 over the architecture, the
 * hyper-parameters and every tensor's name, type, shape and data. It names
 * the model in store keys and cache folders. pool may be NULL (one thread). */
pc_status pc_model_digest(const pc_model *m, pc_pool *pool, uint8_t out[32], pc_error *err);

/* KV bytes a token needs in every layer: 2 (K and V) x layers x kv_heads x head_dim x sizeof(f16). */
size_t pc_model_kv_bytes_per_token(const pc_model *m);

#endif
