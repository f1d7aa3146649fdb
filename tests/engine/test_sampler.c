/* test_sampler.c - the sampler against hand-computed truth.
 *
 * Deterministic cases (greedy, ties, top-k sets, repetition penalty, stop
 * strings) compare exact ids. Stochastic cases draw many tokens and check
 * that only the allowed ids appear and that each id's count is within 5
 * binomial standard deviations of draws * p, with p worked out by hand from
 * the 4-token distribution {0.50, 0.25, 0.15, 0.10}. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "engine/sampler.h"

enum { N_DRAWS = 10000, N_SEEDS = 10 };

static pc_sampler_params params(float temp, int32_t top_k, float top_p, float min_p) {
    pc_sampler_params p = pc_sampler_defaults();
    p.temp = temp;
    p.top_k = top_k;
    p.top_p = top_p;
    p.min_p = min_p;
    p.repeat_penalty = 1.0f;
    return p;
}

static int32_t sample_once(const pc_sampler_params *p, const float *logits, int32_t n,
                           const int32_t *hist, size_t n_hist) {
    pc_sampler *s = pc_sampler_create(p, n);
    int32_t t = s ? pc_sampler_sample(s, logits, hist, n_hist) : -2;
    pc_sampler_free(s);
    return t;
}

/* A reproducible vocabulary of logits in [-10, 10) (a test-local LCG). */
static float *random_logits(int32_t n, uint32_t seed) {
    float *l = malloc((size_t)n * sizeof *l);
    for (int32_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        l[i] = (float)(seed >> 8) / (float)(1u << 24) * 20.0f - 10.0f;
    }
    return l;
}

static int32_t plain_argmax(const float *l, int32_t n) {
    int32_t b = 0;
    for (int32_t i = 1; i < n; i++) b = l[i] > l[b] ? i : b;
    return b;
}

/* The 4-token distribution, in shuffled id order: id 2 -> 0.50, id 0 -> 0.25,
 * id 3 -> 0.15, id 1 -> 0.10. */
static const float PROB4[4] = {0.25f, 0.10f, 0.50f, 0.15f};

static void logits4(float out[4]) {
    for (int i = 0; i < 4; i++) out[i] = logf(PROB4[i]);
}

/* Draws N_DRAWS tokens over N_SEEDS seeds and checks the counts against
 * expect[] (0 = must never appear). */
static void check_frequencies(const char *what, const pc_sampler_params *base, const float *logits,
                              const double expect[4]) {
    long counts[4] = {0}, bad = 0;
    for (int seed = 0; seed < N_SEEDS; seed++) {
        pc_sampler_params p = *base;
        p.seed = 1000u + (uint64_t)seed;
        pc_sampler *s = pc_sampler_create(&p, 4);
        for (int d = 0; d < N_DRAWS / N_SEEDS; d++) {
            int32_t t = pc_sampler_sample(s, logits, NULL, 0);
            if (t < 0 || t >= 4) bad++;
            else counts[t]++;
        }
        pc_sampler_free(s);
    }
    CHECK_EQ_INT(bad, 0);
    for (int i = 0; i < 4; i++) {
        double mean = N_DRAWS * expect[i], sd = sqrt(N_DRAWS * expect[i] * (1.0 - expect[i]));
        if (expect[i] == 0.0) {
            CHECK_MSG(counts[i] == 0, "%s: id %d excluded but drawn %ld times", what, i, counts[i]);
        } else {
            CHECK_MSG(fabs((double)counts[i] - mean) <= 5.0 * sd, "%s: id %d drawn %ld times, expected %.1f +- %.1f",
                      what, i, counts[i], mean, 5.0 * sd);
        }
    }
}

static void test_greedy(void) {
    float l[5] = {0.5f, 2.0f, -1.0f, 1.9f, 2.0f - 1e-6f};
    pc_sampler_params g = params(0.0f, 0, 1.0f, 0.0f);
    CHECK_EQ_INT(sample_once(&g, l, 5, NULL, 0), 1);

    float tie[5] = {1.0f, 3.0f, 3.0f, 2.0f, 3.0f};
    CHECK_EQ_INT(sample_once(&g, tie, 5, NULL, 0), 1);
    g.temp = -1.0f;
    CHECK_EQ_INT(sample_once(&g, tie, 5, NULL, 0), 1);

    float neg[3] = {-INFINITY, -5.0f, NAN};
    CHECK_EQ_INT(sample_once(&g, neg, 3, NULL, 0), 1);

    /* a large vocabulary with the max planted twice: the lower id wins */
    int32_t n = 262144;
    float *big = random_logits(n, 7);
    big[200000] = 50.0f;
    big[250000] = 50.0f;
    CHECK_EQ_INT(sample_once(&g, big, n, NULL, 0), 200000);
    free(big);
}

/* As temp -> 0 the draw concentrates on the argmax (here exp(-0.5/1e-3) = 0). */
static void test_temp_limit(void) {
    int32_t n = 49152;
    float *l = random_logits(n, 11);
    int32_t am = plain_argmax(l, n);
    l[am] += 0.5f;
    int agree = 0;
    for (int seed = 0; seed < 50; seed++) {
        pc_sampler_params p = params(1e-3f, 0, 1.0f, 0.0f);
        p.seed = (uint64_t)seed;
        agree += sample_once(&p, l, n, NULL, 0) == am;
    }
    CHECK_EQ_INT(agree, 50);
    free(l);
}

static void test_top_k_one_is_greedy(void) {
    int32_t n = 65536;
    float *l = random_logits(n, 3);
    int32_t am = plain_argmax(l, n);
    float temps[3] = {0.7f, 5.0f, 1000.0f};
    for (int t = 0; t < 3; t++) {
        for (int seed = 0; seed < 10; seed++) {
            pc_sampler_params p = params(temps[t], 1, 1.0f, 0.0f);
            p.seed = (uint64_t)seed;
            CHECK_EQ_INT(sample_once(&p, l, n, NULL, 0), am);
        }
    }
    float tie[4] = {1.0f, 3.0f, 3.0f, 2.0f};
    pc_sampler_params p = params(100.0f, 1, 1.0f, 0.0f);
    CHECK_EQ_INT(sample_once(&p, tie, 4, NULL, 0), 1);
    free(l);
}

static int cmp_desc(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x < y) - (x > y);
}

/* The k-th largest logit, by a full sort (the plain reference). */
static float kth_largest(const float *l, int32_t n, int32_t k) {
    float *c = malloc((size_t)n * sizeof *c);
    memcpy(c, l, (size_t)n * sizeof *c);
    qsort(c, (size_t)n, sizeof *c, cmp_desc);
    float v = c[k - 1];
    free(c);
    return v;
}

/* At a huge temperature the kept set is sampled near-uniformly, so every
 * member shows up and nothing outside it does. k = 100 takes the heap path,
 * k = 2000 quickselect. */
static void check_top_k_set(int32_t n, int32_t k, int draws, int min_distinct) {
    float *l = random_logits(n, (uint32_t)(n + k));
    float kth = kth_largest(l, n, k);
    uint8_t *seen = calloc((size_t)n, 1);
    pc_sampler_params p = params(1e6f, k, 1.0f, 0.0f);
    p.seed = 99;
    pc_sampler *s = pc_sampler_create(&p, n);
    int outside = 0, distinct = 0;
    for (int d = 0; d < draws; d++) {
        int32_t t = pc_sampler_sample(s, l, NULL, 0);
        if (t < 0 || t >= n || l[t] < kth) {
            outside++;
            continue;
        }
        distinct += !seen[t];
        seen[t] = 1;
    }
    CHECK_MSG(outside == 0, "top_k=%d n=%d: %d draws outside the top set", k, n, outside);
    CHECK_MSG(distinct >= min_distinct, "top_k=%d: only %d distinct ids", k, distinct);
    pc_sampler_free(s);
    free(seen);
    free(l);
}

/* Ties and monotone inputs: with equal logits the lower ids rank first. */
static void check_top_k_shape(int32_t n, int32_t k, int shape) {
    float *l = malloc((size_t)n * sizeof *l);
    for (int32_t i = 0; i < n; i++) l[i] = shape == 0 ? 1.0f : shape == 1 ? (float)i : (float)(n - i);
    int32_t lo = shape == 1 ? n - k : 0, hi = shape == 1 ? n : k; /* the kept ids [lo, hi) */
    pc_sampler_params p = params(1e9f, k, 1.0f, 0.0f);
    p.seed = 5;
    pc_sampler *s = pc_sampler_create(&p, n);
    int outside = 0;
    for (int d = 0; d < 2000; d++) {
        int32_t t = pc_sampler_sample(s, l, NULL, 0);
        outside += t < lo || t >= hi;
    }
    CHECK_MSG(outside == 0, "top_k=%d shape %d: %d draws outside [%d, %d)", k, shape, outside, lo, hi);
    pc_sampler_free(s);
    free(l);
}

static void test_top_k(void) {
    check_top_k_set(262144, 100, 1500, 100);
    check_top_k_set(20000, 2000, 3000, 1400);
    for (int shape = 0; shape < 3; shape++) {
        check_top_k_shape(5000, 10, shape);
        check_top_k_shape(5000, 1500, shape);
    }
}

static void test_top_p(void) {
    float l[4];
    logits4(l);
    /* p = 0.7: 0.50 < 0.7 <= 0.75, keep {2, 0}, renormalized by 0.75 */
    pc_sampler_params p = params(1.0f, 0, 0.7f, 0.0f);
    check_frequencies("top_p 0.7", &p, l, (const double[4]){0.25 / 0.75, 0.0, 0.50 / 0.75, 0.0});
    /* p = 0.8: 0.75 < 0.8 <= 0.90, keep {2, 0, 3}, renormalized by 0.90 */
    p.top_p = 0.8f;
    check_frequencies("top_p 0.8", &p, l, (const double[4]){0.25 / 0.9, 0.0, 0.50 / 0.9, 0.15 / 0.9});
    /* the temperature comes after: the set is still {2, 0}, drawn with
     * weights sqrt(0.5) : sqrt(0.25) at temp 2 (a temp-first order would let
     * id 3 in: at temp 2 the top two hold only 0.64 < 0.7) */
    p.top_p = 0.7f;
    p.temp = 2.0f;
    double w2 = sqrt(0.5), w0 = sqrt(0.25);
    check_frequencies("top_p 0.7 temp 2", &p, l, (const double[4]){w0 / (w0 + w2), 0.0, w2 / (w0 + w2), 0.0});
    /* top-k first: k = 3 drops id 1, then p = 0.95 of {0.5, 0.25, 0.15}/0.9
     * needs all three (0.833 < 0.95) */
    p = params(1.0f, 3, 0.95f, 0.0f);
    check_frequencies("top_k 3 top_p 0.95", &p, l, (const double[4]){0.25 / 0.9, 0.0, 0.50 / 0.9, 0.15 / 0.9});
}

/* A flat vocabulary of 4096 with p = 0.5 keeps exactly ids 0..2047: all
 * ties, ranked by id, so the mass selection must cut at an exact rank. */
static void test_top_p_chunks(void) {
    int32_t n = 4096;
    float *l = calloc((size_t)n, sizeof *l);
    pc_sampler_params p = params(1.0f, 0, 0.5f, 0.0f);
    p.seed = 77;
    pc_sampler *s = pc_sampler_create(&p, n);
    int outside = 0, upper = 0;
    for (int d = 0; d < 4000; d++) {
        int32_t t = pc_sampler_sample(s, l, NULL, 0);
        outside += t < 0 || t >= 2048;
        upper += t >= 1024 && t < 2048;
    }
    CHECK_EQ_INT(outside, 0);
    /* uniform over 2048: half land in [1024, 2048); sd = sqrt(4000 / 4) */
    CHECK_MSG(fabs(upper - 2000.0) <= 5.0 * sqrt(1000.0), "upper half drawn %d of 4000", upper);
    pc_sampler_free(s);
    free(l);
}

static void test_min_p(void) {
    float l[4];
    logits4(l);
    /* min_p 0.25: floor 0.125; keeps 0.50, 0.25, 0.15, drops 0.10 */
    pc_sampler_params p = params(1.0f, 0, 1.0f, 0.25f);
    check_frequencies("min_p 0.25", &p, l, (const double[4]){0.25 / 0.9, 0.0, 0.50 / 0.9, 0.15 / 0.9});
    /* min_p 0.4: floor 0.2; keeps 0.50, 0.25 */
    p.min_p = 0.4f;
    check_frequencies("min_p 0.4", &p, l, (const double[4]){0.25 / 0.75, 0.0, 0.50 / 0.75, 0.0});
    /* after top-p 0.8 ranked {2, 0, 3}, min_p 0.4 keeps {2, 0} */
    p.top_p = 0.8f;
    check_frequencies("top_p 0.8 min_p 0.4", &p, l, (const double[4]){0.25 / 0.75, 0.0, 0.50 / 0.75, 0.0});
    /* min_p above 1 still keeps the top token */
    p = params(1.0f, 0, 1.0f, 5.0f);
    check_frequencies("min_p 5", &p, l, (const double[4]){0.0, 0.0, 1.0, 0.0});
}

static void test_repetition_penalty(void) {
    pc_sampler_params g = params(0.0f, 0, 1.0f, 0.0f);
    g.repeat_penalty = 1.5f;
    g.repeat_last_n = 64;

    /* 3.0 / 1.5 = 2.0 < 2.5: the argmax flips from 0 to 1 */
    float a[4] = {3.0f, 2.5f, -1.0f, -0.5f};
    CHECK_EQ_INT(sample_once(&g, a, 4, NULL, 0), 0);
    CHECK_EQ_INT(sample_once(&g, a, 4, (const int32_t[]){0}, 1), 1);
    /* both penalized: 2.0 vs 2.5 / 1.5 = 1.667, back to 0 */
    CHECK_EQ_INT(sample_once(&g, a, 4, (const int32_t[]){0, 1}, 2), 0);

    /* negative logits are multiplied: -1.0 * 1.5 = -1.5 < -1.2 (dividing would give -0.667) */
    float b[2] = {-1.0f, -1.2f};
    CHECK_EQ_INT(sample_once(&g, b, 2, (const int32_t[]){0}, 1), 1);

    /* the window: history {0, 2, 2}; last 2 -> only 2 is penalized and 0 wins;
     * last 3 -> 0 becomes 2.0, 1 (2.5) wins; -1 -> the whole history */
    float c[3] = {3.0f, 2.5f, 2.2f};
    const int32_t h[3] = {0, 2, 2};
    g.repeat_last_n = 2;
    CHECK_EQ_INT(sample_once(&g, c, 3, h, 3), 0);
    g.repeat_last_n = 3;
    CHECK_EQ_INT(sample_once(&g, c, 3, h, 3), 1);
    g.repeat_last_n = -1;
    CHECK_EQ_INT(sample_once(&g, c, 3, h, 3), 1);
    g.repeat_last_n = 0;
    CHECK_EQ_INT(sample_once(&g, c, 3, h, 3), 0);

    /* once per distinct token: 3.0 / 1.1 = 2.73 > 2.5 keeps 0; four times would be 2.05 */
    float d[2] = {3.0f, 2.5f};
    g.repeat_penalty = 1.1f;
    g.repeat_last_n = 64;
    CHECK_EQ_INT(sample_once(&g, d, 2, (const int32_t[]){0, 0, 0, 0}, 4), 0);

    /* a penalty below 1 raises: 2.5 / 0.5 = 5.0 overtakes 3.0 */
    float e[2] = {3.0f, 2.5f};
    g.repeat_penalty = 0.5f;
    CHECK_EQ_INT(sample_once(&g, e, 2, (const int32_t[]){1}, 1), 1);
    /* penalized ties still go to the lowest id: 1.0 / 0.5 = 2.0 ties id 1,
     * and 3.0 / 1.5 = 2.0 ties id 0 after the raw argmax was penalized */
    float f[2] = {1.0f, 2.0f};
    CHECK_EQ_INT(sample_once(&g, f, 2, (const int32_t[]){0}, 1), 0);
    float f2[2] = {2.0f, 3.0f};
    g.repeat_penalty = 1.5f;
    CHECK_EQ_INT(sample_once(&g, f2, 2, (const int32_t[]){1}, 1), 0);

    /* out-of-vocabulary history entries are ignored; state does not leak
     * between calls on one sampler */
    g.repeat_penalty = 1.5f;
    pc_sampler *s = pc_sampler_create(&g, 4);
    const int32_t odd[4] = {-7, 99, 0, 4};
    CHECK_EQ_INT(pc_sampler_sample(s, a, odd, 4), 1);
    CHECK_EQ_INT(pc_sampler_sample(s, a, odd, 4), 1);
    CHECK_EQ_INT(pc_sampler_sample(s, a, NULL, 0), 0);
    pc_sampler_free(s);

    /* the stochastic path applies the same penalty: top_k = 1 at temp 1 */
    pc_sampler_params k1 = g;
    k1.temp = 1.0f;
    k1.top_k = 1;
    CHECK_EQ_INT(sample_once(&k1, a, 4, (const int32_t[]){0}, 1), 1);
    /* and it feeds the distribution: penalty 2 on id 2 of the 4-token case
     * gives it logit 2 * log 0.5, so weights 0.25, 0.10, 0.25, 0.15 */
    pc_sampler_params pp = params(1.0f, 0, 1.0f, 0.0f);
    pp.repeat_penalty = 2.0f;
    pp.repeat_last_n = 8;
    float l4[4];
    logits4(l4);
    long counts[4] = {0};
    pc_sampler *r = pc_sampler_create(&pp, 4);
    for (int i = 0; i < N_DRAWS; i++) counts[pc_sampler_sample(r, l4, (const int32_t[]){2}, 1)]++;
    pc_sampler_free(r);
    const double w[4] = {0.25 / 0.75, 0.10 / 0.75, 0.25 / 0.75, 0.15 / 0.75};
    for (int i = 0; i < 4; i++) {
        double sd = sqrt(N_DRAWS * w[i] * (1 - w[i]));
        CHECK_MSG(fabs(counts[i] - N_DRAWS * w[i]) <= 5 * sd, "penalized id %d: %ld", i, counts[i]);
    }
}

static void draw_sequence(uint64_t seed, const float *l, int32_t n, int32_t *out, int len) {
    pc_sampler_params p = params(1.0f, 0, 1.0f, 0.0f);
    p.seed = seed;
    pc_sampler *s = pc_sampler_create(&p, n);
    for (int i = 0; i < len; i++) out[i] = pc_sampler_sample(s, l, NULL, 0);
    pc_sampler_free(s);
}

static void test_seeds(void) {
    int32_t n = 1000;
    float *l = random_logits(n, 21);
    for (int32_t i = 0; i < n; i++) l[i] *= 0.2f; /* flat enough that draws vary */
    int32_t a[200], b[200], c[200];
    draw_sequence(42, l, n, a, 200);
    draw_sequence(42, l, n, b, 200);
    draw_sequence(43, l, n, c, 200);
    CHECK(memcmp(a, b, sizeof a) == 0);
    int same = 0;
    for (int i = 0; i < 200; i++) same += a[i] == c[i];
    CHECK_MSG(same < 20, "seeds 42 and 43 agree on %d of 200 draws", same);
    /* seed 0 is a valid seed, not a degenerate all-zero state */
    draw_sequence(0, l, n, c, 200);
    int distinct = 0;
    for (int i = 0; i < 200; i++) {
        int fresh = 1;
        for (int j = 0; j < i; j++) fresh &= c[j] != c[i];
        distinct += fresh;
    }
    CHECK_MSG(distinct > 100, "seed 0 gave %d distinct ids", distinct);
    free(l);
}

/* NaN counts as the lowest logit and +inf as the highest; tied infinities
 * share the mass. */
static void test_nonfinite(void) {
    float a[4] = {NAN, INFINITY, 1.0f, -INFINITY};
    pc_sampler_params p = params(1.0f, 0, 1.0f, 0.0f);
    pc_sampler_params g = params(0.0f, 0, 1.0f, 0.0f);
    CHECK_EQ_INT(sample_once(&g, a, 4, NULL, 0), 1);
    pc_sampler *s = pc_sampler_create(&p, 4);
    int other = 0;
    for (int i = 0; i < 200; i++) other += pc_sampler_sample(s, a, NULL, 0) != 1;
    CHECK_EQ_INT(other, 0);
    pc_sampler_free(s);

    float b[3] = {INFINITY, 0.0f, INFINITY};
    CHECK_EQ_INT(sample_once(&g, b, 3, NULL, 0), 0);
    long counts[3] = {0};
    s = pc_sampler_create(&p, 3);
    for (int i = 0; i < 1000; i++) counts[pc_sampler_sample(s, b, NULL, 0)]++;
    pc_sampler_free(s);
    CHECK_EQ_INT(counts[1], 0);
    CHECK_MSG(fabs(counts[0] - 500.0) <= 5 * sqrt(250.0), "+inf tie: %ld vs %ld", counts[0], counts[2]);

    /* all NaN: every token is equally (un)likely; greedy takes id 0 */
    float c[3] = {NAN, NAN, NAN};
    CHECK_EQ_INT(sample_once(&g, c, 3, NULL, 0), 0);
    int32_t t = sample_once(&p, c, 3, NULL, 0);
    CHECK(t >= 0 && t < 3);

    /* a negative top_p keeps just the top token */
    float d[4];
    logits4(d);
    pc_sampler_params q = params(5.0f, 0, -1.0f, 0.0f);
    check_frequencies("top_p -1", &q, d, (const double[4]){0.0, 0.0, 1.0, 0.0});
}

static void test_create_edges(void) {
    CHECK(pc_sampler_create(NULL, 0) == NULL);
    pc_sampler *s = pc_sampler_create(NULL, 3); /* NULL params: the defaults */
    float l[3] = {0.0f, 9.0f, 0.0f};
    CHECK(s != NULL);
    CHECK_EQ_INT(pc_sampler_sample(s, l, NULL, 0), 1); /* min_p 0.05 leaves only id 1 */
    CHECK_EQ_INT(pc_sampler_sample(s, NULL, NULL, 0), -1);
    pc_sampler_free(s);
    pc_sampler_free(NULL);
    pc_sampler_params d = pc_sampler_defaults();
    CHECK(d.temp > 0.0f && d.top_k == 40 && d.repeat_penalty == 1.0f);
    /* NaN settings mean "off"; NaN temp means greedy */
    pc_sampler_params nanp = params(NAN, 0, NAN, NAN);
    nanp.repeat_penalty = NAN;
    float t[3] = {1.0f, 2.0f, 1.5f};
    CHECK_EQ_INT(sample_once(&nanp, t, 3, (const int32_t[]){1}, 1), 1);
}

static void test_stop_strings(void) {
    char *strs[3] = {"</s>", "<|im_end|>", ""};
    pc_stop_set set = {strs, 3};
    size_t keep = 99;

    const char *t1 = "hello world<|im_end|>foo</s>";
    CHECK_EQ_INT(pc_stop_find(&set, t1, strlen(t1), &keep), 11);
    CHECK_EQ_INT(keep, 0);
    const char *t2 = "a</s>b<|im_end|>";
    CHECK_EQ_INT(pc_stop_find(&set, t2, strlen(t2), &keep), 1);
    CHECK_EQ_INT(pc_stop_find(&set, "</s>", 4, &keep), 0);

    /* partial suffixes: the longest proper prefix of any stop string */
    const char *t3 = "abc<|im";
    CHECK_EQ_INT(pc_stop_find(&set, t3, strlen(t3), &keep), -1);
    CHECK_EQ_INT(keep, 4);
    CHECK_EQ_INT(pc_stop_find(&set, "x<", 2, &keep), -1);
    CHECK_EQ_INT(keep, 1);
    CHECK_EQ_INT(pc_stop_find(&set, "x</", 3, &keep), -1);
    CHECK_EQ_INT(keep, 2);
    CHECK_EQ_INT(pc_stop_find(&set, "<|im x", 6, &keep), -1);
    CHECK_EQ_INT(keep, 0);

    /* no match; bytes after a NUL count; only the first len bytes are searched */
    CHECK_EQ_INT(pc_stop_find(&set, "plain text", 10, &keep), -1);
    CHECK_EQ_INT(keep, 0);
    const char t4[] = "ab\0cd</s>";
    CHECK_EQ_INT(pc_stop_find(&set, t4, sizeof t4 - 1, &keep), 5);
    CHECK_EQ_INT(pc_stop_find(&set, t4, 7, &keep), -1);
    CHECK_EQ_INT(keep, 2);

    /* overlapping stops: "cab" at 2 starts before "ab" at 3 */
    char *ov[2] = {"ab", "cab"};
    pc_stop_set ovs = {ov, 2};
    CHECK_EQ_INT(pc_stop_find(&ovs, "xxcab", 5, NULL), 2);
    CHECK_EQ_INT(pc_stop_find(NULL, "x", 1, &keep), -1);
    CHECK_EQ_INT(keep, 0);
}

int main(void) {
    test_greedy();
    test_temp_limit();
    test_top_k_one_is_greedy();
    test_top_k();
    test_top_p();
    test_top_p_chunks();
    test_min_p();
    test_repetition_penalty();
    test_seeds();
    test_nonfinite();
    test_create_edges();
    test_stop_strings();
    return check_report();
}
