#!/bin/bash
# ab.sh ROUNDS THREADS FILTER BIN... : bench_matmul --stream alternating binaries, rotated per round
R=$1; T=$2; F=$3; shift 3; B=("$@"); n=${#B[@]}
for r in $(seq $R); do for k in $(seq 0 $((n-1))); do
  b=${B[$(( (k + r) % n ))]}
  $b --stream $T 256 "$F" 2>/dev/null | sed "s|^|$(echo $b | sed "s|/work/||;s|/bench_matmul||;s|/|_|g") r$r: |"
done; done
