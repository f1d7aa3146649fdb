/* cli.h - the pcache command line: one function per subcommand. Only the CLI may exit. */
#ifndef PC_CLI_H
#define PC_CLI_H

#include <stdint.h>

int pc_cli_generate(int argc, char **argv);
int pc_cli_run(int argc, char **argv);
int pc_cli_schema(int argc, char **argv);

/* pc_progress_fn for schema encoding; user points to a double (last print, ms). */
void pc_cli_encode_progress(void *user, int32_t done, int32_t n, int64_t tok_done, int64_t tok_total, double ms);

/* The default model: $PCACHE_MODEL, else the repository's models/ file. */
const char *pc_cli_default_model(void);
/* The most bytes read from a file a user names (a prompt, a prompt file). */
#define PC_CLI_MAX_INPUT_BYTES ((size_t)64 << 20)

#endif
