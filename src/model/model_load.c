/* model_load.c - hyper-parameters from GGUF metadata and weights bound in place.
 *
 * Every tensor the architecture needs is looked up by its GGUF name and its
 * shape and type are checked against the hyper-parameters, so the forward
 * pass can trust them. Errors name the file, the tensor and what was expected. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/quant.h"
#include "model/model.h"
#include "util/error.h"

typedef struct loader {
    pc_gguf *g;
    const char *path;
    char prefix[64];
    pc_error *err;
} loader;

static const char *key(loader *L, char *buf, size_t cap, const char *suffix) {
    snprintf(buf, cap, "%s.%s", L->prefix, suffix);
    return buf;
}

/* Required u32 hyper-parameter. */
static pc_status get_u32_req(loader *L, const char *suffix, int32_t *out) {
    char k[128];
    uint32_t v;
    pc_status s = pc_gguf_get_u32(L->g, key(L, k, sizeof k, suffix), &v, L->err);
    if (s == PC_ERR_NOT_FOUND) return pc_fail(L->err, PC_ERR_FORMAT, "%s: missing metadata key '%s'", L->path, k);
    if (s != PC_OK) return s;
    if (v == 0 || v > (1u << 30)) return pc_fail(L->err, PC_ERR_FORMAT, "%s: metadata '%s' = %u is out of range", L->path, k, v);
    *out = (int32_t)v;
    return PC_OK;
}

/* Optional u32: keeps *out when the key is absent. */
static pc_status get_u32_opt(loader *L, const char *suffix, int32_t *out) {
    char k[128];
    uint32_t v;
    pc_status s = pc_gguf_get_u32(L->g, key(L, k, sizeof k, suffix), &v, L->err);
    if (s == PC_ERR_NOT_FOUND) return PC_OK;
    if (s != PC_OK) return s;
    if (v > (1u << 30)) return pc_fail(L->err, PC_ERR_FORMAT, "%s: metadata '%s' = %u is out of range", L->path, k, v);
    *out = (int32_t)v;
    return PC_OK;
}

static pc_status get_f32_opt(loader *L, const char *suffix, float *out) {
    char k[128];
    float v;
    pc_status s = pc_gguf_get_f32(L->g, key(L, k, sizeof k, suffix), &v, L->err);
    if (s == PC_ERR_NOT_FOUND) return PC_OK;
    if (s != PC_OK) return s;
    if (!isfinite(v)) return pc_fail(L->err, PC_ERR_FORMAT, "%s: metadata '%s' is not finite", L->path, k);
    *out = v;
    return PC_OK;
}

static pc_status read_rope_scaling(loader *L, pc_hparams *hp) {
    char k[128];
    pc_gguf_str type;
    pc_status s = pc_gguf_get_str(L->g, key(L, k, sizeof k, "rope.scaling.type"), &type, L->err);
    if (s == PC_ERR_NOT_FOUND) return PC_OK;
    if (s != PC_OK) return s;
    if (type.len == 4 && memcmp(type.ptr, "none", 4) == 0) return PC_OK;
    if (!(type.len == 6 && memcmp(type.ptr, "linear", 6) == 0))
        return pc_fail(L->err, PC_ERR_UNSUPPORTED, "%s: rope scaling type '%.*s' is not supported (none, linear)",
                       L->path, (int)type.len, type.ptr);
    float factor = 1.0f;
    if ((s = get_f32_opt(L, "rope.scaling.factor", &factor)) != PC_OK) return s;
    if (factor <= 0) return pc_fail(L->err, PC_ERR_FORMAT, "%s: rope.scaling.factor %g must be > 0", L->path, factor);
    hp->rope_scale = factor;
    return PC_OK;
}

static pc_status read_hparams(loader *L, pc_hparams *hp) {
    pc_status s;
    memset(hp, 0, sizeof *hp);
    if ((s = get_u32_req(L, "embedding_length", &hp->n_embd)) != PC_OK) return s;
    if ((s = get_u32_req(L, "block_count", &hp->n_layer)) != PC_OK) return s;
    if ((s = get_u32_req(L, "feed_forward_length", &hp->n_ff)) != PC_OK) return s;
    if ((s = get_u32_req(L, "attention.head_count", &hp->n_head)) != PC_OK) return s;
    hp->n_head_kv = hp->n_head;
    if ((s = get_u32_opt(L, "attention.head_count_kv", &hp->n_head_kv)) != PC_OK) return s;
    hp->n_ctx_train = 2048;
    if ((s = get_u32_opt(L, "context_length", &hp->n_ctx_train)) != PC_OK) return s;
    if (hp->n_embd % hp->n_head != 0)
        return pc_fail(L->err, PC_ERR_FORMAT, "%s: embedding_length %d is not a multiple of head_count %d", L->path,
                       hp->n_embd, hp->n_head);
    hp->head_dim = hp->n_embd / hp->n_head;
    if ((s = get_u32_opt(L, "attention.key_length", &hp->head_dim)) != PC_OK) return s;
    if (hp->n_head_kv <= 0 || hp->n_head % hp->n_head_kv != 0)
        return pc_fail(L->err, PC_ERR_FORMAT, "%s: head_count %d is not a multiple of head_count_kv %d", L->path,
                       hp->n_head, hp->n_head_kv);
    hp->norm_eps = 1e-5f;
    if ((s = get_f32_opt(L, "attention.layer_norm_rms_epsilon", &hp->norm_eps)) != PC_OK) return s;
    hp->rope_theta = 10000.0f;
    if ((s = get_f32_opt(L, "rope.freq_base", &hp->rope_theta)) != PC_OK) return s;
    hp->rope_dim = hp->head_dim;
    if ((s = get_u32_opt(L, "rope.dimension_count", &hp->rope_dim)) != PC_OK) return s;
    if (hp->rope_dim > hp->head_dim || hp->rope_dim % 2)
        return pc_fail(L->err, PC_ERR_FORMAT, "%s: rope.dimension_count %d must be even and <= head dim %d", L->path,
                       hp->rope_dim, hp->head_dim);
    hp->rope_scale = 1.0f;
    return read_rope_scaling(L, hp);
}

/* Binds a tensor; ne1 < 0 means a vector. required=false leaves w->data NULL if absent. */
static pc_status bind(loader *L, pc_weight *w, const char *name, int64_t ne0, int64_t ne1, bool required) {
    const pc_gguf_tensor *t = pc_gguf_find_tensor(L->g, name);
    memset(w, 0, sizeof *w);
    if (!t) {
        if (!required) return PC_OK;
        return pc_fail(L->err, PC_ERR_FORMAT, "%s: missing tensor '%s'", L->path, name);
    }
    int64_t want1 = ne1 < 0 ? 1 : ne1;
    if (t->ne[0] != ne0 || t->ne[1] != want1 || t->ne[2] != 1 || t->ne[3] != 1)
        return pc_fail(L->err, PC_ERR_FORMAT,
                       "%s: tensor '%s' has shape [%lld, %lld, %lld, %lld], expected [%lld, %lld]", L->path, name,
                       (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2], (long long)t->ne[3],
                       (long long)ne0, (long long)want1);
    if (ne1 < 0 && t->type != PC_TYPE_F32)
        return pc_fail(L->err, PC_ERR_UNSUPPORTED, "%s: tensor '%s' is %s; vectors must be F32", L->path, name,
                       pc_type_name(t->type));
    if (ne1 >= 0 && pc_vec_dot_type(t->type) == PC_TYPE_COUNT)
        return pc_fail(L->err, PC_ERR_UNSUPPORTED, "%s: tensor '%s' has type %s, which has no matrix kernel", L->path,
                       name, pc_type_name(t->type));
    w->type = t->type;
    w->data = t->data;
    w->ne0 = t->ne[0];
    w->ne1 = want1;
    return PC_OK;
}

static pc_status bind_layer(loader *L, const pc_arch_desc *a, const pc_hparams *hp, int i, pc_layer_weights *lw) {
    char n[96];
    const int64_t E = hp->n_embd, Q = (int64_t)hp->n_head * hp->head_dim, KV = (int64_t)hp->n_head_kv * hp->head_dim;
    pc_status s;
#define BIND(field, fmt, ne0, ne1, req)                                        \
    do {                                                                       \
        snprintf(n, sizeof n, "blk.%d." fmt, i);                               \
        if ((s = bind(L, &lw->field, n, ne0, ne1, req)) != PC_OK) return s;    \
    } while (0)
    BIND(attn_norm, "attn_norm.weight", E, -1, true);
    BIND(wq, "attn_q.weight", E, Q, true);
    BIND(wk, "attn_k.weight", E, KV, true);
    BIND(wv, "attn_v.weight", E, KV, true);
    BIND(wo, "attn_output.weight", Q, E, true);
    BIND(bq, "attn_q.bias", Q, -1, false);
    BIND(bk, "attn_k.bias", KV, -1, false);
    BIND(bv, "attn_v.bias", KV, -1, false);
    BIND(q_norm, "attn_q_norm.weight", hp->head_dim, -1, a->qk_norm);
    BIND(k_norm, "attn_k_norm.weight", hp->head_dim, -1, a->qk_norm);
    BIND(attn_post_norm, "post_attention_norm.weight", E, -1, a->post_norms);
    BIND(ffn_norm, "ffn_norm.weight", E, -1, true);
    BIND(ffn_gate, "ffn_gate.weight", E, hp->n_ff, a->ffn != PC_FFN_GELU);
    BIND(ffn_up, "ffn_up.weight", E, hp->n_ff, true);
    BIND(ffn_down, "ffn_down.weight", hp->n_ff, E, true);
    BIND(ffn_post_norm, "post_ffw_norm.weight", E, -1, a->post_norms);
#undef BIND
    if (!a->qkv_bias_allowed && (lw->bq.data || lw->bk.data || lw->bv.data))
        return pc_fail(L->err, PC_ERR_UNSUPPORTED, "%s: layer %d has q/k/v biases, which architecture '%s' does not use",
                       L->path, i, a->name);
    return PC_OK;
}

static pc_status load_into(loader *L, pc_model *m) {
    pc_gguf_str arch;
    pc_status s = pc_gguf_get_str(L->g, "general.architecture", &arch, L->err);
    if (s == PC_ERR_NOT_FOUND) return pc_fail(L->err, PC_ERR_FORMAT, "%s: missing general.architecture", L->path);
    if (s != PC_OK) return s;
    m->arch = pc_arch_find(arch.ptr, arch.len);
    if (!m->arch)
        return pc_fail(L->err, PC_ERR_UNSUPPORTED, "%s: architecture '%.*s' is not supported (llama, mistral, qwen2)",
                       L->path, (int)arch.len, arch.ptr);
    snprintf(L->prefix, sizeof L->prefix, "%s", m->arch->name);
    if ((s = read_hparams(L, &m->hp)) != PC_OK) return s;
    const pc_gguf_tensor *te = pc_gguf_find_tensor(L->g, "token_embd.weight");
    if (!te) return pc_fail(L->err, PC_ERR_FORMAT, "%s: missing tensor 'token_embd.weight'", L->path);
    m->hp.n_vocab = (int32_t)te->ne[1];
    if ((s = bind(L, &m->tok_embd, "token_embd.weight", m->hp.n_embd, m->hp.n_vocab, true)) != PC_OK) return s;
    if ((s = bind(L, &m->output_norm, "output_norm.weight", m->hp.n_embd, -1, true)) != PC_OK) return s;
    if ((s = bind(L, &m->output, "output.weight", m->hp.n_embd, m->hp.n_vocab, false)) != PC_OK) return s;
    if (!m->output.data) m->output = m->tok_embd;
    if ((s = bind(L, &m->rope_freqs, "rope_freqs.weight", m->hp.rope_dim / 2, -1, false)) != PC_OK) return s;
    m->layers = calloc((size_t)m->hp.n_layer, sizeof *m->layers);
    if (!m->layers) return pc_fail(L->err, PC_ERR_NOMEM, "%s: out of memory for %d layers", L->path, m->hp.n_layer);
    for (int i = 0; i < m->hp.n_layer; i++)
        if ((s = bind_layer(L, m->arch, &m->hp, i, &m->layers[i])) != PC_OK) return s;
    return pc_model_pack(m, L->err);
}

pc_status pc_model_load(pc_gguf *g, pc_model **out, pc_error *err) {
    *out = NULL;
    pc_model *m = calloc(1, sizeof *m);
    if (!m) {
        pc_gguf_close(g);
        return pc_fail(err, PC_ERR_NOMEM, "out of memory loading model");
    }
    m->gguf = g;
    loader L = {.g = g, .path = pc_gguf_path(g), .err = err};
    pc_status s = load_into(&L, m);
    if (s != PC_OK) {
        pc_model_free(m);
        return s;
    }
    *out = m;
    return PC_OK;
}

void pc_model_free(pc_model *m) {
    if (!m) return;
    free(m->pack_buf);
    free(m->layers);
    pc_gguf_close(m->gguf);
    free(m);
}

size_t pc_model_kv_bytes_per_token(const pc_model *m) {
    return 2u * (size_t)m->hp.n_layer * (size_t)m->hp.n_head_kv * (size_t)m->hp.head_dim * sizeof(pc_f16);
}
