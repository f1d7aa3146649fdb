/* test_prefetch.c - a team member's weight bytes and the cursor that walks them.
 *
 * pc_matmul_part_spans must name exactly the bytes the share's call reads, in
 * its order: the truth is the call itself, run as that share with y
 * pre-filled with a marker (the rows it wrote), mapped to bytes by the
 * layout (packed row groups of PC_PACK_ROWS, or plain rows). Shapes with odd
 * row counts (partial row groups), 1-3 shares, batches of 3 with an
 * alignment (the Q/K/V step's heads), and the gate/up pair (paired). The
 * cursor (prefetch.h) must then give every line of those spans once, in
 * order, from where it is aimed up to `ahead` bytes, carry on where it
 * stopped, and restart when aimed behind itself (the next token). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/pack.h"
#include "kernels/cpu/prefetch.h"
#include "kernels/cpu/quant_impl.h" /* pc_dot_kernel_get: whether the path reads the packed copy */
#include "test_rng.h"

enum { N_IN = 320, MAX_OUT = 200, MAX_SPANS = 64, MAX_LINES = 4096 };

typedef struct mat {
    pc_type wt;
    int n_out;
    void *w, *packed;
    float *y;
} mat;

static void *aligned(size_t n) { return aligned_alloc(64, (n + 63) / 64 * 64); }

static void mat_init(test_rng *rng, mat *m, pc_type wt, int n_out, bool pack) {
    const size_t wrow = pc_row_size(wt, N_IN);
    float row[N_IN];
    m->wt = wt;
    m->n_out = n_out;
    m->w = malloc(wrow * (size_t)n_out);
    for (int o = 0; o < n_out; o++) {
        for (int i = 0; i < N_IN; i++) row[i] = test_rng_float(rng);
        pc_quantize_row(wt, row, (uint8_t *)m->w + (size_t)o * wrow, N_IN);
    }
    m->packed = NULL;
    if (pack && pc_pack_supported(wt)) {
        m->packed = aligned(pc_pack_size(wt, N_IN, n_out));
        CHECK(pc_pack(wt, m->w, N_IN, n_out, m->packed));
    }
    m->y = malloc(sizeof(float) * MAX_OUT);
}

static void mat_free(mat *m) {
    free(m->w);
    free(m->packed);
    free(m->y);
}

static const float MARK = -12345.0f;

static void no_epi(void *ctx, int member, int64_t o0, int64_t o1) {
    (void)ctx;
    (void)member;
    (void)o0;
    (void)o1;
}

/* The bytes the kernels read for rows [o0, o1) of m: whole row groups when packed and the path has a packed kernel. */
static pc_wspan rows_bytes(const mat *m, const pc_matmul_args *a, int o0, int o1) {
    pc_dot_kernel k;
    if (a->packed && pc_dot_kernel_get(m->wt, a->isa, &k) && k.gemm) {
        const size_t g = pc_pack_size(m->wt, N_IN, PC_PACK_ROWS);
        return (pc_wspan){(const uint8_t *)m->packed + (size_t)(o0 / PC_PACK_ROWS) * g,
                          (size_t)((o1 - o0 + PC_PACK_ROWS - 1) / PC_PACK_ROWS) * g};
    }
    const size_t wrow = pc_row_size(m->wt, N_IN);
    return (pc_wspan){(const uint8_t *)m->w + (size_t)o0 * wrow, (size_t)(o1 - o0) * wrow};
}

/* The one run of rows of member i that the share wrote: false when they are not one run. */
static bool written_rows(const mat *m, int *o0, int *o1) {
    *o0 = *o1 = 0;
    int o = 0;
    while (o < m->n_out && m->y[o] == MARK) o++;
    *o0 = *o1 = o;
    while (*o1 < m->n_out && m->y[*o1] != MARK) (*o1)++;
    for (int r = *o1; r < m->n_out; r++)
        if (m->y[r] != MARK) return false;
    return true;
}

/* Every share of a job of n matrices (paired: gate and up) against the rows its call wrote. */
static void check_shares(mat *ms, int n, bool paired, int64_t align, pc_isa isa, const float *x, void *scratch,
                         int parts) {
    pc_matmul_args a[3];
    const char *what = paired ? "paired" : n == 3 ? "batch of 3" : "one";
    for (int part = 0; part < parts; part++) {
        for (int i = 0; i < n; i++) {
            a[i] = (pc_matmul_args){.wt = ms[i].wt, .w = ms[i].w, .packed = ms[i].packed, .n_in = N_IN,
                                    .n_out = ms[i].n_out, .x = x, .n_tok = 1, .y = ms[i].y, .scratch = scratch,
                                    .isa = isa, .part = part, .parts = parts};
            for (int o = 0; o < ms[i].n_out; o++) ms[i].y[o] = MARK;
        }
        bool ok = paired ? pc_matmul_swiglu_then(NULL, a, align, no_epi, NULL)
                  : align > 1 ? pc_matmul_batch_then(NULL, a, n, align, no_epi, NULL)
                             : pc_matmul_batch(NULL, a, n);
        CHECK(ok);
        pc_wspan want[6] = {{0}};
        int n_want = 0;
        for (int i = 0; i < n; i++) {
            int o0, o1;
            CHECK_MSG(written_rows(&ms[i], &o0, &o1), "%s: share %d/%d wrote rows of member %d in several runs",
                      what, part, parts, i);
            if (o0 < o1) want[n_want++] = rows_bytes(&ms[i], &a[i], o0, o1);
        }
        pc_wspan got[6] = {{0}};
        const int n_got = pc_matmul_part_spans(a, n, paired, align, got);
        CHECK_MSG(n_got == n_want, "%s on %s: share %d/%d: %d spans, its call read %d", what, pc_isa_name(isa), part,
                  parts, n_got, n_want);
        for (int s = 0; s < n_got && s < n_want; s++)
            CHECK_MSG(got[s].p == want[s].p && got[s].bytes == want[s].bytes,
                      "%s on %s: share %d/%d span %d: %zu bytes %td from where the call read %zu", what,
                      pc_isa_name(isa), part, parts, s, got[s].bytes, got[s].p - want[s].p, want[s].bytes);
    }
}

static void check_part_spans(test_rng *rng, pc_isa isa) {
    float x[N_IN];
    for (int i = 0; i < N_IN; i++) x[i] = test_rng_float(rng);
    void *scratch = aligned(pc_matmul_scratch_size(PC_TYPE_Q4_1, N_IN, 1) + pc_matmul_scratch_size(PC_TYPE_Q8_0, N_IN, 1));
    static const int outs[] = {37, 80, 200};
    for (int pack = 0; pack <= 1; pack++)
        for (int k = 0; k < 3; k++) {
            mat m;
            mat_init(rng, &m, pack ? PC_TYPE_Q4_1 : PC_TYPE_Q8_0, outs[k], pack);
            for (int parts = 1; parts <= 3; parts++) check_shares(&m, 1, false, 1, isa, x, scratch, parts);
            mat_free(&m);
        }
    mat qkv[3], gu[2];
    static const int qkv_out[3] = {192, 64, 64}; /* heads of 32 */
    for (int i = 0; i < 3; i++) mat_init(rng, &qkv[i], PC_TYPE_Q4_1, qkv_out[i], i != 2);
    for (int i = 0; i < 2; i++) mat_init(rng, &gu[i], PC_TYPE_Q4_1, 96, true);
    for (int parts = 1; parts <= 3; parts++) {
        check_shares(qkv, 3, false, 32, isa, x, scratch, parts);
        check_shares(gu, 2, true, 32, isa, x, scratch, parts);
    }
    for (int i = 0; i < 3; i++) mat_free(&qkv[i]);
    for (int i = 0; i < 2; i++) mat_free(&gu[i]);
    pc_matmul_args bad = {.wt = PC_TYPE_Q4_1, .n_in = N_IN, .n_out = 16, .x = x, .n_tok = 1, .scratch = scratch,
                          .isa = isa, .part = 2, .parts = 2};
    pc_wspan s[2];
    CHECK(pc_matmul_part_spans(&bad, 1, false, 1, s) == -1); /* part out of range */
    bad.parts = 0;
    CHECK(pc_matmul_part_spans(&bad, 1, false, 1, s) == -1); /* not a share */
    free(scratch);
}

/* Bytes from span s's first line to its end: where its lines lie in the sequence. */
static size_t len_of(const pc_wspan *s) { return s->bytes ? (size_t)((uintptr_t)s->p + s->bytes - ((uintptr_t)s->p & ~(uintptr_t)63)) : 0; }

/* Every line of spans[at ..] in order whose place (bytes from span at's first
 * line, spans counted by len_of) is below `ahead`. */
static int lines_from(const pc_wspan *sp, int n, int at, size_t ahead, const void **out) {
    int k = 0;
    size_t base = 0;
    for (int s = at; s < n; base += len_of(&sp[s]), s++) {
        const uintptr_t first = (uintptr_t)sp[s].p & ~(uintptr_t)63;
        for (size_t off = 0; off < len_of(&sp[s]); off += 64) {
            if (base + off >= ahead) return k;
            out[k++] = (const void *)(first + off);
        }
    }
    return k;
}

static int drain(pc_pf_cursor *c, const void **out) {
    int k = 0;
    for (const void *p; k < MAX_LINES && (p = pc_pf_next(c));) out[k++] = p;
    return k;
}

static void check_cursor(test_rng *rng) {
    static uint8_t buf[96 * 1024];
    pc_wspan sp[MAX_SPANS];
    const int n = 40;
    size_t at = 0;
    for (int s = 0; s < n; s++) {
        const size_t len = s % 7 == 3 ? 0 : 1 + test_rng_next(rng) % 2000; /* empty spans, and odd starts and ends */
        at += test_rng_next(rng) % 100;
        sp[s] = (pc_wspan){buf + at, len};
        at += len;
    }
    CHECK(at < sizeof buf);
    static const void *got[MAX_LINES], *want[MAX_LINES];
    pc_pf_cursor c;
    pc_pf_init(&c, sp, n);
    CHECK(pc_pf_next(&c) == NULL); /* not aimed: nothing */
    static const size_t aheads[] = {0, 1, 64, 100, 3000, 1 << 20};
    for (int s = 0; s < n; s += 3)
        for (size_t a = 0; a < sizeof aheads / sizeof aheads[0]; a++) {
            pc_pf_init(&c, sp, n);
            pc_pf_aim(&c, s, aheads[a]);
            const int k = drain(&c, got), kw = lines_from(sp, n, s, aheads[a], want);
            CHECK_MSG(k == kw && memcmp(got, want, sizeof got[0] * (size_t)k) == 0,
                      "aimed at span %d, %zu ahead: %d lines, want %d", s, aheads[a], k, kw);
        }
    /* Stopped at the limit, aimed further on: it goes on from where it
     * stopped (inside span 4 when 1000 bytes reach past spans 2 and 3), asking
     * for no line twice. */
    pc_pf_init(&c, sp, n);
    pc_pf_aim(&c, 2, 1000);
    int k = drain(&c, got);
    pc_pf_aim(&c, 4, 5000);
    k += drain(&c, got + k);
    const int k1 = lines_from(sp, n, 2, 1000, want);
    const size_t l23 = len_of(&sp[2]) + len_of(&sp[3]);
    const int skip = 1000 > l23 ? (int)((1000 - l23 + 63) / 64) : 0;
    int kw = k1 + lines_from(sp, n, 4, 5000, want + k1);
    memmove(want + k1, want + k1 + skip, sizeof want[0] * (size_t)(kw - k1 - skip));
    kw -= skip;
    CHECK_MSG(k == kw && memcmp(got, want, sizeof got[0] * (size_t)k) == 0, "aimed on: %d lines, want %d", k, kw);
    /* Aimed behind itself (the next pass): it starts again there. */
    pc_pf_aim(&c, 0, 300);
    k = drain(&c, got);
    kw = lines_from(sp, n, 0, 300, want);
    CHECK_MSG(k == kw && memcmp(got, want, sizeof got[0] * (size_t)k) == 0, "aimed behind: %d lines, want %d", k, kw);
    /* Asking for the lines (the prefetch itself) ends at the limit. */
    pc_pf_init(&c, sp, n);
    pc_pf_aim(&c, 1, 640);
    int steps = 0;
    while (pc_pf_step(&c, 3)) steps++;
    CHECK(steps == (lines_from(sp, n, 1, 640, want) + 2) / 3);
}

int main(void) {
    test_rng rng = {0x9E3779B97F4A7C15ULL};
    const pc_isa best = pc_isa_detect();
    for (int isa = PC_ISA_SCALAR; isa <= (int)best; isa++) check_part_spans(&rng, (pc_isa)isa);
    check_cursor(&rng);
    return check_report();
}
