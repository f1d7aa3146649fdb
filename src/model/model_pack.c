/* model_pack.c - the CPU's repacked copies of a model's matrices.
 *
 * The SIMD matmul reads weights in row-interleaved groups (kernels/cpu/pack.h);
 * packing once at load costs a pass over the weights and saves the kernels from
 * gathering 16 rows at every call. Invariants:
 *   1. Each pc_weight keeps its GGUF data pointer and type; packed points into
 *      the model's one pack_buf (freed with the model) or is NULL.
 *   2. Only matrices the forward pass multiplies are packed: the 7 per layer and
 *      the output (which may be the tied embedding table).
 *   3. Once packed, the GGUF pages of a matrix are released from the resident
 *      set (they stay mapped), except the embedding table's: lookups read it. */
#include <stdlib.h>
#include <sys/mman.h>

#include "kernels/cpu/pack.h"
#include "kernels/cpu/quant.h"
#include "model/model.h"
#include "util/error.h"
#include "util/threadpool.h"

enum { PER_LAYER = 7, HUGE_PAGE = 2 << 20 };

/* The i-th matrix of the forward pass: PER_LAYER per layer, then the output. */
static pc_weight *matrix_at(pc_model *m, int64_t i) {
    if (i == (int64_t)m->hp.n_layer * PER_LAYER) return &m->output;
    pc_layer_weights *l = &m->layers[i / PER_LAYER];
    pc_weight *const w[PER_LAYER] = {&l->wq, &l->wk, &l->wv, &l->wo, &l->ffn_gate, &l->ffn_up, &l->ffn_down};
    return w[i % PER_LAYER];
}

static size_t packed_size(const pc_weight *w) {
    return w->data ? pc_pack_size(w->type, w->ne0, w->ne1) : 0;
}

typedef struct pack_job {
    const pc_weight *w;
    void *dst;
    int64_t groups_per_task;
} pack_job;

static void pack_task(void *ctx, int task, int n_tasks, int thread) {
    (void)n_tasks;
    (void)thread;
    const pack_job *j = ctx;
    const int64_t groups = (j->w->ne1 + PC_PACK_ROWS - 1) / PC_PACK_ROWS;
    const int64_t g0 = task * j->groups_per_task, g1 = g0 + j->groups_per_task < groups ? g0 + j->groups_per_task : groups;
    pc_pack_groups(j->w->type, j->w->data, j->w->ne0, j->w->ne1, g0, g1, j->dst);
}

/* Packs w into dst, its groups split over the pool's threads (pool may be NULL). */
static void pack_one(pc_pool *pool, const pc_weight *w, void *dst) {
    const int64_t groups = (w->ne1 + PC_PACK_ROWS - 1) / PC_PACK_ROWS;
    const int threads = pool ? pc_pool_size(pool) : 1;
    pack_job j = {.w = w, .dst = dst, .groups_per_task = (groups + 4 * threads - 1) / (4 * threads)};
    if (j.groups_per_task < 1) j.groups_per_task = 1;
    const int n_tasks = (int)((groups + j.groups_per_task - 1) / j.groups_per_task);
    if (pool)
        pc_pool_run(pool, pack_task, &j, n_tasks);
    else
        for (int t = 0; t < n_tasks; t++) pack_task(&j, t, n_tasks, 0);
}

/* Whether the packing step released the pages of the tensor at data: it must
 * agree with the release in pc_model_pack, which is why both live here. */
static int releases(const pc_model *m, const pc_weight *w) { return w->packed && w->data != m->tok_embd.data; }

int pc_model_pages_released(const pc_model *m, const void *data) {
    if (!data) return 0;
    const int64_t n = (int64_t)m->hp.n_layer * PER_LAYER + 1;
    for (int64_t i = 0; i < n; i++) {
        const pc_weight *w = matrix_at((pc_model *)m, i); /* only read */
        if (w->data == data) return releases(m, w);
    }
    return 0;
}

pc_status pc_model_pack(pc_model *m, pc_error *err) {
    if (pc_isa_detect() < PC_ISA_AVX2) return PC_OK; /* the scalar path reads the GGUF rows */
    const int64_t n = (int64_t)m->hp.n_layer * PER_LAYER + 1;
    size_t total = 0;
    for (int64_t i = 0; i < n; i++) total += (packed_size(matrix_at(m, i)) + 63) & ~(size_t)63;
    if (total == 0) return PC_OK;
    total = (total + HUGE_PAGE - 1) & ~(size_t)(HUGE_PAGE - 1);
    m->pack_buf = aligned_alloc(HUGE_PAGE, total);
    if (!m->pack_buf)
        return pc_fail(err, PC_ERR_NOMEM, "%s: out of memory for %zu bytes of repacked weights", pc_gguf_path(m->gguf),
                       total);
    m->pack_bytes = total;
    /* Huge pages where the kernel offers them: decode streams this whole buffer every step, and over 2 MiB
     * pages a prefetching read runs ~30% faster here than over 4 KiB ones (fewer TLB misses, no prefetch
     * restart every 4 KiB). Only a hint: without them the buffer works the same. */
    (void)madvise(m->pack_buf, total, MADV_HUGEPAGE);
    pc_pool *pool = pc_pool_create(0); /* NULL: pack on this thread alone */
    uint8_t *next = m->pack_buf;
    for (int64_t i = 0; i < n; i++) {
        pc_weight *w = matrix_at(m, i);
        const size_t size = packed_size(w);
        if (size == 0) continue;
        pack_one(pool, w, next);
        w->packed = next;
        next += (size + 63) & ~(size_t)63;
        if (releases(m, w))
            pc_gguf_advise_unused(m->gguf, w->data, pc_row_size(w->type, w->ne0) * (size_t)w->ne1);
    }
    pc_pool_free(pool);
    return PC_OK;
}
