#!/bin/bash
# ab.sh ROUNDS MODEL BIN ENVVAL...: decode tok/s per PC_ARENA value, alternating, one line per round, + median of 5 reads
R=$1; M=$2; B=$3; shift 3
for r in $(seq $R); do
  line="round $r:"
  for v in "$@"; do
    t=$(PC_ARENA=$v $B generate -m $M --prompt-file /tmp/s12prompt.txt -n 128 --temp 0 --ignore-eos --json -t 2 -c 1024 2>/dev/null | python3 -c "import json,sys; print('%.1f' % json.load(sys.stdin)['decode_tok_s'])")
    line="$line A$v=$t"
  done
  bw=$(for i in 1 2 3 4 5; do /tmp/L/exp/build/bench_membw 2 100.9 1 | grep -o '"best_gb_s": [0-9.]*' | cut -d' ' -f2; done | sort -n | sed -n 3p)
  echo "$line bw=$bw"
done
