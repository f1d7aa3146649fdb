/* main.c - `pcache COMMAND ...`: dispatch to the commands. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <libxml/parser.h>

#include "cli/cli.h"

typedef struct command {
    const char *name, *summary;
    int (*run)(int argc, char **argv);
} command;

static const command COMMANDS[] = {
    {"generate", "run a prompt through the model and stream the answer", pc_cli_generate},
    {"run", "run PML prompts against PML schemas, with Prompt Cache", pc_cli_run},
    {"schema", "encode PML schemas and print their layout", pc_cli_schema},
    {"encode", "encode PML schemas into the module store (disk, Redis) ahead of time", pc_cli_encode},
    {"cache", "list, check and remove the module store's entries: ls, verify, rm", pc_cli_cache},
    {"serve", "serve the model over HTTP (OpenAI-compatible, PML schemas, batching)", pc_cli_serve},
};

static void usage(FILE *out) {
    fprintf(out, "usage: pcache COMMAND [options]\ncommands:\n");
    for (size_t i = 0; i < sizeof COMMANDS / sizeof *COMMANDS; i++)
        fprintf(out, "  %-10s %s\n", COMMANDS[i].name, COMMANDS[i].summary);
    fprintf(out, "run `pcache COMMAND --help` for a command's options\n");
}

int main(int argc, char **argv) {
    xmlInitParser(); /* once, before any thread parses PML */
    /* A peer (Redis) closing a socket must be an error return, not the end of
     * the process; the library blocks SIGPIPE where it writes, the CLI's own
     * short-lived Redis connections (pcache cache) rely on this. */
    signal(SIGPIPE, SIG_IGN);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    for (size_t i = 0; i < sizeof COMMANDS / sizeof *COMMANDS; i++)
        if (!strcmp(argv[1], COMMANDS[i].name)) return COMMANDS[i].run(argc - 1, argv + 1);
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "pcache: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
