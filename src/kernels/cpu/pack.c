/* pack.c - repacking GGUF weight rows into the row-interleaved layouts of pack.h,
 * and activation rows into the packed kernels' layout.
 *
 * Plain C, run once per weight at model load (and per token row in the matmul
 * for activations). Each function reads one source block per row and scatters
 * its bytes; rows past n_out leave their zero-filled lanes alone. */
#include "kernels/cpu/pack.h"

#include <stddef.h>
#include <string.h>

#include "kernels/cpu/quant_impl.h"

enum { R = PC_PACK_ROWS };

size_t pc_pack_block_size(pc_type t) {
    switch (t) {
    case PC_TYPE_Q4_0: return sizeof(pc_pack_q4_0);
    case PC_TYPE_Q4_1: return sizeof(pc_pack_q4_1);
    case PC_TYPE_Q5_0: return sizeof(pc_pack_q5_0);
    case PC_TYPE_Q5_1: return sizeof(pc_pack_q5_1);
    case PC_TYPE_Q8_0: return sizeof(pc_pack_q8_0);
    case PC_TYPE_Q4_K: return sizeof(pc_pack_q4_K);
    case PC_TYPE_Q5_K: return sizeof(pc_pack_q5_K);
    case PC_TYPE_Q6_K: return sizeof(pc_pack_q6_K);
    default: return 0;
    }
}

bool pc_pack_supported(pc_type t) { return pc_pack_block_size(t) != 0; }

size_t pc_pack_size(pc_type t, int64_t n_in, int64_t n_out) {
    const size_t pb = pc_pack_block_size(t);
    if (pb == 0 || n_in <= 0 || n_out < 0) return 0;
    const int64_t bs = pc_type_get(t)->block_size;
    if (n_in % bs != 0) return 0;
    return pb * (size_t)(n_in / bs) * (size_t)((n_out + R - 1) / R);
}

/* Words [0, n) of a source row (4-byte aligned offsets) into lane r of n
 * consecutive 64-byte chunks, each XORed with x. */
static void put_words(uint8_t *chunks, int r, const void *src, int n, uint32_t x) {
    for (int u = 0; u < n; u++) {
        uint32_t v;
        memcpy(&v, (const uint8_t *)src + 4 * u, 4);
        v ^= x;
        memcpy(chunks + 64 * u + 4 * r, &v, 4);
    }
}

/* Bit 4r + e of mask k from bits 4k + e of a 32-bit Q5 qh. */
static void put_qh32(uint64_t qh[8], int r, const uint8_t qh4[4]) {
    uint32_t h;
    memcpy(&h, qh4, 4);
    for (int k = 0; k < 8; k++) qh[k] |= (uint64_t)((h >> (4 * k)) & 0xF) << (4 * r);
}

static void pack_q4_0(pc_pack_q4_0 *p, int r, const pc_block_q4_0 *b) {
    p->d[r] = b->d;
    put_words(p->qs[0], r, b->qs, 4, 0);
}

static void pack_q4_1(pc_pack_q4_1 *p, int r, const pc_block_q4_1 *b) {
    p->d[r] = b->d;
    p->m[r] = b->m;
    put_words(p->qs[0], r, b->qs, 4, 0);
}

static void pack_q5_0(pc_pack_q5_0 *p, int r, const pc_block_q5_0 *b) {
    p->d[r] = b->d;
    put_qh32(p->qh, r, b->qh);
    put_words(p->qs[0], r, b->qs, 4, 0);
}

static void pack_q5_1(pc_pack_q5_1 *p, int r, const pc_block_q5_1 *b) {
    p->d[r] = b->d;
    p->m[r] = b->m;
    put_qh32(p->qh, r, b->qh);
    put_words(p->qs[0], r, b->qs, 4, 0);
}

static void pack_q8_0(pc_pack_q8_0 *p, int r, const pc_block_q8_0 *b) {
    p->d[r] = b->d;
    put_words(p->qs[0], r, b->qs, 8, 0x80808080u);
}

static void pack_q4_K(pc_pack_q4_K *p, int r, const pc_block_q4_K *b) {
    p->d[r] = b->d;
    p->dmin[r] = b->dmin;
    put_words(p->scales[0], r, b->scales, 3, 0);
    put_words(p->qs[0][0], r, b->qs, 32, 0);
}

static void pack_q5_K(pc_pack_q5_K *p, int r, const pc_block_q5_K *b) {
    p->d[r] = b->d;
    p->dmin[r] = b->dmin;
    put_words(p->scales[0], r, b->scales, 3, 0);
    put_words(p->qh[0], r, b->qh, 8, 0);
    put_words(p->qs[0][0], r, b->qs, 32, 0);
}

static void pack_q6_K(pc_pack_q6_K *p, int r, const pc_block_q6_K *b) {
    p->d[r] = b->d;
    put_words(p->ql[0], r, b->ql, 32, 0);
    put_words(p->qh[0], r, b->qh, 16, 0);
    put_words((uint8_t *)p->sc[0], r, b->scales, 4, 0);
}

/* Packs source block src (of row r of its group) into packed block dst. */
static void pack_block(pc_type t, void *dst, int r, const void *src) {
    switch (t) {
    case PC_TYPE_Q4_0: pack_q4_0(dst, r, src); break;
    case PC_TYPE_Q4_1: pack_q4_1(dst, r, src); break;
    case PC_TYPE_Q5_0: pack_q5_0(dst, r, src); break;
    case PC_TYPE_Q5_1: pack_q5_1(dst, r, src); break;
    case PC_TYPE_Q8_0: pack_q8_0(dst, r, src); break;
    case PC_TYPE_Q4_K: pack_q4_K(dst, r, src); break;
    case PC_TYPE_Q5_K: pack_q5_K(dst, r, src); break;
    case PC_TYPE_Q6_K: pack_q6_K(dst, r, src); break;
    default: break;
    }
}

/* Zero-fills the parts of a group that rows do not overwrite: the lanes of rows
 * past n_out, and the Q5 masks that rows OR their bits into. */
static void clear_group(pc_type t, uint8_t *pg, int64_t nb, size_t pb, int rows) {
    if (rows < R) {
        memset(pg, 0, (size_t)nb * pb);
        return;
    }
    if (t != PC_TYPE_Q5_0 && t != PC_TYPE_Q5_1) return;
    const size_t off = t == PC_TYPE_Q5_0 ? offsetof(pc_pack_q5_0, qh) : offsetof(pc_pack_q5_1, qh);
    for (int64_t b = 0; b < nb; b++) memset(pg + (size_t)b * pb + off, 0, 8 * sizeof(uint64_t));
}

bool pc_pack_groups(pc_type t, const void *w, int64_t n_in, int64_t n_out, int64_t g0, int64_t g1, void *dst) {
    const size_t pb = pc_pack_block_size(t);
    if (pb == 0 || n_in <= 0 || n_in % pc_type_get(t)->block_size != 0) return false;
    const pc_type_info *ti = pc_type_get(t);
    const int64_t nb = n_in / ti->block_size;
    const size_t row = pc_row_size(t, n_in);
    for (int64_t g = g0; g < g1; g++) {
        uint8_t *pg = (uint8_t *)dst + (size_t)g * (size_t)nb * pb;
        clear_group(t, pg, nb, pb, (int)(n_out - g * R < R ? n_out - g * R : R));
        for (int r = 0; r < R && g * R + r < n_out; r++) {
            const uint8_t *src = (const uint8_t *)w + (size_t)(g * R + r) * row;
            for (int64_t b = 0; b < nb; b++) pack_block(t, pg + (size_t)b * pb, r, src + (size_t)b * ti->type_size);
        }
    }
    return true;
}

bool pc_pack(pc_type t, const void *w, int64_t n_in, int64_t n_out, void *dst) {
    return pc_pack_groups(t, w, n_in, n_out, 0, (n_out + R - 1) / R, dst);
}

/* ---- activations ---- */

size_t pc_xp_row_size(pc_type xt, int64_t n) {
    switch (xt) {
    case PC_TYPE_Q8_0: return sizeof(pc_xp_q8_0) * (size_t)(n / 32);
    case PC_TYPE_Q8_1: return sizeof(pc_xp_q8_1) * (size_t)(n / 32);
    case PC_TYPE_Q8_K: return sizeof(pc_xp_q8_K) * (size_t)(n / PC_QK_K);
    default: return 0;
    }
}

static int32_t sum_i8(const int8_t *q, int n) {
    int32_t s = 0;
    for (int i = 0; i < n; i++) s += q[i];
    return s;
}

void pc_xp_row(pc_type xt, const void *xq, void *dst, int64_t n) {
    if (xt == PC_TYPE_Q8_0) {
        const pc_block_q8_0 *b = xq;
        pc_xp_q8_0 *o = dst;
        for (int64_t i = 0; i < n / 32; i++) {
            const int32_t s = sum_i8(b[i].qs, 32);
            o[i].d = pc_f16_to_f32(b[i].d);
            o[i].neg[0] = -8 * s;
            o[i].neg[1] = -16 * s;
            o[i].neg[2] = -128 * s;
            memcpy(o[i].qs, b[i].qs, 32);
        }
    } else if (xt == PC_TYPE_Q8_1) {
        const pc_block_q8_1 *b = xq;
        pc_xp_q8_1 *o = dst;
        for (int64_t i = 0; i < n / 32; i++) {
            o[i].d = pc_f16_to_f32(b[i].d);
            o[i].s = pc_f16_to_f32(b[i].s);
            memcpy(o[i].qs, b[i].qs, 32);
        }
    } else if (xt == PC_TYPE_Q8_K) {
        const pc_block_q8_K *b = xq;
        pc_xp_q8_K *o = dst;
        for (int64_t i = 0; i < n / PC_QK_K; i++) {
            o[i].d = b[i].d;
            memset(o[i].zero, 0, sizeof o[i].zero);
            for (int q = 0; q < 4; q++) {
                const int lo = b[i].bsums[4 * q] + b[i].bsums[4 * q + 1];
                const int hi = b[i].bsums[4 * q + 2] + b[i].bsums[4 * q + 3];
                o[i].bpair[q] = (int32_t)((uint32_t)(uint16_t)lo | (uint32_t)(uint16_t)hi << 16);
            }
            for (int j = 0; j < 16; j++) o[i].neg32[j] = -32 * b[i].bsums[j];
            memcpy(o[i].qs, b[i].qs, PC_QK_K);
        }
    }
}
