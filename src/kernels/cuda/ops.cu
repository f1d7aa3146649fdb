/* ops.cu - the element-wise steps of a block: RMSNorm, SwiGLU, and the step
 * between the Q/K/V projections and attention (biases, RoPE, KV writes).
 *
 * RMSNorm and RoPE repeat ops.c's float operations one rounding at a time
 * (the sum of squares in double, as the CPU does), so with the CPU's RoPE
 * table they give the CPU's bits up to the order of the double sum. */
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "kernels/cuda/kernels.h"
#include "kernels/cuda/launch.cuh"

namespace {

constexpr int NORM_THREADS = 256;
constexpr int QKV_THREADS = 256;
/* Elements a thread holds in registers: rows up to 8192 are loaded once, all
 * loads in flight together. A loop of dependent load-then-add steps was
 * latency bound: ~10 us a 4096-wide norm at 32 rows on the H200, with the
 * row read twice. */
constexpr int NORM_REGS = 32;

template <bool BF16>
__device__ __forceinline__ void norm_store(void *y, int64_t i, float v) {
    if (BF16)
        static_cast<__nv_bfloat16 *>(y)[i] = __float2bfloat16_rn(v);
    else
        static_cast<float *>(y)[i] = v;
}

/* The block's sum of its threads' partial sums: warps by xor shuffles, then
 * the warps' sums in order. */
__device__ __forceinline__ double block_sum(double sum, double *part) {
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, off);
    if (threadIdx.x % 32 == 0) part[threadIdx.x / 32] = sum;
    __syncthreads();
    double total = 0.0;
#pragma unroll
    for (int i = 0; i < NORM_THREADS / 32; i++) total += part[i];
    return total;
}

/* REGS: the row held in registers (dim <= NORM_REGS * NORM_THREADS), else read
 * twice. Each thread sums its elements i, i + NORM_THREADS, ... in that order
 * either way, so both give the same bits. */
template <bool BF16, bool REGS>
__global__ void __launch_bounds__(NORM_THREADS) rmsnorm_kernel(const float *x, const float *w, int dim, float eps, void *y) {
    __shared__ double part[NORM_THREADS / 32];
    pcl::grid_dep_launch(); /* the product reading y may start its weight loads (launch.cuh) */
    float wv[REGS ? NORM_REGS : 1];
#pragma unroll
    for (int k = 0; REGS && k < NORM_REGS; k++) { /* weights: no kernel of the stream writes them */
        const int i = threadIdx.x + k * NORM_THREADS;
        wv[k] = i < dim ? w[i] : 0.0f;
    }
    pcl::grid_dep_wait(); /* launched as a dependent: x comes from the kernel before */
    const float *xr = x + (int64_t)blockIdx.x * dim;
    const int64_t yr = (int64_t)blockIdx.x * dim;
    double sum = 0.0;
    if (REGS) {
        float v[NORM_REGS];
#pragma unroll
        for (int k = 0; k < NORM_REGS; k++) {
            const int i = threadIdx.x + k * NORM_THREADS;
            v[k] = i < dim ? xr[i] : 0.0f;
        }
#pragma unroll
        for (int k = 0; k < NORM_REGS; k++)
            if (threadIdx.x + k * NORM_THREADS < dim) sum += (double)__fmul_rn(v[k], v[k]);
        const double total = block_sum(sum, part);
        const float scale = 1.0f / sqrtf((float)(total / (double)dim) + eps);
#pragma unroll
        for (int k = 0; k < NORM_REGS; k++) {
            const int i = threadIdx.x + k * NORM_THREADS;
            if (i < dim) norm_store<BF16>(y, yr + i, __fmul_rn(__fmul_rn(v[k], scale), wv[k]));
        }
    } else {
        for (int i = threadIdx.x; i < dim; i += NORM_THREADS) sum += (double)__fmul_rn(xr[i], xr[i]);
        const double total = block_sum(sum, part);
        const float scale = 1.0f / sqrtf((float)(total / (double)dim) + eps);
        for (int i = threadIdx.x; i < dim; i += NORM_THREADS)
            norm_store<BF16>(y, yr + i, __fmul_rn(__fmul_rn(xr[i], scale), w[i]));
    }
}

__global__ void swiglu_kernel(const __nv_bfloat162 *gate, const __nv_bfloat162 *up, __nv_bfloat162 *out, int64_t n2,
                              int64_t stride2) {
    pcl::grid_dep_launch(); /* the down product may start its weight loads (launch.cuh) */
    pcl::grid_dep_wait();   /* launched as a dependent: gate and up come from the product before */
    const int64_t c = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= n2) return;
    const int64_t i = blockIdx.y * stride2 + c;
    const float2 g = __bfloat1622float2(gate[i]), u = __bfloat1622float2(up[i]);
    const float a = g.x / (1.0f + expf(-g.x)) * u.x, b = g.y / (1.0f + expf(-g.y)) * u.y;
    out[i] = __floats2bfloat162_rn(a, b);
}

/* Dims (a, b) of rotation slot i of a head: slots below rope_dim/2 rotate a
 * pair, the rest carry the unrotated tail [rope_dim, head_dim) two at a time. */
__device__ __forceinline__ void rope_pair(int i, int half, int rope_dim, int rope, int *a, int *b, bool *rot) {
    *rot = rope != 0 && i < half;
    if (*rot) {
        *a = rope == 2 ? i : 2 * i;
        *b = rope == 2 ? i + half : 2 * i + 1;
    } else {
        const int base = rope != 0 ? rope_dim : 0, j = rope != 0 ? i - half : i;
        *a = base + 2 * j;
        *b = base + 2 * j + 1;
    }
}

__global__ void qkv_kernel(pc_cu_qkv_args a) {
    /* attention, next on the stream, may start now: it reads only the step's tables
     * until it waits for this grid to finish (griddepcontrol.wait) */
    pcl::grid_dep_launch();
    const pc_cu_step *st = a.step;
    const int t = blockIdx.x, hd = a.head_dim, half = a.rope_dim / 2, slots = hd / 2;
    /* a token's slots and values are spread over gridDim.y blocks: one block a
     * token looped ~16 times over dependent loads (15 us at 32 tokens, 7B) */
    const int first = blockIdx.y * blockDim.x + threadIdx.x, step = gridDim.y * blockDim.x;
    const int Q = a.n_head * hd, KV = a.n_head_kv * hd;
    const float *cs = st->rope_cos + (int64_t)t * half, *sn = st->rope_sin + (int64_t)t * half;
    const int64_t row = st->row0 + t;
    __half *q16 = static_cast<__half *>(a.q16) + (int64_t)t * Q;
    __half *kd = static_cast<__half *>(st->dst_k) + a.layer * st->dst_layer_stride;
    __half *vd = static_cast<__half *>(st->dst_v) + a.layer * st->dst_layer_stride;
    const int n_slots = (a.n_head + a.n_head_kv) * slots;
    for (int idx = first; idx < n_slots; idx += step) {
        const bool is_q = idx < a.n_head * slots;
        const int h = (is_q ? idx : idx - a.n_head * slots) / slots, i = idx % slots;
        int da, db;
        bool rot;
        rope_pair(i, half, a.rope_dim, a.rope, &da, &db, &rot);
        const float *src = (is_q ? a.q : a.k) + (int64_t)t * a.qkv_stride;
        const float *bias = is_q ? a.bq : a.bk;
        float x0 = src[h * hd + da], x1 = src[h * hd + db];
        if (bias) {
            x0 = __fadd_rn(x0, bias[h * hd + da]);
            x1 = __fadd_rn(x1, bias[h * hd + db]);
        }
        float y0 = x0, y1 = x1;
        if (rot) {
            const float c = cs[i], s = sn[i];
            y0 = __fsub_rn(__fmul_rn(x0, c), __fmul_rn(x1, s));
            y1 = __fadd_rn(__fmul_rn(x0, s), __fmul_rn(x1, c));
        }
        if (is_q) {
            q16[h * hd + da] = __float2half_rn(y0);
            q16[h * hd + db] = __float2half_rn(y1);
        } else {
            const int64_t blk = (row / PC_CU_KV_BLOCK) * KV * PC_CU_KV_BLOCK + row % PC_CU_KV_BLOCK;
            kd[blk + (int64_t)(h * hd + da) * PC_CU_KV_BLOCK] = __float2half_rn(y0);
            kd[blk + (int64_t)(h * hd + db) * PC_CU_KV_BLOCK] = __float2half_rn(y1);
        }
    }
    for (int d = first; d < KV; d += step) {
        float v = a.v[(int64_t)t * a.qkv_stride + d];
        if (a.bv) v = __fadd_rn(v, a.bv[d]);
        vd[row * KV + d] = __float2half_rn(v);
    }
}

} // namespace

extern "C" cudaError_t pc_cu_rmsnorm(const float *x, const float *w, int32_t rows, int32_t dim, float eps, void *y,
                                     int out_bf16, cudaStream_t s) {
    if (rows <= 0 || dim <= 0) return cudaErrorInvalidValue;
    const bool regs = dim <= NORM_REGS * NORM_THREADS;
    if (out_bf16)
        return pcl::launch_dependent(regs ? rmsnorm_kernel<true, true> : rmsnorm_kernel<true, false>, dim3(rows),
                                     NORM_THREADS, 0, s, x, w, dim, eps, y);
    return pcl::launch_dependent(regs ? rmsnorm_kernel<false, true> : rmsnorm_kernel<false, false>, dim3(rows),
                                 NORM_THREADS, 0, s, x, w, dim, eps, y);
}

extern "C" cudaError_t pc_cu_swiglu(const void *gate, const void *up, void *out, int32_t rows, int64_t n,
                                    int64_t stride, cudaStream_t s) {
    if (rows <= 0 || rows > 65535 || n <= 0 || n % 2 || stride % 2 || stride < n) return cudaErrorInvalidValue;
    const int64_t n2 = n / 2;
    const dim3 grid((unsigned)((n2 + 255) / 256), (unsigned)rows);
    return pcl::launch_dependent(swiglu_kernel, grid, 256, 0, s, static_cast<const __nv_bfloat162 *>(gate),
                                 static_cast<const __nv_bfloat162 *>(up), static_cast<__nv_bfloat162 *>(out), n2, stride / 2);
}

extern "C" cudaError_t pc_cu_qkv(const pc_cu_qkv_args *a, cudaStream_t s) {
    if (a->n <= 0 || a->head_dim % 2 || a->rope_dim % 2 || a->rope_dim > a->head_dim || a->rope < 0 || a->rope > 2 ||
        a->qkv_stride < (int64_t)a->n_head_kv * a->head_dim)
        return cudaErrorInvalidValue;
    /* a plain launch: as a PDL dependent of the Q/K/V product the 7B decode step was
     * 0.1 ms slower (its dependent, attention, then starts during the product) */
    const int64_t slots = (int64_t)(a->n_head + a->n_head_kv) * (a->head_dim / 2), kv = (int64_t)a->n_head_kv * a->head_dim;
    const int64_t most = slots > kv ? slots : kv;
    const unsigned per_token = (unsigned)((most + QKV_THREADS - 1) / QKV_THREADS);
    qkv_kernel<<<dim3((unsigned)a->n, per_token < 64 ? per_token : 64), QKV_THREADS, 0, s>>>(*a);
    return cudaGetLastError();
}
