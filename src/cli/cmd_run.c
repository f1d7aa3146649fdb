/* cmd_run.c - `pcache run`: PML prompts against schemas, cached or not.
 *
 * Schemas are registered once; prompts run in the order given, and a prompt
 * that fails does not stop the others (the status says that one failed). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/measure.h"
#include "util/file.h"

typedef struct run_cmd {
    pc_cli_list prompts;
    bool no_cache, compare, json;
    int repeat;
} run_cmd;

#define R(f) offsetof(run_cmd, f)
static const pc_cli_opt RUN_TABLE[] = {
    {"prompt", 0, PC_OPT_LIST, R(prompts), "P.xml", "a PML prompt to run (repeatable: run in order)", 0, 0},
    {"no-cache", 0, PC_OPT_FLAG, R(no_cache), NULL, "plain full prefill of the very same tokens at the same positions", 0, 0},
    {"compare", 0, PC_OPT_FLAG, R(compare), NULL,
     "run cached, then uncached: both TTFTs and the cached answer's quality (KL per step)", 0, 0},
    {"repeat", 0, PC_OPT_INT, R(repeat), "N", "run each mode N times and report the median TTFT", 1, PC_CLI_MAX_REPEAT},
    {"json", 0, PC_OPT_FLAG, R(json), NULL, "one JSON object per prompt and line: prompt, text, tokens, ttft_ms, ...", 0, 0},
    {0},
};

static pc_status run_plain(pc_engine *e, const pc_cli_run_cfg *cfg, const pc_cli_prompt *p, bool cache, pc_error *err) {
    pc_run_result a = {0};
    double ta[PC_CLI_MAX_REPEAT];
    pc_status st = pc_cli_run_repeated(e, cfg, p, cache, false, NULL, &a, ta, err);
    if (st == PC_OK && cfg->json) {
        json_t *j = json_pack("{s:s}", "prompt", p->path), *res = pc_cli_result_json(&a, ta, cfg->repeat);
        json_object_update(j, res);
        json_decref(res);
        pc_cli_print_json(j);
    }
    pc_run_result_free(&a);
    return st;
}

/* Every prompt gets its answer or its error: with --json, one object per prompt either way. */
static int run_prompt(pc_engine *e, const run_cmd *o, const pc_cli_run_cfg *cfg, const char *path) {
    pc_cli_prompt p = {.path = path};
    char *xml = NULL;
    pc_error err = {0};
    pc_status st = pc_file_read(path, PC_CLI_MAX_INPUT_BYTES, 0, &xml, &p.len, &err);
    p.xml = xml;
    if (st == PC_OK)
        st = o->compare ? pc_cli_compare(e, cfg, &p, !o->no_cache, &err) : run_plain(e, cfg, &p, !o->no_cache, &err);
    free(xml);
    if (st == PC_OK) return 0;
    fprintf(stderr, "pcache run: %s\n", err.msg);
    if (cfg->json) pc_cli_print_json(pc_cli_error_json(path, &err));
    return 1;
}

/* Whether cached prompts read module KV in place in GPU memory: the device
 * tier's hits, uploads and evictions over the whole run. */
static void report_gpu_tier(pc_engine *e) {
    pc_cache_stats st;
    pc_engine_cache_stats(e, &st);
    const pc_cache_tier_stats *g = &st.gpu;
    if (!g->enabled) return;
    fprintf(stderr,
            "gpu tier: %llu pieces, %.1f of %.1f MiB; %llu hits, %llu misses, %llu uploads (%.1f MiB in %.1f ms), "
            "%llu evictions\n",
            (unsigned long long)g->entries, (double)g->bytes / 1048576.0, (double)g->budget / 1048576.0,
            (unsigned long long)g->hits, (unsigned long long)g->misses, (unsigned long long)g->writes,
            (double)g->bytes_written / 1048576.0, g->write_ms, (unsigned long long)g->evictions);
}

static int run_all(const run_cmd *o, const pc_cli_engine_opts *eo, const pc_cli_gen_opts *go,
                   const pc_cli_schema_opts *so) {
    pc_cli_loaded l;
    if (pc_cli_load("run", eo, so, &l)) return 1;
    const pc_cli_run_cfg cfg = {.gen = pc_cli_gen_params(go), .lenient = so->lenient, .json = o->json,
                                .repeat = o->repeat, .tenant = so->tenant};
    bool failed = false;
    for (size_t i = 0; i < o->prompts.n; i++) {
        if (o->prompts.n > 1 && !so->quiet) fprintf(stderr, "=== prompt %s ===\n", o->prompts.v[i]);
        if (run_prompt(l.engine, o, &cfg, o->prompts.v[i])) failed = true; /* the other prompts still run */
    }
    if (!so->quiet) report_gpu_tier(l.engine);
    pc_cli_loaded_free(&l);
    return failed ? 1 : 0;
}

int pc_cli_run(int argc, char **argv) {
    run_cmd o = {.repeat = 1};
    pc_cli_engine_opts eo = pc_cli_engine_defaults();
    pc_cli_gen_opts go = pc_cli_gen_defaults(64);
    pc_cli_schema_opts so = {0};
    pc_cli_cache_opts co = {0};
    eo.cache = &co;
    const pc_cli_group groups[] = {{"prompts", RUN_TABLE, &o},
                                   {"schemas", pc_cli_schema_table, &so},
                                   {"module store", pc_cli_cache_table, &co},
                                   {"model", pc_cli_engine_table, &eo},
                                   {"generation", pc_cli_gen_table, &go}};
    const pc_cli_spec spec = {"run", "pcache run [-m MODEL] --schema S.xml --prompt P.xml [options]",
                              "Runs PML prompts against PML schemas, with Prompt Cache (or without, to compare).",
                              groups, sizeof groups / sizeof *groups, NULL};
    int rc = pc_cli_parse(&spec, argc, argv);
    if (rc == PC_CLI_PARSED && (!so.files.n || !o.prompts.n)) {
        fprintf(stderr, "pcache run: %s is required (see pcache run --help)\n",
                !so.files.n ? "--schema S.xml" : "--prompt P.xml");
        rc = PC_CLI_BAD;
    }
    if (rc == PC_CLI_PARSED) rc = run_all(&o, &eo, &go, &so);
    pc_cli_list_free(&o.prompts);
    pc_cli_list_free(&so.files);
    pc_cli_list_free(&go.stops);
    return rc == PC_CLI_HELP ? 0 : rc;
}
