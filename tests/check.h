/* check.h - the test harness: plain ctest executables with counted checks.
 *
 * CHECK(cond) records a failure with file and line and carries on, so one run
 * reports every broken expectation. main() ends with `return check_report();`
 * which prints "N passed, N failed" and returns non-zero on any failure.
 * A test that cannot run here (no model file, no GPU) returns CHECK_SKIP (77),
 * which ctest reports as skipped. */
#ifndef PC_TESTS_CHECK_H
#define PC_TESTS_CHECK_H

#include <math.h>
#include <stdio.h>
#include <string.h>

#define CHECK_SKIP 77

typedef struct check_counts { int passed, failed; } check_counts;

static check_counts *check_state(void) {
    static check_counts c; /* test-process only: the library has no globals */
    return &c;
}

#define CHECK(cond)                                                                    \
    do {                                                                               \
        if (cond) {                                                                    \
            check_state()->passed++;                                                   \
        } else {                                                                       \
            check_state()->failed++;                                                   \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);   \
        }                                                                              \
    } while (0)

#define CHECK_MSG(cond, ...)                                                           \
    do {                                                                               \
        if (cond) {                                                                    \
            check_state()->passed++;                                                   \
        } else {                                                                       \
            check_state()->failed++;                                                   \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);   \
            fprintf(stderr, __VA_ARGS__);                                              \
            fputc('\n', stderr);                                                       \
        }                                                                              \
    } while (0)

#define CHECK_EQ_INT(a, b) CHECK_MSG((long long)(a) == (long long)(b), "%lld != %lld", (long long)(a), (long long)(b))
#define CHECK_STR(a, b) CHECK_MSG(strcmp((a), (b)) == 0, "\"%s\" != \"%s\"", (a), (b))
#define CHECK_NEAR(a, b, tol) CHECK_MSG(fabs((double)(a) - (double)(b)) <= (tol), "%.9g vs %.9g (tol %g)", (double)(a), (double)(b), (double)(tol))

static int check_report(void) {
    check_counts *c = check_state();
    printf("%d passed, %d failed\n", c->passed, c->failed);
    return c->failed ? 1 : 0;
}

#endif
