/* write_model.c - pc_write_model: a GGUF model of a real shape with seeded
 * random weights, written with pcache's own GGUF writer, for timing where
 * real weights cannot travel (speed does not depend on the values).
 *
 *   pc_write_model --shape llama2-7b|smollm2-135m|qwen2.5-1.5b
 *                  --type bf16|f16|q4_0|q8_0|q4_k|... [--seed N] [--layers N] --out PATH
 *
 * Matrices are uniform in +-1/sqrt(fan-in), norms near 1; each row is drawn
 * from its own seeded stream, so the file does not depend on the thread count.
 * The vocabulary is a SentencePiece one (<unk>, <s>, </s>, the 256 byte
 * tokens, then "▁w<i>"), enough for pcache and llama.cpp to load the file. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/gguf.h"
#include "kernels/cpu/quant.h"
#include "util/threadpool.h"

typedef struct shape {
    const char *name, *arch;
    int n_vocab, n_embd, n_layer, n_head, n_head_kv, n_ff, n_ctx, qkv_bias, tied;
    float rope_theta;
} shape;

static const shape shapes[] = {
    {"llama2-7b", "llama", 32000, 4096, 32, 32, 32, 11008, 16384, 0, 0, 10000.0f},
    {"smollm2-135m", "llama", 49152, 576, 30, 9, 3, 1536, 8192, 0, 1, 100000.0f},
    {"qwen2.5-1.5b", "qwen2", 151936, 1536, 28, 12, 2, 8960, 32768, 1, 1, 1000000.0f},
};

static uint64_t mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

typedef struct gen_job {
    pc_type type;
    int64_t ne0, ne1;
    float scale, offset;
    uint64_t seed;
    char *out;
    size_t row_bytes;
    int64_t rows_per_task;
    int failed;
} gen_job;

static void gen_task(void *ctx, int task, int n_tasks, int thread) {
    (void)n_tasks, (void)thread;
    gen_job *j = ctx;
    float *row = malloc(sizeof(float) * (size_t)j->ne0);
    if (!row) {
        j->failed = 1;
        return;
    }
    const int64_t r0 = (int64_t)task * j->rows_per_task, r1 = r0 + j->rows_per_task < j->ne1 ? r0 + j->rows_per_task : j->ne1;
    for (int64_t r = r0; r < r1; r++) {
        uint64_t s = mix(j->seed ^ mix((uint64_t)r + 1));
        for (int64_t i = 0; i < j->ne0; i++) {
            s += 0x9e3779b97f4a7c15ULL;
            const float u = (float)(mix(s) >> 40) / (float)(1ULL << 24) * 2.0f - 1.0f;
            row[i] = j->offset + u * j->scale;
        }
        if (!pc_quantize_row(j->type, row, j->out + (size_t)r * j->row_bytes, j->ne0)) j->failed = 1;
    }
    free(row);
}

static int add_tensor(pc_gguf_writer *w, pc_pool *pool, const char *name, pc_type t, int64_t ne0, int64_t ne1,
                      float scale, float offset, uint64_t seed) {
    gen_job j = {.type = t, .ne0 = ne0, .ne1 = ne1, .scale = scale, .offset = offset, .seed = seed,
                 .row_bytes = pc_row_size(t, ne0)};
    if (!j.row_bytes) {
        fprintf(stderr, "pc_write_model: %s: %lld is not a multiple of %s's block\n", name, (long long)ne0, pc_type_name(t));
        return -1;
    }
    j.out = malloc(j.row_bytes * (size_t)ne1);
    if (!j.out) return -1;
    const int tasks = ne1 < 1024 ? (int)ne1 : 1024;
    j.rows_per_task = (ne1 + tasks - 1) / tasks;
    pc_pool_run(pool, gen_task, &j, (int)((ne1 + j.rows_per_task - 1) / j.rows_per_task));
    const int64_t ne[2] = {ne0, ne1};
    const int bad = j.failed || pc_gguf_writer_add_tensor(w, name, t, ne1 > 1 ? 2 : 1, ne, j.out) != PC_OK;
    free(j.out);
    return bad ? -1 : 0;
}

static void set_vocab(pc_gguf_writer *w, int n_vocab) {
    char **tok = malloc(sizeof(char *) * (size_t)n_vocab);
    float *score = malloc(sizeof(float) * (size_t)n_vocab);
    int32_t *type = malloc(sizeof(int32_t) * (size_t)n_vocab);
    for (int i = 0; i < n_vocab; i++) {
        tok[i] = malloc(24);
        score[i] = -(float)i;
        type[i] = 1;
        if (i == 0) snprintf(tok[i], 24, "<unk>"), type[i] = 2;
        else if (i == 1) snprintf(tok[i], 24, "<s>"), type[i] = 3;
        else if (i == 2) snprintf(tok[i], 24, "</s>"), type[i] = 3;
        else if (i < 259) snprintf(tok[i], 24, "<0x%02X>", i - 3), type[i] = 6;
        else snprintf(tok[i], 24, "\xe2\x96\x81w%d", i);
    }
    pc_gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
    pc_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)tok, (uint64_t)n_vocab);
    pc_gguf_writer_set_arr(w, "tokenizer.ggml.scores", PC_GGUF_FLOAT32, score, (uint64_t)n_vocab);
    pc_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", PC_GGUF_INT32, type, (uint64_t)n_vocab);
    pc_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 1);
    pc_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 2);
    pc_gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", 0);
    for (int i = 0; i < n_vocab; i++) free(tok[i]);
    free(tok), free(score), free(type);
}

static void set_hparams(pc_gguf_writer *w, const shape *s, int n_layer) {
    char k[96];
#define KEY(suffix) (snprintf(k, sizeof k, "%s.%s", s->arch, suffix), k)
    pc_gguf_writer_set_str(w, "general.architecture", s->arch);
    pc_gguf_writer_set_str(w, "general.name", s->name);
    pc_gguf_writer_set_u32(w, KEY("context_length"), (uint32_t)s->n_ctx);
    pc_gguf_writer_set_u32(w, KEY("embedding_length"), (uint32_t)s->n_embd);
    pc_gguf_writer_set_u32(w, KEY("block_count"), (uint32_t)n_layer);
    pc_gguf_writer_set_u32(w, KEY("feed_forward_length"), (uint32_t)s->n_ff);
    pc_gguf_writer_set_u32(w, KEY("attention.head_count"), (uint32_t)s->n_head);
    pc_gguf_writer_set_u32(w, KEY("attention.head_count_kv"), (uint32_t)s->n_head_kv);
    pc_gguf_writer_set_u32(w, KEY("rope.dimension_count"), (uint32_t)(s->n_embd / s->n_head));
    pc_gguf_writer_set_f32(w, KEY("attention.layer_norm_rms_epsilon"), 1e-5f);
    pc_gguf_writer_set_f32(w, KEY("rope.freq_base"), s->rope_theta);
#undef KEY
}

static int write_layers(pc_gguf_writer *w, pc_pool *pool, const shape *s, int n_layer, pc_type t, uint64_t seed) {
    const int64_t E = s->n_embd, hd = s->n_embd / s->n_head, KV = hd * s->n_head_kv, FF = s->n_ff;
    int bad = 0;
    char n[64];
    for (int l = 0; l < n_layer && !bad; l++) {
        uint64_t ls = mix(seed + 1000003ULL * (uint64_t)(l + 1));
#define T(suffix, type, ne0, ne1, sc, off) \
    (snprintf(n, sizeof n, "blk.%d." suffix, l), add_tensor(w, pool, n, type, ne0, ne1, sc, off, ls++))
        bad |= T("attn_norm.weight", PC_TYPE_F32, E, 1, 0.1f, 1.0f);
        bad |= T("attn_q.weight", t, E, E, 1.0f / sqrtf((float)E), 0.0f);
        bad |= T("attn_k.weight", t, E, KV, 1.0f / sqrtf((float)E), 0.0f);
        bad |= T("attn_v.weight", t, E, KV, 1.0f / sqrtf((float)E), 0.0f);
        bad |= T("attn_output.weight", t, E, E, 1.0f / sqrtf((float)E), 0.0f);
        if (s->qkv_bias) {
            bad |= T("attn_q.bias", PC_TYPE_F32, E, 1, 0.1f, 0.0f);
            bad |= T("attn_k.bias", PC_TYPE_F32, KV, 1, 0.1f, 0.0f);
            bad |= T("attn_v.bias", PC_TYPE_F32, KV, 1, 0.1f, 0.0f);
        }
        bad |= T("ffn_norm.weight", PC_TYPE_F32, E, 1, 0.1f, 1.0f);
        bad |= T("ffn_gate.weight", t, E, FF, 1.0f / sqrtf((float)E), 0.0f);
        bad |= T("ffn_up.weight", t, E, FF, 1.0f / sqrtf((float)E), 0.0f);
        bad |= T("ffn_down.weight", t, FF, E, 1.0f / sqrtf((float)FF), 0.0f);
#undef T
    }
    return bad;
}

static const pc_type type_list[] = {PC_TYPE_F32, PC_TYPE_F16, PC_TYPE_BF16, PC_TYPE_Q4_0, PC_TYPE_Q4_1, PC_TYPE_Q5_0,
                                    PC_TYPE_Q5_1, PC_TYPE_Q8_0, PC_TYPE_Q4_K, PC_TYPE_Q5_K, PC_TYPE_Q6_K};

static int parse_type(const char *name, pc_type *out) {
    for (size_t i = 0; i < sizeof type_list / sizeof type_list[0]; i++)
        if (!strcasecmp(name, pc_type_name(type_list[i]))) {
            *out = type_list[i];
            return 0;
        }
    return -1;
}

int main(int argc, char **argv) {
    const char *shape_name = NULL, *type_name = "bf16", *out = NULL;
    uint64_t seed = 42;
    int layers = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--shape")) shape_name = argv[i + 1];
        else if (!strcmp(argv[i], "--type")) type_name = argv[i + 1];
        else if (!strcmp(argv[i], "--out")) out = argv[i + 1];
        else if (!strcmp(argv[i], "--seed")) seed = strtoull(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--layers")) layers = atoi(argv[i + 1]);
        else return fprintf(stderr, "pc_write_model: unknown option %s\n", argv[i]), 2;
    }
    const shape *s = NULL;
    for (size_t i = 0; shape_name && i < sizeof shapes / sizeof shapes[0]; i++)
        if (!strcmp(shape_name, shapes[i].name)) s = &shapes[i];
    pc_type t;
    if (!s || !out || parse_type(type_name, &t)) {
        fprintf(stderr, "usage: pc_write_model --shape llama2-7b|smollm2-135m|qwen2.5-1.5b --type bf16|f16|q4_0|q8_0|"
                        "q4_k|... [--seed N] [--layers N] --out PATH\n");
        return 2;
    }
    const int n_layer = layers > 0 ? layers : s->n_layer;
    pc_pool *pool = pc_pool_create(0);
    pc_gguf_writer *w = pc_gguf_writer_create();
    if (!pool || !w) return fprintf(stderr, "pc_write_model: out of memory\n"), 1;
    set_hparams(w, s, n_layer);
    set_vocab(w, s->n_vocab);
    /* K-quant files keep the embedding in Q6_K (as llama.cpp's Q4_K_M does); the rest keep the matrix type */
    const pc_type et = t == PC_TYPE_Q4_K || t == PC_TYPE_Q5_K ? PC_TYPE_Q6_K : t;
    int bad = add_tensor(w, pool, "token_embd.weight", et, s->n_embd, s->n_vocab, 1.0f, 0.0f, mix(seed));
    bad |= add_tensor(w, pool, "output_norm.weight", PC_TYPE_F32, s->n_embd, 1, 0.1f, 1.0f, mix(seed + 1));
    if (!s->tied) bad |= add_tensor(w, pool, "output.weight", et, s->n_embd, s->n_vocab, 1.0f / sqrtf((float)s->n_embd), 0.0f, mix(seed + 2));
    bad |= write_layers(w, pool, s, n_layer, t, seed);
    pc_error err = {0};
    if (!bad && pc_gguf_writer_write(w, out, &err) != PC_OK) {
        fprintf(stderr, "pc_write_model: %s\n", err.msg);
        bad = 1;
    }
    pc_gguf_writer_free(w);
    pc_pool_free(pool);
    if (bad) return fprintf(stderr, "pc_write_model: failed writing %s\n", out), 1;
    printf("pc_write_model: %s, %s, %d layers -> %s\n", s->name, pc_type_name(t), n_layer, out);
    return 0;
}
