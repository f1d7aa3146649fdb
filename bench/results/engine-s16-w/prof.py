# prof.py SRC_DIR: adds per-token timers (layers, logits, total) to forward.c of a copied tree (throwaway)
import sys,re
p = sys.argv[1] + '/src/forward/forward.c'
s = open(p).read()
hdr = '''#include <stdio.h>
#include <time.h>
static double PROF[4]; static long PROFN;
static double pnow(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+1e-9*t.tv_nsec;}
__attribute__((destructor)) static void prof_dump(void){ const char*nm[]={"layers","logits","total"};
 if(PROFN) for(int i=0;i<3;i++) fprintf(stderr,"PROF %-7s %8.2f us/tok\\n",nm[i],PROF[i]/PROFN*1e6);}
'''
i = s.index('/* ---- sublayers')
s = s[:i] + hdr + s[i:]
old = '''        be->ops->embed(be, &f->m->tok_embd, be->acts.x);
        run_layers(f, b->n);
        s = output(f, b, err);'''
new = '''        double _t0 = pnow();
        be->ops->embed(be, &f->m->tok_embd, be->acts.x);
        double _t1 = pnow();
        run_layers(f, b->n);
        double _t2 = pnow();
        s = output(f, b, err);
        double _t3 = pnow();
        if (b->n == 1) { PROF[0] += _t2 - _t1; PROF[1] += _t3 - _t2; PROF[2] += _t3 - _t0; PROFN++; }'''
assert old in s
s = s.replace(old, new)
open(p,'w').write(s)
