# teamq.py SRC_DIR: throwaway knobs: PCD_TEAMQ=1 lets the team path take non-short layers (Qwen); PCD_JOB{0,1}=1: that token parity runs the job path
import sys
p=sys.argv[1]+'/src/backend/backend_cpu.c'
s=open(p).read()
def rep(a,b):
    global s
    assert s.count(a)==1, a
    s=s.replace(a,b)
rep('''    if (n != 1 || !c->team_xn) return false;''','''    if (n != 1 || !c->team_xn) return false;
    { const char *v = getenv(pc_prof_par ? "PCD_JOB1" : "PCD_JOB0"); if (v && atoi(v)) return false; }''')
rep('''        if (!pc_matmul_short(&wo, 1) || !pc_matmul_short(&down, 1) || !pc_matmul_short(gu, 2) ||
            !pc_matmul_short(qkv, 3) || block <= 0''','''        const bool tq = getenv("PCD_TEAMQ") != NULL;
        if ((!tq && (!pc_matmul_short(&wo, 1) || !pc_matmul_short(&down, 1) || !pc_matmul_short(gu, 2) ||
            !pc_matmul_short(qkv, 3))) || block <= 0''')
open(p,'w').write(s)
