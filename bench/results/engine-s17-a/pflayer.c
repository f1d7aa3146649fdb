/* pflayer.c (throwaway): attention -> wo in miniature. Per layer and thread: U units of in-cache compute (C FMA
 * steps over a 64 KiB buffer), each followed by L prefetches (locality H) of the thread's next R bytes of a cold
 * 1 GiB stream; then a streaming read of those R bytes. ns per layer of each phase, L=0 against L>0, T threads. */
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e9 + t.tv_nsec; }
static size_t BIG = (size_t)1 << 30, R; static int C, L, U, H, SKB = 64, LAYERS = 2000;
static char *big; static pthread_barrier_t bar;
typedef struct { int id; double comp, rd; float sink; } arg;
static void *run(void *p) {
    arg *a = p;
    float *small = aligned_alloc(64, 64 << 10);
    for (int i = 0; i < (64 << 10) / 4; i++) small[i] = (float)i * 1e-6f;
    __m512 acc[8]; for (int i = 0; i < 8; i++) acc[i] = _mm512_set1_ps(0.f);
    __m512 rs = _mm512_set1_ps(0.f);
    const __m512 q = _mm512_set1_ps(1.0001f);
    const size_t half = BIG / 2; size_t pos = 0; size_t off = 0;
    a->comp = a->rd = 0;
    for (int ly = 0; ly < LAYERS; ly++) {
        const char *w = big + (size_t)a->id * half + pos; pos = (pos + R) % (half - R);
        const char *pf = w, *pe = w + R;
        pthread_barrier_wait(&bar);
        double t0 = now();
        for (int u = 0; u < U; u++) {
            for (int c = 0; c < C; c++) {
                const float *k = small + (size_t)((off++ % (size_t)(SKB * 2)) * 128);
                for (int i = 0; i < 8; i++) acc[i] = _mm512_fmadd_ps(q, _mm512_load_ps(k + 16 * i), acc[i]);
            }
            for (int l = 0; l < L && pf < pe; l++, pf += 64) {
                if (H == 0) __builtin_prefetch(pf, 0, 0); else if (H == 1) __builtin_prefetch(pf, 0, 1);
                else if (H == 2) __builtin_prefetch(pf, 0, 2); else __builtin_prefetch(pf, 0, 3);
            }
        }
        double t1 = now();
        for (size_t o = 0; o < R; o += 64) rs = _mm512_add_ps(rs, _mm512_load_ps((const float *)(w + o)));
        double t2 = now();
        a->comp += t1 - t0; a->rd += t2 - t1;
    }
    a->comp /= LAYERS; a->rd /= LAYERS;
    float r = _mm512_reduce_add_ps(rs); for (int i = 0; i < 8; i++) r += _mm512_reduce_add_ps(acc[i]);
    a->sink = r; free(small); return NULL;
}
static void go(int T, double *comp, double *rd) {
    pthread_t th[2]; arg a[2]; pthread_barrier_init(&bar, NULL, T);
    for (int t = 0; t < T; t++) { a[t].id = t; pthread_create(&th[t], NULL, run, &a[t]); }
    *comp = *rd = 0; for (int t = 0; t < T; t++) { pthread_join(th[t], NULL); *comp += a[t].comp / T; *rd += a[t].rd / T; }
    pthread_barrier_destroy(&bar);
}
int main(int argc, char **argv) {
    int T = atoi(argv[1]); C = atoi(argv[2]); U = atoi(argv[3]); int l = atoi(argv[4]); R = (size_t)atoi(argv[5]) << 10; H = argc > 6 ? atoi(argv[6]) : 1; SKB = argc > 7 ? atoi(argv[7]) : 64;
    big = aligned_alloc(4096, BIG); memset(big, 1, BIG);
    for (int r = 0; r < 4; r++) {
        double c0, r0, c1, r1;
        L = 0; go(T, &c0, &r0);
        L = l; go(T, &c1, &r1);
        printf("T=%d C=%d U=%d L=%d R=%zuK H=%d: off comp %.0f + read %.0f = %.0f | on comp %.0f + read %.0f = %.0f ns/layer (read %.1f GB/s off)\n",
               T, C, U, l, R >> 10, H, c0, r0, c0 + r0, c1, r1, c1 + r1, T * R / r0);
    }
    return 0;
}
