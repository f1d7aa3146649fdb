/* cmd_schema.c - `pcache schema`: encode PML schemas and print their layout. */
#include <stdio.h>
#include <stdlib.h>

#include "cli/cli.h"

static int describe_all(pc_engine *e, const pc_cli_schema_opts *so, char **names) {
    for (size_t i = 0; i < so->files.n; i++) {
        char *desc = NULL;
        pc_error err = {0};
        pc_status s = pc_engine_schema_describe(e, names[i], &desc, &err);
        if (s != PC_OK) {
            fprintf(stderr, "pcache schema: %s\n", err.msg);
            return 1;
        }
        fputs(desc, stdout);
        pc_free(desc);
    }
    return 0;
}

static int schema_all(const pc_cli_engine_opts *eo, const pc_cli_schema_opts *so) {
    pc_cli_loaded l;
    if (pc_cli_load("schema", eo, so, &l)) return 1;
    int rc = describe_all(l.engine, so, l.names);
    pc_cli_loaded_free(&l);
    return rc;
}

int pc_cli_schema(int argc, char **argv) {
    pc_cli_engine_opts eo = pc_cli_engine_defaults();
    pc_cli_schema_opts so = {0};
    pc_cli_cache_opts co = {0};
    eo.cache = &co;
    const pc_cli_group groups[] = {{"schemas", pc_cli_schema_table, &so},
                                   {"module store", pc_cli_cache_table, &co},
                                   {"model", pc_cli_engine_table, &eo}};
    const pc_cli_spec spec = {"schema", "pcache schema [-m MODEL] [options] S.xml...",
                              "Encodes PML schemas and prints each one's layout: modules, unions, parameters with "
                              "their positions, token counts and KV bytes.",
                              groups, sizeof groups / sizeof *groups, &so.files};
    int rc = pc_cli_parse(&spec, argc, argv);
    if (rc == PC_CLI_PARSED && !so.files.n) {
        fprintf(stderr, "pcache schema: no schema given (see pcache schema --help)\n");
        rc = PC_CLI_BAD;
    }
    if (rc == PC_CLI_PARSED) rc = schema_all(&eo, &so);
    pc_cli_list_free(&so.files);
    return rc == PC_CLI_HELP ? 0 : rc;
}
