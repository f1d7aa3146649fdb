/* clock.h - monotonic wall time in milliseconds. */
#ifndef PC_UTIL_CLOCK_H
#define PC_UTIL_CLOCK_H

#include <time.h>

static inline double pc_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

#endif
