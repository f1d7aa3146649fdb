/* gemv_rows.cuh - the loop the small-batch products share: a warp per output
 * row, lane l taking the row's 32-element units l, l + 32, ... in that order,
 * U of them in flight (their loads issued before the first is used).
 *
 * What a unit is made of and how it meets x is the kernel's, in a policy P:
 *   P::raw                        a unit's bytes as loaded
 *   P::load(row, u, raw &)        issue unit u's loads
 *   P::use(const raw &, u, acc)   add unit u's term to acc[t], t < n_tok
 * quant.cu's float kernels and gemv_q8.cu's int8 ones each keep only their
 * policy, so the lanes, units and order of sums, which the products' bitwise
 * guarantees rest on (every output's sums in the same order for every U and
 * token count), are written once. */
#ifndef PC_KERNELS_CUDA_GEMV_ROWS_CUH
#define PC_KERNELS_CUDA_GEMV_ROWS_CUH

#include "kernels/cuda/dequant.cuh"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/qload.cuh"

namespace pcq {

/* Units u, u + 32, ..., u + 32 (U - 1) of the row's `units`, those inside it. */
template <int U, class P>
__device__ __forceinline__ void load_units(const P &p, const uint8_t *row, int64_t u, int64_t units,
                                           typename P::raw (&r)[U]) {
#pragma unroll
    for (int k = 0; k < U; k++)
        if (u + 32 * k < units) p.load(row, u + 32 * k, r[k]);
}

/* The terms of the units load_units loaded, in order. */
template <int U, class P, int NT>
__device__ __forceinline__ void use_units(const P &p, int64_t u, int64_t units, const typename P::raw (&r)[U],
                                          float (&acc)[NT]) {
#pragma unroll
    for (int k = 0; k < U; k++) {
        if (u + 32 * k >= units) break;
        p.use(r[k], u + 32 * k, acc);
    }
}

/* Row o = blockIdx.x * W + warp of a row-major matrix of type T (n_in wide,
 * n_out rows) times up to NT tokens, stored by gemv_store. Launched as a PDL
 * dependent (launch.cuh) it loads the first units' weights, which no kernel
 * writes, before it waits for the kernel that wrote x; launched plainly the
 * wait returns at once. */
template <int T, int W, int U, int NT, class P>
__device__ __forceinline__ void gemv_rows(const P &p, const uint8_t *w, int64_t n_in, int64_t n_out, int n_tok, void *y,
                                          int64_t y_stride, int out) {
    pcl::grid_dep_launch();
    const int lane = threadIdx.x % 32;
    const int64_t o = (int64_t)blockIdx.x * W + threadIdx.x / 32;
    if (o >= n_out) return;
    const uint8_t *row = w + o * row_bytes<T>(n_in);
    const int64_t units = n_in / 32;
    float acc[NT];
#pragma unroll
    for (int t = 0; t < NT; t++) acc[t] = 0.f;
    bool waited = false;
    for (int64_t u = lane; u < units; u += 32 * U) {
        typename P::raw r[U];
        load_units<U>(p, row, u, units, r);
        if (!waited) pcl::grid_dep_wait(), waited = true;
        use_units<U>(p, u, units, r, acc);
    }
    if (!waited) pcl::grid_dep_wait();
    gemv_store<NT>(acc, lane, o, n_tok, y, y_stride, out);
}

} // namespace pcq

#endif
