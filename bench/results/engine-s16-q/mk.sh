#!/bin/sh
# mk.sh NAME [REV]: /tmp/Q/NAME = kquant worktree (HEAD + uncommitted diff, or REV) + per-step timers, built
set -e
d=/tmp/Q/$1; rm -rf $d; mkdir $d
cd /work/wt/kquant
if [ -n "$2" ]; then git archive $2 | tar -x -C $d; else git archive HEAD | tar -x -C $d && git diff HEAD | (cd $d && patch -p1 -s); fi
ln -s /work/main/models $d/models
python3 /tmp/Q/prof.py $d
cd $d && flock -s /tmp/pcache-cpu.lock nice -n 5 sh -c 'cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null && cmake --build build -j2 --target pcache bench_membw' > $d.log 2>&1; tail -1 $d.log
