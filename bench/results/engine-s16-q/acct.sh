#!/bin/sh
# acct.sh ROUNDS MODEL MIB BIN...: per round and binary: per-step us/tok, decode tok/s, median of 5 one-pass reads of MIB (GB/s)
R=$1; M=$2; MIB=$3; shift 3
for r in $(seq $R); do for b in "$@"; do
  n=$(basename $(dirname $(dirname $b)))
  t=$($b generate -m $M --prompt-file /tmp/s12prompt.txt -n 128 --temp 0 --ignore-eos --json -t 2 -c 1024 2>/tmp/Q/err.txt | python3 -c "import json,sys; print('%.2f' % json.load(sys.stdin)['decode_tok_s'])")
  p=$(awk '/^PROF/{printf "%s=%.1f ", $2, $3}' /tmp/Q/err.txt)
  bw=$(for i in 1 2 3 4 5; do /tmp/Q/main/build/bench_membw 2 $MIB 1 | grep -o '"best_gb_s": [0-9.]*' | cut -d' ' -f2; done | sort -n | sed -n 3p)
  echo "$n tok_s=$t $p bw=$bw"
done; done
