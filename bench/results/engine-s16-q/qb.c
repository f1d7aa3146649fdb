#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/quant.h"
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+1e-9*t.tv_nsec;}
int main(int argc, char **argv) {
    int64_t n = argc > 1 ? atoll(argv[1]) : 4864;
    float *x = aligned_alloc(64, n * 4);
    for (int64_t i = 0; i < n; i++) x[i] = (float)((i * 7919) % 1000) / 500.0f - 1.0f;
    size_t sc = pc_matmul_scratch_size(PC_TYPE_Q4_K, n, 1);
    void *s = aligned_alloc(64, (sc + 63) & ~63ul);
    static char dummy[64];
    for (int packed = 0; packed < 2; packed++) {
        pc_matmul_args a = {.wt = PC_TYPE_Q4_K, .w = dummy, .packed = packed ? dummy : NULL, .n_in = n, .n_out = 16, .x = x, .n_tok = 1, .y = (float *)dummy, .scratch = s, .isa = pc_isa_detect()};
        for (int blk = 0; blk < 2; blk++) {
            double t0 = now(); int R = 20000;
            for (int r = 0; r < R; r++) {
                if (blk) { for (int64_t b = 0; b < n; b += 256) if (!pc_matmul_quantize_part(&a, b, b + 256)) return 1; }
                else if (!pc_matmul_quantize_part(&a, 0, n)) return 1;
            }
            printf("n=%lld packed=%d per-block-calls=%d: %.3f us\n", (long long)n, packed, blk, (now() - t0) / R * 1e6);
        }
    }
    return 0;
}
