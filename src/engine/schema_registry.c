/* schema_registry.c - schemas registered with an engine: load (parse, lay out,
 * key, make ready in the store), look up, remove, describe. The engine owns
 * each schema; the KV is the store's, and a request pins what it reads, so
 * removal never pulls KV from under a running request.
 *
 * Threads: the registry is under schemas_lock, read-locked to look up and bind
 * prompts, write-locked only to add or remove an entry. Making a schema ready
 * (store look-ups, loads, encoding), the long part, runs unlocked with its own
 * forward state, so requests keep binding (and a server keeps decoding)
 * meanwhile. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_internal.h"
#include "schema/schema.h"
#include "util/buf.h"
#include "util/error.h"

pc_schema *pc_engine_find_schema_of(const pc_engine *e, const char *tenant, const char *name) {
    if (!tenant) tenant = "";
    for (int32_t i = 0; i < e->n_schemas; i++)
        if (strcmp(e->schemas[i]->name, name) == 0 && strcmp(e->schemas[i]->tenant, tenant) == 0) return e->schemas[i];
    return NULL;
}

/* A registered name is NAME (shared) or TENANT/NAME; schema names never hold '/'. */
pc_schema *pc_engine_find_schema(const pc_engine *e, const char *name) {
    const char *slash = strchr(name, '/');
    if (!slash) return pc_engine_find_schema_of(e, "", name);
    char tenant[256];
    if ((size_t)(slash - name) >= sizeof tenant) return NULL;
    memcpy(tenant, name, (size_t)(slash - name));
    tenant[slash - name] = '\0';
    return pc_engine_find_schema_of(e, tenant, slash + 1);
}

/* "NAME" or "TENANT/NAME", malloc'd. */
static char *registered_name(const pc_schema *s) {
    const size_t nt = strlen(s->tenant), nn = strlen(s->name);
    char *q = malloc(nt + nn + 2);
    if (q) snprintf(q, nt + nn + 2, "%s%s%s", s->tenant, nt ? "/" : "", s->name);
    return q;
}

static pc_status check_tenant(const char *t, pc_error *err) {
    if (!t) return PC_OK;
    if (strchr(t, '/') || strlen(t) > 200)
        return pc_fail(err, PC_ERR_INVALID, "tenant '%.64s': a tenant has at most 200 bytes and no '/'", t);
    return PC_OK;
}

static pc_status collect_warnings(const pc_pml_doc *doc, char **out, pc_error *err) {
    if (!out || doc->n_warnings == 0) return PC_OK;
    size_t len = *out ? strlen(*out) : 0;
    pc_buf b = {.data = *out, .len = len, .cap = *out ? len + 1 : 0};
    for (size_t i = 0; i < doc->n_warnings; i++)
        if (!pc_buf_puts(&b, doc->warnings[i].msg) || !pc_buf_puts(&b, "\n")) {
            *out = b.data; /* what was collected stays the caller's */
            return pc_fail(err, PC_ERR_NOMEM, "out of memory collecting warnings");
        }
    *out = b.data;
    return PC_OK;
}

static void digest_hex(const uint8_t d[32], char out[17]) {
    for (int i = 0; i < 8; i++) snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* Another schema of s's name and tenant is registered (the caller holds schemas_lock). */
static pc_status name_taken(const pc_schema *s, const pc_schema *old, pc_error *err) {
    char a[17], b[17];
    digest_hex(old->digest, a);
    digest_hex(s->digest, b);
    return pc_fail(err, PC_ERR_EXISTS,
                   "%s: a different schema named '%s' is already registered%s%s (digest %s..., this one %s...): "
                   "remove it first or choose another name",
                   s->doc->name, s->name, *s->tenant ? " for tenant " : "", s->tenant, a, b);
}

/* Whether s is registered already: PC_OK and *same when the registered one is
 * the same schema, PC_ERR_EXISTS when another holds its name. */
static pc_status check_name(pc_engine *e, const pc_schema *s, bool *same, pc_error *err) {
    const pc_schema *old = pc_engine_find_schema_of(e, s->tenant, s->name);
    *same = old && !memcmp(old->digest, s->digest, sizeof s->digest);
    return old && !*same ? name_taken(s, old, err) : PC_OK;
}

static pc_status add_schema(pc_engine *e, pc_schema *s, bool *same, pc_error *err) {
    pc_status st = check_name(e, s, same, err);
    if (st != PC_OK || *same) return st;
    pc_schema **a = pc_array_reserve(e->schemas, &e->cap_schemas, (size_t)e->n_schemas + 1, sizeof *e->schemas);
    if (!a) return pc_fail(err, PC_ERR_NOMEM, "out of memory registering schema '%s'", s->name);
    e->schemas = a;
    e->schemas[e->n_schemas++] = s;
    return PC_OK;
}

/* The token p->placeholder names (its text must be one token), or the model's. */
static pc_status placeholder_of(const pc_engine *e, const pc_schema_params *p, const char *doc, int32_t *out,
                                pc_error *err) {
    *out = e->placeholder;
    if (!p || !p->placeholder) return PC_OK;
    pc_tokens t = {0};
    pc_status st = pc_tokenize(e->tok, p->placeholder, strlen(p->placeholder), false, true, &t, err);
    if (st == PC_OK && t.n != 1)
        st = pc_fail(err, PC_ERR_INVALID, "%s: placeholder \"%s\" is %zu tokens; a placeholder must be exactly one token",
                     doc, p->placeholder, t.n);
    if (st == PC_OK) *out = t.ids[0];
    pc_tokens_free(&t);
    return st;
}

/* A schema whose cached pieces alone pass its tenant's memory quota can never
 * be held: refused before anything is encoded. */
static pc_status check_quota(pc_engine *e, const pc_schema *s, pc_error *err) {
    size_t used = 0, quota = 0, need = 0;
    pc_store_tenant_usage(e->store, s->tenant, &used, &quota);
    if (!quota) return PC_OK;
    const pc_hparams *hp = &e->model->hp;
    for (int32_t i = 0; i < s->n_pieces; i++)
        if (s->pieces[i].cached && s->pieces[i].n > 0)
            need += pc_store_payload_bytes(hp->n_layer, hp->n_head_kv * hp->head_dim, s->pieces[i].n);
    if (need <= quota) return PC_OK;
    return pc_fail(err, PC_ERR_QUOTA, "%s: schema '%s' holds %zu bytes of KV, more than tenant %s's memory quota of %zu bytes",
                   s->doc->name, s->name, need, s->tenant, quota);
}

/* Lays out, encodes and registers a parsed schema (takes doc); sh says how
 * it meets the shared registry (NULL: not at all). */
static pc_status register_doc(pc_engine *e, pc_pml_doc *doc, const pc_schema_params *p, const pc_shared_reg *sh,
                              char **name_out, pc_error *err) {
    pc_status st = collect_warnings(doc, p ? p->warnings : NULL, err);
    if (st == PC_OK) st = check_tenant(p ? p->tenant : NULL, err);
    if (st != PC_OK) {
        pc_pml_doc_free(doc);
        return st;
    }
    int32_t placeholder = 0;
    if ((st = placeholder_of(e, p, doc->name, &placeholder, err)) != PC_OK) {
        pc_pml_doc_free(doc);
        return st;
    }
    const size_t max_kv = p && p->max_kv_bytes ? p->max_kv_bytes : PC_SCHEMA_DEFAULT_MAX_KV_BYTES;
    pc_layout_ctx lc = {.tok = e->tok, .chat = e->chat, .add_bos = pc_tokenizer_add_bos(e->tok), .n_ctx = e->n_ctx,
                        .max_tokens = (int64_t)(max_kv / pc_model_kv_bytes_per_token(e->model)),
                        .placeholder = placeholder, .default_system = e->default_system};
    pc_schema *s = NULL;
    if ((st = pc_schema_layout(doc, &lc, &s, err)) != PC_OK) return st;
    st = pc_schema_keys(s, e->model_digest, p ? p->tenant : NULL, err); /* sets s->tenant */
    bool same = false, shared_same = false;
    if (st == PC_OK) {
        pthread_rwlock_rdlock(&e->schemas_lock);
        st = check_name(e, s, &same, err);
        pthread_rwlock_unlock(&e->schemas_lock);
    }
    if (st == PC_OK && !same && sh) st = pc_engine_shared_check(e, s, sh, &shared_same, err);
    if (st == PC_OK && !same) st = check_quota(e, s, err);
    if (st == PC_OK && !same) {
        pc_encoder enc = pc_engine_encoder(e, p ? p->progress : NULL, p ? p->progress_user : NULL);
        st = pc_store_set_group(e->store, s->group, p && p->pin, p ? p->ttl_s : 0, err);
        if (st == PC_OK) st = pc_schema_encode(s, &enc, &s->ready, err);
        pc_encoder_end(&enc);
        if (st != PC_OK) pc_store_set_group(e->store, s->group, false, 0, NULL); /* what it put is evictable again */
    }
    /* Published before it is registered here: once registered, another thread may remove s. */
    if (st == PC_OK && !same && sh) st = pc_engine_shared_publish(e, s, sh, p, err);
    /* The name is copied first: once registered, another thread may remove s. */
    char *name = st == PC_OK && name_out ? registered_name(s) : NULL;
    if (st == PC_OK && name_out && !name) st = pc_fail(err, PC_ERR_NOMEM, "out of memory registering '%s'", s->name);
    if (st == PC_OK && !same) { /* checked again: another thread may have registered the name meanwhile */
        pthread_rwlock_wrlock(&e->schemas_lock);
        st = add_schema(e, s, &same, err);
        pthread_rwlock_unlock(&e->schemas_lock);
    }
    if (st != PC_OK || same) pc_schema_free(s); /* same: the registered one stays, this copy goes */
    if (st != PC_OK) {
        free(name);
        return st;
    }
    if (p && p->already) *p->already = same || shared_same;
    if (name_out) *name_out = name;
    return PC_OK;
}

static pc_pml_options pml_opts(const pc_schema_params *p) {
    pc_pml_options o = {0};
    if (p) {
        o.lenient = p->lenient;
        o.src_root = p->src_root;
    }
    return o;
}

pc_status pc_engine_schema_load_file(pc_engine *e, const char *path, const pc_schema_params *p, char **name_out,
                                     pc_error *err) {
    pc_pml_options o = pml_opts(p);
    pc_pml_doc *doc = NULL;
    pc_status st = pc_pml_parse_schema_file(path, &o, &doc, err);
    return st == PC_OK ? register_doc(e, doc, p, NULL, name_out, err) : st;
}

pc_status pc_engine_schema_load_shared(pc_engine *e, const char *xml, size_t len, const char *doc_name,
                                       const pc_schema_params *p, const pc_shared_reg *sh, char **name_out,
                                       pc_error *err) {
    pc_pml_options o = pml_opts(p);
    pc_pml_doc *doc = NULL;
    pc_status st = pc_pml_parse_schema(xml, len, doc_name ? doc_name : "schema", &o, &doc, err);
    return st == PC_OK ? register_doc(e, doc, p, sh, name_out, err) : st;
}

pc_status pc_engine_schema_load(pc_engine *e, const char *xml, size_t len, const char *doc_name,
                                const pc_schema_params *p, char **name_out, pc_error *err) {
    const pc_shared_reg sh = {.xml = xml, .len = len};
    const bool publish = p && p->publish && pc_store_has_records(e->store);
    return pc_engine_schema_load_shared(e, xml, len, doc_name, p, publish ? &sh : NULL, name_out, err);
}

pc_status pc_engine_schema_unregister(pc_engine *e, const char *name, bool forget, pc_error *err) {
    pc_schema *gone = NULL;
    pthread_rwlock_wrlock(&e->schemas_lock);
    const pc_schema *s = pc_engine_find_schema(e, name);
    for (int32_t i = 0; s && i < e->n_schemas && !gone; i++)
        if (e->schemas[i] == s) {
            gone = e->schemas[i];
            e->schemas[i] = e->schemas[--e->n_schemas];
        }
    pthread_rwlock_unlock(&e->schemas_lock);
    if (!gone) return pc_fail(err, PC_ERR_NOT_FOUND, "no schema named '%s' is registered", name);
    if (forget && gone->published) pc_engine_shared_forget(e, name); /* every server sharing the registry loses it */
    /* its pieces stay in the store for a later registration, no longer pinned in memory */
    pc_store_set_group(e->store, gone->group, false, 0, NULL);
    pc_schema_free(gone); /* running requests hold their own pins on the pieces they read */
    return PC_OK;
}

pc_status pc_engine_schema_remove(pc_engine *e, const char *name, pc_error *err) {
    return pc_engine_schema_unregister(e, name, true, err);
}

void pc_engine_free_schemas(pc_engine *e) {
    for (int32_t i = 0; i < e->n_schemas; i++) pc_schema_free(e->schemas[i]);
    free(e->schemas);
    e->schemas = NULL;
    e->n_schemas = 0;
    e->cap_schemas = 0;
}

pc_status pc_engine_schema_stats(const pc_engine *e, const char *name, pc_schema_stats *out, pc_error *err) {
    pthread_rwlock_t *lock = &((pc_engine *)e)->schemas_lock; /* the lock is not part of the engine's value */
    pthread_rwlock_rdlock(lock);
    const pc_schema *s = pc_engine_find_schema(e, name);
    if (!s) {
        pthread_rwlock_unlock(lock);
        return pc_fail(err, PC_ERR_NOT_FOUND, "no schema named '%s' is registered", name);
    }
    const pc_schema_ready *r = &s->ready;
    *out = (pc_schema_stats){.length = s->length, .n_modules = s->n_modules, .n_unions = s->n_unions,
                             .n_params = s->n_params, .n_pieces = s->n_pieces, .encoded_tokens = r->encoded_tokens,
                             .kv_bytes = r->kv_bytes, .kv_bytes_per_token = pc_model_kv_bytes_per_token(e->model),
                             .encode_ms = r->encode_ms, .ready_ms = r->ready_ms, .not_loaded = r->not_loaded};
    memcpy(out->pieces_from, r->pieces_from, sizeof out->pieces_from);
    pthread_rwlock_unlock(lock);
    return PC_OK;
}

pc_status pc_engine_schema_list(const pc_engine *e, char ***names, size_t *n, pc_error *err) {
    pthread_rwlock_t *lock = &((pc_engine *)e)->schemas_lock; /* the lock is not part of the engine's value */
    pthread_rwlock_rdlock(lock);
    size_t bytes = 0;
    for (int32_t i = 0; i < e->n_schemas; i++) bytes += strlen(e->schemas[i]->tenant) + strlen(e->schemas[i]->name) + 2;
    const size_t head = ((size_t)e->n_schemas + 1) * sizeof(char *);
    char **a = malloc(head + bytes);
    if (a) {
        char *p = (char *)a + head;
        for (int32_t i = 0; i < e->n_schemas; i++) {
            const pc_schema *s = e->schemas[i];
            const int len = sprintf(p, "%s%s%s", s->tenant, *s->tenant ? "/" : "", s->name);
            a[i] = p;
            p += len + 1;
        }
        a[e->n_schemas] = NULL;
        *n = (size_t)e->n_schemas;
    }
    pthread_rwlock_unlock(lock);
    *names = a;
    return a ? PC_OK : pc_fail(err, PC_ERR_NOMEM, "out of memory listing schemas");
}
