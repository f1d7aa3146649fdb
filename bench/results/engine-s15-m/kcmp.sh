#!/bin/bash
# kcmp.sh MODEL ROUNDS: bench_decode_paired at k=8, 16, 32, and k=16 with --settle-ms 20 and with --no-quiet, alternating
m=$1; R=$2
for r in $(seq $R); do
  for a in "-k 8" "-k 16" "-k 32" "-k 16 --settle-ms 20" "-k 16 --no-quiet"; do /tmp/M/one.sh $m $a | head -1; done
done
