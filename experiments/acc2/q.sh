#!/usr/bin/env bash
# q.sh NAME [tools/train args...]: one software/mock run into runs/NAME (sequential use only)
cd /work/wt/acc2
export BSS2_HIL_CACHE=/tmp/cache-acc2 CI=true OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1
name=$1; shift
nice -n 10 .venv/bin/python tools/train "$@" --out experiments/acc2/runs/$name > experiments/acc2/runs/$name.log 2>&1
