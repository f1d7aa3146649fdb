/* throwaway (engine T, s14): L slices of NO x NI Q4_1 (packed), 2 threads:
 *  a one pool job of all rows; b L pool jobs (today's even split);
 *  c one team run, static halves per slice, spin barrier between slices;
 *  d c + prefetch PF bytes of the next slice's half before the barrier;
 *  e team, two-ended chunk claiming (CH rows) per slice, barrier between;
 *  f team static halves, no barrier (bound); rd plain read. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/pack.h"
#include "util/threadpool.h"
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+1e-9*t.tv_nsec;}
typedef struct { const unsigned char *buf; size_t bytes, per; unsigned long s[8]; } rj;
static void rtask(void *c, int t, int nt, int th) { (void)nt; (void)th; rj *j = c; size_t o = t * j->per, n = o + j->per <= j->bytes ? j->per : j->bytes - o;
  const unsigned char *p = j->buf + o; unsigned long s = 0; for (size_t i = 0; i + 8 <= n; i += 64) { unsigned long v; __builtin_prefetch(p + i + 4096, 0, 2); memcpy(&v, p + i, 8); s ^= v; } j->s[t] = s; }
static int cmpd(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return (x > y) - (x < y); }

static int L, NI, NO, PF = 4096, CH = 64;
static size_t ps, wr, grp;
static unsigned char *buf, *w, *ar;
static size_t hb[2], aoff[2];
static float *x, *y;
static void *scr[2];
static pc_isa isa;
static _Atomic int bcount, bgen;
static _Atomic int go, fin;
static _Atomic unsigned long long claim[4096];
static int mode;

static inline void pause_(void) { __builtin_ia32_pause(); }
static void barrier(void) {
  int g = atomic_load_explicit(&bgen, memory_order_acquire);
  if (atomic_fetch_add_explicit(&bcount, 1, memory_order_acq_rel) == 1) { atomic_store(&bcount, 0); atomic_fetch_add_explicit(&bgen, 1, memory_order_release); }
  else while (atomic_load_explicit(&bgen, memory_order_acquire) == g) pause_();
}
static int PFW = 1 << 20; static int HINT = 1;
/* waits like barrier(), issuing prefetches of [p, p + n) (64 B at a time, at most PFW) while it waits */
static void barrier_pf(const unsigned char *p, size_t n) {
  int g = atomic_load_explicit(&bgen, memory_order_acquire);
  if (atomic_fetch_add_explicit(&bcount, 1, memory_order_acq_rel) == 1) { atomic_store(&bcount, 0); atomic_fetch_add_explicit(&bgen, 1, memory_order_release); return; }
  size_t o = 0; if (n > (size_t)PFW) n = PFW;
  while (atomic_load_explicit(&bgen, memory_order_acquire) == g) {
    if (o < n) { if (HINT == 1) __builtin_prefetch(p + o, 0, 2); else __builtin_prefetch(p + o, 0, 3); o += 64; } else pause_();
  }
}
/* rows [o0,o1) of slice l */
static int qdone[2];
static int xr(int th) { return (mode == 'i' || mode == 'j' || mode == 'k' || mode == 'm' || mode == 's') && qdone[th]; }
static _Atomic unsigned long long tclaim[2][4096];
static int OWNG = 4, STG = 2; static double FC = 0.8;
static void tail_range(int m, int *g0, int *g1) { const int half = (NO / 2 + 15) & ~15; int s = m ? half : 0, e = m ? NO : half;
  *g0 = (s + ((int)((e - s) * FC) / 16) * 16) / 16; *g1 = e / 16; }
static int tclaim_take(int m, int l, int n, int back, int *a, int *b) {
  for (;;) { unsigned long long v = atomic_load(&tclaim[m][l]); int lo = (int)(unsigned)v, hi = (int)(v >> 32);
    if (lo >= hi) return 0;
    int nlo = lo, nhi = hi; if (back) { nhi = hi - n < lo ? lo : hi - n; *a = nhi; *b = hi; } else { nlo = lo + n > hi ? hi : lo + n; *a = lo; *b = nlo; }
    if (atomic_compare_exchange_weak(&tclaim[m][l], &v, (unsigned long long)(unsigned)nlo | (unsigned long long)nhi << 32)) return 1; } }
static void rows(int th, int l, int o0, int o1) {
  if (o0 >= o1) return;
  size_t r = (size_t)l * NO + o0;
  pc_matmul_args a = {.x_ready = xr(th), .wt = PC_TYPE_Q4_1, .w = w + r * wr, .packed = buf + (size_t)l * ps + (size_t)(o0 / 16) * grp, .n_in = NI, .n_out = o1 - o0,
                      .x = x, .n_tok = 1, .y = y + r, .scratch = scr[th], .isa = isa};
  pc_matmul(NULL, &a); qdone[th] = 1;
}
/* the same rows read from thread th's arena: its halves of all slices back to back */
static void rows_ar(int th, int l, int o0, int o1) {
  size_t r = (size_t)l * NO + o0;
  pc_matmul_args a = {.x_ready = xr(th), .wt = PC_TYPE_Q4_1, .w = w + r * wr, .packed = ar + aoff[th] + (size_t)l * hb[th], .n_in = NI, .n_out = o1 - o0,
                      .x = x, .n_tok = 1, .y = y + r, .scratch = scr[th], .isa = isa};
  pc_matmul(NULL, &a); qdone[th] = 1;
}
static void pf(int l, int o0, int o1) {
  const unsigned char *p = buf + (size_t)l * ps + (size_t)(o0 / 16) * grp; size_t n = (size_t)((o1 - o0) / 16) * grp;
  for (size_t o = 0; o < n && o < (size_t)PF; o += 64) __builtin_prefetch(p + o, 0, 2);
}
static void team(int th) {
  const int half = (NO / 2 + 15) & ~15;
  const int o0 = th ? half : 0, o1 = th ? NO : half;
  for (int l = 0; l < L; l++) {
    if (mode == 'e') {
      const int nch = (NO + CH - 1) / CH;
      for (;;) {
        unsigned long long v = atomic_load(&claim[l]); unsigned lo = (unsigned)v, hi = (unsigned)(v >> 32);
        if (lo >= hi) break;
        unsigned long long nv = th ? ((unsigned long long)(hi - 1) << 32 | lo) : ((unsigned long long)hi << 32 | (lo + 1));
        if (!atomic_compare_exchange_weak(&claim[l], &v, nv)) continue;
        int c = th ? (int)hi - 1 : (int)lo; int r1 = (c + 1) * CH; rows(th, l, c * CH, r1 < NO ? r1 : NO);
      }
      (void)nch;
      barrier();
      continue;
    }
    if (mode == 's') {
      int g0, g1, a, b; tail_range(th, &g0, &g1); (void)g1;
      rows(th, l, o0, g0 * 16);
      while (tclaim_take(th, l, OWNG, 0, &a, &b)) rows(th, l, a * 16, b * 16);
      while (tclaim_take(1 - th, l, STG, 1, &a, &b)) rows(th, l, a * 16, b * 16);
      barrier();
      continue;
    }
    if (mode == 'g' || mode == 'h' || mode == 'i' || mode == 'j' || mode == 'q') rows_ar(th, l, o0, o1); else rows(th, l, o0, o1);
    if (mode == 'f' || mode == 'h' || mode == 'i' || mode == 'k') continue;
    if (mode == 'd' && l + 1 < L) pf(l + 1, o0, o1);
    if ((mode == 'p' || mode == 'q') && l + 1 < L) {
      const unsigned char *np = mode == 'q' ? ar + aoff[th] + (size_t)(l + 1) * hb[th] : buf + (size_t)(l + 1) * ps + (size_t)(o0 / 16) * grp;
      barrier_pf(np, (size_t)((o1 - o0) / 16) * grp);
    } else
    barrier();
  }
}
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER; static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static void *worker(void *arg) {
  (void)arg; int seen = 0;
  for (;;) { int g, s = 0; while ((g = atomic_load_explicit(&go, memory_order_acquire)) == seen && s < 20000) { pause_(); s++; }
    if (g == seen) { pthread_mutex_lock(&mu); while ((g = atomic_load(&go)) == seen) pthread_cond_wait(&cv, &mu); pthread_mutex_unlock(&mu); }
    if (g < 0) return NULL; seen = g; team(1); atomic_fetch_add(&fin, 1); }
}
static void run_team(int m) {
  mode = m; const int nch = (NO + CH - 1) / CH;
  for (int l = 0; l < L; l++) claim[l] = (unsigned long long)nch << 32;
  qdone[0] = qdone[1] = 0;
  for (int mm = 0; mm < 2; mm++) for (int l = 0; l < L; l++) { int g0, g1; tail_range(mm, &g0, &g1); tclaim[mm][l] = (unsigned long long)(unsigned)g0 | (unsigned long long)g1 << 32; }
  int f0 = atomic_load(&fin); pthread_mutex_lock(&mu); atomic_fetch_add_explicit(&go, 1, memory_order_release); pthread_cond_broadcast(&cv); pthread_mutex_unlock(&mu); team(0);
  while (atomic_load_explicit(&fin, memory_order_acquire) == f0) pause_();
}
int main(int argc, char **argv) {
  int passes = argc > 1 ? atoi(argv[1]) : 9; L = argc > 2 ? atoi(argv[2]) : 120; NI = argc > 3 ? atoi(argv[3]) : 576; NO = argc > 4 ? atoi(argv[4]) : 1536;
  if (argc > 5) PF = atoi(argv[5]); if (argc > 6) CH = atoi(argv[6]); if (argc > 7) PFW = atoi(argv[7]); if (argc > 8) HINT = atoi(argv[8]); if (argc > 9) FC = atof(argv[9]); if (argc > 10) OWNG = atoi(argv[10]); if (argc > 11) STG = atoi(argv[11]);
  pc_pool *pool = pc_pool_create(2);
  ps = pc_pack_size(PC_TYPE_Q4_1, NI, NO); grp = pc_pack_size(PC_TYPE_Q4_1, NI, 16); size_t all = ps * L;
  buf = aligned_alloc(2 << 20, (all + (2 << 20)) & ~((2ul << 20) - 1)); madvise(buf, all, MADV_HUGEPAGE);
  wr = pc_row_size(PC_TYPE_Q4_1, NI); w = malloc(wr * NO * L); float *row = malloc(4 * NI);
  for (int64_t o = 0; o < (int64_t)NO * L; o++) { for (int64_t i = 0; i < NI; i++) row[i] = (float)((o * 31 + i * 17) % 97) / 97.f - 0.5f; pc_quantize_row(PC_TYPE_Q4_1, row, w + o * wr, NI); }
  pc_pack(PC_TYPE_Q4_1, w, NI, (int64_t)NO * L, buf);
  { const int half = (NO / 2 + 15) & ~15; hb[0] = (size_t)(half / 16) * grp; hb[1] = ps - hb[0]; aoff[0] = 0; aoff[1] = hb[0] * L;
    ar = aligned_alloc(2 << 20, (all + (2 << 20)) & ~((2ul << 20) - 1)); madvise(ar, all, MADV_HUGEPAGE);
    for (int l = 0; l < L; l++) { memcpy(ar + aoff[0] + l * hb[0], buf + (size_t)l * ps, hb[0]); memcpy(ar + aoff[1] + l * hb[1], buf + (size_t)l * ps + hb[0], hb[1]); } }
  x = aligned_alloc(64, 4 * NI); y = aligned_alloc(64, 4 * (size_t)NO * L); for (int i = 0; i < NI; i++) x[i] = (float)(i % 13) / 13.f - 0.4f;
  scr[0] = aligned_alloc(64, 1 << 16); scr[1] = aligned_alloc(64, 1 << 16); isa = pc_isa_detect();
  pthread_t th; pthread_create(&th, NULL, worker, NULL);
  rj r = {.buf = buf, .bytes = all, .per = (all / 2 + 63) & ~63ul};
  const char *modes = "abcmsk"; enum { NM = 6 };
  const char *pairs[] = {"sm", "sa", "ma", "ka", "mc", "sk"};
  static double t[NM][64], rd[64]; float *ref = malloc(4 * (size_t)NO * L);
  for (int p = 0; p < passes && p < 64; p++) {
    double r0 = now(); pc_pool_run(pool, rtask, &r, 2); double r1 = now();
    for (int kk = 0; kk < NM; kk++) {
      const int k = (p & 1) ? NM - 1 - kk : kk;
      memset(y, 0, 4 * (size_t)NO * L); usleep(3000);
      double t0 = now();
      if (modes[k] == 'a') { pc_matmul_args a = {.wt = PC_TYPE_Q4_1, .w = w, .packed = buf, .n_in = NI, .n_out = (int64_t)NO * L, .x = x, .n_tok = 1, .y = y, .scratch = scr[0], .isa = isa}; pc_matmul(pool, &a); }
      else if (modes[k] == 'b') for (int l = 0; l < L; l++) { pc_matmul_args a = {.wt = PC_TYPE_Q4_1, .w = w + (size_t)l * NO * wr, .packed = buf + (size_t)l * ps, .n_in = NI, .n_out = NO, .x = x, .n_tok = 1, .y = y + (size_t)l * NO, .scratch = scr[0], .isa = isa}; pc_matmul(pool, &a); }
      else run_team(modes[k]);
      t[k][p] = now() - t0;
      if (p == 0 && k == 0) memcpy(ref, y, 4 * (size_t)NO * L);
      else if (memcmp(ref, y, 4 * (size_t)NO * L)) { printf("MISMATCH mode %c\n", modes[k]); }
    }
    usleep(3000); double r2 = now(); pc_pool_run(pool, rtask, &r, 2); double r3 = now();
    rd[p] = ((r1 - r0) + (r3 - r2)) / 2;
    printf("pass %2d read %6.0f us |", p, rd[p] * 1e6);
    for (int k = 0; k < NM; k++) printf(" %c %6.0f (%5.1f%%)", modes[k], t[k][p] * 1e6, 100 * rd[p] / t[k][p]);
    printf("\n");
  }
  /* medians of each mode's share of the paired read and of its time / b's time */
  printf("median share of read:");
  for (int k = 0; k < NM; k++) { double s[64]; for (int p = 0; p < passes; p++) s[p] = rd[p] / t[k][p]; qsort(s, passes, 8, cmpd); printf(" %c %.1f%%", modes[k], 100 * s[passes / 2]); }
  printf("\nmedian time / b:");
  for (int k = 0; k < NM; k++) { double s[64]; for (int p = 0; p < passes; p++) s[p] = t[k][p] / t[1][p]; qsort(s, passes, 8, cmpd); printf(" %c %.3f (%.3f-%.3f)", modes[k], s[passes / 2], s[passes / 4], s[3 * passes / 4]); }
  printf("  (%.1f MB)\n", all / 1e6);
  printf("pairwise median ratio:");
  for (int q = 0; q < 6; q++) { int k1 = strchr(modes, pairs[q][0]) - modes, k2 = strchr(modes, pairs[q][1]) - modes; double s[64]; int lo = 0;
    for (int p = 0; p < passes; p++) s[p] = t[k1][p] / t[k2][p]; qsort(s, passes, 8, cmpd); for (int p = 0; p < passes; p++) lo += s[p] < 1;
    printf(" %s %.3f (%d/%d <1)", pairs[q], s[passes / 2], lo, passes); }
  printf("\n");
  pthread_mutex_lock(&mu); atomic_store(&go, -1); pthread_cond_broadcast(&cv); pthread_mutex_unlock(&mu); pthread_join(th, NULL);
}
