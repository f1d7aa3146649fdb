/* pfbench.c (throwaway): ns per line of pc_pf_step (the team cursor) against a plain pointer loop, lines in cache */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "kernels/cpu/prefetch.h"
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e9 + t.tv_nsec; }
int main(int argc, char **argv) {
    const int lines = argc > 1 ? atoi(argv[1]) : 16;
    enum { B = 64 << 10, REP = 20000 };
    static _Alignas(64) unsigned char buf[B];
    for (int i = 0; i < B; i++) buf[i] = (unsigned char)i;
    pc_wspan sp[4] = {{buf, B / 4}, {buf + B / 4, B / 4}, {buf + B / 2, B / 4}, {buf + 3 * B / 4, B / 4}};
    pc_pf_cursor c;
    double best_c = 1e30, best_p = 1e30;
    for (int round = 0; round < 5; round++) {
        double t0 = now();
        for (int r = 0; r < REP; r++) {
            pc_pf_init(&c, sp, 4);
            pc_pf_aim(&c, 0, B);
            while (pc_pf_step(&c, lines)) {}
        }
        double t1 = now();
        for (int r = 0; r < REP; r++) {
            const unsigned char *volatile nx = buf; const unsigned char *end = buf + B;
            for (;;) {
                const unsigned char *n = nx, *stop = end - n > lines * 64 ? n + lines * 64 : end;
                for (const unsigned char *p = n; p < stop; p += 64) __builtin_prefetch(p, 0, 2);
                nx = stop;
                if (stop >= end) break;
            }
        }
        double t2 = now();
        if (t1 - t0 < best_c) best_c = t1 - t0;
        if (t2 - t1 < best_p) best_p = t2 - t1;
    }
    printf("lines/step %d: pc_pf_step %.2f ns/line, pointer loop %.2f ns/line\n", lines, best_c / REP / (B / 64), best_p / REP / (B / 64));
    return 0;
}
