/* cli.h - the pcache command line: one function per subcommand. Only the CLI may exit. */
#ifndef PC_CLI_H
#define PC_CLI_H

int pc_cli_generate(int argc, char **argv);

/* The default model: $PCACHE_MODEL, else the repository's models/ file. */
const char *pc_cli_default_model(void);
/* Reads a whole file into a malloc'd NUL-terminated buffer; NULL on failure (errno set). */
char *pc_cli_read_file(const char *path, size_t *len);

#endif
