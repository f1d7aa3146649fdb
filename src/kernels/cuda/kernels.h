/* kernels.h - the CUDA kernels, as C launchers over device pointers and a stream.
 *
 * Kernels know nothing of modules, schemas or tiers: they take pointers,
 * sizes and a stream. Each launcher checks its arguments' shapes, launches,
 * and returns cudaGetLastError() (cudaErrorInvalidValue for shapes it does not
 * take), so the caller can report the first failure with its own file and line.
 *
 * What varies from one step of a forward to the next (tokens, positions, the
 * key tiles of the context, the span each tile lives in, the rows being
 * written) is read by the kernels from a pc_cu_step in device memory, not
 * passed as launch arguments: a CUDA graph captured once replays any later
 * chunk of the same token count after its step has been uploaded.
 *
 * Element types: activations are f32 (residual stream, projections) or bf16
 * (inputs of matrix products); queries, keys and values f16 (kv.h's layout:
 * keys in blocks of 8 tokens, [dim][8]; values a row per token). Weights are
 * bf16 or a GGUF quantized type, read as the file lays them out. */
#ifndef PC_KERNELS_CUDA_KERNELS_H
#define PC_KERNELS_CUDA_KERNELS_H

#include <cuda_runtime_api.h>
#include <stdint.h>

#include "tensor/types.h"

#ifdef __cplusplus
extern "C" {
#endif

enum {
    PC_CU_KV_BLOCK = 8,  /* tokens per stored key block: kv.h's PC_KV_BLOCK */
    PC_CU_TILE = 64,     /* keys per attention tile */
    PC_CU_QROWS = 64,    /* query rows per attention block */
    PC_CU_GEMV_MAX = 8,  /* most tokens the small-batch matmul takes */
};

/* A tile of up to 64 consecutive keys of one span. */
typedef struct pc_cu_tile {
    int32_t span;    /* index into the step's span table */
    int32_t row0;    /* first row in the span (a multiple of 64) */
    int32_t n;       /* keys in the tile (1..64) */
    int32_t min_pos; /* smallest position among them: a query below it sees none */
} pc_cu_tile;

/* One span's keys and values of one layer (device addresses, f16):
 * k [cap / 8][dim][8], v [cap][dim] where dim = n_head_kv * head_dim. */
typedef struct pc_cu_span_layer {
    const void *k;
    const void *v;
} pc_cu_span_layer;

/* What the kernels of one chunk read from device memory. */
typedef struct pc_cu_step {
    int32_t n;                     /* tokens in the chunk */
    int32_t row0;                  /* first row of dst they write */
    int32_t n_tiles;               /* key tiles of the context (dst's new rows included) */
    int32_t n_spans;               /* spans in the table, per layer */
    void *dst_k, *dst_v;           /* dst's layer-0 keys and values */
    int64_t dst_layer_stride;      /* elements from one layer to the next: cap * dim */
    const int32_t *tokens;         /* [n] */
    const int32_t *qpos;           /* [n] */
    const float *rope_cos;         /* [n][rope_dim / 2], from the CPU's pc_rope_cache */
    const float *rope_sin;         /* [n][rope_dim / 2] */
    const pc_cu_tile *tiles;       /* [n_tiles] */
    const int32_t *kpos;           /* [n_tiles][64]: key positions, INT32_MAX past a tile's n */
    const pc_cu_span_layer *spans; /* [n_layer][n_spans] */
} pc_cu_step;

/* ---- dequantization (bitwise the CPU's pc_dequantize_row) ---- */

/* True when the kernels read weight type t (bf16, and the GGUF quantized types
 * with a CPU dequantization; f16 and f32 matrices are converted to bf16 first). */
int pc_cu_type_supported(pc_type t);
/* y[r][0, n_in) = dequant(row r of w), r < rows; y f32 (out_bf16 = 0) or bf16
 * rounded to nearest even (out_bf16 = 1). Also takes f16 and f32 rows. */
cudaError_t pc_cu_dequant_rows(pc_type t, const void *w, int64_t n_in, int64_t rows, void *y, int out_bf16,
                               cudaStream_t s);
/* x[i][0, n_embd) = dequant(row step->tokens[i] of table) as f32, i < n. */
cudaError_t pc_cu_embed(pc_type t, const void *table, int64_t n_embd, const pc_cu_step *step, int32_t n, float *x,
                        cudaStream_t s);

/* ---- element-wise ---- */

/* y[r] = x[r] / sqrt(mean(x[r]^2) + eps) * w for rows of dim f32; y f32 or bf16. */
cudaError_t pc_cu_rmsnorm(const float *x, const float *w, int32_t rows, int32_t dim, float eps, void *y, int out_bf16,
                          cudaStream_t s);
/* out[r][i] = silu(gate[r][i]) * up[r][i] for rows r < rows of n elements, each
 * of the three stride elements apart; bf16 in and out (out may be gate). */
cudaError_t pc_cu_swiglu(const void *gate, const void *up, void *out, int32_t rows, int64_t n, int64_t stride,
                         cudaStream_t s);

typedef struct pc_cu_qkv_args {
    const pc_cu_step *step;
    int32_t n, layer;
    const float *q, *k, *v;       /* [n][Q], [n][KV], [n][KV] projections, rows qkv_stride apart */
    int64_t qkv_stride;
    const float *bq, *bk, *bv;    /* biases or NULL */
    void *q16;                    /* [n][Q] f16: biased, rotated queries */
    int32_t n_head, n_head_kv, head_dim, rope_dim;
    int32_t rope;                 /* 0: none, 1: pairs (2i, 2i+1), 2: NeoX pairs (i, i + rope_dim/2) */
} pc_cu_qkv_args;
/* Biases, RoPE at step->qpos (the CPU's operations, bit for bit), then q to
 * q16 and k, v as f16 into dst's rows [row0, row0 + n) of this layer. */
cudaError_t pc_cu_qkv(const pc_cu_qkv_args *a, cudaStream_t s);

/* ---- matrix products ---- */

typedef enum pc_cu_out { PC_CU_OUT_F32 = 0, PC_CU_OUT_ADD_F32 = 1, PC_CU_OUT_BF16 = 2 } pc_cu_out;
/* y[t][o] (=, += or bf16 =) sum_i w[o][i] x[t][i] for t < n_tok <= PC_CU_GEMV_MAX:
 * each weight block read once for all tokens. w: n_out rows of n_in elements
 * of type t (bf16 or quantized); x bf16 rows x_stride apart (a multiple of 8);
 * y rows y_stride apart. */
cudaError_t pc_cu_gemv(pc_type t, const void *w, int64_t n_in, int64_t n_out, const void *x, int64_t x_stride,
                       int32_t n_tok, void *y, int64_t y_stride, pc_cu_out out, cudaStream_t s);

/* The same product on int8 dot products (gemv_q8.cu), for the types
 * pc_cu_gemv_q8_takes (Q4_0, Q4_K, Q6_K, aligned as its loads need): x quantized per 32 elements to int8 round(x / d), d = max|x| / 127,
 * with the float sum of the 32 beside it (pc_cu_quantize_q8 writes that form,
 * pc_cu_q8_bytes(n_in, n_tok) bytes, 16-byte aligned). One token of x up to
 * 2048 wide: each block of the product quantizes x itself; else x is
 * quantized into xq first, by one more launch. Values differ from pc_cu_gemv's by x's
 * rounding to 8 bits (test_ops_cuda states the error). */
size_t pc_cu_q8_bytes(int64_t n_in, int32_t n_tok);
cudaError_t pc_cu_quantize_q8(const void *x, int64_t n_in, int64_t x_stride, int32_t n_tok, void *xq, cudaStream_t s);
int pc_cu_gemv_q8_takes(pc_type t, const void *w, int64_t n_in);
cudaError_t pc_cu_gemv_q8(pc_type t, const void *w, int64_t n_in, int64_t n_out, const void *x, int64_t x_stride,
                          int32_t n_tok, void *xq, void *y, int64_t y_stride, pc_cu_out out, cudaStream_t s);

/* ---- attention ---- */

typedef enum pc_cu_attn_kernel { PC_CU_ATTN_MMA = 0, PC_CU_ATTN_VEC = 1, PC_CU_ATTN_FEWQ = 2 } pc_cu_attn_kernel;

typedef struct pc_cu_attn_args {
    const pc_cu_step *step;
    const void *q16;          /* [n][n_head * head_dim] f16 */
    void *out;                /* [n][n_head * head_dim] bf16 */
    float *part_o;            /* split partials [n_split][q_tiles][n_head_kv][64][head_dim] */
    float *part_ml;           /* [n_split][q_tiles][n_head_kv][64][2]: running max (log2 units), sum */
    int32_t n, n_head, n_head_kv, head_dim, layer;
    int32_t n_split;          /* slices of the key tiles, merged by log-sum-exp; 1: MMA and FEWQ write out directly */
    int32_t tiles_cap;        /* >= the tiles of any slice: ceil(step->n_tiles / n_split) + 1 (pc_cu_attn_tiles_cap) */
    float scale;              /* usually 1/sqrt(head_dim) */
    pc_cu_attn_kernel kernel; /* MMA: tensor-core tiles of 64 query rows (blocks of 128 above 128
                                 rows, on wgmma where the GPU is sm_90); VEC: n * G <= 8 rows;
                                 FEWQ: n * G <= 32 rows, each tile's keys split over 4 warps */
} pc_cu_attn_args;
/* Query rows are (token, head of the KV head's group): a query at position p
 * sees exactly the keys at positions <= p, in whatever span and order they lie.
 * head_dim 64 or 128. */
cudaError_t pc_cu_attention(const pc_cu_attn_args *a, cudaStream_t s);
/* Once per process and device, before the first pc_cu_attention: lets the MMA
 * kernel take more than 48 KB of shared memory. */
cudaError_t pc_cu_attention_init(void);
/* The tiles_cap that n_tiles tiles in n_split slices need. */
static inline int32_t pc_cu_attn_tiles_cap(int32_t n_tiles, int32_t n_split) { return (n_tiles + n_split - 1) / n_split + 1; }
/* Query tiles of the MMA kernel (and 1 for VEC and FEWQ) for n tokens. */
int32_t pc_cu_attn_q_tiles(const pc_cu_attn_args *a);
/* Blocks of the kernel resident on one multiprocessor: a split that fills
 * n_sm times this many blocks is one whole wave. */
int32_t pc_cu_attn_blocks_per_sm(pc_cu_attn_kernel k);

#ifdef __cplusplus
}
#endif

#endif
