/* engine.c - opening a model: GGUF, weights, tokenizer, chat format, threads,
 * and the module store keyed by the model's fingerprint: the shared state of requests. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_internal.h"
#include "engine/prefix_index.h"
#include "util/buf.h"
#include "util/error.h"

pc_engine_params pc_engine_default_params(void) {
    return (pc_engine_params){.model_path = NULL, .n_threads = 0, .n_ctx = 0, .n_batch = 0, .chat_template = NULL,
                              .backend = NULL};
}

static pc_status open_chat(pc_engine *e, const pc_gguf *g, const char *name, pc_error *err) {
    if (name) {
        e->chat = pc_chat_format_from_name(name);
        if (e->chat == PC_CHAT_UNKNOWN)
            return pc_fail(err, PC_ERR_INVALID, "unknown chat template '%s' (chatml, llama2, llama3, gemma)", name);
        return PC_OK;
    }
    /* An unrecognised template is not fatal here: only chat features need it,
     * and they report the detection error when used. */
    pc_error ignored;
    if (pc_chat_detect_gguf(g, &e->chat, &ignored) != PC_OK) e->chat = PC_CHAT_UNKNOWN;
    return PC_OK;
}

/* What <system/> stands for: the system message the model's own template
 * adds when a conversation has none (a template rule, so only when the
 * template is the model's). */
static pc_status open_default_system(pc_engine *e, const pc_gguf *g, const char *chosen, pc_error *err) {
    pc_gguf_str t;
    if (chosen || e->chat != PC_CHAT_CHATML || pc_gguf_get_str(g, "tokenizer.chat_template", &t, NULL) != PC_OK)
        return PC_OK;
    return pc_chat_default_system(t.ptr, (size_t)t.len, &e->default_system, err);
}

static void model_name(pc_engine *e, const pc_gguf *g, const char *path) {
    pc_gguf_str s;
    if (pc_gguf_get_str(g, "general.name", &s, NULL) == PC_OK && s.len < sizeof e->name)
        snprintf(e->name, sizeof e->name, "%.*s", (int)s.len, s.ptr);
    else
        snprintf(e->name, sizeof e->name, "%s", path);
}

/* Parameters without scaffold text are filled with the unknown token, as the
 * prototype did; models without one use EOS. */
static int32_t placeholder_token(const pc_gguf *g, const pc_tokenizer *tok) {
    uint32_t id;
    if (pc_gguf_get_u32(g, "tokenizer.ggml.unknown_token_id", &id, NULL) == PC_OK && (int32_t)id < pc_tokenizer_n_vocab(tok))
        return (int32_t)id;
    int32_t eos = pc_tokenizer_eos(tok);
    return eos >= 0 ? eos : 0;
}

static pc_kv_span *device_upload(void *ctx, const pc_kv_span *src) { return pc_backend_shared_device_copy(ctx, src); }

/* The store's device tier on a backend with device memory: copies made by the
 * backend (the store never calls CUDA), budget as asked, by default half of
 * what is free once the weights are in (the rest for activations and the
 * requests' own spans). */
static size_t device_budget(const pc_engine *e, const pc_cache_params *c) {
    if (c->gpu_off || pc_backend_shared_kind(e->dev) != PC_BACKEND_CUDA) return 0;
    return c->gpu_bytes ? c->gpu_bytes : pc_backend_shared_device_free(e->dev) / 2;
}

static pc_status open_store(pc_engine *e, const pc_engine_params *p, pc_error *err) {
    pc_status s = pc_model_digest(e->model, e->pool, e->model_digest, err);
    if (s != PC_OK) return s;
    const pc_hparams *hp = &e->model->hp;
    const pc_store_device dev = {.upload = device_upload, .ctx = e->dev}; /* the store copies the table */
    pc_store_config c = {.model_label = e->name, .n_layer = hp->n_layer, .dim = hp->n_head_kv * hp->head_dim,
                         .cache = p->cache, .device = &dev, .device_bytes = device_budget(e, &p->cache)};
    memcpy(c.model, e->model_digest, sizeof c.model);
    if (!(e->prefix_index = pc_prefix_index_new()))
        return pc_fail(err, PC_ERR_NOMEM, "out of memory for the prefix cache's index");
    return pc_store_open(&c, &e->store, err);
}

/* The backend the parameters name; AUTO resolved to what this machine has. */
static pc_status pick_backend(const pc_engine_params *p, pc_backend_kind *kind, pc_error *err) {
    if (!pc_backend_kind_parse(p->backend ? p->backend : "auto", kind))
        return pc_fail(err, PC_ERR_INVALID, "unknown backend '%s' (cpu, cuda, auto)", p->backend);
    if (*kind == PC_BACKEND_AUTO) *kind = pc_backend_cuda_available(NULL, 0) ? PC_BACKEND_CUDA : PC_BACKEND_CPU;
    char why[256];
    if (*kind == PC_BACKEND_CUDA && !pc_backend_cuda_available(why, sizeof why))
        return pc_fail(err, PC_ERR_UNSUPPORTED, "backend cuda: %s", why);
    return PC_OK;
}

/* Prefill chunks: a GPU wants long ones (large matrix products), the CPU 512. */
static int32_t default_batch(pc_backend_kind kind) { return kind == PC_BACKEND_CUDA ? 4096 : 512; }

static pc_status open_parts(pc_engine *e, const pc_engine_params *p, pc_error *err) {
    pc_backend_kind kind;
    pc_status s = pick_backend(p, &kind, err);
    if (s != PC_OK) return s;
    pc_gguf *g = NULL;
    s = pc_gguf_open(p->model_path, &g, err);
    if (s != PC_OK) return s;
    model_name(e, g, p->model_path);
    if ((s = pc_tokenizer_load(g, &e->tok, err)) != PC_OK || (s = open_chat(e, g, p->chat_template, err)) != PC_OK ||
        (s = open_default_system(e, g, p->chat_template, err)) != PC_OK) {
        pc_gguf_close(g);
        return s;
    }
    if ((s = pc_model_load(g, &e->model, err)) != PC_OK) return s; /* takes g */
    if (pc_tokenizer_n_vocab(e->tok) > e->model->hp.n_vocab)
        return pc_fail(err, PC_ERR_FORMAT, "%s: tokenizer has %d tokens but the embedding only %d rows", p->model_path,
                       pc_tokenizer_n_vocab(e->tok), e->model->hp.n_vocab);
    e->n_ctx = p->n_ctx > 0 ? p->n_ctx : e->model->hp.n_ctx_train;
    e->n_batch = p->n_batch > 0 ? p->n_batch : default_batch(kind);
    e->placeholder = placeholder_token(g, e->tok);
    e->isa = pc_isa_detect();
    e->pool = pc_pool_create(p->n_threads);
    if (!e->pool) return pc_fail(err, PC_ERR_NOMEM, "out of memory opening %s", p->model_path);
    const pc_backend_params bp = {.kind = kind, .pool = e->pool, .isa = e->isa};
    if ((s = pc_backend_shared_create(e->model, &bp, &e->dev, err)) != PC_OK) return s; /* CUDA: the model uploaded once */
    /* A forward state made now checks that every weight has a kernel on this
     * path, so an unsupported model fails at open, not at its first request. */
    pc_forward *f = NULL;
    pc_status s2 = pc_engine_new_forward(e, 1, &f, err);
    pc_forward_free(f);
    return s2 == PC_OK ? open_store(e, p, err) : s2;
}

pc_status pc_engine_new_forward(const pc_engine *e, int32_t n_batch, pc_forward **out, pc_error *err) {
    const pc_backend_params bp = {.kind = pc_backend_shared_kind(e->dev), .pool = e->pool, .isa = e->isa, .shared = e->dev};
    return pc_forward_create_on(e->model, &bp, n_batch > 0 ? n_batch : e->n_batch, e->n_ctx, out, err);
}

pc_status pc_engine_take_forward(pc_engine *e, pc_forward **out, pc_error *err) {
    pthread_mutex_lock(&e->spare_lock);
    *out = e->spare;
    e->spare = NULL;
    pthread_mutex_unlock(&e->spare_lock);
    return *out ? PC_OK : pc_engine_new_forward(e, 0, out, err);
}

void pc_engine_give_forward(pc_engine *e, pc_forward *f) {
    pthread_mutex_lock(&e->spare_lock);
    if (!e->spare) {
        e->spare = f;
        f = NULL;
    }
    pthread_mutex_unlock(&e->spare_lock);
    pc_forward_free(f);
}

static pc_status new_forward(void *ctx, pc_forward **out, pc_error *err) {
    return pc_engine_new_forward(ctx, 0, out, err);
}

pc_encoder pc_engine_encoder(pc_engine *e, pc_encode_progress_fn progress, void *user) {
    return (pc_encoder){.store = e->store, .m = e->model, .new_forward = new_forward, .forward_ctx = e,
                        .progress = progress, .user = user};
}

pc_kv_span *pc_engine_new_span(const pc_engine *e, int32_t cap) { return pc_backend_shared_span_new(e->dev, cap); }

pc_status pc_engine_open(const pc_engine_params *p, pc_engine **out, pc_error *err) {
    *out = NULL;
    if (!p || !p->model_path) return pc_fail(err, PC_ERR_INVALID, "no model path given");
    pc_engine *e = calloc(1, sizeof *e);
    if (!e) return pc_fail(err, PC_ERR_NOMEM, "out of memory opening %s", p->model_path);
    if (pthread_rwlock_init(&e->schemas_lock, NULL) != 0) {
        free(e);
        return pc_fail(err, PC_ERR_NOMEM, "cannot create the schema registry's lock");
    }
    pthread_mutex_init(&e->spare_lock, NULL);
    pc_status s = open_parts(e, p, err);
    if (s != PC_OK) {
        pc_engine_free(e);
        return s;
    }
    *out = e;
    return PC_OK;
}

void pc_engine_free(pc_engine *e) {
    if (!e) return;
    pc_engine_free_schemas(e);
    pc_store_close(e->store);
    pc_prefix_index_free(e->prefix_index);
    pc_forward_free(e->spare); /* its backend is on e->dev */
    pthread_mutex_destroy(&e->spare_lock);
    pc_backend_shared_free(e->dev); /* after every span it made: the schemas' above, the requests' before */
    pc_pool_free(e->pool);
    pc_tokenizer_free(e->tok);
    pc_model_free(e->model);
    pthread_rwlock_destroy(&e->schemas_lock);
    free(e->default_system);
    free(e);
}

int pc_engine_n_vocab(const pc_engine *e) { return e->model->hp.n_vocab; }
int pc_engine_n_ctx(const pc_engine *e) { return e->n_ctx; }
size_t pc_engine_kv_bytes_per_token(const pc_engine *e) { return pc_model_kv_bytes_per_token(e->model); }
const char *pc_engine_model_name(const pc_engine *e) { return e->name; }
const char *pc_engine_isa(const pc_engine *e) { return pc_isa_name(e->isa); }
void pc_engine_cache_stats(pc_engine *e, pc_cache_stats *out) { pc_store_stats(e->store, out); }

pc_status pc_engine_set_tenant_quota(pc_engine *e, const char *tenant, size_t bytes, pc_error *err) {
    return pc_store_set_quota(e->store, tenant, bytes, err);
}

void pc_engine_tenant_usage(pc_engine *e, const char *tenant, size_t *bytes, size_t *quota) {
    pc_store_tenant_usage(e->store, tenant, bytes, quota);
}
const char *pc_engine_backend(const pc_engine *e) { return pc_backend_kind_name(pc_backend_shared_kind(e->dev)); }

pc_status pc_engine_tokenize(const pc_engine *e, const char *text, size_t len, bool add_special, bool parse_special,
                             int32_t **ids, size_t *n_ids, pc_error *err) {
    pc_tokens t = {0};
    pc_status s = pc_tokenize(e->tok, text, len, add_special, parse_special, &t, err);
    if (s != PC_OK) {
        pc_tokens_free(&t);
        return s;
    }
    *ids = t.ids;
    *n_ids = t.n;
    return PC_OK;
}

/* The conversation of --chat: an optional system message, one user message,
 * and the generation prompt. */
static pc_status render_chat(const pc_engine *e, const char *system, const char *user, pc_chat_text *out,
                             pc_error *err) {
    if (e->chat == PC_CHAT_UNKNOWN)
        return pc_fail(err, PC_ERR_UNSUPPORTED,
                       "%s: the model's chat template is not recognised; choose one with --chat-template "
                       "(chatml, llama2, llama3, gemma)", e->name);
    pc_chat_role roles[2];
    const char *texts[2];
    size_t n = 0;
    if (system) {
        roles[n] = PC_ROLE_SYSTEM;
        texts[n++] = system;
    }
    roles[n] = PC_ROLE_USER;
    texts[n++] = user;
    return pc_chat_render(e->chat, NULL, roles, texts, n, true, out, err);
}

pc_status pc_engine_chat_prompt(const pc_engine *e, const char *system, const char *user, char **out, pc_error *err) {
    *out = NULL;
    pc_chat_text t = {0};
    pc_status st = render_chat(e, system, user, &t, err);
    if (st == PC_OK && !(*out = pc_buf_take(&t.text))) st = pc_fail(err, PC_ERR_NOMEM, "out of memory");
    pc_chat_text_free(&t);
    return st;
}

pc_status pc_engine_chat_tokenize(const pc_engine *e, const char *system, const char *user, int32_t **ids,
                                  size_t *n_ids, pc_error *err) {
    *ids = NULL;
    *n_ids = 0;
    pc_chat_text t = {0};
    pc_tokens tok = {0};
    pc_status st = render_chat(e, system, user, &t, err);
    if (st == PC_OK) st = pc_chat_text_tokenize(e->tok, &t, true, &tok, err);
    pc_chat_text_free(&t);
    if (st != PC_OK) {
        pc_tokens_free(&tok);
        return st;
    }
    *ids = tok.ids;
    *n_ids = tok.n;
    return PC_OK;
}

static pc_status chat_roles(const pc_engine *e, const char *const *roles, size_t n, pc_chat_role **out,
                            pc_error *err) {
    *out = NULL;
    if (e->chat == PC_CHAT_UNKNOWN)
        return pc_fail(err, PC_ERR_UNSUPPORTED, "%s: the model's chat template is not recognised", e->name);
    pc_chat_role *r = malloc((n ? n : 1) * sizeof *r);
    if (!r) return pc_fail(err, PC_ERR_NOMEM, "out of memory formatting %zu messages", n);
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(roles[i], "system")) r[i] = PC_ROLE_SYSTEM;
        else if (!strcmp(roles[i], "user")) r[i] = PC_ROLE_USER;
        else if (!strcmp(roles[i], "assistant")) r[i] = PC_ROLE_ASSISTANT;
        else {
            free(r);
            return pc_fail(err, PC_ERR_INVALID, "message %zu: role '%s' is not system, user or assistant", i, roles[i]);
        }
    }
    *out = r;
    return PC_OK;
}

pc_status pc_engine_chat_format(const pc_engine *e, const char *const *roles, const char *const *contents, size_t n,
                                bool add_generation_prompt, char **out, pc_error *err) {
    *out = NULL;
    pc_chat_role *r = NULL;
    pc_status s = chat_roles(e, roles, n, &r, err);
    if (s == PC_OK) s = pc_chat_format_messages(e->chat, r, contents, n, add_generation_prompt, out, err);
    free(r);
    return s;
}

pc_status pc_engine_chat_tokenize_messages(const pc_engine *e, const char *const *roles, const char *const *contents,
                                           size_t n, bool add_generation_prompt, int32_t **ids, size_t *n_ids,
                                           pc_error *err) {
    *ids = NULL;
    *n_ids = 0;
    pc_chat_role *r = NULL;
    pc_chat_text t = {0};
    pc_tokens tok = {0};
    pc_status st = chat_roles(e, roles, n, &r, err);
    if (st == PC_OK) st = pc_chat_render(e->chat, NULL, r, contents, n, add_generation_prompt, &t, err);
    if (st == PC_OK) st = pc_chat_text_tokenize(e->tok, &t, true, &tok, err);
    free(r);
    pc_chat_text_free(&t);
    if (st != PC_OK) {
        pc_tokens_free(&tok);
        return st;
    }
    *ids = tok.ids;
    *n_ids = tok.n;
    return PC_OK;
}
