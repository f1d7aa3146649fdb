/* main.c - `pcache COMMAND ...`: dispatch to the subcommands. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>

#include "cli/cli.h"

#ifndef PC_DEFAULT_MODEL
#define PC_DEFAULT_MODEL "models/SmolLM2-135M-Instruct.Q4_1.gguf"
#endif

const char *pc_cli_default_model(void) {
    const char *env = getenv("PCACHE_MODEL");
    return env && *env ? env : PC_DEFAULT_MODEL;
}

static void usage(FILE *out) {
    fprintf(out,
            "usage: pcache COMMAND [options]\n"
            "commands:\n"
            "  generate   run a prompt through the model and stream the answer\n"
            "  run        run a PML prompt against a PML schema, with Prompt Cache\n"
            "  schema     encode a PML schema and print its layout\n"
            "run `pcache COMMAND --help` for a command's options\n");
}

int main(int argc, char **argv) {
    xmlInitParser(); /* once, before any thread parses PML */
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "generate")) return pc_cli_generate(argc - 1, argv + 1);
    if (!strcmp(argv[1], "run")) return pc_cli_run(argc - 1, argv + 1);
    if (!strcmp(argv[1], "schema")) return pc_cli_schema(argc - 1, argv + 1);
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "pcache: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
