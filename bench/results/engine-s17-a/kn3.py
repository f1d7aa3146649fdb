# kn3.py SRC_DIR (after kn.py): prefetch_kv's locality by token parity, PCA_V{0,1}: -1 none, 0..3 (1 = as landed)
import sys
d = sys.argv[1]
p = d + '/src/kernels/cpu/attention.c'
s = open(p).read()
def rep(old, new, cnt=1):
    global s
    assert s.count(old) == cnt, (old, s.count(old))
    s = s.replace(old, new)
rep('''static void prefetch_lines(const char *p, int64_t bytes) {
    for (int64_t c = 0; c < bytes; c += 64) __builtin_prefetch(p + c, 0, 1);
}''', '''extern long pca_kvl[2];
static void prefetch_lines(const char *p, int64_t bytes) {
    switch (pca_kvl[pc_prof_par]) {
    case 0: for (int64_t c = 0; c < bytes; c += 64) __builtin_prefetch(p + c, 0, 0); break;
    case 2: for (int64_t c = 0; c < bytes; c += 64) __builtin_prefetch(p + c, 0, 2); break;
    case 3: for (int64_t c = 0; c < bytes; c += 64) __builtin_prefetch(p + c, 0, 3); break;
    case -1: break;
    default: for (int64_t c = 0; c < bytes; c += 64) __builtin_prefetch(p + c, 0, 1); break;
    }
}''')
open(p, 'w').write(s)
p = d + '/src/backend/backend_cpu.c'
s = open(p).read()
rep('''int pca_pfk[2] = {-1, -1};''', '''int pca_pfk[2] = {-1, -1};
long pca_kvl[2] = {1, 1};''')
rep('''    if (c->c.n != 1 || c->c.n_seqs != 1) return NULL;
    if (KN_L[0] < 0) {''', '''    if (c->c.n != 1 || c->c.n_seqs != 1) return NULL;
    if (KN_L[0] < 0) { pca_kvl[0] = knob("PCA_V0", 1); pca_kvl[1] = knob("PCA_V1", 1); }
    if (KN_L[0] < 0) {''')
open(p, 'w').write(s)
