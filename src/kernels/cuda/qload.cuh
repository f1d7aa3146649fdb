/* qload.cuh - what the two small-batch products (quant.cu's on floats,
 * gemv_q8.cu's on int8 dot products) share: x's bf16 units as floats, whole
 * Q4_0/Q4_1/Q4_K units in a few wide loads, and the warp's sum and store of
 * a row's outputs. */
#ifndef PC_KERNELS_CUDA_QLOAD_CUH
#define PC_KERNELS_CUDA_QLOAD_CUH

#include <cuda_bf16.h>
#include <stdint.h>

#include "kernels/cuda/kernels.h"
#include "tensor/types.h"

namespace pcq {

/* bf16 x[0, 32) of a row, as floats (four 16-byte loads). */
__device__ __forceinline__ void load_x32(const __nv_bfloat16 *x, float v[32]) {
    const uint4 *p = reinterpret_cast<const uint4 *>(x);
#pragma unroll
    for (int i = 0; i < 4; i++) {
        const uint4 q = __ldg(p + i);
        const uint32_t w[4] = {q.x, q.y, q.z, q.w};
#pragma unroll
        for (int j = 0; j < 4; j++) {
            v[8 * i + 2 * j] = __uint_as_float(w[j] << 16);
            v[8 * i + 2 * j + 1] = __uint_as_float(w[j] & 0xFFFF0000u);
        }
    }
}

/* Stores acc[t] (summed over the warp) for t < n_tok into y row t, by lane 0. */
template <int NT>
__device__ __forceinline__ void gemv_store(float acc[NT], int lane, int64_t o, int n_tok, void *y, int64_t y_stride, int out) {
#pragma unroll
    for (int t = 0; t < NT; t++) {
#pragma unroll
        for (int off = 16; off > 0; off >>= 1) acc[t] += __shfl_xor_sync(0xffffffffu, acc[t], off);
    }
    if (lane != 0) return;
#pragma unroll
    for (int t = 0; t < NT; t++) {
        if (t >= n_tok) break;
        const int64_t i = (int64_t)t * y_stride + o;
        if (out == PC_CU_OUT_F32)
            static_cast<float *>(y)[i] = acc[t];
        else if (out == PC_CU_OUT_ADD_F32)
            static_cast<float *>(y)[i] += acc[t];
        else
            static_cast<__nv_bfloat16 *>(y)[i] = __float2bfloat16_rn(acc[t]);
    }
}

template <int T> struct qraw;
template <> struct qraw<PC_TYPE_Q4_K> { uint4 h, q0, q1; }; /* d, dmin, scales; the unit's 32 qs bytes */
template <> struct qraw<PC_TYPE_Q4_1> { uint32_t w[5]; };    /* the 20-byte block */
template <> struct qraw<PC_TYPE_Q4_0> { uint32_t w[5]; int o; }; /* the 4-byte words holding the 18-byte block, from byte o */

/* Whether the fast path takes a matrix at w of rows of n_in: the alignment its loads need. */
template <int T> bool qfast_ok(const void *w, int64_t n_in);
template <> inline bool qfast_ok<PC_TYPE_Q4_K>(const void *w, int64_t) { return ((uintptr_t)w & 15) == 0; } /* 144-byte blocks */
template <> inline bool qfast_ok<PC_TYPE_Q4_1>(const void *w, int64_t) { return ((uintptr_t)w & 3) == 0; }  /* 20-byte blocks */
/* 18-byte blocks: a row of an even count of blocks is whole words and ends on an
 * odd block, whose words end with it, so an even block's fifth word (2 bytes past
 * it) is always inside the matrix. */
template <> inline bool qfast_ok<PC_TYPE_Q4_0>(const void *w, int64_t n_in) {
    return ((uintptr_t)w & 3) == 0 && (n_in / 32) % 2 == 0;
}

template <int T> __device__ __forceinline__ void qload(const uint8_t *row, int64_t u, qraw<T> &r);
template <> __device__ __forceinline__ void qload<PC_TYPE_Q4_K>(const uint8_t *row, int64_t u, qraw<PC_TYPE_Q4_K> &r) {
    const uint4 *b = reinterpret_cast<const uint4 *>(row) + u / 8 * 9; /* 144 bytes = 9 x 16 */
    const int p = (int)(u % 8) / 2;                                    /* sub-blocks 2p, 2p + 1 share 32 qs bytes */
    r.h = __ldg(b);
    r.q0 = __ldg(b + 1 + 2 * p);
    r.q1 = __ldg(b + 2 + 2 * p);
}
template <> __device__ __forceinline__ void qload<PC_TYPE_Q4_1>(const uint8_t *row, int64_t u, qraw<PC_TYPE_Q4_1> &r) {
    const uint32_t *b = reinterpret_cast<const uint32_t *>(row) + u * 5;
#pragma unroll
    for (int k = 0; k < 5; k++) r.w[k] = __ldg(b + k);
}
template <> __device__ __forceinline__ void qload<PC_TYPE_Q4_0>(const uint8_t *row, int64_t u, qraw<PC_TYPE_Q4_0> &r) {
    const int64_t byte = u * 18;
    const uint32_t *b = reinterpret_cast<const uint32_t *>(row) + byte / 4;
    r.o = (int)(byte % 4); /* 0 or 2 */
#pragma unroll
    for (int k = 0; k < 5; k++) r.w[k] = __ldg(b + k);
}

__device__ __forceinline__ int byte_of(uint32_t w, int k) { return (int)((w >> (8 * k)) & 0xFF); }

} // namespace pcq

#endif
