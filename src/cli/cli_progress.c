/* cli_progress.c - encoding progress on stderr: a line redrawn in place on a
 * terminal, a line every few seconds otherwise (logs stay readable). */
#include <stdio.h>
#include <unistd.h>

#include "cli/cli.h"

void pc_cli_encode_progress(void *user, int32_t done, int32_t n, int64_t tok_done, int64_t tok_total, double ms) {
    double *last = user;
    const int tty = isatty(2);
    const int final = done == n;
    if (!final && !tty && ms - *last < 5000) return;
    if (!final && tty && ms - *last < 100) return;
    *last = ms;
    fprintf(stderr, "%sencoding: %d/%d pieces, %lld/%lld tokens, %.0f tok/s%s", tty ? "\r" : "", done, n,
            (long long)tok_done, (long long)tok_total, ms > 0 ? (double)tok_done / (ms / 1e3) : 0.0,
            final || !tty ? "\n" : "");
}
