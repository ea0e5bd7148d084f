#!/usr/bin/env bash
# q.sh NAME [tools/train args...]: one mock run into /tmp/acc3/NAME (sequential use only; log NAME.log)
cd "$(dirname "$0")/../.."
export BSS2_HIL_CACHE=/tmp/cache-acc3 CI=true OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1
name=$1; shift
mkdir -p /tmp/acc3
nice -n 10 .venv/bin/python tools/train "$@" --out /tmp/acc3/$name > /tmp/acc3/$name.log 2>&1
