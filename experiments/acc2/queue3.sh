#!/usr/bin/env bash
# mock runs after the software batch (sequential: one process at a time)
cd /work/wt/acc2
export BSS2_HIL_CACHE=/tmp/cache-acc2 CI=true OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1
while pgrep -u $UID -f "queue2.sh" >/dev/null; do sleep 5; done
R=experiments/acc2/runs
SW="--device software --config configs/yinyang-software.json"
nice -n 10 .venv/bin/python experiments/acc2/probe.py --out $R/probe_base_s0 -- $SW --seed 0 --epochs 15 --set mask_silent_labels=false > $R/probe_base_s0.log 2>&1
nice -n 10 .venv/bin/python experiments/acc2/probe.py --out $R/probe_mb10_s0 -- $SW --seed 0 --set bump=0.1 > $R/probe_mb10_s0.log 2>&1
experiments/acc2/q.sh hw_base_s0 --seed 0 --set mask_silent_labels=false
[ -f $R/cal_wide.json ] || nice -n 10 .venv/bin/python tools/calibrate --v-threshold 220 --weight-gain-exc 2 --weight-gain-inh 2 --out $R/cal_wide --quiet > $R/cal_wide.log 2>&1
experiments/acc2/q.sh hw_m_s0 --seed 0
experiments/acc2/q.sh hw_wide_m_s0 --seed 0 --calibration $R/cal_wide.json
