/* options.c - the option parser and the option groups commands share (see options.h).
 *
 * Invariants: a value is stored only after it parsed completely and lies in
 * its range; a list value grows without bound only as far as argv does; the
 * tables are constant, so several commands may use them. */
#include "cli/options.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"

#ifndef PC_DEFAULT_MODEL
#define PC_DEFAULT_MODEL "models/SmolLM2-135M-Instruct.Q4_1.gguf"
#endif

void pc_cli_list_free(pc_cli_list *l) {
    free(l->v);
    *l = (pc_cli_list){0};
}

/* ---- finding options ---- */

typedef struct found {
    const pc_cli_opt *opt;
    void *field;
} found;

static found find_long(const pc_cli_spec *s, const char *name, size_t len) {
    for (size_t g = 0; g < s->n_groups; g++)
        for (const pc_cli_opt *o = s->groups[g].opts; o->name; o++)
            if (strlen(o->name) == len && memcmp(o->name, name, len) == 0)
                return (found){o, (char *)s->groups[g].base + o->offset};
    return (found){0};
}

static found find_short(const pc_cli_spec *s, char c) {
    for (size_t g = 0; g < s->n_groups; g++)
        for (const pc_cli_opt *o = s->groups[g].opts; o->name; o++)
            if (o->short_name == c) return (found){o, (char *)s->groups[g].base + o->offset};
    return (found){0};
}

/* ---- values ---- */

static int bad_value(const pc_cli_spec *s, const char *as, const pc_cli_opt *o, const char *v) {
    if (o->type == PC_OPT_SIZE)
        fprintf(stderr, "pcache %s: %s expects a size in bytes, optionally with K, M, G or T (512M, 2G), got '%s'\n",
                s->command, as, v);
    else if (o->type == PC_OPT_INT)
        fprintf(stderr, "pcache %s: %s expects a whole number from %.0f to %.0f, got '%s'\n", s->command, as, o->min,
                o->max, v);
    else if (o->type == PC_OPT_FLOAT)
        fprintf(stderr, "pcache %s: %s expects a number from %g to %g, got '%s'\n", s->command, as, o->min, o->max, v);
    else
        fprintf(stderr, "pcache %s: %s expects a whole number from 0 to 18446744073709551615, got '%s'\n", s->command,
                as, v);
    return PC_CLI_BAD;
}

/* "4096", "64K", "512M", "2G", "1T": powers of 1024; no sign, no overflow. */
static int set_size(const pc_cli_spec *s, const char *as, const pc_cli_opt *o, void *field, const char *v) {
    char *end = NULL;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (errno || end == v || v[0] == '-') return bad_value(s, as, o, v);
    int shift = 0;
    if (*end) {
        const char *units = "KMGT", *u = strchr(units, *end >= 'a' ? *end - 32 : *end);
        if (!u || !*u || end[1]) return bad_value(s, as, o, v);
        shift = 10 * (int)(u - units + 1);
    }
    if (x > (SIZE_MAX >> shift)) return bad_value(s, as, o, v);
    *(size_t *)field = (size_t)x << shift;
    return PC_CLI_PARSED;
}

static int set_number(const pc_cli_spec *s, const char *as, const pc_cli_opt *o, void *field, const char *v) {
    char *end = NULL;
    errno = 0;
    if (o->type == PC_OPT_U64) {
        unsigned long long x = strtoull(v, &end, 10);
        if (errno || end == v || *end || v[0] == '-') return bad_value(s, as, o, v);
        *(uint64_t *)field = (uint64_t)x;
        return PC_CLI_PARSED;
    }
    double x = o->type == PC_OPT_INT ? (double)strtoll(v, &end, 10) : strtod(v, &end);
    if (errno || end == v || *end || isnan(x) || x < o->min || x > o->max) return bad_value(s, as, o, v);
    if (o->type == PC_OPT_INT) *(int *)field = (int)x;
    else *(float *)field = (float)x;
    return PC_CLI_PARSED;
}

static int set_value(const pc_cli_spec *s, const char *as, found f, const char *v) {
    switch (f.opt->type) {
    case PC_OPT_STRING: *(const char **)f.field = v; return PC_CLI_PARSED;
    case PC_OPT_LIST: {
        pc_cli_list *l = f.field;
        const char **a = pc_array_reserve(l->v, &l->cap, l->n + 1, sizeof *l->v);
        if (!a) return fprintf(stderr, "pcache %s: out of memory\n", s->command), PC_CLI_BAD;
        l->v = a;
        l->v[l->n++] = v;
        return PC_CLI_PARSED;
    }
    case PC_OPT_INT:
    case PC_OPT_U64:
    case PC_OPT_FLOAT: return set_number(s, as, f.opt, f.field, v);
    case PC_OPT_SIZE: return set_size(s, as, f.opt, f.field, v);
    case PC_OPT_FLAG: break;
    }
    return PC_CLI_BAD;
}

/* ---- the parser ---- */

/* One option at argv[*i]; *i moves past its value. */
static int parse_option(const pc_cli_spec *s, int argc, char **argv, int *i) {
    const char *a = argv[*i], *inline_v = NULL;
    char as[64];
    found f;
    if (a[1] == '-') {
        const char *eq = strchr(a + 2, '=');
        size_t len = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
        f = find_long(s, a + 2, len);
        inline_v = eq ? eq + 1 : NULL;
        snprintf(as, sizeof as, "--%.*s", (int)(len < 48 ? len : 48), a + 2);
    } else {
        f = find_short(s, a[1]);
        inline_v = a[2] ? a + 2 : NULL;
        snprintf(as, sizeof as, "-%c", a[1]);
    }
    if (!f.opt) return fprintf(stderr, "pcache %s: unknown option '%s' (see pcache %s --help)\n", s->command, a, s->command), PC_CLI_BAD;
    if (f.opt->type == PC_OPT_FLAG) {
        if (inline_v) return fprintf(stderr, "pcache %s: %s takes no value\n", s->command, as), PC_CLI_BAD;
        *(bool *)f.field = true;
        return PC_CLI_PARSED;
    }
    if (!inline_v && *i + 1 >= argc)
        return fprintf(stderr, "pcache %s: %s needs a value (%s)\n", s->command, as, f.opt->metavar), PC_CLI_BAD;
    return set_value(s, as, f, inline_v ? inline_v : argv[++*i]);
}

static int positional(const pc_cli_spec *s, const char *a) {
    if (!s->positional)
        return fprintf(stderr, "pcache %s: unexpected argument '%s' (see pcache %s --help)\n", s->command, a, s->command),
               PC_CLI_BAD;
    const char **v = pc_array_reserve(s->positional->v, &s->positional->cap, s->positional->n + 1, sizeof *v);
    if (!v) return fprintf(stderr, "pcache %s: out of memory\n", s->command), PC_CLI_BAD;
    s->positional->v = v;
    v[s->positional->n++] = a;
    return PC_CLI_PARSED;
}

int pc_cli_parse(const pc_cli_spec *s, int argc, char **argv) {
    bool only_positional = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int rc;
        if (!only_positional && (!strcmp(a, "-h") || !strcmp(a, "--help"))) {
            pc_cli_usage(s, stdout);
            return PC_CLI_HELP;
        }
        if (!only_positional && !strcmp(a, "--")) {
            only_positional = true;
            continue;
        }
        rc = !only_positional && a[0] == '-' && a[1] ? parse_option(s, argc, argv, &i) : positional(s, a);
        if (rc != PC_CLI_PARSED) return rc;
    }
    return PC_CLI_PARSED;
}

/* The field's value before parsing is its default: shown when it is a real
 * value (in range, or a string), not a sentinel such as 0 = "the model's". */
static void print_default(FILE *out, const pc_cli_opt *o, const void *field) {
    double v;
    switch (o->type) {
    case PC_OPT_STRING:
        if (*(const char *const *)field) fprintf(out, " (default: %s)", *(const char *const *)field);
        return;
    case PC_OPT_U64: fprintf(out, " (default: %llu)", (unsigned long long)*(const uint64_t *)field); return;
    case PC_OPT_INT: v = *(const int *)field; break;
    case PC_OPT_FLOAT: v = *(const float *)field; break;
    default: return;
    }
    if (v >= o->min && v <= o->max) fprintf(out, " (default: %g)", v);
}

void pc_cli_usage(const pc_cli_spec *s, FILE *out) {
    fprintf(out, "usage: %s\n%s\n", s->usage, s->summary);
    for (size_t g = 0; g < s->n_groups; g++) {
        fprintf(out, "%s:\n", s->groups[g].title);
        for (const pc_cli_opt *o = s->groups[g].opts; o->name; o++) {
            char left[64];
            snprintf(left, sizeof left, "%c%c%c --%s %s", o->short_name ? '-' : ' ', o->short_name ? o->short_name : ' ',
                     o->short_name ? ',' : ' ', o->name, o->metavar ? o->metavar : "");
            fprintf(out, "  %-28s %s", left, o->help);
            print_default(out, o, (const char *)s->groups[g].base + o->offset);
            fputc('\n', out);
        }
    }
}

/* ---- shared groups ---- */

#define ENGINE(f) offsetof(pc_cli_engine_opts, f)
const pc_cli_opt pc_cli_engine_table[] = {
    {"model", 'm', PC_OPT_STRING, ENGINE(model), "PATH", "GGUF model file; $PCACHE_MODEL sets the default", 0, 0},
    {"threads", 't', PC_OPT_INT, ENGINE(threads), "N", "threads (default: all cores)", 1, 1024},
    {"ctx-size", 'c', PC_OPT_INT, ENGINE(n_ctx), "N", "context size in tokens (default: the model's)", 1, 1 << 24},
    {"chat-template", 0, PC_OPT_STRING, ENGINE(chat_template), "NAME",
     "chatml, llama2, llama3 or gemma (default: from the model)", 0, 0},
    {"backend", 0, PC_OPT_STRING, ENGINE(backend), "NAME",
     "cpu or cuda (default: cuda when built with it and a GPU is present)", 0, 0},
    {0},
};

pc_cli_engine_opts pc_cli_engine_defaults(void) {
    const char *env = getenv("PCACHE_MODEL");
    return (pc_cli_engine_opts){.model = env && *env ? env : PC_DEFAULT_MODEL};
}

#define GEN(f) offsetof(pc_cli_gen_opts, f)
const pc_cli_opt pc_cli_gen_table[] = {
    {"n-predict", 'n', PC_OPT_INT, GEN(gp.n_predict), "N", "tokens to generate at most", 1, 1 << 24},
    {"temp", 0, PC_OPT_FLOAT, GEN(gp.temp), "T", "temperature; 0 or less = greedy", -100, 100},
    {"top-k", 0, PC_OPT_INT, GEN(gp.top_k), "K", "keep the K most likely tokens; 0 = off", 0, 1 << 24},
    {"top-p", 0, PC_OPT_FLOAT, GEN(gp.top_p), "P", "nucleus sampling; 1 = off", 0, 1},
    {"min-p", 0, PC_OPT_FLOAT, GEN(gp.min_p), "P", "drop tokens below P times the best one's probability; 0 = off", 0, 1},
    {"repeat-penalty", 0, PC_OPT_FLOAT, GEN(gp.repeat_penalty), "R", "penalty of recent tokens; 1 = off", 0,
     100},
    {"repeat-last-n", 0, PC_OPT_INT, GEN(gp.repeat_last_n), "N", "tokens the penalty looks back on", 0,
     1 << 24},
    {"seed", 0, PC_OPT_U64, GEN(gp.seed), "S", "sampling seed", 0, 0},
    {"stop", 0, PC_OPT_LIST, GEN(stops), "TEXT", "stop string, not included in the output (repeatable)", 0, 0},
    {"ignore-eos", 0, PC_OPT_FLAG, GEN(gp.ignore_eos), NULL, "keep generating past end-of-generation tokens", 0, 0},
    {0},
};

pc_cli_gen_opts pc_cli_gen_defaults(int n_predict) {
    pc_cli_gen_opts o = {.gp = pc_gen_default_params()};
    o.gp.n_predict = n_predict;
    return o;
}

pc_gen_params pc_cli_gen_params(const pc_cli_gen_opts *o) {
    pc_gen_params gp = o->gp;
    gp.stop = o->stops.v;
    gp.n_stop = o->stops.n;
    return gp;
}

#define SCHEMA(f) offsetof(pc_cli_schema_opts, f)
const pc_cli_opt pc_cli_schema_table[] = {
    {"schema", 0, PC_OPT_LIST, SCHEMA(files), "S.xml", "PML schema to register (repeatable)", 0, 0},
    {"lenient", 0, PC_OPT_FLAG, SCHEMA(lenient), NULL, "accept raw '<' in module text (with warnings)", 0, 0},
    {"quiet", 0, PC_OPT_FLAG, SCHEMA(quiet), NULL, "no encoding progress or statistics on stderr", 0, 0},
    {"tenant", 0, PC_OPT_STRING, SCHEMA(tenant), "ID", "namespace of the schemas' cached KV (default: shared)", 0, 0},
    {"placeholder", 0, PC_OPT_STRING, SCHEMA(placeholder), "TOKEN",
     "the token that fills parameters without scaffold text (default: the model's unknown token, else EOS)", 0, 0},
    {0},
};

#define CACHE(f) offsetof(pc_cli_cache_opts, f)
const pc_cli_opt pc_cli_cache_table[] = {
    {"cache-mem", 0, PC_OPT_SIZE, CACHE(mem), "BYTES", "memory budget of the module store (default: none)", 0, 0},
    {"cache-dir", 0, PC_OPT_STRING, CACHE(dir), "DIR", "keep encoded modules on disk, one folder per model", 0, 0},
    {"cache-gpu", 0, PC_OPT_SIZE, CACHE(gpu), "BYTES",
     "GPU memory that keeps module KV resident (--backend cuda; default: half the free GPU memory)", 0, 0},
    {"no-cache-gpu", 0, PC_OPT_FLAG, CACHE(no_gpu), NULL,
     "keep no module KV in GPU memory: stream it from host memory every request", 0, 0},
    {"cache-disk", 0, PC_OPT_SIZE, CACHE(disk), "BYTES", "disk budget, least recently used go first (default: none)", 0, 0},
    {"cache-redis", 0, PC_OPT_STRING, CACHE(redis), "HOST:PORT", "share encoded modules through a Redis server", 0, 0},
    {"cache-redis-prefix", 0, PC_OPT_STRING, CACHE(redis_prefix), "P", "prefix of the Redis keys (default: pcache:)", 0, 0},
    {"cache-redis-ttl", 0, PC_OPT_INT, CACHE(redis_ttl), "SECONDS", "expiry of what is written to Redis (default: none)", 1,
     1 << 30},
    {"cache-redis-timeout", 0, PC_OPT_INT, CACHE(redis_timeout), "MS", "Redis connect and command timeout (default: 2000)",
     1, 600000},
    {0},
};

const pc_cli_opt pc_cli_cache_where_table[] = {
    {"cache-dir", 0, PC_OPT_STRING, CACHE(dir), "DIR", "the folder of the disk tier", 0, 0},
    {"cache-redis", 0, PC_OPT_STRING, CACHE(redis), "HOST:PORT", "the Redis server of the remote tier", 0, 0},
    {"cache-redis-prefix", 0, PC_OPT_STRING, CACHE(redis_prefix), "P", "prefix of the Redis keys (default: pcache:)", 0, 0},
    {"cache-redis-timeout", 0, PC_OPT_INT, CACHE(redis_timeout), "MS", "Redis connect and command timeout (default: 2000)",
     1, 600000},
    {0},
};

pc_cache_params pc_cli_cache_params(const pc_cli_cache_opts *o) {
    return (pc_cache_params){.mem_bytes = o->mem, .gpu_bytes = o->gpu, .gpu_off = o->no_gpu, .dir = o->dir,
                             .disk_bytes = o->disk, .redis = o->redis,
                             .redis_prefix = o->redis_prefix, .redis_ttl_s = o->redis_ttl,
                             .redis_timeout_ms = o->redis_timeout};
}
