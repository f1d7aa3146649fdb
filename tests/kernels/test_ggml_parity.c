/* test_ggml_parity.c - our formats and activation quantizers against llama.cpp's own.
 *
 * Loads the reference peer's ggml libraries from $PC_GGML_LIB_DIR, else from
 * where the tool scripts put the peer (tools/build_llama_cpp.sh: .peer/bin;
 * tools/setup_peer.sh: .venv-peer's llama_cpp/lib) and compares, on random
 * blocks of every weight type:
 *   - dequantization with ggml's dequantize_row_* (to 1e-6 relative: ggml may
 *     fuse the multiply-add that we round twice),
 *   - activation quantization (Q8_0, Q8_1, Q8_K) with the CPU backend's
 *     from_float, byte for byte (llama.cpp's logits start from these bytes),
 *   - every dot product path with ggml's vec_dot on the same bytes.
 * Skips when the libraries are absent. The traits struct below mirrors
 * ggml-cpu.h's ggml_type_traits_cpu of the peer's version. */
#include <dlfcn.h>
#include <glob.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "kernels/cpu/quant.h"
#include "test_rng.h"

/* The peer's default places, relative to the source tree (both git-ignored). */
static const char *const peer_dirs[] = {".peer/bin", ".venv-peer/lib/python3*/site-packages/llama_cpp/lib"};

typedef void (*ggml_from_float)(const float *x, void *y, int64_t k);
typedef void (*ggml_vec_dot)(int n, float *s, size_t bs, const void *x, size_t bx, const void *y, size_t by, int nrc);
typedef struct ggml_traits_cpu {
    ggml_from_float from_float;
    ggml_vec_dot vec_dot;
    int vec_dot_type;
    int64_t nrows;
} ggml_traits_cpu;
typedef void (*ggml_dequantize)(const void *x, float *y, int64_t k);

/* Byte offsets of a block's f16 scale fields: random bytes there could be inf or NaN. */
static int f16_fields(pc_type t, int off[2]) {
    switch (t) {
    case PC_TYPE_Q4_0: case PC_TYPE_Q5_0: case PC_TYPE_Q8_0: off[0] = 0; return 1;
    case PC_TYPE_Q4_1: case PC_TYPE_Q5_1: case PC_TYPE_Q4_K: case PC_TYPE_Q5_K: off[0] = 0; off[1] = 2; return 2;
    case PC_TYPE_Q2_K: off[0] = 80; off[1] = 82; return 2;
    case PC_TYPE_Q3_K: off[0] = 108; return 1;
    case PC_TYPE_Q6_K: off[0] = 208; return 1;
    default: return 0;
    }
}

static void random_weights(test_rng *rng, pc_type t, uint8_t *w, int64_t n) {
    const pc_type_info *ti = pc_type_get(t);
    for (size_t i = 0; i < pc_row_size(t, n); i++) w[i] = (uint8_t)test_rng_u32(rng);
    for (int64_t b = 0; b < n / ti->block_size; b++) {
        int off[2];
        const int k = f16_fields(t, off);
        for (int i = 0; i < k; i++) {
            const pc_f16 h = pc_f32_to_f16(test_rng_float(rng) * 0.05f);
            memcpy(w + b * ti->type_size + off[i], &h, sizeof h);
        }
    }
}

typedef struct peer {
    void *base, *cpu;
    const ggml_traits_cpu *(*traits)(int type);
} peer;

static bool peer_open_dir(peer *p, const char *dir) {
    char path[1024];
    snprintf(path, sizeof path, "%s/libggml-base.so", dir);
    p->base = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
    snprintf(path, sizeof path, "%s/libggml-cpu.so", dir);
    p->cpu = p->base ? dlopen(path, RTLD_NOW | RTLD_GLOBAL) : NULL;
    if (!p->cpu) return false;
    void (*init)(void) = (void (*)(void))dlsym(p->cpu, "ggml_cpu_init");
    p->traits = (const ggml_traits_cpu *(*)(int))dlsym(p->cpu, "ggml_get_type_traits_cpu");
    if (!init || !p->traits) return false;
    init();
    printf("ggml libraries from %s\n", dir);
    return true;
}

static bool peer_open(peer *p) {
    if (getenv("PC_GGML_LIB_DIR")) return peer_open_dir(p, getenv("PC_GGML_LIB_DIR"));
    for (size_t i = 0; i < sizeof peer_dirs / sizeof peer_dirs[0]; i++) {
        char pattern[1024];
        glob_t g;
        snprintf(pattern, sizeof pattern, "%s/%s", PC_SOURCE_DIR, peer_dirs[i]);
        if (glob(pattern, 0, NULL, &g) != 0) continue;
        const bool found = peer_open_dir(p, g.gl_pathv[0]);
        globfree(&g);
        if (found) return true;
    }
    return false;
}

static void check_type(test_rng *rng, const peer *p, pc_type t, const char *deq_name, int64_t n) {
    uint8_t *w = malloc(pc_row_size(t, n)), *ours = malloc((size_t)n * 2), *theirs = malloc((size_t)n * 2);
    float *a = malloc((size_t)n * sizeof *a), *b = malloc((size_t)n * sizeof *b);
    random_weights(rng, t, w, n);

    ggml_dequantize deq = (ggml_dequantize)dlsym(p->base, deq_name);
    CHECK_MSG(deq != NULL, "%s missing", deq_name);
    if (deq) {
        deq(w, a, n);
        CHECK(pc_dequantize_row(t, w, b, n));
        int bad = 0;
        for (int64_t i = 0; i < n; i++) bad += fabsf(a[i] - b[i]) > 1e-6f * fabsf(a[i]) + 1e-30f;
        CHECK_MSG(bad == 0, "%s: %d values differ from ggml's", pc_type_name(t), bad);
    }

    const pc_type xt = pc_vec_dot_type(t);
    const ggml_traits_cpu *tw = p->traits((int)t), *tx = p->traits((int)xt);
    CHECK_EQ_INT(tw->vec_dot_type, xt);
    for (int64_t i = 0; i < n; i++) a[i] = test_rng_float(rng) * (i % 29 == 0 ? 6.f : 1.f);
    tx->from_float(a, theirs, n);
    CHECK(pc_quantize_row(xt, a, ours, n));
    CHECK_MSG(memcmp(ours, theirs, pc_row_size(xt, n)) == 0, "%s activations differ from ggml's", pc_type_name(xt));

    float want = 0;
    tw->vec_dot((int)n, &want, 0, w, 0, theirs, 0, 1);
    for (int isa = PC_ISA_SCALAR; isa <= (int)pc_isa_detect(); isa++) {
        float got = 0;
        pc_vec_dot_get(t, (pc_isa)isa)(n, &got, w, theirs);
        CHECK_MSG(fabsf(got - want) <= 1e-5f * fabsf(want) + 1e-6f, "%s dot on %s: %.9g vs ggml %.9g", pc_type_name(t),
                  pc_isa_name((pc_isa)isa), got, want);
    }
    free(w);
    free(ours);
    free(theirs);
    free(a);
    free(b);
}

int main(void) {
    peer p;
    if (!peer_open(&p)) {
        printf("skipped: llama.cpp's ggml libraries not found (set PC_GGML_LIB_DIR, or build the peer with "
               "tools/build_llama_cpp.sh into %s/.peer)\n", PC_SOURCE_DIR);
        return CHECK_SKIP;
    }
    static const struct { pc_type t; const char *deq; } types[] = {
        {PC_TYPE_Q4_0, "dequantize_row_q4_0"}, {PC_TYPE_Q4_1, "dequantize_row_q4_1"},
        {PC_TYPE_Q5_0, "dequantize_row_q5_0"}, {PC_TYPE_Q5_1, "dequantize_row_q5_1"},
        {PC_TYPE_Q8_0, "dequantize_row_q8_0"}, {PC_TYPE_Q2_K, "dequantize_row_q2_K"},
        {PC_TYPE_Q3_K, "dequantize_row_q3_K"}, {PC_TYPE_Q4_K, "dequantize_row_q4_K"},
        {PC_TYPE_Q5_K, "dequantize_row_q5_K"}, {PC_TYPE_Q6_K, "dequantize_row_q6_K"},
    };
    test_rng rng = {0x8CB92BA72F3D8DD7ULL};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        check_type(&rng, &p, types[i].t, types[i].deq, 1024);
        check_type(&rng, &p, types[i].t, types[i].deq, 2304);
    }
    return check_report();
}
