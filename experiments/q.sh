#!/usr/bin/env bash
# q.sh NAME [tools/train args...]: one training run into $RUNS/NAME (default /tmp/runs), its output in
# $RUNS/NAME.log; one thread, low priority, the calibration cache in $BSS2_HIL_CACHE (default /tmp/cache-runs).
cd "$(dirname "$0")/.."
RUNS=${RUNS:-/tmp/runs}
export BSS2_HIL_CACHE=${BSS2_HIL_CACHE:-/tmp/cache-runs} CI=true OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1
name=$1; shift
mkdir -p "$RUNS"
nice -n 10 .venv/bin/python tools/train "$@" --out "$RUNS/$name" > "$RUNS/$name.log" 2>&1
