#!/bin/bash
# abb.sh ROUNDS BIN... : batched decode (1 and 8 clients) through bench_server --batched-only, builds alternating
R=$1; shift; B=("$@"); n=${#B[@]}
cd /work/wt/pf
for r in $(seq $R); do for k in $(seq 0 $((n-1))); do b=${B[$(( (k + r) % n ))]}
  flock -x /tmp/pcache-cpu.lock python3 bench/bench_server.py --model smollm2 --batched-only --repeats 1 --pcache $b --out /tmp/abb-out 2>&1 |
    grep -o "1 client [0-9.]* tok/s, 8 clients [0-9.]* tok/s ([0-9.]*x" | sed "s|^|$b r$r: |"
done; done
