/* quant.cu - weights on the GPU: dequantization (rows, embedding lookup) and
 * the small-batch matrix product that reads each weight block once.
 *
 * pc_cu_gemv: one warp per output row; each lane dequantizes 32-element units
 * of the row (dequant.cuh) and multiplies them with up to NT token rows of x,
 * so a decode step or a short fresh suffix reads the weights exactly once, in
 * their stored type, with no bf16 copy. The warp then sums its lanes. bf16
 * rows (the decode step of f16/bf16 models) have their own streaming kernel;
 * Q4_0, Q4_1 and Q4_K rows one that loads each unit's bytes whole (the
 * generic one reads them a byte at a time), with the same values and sums. */
#include "kernels/cuda/dequant.cuh"
#include "kernels/cuda/gemv_rows.cuh"
#include "kernels/cuda/kernels.h"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/qload.cuh"

namespace {

using pcq::byte_of;
using pcq::gemv_store;
using pcq::load_x32;
using pcq::qfast_ok;
using pcq::qload;
using pcq::qraw;

constexpr int WARPS = 4;

/* A thread per 8 outputs (one 16-byte bf16 store, coalesced across the warp);
 * the four threads of a unit each decode it (the block bytes come from L1). */
template <int T, bool BF16>
__global__ void dequant_rows_kernel(const uint8_t *w, int64_t n_in, int64_t rows, void *y) {
    const int64_t units = n_in / 32, idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= units * rows * 4) return;
    const int64_t r = idx / (units * 4), u = idx / 4 % units;
    const int part = (int)(idx % 4);
    float v[32];
    pcq::deq32<T>(w + r * pcq::row_bytes<T>(n_in), u, v);
    if (BF16) {
        __nv_bfloat162 h[4];
#pragma unroll
        for (int j = 0; j < 4; j++) h[j] = __floats2bfloat162_rn(v[8 * part + 2 * j], v[8 * part + 2 * j + 1]);
        *reinterpret_cast<uint4 *>(static_cast<__nv_bfloat16 *>(y) + r * n_in + u * 32 + part * 8) =
            *reinterpret_cast<const uint4 *>(h);
    } else {
        float4 *o = reinterpret_cast<float4 *>(static_cast<float *>(y) + r * n_in + u * 32 + part * 8);
        o[0] = make_float4(v[8 * part], v[8 * part + 1], v[8 * part + 2], v[8 * part + 3]);
        o[1] = make_float4(v[8 * part + 4], v[8 * part + 5], v[8 * part + 6], v[8 * part + 7]);
    }
}

template <int T>
__global__ void embed_kernel(const uint8_t *table, int64_t n_embd, const pc_cu_step *step, float *x) {
    const int t = blockIdx.y;
    const int64_t u = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (u >= n_embd / 32) return;
    const int64_t tok = step->tokens[t];
    float v[32];
    pcq::deq32<T>(table + tok * pcq::row_bytes<T>(n_embd), u, v);
    float4 *o = reinterpret_cast<float4 *>(x + (int64_t)t * n_embd + u * 32);
#pragma unroll
    for (int j = 0; j < 8; j++) o[j] = make_float4(v[4 * j], v[4 * j + 1], v[4 * j + 2], v[4 * j + 3]);
}

/* acc[t] += w[0, 32) . x[t][0, 32) */
template <int NT>
__device__ __forceinline__ void dot32(float acc[NT], const float wv[32], const __nv_bfloat16 *x, int64_t x_stride, int n_tok) {
    float xv[32];
#pragma unroll
    for (int t = 0; t < NT; t++) {
        if (t < n_tok) {
            load_x32(x + (int64_t)t * x_stride, xv);
#pragma unroll
            for (int j = 0; j < 32; j++) acc[t] = fmaf(wv[j], xv[j], acc[t]);
        }
    }
}

/* Quantized rows: U units a lane in flight at once (independent loads before any use). */
template <int T, int NT>
__global__ void __launch_bounds__(WARPS * 32) gemv_kernel(const uint8_t *w, int64_t n_in, int64_t n_out,
                                                          const __nv_bfloat16 *x, int64_t x_stride, int n_tok, void *y,
                                                          int64_t y_stride, int out) {
    constexpr int U = NT <= 2 ? 2 : 1;
    const int lane = threadIdx.x % 32;
    const int64_t o = (int64_t)blockIdx.x * WARPS + threadIdx.x / 32;
    if (o >= n_out) return;
    const uint8_t *row = w + o * pcq::row_bytes<T>(n_in);
    const int64_t units = n_in / 32;
    float acc[NT];
#pragma unroll
    for (int t = 0; t < NT; t++) acc[t] = 0.f;
    int64_t u = lane;
    for (; u + 32 * (U - 1) < units; u += 32 * U) {
        float wv[U][32];
#pragma unroll
        for (int k = 0; k < U; k++) pcq::deq32<T>(row, u + 32 * k, wv[k]);
#pragma unroll
        for (int k = 0; k < U; k++) dot32<NT>(acc, wv[k], x + (u + 32 * k) * 32, x_stride, n_tok);
    }
    for (; u < units; u += 32) {
        float wv[32];
        pcq::deq32<T>(row, u, wv);
        dot32<NT>(acc, wv, x + u * 32, x_stride, n_tok);
    }
    gemv_store<NT>(acc, lane, o, n_tok, y, y_stride, out);
}

/* Q4_0, Q4_1 and Q4_K units read whole: deq32 reads a block byte by byte (one
 * load instruction per byte, 16-32 a unit, each touching as many sectors as the
 * warp's lanes span). Here a lane takes its unit's bytes in 3 (Q4_K: 16-byte)
 * or 5 (Q4_0, Q4_1: 4-byte) loads and decodes them from registers to deq32's
 * values with deq32's float operations (Q4_0's and Q4_K's nibbles made floats
 * without a conversion, q2f), so the values, and the sums, are bitwise the
 * generic kernel's. Decode at an 8k context: 7B Q4_0 5.52 -> 4.69 ms, 1.5B Q4_K
 * 3.63 -> 2.88, SmolLM2 Q4_1 1.36 -> 1.25 (bench/results/gpu.md). The loads
 * are qload.cuh's, shared with gemv_q8.cu. */

/* A nibble as a float without an int-to-float conversion (a quarter-rate
 * instruction, 32 a unit): byte k of w, a value q below 16, under the byte 0x4B
 * is the float 2^23 + q, and 2^23 + q less bias is exact, so q2f(w, k, 2^23) is
 * (float)q and q2f(w, k, 2^23 + 8) is (float)(q - 8), the values deq32 converts.
 * Measured side by side: Q4_K's decode 4% faster, Q4_0's 1%. */
constexpr float TWO23 = 8388608.0f;
__device__ __forceinline__ float q2f(uint32_t w, int k, float bias) {
    return __fsub_rn(__uint_as_float(__byte_perm(w, 0x4B000000u, 0x7440u + (unsigned)k)), bias);
}

template <int T> __device__ __forceinline__ void qdeq(const qraw<T> &r, int64_t u, float v[32]);
template <> __device__ __forceinline__ void qdeq<PC_TYPE_Q4_K>(const qraw<PC_TYPE_Q4_K> &r, int64_t u, float v[32]) {
    const int s = (int)(u % 8);
    const float d = pcq::h2f((pc_f16)(r.h.x & 0xFFFF)), dmin = pcq::h2f((pc_f16)(r.h.x >> 16));
    /* scales[k] is byte k % 4 of word k / 4 of (h.y, h.z, h.w); k4_scale_min's selection */
    const uint32_t sw[3] = {r.h.y, r.h.z, r.h.w};
    int sc, m;
    if (s < 4) {
        sc = byte_of(sw[0], s) & 63;
        m = byte_of(sw[1], s) & 63;
    } else {
        const int hi = byte_of(sw[2], s - 4);
        sc = (hi & 0xF) | ((byte_of(sw[0], s - 4) >> 6) << 4);
        m = (hi >> 4) | ((byte_of(sw[1], s - 4) >> 6) << 4);
    }
    const float d1 = pcq::fmul(d, (float)sc), m1 = pcq::fmul(dmin, (float)m);
    const int shift = 4 * (s % 2);
    const uint32_t q[8] = {r.q0.x, r.q0.y, r.q0.z, r.q0.w, r.q1.x, r.q1.y, r.q1.z, r.q1.w};
#pragma unroll
    for (int i = 0; i < 8; i++) {
        const uint32_t nib = (q[i] >> shift) & 0x0F0F0F0Fu; /* elements 4i .. 4i + 3, a byte each */
#pragma unroll
        for (int k = 0; k < 4; k++) v[4 * i + k] = __fsub_rn(pcq::fmul(d1, q2f(nib, k, TWO23)), m1);
    }
}
template <> __device__ __forceinline__ void qdeq<PC_TYPE_Q4_1>(const qraw<PC_TYPE_Q4_1> &r, int64_t, float v[32]) {
    /* converted as deq32 does: with q2f the SmolLM2-shaped decode was 3-4% slower (bench/results/gpu.md) */
    const float d = pcq::h2f((pc_f16)(r.w[0] & 0xFFFF)), m = pcq::h2f((pc_f16)(r.w[0] >> 16));
#pragma unroll
    for (int j = 0; j < 16; j++) {
        const int q = byte_of(r.w[1 + j / 4], j % 4);
        v[j] = __fadd_rn(pcq::fmul((float)(q & 0xF), d), m);
        v[j + 16] = __fadd_rn(pcq::fmul((float)(q >> 4), d), m);
    }
}
template <> __device__ __forceinline__ void qdeq<PC_TYPE_Q4_0>(const qraw<PC_TYPE_Q4_0> &r, int64_t, float v[32]) {
    /* the block starts at byte o of w[0]: d in its first 2 bytes, qs in the next 16 */
    const unsigned sh = 8u * (unsigned)r.o;
    const float d = pcq::h2f((pc_f16)(__funnelshift_rc(r.w[0], r.w[1], sh) & 0xFFFF));
#pragma unroll
    for (int i = 0; i < 4; i++) { /* qs bytes 4i .. 4i + 3: elements 4i + k (low nibbles), 4i + k + 16 (high) */
        const uint32_t qw = __funnelshift_rc(r.w[i], r.w[i + 1], 16u + sh);
        const uint32_t lo = qw & 0x0F0F0F0Fu, hi = (qw >> 4) & 0x0F0F0F0Fu;
#pragma unroll
        for (int k = 0; k < 4; k++) {
            v[4 * i + k] = pcq::fmul(q2f(lo, k, TWO23 + 8.0f), d);
            v[4 * i + k + 16] = pcq::fmul(q2f(hi, k, TWO23 + 8.0f), d);
        }
    }
}

/* The fast path's units (gemv_rows.cuh's policy): whole loads, deq32's values,
 * each multiplied with the tokens' x as gemv_kernel does. */
template <int T, int NT> struct qunits {
    using raw = qraw<T>;
    const __nv_bfloat16 *x;
    int64_t x_stride;
    int n_tok;
    __device__ __forceinline__ void load(const uint8_t *row, int64_t u, raw &r) const { qload<T>(row, u, r); }
    __device__ __forceinline__ void use(const raw &r, int64_t u, float (&acc)[NT]) const {
        float wv[32];
        qdeq<T>(r, u, wv);
        dot32<NT>(acc, wv, x + u * 32, x_stride, n_tok);
    }
};

/* gemv_kernel's lanes, units and order of sums, with U units' bytes requested
 * before any is used; launched as a PDL dependent. */
template <int T, int NT>
__global__ void __launch_bounds__(WARPS * 32) gemv_q_kernel(const uint8_t *w, int64_t n_in, int64_t n_out,
                                                            const __nv_bfloat16 *x, int64_t x_stride, int n_tok, void *y,
                                                            int64_t y_stride, int out) {
    constexpr int U = NT <= 2 ? 4 : NT <= 4 ? 2 : 1;
    pcq::gemv_rows<T, WARPS, U, NT>(qunits<T, NT>{x, x_stride, n_tok}, w, n_in, n_out, n_tok, y, y_stride, out);
}

/* A 16-byte chunk of weights, streamed past L1 (each is read once; x stays there). */
__device__ __forceinline__ uint4 ld_stream(const uint4 *p) {
    uint4 r;
    asm("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
        : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w)
        : "l"(p));
    return r;
}

/* acc + w . x over 8 bf16 pairs (bf16 to f32 is exact: a shift) */
__device__ __forceinline__ float dot8(uint4 w, uint4 x, float acc) {
    const uint32_t a[4] = {w.x, w.y, w.z, w.w}, b[4] = {x.x, x.y, x.z, x.w};
#pragma unroll
    for (int j = 0; j < 4; j++) {
        acc = fmaf(__uint_as_float(a[j] << 16), __uint_as_float(b[j] << 16), acc);
        acc = fmaf(__uint_as_float(a[j] & 0xFFFF0000u), __uint_as_float(b[j] & 0xFFFF0000u), acc);
    }
    return acc;
}

/* chunks c0, c0 + 32, ... (B of them) of a row of nc; zeros past its end */
template <int B>
__device__ __forceinline__ void load_chunks(const uint4 *row, int c0, int nc, uint4 v[B]) {
#pragma unroll
    for (int k = 0; k < B; k++) v[k] = c0 + 32 * k < nc ? ld_stream(row + c0 + 32 * k) : make_uint4(0, 0, 0, 0);
}

/* bf16 rows: a warp per output row, lane l reading 16-byte chunks l, l + 32, ...
 * so that each load of the warp covers 512 contiguous bytes; BF16_B chunks a
 * lane are requested before the previous BF16_B are used. Launched as a PDL
 * dependent (launch.cuh): the first weights, which no kernel writes, are on
 * their way before it waits for the kernel that wrote x. bench/gemv_sandbox.cu
 * times this against 2, 4, 8 and 16 chunks in flight and 8- and 16-warp blocks
 * (all slower: fewer registers, more warps resident, win). The order of the
 * sums does not depend on n_tok. */
constexpr int BF16_B = 1;
template <int NT>
__global__ void __launch_bounds__(WARPS * 32) gemv_bf16_kernel(const uint4 *w, int nc, int64_t n_out, const uint4 *x,
                                                               int64_t x_stride, int n_tok, void *y, int64_t y_stride,
                                                               int out) {
    pcl::grid_dep_launch();
    const int lane = threadIdx.x % 32;
    const int64_t o = (int64_t)blockIdx.x * WARPS + threadIdx.x / 32;
    if (o >= n_out) return;
    const uint4 *row = w + o * nc;
    uint4 cur[BF16_B];
    load_chunks<BF16_B>(row, lane, nc, cur);
    pcl::grid_dep_wait();
    float acc[NT];
#pragma unroll
    for (int t = 0; t < NT; t++) acc[t] = 0.f;
    for (int c0 = lane; c0 < nc; c0 += 32 * BF16_B) {
        uint4 nxt[BF16_B];
        load_chunks<BF16_B>(row, c0 + 32 * BF16_B, nc, nxt);
#pragma unroll
        for (int k = 0; k < BF16_B; k++) {
            if (c0 + 32 * k >= nc) break;
#pragma unroll
            for (int t = 0; t < NT; t++)
                if (t < n_tok) acc[t] = dot8(cur[k], __ldg(x + t * x_stride + c0 + 32 * k), acc[t]);
        }
#pragma unroll
        for (int k = 0; k < BF16_B; k++) cur[k] = nxt[k];
    }
    gemv_store<NT>(acc, lane, o, n_tok, y, y_stride, out);
}

unsigned blocks_for(int64_t n, int per) { return (unsigned)((n + per - 1) / per); }

} // namespace

extern "C" int pc_cu_type_supported(pc_type t) {
    switch (t) {
    case PC_TYPE_BF16: case PC_TYPE_Q4_0: case PC_TYPE_Q4_1: case PC_TYPE_Q5_0: case PC_TYPE_Q5_1:
    case PC_TYPE_Q8_0: case PC_TYPE_Q2_K: case PC_TYPE_Q3_K: case PC_TYPE_Q4_K: case PC_TYPE_Q5_K:
    case PC_TYPE_Q6_K: return 1;
    default: return 0;
    }
}

extern "C" cudaError_t pc_cu_dequant_rows(pc_type t, const void *w, int64_t n_in, int64_t rows, void *y, int out_bf16,
                                          cudaStream_t s) {
    if (n_in <= 0 || n_in % 32 || rows <= 0) return cudaErrorInvalidValue;
    const unsigned grid = blocks_for(n_in / 32 * rows * 4, 128);
    const uint8_t *src = static_cast<const uint8_t *>(w);
#define PC_DEQ(T)                                                                                                      \
    do {                                                                                                               \
        if (n_in % pcq::tinfo<T>::QK) return cudaErrorInvalidValue;                                                   \
        if (out_bf16)                                                                                                  \
            dequant_rows_kernel<T, true><<<grid, 128, 0, s>>>(src, n_in, rows, y);                                     \
        else                                                                                                           \
            dequant_rows_kernel<T, false><<<grid, 128, 0, s>>>(src, n_in, rows, y);                                    \
    } while (0)
    PCQ_DISPATCH(t, PC_DEQ)
#undef PC_DEQ
    return cudaGetLastError();
}

extern "C" cudaError_t pc_cu_embed(pc_type t, const void *table, int64_t n_embd, const pc_cu_step *step, int32_t n,
                                   float *x, cudaStream_t s) {
    if (n_embd <= 0 || n_embd % 32 || n <= 0 || n > 65535) return cudaErrorInvalidValue;
    const dim3 grid(blocks_for(n_embd / 32, 128), (unsigned)n);
    const uint8_t *src = static_cast<const uint8_t *>(table);
#define PC_EMB(T)                                                                                                      \
    do {                                                                                                               \
        if (n_embd % pcq::tinfo<T>::QK) return cudaErrorInvalidValue;                                                 \
        embed_kernel<T><<<grid, 128, 0, s>>>(src, n_embd, step, x);                                                    \
    } while (0)
    PCQ_DISPATCH(t, PC_EMB)
#undef PC_EMB
    return cudaGetLastError();
}

template <int T, int NT>
static cudaError_t gemv_one(unsigned grid, const void *w, int64_t n_in, int64_t n_out, const __nv_bfloat16 *x, int64_t xs,
                            int32_t n_tok, void *y, int64_t ys, pc_cu_out out, cudaStream_t s) {
    if (T == PC_TYPE_BF16)
        return pcl::launch_dependent(gemv_bf16_kernel<NT>, dim3(grid), WARPS * 32, 0, s, static_cast<const uint4 *>(w),
                                     (int)(n_in / 8), n_out, reinterpret_cast<const uint4 *>(x), xs / 8, (int)n_tok, y,
                                     ys, (int)out);
    if constexpr (T == PC_TYPE_Q4_0 || T == PC_TYPE_Q4_1 || T == PC_TYPE_Q4_K) {
        if (qfast_ok<T>(w, n_in))
            return pcl::launch_dependent(gemv_q_kernel<T, NT>, dim3(grid), WARPS * 32, 0, s,
                                         static_cast<const uint8_t *>(w), n_in, n_out, x, xs, (int)n_tok, y, ys, (int)out);
    }
    gemv_kernel<T, NT><<<grid, WARPS * 32, 0, s>>>(static_cast<const uint8_t *>(w), n_in, n_out, x, xs, n_tok, y, ys, out);
    return cudaGetLastError();
}

template <int T>
static cudaError_t gemv_launch(const void *w, int64_t n_in, int64_t n_out, const void *x, int64_t xs, int32_t n_tok,
                               void *y, int64_t ys, pc_cu_out out, cudaStream_t s) {
    if (n_in % pcq::tinfo<T>::QK) return cudaErrorInvalidValue;
    const unsigned grid = blocks_for(n_out, WARPS);
    const __nv_bfloat16 *xb = static_cast<const __nv_bfloat16 *>(x);
    if (n_tok == 1) return gemv_one<T, 1>(grid, w, n_in, n_out, xb, xs, n_tok, y, ys, out, s);
    if (n_tok == 2) return gemv_one<T, 2>(grid, w, n_in, n_out, xb, xs, n_tok, y, ys, out, s);
    if (n_tok <= 4) return gemv_one<T, 4>(grid, w, n_in, n_out, xb, xs, n_tok, y, ys, out, s);
    return gemv_one<T, 8>(grid, w, n_in, n_out, xb, xs, n_tok, y, ys, out, s);
}

extern "C" cudaError_t pc_cu_gemv(pc_type t, const void *w, int64_t n_in, int64_t n_out, const void *x, int64_t x_stride,
                                  int32_t n_tok, void *y, int64_t y_stride, pc_cu_out out, cudaStream_t s) {
    if (n_in <= 0 || n_in % 32 || n_out <= 0 || n_tok <= 0 || n_tok > PC_CU_GEMV_MAX || (int)out < 0 ||
        out > PC_CU_OUT_BF16 || x_stride < n_in || x_stride % 8 || y_stride < n_out)
        return cudaErrorInvalidValue;
    switch (t) { /* f16 and f32 matrices are converted to bf16 at load */
    case PC_TYPE_BF16: return gemv_launch<PC_TYPE_BF16>(w, n_in, n_out, x, x_stride, n_tok, y, y_stride, out, s);
    case PC_TYPE_Q4_0: return gemv_launch<PC_TYPE_Q4_0>(w, n_in, n_out, x, x_stride, n_tok, y, y_stride, out, s);
    case PC_TYPE_Q4_1: return gemv_launch<PC_TYPE_Q4_1>(w, n_in, n_out, x, x_stride, n_tok, y, y_stride, out, s);
    case PC_TYPE_Q5_0: return gemv_launch<PC_TYPE_Q5_0>(w, n_in, n_out, x, x_stride, n_tok, y, y_stride, out, s);
    case PC_TYPE_Q5_1: return gemv_launch<PC_TYPE_Q5_1>(w, n_in, n_out, x, x_stride, n_tok, y, y_stride, out, s);
    case PC_TYPE_Q8_0: return gemv_launch<PC_TYPE_Q8_0>(w, n_in, n_out, x, x_stride, n_tok, y, y_stride, out, s);
    case PC_TYPE_Q2_K: return gemv_launch<PC_TYPE_Q2_K>(w, n_in, n_out, x, x_stride, n_tok, y, y_stride, out, s);
    case PC_TYPE_Q3_K: return gemv_launch<PC_TYPE_Q3_K>(w, n_in, n_out, x, x_stride, n_tok, y, y_stride, out, s);
    case PC_TYPE_Q4_K: return gemv_launch<PC_TYPE_Q4_K>(w, n_in, n_out, x, x_stride, n_tok, y, y_stride, out, s);
    case PC_TYPE_Q5_K: return gemv_launch<PC_TYPE_Q5_K>(w, n_in, n_out, x, x_stride, n_tok, y, y_stride, out, s);
    case PC_TYPE_Q6_K: return gemv_launch<PC_TYPE_Q6_K>(w, n_in, n_out, x, x_stride, n_tok, y, y_stride, out, s);
    default: return cudaErrorInvalidValue;
    }
}
