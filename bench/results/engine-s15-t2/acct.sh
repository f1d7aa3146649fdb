#!/bin/sh
# acct.sh ROUNDS MODEL BIN... : per round and binary: per-token us (layers, logits, total), decode tok/s, median of 5 one-pass reads (GB/s)
R=$1; M=$2; shift 2
for r in $(seq $R); do for b in "$@"; do
  printf "%s " $(basename $(dirname $(dirname $b)))
  $b generate -m $M --prompt-file /tmp/smol/prompt.txt -n 128 --temp 0 --ignore-eos --json -t 2 -c 1024 2>/tmp/T2/err.txt | python3 -c "import json,sys; print('tok_s=%.1f' % json.load(sys.stdin)['decode_tok_s'], end=' ')"
  awk '/^PROF/{printf "%s=%d ", $2, $3} /^TW/{printf "[%s] ", $0} /^TN/{printf "teams=%d ", $2}' /tmp/T2/err.txt
  for i in 1 2 3 4 5; do /tmp/T2/main/build/bench_membw 2 100.9 1 | grep -o '"best_gb_s": [0-9.]*' | cut -d' ' -f2; done | sort -n | sed -n 3p | sed 's/^/bw=/'
done; done
