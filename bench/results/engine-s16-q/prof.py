# prof.py SRC_DIR: per-step one-token timers (throwaway): forward.c steps + cpu_ffn's gate/up and down + caller quantize
import sys
d = sys.argv[1]
p = d + '/src/forward/forward.c'
s = open(p).read()
hdr = '''#include <stdio.h>
#include <time.h>
double pc_prof_t2[2][16]; long pc_prof_n2[2]; int pc_prof_on; int pc_prof_par;
#define pc_prof_t pc_prof_t2[pc_prof_par]
#define pc_prof_n pc_prof_n2[pc_prof_par]
double pc_prof_now(void);
double pc_prof_now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+1e-9*t.tv_nsec;}
#define P(i, stmt) do { if (!pc_prof_on) { stmt; break; } double _t=pc_prof_now(); stmt; pc_prof_t[i]+=pc_prof_now()-_t; } while(0)
__attribute__((destructor)) static void prof_dump(void){ for (pc_prof_par = 0; pc_prof_par < 2; pc_prof_par++) { const char*nm[]={"n1","qkv","attn","wo","n2","ffn","logits","layers","total","gu","down","quant","quantd","x13","x14","x15"};
 if(pc_prof_n) for(int i=0;i<13;i++) fprintf(stderr,"PROF%d %-7s %8.2f us/tok\\n",pc_prof_par,nm[i],pc_prof_t[i]/pc_prof_n*1e6);}}
'''
i = s.index('/* ---- sublayers')
s = s[:i] + hdr + s[i:]
def rep(old, new):
    global s
    assert old in s, old
    s = s.replace(old, new, 1)
rep('    op->norm(b, a->xn, a->x, &w->attn_norm, n);\n', '    P(0, op->norm(b, a->xn, a->x, &w->attn_norm, n));\n')
rep('        op->matmul_qkv(b, w, layer, a->xn, n);\n', '        P(1, op->matmul_qkv(b, w, layer, a->xn, n));\n')
rep('    op->norm(b, a->xn, a->x, &w->ffn_norm, n);\n', '    P(4, op->norm(b, a->xn, a->x, &w->ffn_norm, n));\n')
rep('        op->ffn(b, w, a->xn, n);\n', '        P(5, op->ffn(b, w, a->xn, n));\n')
rep('        op->attention(b, l);\n', '        P(2, op->attention(b, l));\n')
rep('        op->matmul_add(b, &w->wo, b->acts.att, n, b->acts.x);\n', '        P(3, op->matmul_add(b, &w->wo, b->acts.att, n, b->acts.x));\n')
rep('''        be->ops->embed(be, &f->m->tok_embd, be->acts.x);
        run_layers(f, b->n);
        s = output(f, b, err);''', '''        pc_prof_on = b->n == 1;
        if (b->n == 1) pc_prof_par = (int)((pc_prof_n2[0] + pc_prof_n2[1]) & 1);
        double _t0 = pc_prof_now();
        be->ops->embed(be, &f->m->tok_embd, be->acts.x);
        double _t1 = pc_prof_now();
        run_layers(f, b->n);
        double _t2 = pc_prof_now();
        s = output(f, b, err);
        double _t3 = pc_prof_now();
        if (b->n == 1) { pc_prof_t[7] += _t2 - _t1; pc_prof_t[6] += _t3 - _t2; pc_prof_t[8] += _t3 - _t0; pc_prof_n++; }
        pc_prof_on = 0; pc_prof_par = 0;''')
open(p, 'w').write(s)
p = d + '/src/backend/backend_cpu.c'
s = open(p).read()
rep('#include "util/error.h"\n', '#include "util/error.h"\nextern double pc_prof_t2[2][16]; extern int pc_prof_on; extern int pc_prof_par;\n#define pc_prof_t pc_prof_t2[pc_prof_par]\ndouble pc_prof_now(void);\n#define P(i, stmt) do { if (!pc_prof_on) { stmt; break; } double _t=pc_prof_now(); stmt; pc_prof_t[i]+=pc_prof_now()-_t; } while(0)\n')
rep('''    cpu_matmul_swiglu(b, &w->ffn_gate, &w->ffn_up, x, n);\n''', '''    P(9, cpu_matmul_swiglu(b, &w->ffn_gate, &w->ffn_up, x, n));\n''')
rep('''    matmul_add(c, &w->ffn_down, c->gate, n, c->x, next_norm(c, true));''', '''    P(10, matmul_add(c, &w->ffn_down, c->gate, n, c->x, next_norm(c, true)));''')
if 'ffn_counted(c, &j, gu, block)))' in s:
    rep('block > 32 && ffn_counted(c, &j, gu, block))', 'block > 32 && ({ bool _r; P(9, _r = ffn_counted(c, &j, gu, block)); _r; }))')
    rep('''        prefetch_norm(next_norm(c, true));
        if (!pc_matmul_acc(c->pool, &j.down, c->x)) abort();''', '''        prefetch_norm(next_norm(c, true));
        bool _ok; P(10, _ok = pc_matmul_acc(c->pool, &j.down, c->x)); if (!_ok) abort();''')
open(p, 'w').write(s)
p = d + '/src/kernels/cpu/matmul.c'
s = open(p).read()
rep('#include "kernels/cpu/quant_impl.h"\n', '#include "kernels/cpu/quant_impl.h"\nextern double pc_prof_t2[2][16]; extern int pc_prof_on; extern int pc_prof_par;\n#define pc_prof_t pc_prof_t2[pc_prof_par]\ndouble pc_prof_now(void);\n')
rep('''    run(pool, quant_task, m, (int)ceil_div(a->n_tok, m->toks_per_task));''', '''    const double _t = pc_prof_on ? pc_prof_now() : 0;
    run(pool, quant_task, m, (int)ceil_div(a->n_tok, m->toks_per_task));
    if (pc_prof_on) pc_prof_t[a->n_in > 2048 ? 12 : 11] += pc_prof_now() - _t;''')
open(p, 'w').write(s)
