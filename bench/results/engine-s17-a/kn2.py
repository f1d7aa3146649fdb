# kn2.py SRC_DIR (after kn.py): job-path idle hook stepping the same per-thread wo cursor, PCA_I{0,1} lines a step (0: none)
import sys
d = sys.argv[1]
p = d + '/src/backend/backend_cpu.c'
s = open(p).read()
def rep(old, new, cnt=1):
    global s
    assert s.count(old) == cnt, (old, s.count(old))
    s = s.replace(old, new)
rep('''    if (ATTN_PF_LINES == 0) return NULL;
    if (pca_pfk[0] < 0) { pca_pfk[0] = (int)knob("PCA_K0", 8); pca_pfk[1] = (int)knob("PCA_K1", 8); }''', '''    if (pca_pfk[0] < 0) { pca_pfk[0] = (int)knob("PCA_K0", 8); pca_pfk[1] = (int)knob("PCA_K1", 8); KN_I[0] = knob("PCA_I0", 0); KN_I[1] = knob("PCA_I1", 0); }''')
rep('''    return &c->attn_job_pf;
}''', '''    return ATTN_PF_LINES == 0 ? NULL : &c->attn_job_pf;
}
static bool job_idle(void *ctx, int thread) {
    const long n = KN_I[pc_prof_par];
    if (n <= 0) return false;
    struct job_pf *f = &((cpu_backend *)ctx)->job_pf[thread];
    const char *stop = f->end - f->next > n * 64 ? f->next + n * 64 : f->end;
    for (const char *p = f->next; p < stop; p += 64) __builtin_prefetch(p, 0, 1);
    f->next = stop;
    return stop < f->end;
}''')
rep('''static long KN_H[2]''', '''static long KN_I[2] = {0, 0};
static long KN_H[2]''')
rep('''    c->base.acts = (pc_acts)''', '''    if (!c->team_pf) { c->team_idle = (pc_pool_idle){job_idle, c}; pc_pool_idle_install(c->pool, &c->team_idle); }
    c->base.acts = (pc_acts)''')
open(p, 'w').write(s)
