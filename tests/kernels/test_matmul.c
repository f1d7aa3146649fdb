/* test_matmul.c - pc_matmul is bitwise a loop of pc_vec_dot, packed or not.
 *
 * For each weight type and ISA path this CPU has: y from pc_matmul must equal,
 * byte for byte, pc_vec_dot(W row o, quantized x row t) for every (t, o),
 * whatever n_tok (token tiles of 8, 4, 2, 1 and token blocks), an odd n_out
 * (a partial row group of the packed layout) and the thread count - both from
 * the GGUF rows and from the repacked copy (pack.h), whose SIMD kernels must
 * reproduce the scalar dot's canonical float order exactly. And a token's row
 * of y must not change with the batch it was computed in (the Prompt Cache
 * exactness property), nor with the batch of matrices (pc_matmul_batch) it ran
 * in, packed and unpacked members mixed, nor with the epilogues fused into
 * its pool job (the residual add, the feed-forward's swiglu, a caller's). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/ops.h"
#include "kernels/cpu/pack.h"
#include "test_rng.h"

enum { N_OUT = 37, MAX_TOK = 70 };

typedef struct fixture {
    pc_type wt;
    int n_in;       /* 3 super-blocks for K-quants, else 23 blocks: odd, for the pair kernels' tail */
    void *w;        /* N_OUT rows */
    void *packed;   /* pc_pack of w, or NULL when the type has no packed layout */
    float *x;       /* MAX_TOK rows of n_in */
    void *xq;       /* x quantized to the dot type, row by row */
    void *scratch;
    float *y, *want;
} fixture;

static void *aligned(size_t n) { return aligned_alloc(64, (n + 63) / 64 * 64); }

static void fixture_init(test_rng *rng, fixture *f, pc_type wt) {
    const pc_type xt = pc_vec_dot_type(wt);
    f->wt = wt;
    f->n_in = pc_type_get(wt)->block_size == PC_QK_K ? 768 : 736;
    const int n_in = f->n_in;
    const size_t wrow = pc_row_size(wt, n_in), xrow = pc_row_size(xt, n_in);
    float *row = malloc(n_in * sizeof *row);
    f->w = malloc(wrow * N_OUT);
    for (int o = 0; o < N_OUT; o++) {
        for (int i = 0; i < n_in; i++) row[i] = test_rng_float(rng);
        pc_quantize_row(wt, row, (uint8_t *)f->w + o * wrow, n_in);
    }
    f->packed = NULL;
    if (pc_pack_supported(wt)) {
        f->packed = aligned(pc_pack_size(wt, n_in, N_OUT));
        CHECK(pc_pack(wt, f->w, n_in, N_OUT, f->packed));
    }
    f->x = malloc(sizeof(float) * n_in * MAX_TOK);
    for (int i = 0; i < n_in * MAX_TOK; i++) f->x[i] = test_rng_float(rng) * 3.f;
    f->xq = malloc(xrow * MAX_TOK);
    for (int t = 0; t < MAX_TOK; t++) pc_quantize_row(xt, f->x + t * n_in, (uint8_t *)f->xq + t * xrow, n_in);
    f->scratch = aligned(pc_matmul_scratch_size(wt, n_in, MAX_TOK) + 1);
    f->y = malloc(sizeof(float) * N_OUT * MAX_TOK);
    f->want = malloc(sizeof(float) * N_OUT * MAX_TOK);
    free(row);
}

static void fixture_free(fixture *f) {
    free(f->w);
    free(f->packed);
    free(f->x);
    free(f->xq);
    free(f->scratch);
    free(f->y);
    free(f->want);
}

static bool run_mm(pc_pool *pool, fixture *f, pc_isa isa, bool packed, const float *x, int n_tok, float *y) {
    pc_matmul_args a = {.wt = f->wt, .w = f->w, .packed = packed ? f->packed : NULL, .n_in = f->n_in, .n_out = N_OUT,
                        .x = x, .n_tok = n_tok, .y = y, .scratch = f->scratch, .isa = isa};
    return pc_matmul(pool, &a);
}

static void check_against_dots(pc_pool *pool, fixture *f, pc_isa isa, bool packed, int n_tok, int threads) {
    const pc_vec_dot_fn dot = pc_vec_dot_get(f->wt, isa);
    const int n_in = f->n_in;
    const size_t wrow = pc_row_size(f->wt, n_in), xrow = pc_row_size(pc_vec_dot_type(f->wt), n_in);
    for (int t = 0; t < n_tok; t++)
        for (int o = 0; o < N_OUT; o++)
            dot(n_in, &f->want[t * N_OUT + o], (const uint8_t *)f->w + o * wrow, (const uint8_t *)f->xq + t * xrow);
    memset(f->y, 0xFF, sizeof(float) * N_OUT * n_tok);
    CHECK(run_mm(pool, f, isa, packed, f->x, n_tok, f->y));
    CHECK_MSG(memcmp(f->y, f->want, sizeof(float) * N_OUT * n_tok) == 0, "%s%s on %s: n_tok=%d threads=%d",
              pc_type_name(f->wt), packed ? " packed" : "", pc_isa_name(isa), n_tok, threads);
}

/* Row t of a 37-token batch equals the same token computed alone. */
static void check_batch_independence(pc_pool *pool, fixture *f, pc_isa isa, bool packed) {
    float alone[N_OUT];
    CHECK(run_mm(pool, f, isa, packed, f->x, 37, f->y));
    const int toks[3] = {0, 18, 36};
    for (int i = 0; i < 3; i++) {
        CHECK(run_mm(pool, f, isa, packed, f->x + toks[i] * f->n_in, 1, alone));
        CHECK_MSG(memcmp(alone, f->y + toks[i] * N_OUT, sizeof alone) == 0, "%s%s on %s: token %d",
                  pc_type_name(f->wt), packed ? " packed" : "", pc_isa_name(isa), toks[i]);
    }
}

static void check_rejects(fixture *f) {
    pc_matmul_args a = {.wt = f->wt, .w = f->w, .packed = NULL, .n_in = f->n_in - 1, .n_out = N_OUT, .x = f->x, .n_tok = 1,
                        .y = f->y, .scratch = f->scratch, .isa = PC_ISA_SCALAR};
    if (pc_type_get(f->wt)->block_size > 1) CHECK(!pc_matmul(NULL, &a)); /* not a whole block */
    a.n_in = f->n_in;
    a.wt = PC_TYPE_Q8_K; /* an activation type: no dot product */
    CHECK(!pc_matmul(NULL, &a));
}

/* A batch over one x equals its members run alone, bitwise; mismatched batches are refused. */
static void check_batch(test_rng *rng, pc_pool *pool, const pc_type *types, int n, int n_in, pc_isa isa) {
    enum { TOK = 17 };
    static const int n_outs[4] = {37, 5, 64, 0};
    float *x = malloc(sizeof(float) * (size_t)n_in * TOK), *row = malloc(sizeof(float) * (size_t)n_in);
    for (int i = 0; i < n_in * TOK; i++) x[i] = test_rng_float(rng);
    void *scratch = aligned(pc_matmul_scratch_size(types[0], n_in, TOK));
    pc_matmul_args a[4];
    float *alone[4];
    for (int i = 0; i < n; i++) {
        const size_t wrow = pc_row_size(types[i], n_in);
        uint8_t *w = malloc(wrow * (size_t)n_outs[i] + 1);
        for (int o = 0; o < n_outs[i]; o++) {
            for (int k = 0; k < n_in; k++) row[k] = test_rng_float(rng);
            pc_quantize_row(types[i], row, w + o * wrow, n_in);
        }
        void *packed = NULL; /* members 0 and 2 packed, 1 and 3 not: a batch may mix them */
        if (i % 2 == 0 && pc_pack_supported(types[i])) {
            packed = aligned(pc_pack_size(types[i], n_in, n_outs[i]) + 1);
            CHECK(pc_pack(types[i], w, n_in, n_outs[i], packed));
        }
        a[i] = (pc_matmul_args){.wt = types[i], .w = w, .packed = packed, .n_in = n_in, .n_out = n_outs[i], .x = x,
                                .n_tok = TOK, .y = malloc(sizeof(float) * (size_t)(n_outs[i] * TOK) + 1),
                                .scratch = scratch, .isa = isa};
        alone[i] = malloc(sizeof(float) * (size_t)(n_outs[i] * TOK) + 1);
        pc_matmul_args single = a[i];
        single.y = alone[i];
        CHECK(pc_matmul(NULL, &single));
    }
    for (int tok = 1; tok <= TOK; tok += TOK - 1) {
        for (int i = 0; i < n; i++) a[i].n_tok = tok;
        CHECK(pc_matmul_batch(pool, a, n));
        for (int i = 0; i < n; i++)
            CHECK_MSG(memcmp(a[i].y, alone[i], sizeof(float) * (size_t)(n_outs[i] * tok)) == 0,
                      "batch member %d (%s) on %s, n_tok=%d", i, pc_type_name(types[i]), pc_isa_name(isa), tok);
    }
    pc_matmul_args bad[2] = {a[0], a[0]};
    bad[1].x = x + 1; /* another x */
    CHECK(!pc_matmul_batch(pool, bad, 2));
    CHECK(!pc_matmul_batch(pool, a, 0));
    bad[1] = a[0];
    bad[1].wt = pc_vec_dot_type(a[0].wt) == PC_TYPE_Q8_1 ? PC_TYPE_Q8_0 : PC_TYPE_Q4_1; /* another activation type */
    CHECK(!pc_matmul_batch(pool, bad, 2));
    for (int i = 0; i < n; i++) {
        free((void *)a[i].w);
        free((void *)a[i].packed);
        free(a[i].y);
        free(alone[i]);
    }
    free(x);
    free(row);
    free(scratch);
}

/* A random n_out x n_in matrix of type wt (packed when asked and possible) for input x. */
static pc_matmul_args random_member(test_rng *rng, pc_type wt, int n_in, int n_out, bool pack, const float *x,
                                    int n_tok, void *scratch, pc_isa isa) {
    const size_t wrow = pc_row_size(wt, n_in);
    uint8_t *w = malloc(wrow * (size_t)n_out + 1);
    float *row = malloc(sizeof(float) * (size_t)n_in);
    for (int o = 0; o < n_out; o++) {
        for (int k = 0; k < n_in; k++) row[k] = test_rng_float(rng);
        pc_quantize_row(wt, row, w + o * wrow, n_in);
    }
    free(row);
    void *packed = NULL;
    if (pack && pc_pack_supported(wt)) {
        packed = aligned(pc_pack_size(wt, n_in, n_out) + 1);
        CHECK(pc_pack(wt, w, n_in, n_out, packed));
    }
    return (pc_matmul_args){.wt = wt, .w = w, .packed = packed, .n_in = n_in, .n_out = n_out, .x = x, .n_tok = n_tok,
                            .y = malloc(sizeof(float) * (size_t)(n_out * n_tok) + 1), .scratch = scratch, .isa = isa};
}

/* The fused epilogues equal the separate steps bitwise: pc_matmul_acc is
 * pc_matmul then pc_add, pc_matmul_swiglu the two products then pc_swiglu
 * (gate packed, up not, so a task's rows mix the kernels); both at one token
 * and at 17, and shapes that cannot pair are refused. */
static void check_epilogues(test_rng *rng, pc_pool *pool, pc_type gate_t, pc_type up_t, int n_in, pc_isa isa) {
    enum { TOK = 17, OUT = 37 };
    float *x = malloc(sizeof(float) * (size_t)n_in * TOK);
    for (int i = 0; i < n_in * TOK; i++) x[i] = test_rng_float(rng);
    void *scratch = aligned(pc_matmul_scratch_size(gate_t, n_in, TOK));
    pc_matmul_args a[2] = {random_member(rng, gate_t, n_in, OUT, true, x, TOK, scratch, isa),
                           random_member(rng, up_t, n_in, OUT, false, x, TOK, scratch, isa)};
    float gate[OUT * TOK], up[OUT * TOK], acc[OUT * TOK], want[OUT * TOK];
    for (int tok = 1; tok <= TOK; tok += TOK - 1) {
        const size_t bytes = sizeof(float) * (size_t)(OUT * tok);
        for (int i = 0; i < OUT * tok; i++) acc[i] = want[i] = test_rng_float(rng) * 4.f;
        pc_matmul_args one[2] = {a[0], a[1]};
        one[0].n_tok = one[1].n_tok = tok;
        one[0].y = gate;
        one[1].y = up;
        CHECK(pc_matmul(NULL, &one[0]) && pc_matmul(NULL, &one[1]));
        pc_add(want, gate, OUT * tok);
        pc_matmul_args fused = a[0];
        fused.n_tok = tok;
        memset(fused.y, 0xFF, bytes);
        CHECK(pc_matmul_acc(pool, &fused, acc));
        CHECK_MSG(!memcmp(acc, want, bytes), "pc_matmul_acc %s on %s, n_tok=%d", pc_type_name(gate_t), pc_isa_name(isa), tok);
        pc_swiglu(gate, up, OUT * tok);
        pc_matmul_args pair[2] = {a[0], a[1]};
        pair[0].n_tok = pair[1].n_tok = tok;
        memset(pair[0].y, 0xFF, bytes); /* NaN: no row may be left from the runs above */
        memset(pair[1].y, 0xFF, bytes);
        CHECK(pc_matmul_swiglu(pool, pair));
        CHECK_MSG(!memcmp(pair[0].y, gate, bytes) && !memcmp(pair[1].y, up, bytes), "pc_matmul_swiglu %s+%s on %s, n_tok=%d",
                  pc_type_name(gate_t), pc_type_name(up_t), pc_isa_name(isa), tok);
    }
    pc_matmul_args bad[2] = {a[0], a[1]};
    bad[1].n_out = OUT - 1;
    CHECK(!pc_matmul_swiglu(pool, bad));
    bad[1] = a[1];
    bad[1].y = a[0].y;
    CHECK(!pc_matmul_swiglu(pool, bad));
    CHECK(!pc_matmul_acc(pool, &a[0], NULL));
    for (int i = 0; i < 2; i++) {
        free((void *)a[i].w);
        free((void *)a[i].packed);
        free(a[i].y);
    }
    free(x);
    free(scratch);
}

/* pc_matmul_batch_then: each task's epilogue sees whole groups of `align`
 * rows whose outputs are already written for every token (it compares them
 * with pc_matmul's there), every row of every member exactly once, and the
 * outputs are pc_matmul's bitwise; at 1 and 17 tokens; an align that does not
 * divide an n_out, or no epilogue, is refused. */
enum { THEN_ALIGN = 32, THEN_TOK = 17 };
static const int then_out[3] = {96, 32, 160};

typedef struct then_probe {
    const pc_matmul_args *a;
    const float *want[3]; /* pc_matmul's outputs per member */
    int seen[3][160];     /* times the epilogue covered each row; tasks own disjoint rows */
    int wrong[3][160];    /* rows that were not yet pc_matmul's when their epilogue ran, or misaligned */
} then_probe;

static void then_epi(void *ctx, int member, int64_t o0, int64_t o1) {
    then_probe *p = ctx;
    const pc_matmul_args *a = &p->a[member];
    const bool aligned_range = o0 % THEN_ALIGN == 0 && o1 % THEN_ALIGN == 0;
    for (int64_t o = o0; o < o1; o++) {
        p->seen[member][o]++;
        for (int64_t t = 0; t < a->n_tok; t++)
            if (!aligned_range || memcmp(&a->y[t * a->n_out + o], &p->want[member][t * a->n_out + o], sizeof(float)))
                p->wrong[member][o] = 1;
    }
}

static void check_batch_then(test_rng *rng, pc_pool *pool, pc_isa isa) {
    enum { N_IN = 736 };
    float *x = malloc(sizeof(float) * N_IN * THEN_TOK);
    for (int i = 0; i < N_IN * THEN_TOK; i++) x[i] = test_rng_float(rng);
    void *scratch = aligned(pc_matmul_scratch_size(PC_TYPE_Q4_1, N_IN, THEN_TOK));
    static const pc_type types[3] = {PC_TYPE_Q4_1, PC_TYPE_Q5_1, PC_TYPE_Q4_1};
    pc_matmul_args a[3];
    float *want[3];
    for (int i = 0; i < 3; i++) {
        a[i] = random_member(rng, types[i], N_IN, then_out[i], i != 1, x, THEN_TOK, scratch, isa);
        want[i] = malloc(sizeof(float) * (size_t)(then_out[i] * THEN_TOK));
    }
    for (int tok = 1; tok <= THEN_TOK; tok += THEN_TOK - 1) {
        then_probe *p = calloc(1, sizeof *p);
        pc_matmul_args run[3];
        for (int i = 0; i < 3; i++) {
            pc_matmul_args one = a[i];
            one.n_tok = tok;
            one.y = want[i];
            CHECK(pc_matmul(NULL, &one));
            run[i] = a[i];
            run[i].n_tok = tok;
            memset(run[i].y, 0xFF, sizeof(float) * (size_t)(then_out[i] * tok)); /* NaN until written */
            p->want[i] = want[i];
        }
        p->a = run;
        CHECK(pc_matmul_batch_then(pool, run, 3, THEN_ALIGN, then_epi, p));
        for (int i = 0; i < 3; i++) {
            int once = 1, right = 1;
            for (int o = 0; o < then_out[i]; o++) {
                once &= p->seen[i][o] == 1;
                right &= !p->wrong[i][o];
            }
            CHECK_MSG(once && right && !memcmp(run[i].y, want[i], sizeof(float) * (size_t)(then_out[i] * tok)),
                      "pc_matmul_batch_then member %d on %s, n_tok=%d, %d threads: every row once %d, written first %d", i,
                      pc_isa_name(isa), tok, pc_pool_size(pool), once, right);
        }
        CHECK(!pc_matmul_batch_then(pool, run, 3, 64, then_epi, p)); /* 64 does not divide 96 */
        CHECK(!pc_matmul_batch_then(pool, run, 3, THEN_ALIGN, NULL, p));
        free(p);
    }
    for (int i = 0; i < 3; i++) {
        free((void *)a[i].w);
        free((void *)a[i].packed);
        free(a[i].y);
        free(want[i]);
    }
    free(x);
    free(scratch);
}

/* The feed-forward chain: pc_matmul_swiglu_then whose epilogue quantizes
 * each task's rows of the swiglu output with pc_matmul_quantize_part for the
 * down projection (packed, then unpacked), which then runs with x_ready: its
 * output equals pc_matmul's over the swiglu output bitwise, at 1 and 17
 * tokens; a range that is not whole blocks is refused. */
typedef struct down_probe {
    pc_matmul_args down;
    int bad;
} down_probe;

static void quantize_rows(void *ctx, int member, int64_t o0, int64_t o1) {
    down_probe *p = ctx;
    (void)member;
    if (!pc_matmul_quantize_part(&p->down, o0, o1)) p->bad = 1; /* stays 0 or becomes 1 from any task */
}

static void check_down_chain(test_rng *rng, pc_pool *pool, pc_isa isa) {
    enum { N_IN = 736, FF = 192, OUT = 40, TOK = 17 };
    float *x = malloc(sizeof(float) * N_IN * TOK);
    for (int i = 0; i < N_IN * TOK; i++) x[i] = test_rng_float(rng);
    void *scratch = aligned(pc_matmul_scratch_size(PC_TYPE_Q4_1, N_IN, TOK));
    void *down_scratch = aligned(pc_matmul_scratch_size(PC_TYPE_Q4_1, FF, TOK));
    float *gate_want = malloc(sizeof(float) * FF * TOK), *up_want = malloc(sizeof(float) * FF * TOK);
    float *want = malloc(sizeof(float) * OUT * TOK);
    pc_matmul_args gu[2] = {random_member(rng, PC_TYPE_Q4_1, N_IN, FF, true, x, TOK, scratch, isa),
                            random_member(rng, PC_TYPE_Q4_1, N_IN, FF, false, x, TOK, scratch, isa)};
    for (int packed = 1; packed >= 0; packed--) {
        pc_matmul_args down = random_member(rng, PC_TYPE_Q4_1, FF, OUT, packed, gu[0].y, TOK, down_scratch, isa);
        for (int tok = 1; tok <= TOK; tok += TOK - 1) {
            pc_matmul_args one[2] = {gu[0], gu[1]}, d = down;
            one[0].n_tok = one[1].n_tok = d.n_tok = tok;
            one[0].y = gate_want;
            one[1].y = up_want;
            CHECK(pc_matmul(NULL, &one[0]) && pc_matmul(NULL, &one[1]));
            pc_swiglu(gate_want, up_want, FF * tok);
            d.x = gate_want;
            d.y = want;
            CHECK(pc_matmul(NULL, &d));
            pc_matmul_args pair[2] = {gu[0], gu[1]};
            pair[0].n_tok = pair[1].n_tok = tok;
            down_probe p = {.down = down};
            p.down.n_tok = tok;
            memset(down_scratch, 0xFF, pc_matmul_scratch_size(PC_TYPE_Q4_1, FF, tok));
            CHECK(pc_matmul_x_block(&p.down) == 32);
            CHECK(pc_matmul_swiglu_then(pool, pair, 32, quantize_rows, &p) && !p.bad);
            p.down.x_ready = true;
            memset(p.down.y, 0xFF, sizeof(float) * OUT * tok);
            CHECK(pc_matmul(pool, &p.down));
            CHECK_MSG(!memcmp(p.down.y, want, sizeof(float) * OUT * tok), "down after swiglu_then, packed %d, %s, n_tok=%d",
                      packed, pc_isa_name(isa), tok);
            CHECK(!pc_matmul_quantize_part(&p.down, 16, 48));
            CHECK(!pc_matmul_swiglu_then(pool, pair, 128, quantize_rows, &p)); /* 128 does not divide 192 */
        }
        free((void *)down.w);
        free((void *)down.packed);
        free(down.y);
    }
    for (int i = 0; i < 2; i++) {
        free((void *)gu[i].w);
        free((void *)gu[i].packed);
        free(gu[i].y);
    }
    free(x);
    free(scratch);
    free(down_scratch);
    free(gate_want);
    free(up_want);
    free(want);
}

/* Rows as long as a feed-forward's down projection, so n_tok rows of
 * activations exceed what one token block holds: the packed matmul over
 * several blocks (each prepared, or direct when short) equals the dot per
 * output bitwise, at one and two threads. */
static void check_long_rows(test_rng *rng, pc_pool *pool, pc_type wt, pc_isa isa) {
    enum { N_IN = 8960, OUT = 21, TOK = 150 };
    float *x = malloc(sizeof(float) * (size_t)N_IN * TOK);
    for (int i = 0; i < N_IN * TOK; i++) x[i] = test_rng_float(rng);
    void *scratch = aligned(pc_matmul_scratch_size(wt, N_IN, TOK));
    pc_matmul_args a = random_member(rng, wt, N_IN, OUT, true, x, TOK, scratch, isa);
    float *want = malloc(sizeof(float) * OUT * TOK);
    pc_matmul_args dots = a;
    dots.packed = NULL;
    dots.y = want;
    CHECK(pc_matmul(NULL, &dots));
    for (int tok = TOK - 1; tok <= TOK; tok++) { /* a block tail of one token, and none */
        a.n_tok = tok;
        memset(a.y, 0xFF, sizeof(float) * OUT * TOK);
        CHECK(pc_matmul(pool, &a));
        CHECK_MSG(!memcmp(a.y, want, sizeof(float) * (size_t)(OUT * tok)), "long rows %s on %s, n_tok=%d",
                  pc_type_name(wt), pc_isa_name(isa), tok);
    }
    free((void *)a.w);
    free((void *)a.packed);
    free(a.y);
    free(want);
    free(x);
    free(scratch);
}

/* One token over matrices big enough that matmul splits the job into
 * several tasks a thread (one per 256 KiB of weights, up to 8): the row
 * ranges of every split equal the dot per output bitwise, and the same
 * token's row in a 3-token batch (which is split another way). */
static void check_decode_tasks(test_rng *rng, pc_pool *pool, pc_type wt, int n_out, pc_isa isa) {
    enum { N_IN = 8960, TOK = 3 };
    float *x = malloc(sizeof(float) * N_IN * TOK);
    for (int i = 0; i < N_IN * TOK; i++) x[i] = test_rng_float(rng);
    void *scratch = aligned(pc_matmul_scratch_size(wt, N_IN, TOK));
    pc_matmul_args a = random_member(rng, wt, N_IN, n_out, true, x, 1, scratch, isa);
    float *want = malloc(sizeof(float) * (size_t)n_out * TOK);
    pc_matmul_args dots = a;
    dots.packed = NULL;
    dots.y = want;
    dots.n_tok = TOK;
    CHECK(pc_matmul(NULL, &dots));
    float *one = a.y;
    memset(one, 0xFF, sizeof(float) * (size_t)n_out);
    CHECK(pc_matmul(pool, &a));
    CHECK_MSG(!memcmp(one, want, sizeof(float) * (size_t)n_out), "decode tasks %s on %s, n_out=%d",
              pc_type_name(wt), pc_isa_name(isa), n_out);
    float *batch = malloc(sizeof(float) * (size_t)n_out * TOK);
    a.n_tok = TOK;
    a.y = batch;
    CHECK(pc_matmul(pool, &a));
    CHECK_MSG(!memcmp(batch, want, sizeof(float) * (size_t)n_out * TOK), "decode tasks %s on %s, n_out=%d, %d tokens",
              pc_type_name(wt), pc_isa_name(isa), n_out, TOK);
    free((void *)a.w);
    free((void *)a.packed);
    free(one);
    free(want);
    free(batch);
    free(x);
    free(scratch);
}

/* The layout's contract at its edges: which types pack, sizes in whole groups, bad lengths refused. */
static void check_pack_api(void) {
    CHECK(pc_pack_supported(PC_TYPE_Q4_K) && pc_pack_supported(PC_TYPE_Q5_0) && pc_pack_supported(PC_TYPE_Q8_0));
    CHECK(!pc_pack_supported(PC_TYPE_Q2_K) && !pc_pack_supported(PC_TYPE_F16) && !pc_pack_supported(PC_TYPE_Q8_K));
    CHECK(pc_pack_size(PC_TYPE_Q4_K, 512, 17) == 2 * 2 * sizeof(pc_pack_q4_K)); /* 17 rows: two groups */
    CHECK(pc_pack_size(PC_TYPE_Q4_0, 64, 16) == 2 * sizeof(pc_pack_q4_0));
    CHECK(sizeof(pc_pack_q6_K) == PC_PACK_ROWS * sizeof(pc_block_q6_K)); /* same bytes, other places */
    CHECK(sizeof(pc_pack_q5_0) == PC_PACK_ROWS * sizeof(pc_block_q5_0));
    CHECK(pc_pack_size(PC_TYPE_Q4_K, 300, 16) == 0 && pc_pack_size(PC_TYPE_Q2_K, 256, 16) == 0);
    uint8_t w[sizeof(pc_block_q2_K)] = {0}, dst[64];
    CHECK(!pc_pack(PC_TYPE_Q2_K, w, 256, 1, dst));
    CHECK(!pc_pack(PC_TYPE_Q4_0, w, 33, 1, dst));
}

int main(void) {
    test_rng rng = {0xD1B54A32D192ED03ULL};
    check_pack_api();
    const pc_isa best = pc_isa_detect();
    pc_pool *pools[2] = {pc_pool_create(1), pc_pool_create(2)};
    CHECK(pools[0] && pools[1]);
    if (!pools[0] || !pools[1]) return check_report();
    static const pc_type types[] = {PC_TYPE_Q4_1, PC_TYPE_Q8_0, PC_TYPE_Q4_0, PC_TYPE_Q5_0, PC_TYPE_Q5_1,
                                    PC_TYPE_Q4_K, PC_TYPE_Q6_K, PC_TYPE_Q2_K, PC_TYPE_Q3_K, PC_TYPE_Q5_K,
                                    PC_TYPE_F16,  PC_TYPE_BF16, PC_TYPE_F32};
    static const int n_toks[] = {1, 3, 4, 5, 17, 24, 26, 64, 70};
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        fixture f;
        fixture_init(&rng, &f, types[ti]);
        for (int isa = PC_ISA_SCALAR; isa <= (int)best; isa++)
            for (int packed = 0; packed <= (f.packed != NULL); packed++) {
                for (int p = 0; p < 2; p++)
                    for (size_t k = 0; k < sizeof n_toks / sizeof n_toks[0]; k++)
                        check_against_dots(pools[p], &f, (pc_isa)isa, packed, n_toks[k], p + 1);
                check_against_dots(NULL, &f, (pc_isa)isa, packed, 5, 0);
                check_batch_independence(pools[1], &f, (pc_isa)isa, packed);
            }
        check_rejects(&f);
        fixture_free(&f);
    }
    static const pc_type q8_1_set[2] = {PC_TYPE_Q4_1, PC_TYPE_Q5_1};
    static const pc_type q8_0_set[3] = {PC_TYPE_Q4_0, PC_TYPE_Q8_0, PC_TYPE_Q5_0};
    static const pc_type q8_K_set[4] = {PC_TYPE_Q4_K, PC_TYPE_Q6_K, PC_TYPE_Q5_K, PC_TYPE_Q2_K};
    for (int isa = PC_ISA_SCALAR; isa <= (int)best; isa++) {
        check_batch(&rng, pools[1], q8_1_set, 2, 736, (pc_isa)isa);
        check_batch(&rng, pools[1], q8_0_set, 3, 736, (pc_isa)isa);
        check_batch(&rng, pools[0], q8_K_set, 4, 512, (pc_isa)isa);
        for (int p = 0; p < 2; p++) {
            check_epilogues(&rng, pools[p], PC_TYPE_Q4_K, PC_TYPE_Q6_K, 512, (pc_isa)isa);
            check_epilogues(&rng, pools[p], PC_TYPE_Q4_1, PC_TYPE_Q4_1, 736, (pc_isa)isa);
            check_epilogues(&rng, pools[p], PC_TYPE_Q5_0, PC_TYPE_Q8_0, 736, (pc_isa)isa);
            check_batch_then(&rng, pools[p], (pc_isa)isa);
            check_down_chain(&rng, pools[p], (pc_isa)isa);
        }
        check_long_rows(&rng, pools[1], PC_TYPE_Q4_K, (pc_isa)isa);
        check_long_rows(&rng, pools[1], PC_TYPE_Q6_K, (pc_isa)isa);
        /* Q4_K rows of 8960 are 5040 B: 300 rows make 3 tasks a thread, 1000 the most (8) */
        check_decode_tasks(&rng, pools[1], PC_TYPE_Q4_K, 300, (pc_isa)isa);
        check_decode_tasks(&rng, pools[1], PC_TYPE_Q4_K, 1000, (pc_isa)isa);
        check_decode_tasks(&rng, pools[1], PC_TYPE_Q6_K, 700, (pc_isa)isa);
    }
    pc_pool_free(pools[0]);
    pc_pool_free(pools[1]);
    return check_report();
}
