/* cmd_encode.c - `pcache encode`: fill the module store ahead of time.
 *
 * Registers each schema with the cache options, which encodes what no tier
 * holds and writes it to disk and/or Redis, so that a later `pcache run`, a
 * server or another machine encodes nothing. Without a disk or Redis tier
 * nothing would outlive the process: that is a usage error. A tier that could
 * not store the KV (full disk, Redis down) makes the command fail, since
 * storing it is the command's whole job. */
#include <stdio.h>
#include <stdlib.h>

#include "cli/cli.h"

static int report(pc_engine *e, const pc_cli_cache_opts *co) {
    pc_cache_stats st;
    pc_engine_cache_stats(e, &st);
    int rc = 0;
    static const char *NAMES[PC_N_TIERS] = {"memory", "disk", "redis"};
    for (int t = PC_SOURCE_DISK; t < PC_N_TIERS; t++) {
        const pc_cache_tier_stats *s = &st.tier[t];
        if (!s->enabled) continue;
        fprintf(stderr, "%s: wrote %llu entries (%.1f MiB in %.0f ms)%s%s\n", NAMES[t], (unsigned long long)s->writes,
                (double)s->bytes_written / 1048576.0, s->write_ms, t == PC_SOURCE_DISK ? " under " : " at ",
                t == PC_SOURCE_DISK ? co->dir : co->redis);
        if (s->errors) {
            fprintf(stderr, "pcache encode: %llu entries could not be written to %s (see the warnings above)\n",
                    (unsigned long long)s->errors, NAMES[t]);
            rc = 1;
        }
    }
    return rc;
}

static int encode_all(const pc_cli_engine_opts *eo, const pc_cli_schema_opts *so, const pc_cli_cache_opts *co) {
    pc_cli_loaded l;
    if (pc_cli_load("encode", eo, so, &l)) return 1;
    int rc = report(l.engine, co);
    pc_cli_loaded_free(&l);
    return rc;
}

int pc_cli_encode(int argc, char **argv) {
    pc_cli_engine_opts eo = pc_cli_engine_defaults();
    pc_cli_schema_opts so = {0};
    pc_cli_cache_opts co = {0};
    eo.cache = &co;
    const pc_cli_group groups[] = {{"schemas", pc_cli_schema_table, &so},
                                   {"module store", pc_cli_cache_table, &co},
                                   {"model", pc_cli_engine_table, &eo}};
    const pc_cli_spec spec = {"encode", "pcache encode --schema S.xml [--cache-dir D] [--cache-redis HOST:PORT] [options]",
                              "Encodes PML schemas into the module store ahead of time (on disk and/or in Redis), so "
                              "that later runs and servers encode nothing.",
                              groups, sizeof groups / sizeof *groups, &so.files};
    int rc = pc_cli_parse(&spec, argc, argv);
    if (rc == PC_CLI_PARSED && !so.files.n) {
        fprintf(stderr, "pcache encode: --schema S.xml is required (see pcache encode --help)\n");
        rc = PC_CLI_BAD;
    } else if (rc == PC_CLI_PARSED && !co.dir && !co.redis) {
        fprintf(stderr, "pcache encode: give --cache-dir DIR and/or --cache-redis HOST:PORT: without them the encoded "
                        "KV would not outlive this process\n");
        rc = PC_CLI_BAD;
    }
    if (rc == PC_CLI_PARSED) rc = encode_all(&eo, &so, &co);
    pc_cli_list_free(&so.files);
    return rc == PC_CLI_HELP ? 0 : rc;
}
