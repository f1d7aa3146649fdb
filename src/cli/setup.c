/* setup.c - what several commands do before their own work: open the model
 * the engine options name, register schemas, show encoding progress. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cli/cli.h"

pc_engine *pc_cli_engine_open(const char *command, const pc_cli_engine_opts *o) {
    pc_engine_params ep = pc_engine_default_params();
    ep.model_path = o->model;
    ep.n_threads = o->threads;
    ep.n_ctx = o->n_ctx;
    ep.chat_template = o->chat_template;
    if (o->cache) ep.cache = pc_cli_cache_params(o->cache);
    ep.backend = o->backend;
    pc_error err = {0};
    pc_engine *e = NULL;
    if (pc_engine_open(&ep, &e, &err) != PC_OK) fprintf(stderr, "pcache %s: %s\n", command, err.msg);
    return e;
}

static void print_stats(pc_engine *e, const char *name) {
    pc_schema_stats st;
    pc_error err = {0};
    if (pc_engine_schema_stats(e, name, &st, &err) != PC_OK) return;
    /* the first part is what bench/report.py reads: keep its shape */
    fprintf(stderr, "schema '%s': %lld tokens encoded in %.0f ms, KV %.1f MiB (%zu bytes/token)", name,
            (long long)st.encoded_tokens, st.encode_ms, st.kv_bytes / 1048576.0, st.kv_bytes_per_token);
    const int32_t *from = st.pieces_from;
    if (from[PC_SOURCE_DISK] || from[PC_SOURCE_REMOTE] || from[PC_SOURCE_MEMORY])
        fprintf(stderr, "; ready in %.1f ms: pieces from memory %d, disk %d, redis %d, encoded %d", st.ready_ms,
                from[PC_SOURCE_MEMORY], from[PC_SOURCE_DISK], from[PC_SOURCE_REMOTE], from[PC_SOURCE_ENCODED]);
    if (st.not_loaded) fprintf(stderr, "; %d left out of memory by its budget", st.not_loaded);
    fputc('\n', stderr);
}

int pc_cli_schemas_load(const char *command, pc_engine *e, const pc_cli_schema_opts *o, char **names) {
    for (size_t i = 0; i < o->files.n; i++) {
        double last = -1e9;
        char *warnings = NULL;
        pc_schema_params sp = {.lenient = o->lenient, .progress = o->quiet ? NULL : pc_cli_encode_progress,
                               .progress_user = &last, .warnings = &warnings, .tenant = o->tenant,
                               .placeholder = o->placeholder};
        pc_error err = {0};
        pc_status s = pc_engine_schema_load_file(e, o->files.v[i], &sp, &names[i], &err);
        if (warnings) fprintf(stderr, "%s", warnings);
        free(warnings);
        if (s != PC_OK) {
            fprintf(stderr, "pcache %s: %s\n", command, err.msg);
            return -1;
        }
        if (!o->quiet) print_stats(e, names[i]);
    }
    return 0;
}

int pc_cli_load(const char *command, const pc_cli_engine_opts *eo, const pc_cli_schema_opts *so, pc_cli_loaded *out) {
    *out = (pc_cli_loaded){0};
    out->engine = pc_cli_engine_open(command, eo);
    if (!out->engine) return -1;
    out->n_names = so->files.n;
    out->names = calloc(so->files.n + 1, sizeof *out->names);
    if (!out->names) fprintf(stderr, "pcache %s: out of memory for %zu schema names\n", command, so->files.n);
    if (!out->names || pc_cli_schemas_load(command, out->engine, so, out->names)) {
        pc_cli_loaded_free(out);
        return -1;
    }
    return 0;
}

void pc_cli_loaded_free(pc_cli_loaded *l) {
    for (size_t i = 0; l->names && i < l->n_names; i++) free(l->names[i]);
    free(l->names);
    pc_engine_free(l->engine);
    *l = (pc_cli_loaded){0};
}

/* A line redrawn in place on a terminal, a line every few seconds otherwise
 * (logs stay readable). */
void pc_cli_encode_progress(void *user, int32_t done, int32_t n, int64_t tok_done, int64_t tok_total, double ms) {
    double *last = user;
    const int tty = isatty(2);
    const int final = done == n;
    if (!final && !tty && ms - *last < 5000) return;
    if (!final && tty && ms - *last < 100) return;
    *last = ms;
    fprintf(stderr, "%sencoding: %d/%d pieces, %lld/%lld tokens, %.0f tok/s%s", tty ? "\r" : "", done, n,
            (long long)tok_done, (long long)tok_total, ms > 0 ? (double)tok_done / (ms / 1e3) : 0.0,
            final || !tty ? "\n" : "");
}
