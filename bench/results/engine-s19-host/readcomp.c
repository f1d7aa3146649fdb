/* readcomp.c: a streaming read with K vpdpbusd per 64-byte line (4 independent chains), 1 or 2 threads,
 * prefetch modes: 0 none, 1 T1 at +4096, 2 T1 +4096 and T0 +1536. GB/s per pass, median of passes,
 * beside the plain read (K=0, mode 0). */
#define _GNU_SOURCE
#include <immintrin.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+1e-9*t.tv_nsec;}
typedef struct { const uint8_t *p; size_t n; int k, mode; uint64_t out; pthread_barrier_t *bar; double t; } arg;
#define BODY(K) \
  for (size_t i = 0; i < a->n; i += 64) { \
    if (a->mode >= 1) _mm_prefetch((const char*)a->p + i + 4096, _MM_HINT_T1); \
    if (a->mode >= 2) _mm_prefetch((const char*)a->p + i + 1536, _MM_HINT_T0); \
    __m512i v = _mm512_load_si512(a->p + i); \
    __m512i w = _mm512_and_si512(v, m); \
    for (int j = 0; j < (K); j++) { \
      switch (j & 3) { case 0: c0 = _mm512_dpbusd_epi32(c0, w, x); break; case 1: c1 = _mm512_dpbusd_epi32(c1, w, x); break; \
      case 2: c2 = _mm512_dpbusd_epi32(c2, w, x); break; default: c3 = _mm512_dpbusd_epi32(c3, w, x); } } \
    if ((K) == 0) c0 = _mm512_xor_si512(c0, v); }
__attribute__((target("avx512f,avx512bw,avx512vnni"))) static void *run(void *vp) {
  arg *a = vp; const __m512i m = _mm512_set1_epi8(0x0F), x = _mm512_set1_epi8(3);
  __m512i c0 = _mm512_setzero_si512(), c1 = c0, c2 = c0, c3 = c0;
  pthread_barrier_wait(a->bar); double t0 = now();
  switch (a->k) { case 0: BODY(0) break; case 1: BODY(1) break; case 2: BODY(2) break; case 3: BODY(3) break;
    case 4: BODY(4) break; case 6: BODY(6) break; case 8: BODY(8) break; default: BODY(12) break; }
  a->t = now() - t0;
  c0 = _mm512_add_epi32(_mm512_add_epi32(c0, c1), _mm512_add_epi32(c2, c3));
  a->out = (uint64_t)_mm512_reduce_add_epi32(c0); return NULL;
}
int main(int argc, char **argv) {
  int T = atoi(argv[1]); size_t bytes = (size_t)atoi(argv[2]) << 20; int passes = 9;
  uint8_t *buf = aligned_alloc(2 << 20, bytes); madvise(buf, bytes, MADV_HUGEPAGE);
  for (size_t i = 0; i < bytes; i++) buf[i] = (uint8_t)(i * 2654435761u >> 24);
  int ks[] = {0, 1, 2, 3, 4, 6, 8, 12}; int modes[] = {0, 1, 2};
  for (int ki = 0; ki < 8; ki++) for (int mi = 0; mi < 3; mi++) {
    double r[16], plain[16];
    for (int ps = 0; ps < passes; ps++) for (int which = 0; which < 2; which++) {
      int k = which ? ks[ki] : 0, mode = which ? modes[mi] : 1;
      pthread_barrier_t bar; pthread_barrier_init(&bar, NULL, T); pthread_t th[4]; arg a[4];
      for (int t = 0; t < T; t++) { a[t] = (arg){buf + t * (bytes / T), bytes / T, k, mode, 0, &bar, 0};
        if (t) pthread_create(&th[t], NULL, run, &a[t]); }
      run(&a[0]); for (int t = 1; t < T; t++) pthread_join(th[t], NULL);
      double mx = 0; for (int t = 0; t < T; t++) if (a[t].t > mx) mx = a[t].t;
      (which ? r : plain)[ps] = bytes / mx * 1e-9; pthread_barrier_destroy(&bar);
      if (a[0].out == 12345) puts("");
    }
    double ratio[16]; for (int i = 0; i < passes; i++) ratio[i] = r[i] / plain[i];
    for (int i = 0; i < passes; i++) for (int j = i + 1; j < passes; j++) if (ratio[j] < ratio[i]) { double s = ratio[i]; ratio[i] = ratio[j]; ratio[j] = s; }
    double rr[16]; memcpy(rr, r, sizeof rr); for (int i = 0; i < passes; i++) for (int j = i + 1; j < passes; j++) if (rr[j] < rr[i]) { double s = rr[i]; rr[i] = rr[j]; rr[j] = s; }
    printf("T=%d K=%2d mode=%d: %.1f GB/s (median), per-pass ratio to plain T1 read %.1f%%\n", T, ks[ki], modes[mi], rr[passes/2], 100 * ratio[passes/2]);
    fflush(stdout);
  }
}
