# v2.py SRC: the team job per layer (attention inside) instead of per token (throwaway variant)
import sys
p=sys.argv[1]+'/src/backend/backend_cpu.c'
s=open(p).read()
old=s[s.index('static void team_member(void *ctx, int member, int members, int thread) {'):s.index('/* A team job whose member slept')]
new='''typedef struct team_job1 { cpu_backend *c; int32_t l; } team_job1;
static void team_member1(void *ctx, int member, int members, int thread) {
    const team_job1 *j = ctx;
    cpu_backend *c = j->c;
    const int32_t l = j->l;
    float *xn = c->team_xn + member * c->xn_stride;
    if (l == 0) {
        team_qkv(c, 0, xn, member, members);
        pc_pool_barrier(c->pool);
    }
    team_layer(c, l, xn, member, members, thread);
    if (l + 1 == c->m->hp.n_layer) return;
    pc_pool_barrier(c->pool);
    team_qkv(c, l + 1, xn, member, members);
}

'''
s=s.replace(old,new)
old='''    team_job j = {.c = c};
    team_ran(c, pc_pool_team(c->pool, team_member, &j) > 0);'''
new='''    int slept = 0;
    for (int32_t l = 0; l < c->m->hp.n_layer; l++) {
        team_job1 j = {.c = c, .l = l};
        slept += pc_pool_team(c->pool, team_member1, &j);
    }
    team_ran(c, slept > 0);'''
assert old in s
s=s.replace(old,new)
open(p,'w').write(s)
