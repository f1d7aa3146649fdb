#!/bin/sh
# win.sh ROUNDS MODEL BYTES BIN(bench_decode_paired)...: per round and binary, the windows' shares (held) with their reads
R=$1; M=$2; B=$3; shift 3
for r in $(seq $R); do for b in "$@"; do
  n=$(basename $(dirname $(dirname $b)))
  $b -m $M --prompt-file /tmp/Q/p128.txt --bytes $B -t 2 -n 128 -k 16 -c 320 --reads 3 --held-spread 0.15 2>/dev/null | tail -1 | python3 -c "
import json,sys
d=json.load(sys.stdin)
print('$n', ' '.join('%.3f@%.0f%s'%(w['share'],(w['read_before_gb_s']+w['read_after_gb_s'])/2,'' if w['held'] else 'x') for w in d['windows']))"
done; done
