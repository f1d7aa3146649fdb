/* forward_fixture.h - a tiny seeded model written to a temporary GGUF, loaded, and a
 * forward pass over it with a thread pool: what the forward tests run on. */
#ifndef PC_TESTS_FORWARD_FIXTURE_H
#define PC_TESTS_FORWARD_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "forward/forward.h"
#include "tiny_model.h"

typedef struct fixture {
    char *path;
    pc_model *m;
    pc_pool *pool;
    pc_forward *f;
} fixture;

static inline int fixture_open(fixture *fx, const tiny_spec *sp, int threads, int n_batch) {
    memset(fx, 0, sizeof *fx);
    pc_error err = {0};
    pc_gguf *g = NULL;
    fx->path = tiny_model_write(sp);
    if (!fx->path) return -1;
    if (pc_gguf_open(fx->path, &g, &err) != PC_OK || pc_model_load(g, &fx->m, &err) != PC_OK) {
        fprintf(stderr, "open tiny model: %s\n", err.msg);
        return -1;
    }
    fx->pool = pc_pool_create(threads);
    if (pc_forward_create(fx->m, fx->pool, n_batch, 1024, pc_isa_detect(), &fx->f, &err) != PC_OK) {
        fprintf(stderr, "forward: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static inline void fixture_close(fixture *fx) {
    pc_forward_free(fx->f);
    pc_pool_free(fx->pool);
    pc_model_free(fx->m);
    if (fx->path) unlink(fx->path);
    free(fx->path);
}

#endif
