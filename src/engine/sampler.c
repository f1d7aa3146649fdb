/* sampler.c - choosing the next token: repetition penalty, top-k, top-p,
 * min-p, temperature, then a seeded draw (llama.cpp's common chain order).
 *
 * Invariants:
 *   1. pc_sampler_sample allocates nothing: every buffer is sized to n_vocab
 *      at create.
 *   2. marked[] is all zero between calls; a call clears what it set.
 *   3. Candidates are totally ordered (higher logit first, then lower id), so
 *      every selection, and so every kept set, is deterministic. The filters
 *      see finite logits only (NaN as -FLT_MAX, inf clamped to +-FLT_MAX):
 *      every exp() argument is then <= 0 and no softmax sees inf - inf.
 *   4. Every filter keeps a prefix of the rank order, and always the maximum,
 *      so the maximum over the vocabulary is the maximum of every surviving
 *      set and one softmax shift serves the whole chain.
 *   5. Filters see temperature-1 logits; the temperature scales the final
 *      draw alone, as in llama.cpp.
 *   6. The RNG (xoshiro256**, seeded by splitmix64) advances exactly once per
 *      non-greedy sample, so a seed fixes the whole token sequence.
 *
 * Nothing is ever fully sorted, which matters at 50k-260k tokens: top-k is
 * a k-heap scan (small k) or a quickselect, top-p a quickselect on
 * probability mass, min-p a filter; survivors stay in no particular order. */
#include "engine/sampler.h"

#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

typedef struct pc_cand {
    float logit;
    int32_t id;
} pc_cand;

struct pc_sampler {
    pc_sampler_params p; /* normalized: off-values folded to their off form */
    int32_t n_vocab;
    uint64_t rng[4];   /* xoshiro256** state, never all zero */
    float *work;       /* (n_vocab) clamped, penalized logits by id; then the dense draw's weights */
    pc_cand *cand;     /* (n_vocab) the surviving candidates */
    uint8_t *marked;   /* (n_vocab) 1 while a token is in this call's penalty set */
    int32_t *pen_ids;  /* (n_vocab) distinct ids of the penalty window */
};

enum {
    HEAP_SELECT_MAX = 1024, /* k up to this: a k-heap scan beats quickselect's swaps */
    INSERTION_MAX = 16,     /* ranges this short are insertion-sorted */
};

/* ---- RNG: splitmix64 seeds xoshiro256** (Blackman and Vigna). ---- */

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t rotl64(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t xoshiro_next(uint64_t s[4]) {
    uint64_t result = rotl64(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl64(s[3], 45);
    return result;
}

/* Uniform in [0, 1) with 53 random bits. */
static double rng_uniform(uint64_t s[4]) { return (double)(xoshiro_next(s) >> 11) * 0x1.0p-53; }

/* ---- scans over a logit vector ----
 * Written with integer masks and compare-selects, not fmaxf or branches, so
 * that GCC vectorizes them under the default strict floating point. */

static inline uint32_t f2u(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float u2f(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline float clamp_logit(float l) {
    l = l > -FLT_MAX ? l : -FLT_MAX; /* a NaN compares false: -FLT_MAX */
    return l < FLT_MAX ? l : FLT_MAX;
}

/* The maximum of x[] and whether any entry is NaN or inf (exponent all
 * ones). Eight lanes break the loop-carried dependency. */
static float scan_max(const float *x, size_t n, bool *nonfinite) {
    float m[8];
    uint32_t bad[8] = {0};
    for (int j = 0; j < 8; j++) m[j] = -FLT_MAX;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        for (int j = 0; j < 8; j++) {
            m[j] = x[i + j] > m[j] ? x[i + j] : m[j];
            bad[j] |= (f2u(x[i + j]) & 0x7f800000u) == 0x7f800000u;
        }
    }
    for (; i < n; i++) {
        m[0] = x[i] > m[0] ? x[i] : m[0];
        bad[0] |= (f2u(x[i]) & 0x7f800000u) == 0x7f800000u;
    }
    uint32_t any = 0;
    for (int j = 0; j < 8; j++) {
        m[0] = m[j] > m[0] ? m[j] : m[0];
        any |= bad[j];
    }
    *nonfinite = any != 0;
    return m[0];
}

static float block_max16(const float *x) {
    float m[8];
    for (int j = 0; j < 8; j++) m[j] = x[j] > x[j + 8] ? x[j] : x[j + 8];
    for (int j = 0; j < 4; j++) m[j] = m[j] > m[j + 4] ? m[j] : m[j + 4];
    m[0] = m[0] > m[2] ? m[0] : m[2];
    m[1] = m[1] > m[3] ? m[1] : m[3];
    return m[0] > m[1] ? m[0] : m[1];
}

/* The first i with x[i] == m, m being the maximum of x[]: skips blocks of
 * 16 whose maximum is below m. */
static int32_t first_max(const float *x, size_t n, float m) {
    size_t i = 0;
    while (i + 16 <= n && block_max16(x + i) < m) i += 16;
    while (x[i] != m) i++;
    return (int32_t)i;
}

/* exp(x) for x <= 0 (-inf included) to about 1 ulp, branch-free so loops
 * over it vectorize, which libm's expf does not. Cody-Waite reduction
 * x = n ln2 + r, |r| <= ln2/2, then cephes' degree-7 minimax polynomial;
 * 2^n is built from its exponent bits. At or below -87 (near 2^-125.5) it
 * gives 0. For x <= 0 a larger magnitude has larger bits, so the range test
 * is an unsigned compare, and the selects are masks. */
static inline float exp_nonpos(float x) {
    uint32_t in_range = 0u - (uint32_t)(f2u(x) < 0xC2AE0000u); /* x > -87.0f */
    float xc = u2f((f2u(x) & in_range) | (0xC2AE0000u & ~in_range));
    /* round-to-nearest of xc * log2(e) by the 1.5 * 2^23 trick: n lands in
     * the low mantissa bits of t */
    float t = xc * 1.44269504088896341f + 12582912.0f;
    float n = t - 12582912.0f;
    float r = xc - n * 0.693359375f + n * 2.12194440e-4f;
    float q = 1.9875691500e-4f;
    q = q * r + 1.3981999507e-3f;
    q = q * r + 8.3334519073e-3f;
    q = q * r + 4.1665795894e-2f;
    q = q * r + 1.6666665459e-1f;
    q = q * r + 5.0000001201e-1f;
    q = q * r * r + r + 1.0f;
    float scale = u2f((f2u(t) - 0x4B400000u + 127u) << 23);
    return u2f(f2u(q * scale) & in_range);
}

/* ---- ranking primitives: all in place, none allocates ---- */

static inline bool ranks_before(const pc_cand *a, const pc_cand *b) {
    return a->logit > b->logit || (a->logit == b->logit && a->id < b->id);
}

static inline void swap_cand(pc_cand *a, pc_cand *b) {
    pc_cand t = *a;
    *a = *b;
    *b = t;
}

static void insertion_sort(pc_cand *c, size_t n) {
    for (size_t i = 1; i < n; i++) {
        pc_cand x = c[i];
        size_t j = i;
        for (; j > 0 && ranks_before(&x, &c[j - 1]); j--) c[j] = c[j - 1];
        c[j] = x;
    }
}

/* The heaps here keep the lowest-ranked element at the root, so a top-k heap
 * rejects most newcomers with one comparison against it. */
static void sift_down(pc_cand *h, size_t n, size_t i) {
    for (;;) {
        size_t worst = i, l = 2 * i + 1, r = l + 1;
        if (l < n && ranks_before(&h[worst], &h[l])) worst = l;
        if (r < n && ranks_before(&h[worst], &h[r])) worst = r;
        if (worst == i) return;
        swap_cand(&h[i], &h[worst]);
        i = worst;
    }
}

static void heap_build(pc_cand *h, size_t n) {
    for (size_t i = n / 2; i-- > 0;) sift_down(h, n, i);
}

/* Rank order, best first. */
static void heap_sort(pc_cand *c, size_t n) {
    heap_build(c, n);
    for (size_t end = n; end > 1; end--) {
        swap_cand(&c[0], &c[end - 1]);
        sift_down(c, end - 1, 0);
    }
}

/* Median-of-three Hoare partition of n >= 3 elements; returns the pivot's
 * final index p: c[0..p) rank before it, c(p..n) after. The median goes to
 * c[1] with the best of the three at c[0] and the worst at c[n-1], which
 * stop both scans without bounds checks. */
static size_t partition(pc_cand *c, size_t n) {
    size_t mid = n / 2, last = n - 1;
    if (ranks_before(&c[mid], &c[0])) swap_cand(&c[mid], &c[0]);
    if (ranks_before(&c[last], &c[0])) swap_cand(&c[last], &c[0]);
    if (ranks_before(&c[last], &c[mid])) swap_cand(&c[last], &c[mid]);
    swap_cand(&c[mid], &c[1]);
    pc_cand pivot = c[1];
    size_t i = 1, j = last;
    for (;;) {
        do i++; while (ranks_before(&c[i], &pivot));
        do j--; while (ranks_before(&pivot, &c[j]));
        if (i >= j) break;
        swap_cand(&c[i], &c[j]);
    }
    swap_cand(&c[1], &c[j]);
    return j;
}

/* Quickselect rounds allowed before falling back to a heap, which bounds the
 * worst case at O(n log n) whatever the logits look like. */
static int depth_budget(size_t n) {
    int d = 0;
    while (n >>= 1) d++;
    return 2 * d + 4;
}

/* nth_element: the k best of c[0..n) end up in c[0..k). 1 <= k < n. */
static void select_top(pc_cand *c, size_t n, size_t k) {
    size_t lo = 0, hi = n; /* lo <= k < hi; c[0..lo) beat everything in c[lo..hi) */
    int budget = depth_budget(n);
    while (hi - lo > INSERTION_MAX) {
        if (budget-- == 0) {
            heap_sort(c + lo, hi - lo);
            return;
        }
        size_t p = lo + partition(c + lo, hi - lo);
        if (p == k || p + 1 == k) return;
        if (p < k) lo = p + 1;
        else hi = p;
    }
    insertion_sort(c + lo, hi - lo);
}

/* ---- the chain ---- */

/* llama.cpp's rule: a repeated token's logit moves toward "less likely" by
 * the factor: positive ones are divided, the others multiplied. */
static inline float penalize(float l, float penalty) { return l <= 0.0f ? l * penalty : l / penalty; }

/* Marks the distinct in-vocabulary tokens of the last repeat_last_n history
 * entries (all of them when repeat_last_n < 0); returns how many. */
static size_t collect_penalized(pc_sampler *s, const int32_t *history, size_t n_history) {
    if (s->p.repeat_penalty == 1.0f || s->p.repeat_last_n == 0 || !history) return 0;
    size_t window = n_history;
    if (s->p.repeat_last_n > 0 && (size_t)s->p.repeat_last_n < window) window = (size_t)s->p.repeat_last_n;
    size_t n = 0;
    for (size_t i = n_history - window; i < n_history; i++) {
        int32_t t = history[i];
        if (t < 0 || t >= s->n_vocab || s->marked[t]) continue;
        s->marked[t] = 1;
        s->pen_ids[n++] = t;
    }
    return n;
}

static void clear_marks(pc_sampler *s, size_t n_pen) {
    for (size_t i = 0; i < n_pen; i++) s->marked[s->pen_ids[i]] = 0;
}

/* The logits the filters see, and their maximum: the caller's own array
 * when it is finite and nothing is penalized (no copy), else a copy in
 * work[], clamped to finite values and penalized. Either way the result is
 * finite, so the scans below need no clamps. */
static const float *prepare_logits(pc_sampler *s, const float *logits, size_t n_pen, float *max) {
    size_t n = (size_t)s->n_vocab;
    bool nonfinite;
    float m = scan_max(logits, n, &nonfinite);
    if (!nonfinite && n_pen == 0) {
        *max = m;
        return logits;
    }
    float *w = s->work;
    if (nonfinite) {
        for (size_t i = 0; i < n; i++) w[i] = clamp_logit(logits[i]);
    } else {
        memcpy(w, logits, n * sizeof *w);
    }
    for (size_t j = 0; j < n_pen; j++) {
        int32_t t = s->pen_ids[j];
        w[t] = clamp_logit(penalize(w[t], s->p.repeat_penalty));
    }
    *max = scan_max(w, n, &nonfinite);
    return w;
}

/* Copies the tokens with x[i] >= floor into cand, in id order; returns how
 * many. */
static size_t gather(pc_sampler *s, const float *x, float floor) {
    size_t n = 0;
    for (int32_t i = 0; i < s->n_vocab; i++) {
        if (x[i] >= floor) s->cand[n++] = (pc_cand){x[i], i};
    }
    return n;
}

/* The k best of x[] into cand[0..k). Small k: one scan against a k-heap
 * whose root is the k-th best so far. Ids arrive in increasing order, so a
 * newcomer tying the root ranks after it and only a strictly greater logit
 * gets in. */
static size_t top_k_select(pc_sampler *s, const float *x, size_t k) {
    size_t n = (size_t)s->n_vocab;
    if (k > HEAP_SELECT_MAX) {
        gather(s, x, -FLT_MAX);
        select_top(s->cand, n, k);
        return k;
    }
    pc_cand *h = s->cand;
    for (size_t i = 0; i < k; i++) h[i] = (pc_cand){x[i], (int32_t)i};
    heap_build(h, k);
    float root = h[0].logit;
    for (size_t i = k; i < n; i += 16) {
        size_t end = i + 16 < n ? i + 16 : n;
        /* once the heap is warm most blocks hold no newcomer: test a block
         * with one vectorizable pass before looking at its elements */
        if (end - i == 16 && block_max16(x + i) <= root) continue;
        for (size_t j = i; j < end; j++) {
            if (!(x[j] > root)) continue;
            h[0] = (pc_cand){x[j], (int32_t)j};
            sift_down(h, k, 0);
            root = h[0].logit;
        }
    }
    return k;
}

static double mass(const pc_cand *c, size_t n, float max) {
    double m = 0.0;
    for (size_t i = 0; i < n; i++) m += exp_nonpos(c[i].logit - max);
    return m;
}

/* Eight running sums break the loop-carried dependency so this vectorizes. */
static double mass_dense(const float *x, size_t n, float max) {
    double m[8] = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        for (int j = 0; j < 8; j++) m[j] += exp_nonpos(x[i + j] - max);
    }
    for (; i < n; i++) m[0] += exp_nonpos(x[i] - max);
    return ((m[0] + m[1]) + (m[2] + m[3])) + ((m[4] + m[5]) + (m[6] + m[7]));
}

/* Top-p: keeps the shortest rank-order prefix of c[0..n) whose mass (sum of
 * exp(logit - max)) reaches target, found by quickselect on mass: partition,
 * weigh the better side, go into the side where the running mass crosses
 * the target. When c holds only a rank prefix of the set that target was
 * computed over and the cut lies beyond it, all of c is kept. */
static size_t apply_top_p(pc_cand *c, size_t n, double target, float max) {
    size_t lo = 0, hi = n; /* the cut is in (lo, hi]; c[0..lo) beat c[lo..hi) */
    double acc = 0.0;      /* mass of c[0..lo), < target */
    int budget = depth_budget(n);
    while (hi - lo > INSERTION_MAX && budget-- > 0) {
        size_t q = lo + partition(c + lo, hi - lo);
        double left = acc + mass(c + lo, q - lo, max);
        if (left >= target) {
            hi = q;
            continue;
        }
        double with_pivot = left + exp_nonpos(c[q].logit - max);
        if (with_pivot >= target) return q + 1;
        acc = with_pivot;
        lo = q + 1;
    }
    /* a short range (or a hostile one: then heap-sorted) is walked in order */
    if (hi - lo > INSERTION_MAX) heap_sort(c + lo, hi - lo);
    else insertion_sort(c + lo, hi - lo);
    for (size_t i = lo; i < hi; i++) {
        acc += exp_nonpos(c[i].logit - max);
        if (acc >= target) return i + 1;
    }
    return hi;
}

/* Min-p: keeps tokens whose probability is at least min_p times the top
 * one's, i.e. logit >= max + log(min_p); the maximum always survives. */
static float min_p_floor(float max, float min_p) { return fminf(max + logf(min_p), max); }

static size_t apply_min_p(pc_cand *c, size_t n, float min_p, float max) {
    if (min_p <= 0.0f || n <= 1) return n;
    float floor = min_p_floor(max, min_p);
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        if (c[i].logit >= floor) c[kept++] = c[i];
    }
    return kept;
}

/* Over the whole vocabulary, top-p and min-p both keep a rank prefix, so
 * tokens below either floor need never be copied out:
 *  - min-p's floor is its own (min-p comes last and its floor depends only
 *    on the maximum, which every filter keeps);
 *  - top-p never keeps a token of weight below theta = (1-p) Z / (2 n):
 *    all such tokens together weigh under (1-p) Z / 2, so the tokens above
 *    theta already reach p Z. The factor 2 is slack for rounding.
 * Returns the candidate count; *target gets top-p's mass target (or none). */
static size_t gather_filtered(pc_sampler *s, const float *x, float max, double *target) {
    const pc_sampler_params *p = &s->p;
    float floor = -FLT_MAX;
    if (p->top_p < 1.0f) {
        size_t n = (size_t)s->n_vocab;
        double z = mass_dense(x, n, max);
        *target = (double)p->top_p * z;
        float theta = (float)((1.0 - (double)p->top_p) * z / (2.0 * (double)n));
        if (theta > 0.0f) floor = fmaxf(floor, max + logf(theta));
    }
    if (p->min_p > 0.0f) floor = fmaxf(floor, min_p_floor(max, p->min_p));
    return gather(s, x, fminf(floor, max));
}

/* Softmax at temperature temp over c[0..n) and one draw; overwrites logits
 * with weights. */
static int32_t draw(pc_sampler *s, pc_cand *c, size_t n, float max) {
    double u = rng_uniform(s->rng);
    if (n == 1) return c[0].id;
    double total = 0.0;
    for (size_t i = 0; i < n; i++) {
        c[i].logit = exp_nonpos((c[i].logit - max) / s->p.temp);
        total += c[i].logit;
    }
    double target = u * total, cum = 0.0;
    for (size_t i = 0; i < n; i++) {
        cum += c[i].logit;
        if (target < cum) return c[i].id;
    }
    /* u < 1 and cum ends at exactly total, so this is unreachable; the
     * maximum (weight 1) is a safe answer if rounding ever says otherwise */
    for (size_t i = n; i-- > 0;) {
        if (c[i].logit > 0.0f) return c[i].id;
    }
    return c[0].id;
}

/* The draw when no filter is on: softmax over all of x[] by id, the
 * weights in work[] (copied there first unless x is work[]: in place, the
 * exp pass has no aliasing to rule out and vectorizes). */
static int32_t draw_dense(pc_sampler *s, const float *x, float max) {
    size_t n = (size_t)s->n_vocab, i = 0;
    float *w = s->work, temp = s->p.temp;
    if (x != w) memcpy(w, x, n * sizeof *w);
    double u = rng_uniform(s->rng), lane[8] = {0};
    for (; i + 8 <= n; i += 8) {
        for (int j = 0; j < 8; j++) {
            w[i + j] = exp_nonpos((w[i + j] - max) / temp);
            lane[j] += w[i + j];
        }
    }
    for (; i < n; i++) {
        w[i] = exp_nonpos((w[i] - max) / temp);
        lane[0] += w[i];
    }
    double total = ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
    double target = u * total, cum = 0.0;
    for (i = 0; i < n; i++) {
        cum += w[i];
        if (target < cum) return (int32_t)i;
    }
    /* the lanes summed in another order than cum; if that rounding leaves
     * target past the end, the last token of nonzero weight takes it */
    for (i = n; i-- > 0;) {
        if (w[i] > 0.0f) return (int32_t)i;
    }
    return 0;
}

static int32_t sample_stochastic(pc_sampler *s, const float *logits, size_t n_pen) {
    const pc_sampler_params *p = &s->p;
    size_t n_vocab = (size_t)s->n_vocab, n;
    float max;
    const float *x = prepare_logits(s, logits, n_pen, &max);
    double target = -1.0; /* top-p's mass target; < 0: top-p is off */
    bool top_k_on = p->top_k > 0 && (size_t)p->top_k < n_vocab;
    if (!top_k_on && p->top_p >= 1.0f && p->min_p <= 0.0f) return draw_dense(s, x, max);
    if (top_k_on) {
        n = top_k_select(s, x, (size_t)p->top_k);
        if (p->top_p < 1.0f) target = (double)p->top_p * mass(s->cand, n, max);
    } else {
        n = gather_filtered(s, x, max, &target);
    }
    if (target >= 0.0 && n > 1) n = apply_top_p(s->cand, n, target, max);
    n = apply_min_p(s->cand, n, p->min_p, max);
    return draw(s, s->cand, n, max);
}

/* Two vectorized passes in the common cases: when the raw argmax is not
 * penalized it beats every other unpenalized token, so only the penalized
 * ones (with their new logits) can still take its place. */
static int32_t sample_greedy(pc_sampler *s, const float *logits, size_t n_pen) {
    size_t n = (size_t)s->n_vocab;
    bool nonfinite;
    float m = scan_max(logits, n, &nonfinite);
    if (!nonfinite) {
        int32_t best = first_max(logits, n, m);
        if (!s->marked[best]) {
            for (size_t j = 0; j < n_pen; j++) {
                int32_t t = s->pen_ids[j];
                float v = clamp_logit(penalize(logits[t], s->p.repeat_penalty));
                if (v > m || (v == m && t < best)) {
                    m = v;
                    best = t;
                }
            }
            return best;
        }
    }
    float max;
    const float *x = prepare_logits(s, logits, n_pen, &max);
    return first_max(x, n, max);
}

/* ---- public ---- */

pc_sampler_params pc_sampler_defaults(void) {
    /* llama.cpp's common defaults, with a fixed seed since there is no
     * global entropy source to draw one from */
    return (pc_sampler_params){
        .temp = 0.8f,
        .top_k = 40,
        .top_p = 0.95f,
        .min_p = 0.05f,
        .repeat_penalty = 1.0f,
        .repeat_last_n = 64,
        .seed = 0,
    };
}

/* Folds NaN and out-of-range settings into "off" so the hot path needs only
 * the plain comparisons of the header's contract. */
static pc_sampler_params normalize(pc_sampler_params p) {
    if (!(p.temp > 0.0f)) p.temp = 0.0f;
    if (!(p.top_p < 1.0f)) p.top_p = 1.0f;
    if (p.top_p < 0.0f) p.top_p = 0.0f; /* keeps just the top token */
    if (!(p.min_p > 0.0f)) p.min_p = 0.0f;
    if (!(p.repeat_penalty > 0.0f) || isinf(p.repeat_penalty)) p.repeat_penalty = 1.0f;
    return p;
}

pc_sampler *pc_sampler_create(const pc_sampler_params *p, int32_t n_vocab) {
    if (n_vocab <= 0) return NULL;
    pc_sampler *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->p = normalize(p ? *p : pc_sampler_defaults());
    s->n_vocab = n_vocab;
    s->work = malloc((size_t)n_vocab * sizeof *s->work);
    s->cand = malloc((size_t)n_vocab * sizeof *s->cand);
    s->marked = calloc((size_t)n_vocab, 1);
    s->pen_ids = malloc((size_t)n_vocab * sizeof *s->pen_ids);
    if (!s->work || !s->cand || !s->marked || !s->pen_ids) {
        pc_sampler_free(s);
        return NULL;
    }
    uint64_t x = s->p.seed;
    /* splitmix64 outputs for distinct counters are distinct, so at most one
     * word is zero and the state is never the all-zero fixed point */
    for (int i = 0; i < 4; i++) s->rng[i] = splitmix64(&x);
    return s;
}

void pc_sampler_free(pc_sampler *s) {
    if (!s) return;
    free(s->work);
    free(s->cand);
    free(s->marked);
    free(s->pen_ids);
    free(s);
}

int32_t pc_sampler_sample(pc_sampler *s, const float *logits, const int32_t *history, size_t n_history) {
    if (!s || !logits) return -1;
    size_t n_pen = collect_penalized(s, history, n_history);
    int32_t tok = s->p.temp <= 0.0f ? sample_greedy(s, logits, n_pen) : sample_stochastic(s, logits, n_pen);
    clear_marks(s, n_pen);
    return tok;
}
