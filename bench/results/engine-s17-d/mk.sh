#!/bin/sh
# mk.sh NAME [REV]: /tmp/D/NAME = smol worktree (HEAD + uncommitted diff) + per-step timers + parity knob, built
set -e
d=/tmp/D/$1; rm -rf $d; mkdir $d
cd /work/wt/smol
if [ -n "$2" ]; then git archive $2 | tar -x -C $d; else git archive HEAD | tar -x -C $d && git diff HEAD | (cd $d && patch -p1 -s); fi
ln -s /work/main/models $d/models
python3 /tmp/D/prof.py $d
python3 /tmp/D/twp.py $d
[ -n "$TQ" ] && python3 /tmp/D/teamq.py $d
cd $d && flock -s /tmp/pcache-cpu.lock nice -n 5 sh -c 'cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null && cmake --build build -j2 --target pcache bench_membw' > $d.log 2>&1; tail -1 $d.log
