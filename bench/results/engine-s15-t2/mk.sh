#!/bin/sh
# mk.sh NAME [tw]: /tmp/T2/NAME = worktree HEAD + its uncommitted diff + per-token timers (+ team timers), built
set -e
d=/tmp/T2/$1; rm -rf $d; mkdir $d
cd /work/wt/smol && git archive HEAD | tar -x -C $d && git diff | (cd $d && patch -p1 -s)
ln -s /work/main/models $d/models
python3 /tmp/T2/prof.py $d
for x in $2; do python3 /tmp/T2/$x.py $d; done
cd $d && flock -s /tmp/pcache-cpu.lock nice -n 5 sh -c 'cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null && cmake --build build -j2 --target pcache' > $d.log 2>&1; tail -1 $d.log
