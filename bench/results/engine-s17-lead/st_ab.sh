#!/bin/sh
# st_ab.sh ROUNDS MODEL LEADKIB: -t 2 (main's way) vs -t 1 + streamer vs -t 1 plain, rotated; prints decode tok/s + a 2-thread read
M=$2; L=$3
for r in $(seq $1); do
  line=""
  for v in t2 st t1; do
    case $v in t2) E="X=1"; T=2;; st) E="PCS_STREAM=$L"; T=1;; t1) E="X=1"; T=1;; esac
    tok=$(env $E build/pcache generate -m $M -f /tmp/s12prompt.txt -n 128 --temp 0 --ignore-eos --json -t $T -c 1024 2>/dev/null | python3 -c "import json,sys; print('%.1f' % json.load(sys.stdin)['decode_tok_s'])")
    line="$line $v=$tok"
  done
  bw=$(/work/wt/lead/build/bench_membw 2 96 1 2>/dev/null | grep -o '"best_gb_s": [0-9.]*' | cut -d' ' -f2)
  echo "$line bw2=$bw"
done
