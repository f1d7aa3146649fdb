/* gemv_sandbox.cu - versions of the bf16 decode GEMV side by side (the llm.c
 * dev/cuda way: each version checked against a double-precision reference,
 * then timed), before the winner goes into src/kernels/cuda/quant.cu.
 *
 *   v0   the kernel of quant.cu before this sandbox: a warp per row, each lane
 *        64 contiguous bytes per unit, 4 units in flight
 *   v2   a warp per row, lane l reading 16-byte chunks l, l+32, ... (every warp
 *        load covers 512 contiguous bytes, L1 bypassed), B chunks a lane in
 *        flight and the next B requested before the current ones are used;
 *        W warps a block; griddepcontrol (PDL): the first weights are requested
 *        before waiting for the kernel before it
 *
 * Timing is what a decode step sees: the 7B layer's four products (4096->12288,
 * 4096->4096, 4096->22016, 11008->4096) of 32 layers and the 4096->32000 output
 * product, each with its own weights (13.2 GB, so nothing comes from L2), launched
 * back to back, with and without PDL; cuBLAS on the same chain beside them.
 * Usage: gemv_sandbox [reps]. Prints a table; exit 1 on a wrong result. */
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#define CU(e)                                                                                                          \
    do {                                                                                                               \
        cudaError_t r_ = (e);                                                                                          \
        if (r_ != cudaSuccess) {                                                                                       \
            fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #e, cudaGetErrorString(r_));                        \
            exit(1);                                                                                                   \
        }                                                                                                              \
    } while (0)

namespace {

__device__ __forceinline__ void pdl_wait() { asm volatile("griddepcontrol.wait;\n" ::: "memory"); }
__device__ __forceinline__ void pdl_launch() { asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory"); }

__device__ __forceinline__ float lo(uint32_t v) { return __uint_as_float(v << 16); }
__device__ __forceinline__ float hi(uint32_t v) { return __uint_as_float(v & 0xFFFF0000u); }

/* ---- v0 (quant.cu as it was) ---- */
template <int NT>
__global__ void __launch_bounds__(128) gemv_v0(const uint4 *w, int64_t n_in, int64_t n_out, const __nv_bfloat16 *x,
                                               int64_t x_stride, int n_tok, float *y, int64_t y_stride) {
    constexpr int U = 4;
    const int lane = threadIdx.x % 32;
    const int64_t o = (int64_t)blockIdx.x * 4 + threadIdx.x / 32;
    if (o >= n_out) return;
    const uint4 *row = w + o * (n_in / 8);
    const int64_t units = n_in / 32;
    float acc[NT];
    for (int t = 0; t < NT; t++) acc[t] = 0.f;
    int64_t u = lane;
    for (; u < units; u += 32 * U) {
        uint4 raw[U][4];
#pragma unroll
        for (int k = 0; k < U; k++)
#pragma unroll
            for (int i = 0; i < 4; i++) raw[k][i] = u + 32 * k < units ? __ldg(row + (u + 32 * k) * 4 + i) : uint4{};
#pragma unroll
        for (int k = 0; k < U; k++) {
            if (u + 32 * k >= units) break;
#pragma unroll
            for (int t = 0; t < NT; t++) {
                if (t >= n_tok) break;
                const uint4 *xp = reinterpret_cast<const uint4 *>(x + t * x_stride + (u + 32 * k) * 32);
#pragma unroll
                for (int i = 0; i < 4; i++) {
                    const uint4 xv = __ldg(xp + i), wv = raw[k][i];
                    const uint32_t a[4] = {wv.x, wv.y, wv.z, wv.w}, b[4] = {xv.x, xv.y, xv.z, xv.w};
#pragma unroll
                    for (int j = 0; j < 4; j++) acc[t] = fmaf(hi(a[j]), hi(b[j]), fmaf(lo(a[j]), lo(b[j]), acc[t]));
                }
            }
        }
    }
    for (int t = 0; t < NT; t++)
        for (int off = 16; off > 0; off >>= 1) acc[t] += __shfl_xor_sync(0xffffffffu, acc[t], off);
    if (lane == 0)
        for (int t = 0; t < n_tok && t < NT; t++) y[t * y_stride + o] = acc[t];
}

/* ---- v2 ---- */
__device__ __forceinline__ uint4 ld_stream(const uint4 *p) {
    uint4 r;
    asm("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
        : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w)
        : "l"(p));
    return r;
}

__device__ __forceinline__ float dot8(uint4 w, uint4 x, float acc) {
    const uint32_t a[4] = {w.x, w.y, w.z, w.w}, b[4] = {x.x, x.y, x.z, x.w};
#pragma unroll
    for (int j = 0; j < 4; j++) acc = fmaf(hi(a[j]), hi(b[j]), fmaf(lo(a[j]), lo(b[j]), acc));
    return acc;
}

template <int B>
__device__ __forceinline__ void load_chunks(const uint4 *row, int c0, int nc, uint4 v[B]) {
#pragma unroll
    for (int k = 0; k < B; k++) {
        const int c = c0 + 32 * k;
        v[k] = c < nc ? ld_stream(row + c) : make_uint4(0, 0, 0, 0);
    }
}

template <int NT, int B, int W>
__global__ void __launch_bounds__(W * 32) gemv_v2(const uint4 *w, int nc, int64_t n_out, const uint4 *x, int64_t xs,
                                                  int n_tok, float *y, int64_t y_stride) {
    pdl_launch();
    const int lane = threadIdx.x % 32;
    const int64_t o = (int64_t)blockIdx.x * W + threadIdx.x / 32;
    if (o >= n_out) return;
    const uint4 *row = w + o * nc;
    uint4 cur[B];
    load_chunks<B>(row, lane, nc, cur);
    pdl_wait();
    float acc[NT];
#pragma unroll
    for (int t = 0; t < NT; t++) acc[t] = 0.f;
    for (int c0 = lane; c0 < nc; c0 += 32 * B) {
        uint4 nxt[B];
        load_chunks<B>(row, c0 + 32 * B, nc, nxt);
#pragma unroll
        for (int k = 0; k < B; k++) {
            const int c = c0 + 32 * k;
            if (c < nc) {
#pragma unroll
                for (int t = 0; t < NT; t++)
                    if (t < n_tok) acc[t] = dot8(cur[k], __ldg(x + t * xs + c), acc[t]);
            }
        }
#pragma unroll
        for (int k = 0; k < B; k++) cur[k] = nxt[k];
    }
#pragma unroll
    for (int t = 0; t < NT; t++)
#pragma unroll
        for (int off = 16; off > 0; off >>= 1) acc[t] += __shfl_xor_sync(0xffffffffu, acc[t], off);
    if (lane == 0)
#pragma unroll
        for (int t = 0; t < NT; t++)
            if (t < n_tok) y[t * y_stride + o] = acc[t];
}

__global__ void fill_bf16(uint16_t *p, size_t n, uint64_t seed) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        uint64_t h = (i + seed) * 0x9E3779B97F4A7C15ull;
        h ^= h >> 31;
        h *= 0xBF58476D1CE4E5B9ull;
        h ^= h >> 29;
        const float f = ((float)(h >> 40) / (float)(1u << 24) * 2.f - 1.f) * 0.05f;
        p[i] = (uint16_t)(__float_as_uint(f) >> 16);
    }
}

struct prod {
    int n_in, n_out;
    const uint16_t *w;
};

template <typename K, typename... A>
void launch(bool pdl, K kernel, unsigned grid, unsigned threads, A... args) {
    cudaLaunchAttribute at[1];
    at[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    at[0].val.programmaticStreamSerializationAllowed = 1;
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = dim3(grid);
    cfg.blockDim = dim3(threads);
    cfg.stream = 0;
    cfg.attrs = at;
    cfg.numAttrs = pdl ? 1 : 0;
    CU(cudaLaunchKernelEx(&cfg, kernel, args...));
}

enum { V0, V2_4_4, V2_8_4, V2_8_8, V2_16_4, V2_4_8, V2_2_4, V2_2_8, V2_4_16, V2_1_4, V2_1_8, CUBLAS, NV };
const char *vname[NV] = {"v0 (quant.cu)", "v2 B4 W4", "v2 B8 W4", "v2 B8 W8", "v2 B16 W4", "v2 B4 W8", "v2 B2 W4", "v2 B2 W8", "v2 B4 W16", "v2 B1 W4", "v2 B1 W8", "cuBLAS"};

template <int NT>
void run_v2(int v, bool pdl, const prod &p, const uint16_t *x, int n_tok, float *y) {
    const uint4 *w = reinterpret_cast<const uint4 *>(p.w), *xv = reinterpret_cast<const uint4 *>(x);
    const int nc = p.n_in / 8;
    const int64_t xs = p.n_in / 8;
    switch (v) {
    case V2_4_4: launch(pdl, gemv_v2<NT, 4, 4>, (p.n_out + 3) / 4, 128, w, nc, (int64_t)p.n_out, xv, xs, n_tok, y, (int64_t)p.n_out); break;
    case V2_8_4: launch(pdl, gemv_v2<NT, 8, 4>, (p.n_out + 3) / 4, 128, w, nc, (int64_t)p.n_out, xv, xs, n_tok, y, (int64_t)p.n_out); break;
    case V2_8_8: launch(pdl, gemv_v2<NT, 8, 8>, (p.n_out + 7) / 8, 256, w, nc, (int64_t)p.n_out, xv, xs, n_tok, y, (int64_t)p.n_out); break;
    case V2_16_4: launch(pdl, gemv_v2<NT, 16, 4>, (p.n_out + 3) / 4, 128, w, nc, (int64_t)p.n_out, xv, xs, n_tok, y, (int64_t)p.n_out); break;
    case V2_2_4: launch(pdl, gemv_v2<NT, 2, 4>, (p.n_out + 3) / 4, 128, w, nc, (int64_t)p.n_out, xv, xs, n_tok, y, (int64_t)p.n_out); break;
    case V2_2_8: launch(pdl, gemv_v2<NT, 2, 8>, (p.n_out + 7) / 8, 256, w, nc, (int64_t)p.n_out, xv, xs, n_tok, y, (int64_t)p.n_out); break;
    case V2_4_16: launch(pdl, gemv_v2<NT, 4, 16>, (p.n_out + 15) / 16, 512, w, nc, (int64_t)p.n_out, xv, xs, n_tok, y, (int64_t)p.n_out); break;
    case V2_1_4: launch(pdl, gemv_v2<NT, 1, 4>, (p.n_out + 3) / 4, 128, w, nc, (int64_t)p.n_out, xv, xs, n_tok, y, (int64_t)p.n_out); break;
    case V2_1_8: launch(pdl, gemv_v2<NT, 1, 8>, (p.n_out + 7) / 8, 256, w, nc, (int64_t)p.n_out, xv, xs, n_tok, y, (int64_t)p.n_out); break;
    case V2_4_8: launch(pdl, gemv_v2<NT, 4, 8>, (p.n_out + 7) / 8, 256, w, nc, (int64_t)p.n_out, xv, xs, n_tok, y, (int64_t)p.n_out); break;
    }
}

void run(int v, bool pdl, cublasHandle_t h, const prod &p, const uint16_t *x, int n_tok, float *y) {
    if (v == V0) {
        const __nv_bfloat16 *xb = reinterpret_cast<const __nv_bfloat16 *>(x);
        const uint4 *w = reinterpret_cast<const uint4 *>(p.w);
        if (n_tok == 1)
            gemv_v0<1><<<(p.n_out + 3) / 4, 128>>>(w, p.n_in, p.n_out, xb, p.n_in, 1, y, p.n_out);
        else
            gemv_v0<2><<<(p.n_out + 3) / 4, 128>>>(w, p.n_in, p.n_out, xb, p.n_in, n_tok, y, p.n_out);
        CU(cudaGetLastError());
    } else if (v == CUBLAS) {
        const float one = 1, zero = 0;
        if (cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, p.n_out, n_tok, p.n_in, &one, p.w, CUDA_R_16BF, p.n_in, x,
                         CUDA_R_16BF, p.n_in, &zero, y, CUDA_R_32F, p.n_out, CUBLAS_COMPUTE_32F,
                         CUBLAS_GEMM_DEFAULT) != CUBLAS_STATUS_SUCCESS) {
            fprintf(stderr, "cublasGemmEx failed\n");
            exit(1);
        }
    } else if (n_tok == 1) {
        run_v2<1>(v, pdl, p, x, n_tok, y);
    } else {
        run_v2<2>(v, pdl, p, x, n_tok, y);
    }
}

float bf(uint16_t v) {
    uint32_t u = (uint32_t)v << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Relative L2 error of version v's output against a double product, on rows
 * [0, rows) of p, output poisoned first. */
double check(int v, cublasHandle_t h, const prod &p, const uint16_t *x, int n_tok, float *y) {
    CU(cudaMemset(y, 0xFF, sizeof(float) * p.n_out * 2));
    run(v, false, h, p, x, n_tok, y);
    CU(cudaDeviceSynchronize());
    const int rows = std::min(p.n_out, 512);
    std::vector<uint16_t> hw((size_t)rows * p.n_in), hx((size_t)p.n_in * 2);
    std::vector<float> hy((size_t)p.n_out * 2);
    CU(cudaMemcpy(hw.data(), p.w, hw.size() * 2, cudaMemcpyDeviceToHost));
    CU(cudaMemcpy(hx.data(), x, hx.size() * 2, cudaMemcpyDeviceToHost));
    CU(cudaMemcpy(hy.data(), y, hy.size() * 4, cudaMemcpyDeviceToHost));
    double num = 0, den = 0;
    for (int t = 0; t < n_tok; t++)
        for (int r = 0; r < rows; r++) {
            double s = 0;
            for (int i = 0; i < p.n_in; i++) s += (double)bf(hw[(size_t)r * p.n_in + i]) * bf(hx[(size_t)t * p.n_in + i]);
            const double d = hy[(size_t)t * p.n_out + r] - s;
            if (std::isnan(hy[(size_t)t * p.n_out + r])) return INFINITY;
            num += d * d, den += s * s;
        }
    return sqrt(num / den);
}

} // namespace

int main(int argc, char **argv) {
    const int reps = argc > 1 ? atoi(argv[1]) : 7;
    cudaDeviceProp dp;
    CU(cudaGetDeviceProperties(&dp, 0));
    printf("device: %s, %d SMs, L2 %.0f MB\n", dp.name, dp.multiProcessorCount, dp.l2CacheSize / 1e6);
    cublasHandle_t h;
    cublasCreate(&h);
    const int shapes[5][2] = {{4096, 12288}, {4096, 4096}, {4096, 22016}, {11008, 4096}, {4096, 32000}};
    std::vector<prod> chain;
    size_t total = 0;
    for (int l = 0; l < 32; l++)
        for (int s = 0; s < 4; s++) chain.push_back({shapes[s][0], shapes[s][1], nullptr});
    chain.push_back({shapes[4][0], shapes[4][1], nullptr});
    for (auto &p : chain) total += (size_t)p.n_in * p.n_out;
    uint16_t *wall, *x;
    float *y;
    CU(cudaMalloc(&wall, total * 2));
    CU(cudaMalloc(&x, 11008 * 2 * 2));
    CU(cudaMalloc(&y, 32000 * 2 * 4));
    fill_bf16<<<4096, 256>>>(wall, total, 1);
    fill_bf16<<<64, 256>>>(x, 11008 * 2, 7);
    CU(cudaGetLastError());
    size_t off = 0;
    for (auto &p : chain) p.w = wall + off, off += (size_t)p.n_in * p.n_out;
    printf("chain: 32 layers x 4 products + output, %.2f GB of bf16 weights\n", total * 2 / 1e9);
    bool bad = false;
    for (int v = 0; v < NV; v++)
        for (int n_tok = 1; n_tok <= 2; n_tok++)
            for (int s = 0; s < 5; s++) {
                const prod &p = s < 4 ? chain[s] : chain.back();
                const double e = check(v, h, p, x, n_tok, y);
                if (!(e < 1e-5)) {
                    printf("WRONG: %s, %d tokens, %d -> %d: relative error %.3g\n", vname[v], n_tok, p.n_in, p.n_out, e);
                    bad = true;
                }
            }
    printf("checks: every version against a double product on 512 rows of each shape, 1 and 2 tokens: %s\n",
           bad ? "FAILED" : "all below 1e-5");
    cudaEvent_t a, b;
    CU(cudaEventCreate(&a));
    CU(cudaEventCreate(&b));
    printf("%-16s %4s %4s  %9s %8s   per product (us, medians, back to back in the chain): %s\n", "version", "tok",
           "pdl", "chain ms", "TB/s", "12288 4096 22016 down out");
    for (int n_tok = 1; n_tok <= 2; n_tok++)
        for (int v = 0; v < NV; v++)
            for (int pdl = 0; pdl < 2; pdl++) {
                if (pdl && (v == V0 || v == CUBLAS)) continue;
                std::vector<float> ms;
                for (int r = 0; r < reps + 1; r++) {
                    CU(cudaEventRecord(a));
                    for (auto &p : chain) run(v, pdl, h, p, x, n_tok, y);
                    CU(cudaEventRecord(b));
                    CU(cudaEventSynchronize(b));
                    float m;
                    CU(cudaEventElapsedTime(&m, a, b));
                    if (r) ms.push_back(m);
                }
                std::sort(ms.begin(), ms.end());
                const float med = ms[ms.size() / 2];
                /* each shape alone, 32 distinct matrices back to back */
                float per[5];
                for (int s = 0; s < 5; s++) {
                    std::vector<float> m2;
                    for (int r = 0; r < 4; r++) {
                        CU(cudaEventRecord(a));
                        int cnt = 0;
                        for (size_t i = 0; i < chain.size(); i++)
                            if ((s == 4) == (i + 1 == chain.size()) && (s == 4 || (int)(i % 4) == s))
                                run(v, pdl, h, chain[i], x, n_tok, y), cnt++;
                        CU(cudaEventRecord(b));
                        CU(cudaEventSynchronize(b));
                        float m;
                        CU(cudaEventElapsedTime(&m, a, b));
                        if (r) m2.push_back(m / cnt);
                    }
                    std::sort(m2.begin(), m2.end());
                    per[s] = m2[m2.size() / 2] * 1e3f;
                }
                printf("%-16s %4d %4d  %9.3f %8.2f   %.1f %.1f %.1f %.1f %.1f\n", vname[v], n_tok, pdl, med,
                       total * 2 / (med * 1e-3) / 1e12, per[0], per[1], per[2], per[3], per[4]);
            }
    cublasDestroy(h);
    return bad ? 1 : 0;
}
