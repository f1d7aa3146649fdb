/* measure.h - what `pcache run` measures about one prompt: its TTFT over
 * repeated runs (median), and with --compare the cached answer's quality
 * against the uncached one. */
#ifndef PC_CLI_MEASURE_H
#define PC_CLI_MEASURE_H

#include <jansson.h>
#include <stdbool.h>

#include "pcache.h"

#define PC_CLI_MAX_REPEAT 64

/* How a prompt is run. */
typedef struct pc_cli_run_cfg {
    pc_gen_params gen;
    bool lenient, json;
    int repeat; /* 1 .. PC_CLI_MAX_REPEAT */
    const char *tenant; /* whose schemas the prompts bind to (then the shared ones) */
} pc_cli_run_cfg;

/* One prompt's text and name. */
typedef struct pc_cli_prompt {
    const char *path;
    const char *xml;
    size_t len;
} pc_cli_prompt;

/* Runs the prompt cfg->repeat times, keeping the last result with gen.ttft_ms
 * set to the median; ttfts[] receives each run's. The first run streams its
 * answer to stdout unless cfg->json or quiet_answer. logits_user: when set,
 * receives the first run's per-step logits. Prints the timing line on
 * stderr. On failure returns the status with err filled, printing nothing. */
pc_status pc_cli_run_repeated(pc_engine *e, const pc_cli_run_cfg *cfg, const pc_cli_prompt *p, bool cache,
                              bool quiet_answer, void *logits_user, pc_run_result *r, double *ttfts, pc_error *err);

/* The result as a JSON object (text, tokens, stop reason, ttft, counts, input). */
json_t *pc_cli_result_json(const pc_run_result *r, const double *ttfts, int n_runs);

/* Prints j as one compact line on stdout and releases it. */
void pc_cli_print_json(json_t *j);

/* Cached, then uncached with its logits kept, then the quality pass; one JSON
 * line when cfg->json. On failure returns the status with err filled. */
pc_status pc_cli_compare(pc_engine *e, const pc_cli_run_cfg *cfg, const pc_cli_prompt *p, bool cached_side,
                         pc_error *err);

/* A prompt that failed, as one JSON object: {"prompt", "error": {"message",
 * "file", "line", "column"}}; line and column are null when the message
 * names no position in the prompt's file. */
json_t *pc_cli_error_json(const char *path, const pc_error *err);

#endif
