/* model_digest.c - the model fingerprint that names a model in store keys and
 * cache folders: SHA-256 over the architecture, every hyper-parameter (they
 * all shape K and V) and every tensor's name, type, shape and data.
 *
 * The whole of the weights is hashed, so two files that differ anywhere (a
 * re-quantization, a fine-tune of one layer) never share cached KV. To keep
 * that affordable the data is cut into 16 MiB chunks hashed in parallel on
 * the engine's pool (SHA-NI runs at ~1.4 GB/s per core), and the fingerprint
 * hashes the list of chunk digests: a tree of depth one, the same on every
 * machine whatever its thread count.
 *
 * Packing (model_pack.c) released the GGUF pages of the matrices it copied;
 * hashing faults them back in, so each chunk of such a matrix is released
 * again as soon as it is hashed. Without that, the peak resident set after
 * opening the model was the packed copy plus the whole file (~2x the
 * weights). */
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "util/error.h"
#include "util/sha256.h"

#define CHUNK (16u << 20)

typedef struct chunk {
    const pc_gguf *g;
    const uint8_t *data;
    size_t len;
    int release; /* drop its pages after hashing: only the packed copy is read */
    uint8_t digest[PC_SHA256_BYTES];
    int failed;
} chunk;

static void hash_chunk(void *ctx, int task, int n_tasks, int thread) {
    (void)n_tasks;
    (void)thread;
    chunk *c = &((chunk *)ctx)[task];
    c->failed = pc_sha256_digest(c->data, c->len, c->digest) != 0;
    if (c->release) pc_gguf_advise_unused(c->g, c->data, c->len);
}

static void hash_hparams(pc_sha256 *h, const pc_model *m) {
    const pc_hparams *hp = &m->hp;
    pc_sha256_field(h, m->arch->name, strlen(m->arch->name));
    const int32_t ints[] = {hp->n_vocab, hp->n_embd, hp->n_layer, hp->n_head, hp->n_head_kv, hp->head_dim,
                            hp->n_ff, hp->n_ctx_train, hp->rope_dim};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) pc_sha256_u64(h, (uint64_t)(uint32_t)ints[i]);
    const float floats[] = {hp->norm_eps, hp->rope_theta, hp->rope_scale};
    for (size_t i = 0; i < sizeof floats / sizeof floats[0]; i++) {
        uint32_t bits;
        memcpy(&bits, &floats[i], sizeof bits);
        pc_sha256_u64(h, bits);
    }
}

/* Chunks of every tensor's data, in tensor-table order. */
static chunk *list_chunks(const pc_model *m, int *n_out) {
    const pc_gguf *g = m->gguf;
    size_t n = 0;
    for (int64_t i = 0; i < pc_gguf_tensor_count(g); i++) n += (pc_gguf_tensor_at(g, i)->size + CHUNK - 1) / CHUNK;
    chunk *c = calloc(n ? n : 1, sizeof *c);
    if (!c || n > (size_t)INT32_MAX) {
        free(c);
        return NULL;
    }
    size_t k = 0;
    for (int64_t i = 0; i < pc_gguf_tensor_count(g); i++) {
        const pc_gguf_tensor *t = pc_gguf_tensor_at(g, i);
        const int release = pc_model_pages_released(m, t->data);
        for (size_t off = 0; off < t->size; off += CHUNK)
            c[k++] = (chunk){.g = g, .data = (const uint8_t *)t->data + off,
                             .len = t->size - off < CHUNK ? t->size - off : CHUNK, .release = release};
    }
    *n_out = (int)n;
    return c;
}

pc_status pc_model_digest(const pc_model *m, pc_pool *pool, uint8_t out[32], pc_error *err) {
    const pc_gguf *g = m->gguf;
    int n = 0;
    chunk *c = list_chunks(m, &n);
    if (!c) return pc_fail(err, PC_ERR_NOMEM, "%s: out of memory fingerprinting the model", pc_gguf_path(g));
    if (pool)
        pc_pool_run(pool, hash_chunk, c, n);
    else
        for (int i = 0; i < n; i++) hash_chunk(c, i, n, 0);
    pc_sha256 h;
    pc_sha256_init(&h);
    static const char DOMAIN[] = "pcache-model-v1";
    pc_sha256_field(&h, DOMAIN, sizeof DOMAIN - 1);
    hash_hparams(&h, m);
    int failed = 0, k = 0;
    for (int64_t i = 0; i < pc_gguf_tensor_count(g); i++) {
        const pc_gguf_tensor *t = pc_gguf_tensor_at(g, i);
        pc_sha256_field(&h, t->name, strlen(t->name));
        pc_sha256_u64(&h, (uint64_t)t->type);
        for (int d = 0; d < PC_GGUF_MAX_DIMS; d++) pc_sha256_u64(&h, (uint64_t)t->ne[d]);
        pc_sha256_u64(&h, t->size);
        for (size_t off = 0; off < t->size; off += CHUNK, k++) {
            pc_sha256_update(&h, c[k].digest, PC_SHA256_BYTES);
            failed |= c[k].failed;
        }
    }
    free(c);
    if (pc_sha256_final(&h, out) != 0 || failed)
        return pc_fail(err, PC_ERR_NOMEM, "%s: out of memory fingerprinting the model", pc_gguf_path(g));
    return PC_OK;
}
