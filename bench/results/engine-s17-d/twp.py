# twp.py SRC_DIR: per-member barrier waits (us a token) in the team job, per token parity (throwaway)
import sys
p=sys.argv[1]+'/src/backend/backend_cpu.c'
s=open(p).read()
hdr='''#include <stdio.h>
#include <time.h>
extern int pc_prof_par; extern long pc_prof_n2[2]; extern double pc_kn_stolen[2][2];
static double TW[2][2][8]; static long TN[2];
static double tnow(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+1e-9*t.tv_nsec;}
__attribute__((destructor)) static void tw_dump(void){ for(int q=0;q<2;q++){ if(!TN[q]) continue; const char*nm[]={"b_wo","b_gu","b_down","team","steals","x"}; double tok=pc_prof_n2[q]; for(int m=0;m<2;m++){fprintf(stderr,"TW%d m%d",q,m); for(int k=0;k<5;k++) fprintf(stderr," %s=%.1f",nm[k],(k==4?pc_kn_stolen[q][m]/1024:TW[q][m][k])/tok*(k==4?1:1e6)); fprintf(stderr,"\\n");}}}
#define TB(k, call) do { double _t = tnow(); call; if (member < 2) TW[pc_prof_par][member][k] += tnow() - _t; } while (0)
'''
def rep(a,b):
    global s
    assert s.count(a)==1, a
    s=s.replace(a,b)
rep('#include "backend/backend.h"\n', hdr+'#include "backend/backend.h"\n')
rep('''    pc_pool_barrier(c->pool); /* the norm reads all of x */''','''    TB(0, pc_pool_barrier(c->pool)); /* the norm reads all of x */''')
rep('''    pc_pool_barrier(c->pool); /* down reads every member's part of its quantized input */''','''    TB(1, pc_pool_barrier(c->pool));''')
rep('''    if (!j->next) return;
    pc_pool_barrier(c->pool);''','''    if (!j->next) return;
    TB(2, pc_pool_barrier(c->pool));''')
rep('''    team_ran(c, pc_pool_team(c->pool, team_member, &j) > 0);''','''    double _t0 = tnow();
    team_ran(c, pc_pool_team(c->pool, team_member, &j) > 0);
    TW[pc_prof_par][0][3] += tnow() - _t0; TN[pc_prof_par]++;''')
# knob: PCD_PIECE{0,1} = piece KB (0: fixed shares)
rep('''    a.claim = c->team_claim + (size_t)step * (size_t)members;''','''    a.claim = pc_kn_piece[pc_prof_par] ? c->team_claim + (size_t)step * (size_t)members : NULL;''')
rep('''static pc_matmul_args claim_args(''','''extern int64_t pc_kn_piece[2];
static pc_matmul_args claim_args(''')
open(p,'w').write(s)
p=sys.argv[1]+'/src/kernels/cpu/matmul.c'
s=open(p).read()
rep('''    const int64_t tail = CLAIM_TAIL_BYTES, piece = CLAIM_PIECE_BYTES, steal = CLAIM_STEAL_MIN_BYTES;''','''    const int64_t tail = pc_kn_div[pc_prof_par] << 10, piece = pc_kn_piece[pc_prof_par], steal = pc_kn_smin[pc_prof_par];''')
rep('''while (claim_piece(&a->claim[p], &z, hi - lo, false, &b0, &b1)) mm_range(m, lo + b0, lo + b1, false);''','''while (claim_piece(&a->claim[p], &z, hi - lo, false, &b0, &b1)) { mm_range(m, lo + b0, lo + b1, false); if (a->part < 2) pc_kn_stolen[pc_prof_par][a->part] += (double)(b1 - b0); }''')
rep('''static claim_sizes claim_sizes_of(''','''int64_t pc_kn_piece[2], pc_kn_div[2], pc_kn_smin[2]; double pc_kn_stolen[2][2];
extern int pc_prof_par;
__attribute__((constructor)) static void kn_init(void) { const char *v0 = getenv("PCD_PIECE0"), *v1 = getenv("PCD_PIECE1"); pc_kn_piece[0] = v0 ? atoll(v0) << 10 : 0; pc_kn_piece[1] = v1 ? atoll(v1) << 10 : 0; const char *d0 = getenv("PCD_DIV0"), *d1 = getenv("PCD_DIV1"); pc_kn_div[0] = d0 ? atoll(d0) : 64; pc_kn_div[1] = d1 ? atoll(d1) : 64; const char *s0 = getenv("PCD_SMIN0"), *s1 = getenv("PCD_SMIN1"); pc_kn_smin[0] = (s0 ? atoll(s0) : 8) << 10; pc_kn_smin[1] = (s1 ? atoll(s1) : 8) << 10; }
static claim_sizes claim_sizes_of(''')
rep('''#include <stdatomic.h>''','''#include <stdatomic.h>
#include <stdlib.h>''')
open(p,'w').write(s)
