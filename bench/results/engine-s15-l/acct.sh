#!/bin/sh
# acct.sh ROUNDS MODEL BIN ENVVAL...: per round and env value, PROF us/tok steps, TW barrier waits, median of 5 reads
R=$1; M=$2; B=$3; shift 3
for r in $(seq $R); do for v in "$@"; do
  printf "A=%s " $v
  PC_ARENA=$v $B generate -m $M --prompt-file /tmp/smol/prompt.txt -n 128 --temp 0 --ignore-eos --json -t 2 -c 1024 2>&1 | awk '/^PROF/{printf "%s=%d ", $2, $3} /^TW/{printf "%s:%d/%d/%d ", $2,$4,$6,$8}'
  for i in 1 2 3 4 5; do /tmp/L/exp/build/bench_membw 2 100.9 1 | grep -o '"best_gb_s": [0-9.]*' | cut -d' ' -f2; done | sort -n | sed -n 3p | sed 's/^/bw=/'
done; done
