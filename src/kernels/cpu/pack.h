/* pack.h - weights repacked into row-interleaved blocks for the SIMD matmul, and
 * activations laid out for it.
 *
 * Why: a plain GGUF row holds one output's weights, so a dot product per output
 * re-reads every activation for every row and spends its integer work on one
 * output. Packed, the rows of a matrix go in groups of PC_PACK_ROWS = 16, and a
 * group holds, block by block, that block of all 16 rows: scales as 16-lane
 * vectors and quantized values as 64-byte chunks of 4 consecutive elements of
 * each row (byte 4r + e: row r, element e of the chunk's group of 4). One
 * vpdpbusd multiplies such a chunk by 4 activations of one token broadcast to
 * all lanes and adds 16 row sums at once, so the kernel keeps 16 outputs per
 * register and reuses each unpacked chunk for several tokens.
 *
 * Invariants:
 *   1. Same values, other places: a packed block holds exactly the bits of the
 *      16 source blocks (moved, never re-rounded; mostly as whole 4-byte words,
 *      so packing is a copy), except that Q8_0's signed bytes are stored as
 *      q ^ 0x80 = q + 128 and Q5's high bits as one 64-bit mask per group of 4
 *      elements; the kernels take Q8_0's offset back exactly in integers.
 *   2. A group past the last row is zero-filled: its outputs are 0 and never stored.
 *   3. The packed copy is the CPU's own buffer; the GGUF data it came from stays
 *      untouched (other backends read the original blocks).
 * The SIMD matmul computes each output with the same operations as the scalar
 * dot product of the original rows (quant.h's canonical order), so a packed and
 * an unpacked matmul give the same bits. */
#ifndef PC_KERNELS_CPU_PACK_H
#define PC_KERNELS_CPU_PACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tensor/types.h"

enum { PC_PACK_ROWS = 16 };

/* How far ahead of the block they work on the direct (decode) kernels ask
 * for packed weights (gemm_x86.h says why); matmul.c asks for the first
 * this many bytes of a task's rows before the kernels start on them. */
#ifndef PC_PACK_PREFETCH
#define PC_PACK_PREFETCH 4096
#endif
/* How far ahead they also ask for each line into L1 (gemm_x86.h says why). */
#ifndef PC_PACK_PREFETCH_L1
#define PC_PACK_PREFETCH_L1 1536
#endif

/* 32-element blocks. qs[p]: group p (elements 4p..4p+3) in the low nibbles and
 * group p + 4 (elements 16 + 4p..) in the high ones, as in the GGUF block.
 * qh[k] bit 4r + e: bit 4 of row r's element 4k + e. */
typedef struct { pc_f16 d[16]; uint8_t qs[4][64]; } pc_pack_q4_0;
typedef struct { pc_f16 d[16], m[16]; uint8_t qs[4][64]; } pc_pack_q4_1;
typedef struct { pc_f16 d[16]; uint64_t qh[8]; uint8_t qs[4][64]; } pc_pack_q5_0;
typedef struct { pc_f16 d[16], m[16]; uint64_t qh[8]; uint8_t qs[4][64]; } pc_pack_q5_1;
typedef struct { pc_f16 d[16]; uint8_t qs[8][64]; } pc_pack_q8_0; /* q + 128 */

/* The K-quants: each row's bytes (after d, dmin) move as 4-byte words, word u
 * of row r to bytes 4r..4r+3 of 64-byte chunk u, so every field keeps its
 * GGUF meaning per lane. Q4_K/Q5_K: scales[w] holds words w = 0..2 of the 12
 * scale bytes; qs[p][k] holds qs word 8p + k: group k of sub-block 2p in the
 * low nibbles, of sub-block 2p + 1 in the high ones; Q5_K's qh[k] holds qh
 * word k: bit j of byte 4r + e is bit 4 of element 32j + 4k + e. Q6_K: ql[u]
 * holds ql word u, qh[v] qh word v, sc[w] the scales' word w (4 signed bytes). */
typedef struct {
    pc_f16 d[16], dmin[16];
    uint8_t scales[3][64];
    uint8_t qs[4][8][64];
} pc_pack_q4_K;
typedef struct {
    pc_f16 d[16], dmin[16];
    uint8_t scales[3][64];
    uint8_t qh[8][64];
    uint8_t qs[4][8][64];
} pc_pack_q5_K;
typedef struct {
    pc_f16 d[16];
    uint8_t ql[32][64];
    uint8_t qh[16][64];
    int8_t sc[4][64];
} pc_pack_q6_K;

/* Q6_K's one-token kernel (AVX-512) asks two of its blocks ahead, not
 * PC_PACK_PREFETCH bytes (gemm_one_avx512.h says why); -D settable for
 * builds that measure other distances. */
#ifndef PC_PACK_PREFETCH_Q6_K_ONE
#define PC_PACK_PREFETCH_Q6_K_ONE (2 * sizeof(pc_pack_q6_K))
#endif
/* How far ahead the AVX-512 Q4_K and Q6_K one-token kernels ask for lines into
 * L1 (gemm_one_avx512.h says why they differ from PC_PACK_PREFETCH_L1). */
#ifndef PC_PACK_PREFETCH_L1_Q4_K_ONE
#define PC_PACK_PREFETCH_L1_Q4_K_ONE 2048
#endif
#ifndef PC_PACK_PREFETCH_L1_Q6_K_ONE
#define PC_PACK_PREFETCH_L1_Q6_K_ONE 4096
#endif

/* Whether type t has a packed layout. */
bool pc_pack_supported(pc_type t);
/* Bytes of one packed block (PC_PACK_ROWS rows x one block of elements); 0 if none. */
size_t pc_pack_block_size(pc_type t);
/* Bytes of the packed copy of n_out rows of n_in elements (whole groups); 0 if
 * t has no layout or n_in is not a positive multiple of its block size. */
size_t pc_pack_size(pc_type t, int64_t n_in, int64_t n_out);
/* Packs rows [16 g0, 16 g1) of w (n_out rows of n_in, GGUF layout) into dst,
 * which holds the whole packed matrix; split the groups to pack in parallel.
 * false if t has no layout. */
bool pc_pack_groups(pc_type t, const void *w, int64_t n_in, int64_t n_out, int64_t g0, int64_t g1, void *dst);
/* The whole matrix: pc_pack_groups over all groups. */
bool pc_pack(pc_type t, const void *w, int64_t n_in, int64_t n_out, void *dst);

/* ---- activations for packed weights ----
 * One token's row is its quantized blocks with what the kernels would
 * otherwise recompute per row group beside each: the scale as a float and the
 * integer terms that take off the weights' offsets. Values equal the standard
 * quantized row's (pc_quantize_row) exactly. */
typedef struct { float d; int32_t neg[3]; int8_t qs[32]; } pc_xp_q8_0; /* neg: -8, -16, -128 times sum(qs) */
typedef struct { float d, s; int8_t qs[32]; } pc_xp_q8_1;              /* s: the f16 s of Q8_1, widened */
typedef struct {
    float d;
    int32_t zero[8];   /* 0s: sub-block j's Q4_K/Q5_K sums start from a broadcast of zero[j], a load where zeroing a
                        * register costs a vector ALU slot (and one shared zero would be hoisted into a register) */
    int32_t bpair[4];  /* int16 pairs (B[2q], B[2q+1]), B[j] the sum of qs over sub-block j's 32 values */
    int32_t neg32[16]; /* -32 times the sum over each 16 values: Q6_K's offset */
    int8_t qs[256];
} pc_xp_q8_K;

/* Bytes of a packed activation row of n elements of xt (Q8_0, Q8_1 or Q8_K); 0 otherwise. */
size_t pc_xp_row_size(pc_type xt, int64_t n);
/* Lays out a row xq quantized to xt (pc_quantize_row's bytes) as the packed kernels read it. */
void pc_xp_row(pc_type xt, const void *xq, void *dst, int64_t n);

#endif
