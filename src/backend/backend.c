/* backend.c - choosing a backend by name and by what the machine has. */
#include "backend/backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"

bool pc_backend_kind_parse(const char *name, pc_backend_kind *out) {
    static const struct { const char *name; pc_backend_kind kind; } kinds[] = {
        {"auto", PC_BACKEND_AUTO}, {"cpu", PC_BACKEND_CPU}, {"cuda", PC_BACKEND_CUDA}};
    for (size_t i = 0; name && i < sizeof kinds / sizeof kinds[0]; i++)
        if (!strcmp(name, kinds[i].name)) {
            *out = kinds[i].kind;
            return true;
        }
    return false;
}

const char *pc_backend_kind_name(pc_backend_kind k) {
    switch (k) {
    case PC_BACKEND_CPU: return "cpu";
    case PC_BACKEND_CUDA: return "cuda";
    default: return "auto";
    }
}

static pc_backend_kind resolve(pc_backend_kind k) {
    return k == PC_BACKEND_AUTO ? (pc_backend_cuda_available(NULL, 0) ? PC_BACKEND_CUDA : PC_BACKEND_CPU) : k;
}

/* The CPU keeps KV in ordinary host memory and has no device copies. */
static void cpu_shared_free(pc_backend_shared *s) { free(s); }
static pc_kv_span *cpu_shared_span_new(pc_backend_shared *s, int32_t cap) { return pc_kv_span_for_model(s->m, cap); }
static pc_kv_span *cpu_shared_no_copy(pc_backend_shared *s, const pc_kv_span *src) {
    (void)s, (void)src;
    return NULL;
}
static size_t cpu_shared_device_free(pc_backend_shared *s) {
    (void)s;
    return 0;
}
static const pc_backend_shared_ops cpu_shared_ops = {.free = cpu_shared_free, .span_new = cpu_shared_span_new,
                                                     .device_copy = cpu_shared_no_copy, .host_copy = cpu_shared_no_copy,
                                                     .device_free = cpu_shared_device_free};

pc_status pc_backend_shared_create(const pc_model *m, const pc_backend_params *p, pc_backend_shared **out,
                                   pc_error *err) {
    *out = NULL;
    if (resolve(p->kind) == PC_BACKEND_CUDA) return pc_backend_cuda_shared_create(m, p, out, err);
    pc_backend_shared *s = calloc(1, sizeof *s);
    if (!s) return pc_fail(err, PC_ERR_NOMEM, "out of memory for the CPU backend's shared state");
    *s = (pc_backend_shared){.kind = PC_BACKEND_CPU, .ops = &cpu_shared_ops, .m = m};
    *out = s;
    return PC_OK;
}

void pc_backend_shared_free(pc_backend_shared *s) {
    if (s) s->ops->free(s);
}

pc_backend_kind pc_backend_shared_kind(const pc_backend_shared *s) { return s->kind; }

pc_kv_span *pc_backend_shared_span_new(pc_backend_shared *s, int32_t cap) { return s->ops->span_new(s, cap); }

pc_kv_span *pc_backend_shared_device_copy(pc_backend_shared *s, const pc_kv_span *src) {
    return s->ops->device_copy(s, src);
}

pc_kv_span *pc_backend_shared_host_copy(pc_backend_shared *s, const pc_kv_span *src) { return s->ops->host_copy(s, src); }

size_t pc_backend_shared_device_free(pc_backend_shared *s) { return s->ops->device_free(s); }

#ifndef PC_CUDA
bool pc_backend_cuda_available(char *why, size_t why_cap) {
    if (why && why_cap) snprintf(why, why_cap, "this build has no CUDA backend (configure with -DPC_CUDA=ON where nvcc is installed)");
    return false;
}

pc_status pc_backend_cuda_create(const pc_model *m, const pc_backend_params *p, int32_t n_batch, int64_t n_ctx,
                                 pc_backend **out, pc_error *err) {
    (void)m, (void)p, (void)n_batch, (void)n_ctx;
    *out = NULL;
    return pc_fail(err, PC_ERR_UNSUPPORTED, "backend cuda: this build has no CUDA backend (configure with -DPC_CUDA=ON)");
}

pc_status pc_backend_cuda_shared_create(const pc_model *m, const pc_backend_params *p, pc_backend_shared **out,
                                        pc_error *err) {
    (void)m, (void)p;
    *out = NULL;
    return pc_fail(err, PC_ERR_UNSUPPORTED, "backend cuda: this build has no CUDA backend (configure with -DPC_CUDA=ON)");
}
#endif

pc_status pc_backend_create(const pc_model *m, const pc_backend_params *p, int32_t n_batch, int64_t n_ctx,
                            pc_backend **out, pc_error *err) {
    *out = NULL;
    if (p->shared && (p->shared->m != m || (p->kind != PC_BACKEND_AUTO && p->kind != p->shared->kind)))
        return pc_fail(err, PC_ERR_INVALID, "backend: the shared state belongs to another model or backend");
    const pc_backend_kind kind = p->shared ? p->shared->kind : resolve(p->kind);
    if (kind == PC_BACKEND_CUDA) return pc_backend_cuda_create(m, p, n_batch, n_ctx, out, err);
    return pc_backend_cpu_create(m, p, n_batch, n_ctx, out, err);
}

void pc_backend_free(pc_backend *b) {
    if (b) b->ops->free(b);
}
