/* cli.h - the pcache command line: one function per command, and what several
 * commands share (opening the model, registering schemas, progress). Only the
 * CLI may exit; each command returns the process status: 0 done, 1 failed,
 * 2 bad usage. */
#ifndef PC_CLI_H
#define PC_CLI_H

#include <stdint.h>

#include "cli/options.h"
#include "pcache.h"

int pc_cli_generate(int argc, char **argv);
int pc_cli_run(int argc, char **argv);
int pc_cli_schema(int argc, char **argv);
int pc_cli_encode(int argc, char **argv);
int pc_cli_cache(int argc, char **argv);
int pc_cli_serve(int argc, char **argv);

/* The most bytes read from a file a user names (a prompt, a prompt file). */
#define PC_CLI_MAX_INPUT_BYTES ((size_t)64 << 20)

/* Opens the engine the options describe; NULL after printing "pcache CMD: why". */
pc_engine *pc_cli_engine_open(const char *command, const pc_cli_engine_opts *o);

/* Registers every schema file (encoding progress and statistics on stderr
 * unless quiet); names[i] (malloc'd, the caller frees) receives each one's
 * name, names having o->files.n entries. -1 after printing why. */
int pc_cli_schemas_load(const char *command, pc_engine *e, const pc_cli_schema_opts *o, char **names);

/* The engine the options name with every schema file registered: what run,
 * schema and encode begin with. names[i] is the registered name of
 * so->files.v[i]. */
typedef struct {
    pc_engine *engine;
    char **names;
    size_t n_names;
} pc_cli_loaded;

/* 0, or -1 after printing "pcache CMD: why" (out is then already freed). */
int pc_cli_load(const char *command, const pc_cli_engine_opts *eo, const pc_cli_schema_opts *so, pc_cli_loaded *out);
void pc_cli_loaded_free(pc_cli_loaded *l);

/* pc_progress_fn for schema encoding; user points to a double (last print, ms). */
void pc_cli_encode_progress(void *user, int32_t done, int32_t n, int64_t tok_done, int64_t tok_total, double ms);

#endif
