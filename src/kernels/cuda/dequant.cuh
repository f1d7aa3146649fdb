/* dequant.cuh - GGUF weight blocks to floats on the GPU, 32 elements at a time.
 *
 * Each function reproduces quant_ref.c / quant_k.c's pc_dequantize_row with the
 * same float operations in the same order, rounded one at a time (__fmul_rn,
 * __fadd_rn and __fsub_rn stop the compiler from fusing them into an FMA, which
 * the CPU code does not do), so the values are bitwise the CPU's.
 *
 * A "unit" is 32 consecutive elements of a row: one block of the 32-element
 * types, one sub-block of the 256-element K-quants. */
#ifndef PC_KERNELS_CUDA_DEQUANT_CUH
#define PC_KERNELS_CUDA_DEQUANT_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>

#include "tensor/types.h"

namespace pcq {

__device__ __forceinline__ float h2f(pc_f16 h) { return __half2float(__ushort_as_half(h)); }
__device__ __forceinline__ float fmul(float a, float b) { return __fmul_rn(a, b); }

/* Bytes per block and elements per block of the types the GPU reads. */
template <int T> struct tinfo;
template <> struct tinfo<PC_TYPE_F32> { enum { QK = 1, BYTES = 4 }; };
template <> struct tinfo<PC_TYPE_F16> { enum { QK = 1, BYTES = 2 }; };
template <> struct tinfo<PC_TYPE_BF16> { enum { QK = 1, BYTES = 2 }; };
template <> struct tinfo<PC_TYPE_Q4_0> { enum { QK = 32, BYTES = sizeof(pc_block_q4_0) }; };
template <> struct tinfo<PC_TYPE_Q4_1> { enum { QK = 32, BYTES = sizeof(pc_block_q4_1) }; };
template <> struct tinfo<PC_TYPE_Q5_0> { enum { QK = 32, BYTES = sizeof(pc_block_q5_0) }; };
template <> struct tinfo<PC_TYPE_Q5_1> { enum { QK = 32, BYTES = sizeof(pc_block_q5_1) }; };
template <> struct tinfo<PC_TYPE_Q8_0> { enum { QK = 32, BYTES = sizeof(pc_block_q8_0) }; };
template <> struct tinfo<PC_TYPE_Q2_K> { enum { QK = 256, BYTES = sizeof(pc_block_q2_K) }; };
template <> struct tinfo<PC_TYPE_Q3_K> { enum { QK = 256, BYTES = sizeof(pc_block_q3_K) }; };
template <> struct tinfo<PC_TYPE_Q4_K> { enum { QK = 256, BYTES = sizeof(pc_block_q4_K) }; };
template <> struct tinfo<PC_TYPE_Q5_K> { enum { QK = 256, BYTES = sizeof(pc_block_q5_K) }; };
template <> struct tinfo<PC_TYPE_Q6_K> { enum { QK = 256, BYTES = sizeof(pc_block_q6_K) }; };

/* Bytes of a row of n elements of type T. */
template <int T> __host__ __device__ constexpr int64_t row_bytes(int64_t n) {
    return n / tinfo<T>::QK * tinfo<T>::BYTES;
}

/* v[0, 32) = elements [32u, 32u + 32) of a row of type T. */
template <int T> __device__ void deq32(const uint8_t *row, int64_t u, float v[32]);

template <> __device__ __forceinline__ void deq32<PC_TYPE_F32>(const uint8_t *row, int64_t u, float v[32]) {
    const float4 *p = reinterpret_cast<const float4 *>(row) + u * 8;
#pragma unroll
    for (int i = 0; i < 8; i++) {
        const float4 f = p[i];
        v[4 * i] = f.x, v[4 * i + 1] = f.y, v[4 * i + 2] = f.z, v[4 * i + 3] = f.w;
    }
}

template <> __device__ __forceinline__ void deq32<PC_TYPE_F16>(const uint8_t *row, int64_t u, float v[32]) {
    const uint4 *p = reinterpret_cast<const uint4 *>(row) + u * 4;
#pragma unroll
    for (int i = 0; i < 4; i++) {
        const uint4 q = p[i];
        const uint32_t w[4] = {q.x, q.y, q.z, q.w};
#pragma unroll
        for (int j = 0; j < 4; j++) {
            v[8 * i + 2 * j] = h2f((pc_f16)(w[j] & 0xFFFF));
            v[8 * i + 2 * j + 1] = h2f((pc_f16)(w[j] >> 16));
        }
    }
}

template <> __device__ __forceinline__ void deq32<PC_TYPE_BF16>(const uint8_t *row, int64_t u, float v[32]) {
    const uint4 *p = reinterpret_cast<const uint4 *>(row) + u * 4;
#pragma unroll
    for (int i = 0; i < 4; i++) {
        const uint4 q = p[i];
        const uint32_t w[4] = {q.x, q.y, q.z, q.w};
#pragma unroll
        for (int j = 0; j < 4; j++) {
            v[8 * i + 2 * j] = __uint_as_float(w[j] << 16);
            v[8 * i + 2 * j + 1] = __uint_as_float(w[j] & 0xFFFF0000u);
        }
    }
}

template <> __device__ __forceinline__ void deq32<PC_TYPE_Q4_0>(const uint8_t *row, int64_t u, float v[32]) {
    const pc_block_q4_0 *b = reinterpret_cast<const pc_block_q4_0 *>(row) + u;
    const float d = h2f(b->d);
#pragma unroll
    for (int j = 0; j < 16; j++) {
        const int q = b->qs[j];
        v[j] = fmul((float)((q & 0xF) - 8), d);
        v[j + 16] = fmul((float)((q >> 4) - 8), d);
    }
}

template <> __device__ __forceinline__ void deq32<PC_TYPE_Q4_1>(const uint8_t *row, int64_t u, float v[32]) {
    const pc_block_q4_1 *b = reinterpret_cast<const pc_block_q4_1 *>(row) + u;
    const float d = h2f(b->d), m = h2f(b->m);
#pragma unroll
    for (int j = 0; j < 16; j++) {
        const int q = b->qs[j];
        v[j] = __fadd_rn(fmul((float)(q & 0xF), d), m);
        v[j + 16] = __fadd_rn(fmul((float)(q >> 4), d), m);
    }
}

__device__ __forceinline__ uint32_t ld_qh(const uint8_t qh[4]) {
    return (uint32_t)qh[0] | ((uint32_t)qh[1] << 8) | ((uint32_t)qh[2] << 16) | ((uint32_t)qh[3] << 24);
}

template <> __device__ __forceinline__ void deq32<PC_TYPE_Q5_0>(const uint8_t *row, int64_t u, float v[32]) {
    const pc_block_q5_0 *b = reinterpret_cast<const pc_block_q5_0 *>(row) + u;
    const float d = h2f(b->d);
    const uint32_t qh = ld_qh(b->qh);
#pragma unroll
    for (int j = 0; j < 16; j++) {
        const int lo = (b->qs[j] & 0xF) | (int)(((qh >> j) & 1) << 4);
        const int hi = (b->qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1) << 4);
        v[j] = fmul((float)(lo - 16), d);
        v[j + 16] = fmul((float)(hi - 16), d);
    }
}

template <> __device__ __forceinline__ void deq32<PC_TYPE_Q5_1>(const uint8_t *row, int64_t u, float v[32]) {
    const pc_block_q5_1 *b = reinterpret_cast<const pc_block_q5_1 *>(row) + u;
    const float d = h2f(b->d), m = h2f(b->m);
    const uint32_t qh = ld_qh(b->qh);
#pragma unroll
    for (int j = 0; j < 16; j++) {
        const int lo = (b->qs[j] & 0xF) | (int)(((qh >> j) & 1) << 4);
        const int hi = (b->qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1) << 4);
        v[j] = __fadd_rn(fmul((float)lo, d), m);
        v[j + 16] = __fadd_rn(fmul((float)hi, d), m);
    }
}

template <> __device__ __forceinline__ void deq32<PC_TYPE_Q8_0>(const uint8_t *row, int64_t u, float v[32]) {
    const pc_block_q8_0 *b = reinterpret_cast<const pc_block_q8_0 *>(row) + u;
    const float d = h2f(b->d);
#pragma unroll
    for (int j = 0; j < 32; j++) v[j] = fmul((float)b->qs[j], d);
}

/* K-quants: unit u is sub-block s = u % 8 of super-block u / 8; element e = 32 s + j. */

template <> __device__ __forceinline__ void deq32<PC_TYPE_Q2_K>(const uint8_t *row, int64_t u, float v[32]) {
    const pc_block_q2_K *b = reinterpret_cast<const pc_block_q2_K *>(row) + u / 8;
    const int s = (int)(u % 8);
    const float d = h2f(b->d), dmin = h2f(b->dmin);
#pragma unroll
    for (int j = 0; j < 32; j++) {
        const int e = 32 * s + j;
        const int sc = b->scales[e / 16];
        const int q = (b->qs[(e / 128) * 32 + e % 32] >> (2 * ((e % 128) / 32))) & 3;
        v[j] = __fsub_rn(fmul(fmul(d, (float)(sc & 0xF)), (float)q), fmul(dmin, (float)(sc >> 4)));
    }
}

template <> __device__ __forceinline__ void deq32<PC_TYPE_Q3_K>(const uint8_t *row, int64_t u, float v[32]) {
    const pc_block_q3_K *b = reinterpret_cast<const pc_block_q3_K *>(row) + u / 8;
    const int s = (int)(u % 8);
    const float d = h2f(b->d);
#pragma unroll
    for (int half = 0; half < 2; half++) {
        const int sub = 2 * s + half; /* the 16-element scale index */
        const int lo = (b->scales[sub % 8] >> (4 * (sub / 8))) & 0xF;
        const int hi = (b->scales[8 + sub % 4] >> (2 * (sub / 4))) & 3;
        const float sc = (float)((lo | (hi << 4)) - 32);
#pragma unroll
        for (int j = 0; j < 16; j++) {
            const int e = 32 * s + 16 * half + j;
            const int high = (b->hmask[e % 32] >> (e / 32)) & 1;
            const int q = ((b->qs[(e / 128) * 32 + e % 32] >> (2 * ((e % 128) / 32))) & 3) - (high ? 0 : 4);
            v[16 * half + j] = fmul(fmul(d, sc), (float)q);
        }
    }
}

/* The 6-bit scale and min of sub-block j (0..7) of a Q4_K/Q5_K block. */
__device__ __forceinline__ void k4_scale_min(int j, const uint8_t *q, int *sc, int *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

template <> __device__ __forceinline__ void deq32<PC_TYPE_Q4_K>(const uint8_t *row, int64_t u, float v[32]) {
    const pc_block_q4_K *b = reinterpret_cast<const pc_block_q4_K *>(row) + u / 8;
    const int s = (int)(u % 8);
    const float d = h2f(b->d), dmin = h2f(b->dmin);
    int sc, m;
    k4_scale_min(s, b->scales, &sc, &m);
    const float d1 = fmul(d, (float)sc), m1 = fmul(dmin, (float)m);
    const uint8_t *qs = b->qs + (s / 2) * 32;
    const int shift = 4 * (s % 2);
#pragma unroll
    for (int j = 0; j < 32; j++) v[j] = __fsub_rn(fmul(d1, (float)((qs[j] >> shift) & 0xF)), m1);
}

template <> __device__ __forceinline__ void deq32<PC_TYPE_Q5_K>(const uint8_t *row, int64_t u, float v[32]) {
    const pc_block_q5_K *b = reinterpret_cast<const pc_block_q5_K *>(row) + u / 8;
    const int s = (int)(u % 8);
    const float d = h2f(b->d), dmin = h2f(b->dmin);
    int sc, m;
    k4_scale_min(s, b->scales, &sc, &m);
    const float d1 = fmul(d, (float)sc), m1 = fmul(dmin, (float)m);
    const uint8_t *qs = b->qs + (s / 2) * 32;
    const int shift = 4 * (s % 2);
#pragma unroll
    for (int j = 0; j < 32; j++) {
        const int q = ((qs[j] >> shift) & 0xF) | (((b->qh[j] >> s) & 1) << 4);
        v[j] = __fsub_rn(fmul(d1, (float)q), m1);
    }
}

template <> __device__ __forceinline__ void deq32<PC_TYPE_Q6_K>(const uint8_t *row, int64_t u, float v[32]) {
    const pc_block_q6_K *b = reinterpret_cast<const pc_block_q6_K *>(row) + u / 8;
    const int s = (int)(u % 8);
    const float d = h2f(b->d);
    const int h = s / 4, k = s % 4; /* e = 128 h + 32 k + j */
#pragma unroll
    for (int j = 0; j < 32; j++) {
        const int lo = (b->ql[64 * h + (k & 1) * 32 + j] >> (4 * (k >> 1))) & 0xF;
        const int hi = (b->qh[32 * h + j] >> (2 * k)) & 3;
        const float sc = (float)b->scales[(32 * s + j) / 16];
        v[j] = fmul(fmul(d, sc), (float)((lo | (hi << 4)) - 32));
    }
}

} // namespace pcq

/* Expands F(T) for every weight type the kernels read, inside a switch on t. */
#define PCQ_DISPATCH(t, F)                                                                                             \
    switch (t) {                                                                                                       \
    case PC_TYPE_F32: F(PC_TYPE_F32); break;                                                                           \
    case PC_TYPE_F16: F(PC_TYPE_F16); break;                                                                           \
    case PC_TYPE_BF16: F(PC_TYPE_BF16); break;                                                                         \
    case PC_TYPE_Q4_0: F(PC_TYPE_Q4_0); break;                                                                         \
    case PC_TYPE_Q4_1: F(PC_TYPE_Q4_1); break;                                                                         \
    case PC_TYPE_Q5_0: F(PC_TYPE_Q5_0); break;                                                                         \
    case PC_TYPE_Q5_1: F(PC_TYPE_Q5_1); break;                                                                         \
    case PC_TYPE_Q8_0: F(PC_TYPE_Q8_0); break;                                                                         \
    case PC_TYPE_Q2_K: F(PC_TYPE_Q2_K); break;                                                                         \
    case PC_TYPE_Q3_K: F(PC_TYPE_Q3_K); break;                                                                         \
    case PC_TYPE_Q4_K: F(PC_TYPE_Q4_K); break;                                                                         \
    case PC_TYPE_Q5_K: F(PC_TYPE_Q5_K); break;                                                                         \
    case PC_TYPE_Q6_K: F(PC_TYPE_Q6_K); break;                                                                         \
    default: return cudaErrorInvalidValue;                                                                             \
    }

#endif
