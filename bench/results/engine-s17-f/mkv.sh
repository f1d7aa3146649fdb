#!/bin/bash
# mkv.sh NAME "CFLAGS" : build bench_matmul variant into /tmp/F/b-NAME
set -e
cd /work/wt/kquant
d=/tmp/F/b-$1
flock -s /tmp/pcache-cpu.lock nice -n 5 cmake -S . -B $d -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_FLAGS="$2" >/dev/null
flock -s /tmp/pcache-cpu.lock nice -n 5 cmake --build $d -j2 --target bench_matmul >/dev/null
ls -la $d/bench_matmul
