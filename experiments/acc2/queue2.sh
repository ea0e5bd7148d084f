#!/usr/bin/env bash
# waits for the running queue, then runs the next batch (sequential: one training at a time)
cd /work/wt/acc2
export BSS2_HIL_CACHE=/tmp/cache-acc2 CI=true OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1
while pgrep -u $UID -f "tools/train .*sw_m_b10_s2|sw_m_b10_s[12]" >/dev/null || [ ! -f experiments/acc2/runs/sw_m_b10_s2/report.json ]; do sleep 5; done
SW="--device software --config configs/yinyang-software.json"
nice -n 10 .venv/bin/python experiments/acc2/probe.py --out experiments/acc2/runs/probe_mb10_s0 -- $SW --seed 0 --set bump=0.1 > experiments/acc2/runs/probe_mb10_s0.log 2>&1
nice -n 10 .venv/bin/python experiments/acc2/probe.py --out experiments/acc2/runs/probe_base_s0 -- $SW --seed 0 --epochs 15 --set mask_silent_labels=false > experiments/acc2/runs/probe_base_s0.log 2>&1
for s in 0 1 2; do experiments/acc2/q.sh sw_m_b10_a10_s$s $SW --seed $s --set bump=0.1 --set alpha=0.01; done
