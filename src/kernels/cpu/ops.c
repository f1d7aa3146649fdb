/* ops.c - element-wise kernels. Plain C: these are a small share of the time
 * (the matmuls and attention dominate) and the compiler vectorizes them. */
#include "kernels/cpu/ops.h"

#include <math.h>

/* The sum of squares in NORM_LANES partial sums, element i in lane i % NORM_LANES,
 * combined pairwise in a fixed tree: the same order for every row, batch and
 * thread count, so the bits stay independent of how tokens are batched. One
 * chain of n dependent double adds (ggml's order) made each decode norm a
 * serial step of ~1.5 us on one thread while the others wait; n / 16 adds
 * deep, the compiler vectorizes the lanes without reordering any of them. */
enum { NORM_LANES = 16 };

static double sum_squares(const float *x, int64_t n) {
    double acc[NORM_LANES] = {0};
    int64_t i = 0;
    for (; i + NORM_LANES <= n; i += NORM_LANES)
        for (int l = 0; l < NORM_LANES; l++) acc[l] += (double)(x[i + l] * x[i + l]);
    for (int l = 0; i < n; i++, l++) acc[l] += (double)(x[i] * x[i]);
    for (int width = NORM_LANES / 2; width > 0; width /= 2)
        for (int l = 0; l < width; l++) acc[l] += acc[l + width];
    return acc[0];
}

void pc_rmsnorm(float *y, const float *x, const float *w, int64_t n, float eps) {
    const double sum = sum_squares(x, n);
    const float scale = 1.0f / sqrtf((float)(sum / (double)n) + eps);
    for (int64_t i = 0; i < n; i++) y[i] = (x[i] * scale) * w[i];
}

void pc_rope_cache(float *cos_out, float *sin_out, int32_t pos, int32_t n_rot, float base, float scale,
                   const float *freq_factors) {
    const float theta_scale = powf(base, -2.0f / (float)n_rot);
    const float freq_scale = 1.0f / scale;
    float theta = (float)pos;
    for (int32_t i = 0; i < n_rot / 2; i++) {
        const float ff = freq_factors ? freq_factors[i] : 1.0f;
        const float t = freq_scale * (theta / ff);
        cos_out[i] = cosf(t);
        sin_out[i] = sinf(t);
        theta *= theta_scale;
    }
}

void pc_rope_apply(float *x, int32_t n_heads, int32_t head_dim, int32_t n_rot, const float *cos_c, const float *sin_c,
                   int neox) {
    const int32_t half = n_rot / 2;
    for (int32_t h = 0; h < n_heads; h++) {
        float *v = x + (int64_t)h * head_dim;
        for (int32_t i = 0; i < half; i++) {
            const int32_t a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
            const float x0 = v[a], x1 = v[b];
            v[a] = x0 * cos_c[i] - x1 * sin_c[i];
            v[b] = x0 * sin_c[i] + x1 * cos_c[i];
        }
    }
}

void pc_swiglu(float *gate, const float *up, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        const float g = gate[i];
        gate[i] = (g / (1.0f + expf(-g))) * up[i];
    }
}

void pc_add(float *x, const float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) x[i] += y[i];
}

void pc_f16_store(pc_f16 *y, size_t stride, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[(size_t)i * stride] = pc_f32_to_f16(x[i]);
}
