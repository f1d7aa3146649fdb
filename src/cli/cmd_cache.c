/* cmd_cache.c - `pcache cache ls|verify|rm`: the module store's entries on
 * disk and in Redis, without loading a model.
 *
 *   ls      every entry: tier, key, schema piece, positions, size, last use,
 *           and anything wrong with its header
 *   verify  the same, reading every payload and checking its checksums;
 *           fails (status 1) when an entry does not check out
 *   rm      removes the entries selected by key prefixes, --schema NAME,
 *           --bad (those verify rejects) or --all
 * A damaged entry is harmless where it lies (the store checks everything it
 * reads and drops what does not check out); these commands are for looking
 * and for freeing space. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"

typedef struct cache_cmd {
    const char *schema;
    bool all, bad, json;
} cache_cmd;

#define C(f) offsetof(cache_cmd, f)
static const pc_cli_opt CACHE_CMD_TABLE[] = {
    {"schema", 0, PC_OPT_STRING, C(schema), "NAME", "rm: the entries of the schema named NAME", 0, 0},
    {"bad", 0, PC_OPT_FLAG, C(bad), NULL, "rm: the entries that do not check out (every payload is read)", 0, 0},
    {"all", 0, PC_OPT_FLAG, C(all), NULL, "rm: every entry", 0, 0},
    {"json", 0, PC_OPT_FLAG, C(json), NULL, "one JSON object per entry and line", 0, 0},
    {0},
};

typedef struct walk {
    const cache_cmd *o;
    const pc_cache_params *cp;
    const char *action;       /* "ls", "verify", "rm" */
    const char *const *keys;  /* rm: key prefixes */
    size_t n_keys;
    size_t n, bad, removed, failed;
    unsigned long long bytes, removed_bytes;
} walk;

static const char *TIER[PC_N_TIERS] = {"memory", "disk", "redis"};

static void print_entry(const walk *W, const pc_cache_entry_info *e) {
    if (W->o->json) {
        json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:i, s:I, s:I, s:s?}", "tier", TIER[e->tier], "where",
                              e->where, "key", e->key, "model", e->model ? e->model : "", "label", e->label, "start",
                              (int)e->start, "tokens", (int)e->n, "bytes", (json_int_t)e->bytes, "mtime",
                              (json_int_t)e->mtime_s, "problem", e->problem);
        char *s = j ? json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_PRESERVE_ORDER) : NULL;
        if (s) puts(s);
        free(s);
        json_decref(j);
        return;
    }
    char when[32] = "-";
    if (e->mtime_s) {
        time_t t = (time_t)e->mtime_s;
        struct tm tm;
        strftime(when, sizeof when, "%Y-%m-%d %H:%M", localtime_r(&t, &tm));
    }
    printf("%-5s %.16s  %-32s [%6d, +%5d) %9.1f KiB  %s  %s\n", TIER[e->tier], e->key, e->label[0] ? e->label : "?",
           e->start, e->n, (double)e->bytes / 1024.0, when, e->problem ? e->problem : "ok");
}

/* Whether rm takes e. */
static bool selected(const walk *W, const pc_cache_entry_info *e) {
    if (W->o->all) return true;
    if (W->o->bad && e->problem) return true;
    if (W->o->schema) {
        size_t n = strlen(W->o->schema);
        if (!strncmp(e->label, W->o->schema, n) && e->label[n] == ':') return true;
    }
    for (size_t i = 0; i < W->n_keys; i++)
        if (!strncmp(e->key, W->keys[i], strlen(W->keys[i]))) return true;
    return false;
}

static bool visit(void *user, const pc_cache_entry_info *e) {
    walk *W = user;
    W->n++;
    W->bytes += e->bytes;
    W->bad += e->problem != NULL;
    if (strcmp(W->action, "rm") != 0) {
        print_entry(W, e);
        return true;
    }
    if (!selected(W, e)) return true;
    pc_error err = {0};
    if (pc_cache_remove(W->cp, e, &err) == PC_OK) {
        W->removed++;
        W->removed_bytes += e->bytes;
        if (!W->o->json) printf("removed %s %.16s  %s\n", TIER[e->tier], e->key, e->label);
    } else {
        W->failed++;
        fprintf(stderr, "pcache cache rm: %s\n", err.msg);
    }
    return true;
}

static int finish(const walk *W) {
    if (!strcmp(W->action, "rm")) {
        fprintf(stderr, "removed %zu of %zu entries (%.1f MiB)\n", W->removed, W->n, W->removed_bytes / 1048576.0);
        if (W->failed) return 1;
        if (!W->removed) return fprintf(stderr, "pcache cache rm: no entry matched\n"), 1;
        return 0;
    }
    fprintf(stderr, "%zu entries, %.1f MiB; %zu that do not check out\n", W->n, W->bytes / 1048576.0, W->bad);
    return !strcmp(W->action, "verify") && W->bad ? 1 : 0;
}

static int check_usage(const cache_cmd *o, const pc_cli_cache_opts *co, const pc_cli_list *pos) {
    const char *a = pos->n ? pos->v[0] : "";
    if (strcmp(a, "ls") && strcmp(a, "verify") && strcmp(a, "rm"))
        return fprintf(stderr, "pcache cache: expected ls, verify or rm, got '%s' (see pcache cache --help)\n", a), 1;
    if (!co->dir && !co->redis)
        return fprintf(stderr, "pcache cache: give --cache-dir DIR and/or --cache-redis HOST:PORT\n"), 1;
    const bool rm = !strcmp(a, "rm"), sel = o->all || o->bad || o->schema || pos->n > 1;
    if (rm && !sel) return fprintf(stderr, "pcache cache rm: say which entries: KEY..., --schema NAME, --bad or --all\n"), 1;
    if (!rm && sel) return fprintf(stderr, "pcache cache %s: takes no selection (only rm does)\n", a), 1;
    for (size_t i = 1; i < pos->n; i++)
        if (strlen(pos->v[i]) < 4 || strspn(pos->v[i], "0123456789abcdef") != strlen(pos->v[i]))
            return fprintf(stderr, "pcache cache rm: '%s' is not a key prefix (4 or more lowercase hex digits)\n",
                           pos->v[i]), 1;
    return 0;
}

int pc_cli_cache(int argc, char **argv) {
    cache_cmd o = {0};
    pc_cli_cache_opts co = {0};
    pc_cli_list pos = {0};
    const pc_cli_group groups[] = {{"entries", CACHE_CMD_TABLE, &o}, {"module store", pc_cli_cache_where_table, &co}};
    const pc_cli_spec spec = {"cache", "pcache cache ls|verify|rm [KEY...] [--cache-dir D] [--cache-redis HOST:PORT] [options]",
                              "Lists, checks and removes the module store's entries on disk and in Redis (no model "
                              "needed): ls reads headers, verify every payload, rm takes a selection.",
                              groups, sizeof groups / sizeof *groups, &pos};
    int rc = pc_cli_parse(&spec, argc, argv);
    if (rc == PC_CLI_PARSED && check_usage(&o, &co, &pos)) rc = PC_CLI_BAD;
    if (rc == PC_CLI_PARSED) {
        const pc_cache_params cp = pc_cli_cache_params(&co);
        walk W = {.o = &o, .cp = &cp, .action = pos.v[0], .keys = pos.v + 1, .n_keys = pos.n - 1};
        pc_error err = {0};
        const bool verify = !strcmp(W.action, "verify") || (!strcmp(W.action, "rm") && o.bad);
        if (pc_cache_scan(&cp, verify, visit, &W, &err) != PC_OK) {
            fprintf(stderr, "pcache cache %s: %s\n", W.action, err.msg);
            rc = 1;
        } else {
            rc = finish(&W);
        }
    }
    pc_cli_list_free(&pos);
    return rc == PC_CLI_HELP ? 0 : rc;
}
