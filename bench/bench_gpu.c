/* bench_gpu.c - pcache's side of bench_gpu.py: TTFT and decode on a GGUF
 * model through the forward API, on the CUDA backend (or the CPU with
 * --backend cpu), printing one JSON object per measured case.
 *
 *   bench_gpu MODEL.gguf [--cached N] [--fresh N] [--prefill N,N,...] [--decode N] [--reps N] [--backend B]
 *
 * Cases (median of --reps runs, each timed from the request's start to the
 * first token chosen, logits in host memory and the greedy argmax taken):
 *   prefill N        a plain prefill of N tokens
 *   cached_gpu       --fresh tokens over --cached tokens of module KV resident
 *                    in device memory (zero copy: read where they lie); the
 *                    first and second such request alone too (cached_gpu_first,
 *                    cached_gpu_second: eager, then the graph's capture)
 *   cached_pinned    the same module KV in pinned host memory, streamed layer
 *                    by layer on a copy stream beside compute
 *   decode           per token at a context of cached + fresh (a CUDA graph)
 * The request's own KV span is allocated inside the timed region. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "forward/forward.h"
#include "util/clock.h"

typedef struct opts {
    const char *model, *backend;
    int cached, fresh, decode, reps;
    int prefill[8], n_prefill;
} opts;

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static int argmax(const float *x, int n) {
    int b = 0;
    for (int i = 1; i < n; i++) b = x[i] > x[b] ? i : b;
    return b;
}

static void die(const char *what, const pc_error *err) {
    fprintf(stderr, "bench_gpu: %s: %s\n", what, err->msg);
    exit(1);
}

/* One request: a fresh span, n tokens at positions pos over ctx, the first token. */
static double request(pc_forward *f, const pc_kv_list *ctx, const int32_t *tok, const int32_t *pos, int n, float *lg,
                      int V, int extra) {
    pc_error err = {0};
    const double t0 = pc_now_ms();
    pc_kv_span *s = pc_forward_new_span(f, n + extra);
    if (!s) die("span", &err);
    if (pc_forward_run(f, ctx, s, tok, pos, n, PC_LOGITS_LAST, lg, &err) != PC_OK) die("forward", &err);
    volatile int first = argmax(lg, V);
    (void)first;
    const double ms = pc_now_ms() - t0;
    pc_kv_span_release(s);
    return ms;
}

static void print_case(const opts *o, const char *name, int n_ctx, int n_new, double ms, const char *type) {
    printf("{\"engine\":\"pcache\",\"backend\":\"%s\",\"type\":\"%s\",\"case\":\"%s\",\"n_cached\":%d,\"n_new\":%d,\"ms\":%.4f}\n",
           o->backend, type, name, n_ctx, n_new, ms);
    fflush(stdout);
}

static void parse(int argc, char **argv, opts *o) {
    *o = (opts){.backend = "cuda", .cached = 8192, .fresh = 32, .decode = 32, .reps = 5};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (a[0] != '-') o->model = a;
        else if (v && !strcmp(a, "--cached")) o->cached = atoi(v), i++;
        else if (v && !strcmp(a, "--fresh")) o->fresh = atoi(v), i++;
        else if (v && !strcmp(a, "--decode")) o->decode = atoi(v), i++;
        else if (v && !strcmp(a, "--reps")) o->reps = atoi(v), i++;
        else if (v && !strcmp(a, "--backend")) o->backend = v, i++;
        else if (v && !strcmp(a, "--prefill")) {
            for (char *p = argv[++i]; *p && o->n_prefill < 8;) {
                o->prefill[o->n_prefill++] = (int)strtol(p, &p, 10);
                if (*p == ',') p++;
            }
        } else {
            fprintf(stderr, "bench_gpu: unknown option %s\n", a);
            exit(2);
        }
    }
    if (!o->model || o->reps < 1 || o->fresh < 1 || o->cached < 1) {
        fprintf(stderr, "usage: bench_gpu MODEL.gguf [--cached N] [--fresh N] [--prefill N,N] [--decode N] [--reps N] [--backend cpu|cuda]\n");
        exit(2);
    }
}

int main(int argc, char **argv) {
    opts o;
    parse(argc, argv, &o);
    pc_error err = {0};
    pc_gguf *g = NULL;
    pc_model *m = NULL;
    if (pc_gguf_open(o.model, &g, &err) != PC_OK || pc_model_load(g, &m, &err) != PC_OK) die(o.model, &err);
    const char *type = pc_type_name(m->layers[0].wq.type);
    int nb = o.fresh;
    for (int i = 0; i < o.n_prefill; i++) nb = o.prefill[i] > nb ? o.prefill[i] : nb;
    nb = o.cached > nb ? o.cached : nb;
    int n_max = o.cached + o.fresh + o.decode;
    for (int i = 0; i < o.n_prefill; i++) n_max = o.prefill[i] > n_max ? o.prefill[i] : n_max;
    pc_backend_params bp = {.pool = pc_pool_create(0), .isa = pc_isa_detect()};
    if (!pc_backend_kind_parse(o.backend, &bp.kind)) die("backend", &err);
    pc_forward *f = NULL;
    double t0 = pc_now_ms();
    if (pc_forward_create_on(m, &bp, nb, n_max + 64, &f, &err) != PC_OK) die("forward", &err);
    fprintf(stderr, "bench_gpu: %s (%s) on %s, loaded in %.0f ms\n", o.model, type, pc_forward_backend_name(f), pc_now_ms() - t0);
    const int V = m->hp.n_vocab;
    int32_t *tok = malloc(sizeof(int32_t) * (size_t)n_max), *pos = malloc(sizeof(int32_t) * (size_t)n_max);
    float *lg = malloc(sizeof(float) * (size_t)V);
    double *t = malloc(sizeof(double) * (size_t)(o.reps > o.decode ? o.reps : o.decode));
    uint64_t s = 12345;
    for (int i = 0; i < n_max; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        tok[i] = 3 + (int32_t)((s >> 33) % (uint64_t)(V - 3));
        pos[i] = i;
    }
    request(f, NULL, tok, pos, 64, lg, V, 0); /* warm-up: handles, kernels, the pool */

    for (int p = 0; p < o.n_prefill; p++) {
        for (int r = 0; r < o.reps; r++) t[r] = request(f, NULL, tok, pos, o.prefill[p], lg, V, 0);
        print_case(&o, "prefill", 0, o.prefill[p], median(t, o.reps), type);
    }

    /* the module: o.cached tokens encoded once, frozen */
    pc_kv_span *mod = pc_forward_new_span(f, o.cached);
    if (!mod || pc_forward_run(f, NULL, mod, tok, pos, o.cached, PC_LOGITS_NONE, NULL, &err) != PC_OK) die("encode", &err);
    pc_kv_span_freeze(mod);
    pc_kv_list ctx = {0};
    pc_kv_list_push(&ctx, mod, &err);
    const int32_t *ft = tok + o.cached, *fp = pos + o.cached;
    /* the first request of this chunk size runs eagerly, the second captures
     * the CUDA backend's graph, later ones replay it: the first two are
     * reported apart, the median is of the later ones */
    print_case(&o, "cached_gpu_first", o.cached, o.fresh, request(f, &ctx, ft, fp, o.fresh, lg, V, 0), type);
    print_case(&o, "cached_gpu_second", o.cached, o.fresh, request(f, &ctx, ft, fp, o.fresh, lg, V, 0), type);
    for (int r = 0; r < o.reps; r++) t[r] = request(f, &ctx, ft, fp, o.fresh, lg, V, 0);
    print_case(&o, "cached_gpu", o.cached, o.fresh, median(t, o.reps), type);

    if (!strcmp(pc_forward_backend_name(f), "cuda")) {
        pc_kv_span *pin = pc_forward_copy_span(f, mod, PC_KV_PINNED);
        if (!pin) die("pinned copy", &err);
        pc_kv_list pctx = {0};
        pc_kv_list_push(&pctx, pin, &err);
        request(f, &pctx, ft, fp, o.fresh, lg, V, 0);
        for (int r = 0; r < o.reps; r++) t[r] = request(f, &pctx, ft, fp, o.fresh, lg, V, 0);
        print_case(&o, "cached_pinned", o.cached, o.fresh, median(t, o.reps), type);
        pc_kv_list_free(&pctx);
        pc_kv_span_release(pin);
    }

    /* decode at a context of cached + fresh */
    pc_kv_span *d = pc_forward_new_span(f, o.fresh + o.decode);
    if (!d || pc_forward_run(f, &ctx, d, ft, fp, o.fresh, PC_LOGITS_LAST, lg, &err) != PC_OK) die("decode prefill", &err);
    int32_t next = argmax(lg, V), p = o.cached + o.fresh;
    for (int i = 0; i < o.decode; i++, p++) {
        const double a = pc_now_ms();
        if (pc_forward_run(f, &ctx, d, &next, &p, 1, PC_LOGITS_LAST, lg, &err) != PC_OK) die("decode", &err);
        next = argmax(lg, V);
        t[i] = pc_now_ms() - a;
    }
    print_case(&o, "decode", o.cached + o.fresh, 1, median(t, o.decode), type);
    pc_kv_span_release(d);
    pc_kv_list_free(&ctx);
    pc_kv_span_release(mod);
    pc_forward_free(f);
    pc_pool_free(bp.pool);
    pc_model_free(m);
    free(tok), free(pos), free(lg), free(t);
    return 0;
}
