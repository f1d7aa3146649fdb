#!/bin/sh
# mv.sh N: prof's pcache with matmul.c from /tmp/ka/padN (a pad function appended) -> /tmp/ka/pc_padN_prof
set -e
n=$1; B=/tmp/ka/prof/build; W=/tmp/ka/mv_$n
mkdir -p $W
cc -O3 -Wall -Wextra -Werror -D_GNU_SOURCE -fno-math-errno -std=c11 -I/tmp/ka/prof/include -I/tmp/ka/prof/src -c /tmp/ka/pad$n/src/kernels/cpu/matmul.c -o $W/matmul.c.o
cp $B/libpc_kernels.a $W/libpc_kernels.a
ar r $W/libpc_kernels.a $W/matmul.c.o
cd $B && L=$(cat CMakeFiles/pcache.dir/link.txt | sed "s# libpc_kernels.a # $W/libpc_kernels.a #g; s# -o pcache # -o /tmp/ka/pc_pad${n}_prof #")
eval "$L"
