#!/bin/bash
# acct.sh ROUNDS MODEL BIN... : per round and binary (order rotated each round): per-token us (layers, logits, total), team timers, decode tok/s, median of 5 one-pass reads (GB/s)
R=$1; M=$2; shift 2
B=("$@"); n=${#B[@]}
for r in $(seq $R); do for k in $(seq 0 $((n-1))); do
  b=${B[$(( (k + r) % n ))]}
  printf "%s " $(basename $(dirname $(dirname $b)))
  $b generate -m $M --prompt-file /tmp/smol/prompt.txt -n 128 --temp 0 --ignore-eos --json -t 2 -c 1024 2>/tmp/W/err.txt | python3 -c "import json,sys; print('tok_s=%.1f' % json.load(sys.stdin)['decode_tok_s'], end=' ')"
  awk '/^PROF/{printf "%s=%d ", $2, $3} /^TW/{printf "[%s] ", $0} /^TN/{printf "teams=%d ", $2}' /tmp/W/err.txt
  for i in 1 2 3 4 5; do /tmp/W/main/build/bench_membw 2 ${MB:-100.9} 1 | grep -o '"best_gb_s": [0-9.]*' | cut -d' ' -f2; done | sort -n | sed -n 3p | sed 's/^/bw=/'
done; done
