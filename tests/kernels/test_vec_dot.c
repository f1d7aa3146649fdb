/* test_vec_dot.c - every dot product on every ISA path this CPU has, against a
 * double-precision dot of the dequantized weight and activation rows.
 *
 * The kernels compute exactly that sum (integer block sums are exact; only
 * float rounding of scale products and accumulation differs), so the
 * tolerance is tight: 1e-4 of sum |w_i x_i|. Q8_1 carries each block's
 * activation sum in the f16 field s, which the min term of Q4_1/Q5_1 uses
 * instead of sum(x); the reference does the same. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "kernels/cpu/quant.h"
#include "test_rng.h"


/* The double reference, and sum |w_i x_i| for the tolerance. */
static double ref_dot(pc_type wt, const void *wq, const void *xq, int64_t n, double *mag) {
    const pc_type xt = pc_vec_dot_type(wt);
    float *w = malloc((size_t)n * sizeof *w), *x = malloc((size_t)n * sizeof *x);
    pc_dequantize_row(wt, wq, w, n);
    pc_dequantize_row(xt, xq, x, n);
    double sum = 0, abs_sum = 0;
    for (int64_t i = 0; i < n; i++) {
        sum += (double)w[i] * x[i];
        abs_sum += fabs((double)w[i] * x[i]);
    }
    if (xt == PC_TYPE_Q8_1) { /* min term: m * s in place of m * sum(x) */
        const size_t wb = pc_type_get(wt)->type_size;
        const pc_block_q8_1 *xb = xq;
        for (int64_t b = 0; b < n / 32; b++) {
            pc_f16 m;
            memcpy(&m, (const uint8_t *)wq + b * wb + 2, sizeof m); /* Q4_1/Q5_1: d, then m */
            double xs = 0;
            for (int j = 0; j < 32; j++) xs += x[32 * b + j];
            sum += (double)pc_f16_to_f32(m) * ((double)pc_f16_to_f32(xb[b].s) - xs);
        }
    }
    free(w);
    free(x);
    *mag = abs_sum;
    return sum;
}

static void check_type(test_rng *rng, pc_type wt, int64_t n, pc_isa best) {
    const pc_type xt = pc_vec_dot_type(wt);
    CHECK(xt != PC_TYPE_COUNT);
    float *wf = malloc((size_t)n * sizeof *wf), *xf = malloc((size_t)n * sizeof *xf);
    void *wq = malloc(pc_row_size(wt, n)), *xq = malloc(pc_row_size(xt, n));
    for (int trial = 0; trial < 4; trial++) {
        const float wscale = trial == 3 ? 1e-3f : 1.f, xoff = trial == 2 ? 0.5f : 0.f; /* tiny, one-sided */
        for (int64_t i = 0; i < n; i++) {
            wf[i] = test_rng_float(rng) * wscale;
            xf[i] = test_rng_float(rng) * (i % 61 == 0 ? 8.f : 1.f) + xoff;
        }
        CHECK(pc_quantize_row(wt, wf, wq, n));
        CHECK(pc_quantize_row(xt, xf, xq, n));
        double mag;
        const double want = ref_dot(wt, wq, xq, n, &mag);
        for (int isa = PC_ISA_SCALAR; isa <= (int)best; isa++) {
            pc_vec_dot_fn f = pc_vec_dot_get(wt, (pc_isa)isa);
            CHECK_MSG(f != NULL, "%s has no dot on %s", pc_type_name(wt), pc_isa_name((pc_isa)isa));
            if (!f) continue;
            float got = 0;
            f(n, &got, wq, xq);
            CHECK_MSG(fabs(got - want) <= 1e-4 * mag + 1e-30, "%s on %s, n=%lld trial %d: %.9g vs %.9g",
                      pc_type_name(wt), pc_isa_name((pc_isa)isa), (long long)n, trial, got, want);
        }
    }
    free(wf);
    free(xf);
    free(wq);
    free(xq);
}

int main(void) {
    test_rng rng = {0x2545F4914F6CDD1DULL};
    const pc_isa best = pc_isa_detect();
    printf("isa: %s\n", pc_isa_name(best));
    static const pc_type types[] = {PC_TYPE_F32,  PC_TYPE_F16,  PC_TYPE_BF16, PC_TYPE_Q4_0, PC_TYPE_Q4_1,
                                    PC_TYPE_Q5_0, PC_TYPE_Q5_1, PC_TYPE_Q8_0, PC_TYPE_Q2_K, PC_TYPE_Q3_K,
                                    PC_TYPE_Q4_K, PC_TYPE_Q5_K, PC_TYPE_Q6_K};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        const int64_t bs = pc_type_get(types[i])->block_size;
        check_type(&rng, types[i], bs == 1 ? 1000 : 1024, best); /* 1000: the float kernels' tails */
        check_type(&rng, types[i], bs == 1 ? 7 : bs, best);      /* one block, or all tail */
        check_type(&rng, types[i], bs == 1 ? 576 + 19 : 2304, best);
        if (bs == 32) check_type(&rng, types[i], 32 * 19, best); /* an odd block count: the AVX-512 pair tail */
    }
    CHECK(pc_vec_dot_get(PC_TYPE_Q8_K, PC_ISA_SCALAR) == NULL); /* activations only */
    CHECK(pc_vec_dot_type(PC_TYPE_I8) == PC_TYPE_COUNT);
    return check_report();
}
