/* throwaway: cost of one pc_matmul call's x quantization (n_in 576, Q4_1 -> Q8_1, packed), x_ready off vs on, L1-hot 16 rows */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/pack.h"
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+1e-9*t.tv_nsec;}
int main(int argc, char **argv) {
  int NI = argc > 1 ? atoi(argv[1]) : 576, NO = 16; pc_type wt = argc > 2 ? atoi(argv[2]) : PC_TYPE_Q4_1;
  size_t wr = pc_row_size(wt, NI); unsigned char *w = malloc(wr * NO); float *row = malloc(4 * NI);
  for (int o = 0; o < NO; o++) { for (int i = 0; i < NI; i++) row[i] = (float)((o * 31 + i * 17) % 97) / 97.f - 0.5f; pc_quantize_row(wt, row, w + o * wr, NI); }
  unsigned char *pk = aligned_alloc(64, (pc_pack_size(wt, NI, NO) + 63) & ~63ul); pc_pack(wt, w, NI, NO, pk);
  float *x = aligned_alloc(64, 4 * NI), *y = aligned_alloc(64, 4 * NO); for (int i = 0; i < NI; i++) x[i] = (float)(i % 13) / 13.f - 0.4f;
  void *scr = aligned_alloc(64, (pc_matmul_scratch_size(wt, NI, 1) + 63) & ~63ul);
  pc_matmul_args a = {.wt = wt, .w = w, .packed = pk, .n_in = NI, .n_out = NO, .x = x, .n_tok = 1, .y = y, .scratch = scr, .isa = pc_isa_detect()};
  for (int rep = 0; rep < 3; rep++) for (int xr = 0; xr < 2; xr++) {
    a.x_ready = xr; pc_matmul(NULL, &a); const int N = 200000; double t0 = now();
    for (int i = 0; i < N; i++) pc_matmul(NULL, &a);
    printf("x_ready %d: %.3f us a call\n", xr, (now() - t0) / N * 1e6);
  }
}
