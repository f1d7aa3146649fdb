/* test_ops_cuda.c - the CUDA kernels op by op against the CPU ones, on fresh
 * random inputs:
 *   - dequantization of every weight type: bitwise the CPU's f32, and its
 *     bf16 form bitwise pc_f32_to_bf16 of the CPU's f32 (embedding lookup too);
 *   - RMSNorm (f32 out) and RoPE + K/V writes: the CPU's float operations, so
 *     bitwise up to the order of RMSNorm's double sum (mismatches counted, at
 *     most 1 ulp allowed);
 *   - SwiGLU: within 1 bf16 ulp of the CPU's f32 value;
 *   - the small-batch matrix product on every type, 1..8 tokens: relative
 *     error <= 1e-5 (f32 out) against a double product of the same operands,
 *     each token's outputs bitwise independent of the token count and of the
 *     weights' alignment (which picks Q4_0/Q4_1/Q4_K's wide-load kernel);
 *   - its int8 form (Q4_0, Q4_K, Q6_K; x quantized to int8 per 32): x's int8
 *     blocks and the outputs bitwise the CPU's same integer and float
 *     operations at 1..8 tokens, relative error against the exact product
 *     stated and <= 5e-2 (x's rounding to 8 bits);
 *   - attention (MMA, FEWQ and VEC, with and without splits; MMA above 128 rows is the
 *     wgmma kernel on an sm_90 GPU) over several spans with
 *     random and causal positions, GQA, head dims 64 and 128: relative L2
 *     error <= 6e-3 against the CPU attention (bf16 output rounding alone is
 *     about 1.1e-3), and a query seeing no key placed after it;
 * and reports (does not assert) whether cuBLAS's rows are bitwise invariant
 * to the number of rows, which decides whether cached == uncached can be
 * bitwise on the GPU. Skips (77) where no usable GPU is present.
 * `test_ops_cuda gemv` runs the small-batch product's checks alone. */
#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "check.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/ops.h"
#include "kernels/cuda/kernels.h"

#define CU(expr)                                                                                                       \
    do {                                                                                                               \
        cudaError_t e_ = (expr);                                                                                       \
        if (e_ != cudaSuccess) {                                                                                       \
            fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #expr, cudaGetErrorString(e_));                     \
            exit(1);                                                                                                   \
        }                                                                                                              \
    } while (0)

static float frand(uint64_t *rng) { /* uniform in [-1, 1) */
    uint64_t z = (*rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return (float)(z >> 40) / (float)(1ULL << 23) - 1.0f;
}
static int irand(uint64_t *rng, int n) { return (int)((frand(rng) + 1.0f) * 0.5f * (float)n) % n; }

static void *dput(const void *h, size_t bytes) {
    void *d = NULL;
    CU(cudaMalloc(&d, bytes ? bytes : 16));
    if (bytes) CU(cudaMemcpy(d, h, bytes, cudaMemcpyHostToDevice));
    return d;
}
static void dget(void *h, const void *d, size_t bytes) {
    CU(cudaDeviceSynchronize());
    CU(cudaMemcpy(h, d, bytes, cudaMemcpyDeviceToHost));
}
static float bf16f(uint16_t h) { return pc_bf16_to_f32(h); }

static double rel_l2(const float *got, const float *want, size_t n) {
    double e = 0, r = 0;
    for (size_t i = 0; i < n; i++) {
        e += ((double)got[i] - want[i]) * ((double)got[i] - want[i]);
        r += (double)want[i] * want[i];
    }
    return r > 0 ? sqrt(e / r) : sqrt(e);
}

/* A device step holding tokens (embedding) or a whole attention context. */
typedef struct host_step {
    pc_cu_step st;
    void *dev;  /* device copy of st and its arrays */
    void *bufs[24];
    int n_bufs;
} host_step;

static const void *step_put(host_step *s, const void *h, size_t bytes) {
    if (s->n_bufs == (int)(sizeof s->bufs / sizeof s->bufs[0])) abort();
    void *d = dput(h, bytes);
    s->bufs[s->n_bufs++] = d;
    return d;
}
static void step_finish(host_step *s) { s->dev = dput(&s->st, sizeof s->st); }
static void step_free(host_step *s) {
    for (int i = 0; i < s->n_bufs; i++) CU(cudaFree(s->bufs[i]));
    CU(cudaFree(s->dev));
}

/* ---- dequantization ---- */

static const pc_type weight_types[] = {PC_TYPE_F32,  PC_TYPE_F16,  PC_TYPE_BF16, PC_TYPE_Q4_0, PC_TYPE_Q4_1,
                                       PC_TYPE_Q5_0, PC_TYPE_Q5_1, PC_TYPE_Q8_0, PC_TYPE_Q2_K, PC_TYPE_Q3_K,
                                       PC_TYPE_Q4_K, PC_TYPE_Q5_K, PC_TYPE_Q6_K};
enum { N_TYPES = sizeof weight_types / sizeof weight_types[0] };

/* rows x n random weights of type t (quantized by the CPU's reference quantizer). */
static void *random_weights(uint64_t *rng, pc_type t, int64_t n, int64_t rows) {
    const size_t rb = pc_row_size(t, n);
    char *w = malloc(rb * (size_t)rows);
    float *f = malloc(sizeof(float) * (size_t)n);
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t i = 0; i < n; i++) f[i] = frand(rng) * (1.0f + (float)(r % 7));
        pc_quantize_row(t, f, w + (size_t)r * rb, n);
    }
    free(f);
    return w;
}

static void test_dequant(uint64_t *rng) {
    const int64_t n = 512, rows = 37;
    for (int i = 0; i < N_TYPES; i++) {
        const pc_type t = weight_types[i];
        void *w = random_weights(rng, t, n, rows);
        const size_t rb = pc_row_size(t, n), cnt = (size_t)(n * rows);
        float *want = malloc(cnt * sizeof(float)), *got = malloc(cnt * sizeof(float));
        uint16_t *got16 = malloc(cnt * sizeof(uint16_t));
        for (int64_t r = 0; r < rows; r++) pc_dequantize_row(t, (char *)w + (size_t)r * rb, want + r * n, n);
        void *dw = dput(w, rb * (size_t)rows), *dy = NULL, *dy16 = NULL;
        CU(cudaMalloc(&dy, cnt * sizeof(float)));
        CU(cudaMalloc(&dy16, cnt * sizeof(uint16_t)));
        CU(pc_cu_dequant_rows(t, dw, n, rows, dy, 0, 0));
        CU(pc_cu_dequant_rows(t, dw, n, rows, dy16, 1, 0));
        dget(got, dy, cnt * sizeof(float));
        dget(got16, dy16, cnt * sizeof(uint16_t));
        size_t bad = 0, bad16 = 0;
        for (size_t j = 0; j < cnt; j++) {
            bad += memcmp(&got[j], &want[j], 4) != 0;
            bad16 += got16[j] != pc_f32_to_bf16(want[j]);
        }
        CHECK_MSG(bad == 0, "dequant %s: %zu of %zu f32 values differ from the CPU", pc_type_name(t), bad, cnt);
        CHECK_MSG(bad16 == 0, "dequant %s: %zu of %zu bf16 values differ", pc_type_name(t), bad16, cnt);
        printf("dequant %-5s f32 and bf16: %zu + %zu mismatches of %zu\n", pc_type_name(t), bad, bad16, cnt);

        /* embedding lookup of shuffled rows */
        int32_t toks[9];
        for (int k = 0; k < 9; k++) toks[k] = irand(rng, (int)rows);
        host_step s = {0};
        s.st.n = 9;
        s.st.tokens = step_put(&s, toks, sizeof toks);
        step_finish(&s);
        float *dx = NULL, *x = malloc(9 * (size_t)n * sizeof(float));
        CU(cudaMalloc((void **)&dx, 9 * (size_t)n * sizeof(float)));
        CU(pc_cu_embed(t, dw, n, s.dev, 9, dx, 0));
        dget(x, dx, 9 * (size_t)n * sizeof(float));
        size_t be = 0;
        for (int k = 0; k < 9; k++) be += memcmp(x + k * n, want + toks[k] * n, (size_t)n * sizeof(float)) != 0;
        CHECK_MSG(be == 0, "embedding %s: %zu rows differ", pc_type_name(t), be);
        step_free(&s);
        CU(cudaFree(dx));
        CU(cudaFree(dw));
        CU(cudaFree(dy));
        CU(cudaFree(dy16));
        free(x), free(w), free(want), free(got), free(got16);
    }
}

/* ---- element-wise ---- */

static int ulp_diff(float a, float b) {
    int32_t x, y;
    memcpy(&x, &a, 4);
    memcpy(&y, &b, 4);
    return abs(x - y);
}

static void test_rmsnorm(uint64_t *rng) {
    const int dims[] = {576, 4096, 1536};
    for (int di = 0; di < 3; di++) {
        const int dim = dims[di], rows = 7;
        float *x = malloc(sizeof(float) * rows * dim), *w = malloc(sizeof(float) * dim);
        float *want = malloc(sizeof(float) * rows * dim), *got = malloc(sizeof(float) * rows * dim);
        for (int i = 0; i < rows * dim; i++) x[i] = frand(rng) * 3.0f;
        for (int i = 0; i < dim; i++) w[i] = 1.0f + 0.2f * frand(rng);
        for (int r = 0; r < rows; r++) pc_rmsnorm(want + r * dim, x + r * dim, w, dim, 1e-5f);
        float *dx = dput(x, sizeof(float) * rows * dim), *dw = dput(w, sizeof(float) * dim), *dy = NULL;
        CU(cudaMalloc((void **)&dy, sizeof(float) * rows * dim));
        CU(pc_cu_rmsnorm(dx, dw, rows, dim, 1e-5f, dy, 0, 0));
        dget(got, dy, sizeof(float) * rows * dim);
        int worst = 0, differ = 0;
        for (int i = 0; i < rows * dim; i++) {
            const int u = ulp_diff(got[i], want[i]);
            worst = u > worst ? u : worst;
            differ += u != 0;
        }
        CHECK_MSG(worst <= 1, "rmsnorm dim %d: %d ulp", dim, worst);
        printf("rmsnorm dim %d: %d of %d values differ from the CPU, by at most %d ulp\n", dim, differ, rows * dim, worst);
        CU(cudaFree(dx)); CU(cudaFree(dw)); CU(cudaFree(dy));
        free(x), free(w), free(want), free(got);
    }
}

static void test_swiglu(uint64_t *rng) {
    const int n = 10000;
    uint16_t *g = malloc(2 * n), *u = malloc(2 * n), *got = malloc(2 * n);
    for (int i = 0; i < n; i++) g[i] = pc_f32_to_bf16(frand(rng) * 8.0f), u[i] = pc_f32_to_bf16(frand(rng) * 4.0f);
    void *dg = dput(g, 2 * n), *du = dput(u, 2 * n);
    CU(pc_cu_swiglu(dg, du, dg, 10, n / 10, n / 10, 0));
    dget(got, dg, 2 * n);
    int worst = 0;
    for (int i = 0; i < n; i++) {
        float a = bf16f(g[i]), want = a / (1.0f + expf(-a)) * bf16f(u[i]);
        const int d = abs((int)got[i] - (int)pc_f32_to_bf16(want));
        worst = d > worst ? d : worst;
    }
    CHECK_MSG(worst <= 1, "swiglu: %d bf16 ulp from the CPU", worst);
    printf("swiglu: at most %d bf16 ulp from the CPU\n", worst);
    CU(cudaFree(dg)); CU(cudaFree(du));
    free(g), free(u), free(got);
}

/* Biases, RoPE and the K/V writes into a span's layout, against the CPU's code path. */
static void test_qkv(uint64_t *rng, int rope, int n_head, int n_kv, int hd, int rope_dim) {
    const int n = 13, Q = n_head * hd, KV = n_kv * hd, R = rope_dim / 2, layer = 1, n_layer = 2, row0 = 5;
    const int cap = 24;
    float *q = malloc(sizeof(float) * n * Q), *k = malloc(sizeof(float) * n * KV), *v = malloc(sizeof(float) * n * KV);
    float *bq = malloc(sizeof(float) * Q), *bk = malloc(sizeof(float) * KV), *bv = malloc(sizeof(float) * KV);
    float *rc = malloc(sizeof(float) * n * R), *rs = malloc(sizeof(float) * n * R);
    int32_t pos[13];
    for (int i = 0; i < n * Q; i++) q[i] = frand(rng);
    for (int i = 0; i < n * KV; i++) k[i] = frand(rng), v[i] = frand(rng);
    for (int i = 0; i < Q; i++) bq[i] = frand(rng);
    for (int i = 0; i < KV; i++) bk[i] = frand(rng), bv[i] = frand(rng);
    for (int t = 0; t < n; t++) {
        pos[t] = irand(rng, 30000);
        pc_rope_cache(rc + t * R, rs + t * R, pos[t], rope_dim, 1e6f, 1.0f, NULL);
    }
    host_step s = {0};
    s.st.n = n;
    s.st.row0 = row0;
    s.st.qpos = step_put(&s, pos, sizeof pos);
    s.st.rope_cos = step_put(&s, rc, sizeof(float) * n * R);
    s.st.rope_sin = step_put(&s, rs, sizeof(float) * n * R);
    const size_t span_elems = (size_t)n_layer * cap * KV;
    void *dk = NULL, *dv = NULL;
    CU(cudaMalloc(&dk, span_elems * 2));
    CU(cudaMalloc(&dv, span_elems * 2));
    CU(cudaMemset(dk, 0, span_elems * 2));
    CU(cudaMemset(dv, 0, span_elems * 2));
    s.st.dst_k = dk, s.st.dst_v = dv, s.st.dst_layer_stride = (int64_t)cap * KV;
    step_finish(&s);
    /* q, k, v side by side in rows of Q + 2 KV, as the backend keeps them */
    const int QKV = Q + 2 * KV;
    float *fused_h = malloc(sizeof(float) * n * QKV);
    for (int t = 0; t < n; t++) {
        memcpy(fused_h + t * QKV, q + t * Q, sizeof(float) * Q);
        memcpy(fused_h + t * QKV + Q, k + t * KV, sizeof(float) * KV);
        memcpy(fused_h + t * QKV + Q + KV, v + t * KV, sizeof(float) * KV);
    }
    float *dq = dput(fused_h, sizeof(float) * n * QKV), *dkk = dq + Q, *dvv = dq + Q + KV;
    free(fused_h);
    float *dbq = dput(bq, sizeof(float) * Q), *dbk = dput(bk, sizeof(float) * KV), *dbv = dput(bv, sizeof(float) * KV);
    void *dq16 = NULL;
    CU(cudaMalloc(&dq16, (size_t)n * Q * 2));
    pc_cu_qkv_args a = {.step = s.dev, .n = n, .layer = layer, .q = dq, .k = dkk, .v = dvv, .qkv_stride = QKV,
                        .bq = dbq, .bk = dbk, .bv = dbv, .q16 = dq16, .n_head = n_head, .n_head_kv = n_kv, .head_dim = hd,
                        .rope_dim = rope_dim, .rope = rope};
    CU(pc_cu_qkv(&a, 0));
    uint16_t *gq = malloc((size_t)n * Q * 2), *gk = malloc(span_elems * 2), *gv = malloc(span_elems * 2);
    dget(gq, dq16, (size_t)n * Q * 2);
    dget(gk, dk, span_elems * 2);
    dget(gv, dv, span_elems * 2);
    /* the CPU: pc_add of the bias, pc_rope_apply, f16 into the span layout */
    pc_kv_span *sp = pc_kv_span_create(n_layer, KV, cap);
    int bad = 0;
    for (int t = 0; t < n; t++) {
        pc_add(q + t * Q, bq, Q);
        pc_add(k + t * KV, bk, KV);
        pc_add(v + t * KV, bv, KV);
        pc_rope_apply(q + t * Q, n_head, hd, rope_dim, rc + t * R, rs + t * R, rope == 2);
        pc_rope_apply(k + t * KV, n_kv, hd, rope_dim, rc + t * R, rs + t * R, rope == 2);
        for (int i = 0; i < Q; i++) bad += gq[t * Q + i] != pc_f32_to_f16(q[t * Q + i]);
        for (int d = 0; d < KV; d++) {
            const size_t kat = (size_t)(pc_kv_k_at(sp, layer, row0 + t, d) - sp->k);
            const size_t vat = (size_t)(pc_kv_v(sp, layer, row0 + t) + d - sp->v);
            bad += gk[kat] != pc_f32_to_f16(k[t * KV + d]);
            bad += gv[vat] != pc_f32_to_f16(v[t * KV + d]);
        }
    }
    CHECK_MSG(bad == 0, "qkv rope %d (%d/%d heads, dim %d, rope %d): %d values differ from the CPU", rope, n_head, n_kv, hd,
              rope_dim, bad);
    printf("qkv rope mode %d, %d/%d heads, head dim %d, rope dim %d: %d values differ from the CPU\n", rope, n_head, n_kv,
           hd, rope_dim, bad);
    pc_kv_span_release(sp);
    step_free(&s);
    void *frees[] = {dk, dv, dq, dbq, dbk, dbv, dq16};
    for (size_t i = 0; i < sizeof frees / sizeof frees[0]; i++) CU(cudaFree(frees[i]));
    free(q), free(k), free(v), free(bq), free(bk), free(bv), free(rc), free(rs), free(gq), free(gk), free(gv);
}

/* ---- small-batch matrix product ---- */

/* pc_cu_gemv of nt tokens into y (f32), then y += the same: got[0, nt * n_out) twice over. */
static void gemv_run(pc_type t, const void *dw, int64_t n_in, int64_t n_out, const void *dx, int nt, float *dy,
                     float *got, float *got2) {
    CU(pc_cu_gemv(t, dw, n_in, n_out, dx, n_in, nt, dy, n_out, PC_CU_OUT_F32, 0));
    dget(got, dy, sizeof(float) * nt * (size_t)n_out);
    CU(pc_cu_gemv(t, dw, n_in, n_out, dx, n_in, nt, dy, n_out, PC_CU_OUT_ADD_F32, 0));
    dget(got2, dy, sizeof(float) * nt * (size_t)n_out);
}

/* One type at one width: against a double product of the same operands, each
 * token's outputs bitwise the same whatever the token count, and the same bits
 * from a copy of the weights 4 bytes off their 16-byte alignment (Q4_0, Q4_1
 * and Q4_K take their wide-load kernel only when aligned: both kernels meet;
 * bf16 is read in 16-byte loads, so only aligned). */
static void gemv_case(uint64_t *rng, pc_type t, int64_t n_in, int64_t n_out) {
    void *w = random_weights(rng, t, n_in, n_out);
    const size_t rb = pc_row_size(t, n_in), wbytes = rb * (size_t)n_out;
    float *wf = malloc(sizeof(float) * (size_t)(n_in * n_out));
    for (int64_t r = 0; r < n_out; r++) pc_dequantize_row(t, (char *)w + r * rb, wf + r * n_in, n_in);
    uint16_t *x = malloc(2 * 8 * (size_t)n_in);
    for (int64_t j = 0; j < 8 * n_in; j++) x[j] = pc_f32_to_bf16(frand(rng));
    char *dw = dput(w, wbytes), *doff = NULL;
    CU(cudaMalloc((void **)&doff, wbytes + 16));
    CU(cudaMemcpy(doff + 4, w, wbytes, cudaMemcpyHostToDevice));
    void *dx = dput(x, 2 * 8 * (size_t)n_in);
    float *dy = NULL;
    CU(cudaMalloc((void **)&dy, sizeof(float) * 8 * (size_t)n_out));
    const size_t cap = 8 * (size_t)n_out;
    float *want = malloc(sizeof(float) * cap), *got = malloc(sizeof(float) * cap), *got2 = malloc(sizeof(float) * cap);
    float *one = malloc(sizeof(float) * cap), *off = malloc(sizeof(float) * cap), *off2 = malloc(sizeof(float) * cap);
    double worst = 0;
    int varying = 0, unaligned_diff = 0;
    for (int nt = 1; nt <= 8; nt++) {
        for (int tk = 0; tk < nt; tk++)
            for (int64_t o = 0; o < n_out; o++) {
                double acc = 0;
                for (int64_t j = 0; j < n_in; j++) acc += (double)wf[o * n_in + j] * bf16f(x[tk * n_in + j]);
                want[tk * n_out + o] = (float)acc;
            }
        gemv_run(t, dw, n_in, n_out, dx, nt, dy, got, got2);
        const double e = rel_l2(got, want, (size_t)nt * n_out);
        for (size_t j = 0; j < (size_t)nt * n_out; j++) want[j] *= 2; /* y += x w^T over the values just written */
        const double e2 = rel_l2(got2, want, (size_t)nt * n_out);
        worst = fmax(worst, fmax(e, e2));
        if (nt == 1) memcpy(one, got, sizeof(float) * (size_t)n_out);
        varying += memcmp(one, got, sizeof(float) * (size_t)n_out) != 0;
        if (t == PC_TYPE_BF16) continue; /* read in 16-byte loads: aligned always */
        gemv_run(t, doff + 4, n_in, n_out, dx, nt, dy, off, off2);
        unaligned_diff += memcmp(off, got, sizeof(float) * nt * (size_t)n_out) != 0 ||
                          memcmp(off2, got2, sizeof(float) * nt * (size_t)n_out) != 0;
    }
    CHECK_MSG(worst <= 1e-5, "gemv %s %lld -> %lld: relative error %.3g", pc_type_name(t), (long long)n_in,
              (long long)n_out, worst);
    CHECK_MSG(varying == 0, "gemv %s %lld: token 0's outputs change with the token count (%d of 7 counts)",
              pc_type_name(t), (long long)n_in, varying);
    CHECK_MSG(unaligned_diff == 0, "gemv %s %lld: unaligned weights give other bits (%d of 8 counts)", pc_type_name(t),
              (long long)n_in, unaligned_diff);
    printf("gemv %-5s %5lld -> %lld, 1..8 tokens: relative error %.3g, bitwise across token counts%s\n",
           pc_type_name(t), (long long)n_in, (long long)n_out, worst, t == PC_TYPE_BF16 ? "" : " and alignments");
    CU(cudaFree(dw)); CU(cudaFree(doff)); CU(cudaFree(dx)); CU(cudaFree(dy));
    free(w), free(wf), free(x), free(want), free(got), free(got2), free(one), free(off), free(off2);
}

/* Widths: 768 (24 blocks of 32: one unit a lane), 2304 (72: three rounds, the
 * last partial) and 800 (25 blocks: Q4_0 rows of an odd block count take the
 * generic kernel; the K-quants take no width that is not a multiple of 256). */
static void test_gemv(uint64_t *rng) {
    const int64_t widths[] = {768, 2304, 800};
    for (size_t wi = 0; wi < sizeof widths / sizeof widths[0]; wi++)
        for (int i = 0; i < N_TYPES; i++) {
            const pc_type t = weight_types[i];
            if (pc_cu_type_supported(t) && widths[wi] % pc_type_get((uint32_t)t)->block_size == 0)
                gemv_case(rng, t, widths[wi], 203);
        }
}

/* ---- the small-batch product on int8 dot products (gemv_q8.cu) ---- */

/* pc_cu_quantize_q8 on the CPU: per 32 elements d = max|x| / 127, q = x * (1 / d)
 * rounded half to even (by fmaf onto 1.5 * 2^23, as the GPU does it), s = the
 * float sum of the 32 in order. */
static void q8_ref(const uint16_t *x, int64_t n_in, int8_t *qs, float *d, float *s) {
    for (int64_t b = 0; b < n_in / 32; b++) {
        float v[32], amax = 0.f, sum = 0.f;
        for (int j = 0; j < 32; j++) v[j] = bf16f(x[b * 32 + j]), amax = fmaxf(amax, fabsf(v[j]));
        for (int j = 0; j < 32; j++) sum += v[j];
        d[b] = amax / 127.0f;
        s[b] = sum;
        const float id = amax == 0.f ? 0.f : 1.0f / d[b];
        for (int j = 0; j < 32; j++) {
            const float r = fmaf(v[j], id, 12582912.0f);
            uint32_t bits;
            memcpy(&bits, &r, 4);
            qs[b * 32 + j] = (int8_t)((int32_t)bits - 0x4B400000);
        }
    }
}

static void k4_scale_min_ref(int s, const uint8_t *q, int *sc, int *m) {
    if (s < 4) {
        *sc = q[s] & 63, *m = q[s + 4] & 63;
    } else {
        *sc = (q[s + 4] & 0xF) | ((q[s - 4] >> 6) << 4);
        *m = (q[s + 4] >> 4) | ((q[s] >> 6) << 4);
    }
}

/* Unit u's term of a row's sum (gemv_q8.cu's uterm): integer sums, then the
 * scales, each float operation rounded on its own. */
static float q8_term(pc_type t, const uint8_t *row, int64_t u, const int8_t *xq, float dx, float sx) {
    if (t == PC_TYPE_Q4_0) {
        const pc_block_q4_0 *b = (const pc_block_q4_0 *)row + u;
        int sum = 0;
        for (int j = 0; j < 16; j++) sum += (b->qs[j] & 0xF) * xq[j] + (b->qs[j] >> 4) * xq[j + 16];
        const float d = pc_f16_to_f32(b->d), a = dx * (float)sum, c = 8.0f * sx, e = a - c;
        return d * e;
    }
    if (t == PC_TYPE_Q4_K) {
        const pc_block_q4_K *b = (const pc_block_q4_K *)row + u / 8;
        const int s = (int)(u % 8);
        int sc, m, sum = 0;
        k4_scale_min_ref(s, b->scales, &sc, &m);
        for (int j = 0; j < 32; j++) sum += ((b->qs[s / 2 * 32 + j] >> (4 * (s % 2))) & 0xF) * xq[j];
        const float d1 = pc_f16_to_f32(b->d) * (float)sc, m1 = pc_f16_to_f32(b->dmin) * (float)m;
        const float a = d1 * dx, c = a * (float)sum, e = m1 * sx;
        return c - e;
    }
    const pc_block_q6_K *b = (const pc_block_q6_K *)row + u / 8; /* Q6_K */
    const int s = (int)(u % 8), h = s / 4, k = s % 4;
    int tot = 0;
    for (int half = 0; half < 2; half++) {
        int sum = 0;
        for (int j = 16 * half; j < 16 * half + 16; j++) {
            const int lo = (b->ql[64 * h + 32 * (k & 1) + j] >> (4 * (k >> 1))) & 0xF;
            const int hi = (b->qh[32 * h + j] >> (2 * k)) & 3;
            sum += ((lo | (hi << 4)) - 32) * xq[j];
        }
        tot += b->scales[8 * h + 2 * k + half] * sum;
    }
    const float a = pc_f16_to_f32(b->d) * dx;
    return a * (float)tot;
}

/* A row's output as the kernel sums it: lane l adds units l, l + 32, ... in
 * order, then the warp's xor butterfly (offsets 16 .. 1). */
static float q8_row_ref(pc_type t, const uint8_t *row, int64_t n_in, const int8_t *qs, const float *d, const float *s) {
    float lane[32];
    for (int l = 0; l < 32; l++) {
        float acc = 0.f;
        for (int64_t u = l; u < n_in / 32; u += 32) acc += q8_term(t, row, u, qs + u * 32, d[u], s[u]);
        lane[l] = acc;
    }
    for (int off = 16; off > 0; off >>= 1) {
        float nx[32];
        for (int l = 0; l < 32; l++) nx[l] = lane[l] + lane[l ^ off];
        memcpy(lane, nx, sizeof lane);
    }
    return lane[0];
}

/* One type at one width, 1..8 tokens: x's int8 form and the outputs (=, +=)
 * bitwise the CPU's same integer and float operations (so a token's outputs
 * do not depend on the token count), and the relative error against a double
 * product of the dequantized weights and bf16 x (x's rounding to int8, stated:
 * 0.8-2.8% on the H200 with every 97th x 8 times the others, which coarsens
 * its block's step; bounded by 5e-2). */
static void gemv_q8_case(uint64_t *rng, pc_type t, int64_t n_in, int64_t n_out) {
    void *w = random_weights(rng, t, n_in, n_out);
    const size_t rb = pc_row_size(t, n_in), wbytes = rb * (size_t)n_out;
    const int64_t nb = n_in / 32;
    float *wf = malloc(sizeof(float) * (size_t)(n_in * n_out));
    for (int64_t r = 0; r < n_out; r++) pc_dequantize_row(t, (char *)w + r * rb, wf + r * n_in, n_in);
    uint16_t *x = malloc(2 * 8 * (size_t)n_in);
    for (int64_t j = 0; j < 8 * n_in; j++) x[j] = pc_f32_to_bf16(frand(rng) * (j % 97 == 0 ? 8.0f : 1.0f));
    int8_t *qs = malloc(8 * (size_t)n_in), *gq = malloc(8 * (size_t)n_in);
    float *d = malloc(sizeof(float) * 8 * (size_t)nb), *s = malloc(sizeof(float) * 8 * (size_t)nb);
    float *gds = malloc(sizeof(float) * 2 * 8 * (size_t)nb);
    for (int tk = 0; tk < 8; tk++) q8_ref(x + tk * n_in, n_in, qs + tk * n_in, d + tk * nb, s + tk * nb);
    const size_t cap = 8 * (size_t)n_out;
    float *want = malloc(sizeof(float) * cap), *exact = malloc(sizeof(float) * cap);
    float *got = malloc(sizeof(float) * cap), *got2 = malloc(sizeof(float) * cap);
    for (int tk = 0; tk < 8; tk++)
        for (int64_t o = 0; o < n_out; o++) {
            want[tk * n_out + o] = q8_row_ref(t, (const uint8_t *)w + o * rb, n_in, qs + tk * n_in, d + tk * nb, s + tk * nb);
            double acc = 0;
            for (int64_t j = 0; j < n_in; j++) acc += (double)wf[o * n_in + j] * bf16f(x[tk * n_in + j]);
            exact[tk * n_out + o] = (float)acc;
        }
    void *dw = dput(w, wbytes), *dx = dput(x, 2 * 8 * (size_t)n_in), *dq = NULL;
    CU(cudaMalloc(&dq, pc_cu_q8_bytes(n_in, 8)));
    float *dy = NULL;
    CU(cudaMalloc((void **)&dy, sizeof(float) * cap));
    CHECK_MSG(pc_cu_gemv_q8_takes(t, dw, n_in), "gemv_q8 %s %lld: an aligned matrix not taken", pc_type_name(t),
              (long long)n_in);
    int q_diff = 0, y_diff = 0, add_diff = 0;
    double worst = 0;
    for (int nt = 1; nt <= 8; nt++) {
        CU(pc_cu_quantize_q8(dx, n_in, n_in, nt, dq, 0));
        dget(gq, dq, (size_t)nt * n_in);
        dget(gds, (char *)dq + (size_t)nt * n_in, sizeof(float) * 2 * nt * (size_t)nb);
        q_diff += memcmp(gq, qs, (size_t)nt * n_in) != 0;
        for (int64_t i = 0; i < nt * nb; i++) q_diff += memcmp(&gds[2 * i], &d[i], 4) != 0 || memcmp(&gds[2 * i + 1], &s[i], 4) != 0;
        CU(pc_cu_gemv_q8(t, dw, n_in, n_out, dx, n_in, nt, dq, dy, n_out, PC_CU_OUT_F32, 0));
        dget(got, dy, sizeof(float) * nt * (size_t)n_out);
        CU(pc_cu_gemv_q8(t, dw, n_in, n_out, dx, n_in, nt, dq, dy, n_out, PC_CU_OUT_ADD_F32, 0));
        dget(got2, dy, sizeof(float) * nt * (size_t)n_out);
        for (int64_t i = 0; i < nt * n_out; i++) {
            const float twice = want[i] + want[i];
            y_diff += memcmp(&got[i], &want[i], 4) != 0;
            add_diff += memcmp(&got2[i], &twice, 4) != 0;
        }
        worst = fmax(worst, rel_l2(got, exact, (size_t)nt * n_out));
    }
    CHECK_MSG(q_diff == 0, "gemv_q8 %s %lld: x's int8 form differs from the CPU's (%d)", pc_type_name(t),
              (long long)n_in, q_diff);
    CHECK_MSG(y_diff == 0 && add_diff == 0, "gemv_q8 %s %lld -> %lld: %d outputs (= ) and %d (+=) differ from the CPU's",
              pc_type_name(t), (long long)n_in, (long long)n_out, y_diff, add_diff);
    CHECK_MSG(worst <= 5e-2, "gemv_q8 %s %lld: relative error %.3g against the exact product", pc_type_name(t),
              (long long)n_in, worst);
    printf("gemv_q8 %-5s %5lld -> %lld, 1..8 tokens: bitwise the CPU's integer math (%d differ); relative error %.3g "
           "against the exact product\n", pc_type_name(t), (long long)n_in, (long long)n_out, y_diff + add_diff, worst);
    CU(cudaFree(dw)); CU(cudaFree(dx)); CU(cudaFree(dq)); CU(cudaFree(dy));
    free(w), free(wf), free(x), free(qs), free(gq), free(d), free(s), free(gds), free(want), free(exact), free(got),
        free(got2);
}

/* Widths 768 and 2304 as test_gemv, 1536 (Qwen2.5-1.5B: 48 units, lanes
 * uneven) and 256 (8 units: most lanes idle); one token's x is quantized
 * inside the product's blocks up to 2048 wide, by a launch of its own at 2304
 * (and for more tokens); Q6_K rows of an odd block count
 * (768, 2304, 256) put every other row 2 bytes off a word. Q4_0 rows of an odd
 * block count, misaligned Q4_K and other types are not taken (the float
 * kernel's). */
static void test_gemv_q8(uint64_t *rng) {
    const pc_type types[] = {PC_TYPE_Q4_0, PC_TYPE_Q4_K, PC_TYPE_Q6_K};
    const int64_t widths[] = {768, 2304, 1536, 256};
    for (size_t wi = 0; wi < sizeof widths / sizeof widths[0]; wi++)
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) gemv_q8_case(rng, types[i], widths[wi], 203);
    void *dw = NULL;
    CU(cudaMalloc(&dw, 4096));
    CHECK_MSG(!pc_cu_gemv_q8_takes(PC_TYPE_Q4_0, dw, 800), "gemv_q8 takes Q4_0 rows of 25 blocks");
    CHECK_MSG(!pc_cu_gemv_q8_takes(PC_TYPE_Q4_K, (char *)dw + 4, 768), "gemv_q8 takes Q4_K 4 bytes off alignment");
    CHECK_MSG(!pc_cu_gemv_q8_takes(PC_TYPE_Q4_1, dw, 768), "gemv_q8 takes Q4_1");
    CU(cudaFree(dw));
}

/* Row 0 of x W^T through cuBLAS for m = 1.. rows: equal bits for every m? */
static void report_gemm_invariance(uint64_t *rng) {
    const int n_in = 4096, n_out = 4096, ms[] = {1, 2, 3, 7, 8, 16, 31, 32, 33, 64, 100, 128, 256, 512, 1024, 2048, 4096, 8192};
    const int max_m = 8192;
    uint16_t *w = malloc(2 * (size_t)n_in * n_out), *x = malloc(2 * (size_t)n_in * max_m);
    for (size_t i = 0; i < (size_t)n_in * n_out; i++) w[i] = pc_f32_to_bf16(frand(rng) * 0.02f);
    for (size_t i = 0; i < (size_t)n_in * max_m; i++) x[i] = pc_f32_to_bf16(frand(rng));
    void *dw = dput(w, 2 * (size_t)n_in * n_out), *dx = dput(x, 2 * (size_t)n_in * max_m), *dy = NULL;
    CU(cudaMalloc(&dy, sizeof(float) * (size_t)n_out * max_m));
    cublasHandle_t h;
    if (cublasCreate(&h) != CUBLAS_STATUS_SUCCESS) {
        CHECK_MSG(false, "cublasCreate failed");
        return;
    }
    float *row0 = malloc(sizeof(float) * n_out), *ref = malloc(sizeof(float) * n_out);
    const float one = 1, zero = 0;
    int first_diff = 0;
    for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++) {
        cublasStatus_t st = cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, n_out, ms[i], n_in, &one, dw, CUDA_R_16BF, n_in,
                                         dx, CUDA_R_16BF, n_in, &zero, dy, CUDA_R_32F, n_out, CUBLAS_COMPUTE_32F,
                                         CUBLAS_GEMM_DEFAULT);
        CHECK_MSG(st == CUBLAS_STATUS_SUCCESS, "cublasGemmEx status %d", (int)st);
        dget(row0, dy, sizeof(float) * n_out);
        if (i == 0) memcpy(ref, row0, sizeof(float) * n_out);
        else if (!first_diff && memcmp(ref, row0, sizeof(float) * n_out)) first_diff = ms[i];
    }
    if (first_diff)
        printf("cuBLAS rows: NOT invariant to the row count (row 0 changes first at %d rows): GPU cached == uncached "
               "is within a tolerance, not bitwise\n", first_diff);
    else
        printf("cuBLAS rows: bitwise invariant to the row count for 1..%d rows\n", max_m);
    cublasDestroy(h);
    CU(cudaFree(dw)); CU(cudaFree(dx)); CU(cudaFree(dy));
    free(w), free(x), free(row0), free(ref);
}

/* ---- attention ---- */

typedef struct attn_case {
    const char *name;
    int n_head, n_kv, hd, n_ctx, n_q, n_spans;
    int causal; /* keys 0..n_ctx-1 in order, queries the last n_q positions; else random positions */
} attn_case;

/* Spans with random K/V; returns the list (spans owned by the caller). */
static void make_context(uint64_t *rng, const attn_case *c, pc_kv_span **spans, int32_t *all_pos) {
    const int KV = c->n_kv * c->hd;
    int base = 0;
    for (int s = 0; s < c->n_spans; s++) {
        /* cuts off the multiples of 8 and 64, so tiles and key blocks end mid-span */
        int cut = s == c->n_spans - 1 ? c->n_ctx : c->n_ctx * (s + 1) / c->n_spans - 3 - s;
        if (cut <= base) cut = base + 1;
        const int n = cut - base;
        pc_kv_span *sp = pc_kv_span_create(1, KV, n ? n : 1);
        pc_kv_span_reserve(sp, n, NULL);
        for (int i = 0; i < n; i++) {
            sp->pos[i] = all_pos[base + i];
            for (int d = 0; d < KV; d++) {
                *pc_kv_k_at(sp, 0, i, d) = pc_f32_to_f16(frand(rng));
                pc_kv_v(sp, 0, i)[d] = pc_f32_to_f16(frand(rng));
            }
        }
        sp->n = n;
        spans[s] = sp;
        base += n;
    }
}

static void run_attn_case(uint64_t *rng, const attn_case *c) {
    const int Q = c->n_head * c->hd, KV = c->n_kv * c->hd, G = c->n_head / c->n_kv;
    int32_t *all_pos = malloc(sizeof(int32_t) * c->n_ctx), *qpos = malloc(sizeof(int32_t) * c->n_q);
    for (int i = 0; i < c->n_ctx; i++) all_pos[i] = c->causal ? i : irand(rng, c->n_ctx * 2);
    for (int t = 0; t < c->n_q; t++) qpos[t] = c->causal ? c->n_ctx - c->n_q + t : irand(rng, c->n_ctx * 2);
    pc_kv_span *spans[4];
    make_context(rng, c, spans, all_pos);
    pc_kv_list list = {0};
    for (int s = 0; s < c->n_spans; s++) pc_kv_list_push(&list, spans[s], NULL);
    float *q = malloc(sizeof(float) * c->n_q * Q), *want = malloc(sizeof(float) * c->n_q * Q);
    uint16_t *q16 = malloc(2 * (size_t)c->n_q * Q);
    for (int i = 0; i < c->n_q * Q; i++) {
        q16[i] = pc_f32_to_f16(frand(rng));
        q[i] = pc_f16_to_f32(q16[i]);
    }
    /* CPU reference */
    pc_pool *pool = pc_pool_create(0);
    const size_t per = (pc_attn_scratch_size(c->n_head, c->n_kv, c->hd, c->n_ctx) + 63) & ~(size_t)63;
    void *scratch = NULL, *shared = NULL;
    if (posix_memalign(&scratch, 64, per * (size_t)pc_pool_size(pool)) ||
        posix_memalign(&shared, 64, pc_attn_shared_size(c->n_head, c->n_kv, c->n_ctx)))
        abort();
    const float scale = 1.0f / sqrtf((float)c->hd);
    pc_attn_args ca = {.q = q, .q_stride = Q, .q_pos = qpos, .n_q = c->n_q, .n_head = c->n_head, .n_head_kv = c->n_kv,
                       .head_dim = c->hd, .ctx = &list, .layer = 0, .scale = scale, .out = want, .out_stride = Q,
                       .scratch = scratch, .scratch_per_thread = per, .shared = shared, .isa = pc_isa_detect()};
    pc_attention(pool, &ca);
    /* the device context: spans as they lie, tiles of 64 */
    host_step s = {0};
    int n_tiles = 0;
    for (int i = 0; i < c->n_spans; i++) n_tiles += (spans[i]->n + 63) / 64;
    pc_cu_tile *tiles = malloc(sizeof *tiles * (size_t)n_tiles);
    int32_t *kpos = malloc(sizeof(int32_t) * 64 * (size_t)n_tiles);
    pc_cu_span_layer tab[4];
    int t = 0;
    for (int i = 0; i < c->n_spans; i++) {
        const pc_kv_span *sp = spans[i];
        const size_t bytes = (size_t)sp->cap * KV * 2;
        tab[i].k = step_put(&s, sp->k, bytes);
        tab[i].v = step_put(&s, sp->v, bytes);
        for (int r0 = 0; r0 < sp->n; r0 += 64, t++) {
            int mn = INT32_MAX, k = sp->n - r0 < 64 ? sp->n - r0 : 64;
            for (int j = 0; j < 64; j++) {
                kpos[t * 64 + j] = j < k ? sp->pos[r0 + j] : INT32_MAX;
                mn = kpos[t * 64 + j] < mn ? kpos[t * 64 + j] : mn;
            }
            tiles[t] = (pc_cu_tile){.span = i, .row0 = r0, .n = k, .min_pos = mn};
        }
    }
    s.st.n = c->n_q;
    s.st.n_tiles = n_tiles;
    s.st.n_spans = c->n_spans;
    s.st.qpos = step_put(&s, qpos, sizeof(int32_t) * c->n_q);
    s.st.tiles = step_put(&s, tiles, sizeof *tiles * (size_t)n_tiles);
    s.st.kpos = step_put(&s, kpos, sizeof(int32_t) * 64 * (size_t)n_tiles);
    s.st.spans = step_put(&s, tab, sizeof tab[0] * (size_t)c->n_spans);
    step_finish(&s);
    void *dq = dput(q16, 2 * (size_t)c->n_q * Q), *dout = NULL, *po = NULL, *pml = NULL;
    CU(cudaMalloc(&dout, 2 * (size_t)c->n_q * Q));
    const size_t parts = (size_t)64 * 1024;
    CU(cudaMalloc(&po, parts * c->hd * sizeof(float)));
    CU(cudaMalloc(&pml, parts * 2 * sizeof(float)));
    uint16_t *got16 = malloc(2 * (size_t)c->n_q * Q);
    float *got = malloc(sizeof(float) * c->n_q * Q);
    const int rows = c->n_q * G;
    const int splits[] = {1, 3, 7};
    static const char *const kname[] = {"mma", "vec", "fewq"};
    for (int kern = 0; kern < 3; kern++) {
        if ((kern == PC_CU_ATTN_VEC && rows > 8) || (kern == PC_CU_ATTN_FEWQ && rows > 32)) continue;
        for (int si = 0; si < 3; si++) {
            pc_cu_attn_args a = {.step = s.dev, .q16 = dq, .out = dout, .part_o = po, .part_ml = pml, .n = c->n_q,
                                 .n_head = c->n_head, .n_head_kv = c->n_kv, .head_dim = c->hd, .layer = 0,
                                 .n_split = splits[si], .tiles_cap = pc_cu_attn_tiles_cap(n_tiles, splits[si]),
                                 .scale = scale, .kernel = (pc_cu_attn_kernel)kern};
            if ((size_t)pc_cu_attn_q_tiles(&a) * c->n_kv * splits[si] * 64 > parts) continue;
            CU(cudaMemset(dout, 0xFF, 2 * (size_t)c->n_q * Q)); /* NaN: every output must be written */
            CU(pc_cu_attention(&a, 0));
            dget(got16, dout, 2 * (size_t)c->n_q * Q);
            for (int i = 0; i < c->n_q * Q; i++) got[i] = bf16f(got16[i]);
            const double e = rel_l2(got, want, (size_t)c->n_q * Q);
            CHECK_MSG(e <= 6e-3, "attention %s (%s, split %d): relative error %.3g", c->name, kname[kern], splits[si], e);
            printf("attention %-28s %s split %d: relative error %.3g\n", c->name, kname[kern], splits[si], e);
        }
    }
    step_free(&s);
    CU(cudaFree(dq)); CU(cudaFree(dout)); CU(cudaFree(po)); CU(cudaFree(pml));
    for (int i = 0; i < c->n_spans; i++) pc_kv_span_release(spans[i]);
    pc_kv_list_free(&list);
    pc_pool_free(pool);
    free(scratch), free(shared), free(tiles), free(kpos), free(all_pos), free(qpos), free(q), free(want), free(q16);
    free(got16), free(got);
}

static void test_attention(uint64_t *rng, bool small) {
    const attn_case cases[] = {
        {"decode 7B-like, 3 spans", 32, 32, 128, 1000, 1, 3, 1},
        {"decode GQA 6, 2 spans", 12, 2, 128, 777, 1, 2, 1},
        {"few queries, random pos", 8, 8, 128, 1500, 3, 3, 0},
        {"32 fresh over 1200", 8, 8, 128, 1232, 32, 2, 1},
        {"prefill 300 causal hd64", 9, 3, 64, 300, 300, 1, 1},
        {"prefill 200 random hd64", 9, 3, 64, 400, 200, 3, 0},
        {"prefill 129 GQA 6 hd128", 12, 2, 128, 129, 129, 1, 1},
        {"prefill 390 causal hd128, 2 spans", 4, 4, 128, 390, 390, 2, 1},
        {"prefill 1100 causal hd128", 2, 2, 128, 1100, 1100, 1, 1},
        {"decode GQA 8 rows hd64", 16, 2, 64, 333, 1, 2, 0},
        {"33 rows GQA 3 hd64", 9, 3, 64, 390, 11, 2, 1},
        {"48 rows GQA 4, random pos", 8, 2, 128, 900, 12, 3, 0},
        {"64 rows GQA 4", 8, 2, 128, 380, 16, 2, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (!small || cases[i].n_ctx <= 400) run_attn_case(rng, &cases[i]);
}

/* A query sees no key placed after it, even in an earlier span: poison such keys. */
static void test_attention_masks(uint64_t *rng) {
    const int n_head = 4, hd = 64, KV = n_head * hd, n = 128;
    pc_kv_span *a = pc_kv_span_create(1, KV, n), *b = pc_kv_span_create(1, KV, n);
    pc_kv_span_reserve(a, n, NULL), pc_kv_span_reserve(b, n, NULL);
    for (int i = 0; i < n; i++) {
        a->pos[i] = 1000 + i; /* all after the query: must not count */
        b->pos[i] = i;
        for (int d = 0; d < KV; d++) {
            *pc_kv_k_at(a, 0, i, d) = pc_f32_to_f16(5.0f);
            pc_kv_v(a, 0, i)[d] = pc_f32_to_f16(1000.0f);
            *pc_kv_k_at(b, 0, i, d) = pc_f32_to_f16(frand(rng));
            pc_kv_v(b, 0, i)[d] = pc_f32_to_f16(frand(rng));
        }
    }
    a->n = b->n = n;
    host_step s = {0};
    pc_cu_span_layer tab[2] = {{step_put(&s, a->k, (size_t)a->cap * KV * 2), step_put(&s, a->v, (size_t)a->cap * KV * 2)},
                               {step_put(&s, b->k, (size_t)b->cap * KV * 2), step_put(&s, b->v, (size_t)b->cap * KV * 2)}};
    pc_cu_tile tiles[4];
    int32_t kpos[4 * 64];
    for (int t = 0; t < 4; t++) {
        const pc_kv_span *sp = t < 2 ? a : b;
        tiles[t] = (pc_cu_tile){.span = t / 2, .row0 = (t % 2) * 64, .n = 64, .min_pos = sp->pos[(t % 2) * 64]};
        for (int j = 0; j < 64; j++) kpos[t * 64 + j] = sp->pos[(t % 2) * 64 + j];
    }
    /* min_pos of span a's tiles is lied about (0): the kernel must still mask key by key */
    tiles[0].min_pos = tiles[1].min_pos = 0;
    const int32_t qpos[1] = {100};
    s.st.n = 1, s.st.n_tiles = 4, s.st.n_spans = 2;
    s.st.qpos = step_put(&s, qpos, sizeof qpos);
    s.st.tiles = step_put(&s, tiles, sizeof tiles);
    s.st.kpos = step_put(&s, kpos, sizeof kpos);
    s.st.spans = step_put(&s, tab, sizeof tab);
    step_finish(&s);
    uint16_t q16[4 * 64], out16[4 * 64];
    for (int i = 0; i < KV; i++) q16[i] = pc_f32_to_f16(frand(rng));
    void *dq = dput(q16, sizeof q16), *dout = NULL, *po = NULL, *pml = NULL;
    CU(cudaMalloc(&dout, sizeof out16));
    CU(cudaMalloc(&po, 64 * 64 * 16 * sizeof(float)));
    CU(cudaMalloc(&pml, 64 * 16 * 2 * sizeof(float)));
    static const char *const kname[] = {"mma", "vec", "fewq"};
    for (int kern = 0; kern < 3; kern++) {
        pc_cu_attn_args ar = {.step = s.dev, .q16 = dq, .out = dout, .part_o = po, .part_ml = pml, .n = 1,
                              .n_head = n_head, .n_head_kv = n_head, .head_dim = hd, .layer = 0, .n_split = 2,
                              .tiles_cap = pc_cu_attn_tiles_cap(4, 2), .scale = 0.125f, .kernel = (pc_cu_attn_kernel)kern};
        CU(pc_cu_attention(&ar, 0));
        dget(out16, dout, sizeof out16);
        float worst = 0;
        for (int i = 0; i < KV; i++) worst = fmaxf(worst, fabsf(bf16f(out16[i])));
        CHECK_MSG(worst < 2.0f, "%s: a key after the query leaked into the output (|out| up to %g)", kname[kern], worst);
    }
    step_free(&s);
    CU(cudaFree(dq)); CU(cudaFree(dout)); CU(cudaFree(po)); CU(cudaFree(pml));
    pc_kv_span_release(a), pc_kv_span_release(b);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0); /* a crash keeps what was printed */
    char why[256];
    if (!pc_backend_cuda_available(why, sizeof why)) {
        printf("test_ops_cuda: skipped: %s\n", why);
        return CHECK_SKIP;
    }
    /* PC_TEST_SMALL=1 (compute-sanitizer runs): short contexts, no cuBLAS sweep */
    const char *small_env = getenv("PC_TEST_SMALL");
    const bool small = small_env && *small_env == '1';
    CU(pc_cu_attention_init());
    uint64_t rng = 0x243F6A8885A308D3ULL;
    if (argc > 1 && strcmp(argv[1], "gemv") == 0) { /* the small-batch product alone, for a short sanitizer run */
        test_gemv(&rng);
        test_gemv_q8(&rng);
        return check_report();
    }
    test_dequant(&rng);
    test_rmsnorm(&rng);
    test_swiglu(&rng);
    test_qkv(&rng, 1, 8, 4, 128, 128);
    test_qkv(&rng, 2, 14, 2, 64, 64);
    test_qkv(&rng, 2, 6, 2, 128, 64);
    test_qkv(&rng, 1, 4, 4, 64, 32);
    test_gemv(&rng);
    test_gemv_q8(&rng);
    test_attention(&rng, small);
    test_attention_masks(&rng);
    if (!small) report_gemm_invariance(&rng);
    return check_report();
}
