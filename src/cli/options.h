/* options.h - command-line options as tables, parsed in one place.
 *
 * A command lists the option groups it takes (pc_cli_group: a table of
 * pc_cli_opt and the struct their offsets point into). Groups shared by
 * several commands live here (engine, generation, schemas), so an option
 * means the same thing, with the same parsing, everywhere: adding an option
 * to every command that runs the model is one row in one table, and a new
 * command is a list of groups.
 *
 * Parsing accepts `--name VALUE`, `--name=VALUE`, `-x VALUE`, `-xVALUE`, and
 * `--` before positional arguments. Every error names the option as the user
 * wrote it and says what was expected. --help prints the command's usage,
 * built from the same tables. */
#ifndef PC_CLI_OPTIONS_H
#define PC_CLI_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "pcache.h"

typedef enum pc_opt_type {
    PC_OPT_FLAG,   /* bool, takes no value */
    PC_OPT_INT,    /* int in [min, max] */
    PC_OPT_U64,    /* uint64_t (seeds) */
    PC_OPT_FLOAT,  /* float in [min, max] */
    PC_OPT_STRING, /* const char *, pointing into argv */
    PC_OPT_LIST,   /* pc_cli_list: the option may repeat */
    PC_OPT_SIZE,   /* size_t bytes: a whole number with an optional K, M, G or T (powers of 1024) */
} pc_opt_type;

/* Values of a repeatable option, in order (pointers into argv). */
typedef struct pc_cli_list {
    const char **v;
    size_t n, cap;
} pc_cli_list;

void pc_cli_list_free(pc_cli_list *l);

typedef struct pc_cli_opt {
    const char *name;    /* long name without "--"; NULL ends a table */
    char short_name;     /* 0: none */
    pc_opt_type type;
    size_t offset;       /* of the field in the group's struct */
    const char *metavar; /* shown in --help ("N", "PATH"); NULL for flags */
    const char *help;
    double min, max;     /* INT and FLOAT: the accepted range */
} pc_cli_opt;

typedef struct pc_cli_group {
    const char *title;       /* heading in --help */
    const pc_cli_opt *opts;
    void *base;              /* the struct whose fields the offsets name */
} pc_cli_group;

typedef struct pc_cli_spec {
    const char *command;     /* "run": messages say "pcache run: ..." */
    const char *usage;       /* the synopsis line after "usage: " */
    const char *summary;     /* one line: what the command does */
    const pc_cli_group *groups;
    size_t n_groups;
    pc_cli_list *positional; /* NULL: the command takes no positional arguments */
} pc_cli_spec;

enum { PC_CLI_PARSED = 0, PC_CLI_BAD = 2, PC_CLI_HELP = -1 }; /* BAD is the exit status of bad usage */

/* Parses argv[1..argc) (argv[0] is the command name) into the groups' structs,
 * which hold the defaults beforehand. Returns PC_CLI_PARSED, PC_CLI_HELP
 * (usage printed on stdout) or PC_CLI_BAD (a message on stderr). */
int pc_cli_parse(const pc_cli_spec *spec, int argc, char **argv);
void pc_cli_usage(const pc_cli_spec *spec, FILE *out);

/* ---- groups shared by several commands ---- */

/* Which model, how many threads, what context: every command that opens the model. */
typedef struct pc_cli_cache_opts pc_cli_cache_opts;

typedef struct pc_cli_engine_opts {
    const char *model;
    int threads, n_ctx;
    const char *chat_template;
    const pc_cli_cache_opts *cache; /* set by commands that keep module KV; NULL: memory only */
    const char *backend;
} pc_cli_engine_opts;
extern const pc_cli_opt pc_cli_engine_table[];
pc_cli_engine_opts pc_cli_engine_defaults(void);

/* Sampling and stopping: every command that generates. */
typedef struct pc_cli_gen_opts {
    pc_gen_params gp;
    pc_cli_list stops;
} pc_cli_gen_opts;
extern const pc_cli_opt pc_cli_gen_table[];
pc_cli_gen_opts pc_cli_gen_defaults(int n_predict);
/* gp with its stop strings pointing at the parsed --stop values. */
pc_gen_params pc_cli_gen_params(const pc_cli_gen_opts *o);

/* Schemas to register: every command that uses Prompt Cache. */
typedef struct pc_cli_schema_opts {
    pc_cli_list files;
    bool lenient, quiet;
    const char *tenant;
    const char *placeholder;
} pc_cli_schema_opts;
extern const pc_cli_opt pc_cli_schema_table[];

/* Where encoded module KV is kept: every command that registers schemas, and
 * `pcache cache`. */
struct pc_cli_cache_opts {
    size_t mem, disk, gpu;
    bool no_gpu;
    const char *dir, *redis, *redis_prefix;
    int redis_ttl, redis_timeout;
};
extern const pc_cli_opt pc_cli_cache_table[];
extern const pc_cli_opt pc_cli_cache_where_table[]; /* where the tiers are, no budgets: `pcache cache` */
pc_cache_params pc_cli_cache_params(const pc_cli_cache_opts *o);

#endif
