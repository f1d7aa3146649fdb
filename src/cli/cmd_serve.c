/* cmd_serve.c - `pcache serve`: the OpenAI-compatible server.
 *
 * Signals without globals: SIGINT, SIGTERM and SIGPIPE are blocked before
 * the first thread starts (every thread inherits the mask), and the main
 * thread takes SIGINT/SIGTERM synchronously with sigwait(), then drains and
 * stops the server. No handler runs, so nothing needs a global to reach. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

#define PC_STR_(x) #x
#define PC_STR(x) PC_STR_(x)

typedef struct serve_cmd {
    const char *host, *api_key, *api_key_file, *alias;
    int port, parallel, queue, batch, mix, timeout, upload_timeout, max_body_mb, max_conn;
    float drain_timeout;
    bool no_prefix_cache;
    size_t tenant_quota;
} serve_cmd;

#define S(f) offsetof(serve_cmd, f)
static const pc_cli_opt SERVE_TABLE[] = {
    {"host", 0, PC_OPT_STRING, S(host), "ADDR", "address to listen on (default 127.0.0.1)", 0, 0},
    {"port", 0, PC_OPT_INT, S(port), "N", "port (default 8080; 0: any free one)", 0, 65535},
    {"parallel", 0, PC_OPT_INT, S(parallel), "N", "requests generating at once, batched together (default 4)", 1, 4096},
    {"queue", 0, PC_OPT_INT, S(queue), "N", "requests waiting beyond those; one more gets 503 (default 64)", 0, 1 << 20},
    {"batch", 'b', PC_OPT_INT, S(batch), "N", "rows per batch step: decodes plus prefill chunks (default 512)", 1, 1 << 16},
    {"batch-mix", 0, PC_OPT_INT, S(mix), "N",
     "prefill rows a step gives requests other than the oldest new one (default 64): a burst of new requests "
     "gets its first tokens a few at a time, not all at the end of one long step", 1, 1 << 16},
    {"api-key", 0, PC_OPT_STRING, S(api_key), "KEY", "require this key (one tenant, may share schemas)", 0, 0},
    {"api-key-file", 0, PC_OPT_STRING, S(api_key_file), "FILE",
     "keys and tenants: 'KEY TENANT [share] [quota=BYTES]' per line", 0, 0},
    {"tenant-quota", 0, PC_OPT_SIZE, S(tenant_quota), "BYTES",
     "the memory tier each tenant's schemas and prefix blocks may hold, unless its key says (default: none)", 0, 0},
    {"alias", 'a', PC_OPT_STRING, S(alias), "NAME", "the model id clients use (default: the model's name)", 0, 0},
    {"timeout", 0, PC_OPT_INT, S(timeout), "S", "close connections idle this long (default 600)", 1, 86400},
    {"upload-timeout", 0, PC_OPT_INT, S(upload_timeout), "S", "a request body must arrive within (default 30)", 1, 3600},
    {"max-body-mb", 0, PC_OPT_INT, S(max_body_mb), "N", "larger bodies get 413 (default 16)", 1, 4096},
    {"max-connections", 0, PC_OPT_INT, S(max_conn), "N", "connections at once (default 256)", 1, 65536},
    {"no-prefix-cache", 0, PC_OPT_FLAG, S(no_prefix_cache), NULL,
     "plain prompts reuse nothing of earlier prompts (default: blocks of " PC_STR(PC_PREFIX_BLOCK)
     " tokens and prompt tails kept in the store's memory tier, reused to the token)", 0, 0},
    {"drain-timeout", 0, PC_OPT_FLOAT, S(drain_timeout), "S", "on SIGTERM, wait this long for requests in flight (default 60)",
     0.001, 86400},
    {0},
};

static int load_keys(const serve_cmd *o, pc_api_key **keys, size_t *n) {
    if (o->api_key_file) {
        pc_error err = {0};
        if (pc_api_keys_load(o->api_key_file, keys, n, &err) != PC_OK)
            return fprintf(stderr, "pcache serve: %s\n", err.msg), -1;
    }
    if (!o->api_key) return 0;
    pc_api_key *a = realloc(*keys, (*n + 1) * sizeof *a);
    if (!a) return fprintf(stderr, "pcache serve: out of memory\n"), -1;
    *keys = a;
    a[*n] = (pc_api_key){.key = strdup(o->api_key), .tenant = strdup("default"), .can_share = true};
    (*n)++;
    return a[*n - 1].key && a[*n - 1].tenant ? 0 : -1;
}

static int wait_for_stop(const sigset_t *set) {
    for (;;) {
        int sig = 0;
        if (sigwait(set, &sig) != 0) return -1;
        if (sig == SIGINT || sig == SIGTERM) return sig;
    }
}

static int serve(const serve_cmd *o, const pc_cli_engine_opts *eo, const pc_cli_schema_opts *so, const sigset_t *set) {
    pc_api_key *keys = NULL;
    size_t n_keys = 0;
    if (load_keys(o, &keys, &n_keys)) return 1;
    pc_engine *e = pc_cli_engine_open("serve", eo);
    char **names = e ? calloc(so->files.n + 1, sizeof *names) : NULL;
    int rc = !names || pc_cli_schemas_load("serve", e, so, names) ? 1 : 0;
    pc_server_params p = pc_server_default_params();
    p.host = o->host ? o->host : p.host;
    p.port = o->port;
    p.parallel = o->parallel;
    p.max_queued = o->queue;
    p.step_tokens = o->batch;
    p.mix_tokens = o->mix;
    p.idle_timeout_s = o->timeout;
    p.upload_timeout_s = o->upload_timeout;
    p.max_body_bytes = (size_t)o->max_body_mb << 20;
    p.max_connections = o->max_conn;
    p.drain_timeout_s = o->drain_timeout;
    p.keys = keys;
    p.n_keys = n_keys;
    p.tenant_quota = o->tenant_quota;
    /* the blocks live under the memory tier's budget: without one they would grow without bound */
    p.prefix_cache = !o->no_prefix_cache && eo->cache->mem > 0;
    if (!o->no_prefix_cache && !p.prefix_cache)
        fprintf(stderr, "pcache serve: the prefix cache is off: --cache-mem gives the memory tier no budget\n");
    /* the model's file name is what llama.cpp's server reports too, and it has no spaces */
    char alias[256];
    const char *base = strrchr(eo->model, '/') ? strrchr(eo->model, '/') + 1 : eo->model;
    const size_t n = strlen(base) > 5 && !strcmp(base + strlen(base) - 5, ".gguf") ? strlen(base) - 5 : strlen(base);
    snprintf(alias, sizeof alias, "%.*s", (int)n, base);
    p.model_alias = o->alias ? o->alias : alias;
    pc_server *s = NULL;
    pc_error err = {0};
    if (rc == 0 && pc_server_start(e, &p, &s, &err) != PC_OK) {
        fprintf(stderr, "pcache serve: %s\n", err.msg);
        rc = 1;
    }
    if (rc == 0) {
        fprintf(stderr, "pcache serve: listening on http://%s:%d (%d in parallel, %zu API keys)\n", p.host,
                pc_server_port(s), p.parallel, n_keys);
        const int sig = wait_for_stop(set);
        fprintf(stderr, "pcache serve: %s: draining requests in flight\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
        pc_server_stop(s);
        fprintf(stderr, "pcache serve: stopped\n");
    }
    for (size_t i = 0; names && i < so->files.n; i++) free(names[i]);
    free(names);
    pc_engine_free(e);
    pc_api_keys_free(keys, n_keys);
    return rc;
}

int pc_cli_serve(int argc, char **argv) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGPIPE); /* a client gone mid-write must not kill the process */
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    serve_cmd o = {.port = 8080, .parallel = 4, .queue = 64, .batch = 512, .timeout = 600, .upload_timeout = 30,
                   .max_body_mb = 16, .max_conn = 256, .drain_timeout = 60};
    pc_cli_engine_opts eo = pc_cli_engine_defaults();
    pc_cli_schema_opts so = {0};
    pc_cli_cache_opts co = {.mem = (size_t)1 << 30}; /* a server needs a bound: 1 GiB unless told */
    eo.cache = &co;
    const pc_cli_group groups[] = {{"server", SERVE_TABLE, &o},
                                   {"schemas to register at start", pc_cli_schema_table, &so},
                                   {"module store", pc_cli_cache_table, &co},
                                   {"model", pc_cli_engine_table, &eo}};
    const pc_cli_spec spec = {"serve", "pcache serve [-m MODEL] [--port N] [--parallel N] [--schema S.xml] [options]",
                              "Serves the model over HTTP: OpenAI-compatible completions and chat, PML schemas.",
                              groups, sizeof groups / sizeof *groups, NULL};
    int rc = pc_cli_parse(&spec, argc, argv);
    if (rc == PC_CLI_PARSED) rc = serve(&o, &eo, &so, &set);
    pc_cli_list_free(&so.files);
    return rc == PC_CLI_HELP ? 0 : rc;
}
