/* every pass of a fresh process: plain, prefetch, alternating; prints GB/s of each */
#include <stdio.h>
#include <stdlib.h>
#include "membw_read.h"
int main(int argc, char **argv) {
    const double mib = atof(argv[1]); const int passes = atoi(argv[2]);
    pc_pool *pool = pc_pool_create(2);
    pc_membw m;
    if (!pool || pc_membw_init(&m, (size_t)(mib * 1048576.0), pool, 2)) return 1;
    for (int p = 0; p < passes; p++) printf("%s%.1f", p ? " " : "", (double)m.bytes / pc_membw_pass(&m, p & 1) * 1e-9);
    printf("\n");
    return 0;
}
