/* bench_gpu_ops.c - the CUDA kernels alone, against the chip's two ceilings
 * measured in the same run (a device-to-device copy and a large cuBLAS bf16
 * product), at Llama-2-7B shapes:
 *   - the small-batch matrix product against cuBLAS, 1..32 tokens, per weight
 *     type, at the 7B layer's four products, weights rotated over 512 MB and
 *     launched back to back (decides where the backend switches: gemv_max in
 *     backend_cuda.c);
 *   - attention: causal prefill (TFLOP/s, the causal half counted), few queries
 *     over 1024-32768 keys and decode (GB/s of K and V read), MMA, FEWQ and VEC
 *     kernels, with and without splits; each timed alone and back to back (as
 *     in a forward pass).
 * Prints one line per measurement; times are cudaEvent medians. Argument
 * "attention": the ceilings and attention only. */
#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/quant.h"
#include "kernels/cuda/kernels.h"

#define CU(expr)                                                                                                       \
    do {                                                                                                               \
        cudaError_t e_ = (expr);                                                                                       \
        if (e_ != cudaSuccess) {                                                                                       \
            fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #expr, cudaGetErrorString(e_));                     \
            exit(1);                                                                                                   \
        }                                                                                                              \
    } while (0)
#define CB(expr)                                                                                                       \
    do {                                                                                                               \
        cublasStatus_t s_ = (expr);                                                                                    \
        if (s_ != CUBLAS_STATUS_SUCCESS) {                                                                             \
            fprintf(stderr, "%s:%d: %s: cuBLAS status %d\n", __FILE__, __LINE__, #expr, (int)s_);                       \
            exit(1);                                                                                                   \
        }                                                                                                              \
    } while (0)

static float frand(uint64_t *rng) {
    *rng = *rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((*rng >> 40) & 0xffffff) / (float)0x1000000 * 2.0f - 1.0f;
}

static void *drandom_f16(uint64_t *rng, size_t n, float scale) {
    uint16_t *h = malloc(2 * n);
    for (size_t i = 0; i < n; i++) h[i] = pc_f32_to_f16(frand(rng) * scale);
    void *d;
    CU(cudaMalloc(&d, 2 * n));
    CU(cudaMemcpy(d, h, 2 * n, cudaMemcpyHostToDevice));
    free(h);
    return d;
}

static void *drandom_bf16(uint64_t *rng, size_t n, float scale) {
    uint16_t *h = malloc(2 * n);
    for (size_t i = 0; i < n; i++) h[i] = pc_f32_to_bf16(frand(rng) * scale);
    void *d;
    CU(cudaMalloc(&d, 2 * n));
    CU(cudaMemcpy(d, h, 2 * n, cudaMemcpyHostToDevice));
    free(h);
    return d;
}

/* Random weights of type t, quantized on the host (rows of n_in). */
static void *drandom_weights(uint64_t *rng, pc_type t, int64_t n_in, int64_t rows) {
    const size_t rb = pc_row_size(t, n_in);
    char *h = malloc(rb * (size_t)rows);
    float *f = malloc(sizeof(float) * (size_t)n_in);
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t i = 0; i < n_in; i++) f[i] = frand(rng) * 0.02f;
        pc_quantize_row(t, f, h + (size_t)r * rb, n_in);
    }
    void *d;
    CU(cudaMalloc(&d, rb * (size_t)rows));
    CU(cudaMemcpy(d, h, rb * (size_t)rows, cudaMemcpyHostToDevice));
    free(h), free(f);
    return d;
}

typedef struct timer {
    cudaEvent_t a, b;
} timer;

static int cmp_f(const void *x, const void *y) {
    float p = *(const float *)x, q = *(const float *)y;
    return p < q ? -1 : p > q;
}

/* Ms per call of n calls back to back (as in a forward pass, launches queued
 * behind each other), the median of 5 such runs. */
static float time_back_to_back(timer *t, void (*fn)(void *), void *ctx, int n) {
    float ms[5];
    for (int i = 0; i < 3; i++) fn(ctx);
    for (int r = 0; r < 5; r++) {
        CU(cudaEventRecord(t->a, 0));
        for (int i = 0; i < n; i++) fn(ctx);
        CU(cudaEventRecord(t->b, 0));
        CU(cudaEventSynchronize(t->b));
        CU(cudaEventElapsedTime(&ms[r], t->a, t->b));
        ms[r] /= (float)n;
    }
    qsort(ms, 5, sizeof ms[0], cmp_f);
    return ms[2];
}

/* Median ms of `reps` timed calls of fn(ctx) after 3 untimed. */
static float time_it(timer *t, void (*fn)(void *), void *ctx, int reps) {
    float ms[64];
    for (int i = 0; i < 3; i++) fn(ctx);
    for (int i = 0; i < reps && i < 64; i++) {
        CU(cudaEventRecord(t->a, 0));
        fn(ctx);
        CU(cudaEventRecord(t->b, 0));
        CU(cudaEventSynchronize(t->b));
        CU(cudaEventElapsedTime(&ms[i], t->a, t->b));
    }
    qsort(ms, (size_t)reps, sizeof ms[0], cmp_f);
    return ms[reps / 2];
}

/* ---- ceilings ---- */

typedef struct copy_job { void *dst, *src; size_t bytes; } copy_job;
static void do_copy(void *c) {
    copy_job *j = c;
    CU(cudaMemcpyAsync(j->dst, j->src, j->bytes, cudaMemcpyDeviceToDevice, 0));
}

typedef struct gemm_job {
    cublasHandle_t h;
    const void *w, *x;
    void *y;
    int n_in, n_out, n;
    cudaDataType yt;
} gemm_job;
static void do_gemm(void *c) {
    gemm_job *j = c;
    const float one = 1, zero = 0;
    CB(cublasGemmEx(j->h, CUBLAS_OP_T, CUBLAS_OP_N, j->n_out, j->n, j->n_in, &one, j->w, CUDA_R_16BF, j->n_in, j->x,
                    CUDA_R_16BF, j->n_in, &zero, j->y, j->yt, j->n_out, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

static void ceilings(uint64_t *rng, timer *t, cublasHandle_t h) {
    const size_t bytes = (size_t)4 << 30;
    copy_job c = {.bytes = bytes};
    CU(cudaMalloc(&c.dst, bytes));
    CU(cudaMalloc(&c.src, bytes));
    CU(cudaMemset(c.src, 1, bytes));
    const float ms = time_it(t, do_copy, &c, 10);
    printf("ceiling copy: %.0f GB/s (read + write)\n", 2.0 * bytes / ms / 1e6);
    CU(cudaFree(c.dst)); CU(cudaFree(c.src));
    const int N = 8192;
    gemm_job g = {.h = h, .n_in = N, .n_out = N, .n = N, .yt = CUDA_R_16BF};
    g.w = drandom_bf16(rng, (size_t)N * N, 1.0f);
    g.x = drandom_bf16(rng, (size_t)N * N, 1.0f);
    CU(cudaMalloc(&g.y, (size_t)N * N * 2));
    const float gm = time_it(t, do_gemm, &g, 10);
    printf("ceiling cuBLAS bf16 %d^3: %.0f TFLOP/s\n", N, 2.0 * N * (double)N * N / gm / 1e9);
    CU(cudaFree((void *)g.w)); CU(cudaFree((void *)g.x)); CU(cudaFree(g.y));
}

/* ---- matrix products ---- */

/* A product's weights in as many copies as fill 512 MB, used in turn: each call
 * reads its weights from device memory, not from the 60 MB L2, as in a forward. */
enum { MM_COPIES_MAX = 16 };
typedef struct mm_job {
    pc_type t;
    const void *w[MM_COPIES_MAX];
    const void *x;
    void *y, *scratch;
    int64_t n_in, n_out;
    int n, copies, next;
    gemm_job g;
} mm_job;
static const void *next_w(mm_job *j) {
    const void *w = j->w[j->next];
    j->next = (j->next + 1) % j->copies;
    return w;
}
static void do_gemv(void *c) {
    mm_job *j = c;
    CU(pc_cu_gemv(j->t, next_w(j), j->n_in, j->n_out, j->x, j->n_in, j->n, j->y, j->n_out, PC_CU_OUT_F32, 0));
}
static void do_deq_gemm(void *c) {
    mm_job *j = c;
    const void *w = next_w(j);
    if (j->t != PC_TYPE_BF16)
        CU(pc_cu_dequant_rows(j->t, w, j->n_in, j->n_out, j->scratch, 1, 0));
    else
        j->g.w = w;
    do_gemm(&j->g);
}

/* Llama-2-7B's products: q|k|v fused, o, gate|up fused, down; timed back to back. */
static void matmuls(uint64_t *rng, timer *t, cublasHandle_t h) {
    const pc_type types[] = {PC_TYPE_BF16, PC_TYPE_Q4_0, PC_TYPE_Q8_0};
    const int64_t shapes[][2] = {{4096, 12288}, {4096, 4096}, {4096, 22016}, {11008, 4096}};
    const int ns[] = {1, 2, 4, 8, 16, 32};
    void *x = drandom_bf16(rng, 11008 * 32, 1.0f), *y, *scratch;
    CU(cudaMalloc(&y, sizeof(float) * 22016 * 32));
    CU(cudaMalloc(&scratch, 2 * (size_t)22016 * 4096));
    for (int ti = 0; ti < 3; ti++)
        for (int si = 0; si < 4; si++) {
            mm_job j = {.t = types[ti], .x = x, .y = y, .scratch = scratch, .n_in = shapes[si][0], .n_out = shapes[si][1]};
            const size_t wb = pc_row_size(j.t, j.n_in) * (size_t)j.n_out;
            j.w[0] = drandom_weights(rng, j.t, j.n_in, j.n_out);
            j.copies = (int)((((size_t)512 << 20) + wb - 1) / wb);
            if (j.copies > MM_COPIES_MAX) j.copies = MM_COPIES_MAX;
            for (int c = 1; c < j.copies; c++) {
                void *d;
                CU(cudaMalloc(&d, wb));
                CU(cudaMemcpy(d, j.w[0], wb, cudaMemcpyDeviceToDevice));
                j.w[c] = d;
            }
            j.g = (gemm_job){.h = h, .w = j.t == PC_TYPE_BF16 ? j.w[0] : scratch, .x = x, .y = y, .n_in = (int)j.n_in, .n_out = (int)j.n_out, .yt = CUDA_R_32F};
            for (int ni = 0; ni < 6; ni++) {
                j.n = j.g.n = ns[ni];
                const float mg = j.n <= PC_CU_GEMV_MAX ? time_back_to_back(t, do_gemv, &j, 20) : NAN;
                const float mb = time_back_to_back(t, do_deq_gemm, &j, 20);
                printf("matmul %-4s %5lld -> %5lld, %2d tokens: gemv %7.1f us (%5.0f GB/s)  %s %7.1f us (%5.0f GB/s of "
                       "the stored weights)\n",
                       pc_type_name(j.t), (long long)j.n_in, (long long)j.n_out, j.n, mg * 1e3, wb / mg / 1e6,
                       j.t == PC_TYPE_BF16 ? "cuBLAS" : "dequant+cuBLAS", mb * 1e3, wb / mb / 1e6);
            }
            for (int c = 0; c < j.copies; c++) CU(cudaFree((void *)j.w[c]));
        }
    CU(cudaFree(x)); CU(cudaFree(y)); CU(cudaFree(scratch));
}

/* ---- attention ---- */

typedef struct attn_job {
    pc_cu_attn_args a;
} attn_job;
static void do_attn(void *c) { CU(pc_cu_attention(&((attn_job *)c)->a, 0)); }

/* A device step: one span of n_ctx keys at positions 0.., queries at the last n_q positions. */
static pc_cu_step *make_step(uint64_t *rng, int n_ctx, int n_q, int n_kv, int hd, void **bufs) {
    const size_t elems = (size_t)(n_ctx + 64) * n_kv * hd;
    void *k = drandom_f16(rng, elems, 1.0f), *v = drandom_f16(rng, elems, 1.0f);
    const int n_tiles = (n_ctx + 63) / 64;
    pc_cu_tile *tiles = malloc(sizeof *tiles * n_tiles);
    int32_t *kpos = malloc(sizeof(int32_t) * 64 * n_tiles), *qpos = malloc(sizeof(int32_t) * n_q);
    for (int t = 0; t < n_tiles; t++) {
        const int nk = n_ctx - t * 64 < 64 ? n_ctx - t * 64 : 64;
        tiles[t] = (pc_cu_tile){.span = 0, .row0 = t * 64, .n = nk, .min_pos = t * 64};
        for (int j = 0; j < 64; j++) kpos[t * 64 + j] = j < nk ? t * 64 + j : INT32_MAX;
    }
    for (int i = 0; i < n_q; i++) qpos[i] = n_ctx - n_q + i;
    pc_cu_span_layer tab = {k, v};
    pc_cu_step st = {.n = n_q, .n_tiles = n_tiles, .n_spans = 1};
    void *dt, *dk, *dq, *ds, *dst;
    CU(cudaMalloc(&dt, sizeof *tiles * n_tiles));
    CU(cudaMalloc(&dk, sizeof(int32_t) * 64 * n_tiles));
    CU(cudaMalloc(&dq, sizeof(int32_t) * n_q));
    CU(cudaMalloc(&ds, sizeof tab));
    CU(cudaMemcpy(dt, tiles, sizeof *tiles * n_tiles, cudaMemcpyHostToDevice));
    CU(cudaMemcpy(dk, kpos, sizeof(int32_t) * 64 * n_tiles, cudaMemcpyHostToDevice));
    CU(cudaMemcpy(dq, qpos, sizeof(int32_t) * n_q, cudaMemcpyHostToDevice));
    CU(cudaMemcpy(ds, &tab, sizeof tab, cudaMemcpyHostToDevice));
    st.tiles = dt, st.kpos = dk, st.qpos = dq, st.spans = ds;
    CU(cudaMalloc(&dst, sizeof st));
    CU(cudaMemcpy(dst, &st, sizeof st, cudaMemcpyHostToDevice));
    void *list[] = {k, v, dt, dk, dq, ds, dst};
    memcpy(bufs, list, sizeof list);
    free(tiles), free(kpos), free(qpos);
    return dst;
}

static void attention(uint64_t *rng, timer *t, int n_sm) {
    const int H = 32, hd = 128;
    struct { const char *name; int n_ctx, n_q, kernel, split; } cases[] = {
        {"prefill 2048 causal", 2048, 2048, PC_CU_ATTN_MMA, 1},
        {"prefill 8192 causal", 8192, 8192, PC_CU_ATTN_MMA, 1},
        {"32 over 8192 mma", 8192 + 32, 32, PC_CU_ATTN_MMA, 0},
        {"32 over 8192 fewq", 8192 + 32, 32, PC_CU_ATTN_FEWQ, 0},
        {"16 over 8192 fewq", 8192 + 16, 16, PC_CU_ATTN_FEWQ, 0},
        {"35 over 8192 mma", 8192 + 35, 35, PC_CU_ATTN_MMA, 0},
        {"64 over 8192 mma", 8192 + 64, 64, PC_CU_ATTN_MMA, 0},
        {"32 over 1024 fewq", 1024 + 32, 32, PC_CU_ATTN_FEWQ, 0},
        {"32 over 32768 mma", 32768 + 32, 32, PC_CU_ATTN_MMA, 0},
        {"32 over 32768 fewq", 32768 + 32, 32, PC_CU_ATTN_FEWQ, 0},
        {"decode over 8192 vec", 8192 + 1, 1, PC_CU_ATTN_VEC, 0},
        {"decode over 8192 fewq", 8192 + 1, 1, PC_CU_ATTN_FEWQ, 0},
        {"decode over 32768 vec", 32768 + 1, 1, PC_CU_ATTN_VEC, 0},
        /* split sweeps: is one whole wave of resident blocks the best rule? */
        {"32 over 8192 mma sweep", 8192 + 32, 32, PC_CU_ATTN_MMA, 16},
        {"32 over 8192 fewq sweep", 8192 + 32, 32, PC_CU_ATTN_FEWQ, 3},
        {"32 over 8192 fewq sweep", 8192 + 32, 32, PC_CU_ATTN_FEWQ, 8},
        {"decode 8192 vec sweep", 8192 + 1, 1, PC_CU_ATTN_VEC, 4},
        {"decode 8192 vec sweep", 8192 + 1, 1, PC_CU_ATTN_VEC, 16},
    };
    void *po, *pml, *q, *out;
    CU(cudaMalloc(&po, (size_t)4096 * 64 * hd * 4));
    CU(cudaMalloc(&pml, (size_t)4096 * 64 * 2 * 4));
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        void *bufs[7];
        const int nq = cases[i].n_q, nc = cases[i].n_ctx;
        pc_cu_step *st = make_step(rng, nc, nq, H, hd, bufs);
        q = drandom_f16(rng, (size_t)nq * H * hd, 1.0f);
        CU(cudaMalloc(&out, (size_t)nq * H * hd * 2));
        attn_job j = {.a = {.step = st, .q16 = q, .out = out, .part_o = po, .part_ml = pml, .n = nq, .n_head = H,
                            .n_head_kv = H, .head_dim = hd, .layer = 0, .n_split = 1, .scale = 0.088f,
                            .kernel = (pc_cu_attn_kernel)cases[i].kernel}};
        const int tiles = (nc + 63) / 64;
        if (!cases[i].split) { /* the backend's rule: one whole wave of resident blocks */
            const int base = pc_cu_attn_q_tiles(&j.a) * H;
            int s = pc_cu_attn_blocks_per_sm(j.a.kernel) * n_sm / base;
            s = s > tiles / 2 ? tiles / 2 : s;
            j.a.n_split = s < 1 ? 1 : s;
        } else {
            j.a.n_split = cases[i].split;
        }
        j.a.tiles_cap = pc_cu_attn_tiles_cap(tiles, j.a.n_split);
        const float ms1 = time_it(t, do_attn, &j, 10);
        const float ms = time_back_to_back(t, do_attn, &j, 20);
        const double kv_bytes = 2.0 * nc * H * hd * 2;
        const double flops = 4.0 * nq * (nq == nc ? nc / 2.0 : nc) * hd * H;
        printf("attention %-24s split %3d: %8.1f us  %6.1f TFLOP/s  %6.0f GB/s of K+V (alone %.1f us)\n", cases[i].name, j.a.n_split,
               ms * 1e3, flops / ms / 1e9, kv_bytes / ms / 1e6, ms1 * 1e3);
        for (int b = 0; b < 7; b++) CU(cudaFree(bufs[b]));
        CU(cudaFree(q)); CU(cudaFree(out));
    }
    CU(cudaFree(po)); CU(cudaFree(pml));
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    /* "attention": the copy ceiling and attention alone (a quick call while a kernel changes) */
    const int attention_only = argc > 1 && strcmp(argv[1], "attention") == 0;
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) {
        printf("bench_gpu_ops: no CUDA GPU\n");
        return 0;
    }
    struct cudaDeviceProp p;
    CU(cudaGetDeviceProperties(&p, 0));
    printf("device: %s, %d multiprocessors, %.0f MB L2\n", p.name, p.multiProcessorCount, p.l2CacheSize / 1e6);
    CU(pc_cu_attention_init());
    uint64_t rng = 0x1234567;
    timer t;
    CU(cudaEventCreate(&t.a));
    CU(cudaEventCreate(&t.b));
    cublasHandle_t h;
    CB(cublasCreate(&h));
    ceilings(&rng, &t, h);
    if (!attention_only) matmuls(&rng, &t, h);
    attention(&rng, &t, p.multiProcessorCount);
    cublasDestroy(h);
    return 0;
}
