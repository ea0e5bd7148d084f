"""Data-parallel training over paced mock chips (tools/rig + tools/train --nproc N).

``dist.scaling``: one epoch of 1,280 Yin-Yang samples on 1, 2 and 4 mock chips served over
TCP with ``--pace realtime --overhead OVERHEAD_S`` (every run lasts at least its trials' chip
time plus a fixed per-run overhead, as on a real chip, where building, sending and reading
back a run costs far more than its 64 x 50 us of chip time). Two schedules: *strong*
(``batch_scope = "global"``: 64 samples per step split across the ranks, same steps, smaller
runs per chip) and *weak* (``batch_scope = "per_rank"``: 64 samples per chip per step, fewer
steps). Figures from the run's metrics.jsonl
(rank means): training samples/s (epoch wall time minus evaluation), device wall time
(configure + run), host backward, all-reduce/gather time (includes waiting for the slowest
rank); speed-ups against one rank.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import tempfile

from bench import case

ROOT = pathlib.Path(__file__).resolve().parents[2]
OVERHEAD_S = float(os.environ.get("BENCH_DIST_OVERHEAD_S", "0.5"))  # per-run overhead of a paced chip (docs/scaling.md)
SAMPLES, BATCH = 1280, 64  # 5 steps per epoch at 4 ranks in the weak schedule


def run_rig(chips: int, scope: str, out: pathlib.Path, *, overhead: float = OVERHEAD_S, n_hidden: int = 120) -> dict:
    cfg = {
        "train_size": SAMPLES,
        "test_size": 64,
        "n_hidden": n_hidden,
        "epochs": 1,
        "batch_size": BATCH,
        "batch_scope": scope,
        "grad_check_batches": 0,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "cfg.json").write_text(json.dumps(cfg))
    cmd = [
        sys.executable,
        str(ROOT / "tools/rig"),
        "--chips",
        str(chips),
        "--noise",
        "off",
        "--pace",
        "realtime",
        "--overhead",
        str(overhead),
        "--",
        "--config",
        str(out / "cfg.json"),
        "--out",
        str(out / "run"),
        "--quiet",
    ]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    if p.returncode != 0:
        raise RuntimeError(f"rig --chips {chips} failed: {p.stderr[-2000:]}")
    m = json.loads((out / "run" / "metrics.jsonl").read_text().splitlines()[-1])
    train_s = m["wall_s"] - m["eval_s"]
    batch = BATCH * chips if scope == "per_rank" else BATCH
    steps = -(-SAMPLES // batch)
    return {
        "ranks": chips,
        "global_batch": batch,
        "steps": steps,
        "train_s": round(train_s, 3),
        "samples_per_s": round(SAMPLES / train_s, 1),
        "device_s": round(m["device_s"], 3),
        "backward_s": round(m["backward_s"], 3),
        "allreduce_s": round(m["allreduce_s"], 3),
        "other_host_s": round(train_s - m["device_s"] - m["backward_s"] - m["allreduce_s"], 3),
        "device_s_per_step": round(m["device_s"] / steps, 4),
    }


@case("dist.scaling")
def scaling(bench):
    ranks = (1, 2) if bench.quick else (1, 2, 4)
    figures = {"overhead_s": OVERHEAD_S, "samples": SAMPLES, "strong": {}, "weak": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for r in ranks:
            figures["strong"][r] = run_rig(r, "global", pathlib.Path(tmp) / f"strong{r}")
            figures["weak"][r] = (
                figures["strong"][r] if r == 1 else run_rig(r, "per_rank", pathlib.Path(tmp) / f"weak{r}")
            )
    for mode in ("strong", "weak"):
        base = figures[mode][1]["samples_per_s"]
        figures[f"speedup_{mode}"] = {r: round(figures[mode][r]["samples_per_s"] / base, 2) for r in ranks}
    figures["targets"] = {"2": 1.8, "4": 3.2}
    return figures
