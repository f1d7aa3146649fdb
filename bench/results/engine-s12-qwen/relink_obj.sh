#!/bin/sh
# relink_obj.sh OUT SPEC...: the release pcache of $R/build (default this worktree; R=/tmp/ka/prof: the profiled tree)
# relinked with each SPEC = "SRC K [FLAGS]" (SRC under src/kernels/cpu) recompiled with a pad function (.skip K + ret:
# K+1 bytes rounded up to 16; K=-1: no pad) appended and FLAGS added, replacing its object in libpc_kernels.a.
set -e
out=$1; shift; R=${R:-/work/wt/kquant}; B=$R/build
W=/tmp/a2/w_$(basename $out); rm -rf $W; mkdir -p $W; cp $B/libpc_kernels.a $W/
for spec in "$@"; do
  set -- $spec; src=$1; k=$2; shift 2
  { echo "#include \"$R/src/kernels/cpu/$src\""
    [ "$k" -ge 0 ] && echo "__attribute__((used, noinline)) void pc_layout_pad_$k(void) { __asm__ volatile(\".skip $k\"); }"; } > $W/$src
  cc -O3 -Wall -Wextra -Werror -D_GNU_SOURCE -fno-math-errno -std=c11 "$@" -I$R/include -I$R/src -c $W/$src -o $W/$src.o
  ar r $W/libpc_kernels.a $W/$src.o
done
cd $B && L=$(sed "s# libpc_kernels.a # $W/libpc_kernels.a #g; s# -o pcache # -o $out #" CMakeFiles/pcache.dir/link.txt)
eval "$L"
