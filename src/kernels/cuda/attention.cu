/* attention.cu - attention by position over the span list of a step (GPU).
 *
 * The context is a table of key tiles (pc_cu_tile): up to 64 consecutive keys
 * of one span, with their positions. A query row at position p takes exactly
 * the keys at positions <= p (a padding key has position INT32_MAX); a tile
 * whose smallest position is above every query of a block is skipped whole.
 * Rows are (token, query head of the KV head's group), so the heads that share
 * a KV head share every key tile they load (GQA).
 *
 * MMA (prefill, and any number of rows): FlashAttention-2 on mma.sync
 * m16n8k16 (f16 in, f32 accumulate). A block is 4 warps, 64 query rows of one
 * KV head, or 128 above 128 rows (each warp two blocks of 16 rows, so that every
 * K and V fragment read from shared memory feeds two products); key tiles stream through shared memory with cp.async, double
 * buffered. Keys are stored transposed in blocks of 8 ([dim][8], kv.h), which
 * is K^T: ldmatrix.trans turns it into mma's B operand as it lies; values are
 * rows, also read with ldmatrix.trans. Scores are scaled to log2 units and
 * exponentiated with exp2; probabilities are rounded to f16 for P V.
 * WG (MMA above 128 rows on sm_90): the same blocks of 128 rows and the same
 * softmax on wgmma, Q, K^T and V read by the tensor cores from shared memory
 * (below); 8k causal prefill 297 TFLOP/s against mma.sync's 238 (H200).
 * VEC (decode: at most 8 rows per KV head): a warp takes a key block of 8
 * (each lane 16 bytes of it), reduces the 8 scores across the warp in 9
 * shuffles (reduce-scatter), and accumulates P V on its slice of dims.
 * FEWQ (cached prompts' fresh suffixes: at most 32 rows per KV head): the MMA
 * kernel's products with each tile's keys split over four warps (below).
 * Each kernel can split the tiles of the context into n_split slices; each
 * slice writes an unnormalized partial (o, max, sum) and combine_kernel merges
 * them by log-sum-exp. Each kernel is launched as a programmatic dependent of
 * the kernel before it (grid_dep_wait), and combine_kernel of the attention
 * kernel: their launches and table loads overlap the previous kernel's tail. */
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>

#include "kernels/cuda/kernels.h"
#include "kernels/cuda/launch.cuh"

namespace {

constexpr int BR = PC_CU_QROWS; /* query rows per MMA block */
constexpr int BC = PC_CU_TILE;  /* keys per tile */
constexpr int KB = PC_CU_KV_BLOCK;
constexpr int NW = 4;           /* warps per block */
constexpr float LOG2E = 1.4426950408889634f;

/* ---- PTX helpers ---- */

__device__ __forceinline__ uint32_t smem_addr(const void *p) { return (uint32_t)__cvta_generic_to_shared(p); }

/* 16 bytes global -> shared, or 16 zero bytes when !pred (nothing is read then). */
__device__ __forceinline__ void cp_async16(void *dst, const void *src, bool pred) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(dst)), "l"(src), "r"(pred ? 16 : 0));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }

__device__ __forceinline__ void ldsm_x4(uint32_t r[4], const void *p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_addr(p)));
}
__device__ __forceinline__ void ldsm_x4_t(uint32_t r[4], const void *p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_addr(p)));
}

/* c += a b: a 16x16 (row), b 16x8 (col), f16 in, f32 accumulate. */
__device__ __forceinline__ void mma16816(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

/* 2^x by the special-function unit (ex2.approx, 2 ulp; 2^-inf = 0). */
__device__ __forceinline__ float ex2(float x) {
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
    return y;
}

__device__ __forceinline__ uint32_t pack_h2(float lo, float hi) {
    const __half2 h = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<const uint32_t *>(&h);
}

/* PDL (launch.cuh): every attention kernel lets the next one (combine_kernel)
 * launch at once, and before pcl::grid_dep_wait reads only the step's tables
 * (uploaded before pc_cu_qkv started) and the keys and values of spans other than
 * the one being written, so that it overlaps that kernel's tail. */
using pcl::grid_dep_launch;
using pcl::grid_dep_wait;

/* The split's slice [t0, t1) of n tiles. */
__device__ __forceinline__ void split_range(int n, int split, int n_split, int *t0, int *t1) {
    *t0 = (int)((int64_t)n * split / n_split);
    *t1 = (int)((int64_t)n * (split + 1) / n_split);
}


/* Index of a partial row: [split][q_tile][kv head][row]. */
__device__ __forceinline__ int64_t part_row(int split, int q_tiles, int qtile, int n_head_kv, int hk, int r) {
    return (((int64_t)split * q_tiles + qtile) * n_head_kv + hk) * BR + r;
}

/* ---- MMA kernel ---- */

/* Shared memory of the tensor-core kernels: QR query rows, ST stages of K^T and V
 * tiles. CORE: wgmma's no-swizzle core matrices (8 rows x 16 bytes, 128 contiguous
 * bytes each), unpadded; else rows for ldmatrix. */
template <int D, int QR, int ST, bool CORE = false> struct mma_smem {
    static constexpr int PAD = CORE ? 0 : 8; /* ldmatrix rows padded so they hit distinct banks */
    static constexpr int QS = D + PAD;       /* row strides (halves) */
    static constexpr int KS = BC + PAD;
    static constexpr int VS = D + PAD;
    static constexpr size_t q_bytes = (size_t)QR * QS * 2;
    static constexpr size_t k_bytes = (size_t)D * KS * 2;  /* one stage: K^T [D][BC] */
    static constexpr size_t v_bytes = (size_t)BC * VS * 2; /* one stage: V [BC][D] */
    static constexpr size_t fixed = q_bytes + ST * (k_bytes + v_bytes + BC * sizeof(int));
};

/* Shared bytes of a split's tile metadata: the tile, its span's K/V of this
 * layer, and a slot of the list of visible tiles. */
__host__ __device__ constexpr size_t meta_bytes(int tiles_cap) {
    return (size_t)tiles_cap * (sizeof(pc_cu_tile) + sizeof(pc_cu_span_layer) + sizeof(int));
}

/* Loads the metadata of tiles [t0, t1) into shared memory (one round trip for
 * the whole split instead of a dependent chain per tile). Ends with a barrier. */
__device__ __forceinline__ void load_meta(const pc_cu_step *st, const pc_cu_span_layer *spans, int t0, int t1,
                                          pc_cu_tile *mt, pc_cu_span_layer *ms) {
    for (int i = threadIdx.x; i < t1 - t0; i += blockDim.x) {
        const pc_cu_tile tl = st->tiles[t0 + i];
        mt[i] = tl;
        ms[i] = spans[tl.span];
    }
    __syncthreads();
}

/* First local tile >= t (below n) that a query at position qmax can see any key of. */
__device__ __forceinline__ int next_visible_s(const pc_cu_tile *mt, int t, int n, int qmax) {
    while (t < n && mt[t].min_pos > qmax) t++;
    return t;
}

/* The visible tiles of mt[0, n), compacted into vis by warp 0 (ballots); returns
 * their count to every thread. Ends with a barrier. */
__device__ __forceinline__ int list_visible(const pc_cu_tile *mt, int n, int qmax, int *vis, int *count) {
    if (threadIdx.x < 32) {
        const int lane = threadIdx.x;
        int nv = 0;
        for (int base = 0; base < n; base += 32) {
            const int t = base + lane;
            const bool v = t < n && mt[t].min_pos <= qmax;
            const unsigned m = __ballot_sync(0xffffffffu, v);
            if (v) vis[nv + __popc(m & ((1u << lane) - 1))] = t;
            nv += __popc(m);
        }
        if (lane == 0) *count = nv;
    }
    __syncthreads();
    return *count;
}

template <int N> __device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

/* The largest query position among the block's rows (each thread's qp_a, qp_b;
 * -1 for none), to every thread. */
__device__ __forceinline__ int block_qmax(int qp_a, int qp_b, int *s_qmax) {
    if (threadIdx.x == 0) *s_qmax = -1;
    __syncthreads();
    atomicMax(s_qmax, max(qp_a, qp_b));
    __syncthreads();
    return *s_qmax;
}

/* What the two tensor-core kernels (MMA, FEWQ) share: shared memory carved into
 * QR query rows, ST stages of K^T, V and key positions, and the split's tile
 * metadata; the split's visible tiles; the cp.async loads of the queries and of
 * one tile. NT threads (the whole block) take part in every call. */
template <int D, int QR, int ST, int NT, bool CORE = false> struct tile_pipe {
    using S = mma_smem<D, QR, ST, CORE>;
    __half *Qs, *Ks, *Vs;
    int *Ps, *Vis;
    pc_cu_tile *Mt;
    pc_cu_span_layer *Ms;
    int t0 = 0, nv = 0;
    bool early = false; /* the prologue's tiles were requested before grid_dep_wait */

    __device__ __forceinline__ tile_pipe(unsigned char *smem, int tiles_cap) {
        Qs = reinterpret_cast<__half *>(smem);
        Ks = reinterpret_cast<__half *>(smem + S::q_bytes);
        Vs = reinterpret_cast<__half *>(smem + S::q_bytes + ST * S::k_bytes);
        Ps = reinterpret_cast<int *>(smem + S::q_bytes + ST * (S::k_bytes + S::v_bytes));
        Mt = reinterpret_cast<pc_cu_tile *>(smem + S::fixed);
        Ms = reinterpret_cast<pc_cu_span_layer *>(smem + S::fixed + (size_t)tiles_cap * sizeof(pc_cu_tile));
        Vis = reinterpret_cast<int *>(smem + S::fixed + (size_t)tiles_cap * (sizeof(pc_cu_tile) + sizeof(pc_cu_span_layer)));
    }

    /* The split's tiles that a query at qmax sees any key of (Vis[0, nv)), from
     * the step's tables alone; then waits for the kernel before (PDL), after
     * which the queries and the fresh keys and values may be read. */
    __device__ __forceinline__ void plan(const pc_cu_attn_args &a, int split, int hk, int qmax, int *s_nv) {
        const pc_cu_step *st = a.step;
        int t1;
        split_range(st->n_tiles, split, a.n_split, &t0, &t1);
        if (t1 - t0 > a.tiles_cap) t1 = t0 + a.tiles_cap; /* the launcher sized tiles_cap; never hit */
        load_meta(st, st->spans + (int64_t)a.layer * st->n_spans, t0, t1, Mt, Ms);
        nv = list_visible(Mt, t1 - t0, qmax, Vis, s_nv);
        /* no kernel of this step writes the keys and values of a span other than the one
         * being written (host spans' stages are waited for before the launch): when the
         * prologue's tiles all lie there, they are requested before waiting */
        const __half *dk = static_cast<const __half *>(st->dst_k) + (int64_t)a.layer * st->dst_layer_stride;
        early = true;
        for (int s = 0; s < ST - 1 && s < nv; s++) early = early && Ms[Vis[s]].k != dk;
        if (early) prologue(a, hk);
        grid_dep_wait();
    }

    /* Query rows rho0 .. rho0 + QR of KV head hk (their own commit group). */
    __device__ __forceinline__ void load_q(const pc_cu_attn_args &a, int rho0, int hk) {
        const int G = a.n_head / a.n_head_kv, rows = a.n * G, QW = a.n_head * D;
        const __half *q16 = static_cast<const __half *>(a.q16);
        for (int c = threadIdx.x; c < QR * (D / 8); c += NT) {
            /* CORE: [row group][dim group] matrices, a matrix's 8 rows on consecutive threads
             * (a warp writes 512 contiguous bytes) */
            const int r = CORE ? (c / D) * 8 + c % 8 : c / (D / 8), cc = CORE ? (c / 8) % (D / 8) : c % (D / 8);
            const int rho = rho0 + r;
            const bool ok = rho < rows;
            const __half *src = ok ? q16 + (int64_t)(rho / G) * QW + (hk * G + rho % G) * D + cc * 8 : q16;
            cp_async16(Qs + (CORE ? (r / 8) * D * 8 + cc * 64 + (r % 8) * 8 : r * S::QS + cc * 8), src, ok);
        }
        cp_async_commit();
    }

    /* Keys, values and key positions of the split's tile ti into stage. */
    __device__ __forceinline__ void load_tile(const pc_cu_attn_args &a, int hk, int ti, int stage) {
        const int DA = a.n_head_kv * D, tid = threadIdx.x;
        const pc_cu_tile tl = Mt[ti];
        const pc_cu_span_layer sl = Ms[ti];
        const __half *kb = static_cast<const __half *>(sl.k) + ((int64_t)(tl.row0 / KB) * DA + hk * D) * KB;
        const __half *vb = static_cast<const __half *>(sl.v) + (int64_t)tl.row0 * DA + hk * D;
        const int nblk = (tl.n + KB - 1) / KB;
        __half *kd = Ks + stage * (S::k_bytes / 2);
        __half *vd = Vs + stage * (S::v_bytes / 2);
#pragma unroll
        for (int c = tid; c < D * (BC / KB); c += NT) { /* block j of 8 keys, dim d: 16 bytes */
            const int j = c / D, d = c % D;
            const bool ok = j < nblk;
            /* CORE: as stored, [block][dim][8], whose 8-dim runs are K^T's core matrices */
            cp_async16(kd + (CORE ? j * D * KB + d * KB : d * S::KS + j * KB), ok ? kb + (int64_t)j * DA * KB + d * KB : kb, ok);
        }
#pragma unroll
        for (int c = tid; c < BC * (D / 8); c += NT) {
            /* CORE: [key group][dim group] matrices, a matrix's 8 keys on consecutive threads */
            const int r = CORE ? (c / D) * 8 + c % 8 : c / (D / 8), cc = CORE ? (c / 8) % (D / 8) : c % (D / 8);
            const bool ok = r < tl.n;
            cp_async16(vd + (CORE ? (r / 8) * D * 8 + cc * 64 + (r % 8) * 8 : r * S::VS + cc * 8),
                       ok ? vb + (int64_t)r * DA + cc * 8 : vb, ok);
        }
        if (tid < BC / 4) cp_async16(Ps + stage * BC + tid * 4, a.step->kpos + (int64_t)(t0 + ti) * BC + tid * 4, true);
    }

    /* The first ST - 1 visible tiles, one commit group each (empty or not). */
    __device__ __forceinline__ void prologue(const pc_cu_attn_args &a, int hk) {
#pragma unroll
        for (int s = 0; s < ST - 1; s++) {
            if (s < nv) load_tile(a, hk, Vis[s], s);
            cp_async_commit();
        }
    }
};

/* One tile's online softmax for the rows a (lane / 4) and b (+ 8) of one 16-row block:
 * mask by position (skipped when no key lies after the warp's queries), new maxima in
 * log2 units, o and the sums rescaled, probabilities packed to f16 as mma's A operand.
 * The same steps as the mma.sync kernel's inline loop, which keeps its own copy: calling
 * this from it changed its code and cost 1.5-2.5% at 35 and 64 rows over 8192 keys
 * (bench_gpu_ops, device call at 13:44). */
template <int D>
__device__ __forceinline__ void online_softmax(float s[BC / 8][4], uint32_t pa[BC / 16][4], float o[D / 8][4], float &m_a,
                                               float &m_b, float &l_a, float &l_b, int qp_a, int qp_b, bool masked,
                                               const int *pd, float sl2, int lane) {
    if (masked) {
#pragma unroll
        for (int j = 0; j < BC / 8; j++) {
#pragma unroll
            for (int e = 0; e < 2; e++) {
                const int kp = pd[j * 8 + (lane % 4) * 2 + e];
                if (kp > qp_a) s[j][e] = -INFINITY;
                if (kp > qp_b) s[j][2 + e] = -INFINITY;
            }
        }
    }
    float mx_a = -INFINITY, mx_b = -INFINITY;
#pragma unroll
    for (int j = 0; j < BC / 8; j++) {
        mx_a = fmaxf(mx_a, fmaxf(s[j][0], s[j][1]));
        mx_b = fmaxf(mx_b, fmaxf(s[j][2], s[j][3]));
    }
#pragma unroll
    for (int off = 1; off <= 2; off <<= 1) {
        mx_a = fmaxf(mx_a, __shfl_xor_sync(0xffffffffu, mx_a, off));
        mx_b = fmaxf(mx_b, __shfl_xor_sync(0xffffffffu, mx_b, off));
    }
    const float mn_a = fmaxf(m_a, mx_a * sl2), mn_b = fmaxf(m_b, mx_b * sl2);
    const float base_a = mn_a == -INFINITY ? 0.f : mn_a, base_b = mn_b == -INFINITY ? 0.f : mn_b;
    const float al_a = ex2(m_a - base_a), al_b = ex2(m_b - base_b);
    m_a = mn_a;
    m_b = mn_b;
    float ps_a = 0.f, ps_b = 0.f;
#pragma unroll
    for (int j = 0; j < BC / 8; j++) {
#pragma unroll
        for (int e = 0; e < 2; e++) {
            s[j][e] = ex2(fmaf(s[j][e], sl2, -base_a));
            s[j][2 + e] = ex2(fmaf(s[j][2 + e], sl2, -base_b));
            ps_a += s[j][e];
            ps_b += s[j][2 + e];
        }
    }
    l_a = l_a * al_a + ps_a;
    l_b = l_b * al_b + ps_b;
#pragma unroll
    for (int d = 0; d < D / 8; d++) {
        o[d][0] *= al_a, o[d][1] *= al_a;
        o[d][2] *= al_b, o[d][3] *= al_b;
    }
#pragma unroll
    for (int kk = 0; kk < BC / 16; kk++) {
        pa[kk][0] = pack_h2(s[2 * kk][0], s[2 * kk][1]);
        pa[kk][1] = pack_h2(s[2 * kk][2], s[2 * kk][3]);
        pa[kk][2] = pack_h2(s[2 * kk + 1][0], s[2 * kk + 1][1]);
        pa[kk][3] = pack_h2(s[2 * kk + 1][2], s[2 * kk + 1][3]);
    }
}

/* The warp's rows written out, normalized (one split) or as the split's partial: row a
 * of block m is rho0 + MS m, row b 8 below it. */
template <int D, int MT, int MS>
__device__ __forceinline__ void store_rows(const pc_cu_attn_args &a, float o[MT][D / 8][4], const float *m_a, const float *m_b,
                                         float *l_a, float *l_b, int rho0, int rows, int hk, int split, int lane) {
    const int G = a.n_head / a.n_head_kv, QW = a.n_head * D;
    const int q_tiles = (rows + BR - 1) / BR; /* partials are indexed in tiles of BR = 64 rows */
#pragma unroll
    for (int m = 0; m < MT; m++) {
#pragma unroll
        for (int off = 1; off <= 2; off <<= 1) {
            l_a[m] += __shfl_xor_sync(0xffffffffu, l_a[m], off);
            l_b[m] += __shfl_xor_sync(0xffffffffu, l_b[m], off);
        }
#pragma unroll
        for (int half = 0; half < 2; half++) {
            const int rho = rho0 + MS * m + 8 * half;
            if (rho >= rows) continue;
            const float l = half ? l_b[m] : l_a[m], mm = half ? m_b[m] : m_a[m];
            if (a.n_split == 1) {
                const float inv = l > 0.f ? 1.f / l : 0.f;
                __nv_bfloat16 *out = static_cast<__nv_bfloat16 *>(a.out) + (int64_t)(rho / G) * QW + (hk * G + rho % G) * D;
#pragma unroll
                for (int i = 0; i < D / 8; i++) {
                    const int d = i * 8 + (lane % 4) * 2;
                    *reinterpret_cast<__nv_bfloat162 *>(out + d) =
                        __floats2bfloat162_rn(o[m][i][2 * half] * inv, o[m][i][2 * half + 1] * inv);
                }
            } else {
                const int64_t pr = part_row(split, q_tiles, rho / BR, a.n_head_kv, hk, rho % BR);
                float *po = a.part_o + pr * D;
#pragma unroll
                for (int i = 0; i < D / 8; i++) {
                    const int d = i * 8 + (lane % 4) * 2;
                    *reinterpret_cast<float2 *>(po + d) = make_float2(o[m][i][2 * half], o[m][i][2 * half + 1]);
                }
                if (lane % 4 == 0) *reinterpret_cast<float2 *>(a.part_ml + pr * 2) = make_float2(mm, l);
            }
        }
    }
}

/* QWARPS warps hold MT x 16 query rows each (QR = 16 QWARPS MT rows); all NW warps
 * load tiles; ST stages of K/V, ST - 1 in flight while one is used. With MT = 2 each
 * K and V fragment read from shared memory feeds two row blocks' products, half the
 * ldmatrix traffic a FLOP (what limits MT = 1 at long prefills), and the queries are
 * read again from shared memory each tile instead of held in registers. Launched as
 * <D, 4, MT, 2>: two blocks a multiprocessor. */
template <int D, int QWARPS, int MT, int ST>
__global__ void __launch_bounds__(NW * 32, 2) attn_mma_kernel(pc_cu_attn_args a) {
    grid_dep_launch();
    constexpr int QR = 16 * QWARPS * MT;
    constexpr bool QREG = MT == 1; /* queries in registers */
    using S = mma_smem<D, QR, ST>;
    extern __shared__ __align__(16) unsigned char smem[];
    tile_pipe<D, QR, ST, NW * 32> pipe(smem, a.tiles_cap);
    __half *const Qs = pipe.Qs, *const Ks = pipe.Ks, *const Vs = pipe.Vs;
    const int *const Ps = pipe.Ps, *const Vis = pipe.Vis;
    __shared__ int s_qmax, s_nv;

    const pc_cu_step *st = a.step;
    const int G = a.n_head / a.n_head_kv, rows = a.n * G, QW = a.n_head * D;
    /* the last query tiles see the most keys (causal prefill): start them first, so the
     * short ones fill the tail of the grid instead of the long ones */
    const int qtile = gridDim.x - 1 - blockIdx.x, hk = blockIdx.y, split = blockIdx.z;
    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
    const bool qwarp = warp < QWARPS;

    /* this thread's rows: lane / 4 and lane / 4 + 8 of each of its warp's MT blocks of 16 */
    const int rho0 = qtile * QR + warp * MT * 16 + lane / 4; /* row a of block m: rho0 + 16 m; row b: + 8 */
    int qp_a[MT], qp_b[MT], qmax = -1, qmin = INT32_MAX; /* qmin: the warp's smallest query position */
#pragma unroll
    for (int m = 0; m < MT; m++) {
        const int ra = rho0 + 16 * m, rb = ra + 8;
        qp_a[m] = qwarp && ra < rows ? st->qpos[ra / G] : -1;
        qp_b[m] = qwarp && rb < rows ? st->qpos[rb / G] : -1;
        qmax = max(qmax, max(qp_a[m], qp_b[m]));
        qmin = min(qmin, min(ra < rows ? qp_a[m] : INT32_MAX, rb < rows ? qp_b[m] : INT32_MAX));
    }
#pragma unroll
    for (int off = 1; off < 32; off <<= 1) qmin = min(qmin, __shfl_xor_sync(0xffffffffu, qmin, off));
    pipe.plan(a, split, hk, block_qmax(qmax, -1, &s_qmax), &s_nv);
    const int nv = pipe.nv;
    pipe.load_q(a, qtile * QR, hk);
    if (!pipe.early) pipe.prologue(a, hk);

    const float sl2 = a.scale * LOG2E;
    float m_a[MT], m_b[MT], l_a[MT], l_b[MT];
    float o[MT][D / 8][4];
#pragma unroll
    for (int m = 0; m < MT; m++) {
        m_a[m] = m_b[m] = -INFINITY, l_a[m] = l_b[m] = 0.f;
#pragma unroll
        for (int i = 0; i < D / 8; i++) o[m][i][0] = o[m][i][1] = o[m][i][2] = o[m][i][3] = 0.f;
    }
    uint32_t qf[QREG ? D / 16 : 1][4];
    bool have_q = false;

    for (int i = 0; i < nv; i++) {
        /* groups: Q, then tiles 0..i+ST-2 (or, early, the prologue's tiles before Q): tile i (and Q) have landed */
        if (pipe.early && i == 0)
            cp_async_wait<0>();
        else
            cp_async_wait<ST - 2>();
        __syncthreads(); /* ... for every thread, and stage (i - 1) % ST is free again */
        if (i + ST - 1 < nv) pipe.load_tile(a, hk, Vis[i + ST - 1], (i + ST - 1) % ST);
        cp_async_commit();
        if (!qwarp) continue;
        if (QREG && !have_q) {
#pragma unroll
            for (int kk = 0; kk < D / 16; kk++)
                ldsm_x4(qf[QREG ? kk : 0], Qs + (warp * 16 + lane % 16) * S::QS + kk * 16 + (lane / 16) * 8);
            have_q = true;
        }
        const int stage = i % ST;
        const __half *kd = Ks + stage * (S::k_bytes / 2);
        const __half *vd = Vs + stage * (S::v_bytes / 2);
        const int *pd = Ps + stage * BC;
        /* does any key of the tile lie after one of the warp's queries? */
        const bool masked = __any_sync(0xffffffffu, max(pd[lane], pd[lane + 32]) > qmin);
        float s[MT][BC / 8][4];
#pragma unroll
        for (int m = 0; m < MT; m++)
#pragma unroll
            for (int j = 0; j < BC / 8; j++) s[m][j][0] = s[m][j][1] = s[m][j][2] = s[m][j][3] = 0.f;
#pragma unroll
        for (int kk = 0; kk < D / 16; kk++) {
            uint32_t qa[MT][4];
#pragma unroll
            for (int m = 0; m < MT; m++) {
                if (QREG)
#pragma unroll
                    for (int r = 0; r < 4; r++) qa[m][r] = qf[QREG ? kk : 0][r];
                else
                    ldsm_x4(qa[m], Qs + ((warp * MT + m) * 16 + lane % 16) * S::QS + kk * 16 + (lane / 16) * 8);
            }
#pragma unroll
            for (int np = 0; np < BC / 16; np++) {
                uint32_t b[4];
                ldsm_x4_t(b, kd + (kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * S::KS + np * 16 + (lane >> 4) * 8);
#pragma unroll
                for (int m = 0; m < MT; m++) {
                    mma16816(s[m][2 * np], qa[m], b[0], b[1]);
                    mma16816(s[m][2 * np + 1], qa[m], b[2], b[3]);
                }
            }
        }
        uint32_t pa[MT][BC / 16][4]; /* probabilities as f16, mma's A operand */
#pragma unroll
        for (int m = 0; m < MT; m++) {
            /* mask by position (tiles every row of the warp sees whole skip it), row
             * maxima; scores go to log2 units inside the exponent */
            float mx_a = -INFINITY, mx_b = -INFINITY;
            if (masked) {
#pragma unroll
                for (int j = 0; j < BC / 8; j++) {
#pragma unroll
                    for (int e = 0; e < 2; e++) {
                        const int kp = pd[j * 8 + (lane % 4) * 2 + e];
                        if (kp > qp_a[m]) s[m][j][e] = -INFINITY;
                        if (kp > qp_b[m]) s[m][j][2 + e] = -INFINITY;
                    }
                }
            }
#pragma unroll
            for (int j = 0; j < BC / 8; j++) {
                mx_a = fmaxf(mx_a, fmaxf(s[m][j][0], s[m][j][1]));
                mx_b = fmaxf(mx_b, fmaxf(s[m][j][2], s[m][j][3]));
            }
#pragma unroll
            for (int off = 1; off <= 2; off <<= 1) {
                mx_a = fmaxf(mx_a, __shfl_xor_sync(0xffffffffu, mx_a, off));
                mx_b = fmaxf(mx_b, __shfl_xor_sync(0xffffffffu, mx_b, off));
            }
            const float mn_a = fmaxf(m_a[m], mx_a * sl2), mn_b = fmaxf(m_b[m], mx_b * sl2);
            const float base_a = mn_a == -INFINITY ? 0.f : mn_a, base_b = mn_b == -INFINITY ? 0.f : mn_b;
            const float al_a = ex2(m_a[m] - base_a), al_b = ex2(m_b[m] - base_b);
            m_a[m] = mn_a;
            m_b[m] = mn_b;
            float ps_a = 0.f, ps_b = 0.f;
#pragma unroll
            for (int j = 0; j < BC / 8; j++) {
#pragma unroll
                for (int e = 0; e < 2; e++) {
                    s[m][j][e] = ex2(fmaf(s[m][j][e], sl2, -base_a));
                    s[m][j][2 + e] = ex2(fmaf(s[m][j][2 + e], sl2, -base_b));
                    ps_a += s[m][j][e];
                    ps_b += s[m][j][2 + e];
                }
            }
            l_a[m] = l_a[m] * al_a + ps_a;
            l_b[m] = l_b[m] * al_b + ps_b;
#pragma unroll
            for (int d = 0; d < D / 8; d++) {
                o[m][d][0] *= al_a, o[m][d][1] *= al_a;
                o[m][d][2] *= al_b, o[m][d][3] *= al_b;
            }
#pragma unroll
            for (int kk = 0; kk < BC / 16; kk++) {
                pa[m][kk][0] = pack_h2(s[m][2 * kk][0], s[m][2 * kk][1]);
                pa[m][kk][1] = pack_h2(s[m][2 * kk][2], s[m][2 * kk][3]);
                pa[m][kk][2] = pack_h2(s[m][2 * kk + 1][0], s[m][2 * kk + 1][1]);
                pa[m][kk][3] = pack_h2(s[m][2 * kk + 1][2], s[m][2 * kk + 1][3]);
            }
        }
        /* o += P V */
#pragma unroll
        for (int kk = 0; kk < BC / 16; kk++) {
#pragma unroll
            for (int dp = 0; dp < D / 16; dp++) {
                uint32_t b[4];
                ldsm_x4_t(b, vd + (kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * S::VS + dp * 16 + (lane >> 4) * 8);
#pragma unroll
                for (int m = 0; m < MT; m++) {
                    mma16816(o[m][2 * dp], pa[m][kk], b[0], b[1]);
                    mma16816(o[m][2 * dp + 1], pa[m][kk], b[2], b[3]);
                }
            }
        }
    }
    cp_async_wait<0>();

    const int q_tiles = (rows + BR - 1) / BR; /* partials are indexed in tiles of BR = 64 rows */
#pragma unroll
    for (int m = 0; m < MT; m++) {
#pragma unroll
        for (int off = 1; off <= 2; off <<= 1) {
            l_a[m] += __shfl_xor_sync(0xffffffffu, l_a[m], off);
            l_b[m] += __shfl_xor_sync(0xffffffffu, l_b[m], off);
        }
#pragma unroll
        for (int half = 0; half < 2; half++) {
            const int rho = rho0 + 16 * m + 8 * half;
            if (!qwarp || rho >= rows) continue;
            const float l = half ? l_b[m] : l_a[m], mm = half ? m_b[m] : m_a[m];
            if (a.n_split == 1) {
                const float inv = l > 0.f ? 1.f / l : 0.f;
                __nv_bfloat16 *out = static_cast<__nv_bfloat16 *>(a.out) + (int64_t)(rho / G) * QW + (hk * G + rho % G) * D;
#pragma unroll
                for (int i = 0; i < D / 8; i++) {
                    const int d = i * 8 + (lane % 4) * 2;
                    *reinterpret_cast<__nv_bfloat162 *>(out + d) =
                        __floats2bfloat162_rn(o[m][i][2 * half] * inv, o[m][i][2 * half + 1] * inv);
                }
            } else {
                const int64_t pr = part_row(split, q_tiles, rho / BR, a.n_head_kv, hk, rho % BR);
                float *po = a.part_o + pr * D;
#pragma unroll
                for (int i = 0; i < D / 8; i++) {
                    const int d = i * 8 + (lane % 4) * 2;
                    *reinterpret_cast<float2 *>(po + d) = make_float2(o[m][i][2 * half], o[m][i][2 * half + 1]);
                }
                if (lane % 4 == 0) *reinterpret_cast<float2 *>(a.part_ml + pr * 2) = make_float2(mm, l);
            }
        }
    }
}

/* ---- WG kernel (sm_90a): the MMA kernel's blocks of 128 rows on wgmma ----
 *
 * One warpgroup (the block's 4 warps) holds two sets of 64 query rows; warp w owns
 * rows 16 w .. 16 w + 15 of each set (wgmma's accumulator layout is mma.sync's, warp
 * by warp, so the online softmax is the MMA kernel's). S = Q K^T reads Q and K^T from
 * shared memory as they lie: no-swizzle core matrices of 8 rows x 16 bytes, which is
 * how keys are stored (blocks of 8, [dim][8]); P V takes P from registers and V from
 * shared memory. Set 1's S is computed while set 0's softmax runs, set 0's P V while
 * set 1's runs. Two blocks a multiprocessor, two stages of K/V by cp.async.
 * Measured on the H200 (bench_gpu_ops, prefill 8192 causal, 32 heads of 128, same
 * call): 1844-1854 us, 296.6-298.1 TFLOP/s, against 2312-2317 us (237.3-237.8) for
 * the mma.sync kernel; prefill 2048 184-187 against 153. Tried and not kept: the next
 * tile's loads issued after S's wgmma instead of before (288 TFLOP/s). */

/* The wgmma helpers exist where the kernel's body does: sm_90a's device pass. */
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
__device__ __forceinline__ void wg_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wg_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N> __device__ __forceinline__ void wg_wait() { asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory"); }
/* Keeps the compiler from reading accumulators before the wgmma that writes them has completed. */
template <int N> __device__ __forceinline__ void reg_fence(float *r) {
#pragma unroll
    for (int i = 0; i < N; i++) asm volatile("" : "+f"(r[i])::"memory");
}
template <int N> __device__ __forceinline__ void reg_fence(uint32_t *r) {
#pragma unroll
    for (int i = 0; i < N; i++) asm volatile("" : "+r"(r[i])::"memory");
}
/* What cp.async (the generic proxy) wrote to shared memory becomes visible to wgmma (the async proxy). */
__device__ __forceinline__ void fence_async_smem() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }

/* A shared-memory matrix descriptor, no swizzle: lbo, sbo the byte distances between core
 * matrices along K and along M/N. */
__device__ __forceinline__ uint64_t wg_desc(const void *p, uint32_t lbo, uint32_t sbo) {
    return (uint64_t)((smem_addr(p) & 0x3FFFF) >> 4) | (uint64_t)(lbo >> 4) << 16 | (uint64_t)(sbo >> 4) << 32;
}

/* d (64 x 64, f32) = A B (+ d when acc): A 64 x 16 in shared memory (K-major), B 16 x 64 in
 * shared memory (N-major), both in the no-swizzle core-matrix layout their descriptors give. */
__device__ __forceinline__ void wg_ss_n64(float d[32], uint64_t da, uint64_t db, int acc) {
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, %32, %33, p, 1, 1, 0, 1;\n}\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
                 : "l"(da), "l"(db), "r"(acc));
}

/* d (64 x 64, f32) += A B: A 64 x 16 in registers (mma.sync's A fragment, each warp its 16 rows),
 * B 16 x 64 in shared memory (N-major). */
__device__ __forceinline__ void wg_rs_n64(float d[32], const uint32_t a[4], uint64_t db) {
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, {%32, %33, %34, %35}, %36, p, 1, 1, 1;\n}\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "r"(1));
}

/* d (64 x 128, f32) += A B: A 64 x 16 in registers (mma.sync's A fragment, each warp its 16 rows),
 * B 16 x 128 in shared memory (N-major). */
__device__ __forceinline__ void wg_rs_n128(float d[64], const uint32_t a[4], uint64_t db) {
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n128k16.f32.f16.f16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, {%64, %65, %66, %67}, %68, p, 1, 1, 1;\n}\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "r"(1));
}


/* o (64 x D) += P V for one set of 64 rows, keys 16 kk .. 16 kk + 15 */
template <int D> __device__ __forceinline__ void wg_pv(float *o, const uint32_t pa[4], uint64_t dv) {
    if constexpr (D == 128)
        wg_rs_n128(o, pa, dv);
    else
        wg_rs_n64(o, pa, dv);
}
#endif

constexpr int WG_ST = 2; /* stages: two blocks of ~100 KB a multiprocessor */

template <int D, int ST>
__global__ void __launch_bounds__(NW * 32, 2) attn_wg_kernel(pc_cu_attn_args a) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    grid_dep_launch();
    constexpr int MT = 2, QR = 64 * MT;
    using S = mma_smem<D, QR, ST, true>;
    extern __shared__ __align__(16) unsigned char smem[];
    tile_pipe<D, QR, ST, NW * 32, true> pipe(smem, a.tiles_cap);
    const int *const Ps = pipe.Ps, *const Vis = pipe.Vis;
    __shared__ int s_qmax, s_nv;

    const pc_cu_step *st = a.step;
    const int G = a.n_head / a.n_head_kv, rows = a.n * G;
    /* the last query tiles see the most keys (causal prefill): start them first */
    const int qtile = gridDim.x - 1 - blockIdx.x, hk = blockIdx.y, split = blockIdx.z;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int rho0 = qtile * QR + warp * 16 + lane / 4; /* row a of set m: rho0 + 64 m; row b: + 8 */
    int qp_a[MT], qp_b[MT], qmax = -1, qmin = INT32_MAX; /* qmin: the warp's smallest query position */
#pragma unroll
    for (int m = 0; m < MT; m++) {
        const int ra = rho0 + 64 * m, rb = ra + 8;
        qp_a[m] = ra < rows ? st->qpos[ra / G] : -1;
        qp_b[m] = rb < rows ? st->qpos[rb / G] : -1;
        qmax = max(qmax, max(qp_a[m], qp_b[m]));
        qmin = min(qmin, min(ra < rows ? qp_a[m] : INT32_MAX, rb < rows ? qp_b[m] : INT32_MAX));
    }
#pragma unroll
    for (int off = 1; off < 32; off <<= 1) qmin = min(qmin, __shfl_xor_sync(0xffffffffu, qmin, off));
    pipe.plan(a, split, hk, block_qmax(qmax, -1, &s_qmax), &s_nv);
    const int nv = pipe.nv;
    pipe.load_q(a, qtile * QR, hk);
    if (!pipe.early) pipe.prologue(a, hk);

    const float sl2 = a.scale * LOG2E;
    float m_a[MT], m_b[MT], l_a[MT], l_b[MT];
    float o[MT][D / 8][4];
#pragma unroll
    for (int m = 0; m < MT; m++) {
        m_a[m] = m_b[m] = -INFINITY, l_a[m] = l_b[m] = 0.f;
#pragma unroll
        for (int i = 0; i < D / 8; i++) o[m][i][0] = o[m][i][1] = o[m][i][2] = o[m][i][3] = 0.f;
    }
    /* Q: K-major, row groups D * 16 bytes apart (SBO), dim groups 128 (LBO); K^T: N-major, key
     * blocks D * 16 apart (SBO), dim groups 128 (LBO); V: N-major, dim groups 128 apart (SBO), key
     * groups D * 16 (LBO). Offsets are added in 16-byte units. */
    const uint64_t dq = wg_desc(pipe.Qs, 128, D * 16);
    const uint64_t dk0 = wg_desc(pipe.Ks, 128, D * 16);
    const uint64_t dv0 = wg_desc(pipe.Vs, D * 16, 128);

    for (int i = 0; i < nv; i++) {
        /* groups: Q, then tiles 0..i+ST-2 (or, early, the prologue's tiles before Q): tile i (and Q) have landed */
        if (pipe.early && i == 0)
            cp_async_wait<0>();
        else
            cp_async_wait<ST - 2>();
        fence_async_smem();
        __syncthreads(); /* ... for every thread, and stage (i - 1) % ST is free again (its wgmma waited for) */
        if (i + ST - 1 < nv) pipe.load_tile(a, hk, Vis[i + ST - 1], (i + ST - 1) % ST);
        cp_async_commit();
        const int stage = i % ST;
        const uint64_t dk = dk0 + ((stage * S::k_bytes) >> 4), dv = dv0 + ((stage * S::v_bytes) >> 4);
        const int *pd = Ps + stage * BC;
        /* does any key of the tile lie after one of the warp's queries? */
        const bool masked = __any_sync(0xffffffffu, max(pd[lane], pd[lane + 32]) > qmin);
        float s[MT][BC / 8][4];
        wg_fence();
#pragma unroll
        for (int m = 0; m < MT; m++) {
#pragma unroll
            for (int kk = 0; kk < D / 16; kk++)
                wg_ss_n64(&s[m][0][0], dq + ((m * D * 128 + kk * 256) >> 4), dk + ((kk * 256) >> 4), kk);
            wg_commit();
        }
        uint32_t pa[MT][BC / 16][4];
        wg_wait<1>();
        reg_fence<BC / 2>(&s[0][0][0]);
        online_softmax<D>(s[0], pa[0], o[0], m_a[0], m_b[0], l_a[0], l_b[0], qp_a[0], qp_b[0], masked, pd, sl2, lane);
        /* set 0's softmax done before waiting for set 1's S (else the compiler sinks part of it
         * past the wait; measured neutral: 297.4 / 298.1 TFLOP/s against 296.6 / 297.1) */
        reg_fence<D / 2>(&o[0][0][0]);
        reg_fence<BC / 4>(&pa[0][0][0]);
        wg_wait<0>();
        reg_fence<BC / 2>(&s[1][0][0]);
#pragma unroll
        for (int m = 0; m < MT; m++) {
            if (m > 0)
                online_softmax<D>(s[m], pa[m], o[m], m_a[m], m_b[m], l_a[m], l_b[m], qp_a[m], qp_b[m], masked, pd, sl2, lane);
            wg_fence();
#pragma unroll
            for (int kk = 0; kk < BC / 16; kk++) wg_pv<D>(&o[m][0][0], pa[m][kk], dv + ((kk * D * 32) >> 4));
            wg_commit();
        }
        wg_wait<0>();
#pragma unroll
        for (int m = 0; m < MT; m++) reg_fence<D / 2>(&o[m][0][0]);
    }
    cp_async_wait<0>();
    store_rows<D, MT, 64>(a, o, m_a, m_b, l_a, l_b, rho0, rows, hk, split, lane);
#endif
}

/* ---- FEWQ kernel: at most 16 RG <= 32 query rows (cached prompts' fresh suffixes) ----
 *
 * With 32 rows the MMA kernel's 64-row blocks compute half on padding. Here the four
 * key groups of a tile (16 keys each) go to four warps, so RG x 4 warps share one
 * set of query rows; a block is alone on its multiprocessor. Each warp keeps its own
 * running (max, sum, o) over its key group; the block merges the four by log-sum-exp
 * at the end, in a fixed order.
 * Loading is decoupled from compute: FEWQ_LW more warps issue each tile's 16-byte
 * cp.async (its 8 key blocks as stored: kv.h's [dim][8] blocks are already a
 * conflict-free layout for ldmatrix.trans; 64 value rows into padded rows; the key
 * positions), and each stage completes on its own mbarrier ("full", which every loader
 * thread's cp.async.mbarrier.arrive counts on); the loaders refill a stage once every
 * compute thread has arrived on its "empty" barrier, so no block-wide barrier paces
 * the loop and all FEWQ_ST stages stay in flight. Measured on the H200 (bench_gpu_ops,
 * 32 rows over 8192 keys, back to back): 50.5 us against 61.5 for the version before
 * (the block's 256 threads loading, a __syncthreads a tile: K/V at 2.2 TB/s, 2.6 at
 * 32k keys, 3.4-3.5 now); in the whole cached 8192 + 32 prompt 6.75 ms against 7.14.
 * Tried and not kept: the tiles by bulk copies (cp.async.bulk, one loader warp): 103
 * us, the 64 value rows of 256 B each being one copy-engine request (session 8, 2026-12-01). */
constexpr int KG = 4; /* key groups of a tile: warps sharing one set of query rows */

/* ---- mbarriers ---- */

__device__ __forceinline__ void mbar_init(uint64_t *bar, int count) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(smem_addr(bar)), "r"(count) : "memory");
}
__device__ __forceinline__ void mbar_arrive(uint64_t *bar) {
    asm volatile("{\n.reg .b64 st;\nmbarrier.arrive.shared::cta.b64 st, [%0];\n}\n" ::"r"(smem_addr(bar)) : "memory");
}
/* Waits for the completion of the barrier's phase of this parity. */
__device__ __forceinline__ void mbar_wait(uint64_t *bar, uint32_t parity) {
    uint32_t done;
    do {
        asm volatile("{\n.reg .pred p;\nmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\nselp.u32 %0, 1, 0, p;\n}\n"
                     : "=r"(done)
                     : "r"(smem_addr(bar)), "r"(parity)
                     : "memory");
    } while (!done);
}
/* Shared memory of the FEWQ kernel: QR query rows, then ST stages of K (as stored),
 * V (rows padded) and key positions, then the split's tile metadata. */
template <int D, int QR, int ST> struct fewq_smem {
    static constexpr int QS = D + 8; /* row strides (halves), padded so ldmatrix rows hit distinct banks */
    static constexpr int VS = D + 8;
    static constexpr size_t q_bytes = (size_t)QR * QS * 2;
    static constexpr size_t k_bytes = (size_t)D * BC * 2;  /* one stage: [BC / KB][D][KB] */
    static constexpr size_t v_bytes = (size_t)BC * VS * 2; /* one stage: [BC][VS] */
    static constexpr size_t fixed = q_bytes + ST * (k_bytes + v_bytes + BC * sizeof(int));
};

/* The loader threads' (lt of NL) requests for the split's tile into one stage (kd,
 * vd, pd): 16-byte cp.async (zeros past the tile's end: their probabilities are 0, but
 * 0 x NaN is not), each thread's completion counted on bar (NL arrivals a phase). */
template <int D, int NL>
__device__ __forceinline__ void fewq_load(const pc_cu_attn_args &a, int hk, int tile, const pc_cu_tile &tl,
                                          const pc_cu_span_layer &sl, __half *kd, __half *vd, int *pd, uint64_t *bar,
                                          int lt) {
    constexpr int VS = D + 8, KC = BC * D / 8; /* 16-byte chunks of K (and of V) a tile */
    const int DA = a.n_head_kv * D, nblk = (tl.n + KB - 1) / KB;
    const __half *kb = static_cast<const __half *>(sl.k) + ((int64_t)(tl.row0 / KB) * DA + hk * D) * KB;
    const __half *vb = static_cast<const __half *>(sl.v) + (int64_t)tl.row0 * DA + hk * D;
#pragma unroll 4
    for (int c = lt; c < KC; c += NL) { /* key block j = c / D as stored: [D][KB] */
        const int j = c / D;
        const bool ok = j < nblk;
        cp_async16(kd + c * 8, ok ? kb + (int64_t)j * DA * KB + (c % D) * 8 : kb, ok);
    }
#pragma unroll 4
    for (int c = lt; c < KC; c += NL) {
        const int r = c / (D / 8), cc = c % (D / 8);
        const bool ok = r < tl.n;
        cp_async16(vd + r * VS + cc * 8, ok ? vb + (int64_t)r * DA + cc * 8 : vb, ok);
    }
    if (lt < BC / 4) cp_async16(pd + lt * 4, a.step->kpos + (int64_t)tile * BC + lt * 4, true);
    asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];\n" ::"r"(smem_addr(bar)) : "memory");
}

/* The FEWQ block's end: the KG warps of each row group hold (max, sum, o) over
 * their key groups; merged by log-sum-exp in key-group order through shared memory
 * (ow: the stage buffers, free once every warp is past the loop), then written out
 * normalized (one split) or as the split's partial. The loader warp (!active) only
 * takes part in the barriers. */
template <int D, int RG>
__device__ __forceinline__ void fewq_merge(const pc_cu_attn_args &a, bool active, float o[D / 8][4], float m_a, float m_b,
                                           float l_a, float l_b, float *ow, float (*s_ml)[16][2]) {
    constexpr int NT = RG * KG * 32;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, rg = warp / KG;
    const int G = a.n_head / a.n_head_kv, rows = a.n * G, QW = a.n_head * D, hk = blockIdx.y, split = blockIdx.z;
    if (active && lane % 4 == 0) {
        s_ml[warp][lane / 4][0] = m_a, s_ml[warp][lane / 4][1] = l_a;
        s_ml[warp][lane / 4 + 8][0] = m_b, s_ml[warp][lane / 4 + 8][1] = l_b;
    }
    __syncthreads();
#pragma unroll
    for (int half = 0; half < 2 && active; half++) {
        const int r = lane / 4 + 8 * half;
        float M = -INFINITY;
#pragma unroll
        for (int g = 0; g < KG; g++) M = fmaxf(M, s_ml[rg * KG + g][r][0]);
        const float f = ex2((half ? m_b : m_a) - (M == -INFINITY ? 0.f : M));
        float *dst = ow + ((int64_t)warp * 16 + r) * D;
#pragma unroll
        for (int i = 0; i < D / 8; i++)
            *reinterpret_cast<float2 *>(dst + i * 8 + (lane % 4) * 2) = make_float2(o[i][2 * half] * f, o[i][2 * half + 1] * f);
    }
    __syncthreads();
    for (int idx = threadIdx.x; active && idx < RG * 16 * D; idx += NT) {
        const int rho = idx / D, d = idx % D, g0 = (rho / 16) * KG, r = rho % 16;
        if (rho >= rows) continue;
        float M = -INFINITY;
#pragma unroll
        for (int g = 0; g < KG; g++) M = fmaxf(M, s_ml[g0 + g][r][0]);
        const float base = M == -INFINITY ? 0.f : M;
        float L = 0.f, O = 0.f;
#pragma unroll
        for (int g = 0; g < KG; g++) {
            L += ex2(s_ml[g0 + g][r][0] - base) * s_ml[g0 + g][r][1];
            O += ow[((int64_t)(g0 + g) * 16 + r) * D + d];
        }
        if (a.n_split == 1) {
            __nv_bfloat16 *out = static_cast<__nv_bfloat16 *>(a.out) + (int64_t)(rho / G) * QW + (hk * G + rho % G) * D;
            out[d] = __float2bfloat16_rn(L > 0.f ? O / L : 0.f);
        } else {
            const int64_t pr = part_row(split, 1, 0, a.n_head_kv, hk, rho);
            a.part_o[pr * D + d] = O;
            if (d == 0) *reinterpret_cast<float2 *>(a.part_ml + pr * 2) = make_float2(M, L);
        }
    }
}

/* One row group's warp (kg: its 16 keys of each tile) over the split's visible
 * tiles: scores, the running max and sum, o += P V; each stage handed back to the
 * loader once read. */
template <int D, int ST>
__device__ __forceinline__ void fewq_consume(const pc_cu_attn_args &a, int nv, const __half *Qs, const __half *Ks,
                                             const __half *Vs, const int *Ps, uint64_t *full, uint64_t *empty, int rg,
                                             int kg, int qp_a, int qp_b, float o[D / 8][4], float *m_a, float *m_b,
                                             float *l_a, float *l_b) {
    using S = fewq_smem<D, 16, ST>;
    const int lane = threadIdx.x % 32;
    const float sl2 = a.scale * LOG2E;
    uint32_t qf[D / 16][4];
#pragma unroll
    for (int kk = 0; kk < D / 16; kk++) ldsm_x4(qf[kk], Qs + (rg * 16 + lane % 16) * S::QS + kk * 16 + (lane / 16) * 8);
    for (int i = 0; i < nv; i++) {
        const int stage = i % ST;
        mbar_wait(&full[stage], (uint32_t)(i / ST) & 1);
        const __half *kd = Ks + stage * (S::k_bytes / 2);
        const __half *vd = Vs + stage * (S::v_bytes / 2);
        const int *pd = Ps + stage * BC + kg * 16;
        float s[2][4] = {{0.f, 0.f, 0.f, 0.f}, {0.f, 0.f, 0.f, 0.f}};
#pragma unroll
        for (int kk = 0; kk < D / 16; kk++) {
            uint32_t b[4]; /* key blocks 2 kg and 2 kg + 1, dims kk * 16 .. + 16 */
            ldsm_x4_t(b, kd + (kg * 2 + (lane >> 4)) * (D * KB) + (kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * KB);
            mma16816(s[0], qf[kk], b[0], b[1]);
            mma16816(s[1], qf[kk], b[2], b[3]);
        }
        float mx_a = -INFINITY, mx_b = -INFINITY;
#pragma unroll
        for (int j = 0; j < 2; j++) {
#pragma unroll
            for (int e = 0; e < 2; e++) {
                const int kp = pd[j * 8 + (lane % 4) * 2 + e];
                s[j][e] = kp <= qp_a ? s[j][e] * sl2 : -INFINITY;
                s[j][2 + e] = kp <= qp_b ? s[j][2 + e] * sl2 : -INFINITY;
                mx_a = fmaxf(mx_a, s[j][e]);
                mx_b = fmaxf(mx_b, s[j][2 + e]);
            }
        }
#pragma unroll
        for (int off = 1; off <= 2; off <<= 1) {
            mx_a = fmaxf(mx_a, __shfl_xor_sync(0xffffffffu, mx_a, off));
            mx_b = fmaxf(mx_b, __shfl_xor_sync(0xffffffffu, mx_b, off));
        }
        const float mn_a = fmaxf(*m_a, mx_a), mn_b = fmaxf(*m_b, mx_b);
        const float base_a = mn_a == -INFINITY ? 0.f : mn_a, base_b = mn_b == -INFINITY ? 0.f : mn_b;
        const float al_a = ex2(*m_a - base_a), al_b = ex2(*m_b - base_b);
        *m_a = mn_a;
        *m_b = mn_b;
        float ps_a = 0.f, ps_b = 0.f;
#pragma unroll
        for (int j = 0; j < 2; j++) {
#pragma unroll
            for (int e = 0; e < 2; e++) {
                s[j][e] = ex2(s[j][e] - base_a);
                s[j][2 + e] = ex2(s[j][2 + e] - base_b);
                ps_a += s[j][e];
                ps_b += s[j][2 + e];
            }
        }
        *l_a = *l_a * al_a + ps_a;
        *l_b = *l_b * al_b + ps_b;
#pragma unroll
        for (int d = 0; d < D / 8; d++) {
            o[d][0] *= al_a, o[d][1] *= al_a;
            o[d][2] *= al_b, o[d][3] *= al_b;
        }
        const uint32_t pa[4] = {pack_h2(s[0][0], s[0][1]), pack_h2(s[0][2], s[0][3]), pack_h2(s[1][0], s[1][1]),
                                pack_h2(s[1][2], s[1][3])};
#pragma unroll
        for (int dp = 0; dp < D / 16; dp++) {
            uint32_t b[4];
            ldsm_x4_t(b, vd + (kg * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * S::VS + dp * 16 + (lane >> 4) * 8);
            mma16816(o[2 * dp], pa, b[0], b[1]);
            mma16816(o[2 * dp + 1], pa, b[2], b[3]);
        }
        mbar_arrive(&empty[stage]); /* every thread: an arrival orders only its own reads */
    }
#pragma unroll
    for (int off = 1; off <= 2; off <<= 1) {
        *l_a += __shfl_xor_sync(0xffffffffu, *l_a, off);
        *l_b += __shfl_xor_sync(0xffffffffu, *l_b, off);
    }
}

/* RG x KG compute warps, then NLW loader warps. */
template <int D, int RG, int ST, int NLW>
__global__ void __launch_bounds__((RG * KG + NLW) * 32, 1) attn_fewq_kernel(pc_cu_attn_args a) {
    grid_dep_launch();
    constexpr int QR = 16 * RG, NC = RG * KG * 32, NL = NLW * 32; /* compute and loader threads */
    using S = fewq_smem<D, QR, ST>;
    extern __shared__ __align__(16) unsigned char smem[];
    __half *const Qs = reinterpret_cast<__half *>(smem);
    __half *const Ks = reinterpret_cast<__half *>(smem + S::q_bytes);
    __half *const Vs = reinterpret_cast<__half *>(smem + S::q_bytes + ST * S::k_bytes);
    int *const Ps = reinterpret_cast<int *>(smem + S::q_bytes + ST * (S::k_bytes + S::v_bytes));
    pc_cu_tile *const Mt = reinterpret_cast<pc_cu_tile *>(smem + S::fixed);
    pc_cu_span_layer *const Ms = reinterpret_cast<pc_cu_span_layer *>(smem + S::fixed + (size_t)a.tiles_cap * sizeof(pc_cu_tile));
    int *const Vis = reinterpret_cast<int *>(smem + S::fixed + (size_t)a.tiles_cap * (sizeof(pc_cu_tile) + sizeof(pc_cu_span_layer)));
    __shared__ __align__(8) uint64_t full[ST], empty[ST];
    __shared__ int s_qmax, s_nv;
    __shared__ float s_ml[RG * KG][16][2];

    const pc_cu_step *st = a.step;
    const int G = a.n_head / a.n_head_kv, rows = a.n * G;
    const int hk = blockIdx.y, split = blockIdx.z;
    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, kg = warp % KG, rg = warp / KG;
    const bool loader = warp >= RG * KG;
    const int lt = tid - NC;

    if (tid == 0) {
        for (int s = 0; s < ST; s++) mbar_init(&full[s], NL), mbar_init(&empty[s], NC);
    }
    const int ra = rg * 16 + lane / 4, rb = ra + 8;
    const int qp_a = !loader && ra < rows ? st->qpos[ra / G] : -1;
    const int qp_b = !loader && rb < rows ? st->qpos[rb / G] : -1;
    const int qmax = block_qmax(qp_a, qp_b, &s_qmax); /* its barriers also publish the mbarriers */
    int t0, t1;
    split_range(st->n_tiles, split, a.n_split, &t0, &t1);
    if (t1 - t0 > a.tiles_cap) t1 = t0 + a.tiles_cap; /* the launcher sized tiles_cap; never hit */
    load_meta(st, st->spans + (int64_t)a.layer * st->n_spans, t0, t1, Mt, Ms);
    const int nv = list_visible(Mt, t1 - t0, qmax, Vis, &s_nv);

    const int DS = S::k_bytes / 2, VSZ = S::v_bytes / 2;
    if (loader) {
        /* no kernel of this step writes the keys and values of a span other than the one
         * being written: when the first ST tiles all lie elsewhere, they are requested
         * before waiting for the kernel before (PDL) */
        const __half *dk = static_cast<const __half *>(st->dst_k) + (int64_t)a.layer * st->dst_layer_stride;
        bool early = true;
        for (int s = 0; s < ST && s < nv; s++) early = early && Ms[Vis[s]].k != dk;
        if (!early) grid_dep_wait();
        for (int i = 0; i < ST && i < nv; i++)
            fewq_load<D, NL>(a, hk, t0 + Vis[i], Mt[Vis[i]], Ms[Vis[i]], Ks + i * DS, Vs + i * VSZ, Ps + i * BC, &full[i], lt);
        if (early) grid_dep_wait();
    } else {
        grid_dep_wait(); /* the queries come from the kernel before */
        const int QW = a.n_head * D;
        const __half *q16 = static_cast<const __half *>(a.q16);
        for (int c = tid; c < QR * (D / 8); c += NC) {
            const int r = c / (D / 8), cc = c % (D / 8);
            const bool ok = r < rows;
            const __half *src = ok ? q16 + (int64_t)(r / G) * QW + (hk * G + r % G) * D + cc * 8 : q16;
            cp_async16(Qs + r * S::QS + cc * 8, src, ok);
        }
        cp_async_commit();
        cp_async_wait<0>();
    }
    __syncthreads(); /* the queries are in shared memory */

    float m_a = -INFINITY, m_b = -INFINITY, l_a = 0.f, l_b = 0.f;
    float o[D / 8][4];
#pragma unroll
    for (int i = 0; i < D / 8; i++) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.f;
    if (loader) {
        for (int i = ST; i < nv; i++) {
            const int s = i % ST;
            mbar_wait(&empty[s], (uint32_t)(i / ST - 1) & 1); /* every compute warp is done with tile i - ST */
            fewq_load<D, NL>(a, hk, t0 + Vis[i], Mt[Vis[i]], Ms[Vis[i]], Ks + s * DS, Vs + s * VSZ, Ps + s * BC, &full[s], lt);
        }
    } else {
        fewq_consume<D, ST>(a, nv, Qs, Ks, Vs, Ps, full, empty, rg, kg, qp_a, qp_b, o, &m_a, &m_b, &l_a, &l_b);
    }
    fewq_merge<D, RG>(a, !loader, o, m_a, m_b, l_a, l_b, reinterpret_cast<float *>(smem + S::q_bytes), s_ml);
}

/* ---- VEC kernel: R <= 8 rows of one KV head, a warp per key block of 8 ---- */

/* Lane l ends holding the sum over all lanes of v[key(l)], key(l) = 4 b4 + 2 b3 + b2
 * with bk bit k of l: three halving exchanges, then a sum over the last two bits. */
__device__ __forceinline__ float reduce_scatter8(float v[8], int lane) {
    const bool u16 = lane & 16, u8 = lane & 8, u4 = lane & 4;
    float w4[4], w2[2];
#pragma unroll
    for (int j = 0; j < 4; j++) {
        const float send = u16 ? v[j] : v[j + 4], keep = u16 ? v[j + 4] : v[j];
        w4[j] = keep + __shfl_xor_sync(0xffffffffu, send, 16);
    }
#pragma unroll
    for (int j = 0; j < 2; j++) {
        const float send = u8 ? w4[j] : w4[j + 2], keep = u8 ? w4[j + 2] : w4[j];
        w2[j] = keep + __shfl_xor_sync(0xffffffffu, send, 8);
    }
    const float send = u4 ? w2[0] : w2[1], keep = u4 ? w2[1] : w2[0];
    float r = keep + __shfl_xor_sync(0xffffffffu, send, 4);
    r += __shfl_xor_sync(0xffffffffu, r, 2);
    r += __shfl_xor_sync(0xffffffffu, r, 1);
    return r;
}

__device__ __forceinline__ int key_of_lane(int lane) { return ((lane >> 4) & 1) * 4 + ((lane >> 3) & 1) * 2 + ((lane >> 2) & 1); }
__device__ __forceinline__ int lane_of_key(int k) { return ((k >> 2) & 1) * 16 + ((k >> 1) & 1) * 8 + (k & 1) * 4; }

/* DL consecutive f16 (DL = 2 or 4: one 4- or 8-byte load), raw; zeros when !ok. */
template <int DL> __device__ __forceinline__ uint2 load_vraw(const __half *p, bool ok) {
    if (!ok) return make_uint2(0, 0);
    if (DL == 4) return *reinterpret_cast<const uint2 *>(p);
    return make_uint2(*reinterpret_cast<const uint32_t *>(p), 0);
}

template <int DL> __device__ __forceinline__ void cvt_v(uint2 u, float out[DL]) {
    const float2 a = __half22float2(*reinterpret_cast<const __half2 *>(&u.x));
    out[0] = a.x, out[1] = a.y;
    if (DL == 4) {
        const float2 b = __half22float2(*reinterpret_cast<const __half2 *>(&u.y));
        out[DL > 2 ? 2 : 0] = b.x, out[DL > 3 ? 3 : 1] = b.y;
    }
}

template <int D, int R>
__global__ void __launch_bounds__(NW * 32) attn_vec_kernel(pc_cu_attn_args a) {
    grid_dep_launch();
    constexpr int DL = D / 32; /* dims per lane */
    __shared__ float sm_m[NW][R], sm_l[NW][R], sm_o[NW][R][D];
    extern __shared__ __align__(16) unsigned char vsmem[];
    pc_cu_tile *Mt = reinterpret_cast<pc_cu_tile *>(vsmem);
    pc_cu_span_layer *Ms = reinterpret_cast<pc_cu_span_layer *>(vsmem + (size_t)a.tiles_cap * sizeof(pc_cu_tile));
    const pc_cu_step *st = a.step;
    const int G = a.n_head / a.n_head_kv, rows = a.n * G, DA = a.n_head_kv * D, QW = a.n_head * D;
    const int hk = blockIdx.y, split = blockIdx.z, warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const __half *q16 = static_cast<const __half *>(a.q16);

    int qp[R];
    int qmax = -1;
#pragma unroll
    for (int r = 0; r < R; r++) {
        qp[r] = r < rows ? st->qpos[r / G] : -1;
        qmax = max(qmax, qp[r]);
    }
    float m[R], l[R], acc[R][DL];
#pragma unroll
    for (int r = 0; r < R; r++) {
        m[r] = -INFINITY, l[r] = 0.f;
#pragma unroll
        for (int i = 0; i < DL; i++) acc[r][i] = 0.f;
    }

    int t0, t1;
    split_range(st->n_tiles, split, a.n_split, &t0, &t1);
    if (t1 - t0 > a.tiles_cap) t1 = t0 + a.tiles_cap; /* the launcher sized tiles_cap; never hit */
    const int nt = t1 - t0;
    load_meta(st, st->spans + (int64_t)a.layer * st->n_spans, t0, t1, Mt, Ms);
    grid_dep_wait();
    /* q[r][i]: dim lane + 32 i (matches the key block's per-lane dims) */
    float q[R][DL];
#pragma unroll
    for (int r = 0; r < R; r++) {
        const __half *src = q16 + (int64_t)(r / G) * QW + (hk * G + r % G) * D;
#pragma unroll
        for (int i = 0; i < DL; i++) q[r][i] = r < rows ? __half2float(src[lane + 32 * i]) : 0.f;
    }
    const int my_key = key_of_lane(lane);
    for (int ti = next_visible_s(Mt, 0, nt, qmax); ti < nt; ti = next_visible_s(Mt, ti + 1, nt, qmax)) {
        const pc_cu_tile tl = Mt[ti];
        const pc_cu_span_layer sl = Ms[ti];
        const int nblk = (tl.n + KB - 1) / KB;
        /* a tile has at most 8 key blocks: this warp's are warp and warp + 4; load both, then use them */
        uint4 kv[2][DL];
        uint2 vr[2][KB];
        int kp[2];
#pragma unroll
        for (int h = 0; h < 2; h++) {
            const int j = warp + NW * h;
            if (j >= nblk) continue;
            const int r0 = tl.row0 + j * KB;
            const __half *kb = static_cast<const __half *>(sl.k) + ((int64_t)(r0 / KB) * DA + hk * D) * KB;
            const __half *vb = static_cast<const __half *>(sl.v) + (int64_t)r0 * DA + hk * D + lane * DL;
#pragma unroll
            for (int i = 0; i < DL; i++) kv[h][i] = *reinterpret_cast<const uint4 *>(kb + (lane + 32 * i) * KB);
#pragma unroll
            for (int k = 0; k < KB; k++) vr[h][k] = load_vraw<DL>(vb + (int64_t)k * DA, j * KB + k < tl.n);
            kp[h] = st->kpos[(int64_t)(t0 + ti) * BC + j * KB + my_key];
        }
#pragma unroll
        for (int h = 0; h < 2; h++) {
            const int j = warp + NW * h;
            if (j >= nblk) continue;
            float vv[KB][DL];
#pragma unroll
            for (int k = 0; k < KB; k++) cvt_v<DL>(vr[h][k], vv[k]);
#pragma unroll
            for (int r = 0; r < R; r++) {
                float part[KB];
#pragma unroll
                for (int k = 0; k < KB; k++) part[k] = 0.f;
#pragma unroll
                for (int i = 0; i < DL; i++) {
                    const __half *kh = reinterpret_cast<const __half *>(&kv[h][i]);
#pragma unroll
                    for (int k = 0; k < KB; k++) part[k] = fmaf(q[r][i], __half2float(kh[k]), part[k]);
                }
                float sc = reduce_scatter8(part, lane) * (a.scale * LOG2E);
                sc = kp[h] <= qp[r] ? sc : -INFINITY;
                float bm = sc;
                bm = fmaxf(bm, __shfl_xor_sync(0xffffffffu, bm, 4));
                bm = fmaxf(bm, __shfl_xor_sync(0xffffffffu, bm, 8));
                bm = fmaxf(bm, __shfl_xor_sync(0xffffffffu, bm, 16));
                const float mn = fmaxf(m[r], bm), base = mn == -INFINITY ? 0.f : mn;
                const float al = exp2f(m[r] - base);
                const float p = __half2float(__float2half_rn(exp2f(sc - base)));
                m[r] = mn;
                l[r] = l[r] * al + ((lane & 3) == 0 ? p : 0.f);
#pragma unroll
                for (int i = 0; i < DL; i++) acc[r][i] *= al;
#pragma unroll
                for (int k = 0; k < KB; k++) {
                    const float pk = __shfl_sync(0xffffffffu, p, lane_of_key(k));
#pragma unroll
                    for (int i = 0; i < DL; i++) acc[r][i] = fmaf(pk, vv[k][i], acc[r][i]);
                }
            }
        }
    }
    /* merge the warps, then write this split's partial */
#pragma unroll
    for (int r = 0; r < R; r++) {
#pragma unroll
        for (int off = 16; off > 0; off >>= 1) l[r] += __shfl_xor_sync(0xffffffffu, l[r], off);
        if (lane == 0) sm_m[warp][r] = m[r], sm_l[warp][r] = l[r];
#pragma unroll
        for (int i = 0; i < DL; i++) sm_o[warp][r][lane * DL + i] = acc[r][i];
    }
    __syncthreads();
    for (int idx = threadIdx.x; idx < R * D; idx += NW * 32) {
        const int r = idx / D, d = idx % D;
        if (r >= rows) continue;
        float M = -INFINITY;
        for (int w = 0; w < NW; w++) M = fmaxf(M, sm_m[w][r]);
        const float base = M == -INFINITY ? 0.f : M;
        float L = 0.f, O = 0.f;
        for (int w = 0; w < NW; w++) {
            const float f = exp2f(sm_m[w][r] - base);
            L += f * sm_l[w][r];
            O += f * sm_o[w][r][d];
        }
        const int64_t pr = part_row(split, 1, 0, a.n_head_kv, hk, r);
        a.part_o[pr * D + d] = O;
        if (d == 0) *reinterpret_cast<float2 *>(a.part_ml + pr * 2) = make_float2(M, L);
    }
}

/* ---- merge of split partials: a warp per (row, KV head) ---- */

template <int D>
__global__ void combine_kernel(pc_cu_attn_args a, int q_tiles) {
    const int G = a.n_head / a.n_head_kv, rows = a.n * G, QW = a.n_head * D;
    const int rho = blockIdx.x * NW + threadIdx.x / 32, hk = blockIdx.y, lane = threadIdx.x % 32;
    grid_dep_launch(); /* the product after attention may start: it waits for this grid */
    grid_dep_wait();   /* the partials come from the attention kernel */
    if (rho >= rows) return;
    const int qtile = rho / BR, r = rho % BR;
    float M = -INFINITY;
    for (int s = 0; s < a.n_split; s++) M = fmaxf(M, a.part_ml[part_row(s, q_tiles, qtile, a.n_head_kv, hk, r) * 2]);
    const float base = M == -INFINITY ? 0.f : M;
    float L = 0.f, o[D / 32];
#pragma unroll
    for (int i = 0; i < D / 32; i++) o[i] = 0.f;
    for (int s = 0; s < a.n_split; s++) {
        const int64_t pr = part_row(s, q_tiles, qtile, a.n_head_kv, hk, r);
        const float f = exp2f(a.part_ml[pr * 2] - base);
        L += f * a.part_ml[pr * 2 + 1];
#pragma unroll
        for (int i = 0; i < D / 32; i++) o[i] += f * a.part_o[pr * D + lane + 32 * i];
    }
    const float inv = L > 0.f ? 1.f / L : 0.f;
    __nv_bfloat16 *out = static_cast<__nv_bfloat16 *>(a.out) + (int64_t)(rho / G) * QW + (hk * G + rho % G) * D;
#pragma unroll
    for (int i = 0; i < D / 32; i++) out[lane + 32 * i] = __float2bfloat16_rn(o[i] * inv);
}

using pcl::launch_dependent;

/* FEWQ: stages of 34 KB (all four in flight while the compute warps wait: six were no
 * faster), and loader warps (two: 69 us at 32 over 8192 keys, four 51, eight 51 with
 * spills; H200, bench_gpu_ops) */
constexpr int FEWQ_ST = 4;
constexpr int FEWQ_LW = 4;
constexpr int MAX_DYN_SMEM = 200 * 1024; /* the kernels' opt-in limit; the H100/H200 allow 227 KB */
constexpr int FEWQ_MAX_SMEM = 220 * 1024; /* FEWQ's: one block a multiprocessor, beside ~1 KB of static */
/* MMA blocks of 128 rows (MT = 2) above this many rows, of 64 below */
constexpr int MMA_MT2_ROWS = 128;

template <int D> cudaError_t allow_smem() {
    cudaError_t e = cudaFuncSetAttribute(attn_mma_kernel<D, 4, 1, 2>, cudaFuncAttributeMaxDynamicSharedMemorySize, MAX_DYN_SMEM);
    if (e == cudaSuccess)
        e = cudaFuncSetAttribute(attn_mma_kernel<D, 4, 2, 2>, cudaFuncAttributeMaxDynamicSharedMemorySize, MAX_DYN_SMEM);
    if (e == cudaSuccess)
        e = cudaFuncSetAttribute(attn_wg_kernel<D, WG_ST>, cudaFuncAttributeMaxDynamicSharedMemorySize, MAX_DYN_SMEM);
    const void *vec[] = {(const void *)attn_vec_kernel<D, 1>, (const void *)attn_vec_kernel<D, 2>,
                         (const void *)attn_vec_kernel<D, 4>, (const void *)attn_vec_kernel<D, 8>};
    for (int i = 0; i < 4 && e == cudaSuccess; i++)
        e = cudaFuncSetAttribute(vec[i], cudaFuncAttributeMaxDynamicSharedMemorySize, 64 * 1024);
    const void *fewq[] = {(const void *)attn_fewq_kernel<D, 1, FEWQ_ST, FEWQ_LW>,
                          (const void *)attn_fewq_kernel<D, 2, FEWQ_ST, FEWQ_LW>};
    for (int i = 0; i < 2 && e == cudaSuccess; i++)
        e = cudaFuncSetAttribute(fewq[i], cudaFuncAttributeMaxDynamicSharedMemorySize, FEWQ_MAX_SMEM);
    return e;
}

template <int D, int QWARPS, int MT, int ST>
cudaError_t launch_mma_cfg(const pc_cu_attn_args *a, int rows, cudaStream_t s) {
    constexpr int QR = 16 * QWARPS * MT;
    const size_t smem = mma_smem<D, QR, ST>::fixed + meta_bytes(a->tiles_cap);
    if (smem > (size_t)MAX_DYN_SMEM) return cudaErrorInvalidValue;
    const int q_blocks = (rows + QR - 1) / QR;
    return launch_dependent(attn_mma_kernel<D, QWARPS, MT, ST>, dim3(q_blocks, a->n_head_kv, a->n_split), NW * 32, smem, s,
                            *a);
}

/* wgmma is in sm_90a's machine code alone: elsewhere (the compute_90 PTX a newer GPU
 * compiles) attn_wg_kernel is empty. */
bool has_wgmma() {
    int dev = 0, major = 0, minor = 0;
    return cudaGetDevice(&dev) == cudaSuccess &&
           cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) == cudaSuccess &&
           cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev) == cudaSuccess && major == 9 && minor == 0;
}

template <int D> cudaError_t launch_wg(const pc_cu_attn_args *a, int rows, cudaStream_t s) {
    const size_t smem = mma_smem<D, 128, WG_ST, true>::fixed + meta_bytes(a->tiles_cap);
    if (smem > (size_t)MAX_DYN_SMEM) return cudaErrorInvalidValue;
    return launch_dependent(attn_wg_kernel<D, WG_ST>, dim3((rows + 127) / 128, a->n_head_kv, a->n_split), NW * 32, smem, s, *a);
}

/* Above 128 rows the wgmma kernel on Hopper, else mma.sync in blocks of 128 rows (64 for
 * fewer): measured on the H200 (bench_gpu_ops, 32 rows over 8192 keys) a 32-row,
 * five-stage, one-block-a-multiprocessor variant read K/V at 1.05 TB/s against this
 * one's 1.29: two compute warps a multiprocessor are too few, whatever is in flight. */
template <int D> cudaError_t launch_mma(const pc_cu_attn_args *a, int rows, cudaStream_t s) {
    if (rows <= MMA_MT2_ROWS) return launch_mma_cfg<D, 4, 1, 2>(a, rows, s);
    return has_wgmma() ? launch_wg<D>(a, rows, s) : launch_mma_cfg<D, 4, 2, 2>(a, rows, s);
}

template <int D> cudaError_t launch_vec(const pc_cu_attn_args *a, int rows, cudaStream_t s) {
    const dim3 grid(1, a->n_head_kv, a->n_split);
    const size_t smem = meta_bytes(a->tiles_cap);
    if (smem > 48 * 1024) return cudaErrorInvalidValue;
    if (rows <= 1) return launch_dependent(attn_vec_kernel<D, 1>, grid, NW * 32, smem, s, *a);
    if (rows <= 2) return launch_dependent(attn_vec_kernel<D, 2>, grid, NW * 32, smem, s, *a);
    if (rows <= 4) return launch_dependent(attn_vec_kernel<D, 4>, grid, NW * 32, smem, s, *a);
    return launch_dependent(attn_vec_kernel<D, 8>, grid, NW * 32, smem, s, *a);
}

template <int D, int RG, int ST, int NLW> cudaError_t launch_fewq_cfg(const pc_cu_attn_args *a, int rows, cudaStream_t s) {
    using S = fewq_smem<D, 16 * RG, ST>;
    static_assert((size_t)RG * KG * 16 * D * sizeof(float) <= ST * (S::k_bytes + S::v_bytes),
                  "the merge's buffer must fit in the stages");
    const size_t smem = S::fixed + meta_bytes(a->tiles_cap);
    /* a long context in few slices has more tile metadata than fits beside the stages */
    if (smem > (size_t)FEWQ_MAX_SMEM) return launch_mma<D>(a, rows, s);
    return launch_dependent(attn_fewq_kernel<D, RG, ST, NLW>, dim3(1, a->n_head_kv, a->n_split), (RG * KG + NLW) * 32, smem,
                            s, *a);
}

template <int D, int ST, int NLW> cudaError_t launch_fewq_st(const pc_cu_attn_args *a, int rows, cudaStream_t s) {
    return rows <= 16 ? launch_fewq_cfg<D, 1, ST, NLW>(a, rows, s) : launch_fewq_cfg<D, 2, ST, NLW>(a, rows, s);
}

template <int D> cudaError_t launch_fewq(const pc_cu_attn_args *a, int rows, cudaStream_t s) {
    return launch_fewq_st<D, FEWQ_ST, FEWQ_LW>(a, rows, s);
}

template <int D> cudaError_t launch(const pc_cu_attn_args *a, cudaStream_t s) {
    const int rows = a->n * (a->n_head / a->n_head_kv);
    const int q_tiles = a->kernel == PC_CU_ATTN_MMA ? (rows + BR - 1) / BR : 1;
    cudaError_t e = a->kernel == PC_CU_ATTN_VEC    ? launch_vec<D>(a, rows, s)
                    : a->kernel == PC_CU_ATTN_FEWQ ? launch_fewq<D>(a, rows, s)
                                                   : launch_mma<D>(a, rows, s);
    if (e != cudaSuccess || (a->kernel != PC_CU_ATTN_VEC && a->n_split == 1)) return e;
    return launch_dependent(combine_kernel<D>, dim3((rows + NW - 1) / NW, a->n_head_kv), NW * 32, 0, s, *a, q_tiles);
}

} // namespace

extern "C" cudaError_t pc_cu_attention_init(void) {
    cudaError_t e = allow_smem<128>();
    return e != cudaSuccess ? e : allow_smem<64>();
}

extern "C" int32_t pc_cu_attn_q_tiles(const pc_cu_attn_args *a) {
    if (a->kernel == PC_CU_ATTN_VEC) return 1;
    return (a->n * (a->n_head / a->n_head_kv) + BR - 1) / BR;
}

/* FEWQ: one block of 4-8 compute and 4 loader warps with ~140 KB of stages; the
 * others two (measured: VEC at four read 2.36 TB/s, at two 2.67). */
extern "C" int32_t pc_cu_attn_blocks_per_sm(pc_cu_attn_kernel k) { return k == PC_CU_ATTN_FEWQ ? 1 : 2; }

extern "C" cudaError_t pc_cu_attention(const pc_cu_attn_args *a, cudaStream_t s) {
    if (a->n <= 0 || a->n_head_kv <= 0 || a->n_head % a->n_head_kv || a->n_split <= 0 || a->n_split > 65535 ||
        a->tiles_cap <= 0)
        return cudaErrorInvalidValue;
    if (a->kernel == PC_CU_ATTN_VEC && a->n * (a->n_head / a->n_head_kv) > 8) return cudaErrorInvalidValue;
    if (a->kernel == PC_CU_ATTN_FEWQ && a->n * (a->n_head / a->n_head_kv) > 32) return cudaErrorInvalidValue;
    if ((a->kernel == PC_CU_ATTN_VEC || a->n_split > 1) && (!a->part_o || !a->part_ml)) return cudaErrorInvalidValue;
    if (a->head_dim == 128) return launch<128>(a, s);
    if (a->head_dim == 64) return launch<64>(a, s);
    return cudaErrorInvalidValue;
}
