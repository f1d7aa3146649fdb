# tw.py SRC_DIR: per-member barrier waits (us a token) in the team job, attention and team time (throwaway)
import sys
p=sys.argv[1]+'/src/backend/backend_cpu.c'
s=open(p).read()
hdr='''#include <stdio.h>
#include <time.h>
static double TW[2][8]; static long TN;
static double tnow(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+1e-9*t.tv_nsec;}
__attribute__((destructor)) static void tw_dump(void){ if(!TN) return; const char*nm[]={"b_wo","b_gu","b_down","attn","team","pfKB","y","z"}; double tok=TN/29.0; fprintf(stderr,"TN %ld\\n",TN); for(int m=0;m<2;m++){fprintf(stderr,"TW m%d",m); for(int k=0;k<6;k++) fprintf(stderr," %s=%.1f",nm[k],TW[m][k]/tok*1e6); fprintf(stderr,"\\n");}}
#define TB(k, call) do { double _t = tnow(); call; if (member < 2) TW[member][k] += tnow() - _t; } while (0)
'''
def rep(a,b):
    global s
    assert s.count(a)==1, a
    s=s.replace(a,b)
rep('#include "backend/backend.h"\n', hdr+'#include "backend/backend.h"\n')
if 'team_wait(c, member, base + SPAN_GU)' in s:
    rep('team_wait(c, member, base + SPAN_GU);','TB(0, team_wait(c, member, base + SPAN_GU));')
    rep('team_wait(c, member, base + SPAN_DOWN);','TB(1, team_wait(c, member, base + SPAN_DOWN));')
    rep('team_wait(c, member, base + SPAN_QKV);','TB(2, team_wait(c, member, base + SPAN_QKV));')
else:
    rep('''    pc_pool_barrier(c->pool); /* the norm reads all of x */''','''    TB(0, pc_pool_barrier(c->pool)); /* the norm reads all of x */''')
    rep('''    pc_pool_barrier(c->pool); /* down reads every member's part of its quantized input */''','''    TB(1, pc_pool_barrier(c->pool));''')
    rep('''    if (!j->next) return;
    pc_pool_barrier(c->pool);''','''    if (!j->next) return;
    TB(2, pc_pool_barrier(c->pool));''')
rep('''    team_ran(c, pc_pool_team(c->pool, team_member, &j) > 0);''','''    double _t0 = tnow();
    team_ran(c, pc_pool_team(c->pool, team_member, &j) > 0);
    TW[0][4] += tnow() - _t0; TN++;''')
rep('''static void cpu_attention(pc_backend *b, int32_t layer) {
    cpu_backend *c = cpu(b);''','''static void cpu_attention_(pc_backend *b, int32_t layer);
static void cpu_attention(pc_backend *b, int32_t layer) {
    double _t = tnow(); cpu_attention_(b, layer); if (cpu(b)->c.n == 1) TW[0][3] += tnow() - _t;
}
static void cpu_attention_(pc_backend *b, int32_t layer) {
    cpu_backend *c = cpu(b);''')
if 'static bool pf_idle(void *ctx) { return pc_pf_step(ctx, TEAM_PF_LINES); }' in s:
    rep('static bool pf_idle(void *ctx) { return pc_pf_step(ctx, TEAM_PF_LINES); }', 'static bool pf_idle(void *ctx) { bool r = pc_pf_step(ctx, TEAM_PF_LINES); if (r) TW[0][5] += TEAM_PF_LINES * 64e-9; return r; }')
if 'return pc_pf_step(&c->team_pf[thread].cur, TEAM_PF_LINES);' in s:
    rep('return pc_pf_step(&c->team_pf[thread].cur, TEAM_PF_LINES);', 'bool r = pc_pf_step(&c->team_pf[thread].cur, TEAM_PF_LINES); if (r && thread < 2) TW[thread][5] += TEAM_PF_LINES * 64e-9; return r;')
    s = s.replace('if (r) TW[0][5] += TEAM_PF_LINES * 64e-9; return r; }', 'if (r) TW[0][6] += TEAM_PF_LINES * 64e-9; return r; }')
    s = s.replace('"team","pfKB","y"', '"team","gapKB","barKB"').replace('for(int k=0;k<6;k++)', 'for(int k=0;k<7;k++)')
open(p,'w').write(s)
