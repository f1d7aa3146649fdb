#!/bin/sh
# bmab.sh ROUNDS FILTER BIN...: bench_matmul --stream 2 512 FILTER of each binary, alternating; per-pass median share per shape
R=$1; F=$2; shift 2
for r in $(seq $R); do for b in "$@"; do
  echo "r$r $(basename $b) $($b --stream 2 512 "$F" 2>&1 | grep 'per pass' | sed 's/ *[0-9]* x .*per pass */=/; s/% (median.*//' | tr ' ' '_' | tr '\n' ' ')"
done; done
