/* gemv_q8.cu - the small-batch product on int8 dot products (Q4_0, Q4_K, Q6_K).
 *
 * quant.cu's pc_cu_gemv dequantizes each weight to a float and multiplies it
 * with x in floats: about 3 instructions a weight, enough to keep the kernel
 * from the memory's rate on the 4-bit types. Here x is rounded to int8 per 32
 * elements (d = max|x| / 127, with the float sum of the 32 beside it), once per
 * product (one token of x up to ONE_MAX wide: by each block of the product, in
 * shared memory; else by a launch of its own), and a lane multiplies a whole
 * 32-element weight unit with it in 8 dp4a (4 bytes each), applying the unit's
 * scales once to the integer sum:
 *   Q4_0: d (dx sum q x8 - 8 sx)   Q4_K: d1 dx sum q x8 - m1 sx
 *   Q6_K: d dx (sc0 sum0 (q - 32) x8 + sc1 sum1 (q - 32) x8)
 * The lanes, units and order of sums are quant.cu's: lane l takes units l,
 * l + 32, ...; each float operation is rounded on its own (no contraction into
 * a fused multiply-add; the one fma in x's rounding is explicit, fmaf on the
 * CPU), so tests/backend/test_ops_cuda.c repeats the same integer and float
 * operations on the CPU and asserts equal bits. A token's outputs do not
 * depend on how many tokens share the launch. */
#include "kernels/cuda/dequant.cuh"
#include "kernels/cuda/gemv_rows.cuh"
#include "kernels/cuda/kernels.h"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/qload.cuh"

namespace {

constexpr int WARPS = 4;

/* x[0, 32) as int8 at qs (16-byte aligned) and (d, float sum of the 32) at ds:
 * d = max|x| / 127, q = x * (1 / d) rounded half to even, by one fused
 * multiply-add onto 1.5 * 2^23 (whose float's low byte is then q: no
 * conversion instruction). */
__device__ __forceinline__ void quant_unit(const __nv_bfloat16 *x, int8_t *qs, float2 *ds) {
    const uint4 *p = reinterpret_cast<const uint4 *>(x);
    uint32_t raw[16]; /* bf16 pairs, kept as loaded: half the registers of 32 floats */
#pragma unroll
    for (int i = 0; i < 4; i++) {
        const uint4 q = __ldg(p + i);
        raw[4 * i] = q.x, raw[4 * i + 1] = q.y, raw[4 * i + 2] = q.z, raw[4 * i + 3] = q.w;
    }
    /* element 2j is the low half of raw[j], 2j + 1 the high half */
    float amax = 0.f, sum = 0.f;
#pragma unroll
    for (int j = 0; j < 16; j++) {
        const float a = __uint_as_float(raw[j] << 16), b = __uint_as_float(raw[j] & 0xFFFF0000u);
        amax = fmaxf(amax, fmaxf(fabsf(a), fabsf(b)));
        sum = __fadd_rn(__fadd_rn(sum, a), b);
    }
    const float d = __fdiv_rn(amax, 127.0f), id = amax == 0.f ? 0.f : __fdiv_rn(1.0f, d);
    constexpr float MAGIC = 12582912.0f;
    uint32_t w[8];
#pragma unroll
    for (int i = 0; i < 8; i++) { /* elements 4i .. 4i + 3: raw[2i], raw[2i + 1] */
        const uint32_t b0 = __float_as_uint(__fmaf_rn(__uint_as_float(raw[2 * i] << 16), id, MAGIC));
        const uint32_t b1 = __float_as_uint(__fmaf_rn(__uint_as_float(raw[2 * i] & 0xFFFF0000u), id, MAGIC));
        const uint32_t b2 = __float_as_uint(__fmaf_rn(__uint_as_float(raw[2 * i + 1] << 16), id, MAGIC));
        const uint32_t b3 = __float_as_uint(__fmaf_rn(__uint_as_float(raw[2 * i + 1] & 0xFFFF0000u), id, MAGIC));
        w[i] = __byte_perm(__byte_perm(b0, b1, 0x0040), __byte_perm(b2, b3, 0x0040), 0x5410);
    }
    uint4 *o = reinterpret_cast<uint4 *>(qs);
    o[0] = make_uint4(w[0], w[1], w[2], w[3]);
    o[1] = make_uint4(w[4], w[5], w[6], w[7]);
    *ds = make_float2(d, sum);
}

/* A thread per 32 elements of a token's row: qs [n_tok][n_in] int8, then
 * ds [n_tok][n_in / 32]. */
__global__ void quantize_q8_kernel(const __nv_bfloat16 *x, int64_t n_in, int64_t x_stride, int8_t *qs, float2 *ds) {
    pcl::grid_dep_launch();
    const int64_t nb = n_in / 32, b = (int64_t)blockIdx.x * blockDim.x + threadIdx.x, t = blockIdx.y;
    if (b >= nb) return;
    pcl::grid_dep_wait(); /* x is the previous kernel's, and the previous product may still read qs */
    quant_unit(x + t * x_stride + b * 32, qs + t * n_in + b * 32, ds + t * nb + b);
}

/* Q6_K: the unit's 32 ql bytes and 32 qh bytes as the 9 words holding each
 * (210-byte blocks are 2-byte aligned: from byte o of the first), its two
 * scales and d. */
struct q6raw {
    uint32_t l[9], h[9];
    uint32_t sc; /* scales[2 k'], scales[2 k' + 1] in the low 16 bits */
    uint32_t d;
    unsigned sh; /* 8 o */
};

__device__ __forceinline__ void q6load(const uint8_t *row, int64_t u, q6raw &r) {
    const uint8_t *b = row + u / 8 * (int64_t)sizeof(pc_block_q6_K);
    const int s = (int)(u % 8), h = s / 4, k = s % 4;
    const uint8_t *ql = b + 64 * h + 32 * (k & 1), *qh = b + 128 + 32 * h;
    r.sh = 8u * (unsigned)((uintptr_t)ql & 3);
    const uint32_t *pl = reinterpret_cast<const uint32_t *>((uintptr_t)ql & ~(uintptr_t)3);
    const uint32_t *ph = reinterpret_cast<const uint32_t *>((uintptr_t)qh & ~(uintptr_t)3);
#pragma unroll
    for (int i = 0; i < 9; i++) r.l[i] = __ldg(pl + i), r.h[i] = __ldg(ph + i);
    r.sc = __ldg(reinterpret_cast<const unsigned short *>(b + 192 + 8 * h + 2 * k));
    r.d = __ldg(reinterpret_cast<const unsigned short *>(b + 208));
}

/* A unit's weights as the kernel uses them: 8 words of small integers (elements
 * 4i .. 4i + 3 in word i, one a byte) and the scales. */
template <int T> struct q8unit;
template <> struct q8unit<PC_TYPE_Q4_0> { int q[8]; float d; };
template <> struct q8unit<PC_TYPE_Q4_K> { int q[8]; float d1, m1; };
template <> struct q8unit<PC_TYPE_Q6_K> { int q[8]; float d; int sc0, sc1; };

template <int T> struct q8src { using type = pcq::qraw<T>; };
template <> struct q8src<PC_TYPE_Q6_K> { using type = q6raw; };

template <int T> __device__ __forceinline__ void uload(const uint8_t *row, int64_t u, typename q8src<T>::type &r) {
    if constexpr (T == PC_TYPE_Q6_K) q6load(row, u, r);
    else pcq::qload<T>(row, u, r);
}

__device__ __forceinline__ void udec(const pcq::qraw<PC_TYPE_Q4_0> &r, int64_t, q8unit<PC_TYPE_Q4_0> &w) {
    const unsigned sh = 8u * (unsigned)r.o; /* d in the block's first 2 bytes, qs in the next 16 */
    w.d = pcq::h2f((pc_f16)(__funnelshift_rc(r.w[0], r.w[1], sh) & 0xFFFF));
#pragma unroll
    for (int i = 0; i < 4; i++) { /* qs bytes 4i .. 4i + 3: elements 4i + k (low nibbles), 4i + k + 16 (high) */
        const uint32_t qw = __funnelshift_rc(r.w[i], r.w[i + 1], 16u + sh);
        w.q[i] = (int)(qw & 0x0F0F0F0Fu);
        w.q[i + 4] = (int)((qw >> 4) & 0x0F0F0F0Fu);
    }
}

__device__ __forceinline__ void udec(const pcq::qraw<PC_TYPE_Q4_K> &r, int64_t u, q8unit<PC_TYPE_Q4_K> &w) {
    const int s = (int)(u % 8);
    const float d = pcq::h2f((pc_f16)(r.h.x & 0xFFFF)), dmin = pcq::h2f((pc_f16)(r.h.x >> 16));
    const uint32_t sw[3] = {r.h.y, r.h.z, r.h.w}; /* scales[k]: byte k % 4 of word k / 4 */
    int sc, m;
    if (s < 4) {
        sc = pcq::byte_of(sw[0], s) & 63;
        m = pcq::byte_of(sw[1], s) & 63;
    } else {
        const int hi = pcq::byte_of(sw[2], s - 4);
        sc = (hi & 0xF) | ((pcq::byte_of(sw[0], s - 4) >> 6) << 4);
        m = (hi >> 4) | ((pcq::byte_of(sw[1], s - 4) >> 6) << 4);
    }
    w.d1 = pcq::fmul(d, (float)sc), w.m1 = pcq::fmul(dmin, (float)m);
    const int shift = 4 * (s % 2);
    const uint32_t q[8] = {r.q0.x, r.q0.y, r.q0.z, r.q0.w, r.q1.x, r.q1.y, r.q1.z, r.q1.w};
#pragma unroll
    for (int i = 0; i < 8; i++) w.q[i] = (int)((q[i] >> shift) & 0x0F0F0F0Fu);
}

__device__ __forceinline__ void udec(const q6raw &r, int64_t u, q8unit<PC_TYPE_Q6_K> &w) {
    const int k = (int)(u % 4); /* low nibbles for k < 2, high for k >= 2; qh bits 2k, 2k + 1 */
    w.d = pcq::h2f((pc_f16)r.d);
    w.sc0 = (int)(int8_t)(r.sc & 0xFF), w.sc1 = (int)(int8_t)(r.sc >> 8);
#pragma unroll
    for (int i = 0; i < 8; i++) {
        const uint32_t l = __funnelshift_rc(r.l[i], r.l[i + 1], r.sh), h = __funnelshift_rc(r.h[i], r.h[i + 1], r.sh);
        w.q[i] = (int)(((l >> (4 * (k >> 1))) & 0x0F0F0F0Fu) | (((h >> (2 * k)) & 0x03030303u) << 4)); /* q + 32, 0..63 */
    }
}

/* The unit's term of a token's sum, from its int8 x (xw) and (dx, sx). */
__device__ __forceinline__ float uterm(const q8unit<PC_TYPE_Q4_0> &w, const int xw[8], float2 ds) {
    int s = 0;
#pragma unroll
    for (int i = 0; i < 8; i++) s = __dp4a(w.q[i], xw[i], s);
    return __fmul_rn(w.d, __fsub_rn(__fmul_rn(ds.x, (float)s), __fmul_rn(8.0f, ds.y)));
}
__device__ __forceinline__ float uterm(const q8unit<PC_TYPE_Q4_K> &w, const int xw[8], float2 ds) {
    int s = 0;
#pragma unroll
    for (int i = 0; i < 8; i++) s = __dp4a(w.q[i], xw[i], s);
    return __fsub_rn(__fmul_rn(__fmul_rn(w.d1, ds.x), (float)s), __fmul_rn(w.m1, ds.y));
}
__device__ __forceinline__ float uterm(const q8unit<PC_TYPE_Q6_K> &w, const int xw[8], float2 ds) {
    int s0 = 0, s1 = 0, x0 = 0, x1 = 0; /* elements 0..15 (scale 0) and 16..31 (scale 1); x sums for the -32 */
#pragma unroll
    for (int i = 0; i < 4; i++) {
        s0 = __dp4a(w.q[i], xw[i], s0), x0 = __dp4a(0x01010101, xw[i], x0);
        s1 = __dp4a(w.q[i + 4], xw[i + 4], s1), x1 = __dp4a(0x01010101, xw[i + 4], x1);
    }
    const int tot = w.sc0 * (s0 - 32 * x0) + w.sc1 * (s1 - 32 * x1);
    return __fmul_rn(__fmul_rn(w.d, ds.x), (float)tot);
}

/* Where a unit's int8 x and (d, sum) come from: quantize_q8_kernel's in global
 * memory (elements 4i .. 4i + 3 of token t's unit u in word i) ... */
struct xq_global {
    const int8_t *qs;
    const float2 *ds;
    int64_t n_in, units;
    __device__ __forceinline__ float2 get(int t, int64_t u, int xw[8]) const {
        const int4 *p = reinterpret_cast<const int4 *>(qs + t * n_in + u * 32);
        const int4 a = __ldg(p), b = __ldg(p + 1);
        xw[0] = a.x, xw[1] = a.y, xw[2] = a.z, xw[3] = a.w, xw[4] = b.x, xw[5] = b.y, xw[6] = b.z, xw[7] = b.w;
        return __ldg(ds + t * units + u);
    }
};
/* ... or one token's, quantized into the block's shared memory. */
struct xq_shared {
    const int8_t *qs;
    const float2 *ds;
    __device__ __forceinline__ float2 get(int, int64_t u, int xw[8]) const {
        const int4 *p = reinterpret_cast<const int4 *>(qs + u * 32);
        const int4 a = p[0], b = p[1];
        xw[0] = a.x, xw[1] = a.y, xw[2] = a.z, xw[3] = a.w, xw[4] = b.x, xw[5] = b.y, xw[6] = b.z, xw[7] = b.w;
        return ds[u];
    }
};

/* The int8 products' units (gemv_rows.cuh's policy): a unit's weights decoded
 * once, its term added for each token. */
template <int T, int NT, class X> struct q8units {
    using raw = typename q8src<T>::type;
    X x;
    int n_tok;
    __device__ __forceinline__ void load(const uint8_t *row, int64_t u, raw &r) const { uload<T>(row, u, r); }
    __device__ __forceinline__ void use(const raw &r, int64_t u, float (&acc)[NT]) const {
        q8unit<T> wu;
        udec(r, u, wu);
#pragma unroll
        for (int t = 0; t < NT; t++) {
            if (t >= n_tok) break;
            int xw[8];
            const float2 d = x.get(t, u, xw);
            acc[t] = __fadd_rn(acc[t], uterm(wu, xw, d));
        }
    }
};

/* gemv_rows.cuh's warp per output row, U units a lane in flight; a PDL
 * dependent (the first units' weights load before it waits for the quantized
 * x). */
template <int T, int NT>
__global__ void __launch_bounds__(WARPS * 32) gemv_q8_kernel(const uint8_t *w, int64_t n_in, int64_t n_out,
                                                             const int8_t *qs, const float2 *ds, int n_tok, void *y,
                                                             int64_t y_stride, int out) {
    constexpr int U = NT <= 2 ? 4 : NT <= 4 ? 2 : 1;
    const q8units<T, NT, xq_global> p{{qs, ds, n_in, n_in / 32}, n_tok};
    pcq::gemv_rows<T, WARPS, U, NT>(p, w, n_in, n_out, n_tok, y, y_stride, out);
}

/* One token (decode) of a narrow x: each block quantizes x into shared memory
 * itself, as quantize_q8_kernel would (the same values), instead of a launch
 * of its own per product, then its warps take a row each with gemv_q8_kernel's
 * units and sums. Every block repeats the quantization, so only where x is
 * short (ONE_MAX). */
template <int T>
__global__ void __launch_bounds__(WARPS * 32) gemv_q8_one_kernel(const uint8_t *w, int64_t n_in, int64_t n_out,
                                                                 const __nv_bfloat16 *x, void *y, int out) {
    constexpr int U = 4;
    extern __shared__ int4 smem[]; /* qs [n_in], then ds [n_in / 32] */
    int8_t *qs = reinterpret_cast<int8_t *>(smem);
    float2 *ds = reinterpret_cast<float2 *>(qs + n_in);
    const q8units<T, 1, xq_shared> p{{qs, ds}, 1};
    pcl::grid_dep_launch();
    const int lane = threadIdx.x % 32;
    const int64_t o = (int64_t)blockIdx.x * WARPS + threadIdx.x / 32, units = n_in / 32;
    const bool live = o < n_out;
    const uint8_t *row = w + (live ? o : 0) * pcq::row_bytes<T>(n_in);
    typename q8src<T>::type r[U];
    if (live) pcq::load_units<U>(p, row, lane, units, r); /* the first units' weights on their way before x is ready */
    pcl::grid_dep_wait();
    for (int64_t b = threadIdx.x; b < units; b += WARPS * 32) quant_unit(x + b * 32, qs + b * 32, ds + b);
    __syncthreads();
    if (!live) return;
    float acc[1] = {0.f};
    for (int64_t u = lane; u < units; u += 32 * U) {
        if (u != lane) pcq::load_units<U>(p, row, u, units, r);
        pcq::use_units<U>(p, u, units, r, acc);
    }
    pcq::gemv_store<1>(acc, lane, o, 1, y, 0, out);
}

unsigned blocks_for(int64_t n, int per) { return (unsigned)((n + per - 1) / per); }

template <int T, int NT>
cudaError_t gemv_q8_nt(const void *w, int64_t n_in, int64_t n_out, const void *xq, int32_t n_tok, void *y, int64_t ys,
                        pc_cu_out out, cudaStream_t s) {
    const int8_t *qs = static_cast<const int8_t *>(xq);
    const float2 *ds = reinterpret_cast<const float2 *>(qs + (int64_t)n_tok * n_in);
    return pcl::launch_dependent(gemv_q8_kernel<T, NT>, dim3(blocks_for(n_out, WARPS)), WARPS * 32, 0, s,
                                 static_cast<const uint8_t *>(w), n_in, n_out, qs, ds, (int)n_tok, y, ys, (int)out);
}

/* Shared memory of gemv_q8_one_kernel: x's int8 blocks and their (d, sum). */
int64_t smem_bytes(int64_t n_in) { return n_in + n_in / 32 * (int64_t)sizeof(float2); }

/* Widest x quantized inside the product's blocks. Decode at 8224 on the H200,
 * in-block against a launch of its own for every product: 1.5B Q4_K (x 1536
 * and 8960 wide) 2.56 against 2.63 ms, 7B Q4_0 (4096, 11008) 4.20 against 3.91;
 * up to 4096 wide: 7B 4.01 against 3.68 (bench/results/gpu.md). */
constexpr int64_t ONE_MAX = 2048;

template <int T>
cudaError_t gemv_q8_launch(const void *w, int64_t n_in, int64_t n_out, const void *x, int64_t xs, int32_t n_tok,
                           void *xq, void *y, int64_t ys, pc_cu_out out, cudaStream_t s) {
    if (n_tok == 1 && n_in <= ONE_MAX)
        return pcl::launch_dependent(gemv_q8_one_kernel<T>, dim3(blocks_for(n_out, WARPS)), WARPS * 32,
                                     (size_t)smem_bytes(n_in), s, static_cast<const uint8_t *>(w), n_in, n_out,
                                     static_cast<const __nv_bfloat16 *>(x), y, (int)out);
    if (!xq) return cudaErrorInvalidValue;
    const cudaError_t e = pc_cu_quantize_q8(x, n_in, xs, n_tok, xq, s);
    if (e != cudaSuccess) return e;
    if (n_tok == 1) return gemv_q8_nt<T, 1>(w, n_in, n_out, xq, n_tok, y, ys, out, s);
    if (n_tok == 2) return gemv_q8_nt<T, 2>(w, n_in, n_out, xq, n_tok, y, ys, out, s);
    if (n_tok <= 4) return gemv_q8_nt<T, 4>(w, n_in, n_out, xq, n_tok, y, ys, out, s);
    return gemv_q8_nt<T, 8>(w, n_in, n_out, xq, n_tok, y, ys, out, s);
}

} // namespace

extern "C" size_t pc_cu_q8_bytes(int64_t n_in, int32_t n_tok) {
    return (size_t)n_tok * (size_t)n_in + (size_t)n_tok * (size_t)(n_in / 32) * sizeof(float2);
}

extern "C" cudaError_t pc_cu_quantize_q8(const void *x, int64_t n_in, int64_t x_stride, int32_t n_tok, void *xq,
                                         cudaStream_t s) {
    if (n_in <= 0 || n_in % 32 || n_tok <= 0 || n_tok > 65535 || x_stride < n_in || x_stride % 8 ||
        (uintptr_t)xq % 16)
        return cudaErrorInvalidValue;
    int8_t *qs = static_cast<int8_t *>(xq);
    float2 *ds = reinterpret_cast<float2 *>(qs + (int64_t)n_tok * n_in);
    return pcl::launch_dependent(quantize_q8_kernel, dim3(blocks_for(n_in / 32, 128), (unsigned)n_tok), 128, 0, s,
                                 static_cast<const __nv_bfloat16 *>(x), n_in, x_stride, qs, ds);
}

/* Q6_K's words are read from the 4-byte boundary below each 2-byte aligned
 * segment: the matrix must start on one. */
extern "C" int pc_cu_gemv_q8_takes(pc_type t, const void *w, int64_t n_in) {
    if (n_in <= 0 || n_in % 32) return 0;
    switch (t) {
    case PC_TYPE_Q4_0: return pcq::qfast_ok<PC_TYPE_Q4_0>(w, n_in);
    case PC_TYPE_Q4_K: return n_in % 256 == 0 && pcq::qfast_ok<PC_TYPE_Q4_K>(w, n_in);
    case PC_TYPE_Q6_K: return n_in % 256 == 0 && ((uintptr_t)w & 3) == 0;
    default: return 0;
    }
}

extern "C" cudaError_t pc_cu_gemv_q8(pc_type t, const void *w, int64_t n_in, int64_t n_out, const void *x,
                                     int64_t x_stride, int32_t n_tok, void *xq, void *y, int64_t y_stride, pc_cu_out out,
                                     cudaStream_t s) {
    if (!pc_cu_gemv_q8_takes(t, w, n_in) || n_out <= 0 || n_tok <= 0 || n_tok > PC_CU_GEMV_MAX || (int)out < 0 ||
        out > PC_CU_OUT_BF16 || y_stride < n_out || x_stride < n_in || x_stride % 8 || (uintptr_t)xq % 16)
        return cudaErrorInvalidValue;
    switch (t) {
    case PC_TYPE_Q4_0: return gemv_q8_launch<PC_TYPE_Q4_0>(w, n_in, n_out, x, x_stride, n_tok, xq, y, y_stride, out, s);
    case PC_TYPE_Q4_K: return gemv_q8_launch<PC_TYPE_Q4_K>(w, n_in, n_out, x, x_stride, n_tok, xq, y, y_stride, out, s);
    case PC_TYPE_Q6_K: return gemv_q8_launch<PC_TYPE_Q6_K>(w, n_in, n_out, x, x_stride, n_tok, xq, y, y_stride, out, s);
    default: return cudaErrorInvalidValue;
    }
}
