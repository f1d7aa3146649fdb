/* test_backend_forward.c - the whole forward pass on the CUDA backend against
 * the CPU backend, and Prompt Cache's properties on the GPU, over seeded
 * models of real shapes (SmolLM2-135M: llama, GQA 3, head dim 64; Qwen2.5-1.5B
 * widths: qwen2 with q/k/v biases, NeoX RoPE, GQA 6, head dim 128; a llama in
 * bf16):
 *   - logits of the last positions, GPU and CPU each against a double-precision
 *     reference: the GPU's relative L2 error at most twice the CPU's + 0.005
 *     (bf16 activations there, 8-bit blocks here); top-1 agreements reported;
 *   - exactness on the GPU: a context assembled from a cached span gives the
 *     logits of one plain prefill of the same tokens within the GPU's own error
 *     against the reference (at least 1e-2), and the same first greedy token;
 *     reported bitwise equal or not, and how many of 8 greedy tokens agree;
 *     until the picks differ, both runs' logits within decode's bound (so a
 *     different pick is a near-tie, not a cached run gone astray);
 *   - the cached request repeated (captured as a CUDA graph the second time,
 *     replayed the third) gives bitwise the logits of the first, eager run;
 *   - the same cached span read from pinned and from plain host memory
 *     (streamed layer by layer) gives bitwise the logits of the device copy;
 *   - decode steps (a CUDA graph from the second step, then replayed) match the
 *     logits of a full prefill of the same sequence within twice the larger
 *     of the GPU's and the CPU's error (decode's quantized products round x
 *     to 8 bits, as the CPU's do);
 *   - each backend refuses spans it cannot read or write.
 * Skips (77) where this build has no CUDA backend or no GPU is present.
 * PC_TEST_SMALL=1 runs only the small model (for compute-sanitizer). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "forward/forward.h"
#include "tiny_model.h"

/* ---------------- reference: double precision, weights dequantized once ---------------- */

typedef struct mm_job {
    const float *W; /* [n_out][n_in] */
    const double *X; /* [n][n_in] */
    double *Y;       /* [n][n_out] */
    int64_t n_in, n_out;
    int n, per_task;
} mm_job;

static void mm_task(void *ctx, int task, int n_tasks, int thread) {
    (void)n_tasks, (void)thread;
    mm_job *j = ctx;
    const int64_t o0 = (int64_t)task * j->per_task, o1 = o0 + j->per_task < j->n_out ? o0 + j->per_task : j->n_out;
    for (int64_t o = o0; o < o1; o++)
        for (int t = 0; t < j->n; t++) {
            double a = 0;
            const float *w = j->W + o * j->n_in;
            const double *x = j->X + (int64_t)t * j->n_in;
            for (int64_t i = 0; i < j->n_in; i++) a += (double)w[i] * x[i];
            j->Y[(int64_t)t * j->n_out + o] = a;
        }
}

/* Y = X W^T (+ bias) in double over the pool. */
static void ref_mm(pc_pool *pool, const pc_weight *w, const pc_weight *bias, const double *X, int n, double *Y) {
    float *W = malloc(sizeof(float) * (size_t)(w->ne0 * w->ne1));
    const size_t rb = pc_row_size(w->type, w->ne0);
    for (int64_t r = 0; r < w->ne1; r++) pc_dequantize_row(w->type, (const char *)w->data + r * rb, W + r * w->ne0, w->ne0);
    mm_job j = {.W = W, .X = X, .Y = Y, .n_in = w->ne0, .n_out = w->ne1, .n = n, .per_task = 64};
    pc_pool_run(pool, mm_task, &j, (int)((w->ne1 + 63) / 64));
    for (int t = 0; bias && bias->data && t < n; t++)
        for (int64_t o = 0; o < w->ne1; o++) Y[(int64_t)t * w->ne1 + o] += ((const float *)bias->data)[o];
    free(W);
}

static void ref_norm(double *y, const double *x, const pc_weight *w, int64_t n, double eps) {
    double ss = 0;
    for (int64_t i = 0; i < n; i++) ss += x[i] * x[i];
    const double sc = 1.0 / sqrt(ss / (double)n + eps);
    for (int64_t i = 0; i < n; i++) y[i] = x[i] * sc * ((const float *)w->data)[i];
}

static void ref_rope(double *v, int nh, int hd, int pos, double base, int neox) {
    for (int h = 0; h < nh; h++)
        for (int i = 0; i < hd / 2; i++) {
            const double th = pos * pow(base, -2.0 * i / hd);
            const int a = neox ? i : 2 * i, b = neox ? i + hd / 2 : 2 * i + 1;
            const double x0 = v[h * hd + a], x1 = v[h * hd + b];
            v[h * hd + a] = x0 * cos(th) - x1 * sin(th);
            v[h * hd + b] = x0 * sin(th) + x1 * cos(th);
        }
}

/* Logits of the last k of n tokens (positions 0..n-1), in double, as floats [k][V]. */
static void ref_logits(const pc_model *m, pc_pool *pool, const int32_t *tok, int n, int k, float *out) {
    const pc_hparams *hp = &m->hp;
    const int E = hp->n_embd, hd = hp->head_dim, Q = hp->n_head * hd, KV = hp->n_head_kv * hd, FF = hp->n_ff, V = hp->n_vocab;
    const int neox = m->arch->pos == PC_POS_ROPE_NEOX, G = hp->n_head / hp->n_head_kv;
    double *x = malloc(sizeof(double) * n * E), *xn = malloc(sizeof(double) * n * E), *q = malloc(sizeof(double) * n * Q);
    double *kk = malloc(sizeof(double) * n * KV), *vv = malloc(sizeof(double) * n * KV), *att = malloc(sizeof(double) * n * Q);
    double *tmp = malloc(sizeof(double) * n * E), *g = malloc(sizeof(double) * n * FF), *u = malloc(sizeof(double) * n * FF);
    double *sc = malloc(sizeof(double) * n), *lg = malloc(sizeof(double) * (size_t)k * V);
    float *row = malloc(sizeof(float) * E);
    const size_t rb = pc_row_size(m->tok_embd.type, E);
    for (int t = 0; t < n; t++) {
        pc_dequantize_row(m->tok_embd.type, (const char *)m->tok_embd.data + (size_t)tok[t] * rb, row, E);
        for (int i = 0; i < E; i++) x[t * E + i] = row[i];
    }
    for (int l = 0; l < hp->n_layer; l++) {
        const pc_layer_weights *w = &m->layers[l];
        for (int t = 0; t < n; t++) ref_norm(xn + t * E, x + t * E, &w->attn_norm, E, hp->norm_eps);
        ref_mm(pool, &w->wq, &w->bq, xn, n, q);
        ref_mm(pool, &w->wk, &w->bk, xn, n, kk);
        ref_mm(pool, &w->wv, &w->bv, xn, n, vv);
        for (int t = 0; t < n; t++) {
            ref_rope(q + t * Q, hp->n_head, hd, t, hp->rope_theta, neox);
            ref_rope(kk + t * KV, hp->n_head_kv, hd, t, hp->rope_theta, neox);
        }
        for (int t = 0; t < n; t++)
            for (int h = 0; h < hp->n_head; h++) {
                const int kh = h / G;
                double mx = -1e300, sum = 0;
                for (int j = 0; j <= t; j++) {
                    double d = 0;
                    for (int e = 0; e < hd; e++) d += q[t * Q + h * hd + e] * kk[j * KV + kh * hd + e];
                    sc[j] = d / sqrt((double)hd);
                    mx = sc[j] > mx ? sc[j] : mx;
                }
                for (int j = 0; j <= t; j++) sum += exp(sc[j] - mx);
                for (int e = 0; e < hd; e++) {
                    double a = 0;
                    for (int j = 0; j <= t; j++) a += exp(sc[j] - mx) / sum * vv[j * KV + kh * hd + e];
                    att[t * Q + h * hd + e] = a;
                }
            }
        ref_mm(pool, &w->wo, NULL, att, n, tmp);
        for (int i = 0; i < n * E; i++) x[i] += tmp[i];
        for (int t = 0; t < n; t++) ref_norm(xn + t * E, x + t * E, &w->ffn_norm, E, hp->norm_eps);
        ref_mm(pool, &w->ffn_gate, NULL, xn, n, g);
        ref_mm(pool, &w->ffn_up, NULL, xn, n, u);
        for (int i = 0; i < n * FF; i++) g[i] = g[i] / (1.0 + exp(-g[i])) * u[i];
        ref_mm(pool, &w->ffn_down, NULL, g, n, tmp);
        for (int i = 0; i < n * E; i++) x[i] += tmp[i];
    }
    for (int t = 0; t < k; t++) ref_norm(xn + t * E, x + (n - k + t) * E, &m->output_norm, E, hp->norm_eps);
    ref_mm(pool, &m->output, NULL, xn, k, lg);
    for (size_t i = 0; i < (size_t)k * V; i++) out[i] = (float)lg[i];
    free(x), free(xn), free(q), free(kk), free(vv), free(att), free(tmp), free(g), free(u), free(sc), free(lg), free(row);
}

typedef struct fx {
    pc_model *m;
    pc_pool *pool;
    pc_forward *cpu, *gpu;
    char *path;
} fx;

static bool fx_open(fx *f, const tiny_spec *sp, int32_t gpu_batch, int64_t n_ctx, bool no_copies) {
    memset(f, 0, sizeof *f);
    f->path = tiny_model_write(sp);
    pc_error err = {0};
    pc_gguf *g = NULL;
    if (!f->path || pc_gguf_open(f->path, &g, &err) != PC_OK || pc_model_load(g, &f->m, &err) != PC_OK) {
        CHECK_MSG(false, "model %s: %s", sp->arch, err.msg);
        return false;
    }
    f->pool = pc_pool_create(0);
    pc_backend_params gp = {.kind = PC_BACKEND_CUDA, .no_weight_copies = no_copies};
    if (pc_forward_create(f->m, f->pool, 512, n_ctx, pc_isa_detect(), &f->cpu, &err) != PC_OK ||
        pc_forward_create_on(f->m, &gp, gpu_batch, n_ctx, &f->gpu, &err) != PC_OK) {
        CHECK_MSG(false, "forward: %s", err.msg);
        return false;
    }
    return true;
}

static void fx_close(fx *f) {
    pc_forward_free(f->cpu);
    pc_forward_free(f->gpu);
    pc_pool_free(f->pool);
    pc_model_free(f->m);
    if (f->path) unlink(f->path);
    free(f->path);
}

static void random_tokens(int32_t *tok, int32_t *pos, int n, int n_vocab, uint64_t seed) {
    for (int i = 0; i < n; i++) {
        tok[i] = (int32_t)(tiny_rng(&seed) % (uint64_t)n_vocab);
        pos[i] = i;
    }
}

/* logits [n][V] of a plain prefill; NULL on failure */
static float *prefill_all(pc_forward *f, int V, const int32_t *tok, const int32_t *pos, int n) {
    float *lg = malloc(sizeof(float) * (size_t)n * V);
    pc_kv_span *s = pc_forward_new_span(f, n);
    pc_error err = {0};
    pc_status st = s && lg ? pc_forward_run(f, NULL, s, tok, pos, n, PC_LOGITS_ALL, lg, &err) : PC_ERR_NOMEM;
    CHECK_MSG(st == PC_OK, "prefill on %s: %s", pc_forward_backend_name(f), err.msg);
    pc_kv_span_release(s);
    if (st != PC_OK) {
        free(lg);
        return NULL;
    }
    return lg;
}

static int argmax(const float *x, int n) {
    int b = 0;
    for (int i = 1; i < n; i++) b = x[i] > x[b] ? i : b;
    return b;
}

static double rel_l2(const float *a, const float *b, size_t n) {
    double e = 0, r = 0;
    for (size_t i = 0; i < n; i++) e += ((double)a[i] - b[i]) * ((double)a[i] - b[i]), r += (double)b[i] * b[i];
    return r > 0 ? sqrt(e / r) : sqrt(e);
}

static double max_abs(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - b[i]));
    return m;
}

/* GPU and CPU logits of the last K of N positions against the double reference:
 * the GPU must be no further from exact arithmetic than twice the CPU is (each
 * rounds differently: bf16 activations there, 8-bit blocks here). Returns the
 * GPU's relative error, the tolerance the exactness checks use. */
static double test_agreement(fx *f, const char *name, double *cpu_err) {
    enum { N = 48, K = 16 };
    const int V = f->m->hp.n_vocab;
    int32_t tok[N], pos[N];
    random_tokens(tok, pos, N, V, 7);
    float *c = prefill_all(f->cpu, V, tok, pos, N), *g = prefill_all(f->gpu, V, tok, pos, N);
    float *r = malloc(sizeof(float) * (size_t)K * V);
    double eg = 1;
    if (!c || !g || !r) goto done;
    ref_logits(f->m, f->pool, tok, N, K, r);
    const float *cl = c + (size_t)(N - K) * V, *gl = g + (size_t)(N - K) * V;
    int ag = 0, ac = 0, agc = 0;
    bool finite = true;
    for (int t = 0; t < K; t++) {
        const int rt = argmax(r + (size_t)t * V, V), ct = argmax(cl + (size_t)t * V, V), gt = argmax(gl + (size_t)t * V, V);
        ag += gt == rt, ac += ct == rt, agc += gt == ct;
    }
    for (size_t i = 0; i < (size_t)K * V; i++) finite &= isfinite(gl[i]) != 0;
    eg = rel_l2(gl, r, (size_t)K * V);
    const double ec = rel_l2(cl, r, (size_t)K * V), egc = rel_l2(gl, cl, (size_t)K * V);
    printf("%s: logits of the last %d of %d positions against double precision: GPU relative L2 %.4f (top-1 %d/%d), "
           "CPU %.4f (top-1 %d/%d); GPU vs CPU %.4f, top-1 agreement %d/%d, max abs %.4f\n",
           name, K, N, eg, ag, K, ec, ac, K, egc, agc, K, max_abs(gl, cl, (size_t)K * V));
    CHECK_MSG(finite, "%s: non-finite GPU logits", name);
    CHECK_MSG(eg <= 2 * ec + 0.005, "%s: GPU error %.4f against the reference, CPU %.4f", name, eg, ec);
    *cpu_err = ec;
done:
    free(c), free(g), free(r);
    return eg;
}

/* Greedy continuation of `steps` tokens after a prefill whose last logits are
 * lg; the logits each token was picked from are kept in seen (steps x V). */
static bool greedy(pc_forward *f, const pc_kv_list *ctx, pc_kv_span *dst, float *lg, int V, int32_t next_pos, int steps,
                   int32_t *out, float *seen) {
    pc_error err = {0};
    for (int i = 0; i < steps; i++) {
        memcpy(seen + (size_t)i * V, lg, sizeof(float) * (size_t)V);
        out[i] = argmax(lg, V);
        int32_t p = next_pos + i;
        if (pc_forward_run(f, ctx, dst, &out[i], &p, 1, PC_LOGITS_LAST, lg, &err) != PC_OK) {
            CHECK_MSG(false, "decode: %s", err.msg);
            return false;
        }
    }
    return true;
}

/* Greedy tokens cached vs uncached: while they agree, both runs decode the same
 * tokens, so their logits may differ only by rounding, within dec_tol (the
 * bound decode steps meet against a prefill); that must hold up to and at the
 * first step where the picks differ, so a different token is a near-tie that
 * rounding decided, never a cached run gone astray. */
static void check_greedy(const char *name, const int32_t *gu, const int32_t *gc, const float *lu, const float *lc,
                         int V, int steps, double dec_tol) {
    int same = 0, first_diff = steps;
    double worst = 0;
    for (int i = 0; i < steps; i++) same += gu[i] == gc[i];
    for (int i = 0; i < steps && first_diff == steps; i++) {
        const float *u = lu + (size_t)i * V, *c = lc + (size_t)i * V;
        const double e = rel_l2(c, u, (size_t)V);
        worst = e > worst ? e : worst;
        if (gu[i] != gc[i]) {
            first_diff = i;
            printf("%s: step %d picks %d uncached, %d cached: logit gap %.4g uncached, %.4g cached, max abs difference "
                   "%.4g\n", name, i, gu[i], gc[i], (double)(u[gu[i]] - u[gc[i]]), (double)(c[gc[i]] - c[gu[i]]),
                   max_abs(c, u, (size_t)V));
        }
    }
    printf("%s: greedy tokens cached vs uncached on the GPU: %d/%d the same (first difference at step %d); logits up "
           "to that step within relative L2 %.3g (bound %.3g)\n", name, same, steps, first_diff, worst,
           fmax(dec_tol, 0.02));
    CHECK_MSG(first_diff > 0, "%s: the first greedy token differs cached vs uncached", name);
    CHECK_MSG(worst <= fmax(dec_tol, 0.02), "%s: cached vs uncached decode logits relative error %.3g before the tokens "
              "differ (bound %.3g)", name, worst, fmax(dec_tol, 0.02));
}

/* Cached (module span + fresh suffix) against uncached, on the GPU; then the
 * module span from host memory, streamed. */
static void test_exactness(fx *f, const char *name, double tol, double dec_tol) {
    enum { N = 80, M = 50, STEPS = 8 };
    const int V = f->m->hp.n_vocab;
    int32_t tok[N], pos[N], gen_u[STEPS], gen_c[STEPS];
    random_tokens(tok, pos, N, V, 11);
    float *lu = malloc(sizeof(float) * V), *lc = malloc(sizeof(float) * V), *lh = malloc(sizeof(float) * V);
    pc_error err = {0};
    pc_kv_span *u = pc_forward_new_span(f->gpu, N + STEPS), *a = pc_forward_new_span(f->gpu, M);
    pc_kv_span *b = pc_forward_new_span(f->gpu, N - M + STEPS);
    CHECK(pc_forward_run(f->gpu, NULL, u, tok, pos, N, PC_LOGITS_LAST, lu, &err) == PC_OK);
    CHECK(pc_forward_run(f->gpu, NULL, a, tok, pos, M, PC_LOGITS_NONE, NULL, &err) == PC_OK);
    pc_kv_span_freeze(a);
    pc_kv_list ctx = {0};
    pc_kv_list_push(&ctx, a, &err);
    CHECK(pc_forward_run(f->gpu, &ctx, b, tok + M, pos + M, N - M, PC_LOGITS_LAST, lc, &err) == PC_OK);
    const double e = rel_l2(lc, lu, (size_t)V);
    const bool bitwise = memcmp(lc, lu, sizeof(float) * V) == 0;
    printf("%s: GPU cached vs uncached last logits: %s, relative L2 %.3g, max abs %.3g\n", name,
           bitwise ? "bitwise equal" : "not bitwise equal", e, max_abs(lc, lu, (size_t)V));
    /* cached and uncached may round differently (other row counts, other key
     * tiles) but must not differ by more than the GPU differs from exact arithmetic */
    CHECK_MSG(e <= fmax(tol, 0.01), "%s: cached vs uncached relative error %.3g (GPU vs reference %.3g)", name, e, tol);

    /* the same cached request again: the second time its chunk shape is
     * captured as a graph and launched, the third time replayed; each must
     * give bitwise the logits of the first, eager run */
    for (int r = 0; r < 2; r++) {
        pc_kv_span *again = pc_forward_new_span(f->gpu, N - M);
        CHECK(pc_forward_run(f->gpu, &ctx, again, tok + M, pos + M, N - M, PC_LOGITS_LAST, lh, &err) == PC_OK);
        CHECK_MSG(memcmp(lh, lc, sizeof(float) * V) == 0, "%s: cached request %s: logits differ from the eager run's",
                  name, r ? "replayed from its graph" : "captured as a graph");
        pc_kv_span_release(again);
    }

    /* host tiers: the same span, streamed from pinned and from plain host memory */
    const pc_kv_loc locs[2] = {PC_KV_PINNED, PC_KV_HOST};
    for (int i = 0; i < 2; i++) {
        pc_kv_span *h = pc_forward_copy_span(f->gpu, a, locs[i]), *hb = pc_forward_new_span(f->gpu, N - M);
        CHECK_MSG(h && hb, "copy of a span to host memory");
        if (!h || !hb) continue;
        pc_kv_list hctx = {0};
        pc_kv_list_push(&hctx, h, &err);
        CHECK(pc_forward_run(f->gpu, &hctx, hb, tok + M, pos + M, N - M, PC_LOGITS_LAST, lh, &err) == PC_OK);
        CHECK_MSG(memcmp(lh, lc, sizeof(float) * V) == 0, "%s: %s span streamed: logits differ from the device span's",
                  name, i ? "host" : "pinned");
        if (i == 0) { /* the CPU reads pinned spans in place too */
            pc_kv_span *cb = pc_forward_new_span(f->cpu, N - M);
            CHECK(pc_forward_run(f->cpu, &hctx, cb, tok + M, pos + M, N - M, PC_LOGITS_LAST, lh, &err) == PC_OK);
            pc_kv_span_release(cb);
        }
        pc_kv_list_free(&hctx);
        pc_kv_span_release(h);
        pc_kv_span_release(hb);
    }

    /* the same greedy tokens */
    float *su = malloc(sizeof(float) * STEPS * V), *sc = malloc(sizeof(float) * STEPS * V);
    CHECK_MSG(su && sc, "%s: memory for the greedy runs' logits", name);
    if (su && sc && greedy(f->gpu, NULL, u, lu, V, N, STEPS, gen_u, su) &&
        greedy(f->gpu, &ctx, b, lc, V, N, STEPS, gen_c, sc))
        check_greedy(name, gen_u, gen_c, su, sc, V, STEPS, dec_tol);
    free(su), free(sc);

    /* refusals: the CPU cannot read a device span; CUDA cannot write a host one */
    pc_kv_span *cs = pc_forward_new_span(f->cpu, 4), *hs = pc_forward_new_span_at(f->gpu, 4, PC_KV_HOST);
    CHECK(pc_forward_run(f->cpu, &ctx, cs, tok, pos, 1, PC_LOGITS_NONE, NULL, &err) == PC_ERR_INVALID);
    CHECK(pc_forward_run(f->gpu, NULL, hs, tok, pos, 1, PC_LOGITS_NONE, NULL, &err) == PC_ERR_INVALID);
    CHECK_EQ_INT(hs->n, 0);
    pc_kv_span_release(cs);
    pc_kv_span_release(hs);
    pc_kv_list_free(&ctx);
    pc_kv_span_release(u);
    pc_kv_span_release(a);
    pc_kv_span_release(b);
    free(lu), free(lc), free(lh);
}

/* Decode steps (a graph, captured at the second step) against a full prefill. */
static void test_decode(fx *f, const char *name, double tol) {
    enum { N = 40, P = 32 };
    const int V = f->m->hp.n_vocab;
    int32_t tok[N], pos[N];
    random_tokens(tok, pos, N, V, 23);
    float *ref = prefill_all(f->gpu, V, tok, pos, N), *lg = malloc(sizeof(float) * V);
    pc_kv_span *s = pc_forward_new_span(f->gpu, N);
    pc_error err = {0};
    CHECK(pc_forward_run(f->gpu, NULL, s, tok, pos, P, PC_LOGITS_LAST, lg, &err) == PC_OK);
    double worst = 0;
    int agree = 0;
    for (int i = P; i < N && ref; i++) {
        CHECK(pc_forward_run(f->gpu, NULL, s, &tok[i], &pos[i], 1, PC_LOGITS_LAST, lg, &err) == PC_OK);
        const double e = rel_l2(lg, ref + (size_t)i * V, (size_t)V);
        worst = e > worst ? e : worst;
        agree += argmax(lg, V) == argmax(ref + (size_t)i * V, V);
    }
    printf("%s: %d decode steps (CUDA graph) vs prefill logits: relative L2 up to %.3g, top-1 %d/%d\n", name, N - P,
           worst, agree, N - P);
    CHECK_MSG(worst <= fmax(2 * tol, 0.02), "%s: decode vs prefill relative error %.3g (GPU vs reference %.3g)", name,
              worst, tol);
    pc_kv_span_release(s);
    free(ref), free(lg);
}

static void run_model(const tiny_spec *sp, const char *name, bool no_copies) {
    fx f;
    if (fx_open(&f, sp, 64, 512, no_copies)) {
        double cpu_err = 1;
        const double tol = test_agreement(&f, name, &cpu_err);
        /* decode's product of a quantized matrix rounds x to 8 bits per 32
         * (gemv_q8.cu), as the CPU's does: it may be as far from the bf16
         * prefill as the CPU is from exact arithmetic */
        const double dec_tol = 2 * fmax(tol, cpu_err);
        test_exactness(&f, name, tol, dec_tol);
        test_decode(&f, name, fmax(tol, cpu_err));
    }
    fx_close(&f);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    char why[256];
    if (!pc_backend_cuda_available(why, sizeof why)) {
        printf("test_backend_forward: skipped: %s\n", why);
        return CHECK_SKIP;
    }
    tiny_spec smol = tiny_default();
    smol.n_vocab = 49152, smol.n_embd = 576, smol.n_layer = 30, smol.n_head = 9, smol.n_head_kv = 3, smol.n_ff = 1536;
    smol.wtype = PC_TYPE_Q4_1, smol.etype = PC_TYPE_Q8_0, smol.n_ctx = 8192, smol.rope_theta = 100000.0f;
    const char *small = getenv("PC_TEST_SMALL");
    if (small && *small == '1') {
        smol.n_layer = 2, smol.n_vocab = 4096;
        run_model(&smol, "SmolLM2-shaped (2 layers)", false);
        return check_report();
    }
    run_model(&smol, "SmolLM2-135M-shaped Q4_1", false);
    run_model(&smol, "SmolLM2-135M-shaped Q4_1, no bf16 weight copies", true);

    tiny_spec qwen = tiny_default();
    qwen.arch = "qwen2", qwen.qkv_bias = 1, qwen.n_vocab = 151936, qwen.n_embd = 1536, qwen.n_layer = 6;
    qwen.n_head = 12, qwen.n_head_kv = 2, qwen.n_ff = 8960, qwen.wtype = PC_TYPE_Q4_K, qwen.etype = PC_TYPE_Q6_K;
    qwen.tied = 1, qwen.rope_theta = 1000000.0f, qwen.n_ctx = 32768;
    run_model(&qwen, "Qwen2.5-1.5B-shaped Q4_K (6 layers)", false);

    tiny_spec llama = tiny_default();
    llama.n_vocab = 32000, llama.n_embd = 1024, llama.n_layer = 4, llama.n_head = 8, llama.n_head_kv = 8;
    llama.n_ff = 2816, llama.wtype = PC_TYPE_BF16, llama.etype = PC_TYPE_BF16, llama.tied = 0, llama.n_ctx = 4096;
    run_model(&llama, "Llama-shaped bf16 (head dim 128, 4 layers)", false);
    return check_report();
}
