/* tiny_model.h - tiny seeded transformer models written with pcache's own GGUF writer.
 *
 * Used by tests to cover architectures and tensor types that have no small
 * real model. Weights are drawn from a fixed-seed generator, quantized with
 * the reference quantizer of the requested type, and written to a temporary
 * GGUF file. Header-only for the tests (static functions). */
#ifndef PC_TESTS_TINY_MODEL_H
#define PC_TESTS_TINY_MODEL_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gguf/gguf.h"
#include "kernels/cpu/quant.h"

typedef struct tiny_spec {
    const char *arch;     /* "llama", "qwen2", ... */
    int n_vocab, n_embd, n_layer, n_head, n_head_kv, n_ff, n_ctx;
    pc_type wtype;        /* matrices */
    pc_type etype;        /* token embedding */
    int tied;             /* no output.weight */
    int qkv_bias;
    float rope_theta;
    uint64_t seed;
} tiny_spec;

static tiny_spec tiny_default(void) {
    return (tiny_spec){.arch = "llama", .n_vocab = 64, .n_embd = 64, .n_layer = 2, .n_head = 4, .n_head_kv = 2,
                       .n_ff = 128, .n_ctx = 256, .wtype = PC_TYPE_F32, .etype = PC_TYPE_F32, .tied = 1,
                       .rope_theta = 10000.0f, .seed = 42};
}

static uint64_t tiny_rng(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Uniform in [-a, a]. */
static float tiny_uniform(uint64_t *s, float a) {
    return ((float)(tiny_rng(s) >> 40) / (float)(1ULL << 24) * 2.0f - 1.0f) * a;
}

static int tiny_add(pc_gguf_writer *w, uint64_t *rng, const char *name, pc_type t, int64_t ne0, int64_t ne1, float scale,
                    float offset) {
    size_t n = (size_t)(ne0 * ne1);
    float *f = malloc(n * sizeof *f);
    size_t bytes = pc_row_size(t, ne0) * (size_t)ne1;
    void *q = malloc(bytes ? bytes : 1);
    if (!f || !q) return -1;
    /* matrices scaled by 1/sqrt(fan-in) (relative to 64) so wider tiny models stay as
     * well-conditioned as narrow ones instead of amplifying rounding noise */
    const float sc = ne1 > 1 ? scale * sqrtf(64.0f / (float)ne0) : scale;
    for (size_t i = 0; i < n; i++) f[i] = offset + tiny_uniform(rng, sc);
    for (int64_t r = 0; r < ne1; r++)
        pc_quantize_row(t, f + r * ne0, (char *)q + (size_t)r * pc_row_size(t, ne0), ne0);
    int64_t ne[2] = {ne0, ne1};
    pc_status s = pc_gguf_writer_add_tensor(w, name, t, ne1 > 1 ? 2 : 1, ne, q);
    free(f);
    free(q);
    return s == PC_OK ? 0 : -1;
}

static void tiny_kv(pc_gguf_writer *w, const tiny_spec *sp) {
    char k[96];
#define KEY(suffix) (snprintf(k, sizeof k, "%s.%s", sp->arch, suffix), k)
    pc_gguf_writer_set_str(w, "general.architecture", sp->arch);
    pc_gguf_writer_set_str(w, "general.name", "tiny");
    pc_gguf_writer_set_u32(w, KEY("context_length"), (uint32_t)sp->n_ctx);
    pc_gguf_writer_set_u32(w, KEY("embedding_length"), (uint32_t)sp->n_embd);
    pc_gguf_writer_set_u32(w, KEY("block_count"), (uint32_t)sp->n_layer);
    pc_gguf_writer_set_u32(w, KEY("feed_forward_length"), (uint32_t)sp->n_ff);
    pc_gguf_writer_set_u32(w, KEY("attention.head_count"), (uint32_t)sp->n_head);
    pc_gguf_writer_set_u32(w, KEY("attention.head_count_kv"), (uint32_t)sp->n_head_kv);
    pc_gguf_writer_set_f32(w, KEY("attention.layer_norm_rms_epsilon"), 1e-5f);
    pc_gguf_writer_set_f32(w, KEY("rope.freq_base"), sp->rope_theta);
#undef KEY
}

/* Writes the model to a fresh temporary file; returns its malloc'd path or NULL. */
static char *tiny_model_write(const tiny_spec *sp) {
    pc_gguf_writer *w = pc_gguf_writer_create();
    if (!w) return NULL;
    uint64_t rng = sp->seed;
    const int E = sp->n_embd, hd = sp->n_embd / sp->n_head, KV = hd * sp->n_head_kv;
    tiny_kv(w, sp);
    int bad = tiny_add(w, &rng, "token_embd.weight", sp->etype, E, sp->n_vocab, 1.0f, 0.0f);
    bad |= tiny_add(w, &rng, "output_norm.weight", PC_TYPE_F32, E, 1, 0.2f, 1.0f);
    if (!sp->tied) bad |= tiny_add(w, &rng, "output.weight", sp->wtype, E, sp->n_vocab, 0.3f, 0.0f);
    for (int l = 0; l < sp->n_layer && !bad; l++) {
        char n[64];
#define T(suffix, type, ne0, ne1, sc, off) \
    (snprintf(n, sizeof n, "blk.%d." suffix, l), tiny_add(w, &rng, n, type, ne0, ne1, sc, off))
        bad |= T("attn_norm.weight", PC_TYPE_F32, E, 1, 0.2f, 1.0f);
        bad |= T("attn_q.weight", sp->wtype, E, E, 0.4f, 0.0f);
        bad |= T("attn_k.weight", sp->wtype, E, KV, 0.4f, 0.0f);
        bad |= T("attn_v.weight", sp->wtype, E, KV, 0.4f, 0.0f);
        bad |= T("attn_output.weight", sp->wtype, E, E, 0.2f, 0.0f);
        if (sp->qkv_bias) {
            bad |= T("attn_q.bias", PC_TYPE_F32, E, 1, 0.3f, 0.0f);
            bad |= T("attn_k.bias", PC_TYPE_F32, KV, 1, 0.3f, 0.0f);
            bad |= T("attn_v.bias", PC_TYPE_F32, KV, 1, 0.3f, 0.0f);
        }
        bad |= T("ffn_norm.weight", PC_TYPE_F32, E, 1, 0.2f, 1.0f);
        bad |= T("ffn_gate.weight", sp->wtype, E, sp->n_ff, 0.3f, 0.0f);
        bad |= T("ffn_up.weight", sp->wtype, E, sp->n_ff, 0.3f, 0.0f);
        bad |= T("ffn_down.weight", sp->wtype, sp->n_ff, E, 0.2f, 0.0f);
#undef T
    }
    char *path = NULL;
    if (!bad) {
        char tmpl[] = "/tmp/pcache-tiny-XXXXXX";
        int fd = mkstemp(tmpl);
        if (fd >= 0) {
            close(fd);
            pc_error err = {0};
            if (pc_gguf_writer_write(w, tmpl, &err) == PC_OK)
                path = strdup(tmpl);
            else
                fprintf(stderr, "tiny model: %s\n", err.msg);
        }
    }
    pc_gguf_writer_free(w);
    return path;
}

#endif
