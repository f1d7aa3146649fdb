#!/bin/bash
# run.sh ROUNDS FILTER OUT VARIANT... : alternate variants (rotated order) within one exclusive hold
R=$1; F=$2; O=$3; shift 3
flock -x /tmp/pcache-cpu.lock bash -c '
R=$1; F=$2; O=$3; shift 3; vs=("$@"); n=${#vs[@]}
for r in $(seq 1 $R); do
  for i in $(seq 0 $((n-1))); do
    v=${vs[$(( (i + r) % n ))]}
    /tmp/F/b-$v/bench_matmul --stream 2 256 "$F" 2>&1 >/dev/null | awk -v v=$v -v r=$r "/^pass/{n=NF; print v, r, \$(n-1), \$n, \$2\"_\"\$3\"_\"\$4}" >> $O
  done
done' _ $R "$F" $O "$@"
