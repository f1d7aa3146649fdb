# tw.py SRC_DIR: per-member barrier waits and attention time in the team job (throwaway)
import sys
p=sys.argv[1]+'/src/backend/backend_cpu.c'
s=open(p).read()
hdr='''#include <stdio.h>
#include <time.h>
static double TW[2][8]; static long TN;
static double tnow(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+1e-9*t.tv_nsec;}
__attribute__((destructor)) static void tw_dump(void){ if(!TN) return; const char*nm[]={"b_att","attn","b_wo","b_norm","b_down","b_qkv","team","x"}; fprintf(stderr,"TN %ld\n",TN); for(int m=0;m<2;m++){fprintf(stderr,"TW m%d",m); for(int k=0;k<7;k++) fprintf(stderr," %s=%.1f",nm[k],TW[m][k]/TN*1e6); fprintf(stderr,"\\n");}}
#define TB(k) do { double _t = tnow(); pc_pool_barrier(c->pool); if (member < 2) TW[member][k] += tnow() - _t; } while (0)
'''
def rep(a,b):
    global s
    assert a in s, a
    s=s.replace(a,b)
rep('#include "backend/backend.h"\n', hdr+'#include "backend/backend.h"\n')
rep('''    pc_pool_barrier(c->pool); /* down reads every member's part of its quantized input */''','''    TB(4); /* down reads every member's part of its quantized input */''')
rep('''    pc_attention_member(c->pool, &att, member, members, thread);''','''    double _ta = tnow();
    pc_attention_member(c->pool, &att, member, members, thread);
    if (member < 2) TW[member][1] += tnow() - _ta;''')
rep('''    pc_pool_barrier(c->pool); /* wo reads every head's output */''','''    TB(2); /* wo reads every head's output */''')
rep('''    pc_pool_barrier(c->pool); /* the norm reads all of x */
    pc_rmsnorm(xn, c->x, w->ffn_norm.data''','''    TB(3); /* the norm reads all of x */
    pc_rmsnorm(xn, c->x, w->ffn_norm.data''')
rep('''        pc_pool_barrier(c->pool); /* attention reads every head's query and K/V row */''','''        TB(0); /* attention reads every head's query and K/V row */''')
rep('''        pc_pool_barrier(c->pool); /* the norm reads all of x */
        team_qkv''','''        TB(5); /* the norm reads all of x */
        team_qkv''')
rep('''    team_job j = {.c = c};
    team_ran(c, pc_pool_team(c->pool, team_member, &j) > 0);''','''    team_job j = {.c = c};
    double _t0 = tnow();
    team_ran(c, pc_pool_team(c->pool, team_member, &j) > 0);
    TW[0][6] += tnow() - _t0; TN++;''')
open(p,'w').write(s)
