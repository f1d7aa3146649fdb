# kn.py SRC_DIR: attention prefetch knobs by token parity (throwaway): PCA_L{0,1} lines a unit (0: off), PCA_A{0,1} job ahead KiB
import sys
d = sys.argv[1]
p = d + '/src/backend/backend_cpu.c'
s = open(p).read()
def rep(old, new, cnt=1):
    global s
    assert s.count(old) == cnt, (old, s.count(old))
    s = s.replace(old, new)
rep('enum { ATTN_PF_LINES = 16, JOB_PF_AHEAD = 512 << 10 };', '''static long KN_L[2] = {-1, -1}, KN_A[2] = {-1, -1};
static long knob(const char *n, long dflt) { const char *v = getenv(n); return v ? atol(v) : dflt; }
#define ATTN_PF_LINES ((int)KN_L[pc_prof_par])
#define JOB_PF_AHEAD ((size_t)KN_A[pc_prof_par] << 10)''')
rep('''    if (c->c.n != 1 || c->c.n_seqs != 1) return NULL;''', '''    if (c->c.n != 1 || c->c.n_seqs != 1) return NULL;
    if (KN_L[0] < 0) { KN_L[0] = knob("PCA_L0", 16); KN_L[1] = knob("PCA_L1", 16); KN_A[0] = knob("PCA_A0", 512); KN_A[1] = knob("PCA_A1", 512); }
    if (ATTN_PF_LINES <= 0) return NULL;''')
open(p, 'w').write(s)
s = open(p).read()
rep('''    for (const char *p = f->next; p < stop; p += 64) __builtin_prefetch(p, 0, 2);''', '''    switch (KN_H[pc_prof_par]) {
    case 0: for (const char *p = f->next; p < stop; p += 64) __builtin_prefetch(p, 0, 0); break;
    case 1: for (const char *p = f->next; p < stop; p += 64) __builtin_prefetch(p, 0, 1); break;
    case 3: for (const char *p = f->next; p < stop; p += 64) __builtin_prefetch(p, 0, 3); break;
    default: for (const char *p = f->next; p < stop; p += 64) __builtin_prefetch(p, 0, 2); break;
    }''')
rep('static long KN_L[2] = {-1, -1},', 'static long KN_H[2] = {2, 2}, KN_L[2] = {-1, -1},')
rep('KN_A[1] = knob("PCA_A1", 512);', 'KN_A[1] = knob("PCA_A1", 512); KN_H[0] = knob("PCA_H0", 2); KN_H[1] = knob("PCA_H1", 2);')
open(p, 'w').write(s)
s = open(p).read()
rep('''    if (ATTN_PF_LINES <= 0) return NULL;''', '''    if (ATTN_PF_LINES == 0) return NULL;
    if (pca_pfk[0] < 0) { pca_pfk[0] = (int)knob("PCA_K0", 8); pca_pfk[1] = (int)knob("PCA_K1", 8); }''')
rep('''static long KN_H[2]''', '''int pca_pfk[2] = {-1, -1};
static long KN_H[2]''')
rep('''    struct job_pf *f = &((cpu_backend *)ctx)->job_pf[thread];''', '''    if (ATTN_PF_LINES < 0) return false;
    struct job_pf *f = &((cpu_backend *)ctx)->job_pf[thread];''')
rep('''    cpu_backend *c = ctx;
    return pc_pf_step(&c->team_pf[thread].cur, ATTN_PF_LINES);''', '''    cpu_backend *c = ctx;
    if (ATTN_PF_LINES < 0) return false;
    return pc_pf_step(&c->team_pf[thread].cur, ATTN_PF_LINES);''')
open(p, 'w').write(s)
p = d + '/src/kernels/cpu/attention.c'
s = open(p).read()
rep('''            for (int32_t o = 0; o < it.nb; o += PF_KEYS) {''', '''            const int32_t PFK = pca_pfk[pc_prof_par];
            for (int32_t o = 0; o < it.nb; o += PFK) {''')
rep('''                const int32_t nk = it.nb - o < PF_KEYS ? it.nb - o : PF_KEYS;''', '''                const int32_t nk = it.nb - o < PFK ? it.nb - o : PFK;''')
rep('''#include "kernels/cpu/attn_kernels.h"\n''', '''#include "kernels/cpu/attn_kernels.h"\nextern int pca_pfk[2]; extern int pc_prof_par;\n''')
open(p, 'w').write(s)
