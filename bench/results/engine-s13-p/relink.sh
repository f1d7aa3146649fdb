#!/bin/sh
# relink.sh R TARGET OUT K: TARGET (pcache|bench_matmul) of $R/build relinked with a K-byte pad appended to dot_avx2.c
# (the object linked just before dot_avx512.o, so dot_avx512.o and all after it move). K=-1: plain relink.
# Compiles and links: run it as `flock -s /tmp/pcache-cpu.lock nice -n 5 relink.sh ...`, never inside an exclusive hold.
set -e
R=$1; tgt=$2; out=$3; k=$4; B=$R/build
W=/tmp/p/w_$(basename $out); rm -rf $W; mkdir -p $W; cp $B/libpc_kernels.a $W/
src=dot_avx2.c
{ echo "#include \"$R/src/kernels/cpu/$src\""
  [ "$k" -ge 0 ] && echo "__attribute__((used, noinline)) void pc_layout_pad_$k(void) { __asm__ volatile(\".skip $k\"); }"; } > $W/$src
cc -O3 -Wall -Wextra -Werror -D_GNU_SOURCE -fno-math-errno -std=c11 -I$R/include -I$R/src -c $W/$src -o $W/$src.o
ar r $W/libpc_kernels.a $W/$src.o 2>/dev/null
cd $B && L=$(sed "s# libpc_kernels.a # $W/libpc_kernels.a #g; s# -o $tgt # -o $out #" CMakeFiles/$tgt.dir/link.txt)
eval "$L"
