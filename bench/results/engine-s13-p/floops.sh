#!/bin/sh
# floops.sh BIN [FUNC]: loops (with vpdpbusd) inside the AVX-512 copy (the last one) of FUNC of BIN, via q6_loops.py
f=${2:-gemm_q6_K}
set -- $(nm -n $1 | grep -A1 " t $f\$" | tail -2 | awk '{print $1}') $1
objdump -d --no-show-raw-insn --start-address=0x$1 --stop-address=0x$2 $3 > /tmp/p/f.dis
echo "$f at 0x$1"; python3 /work/wt/kquant/bench/results/engine-s12-qwen/q6_loops.py /tmp/p/f.dis
