/* default_model.h - opening the tests' model (PC_MODEL_PATH, SmolLM2), or
 * saying why a test cannot run: each returns 0 when opened, CHECK_SKIP after
 * a line when the model file is absent (a checkout without models), 1 after
 * the engine's message when it is there but does not open. */
#ifndef PC_TESTS_DEFAULT_MODEL_H
#define PC_TESTS_DEFAULT_MODEL_H

#include <stdio.h>
#include <unistd.h>

#include "check.h"
#include "gguf/gguf.h"
#include "pcache.h"
#include "tokenizer/tokenizer.h"

static inline int test_model_present(void) {
    if (access(PC_MODEL_PATH, R_OK) == 0) return 0;
    printf("model %s absent: skipped\n", PC_MODEL_PATH);
    return CHECK_SKIP;
}

static inline int test_engine_open(int32_t n_ctx, pc_engine **out) {
    *out = NULL;
    if (test_model_present()) return CHECK_SKIP;
    pc_engine_params p = pc_engine_default_params();
    p.model_path = PC_MODEL_PATH;
    p.n_ctx = n_ctx;
    pc_error err = {0};
    if (pc_engine_open(&p, out, &err) == PC_OK) return 0;
    fprintf(stderr, "%s\n", err.msg);
    return 1;
}

static inline int test_tokenizer_open(pc_tokenizer **out) {
    *out = NULL;
    if (test_model_present()) return CHECK_SKIP;
    pc_gguf *g = NULL;
    pc_error err = {0};
    const int ok = pc_gguf_open(PC_MODEL_PATH, &g, &err) == PC_OK && pc_tokenizer_load(g, out, &err) == PC_OK;
    pc_gguf_close(g);
    if (ok) return 0;
    fprintf(stderr, "%s\n", err.msg);
    return 1;
}

#endif
