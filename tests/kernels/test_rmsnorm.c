/* test_rmsnorm.c - pc_rmsnorm against hand-computed values, a long double
 * reference, and the summation order ops.h documents.
 *
 * The order matters beyond accuracy: every row of a prefill batch and every
 * decode row go through this one function, and cached == uncached holds only
 * while its bits depend on nothing but the row. The spec written out here
 * (element i into lane i % 16, lanes combined pairwise: 8, 4, 2, 1) is what a
 * faster version must keep, so the test compares bits with it, at sizes with
 * and without a tail. Summed in double, the order rarely reaches the float
 * result (8 lanes instead of 16 gave the same bits on these inputs); what the
 * comparison catches is a change of the lanes' precision or of the per-element
 * arithmetic (float lanes: 36 checks fail), which the long double reference's
 * tolerance lets through. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "kernels/cpu/ops.h"

enum { MAX_N = 8960, LANES = 16 };

/* ops.h's order, written from its description rather than from ops.c. */
static void spec_rmsnorm(float *y, const float *x, const float *w, int64_t n, float eps) {
    double lane[LANES] = {0};
    for (int64_t i = 0; i < n; i++) lane[i % LANES] += (double)(x[i] * x[i]);
    for (int width = LANES / 2; width > 0; width /= 2)
        for (int l = 0; l < width; l++) lane[l] += lane[l + width];
    const float scale = 1.0f / sqrtf((float)(lane[0] / (double)n) + eps);
    for (int64_t i = 0; i < n; i++) y[i] = (x[i] * scale) * w[i];
}

/* Values over several magnitudes, as hidden states have, from a fixed seed. */
static void fill(float *x, float *w, int64_t n, uint32_t *seed) {
    for (int64_t i = 0; i < n; i++) {
        *seed = *seed * 1664525u + 1013904223u;
        const float u = (float)(*seed >> 8) / 16777216.0f - 0.5f;
        x[i] = u * ldexpf(1.0f, (int)(*seed % 13) - 6);
        w[i] = 0.5f + (float)(i % 7) * 0.25f;
    }
}

static void hand_computed(void) {
    const float x[2] = {3.0f, 4.0f}, w[2] = {1.0f, 2.0f};
    float y[2];
    pc_rmsnorm(y, x, w, 2, 0.0f); /* mean of squares 12.5: y = x / sqrt(12.5) * w */
    CHECK(fabsf(y[0] - 0.84852814f) < 1e-6f);
    CHECK(fabsf(y[1] - 2.26274170f) < 1e-6f);
    const float z[3] = {0}, one[3] = {1, 1, 1};
    float yz[3] = {1, 1, 1};
    pc_rmsnorm(yz, z, one, 3, 1e-5f); /* eps keeps a zero row finite */
    CHECK(yz[0] == 0.0f && yz[1] == 0.0f && yz[2] == 0.0f);
}

static void against_reference(const float *x, const float *w, int64_t n, float eps) {
    float *y = malloc(sizeof(float) * (size_t)n), *s = malloc(sizeof(float) * (size_t)n);
    if (!y || !s) abort();
    pc_rmsnorm(y, x, w, n, eps);
    spec_rmsnorm(s, x, w, n, eps);
    long double sum = 0;
    for (int64_t i = 0; i < n; i++) sum += (long double)x[i] * x[i];
    const long double scale = 1.0L / sqrtl(sum / n + eps);
    int64_t far = 0, differ = 0;
    for (int64_t i = 0; i < n; i++) {
        const long double ref = x[i] * scale * w[i];
        far += fabsl(y[i] - ref) > 4e-7L * fabsl(ref) + 1e-30L;
        differ += memcmp(&y[i], &s[i], sizeof(float)) != 0;
    }
    CHECK_MSG(far == 0, "n %lld: %lld values off the long double reference\n", (long long)n, (long long)far);
    CHECK_MSG(differ == 0, "n %lld: %lld values differ from the documented order\n", (long long)n, (long long)differ);
    free(y);
    free(s);
}

int main(void) {
    hand_computed();
    static const int64_t sizes[] = {1, 7, 15, 16, 17, 33, 64, 576, 577, 896, 1536, 1537, 8960};
    float *x = malloc(sizeof(float) * MAX_N), *w = malloc(sizeof(float) * MAX_N);
    if (!x || !w) abort();
    uint32_t seed = 12345;
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++)
        for (int rep = 0; rep < 8; rep++) {
            fill(x, w, sizes[k], &seed);
            against_reference(x, w, sizes[k], rep % 2 ? 1e-6f : 1e-5f);
        }
    free(x);
    free(w);
    return check_report();
}
