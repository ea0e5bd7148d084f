"""Summary of training runs (issue 19): final and last-5 test accuracy, worst epoch loss ratio, trials and wall time.

.venv/bin/python experiments/table.py RUNS_DIR [NAME_PART ...]   (default RUNS_DIR: $RUNS or /tmp/runs)
"""

import json
import os
import pathlib
import sys

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("RUNS", "/tmp/runs"))
parts = sys.argv[2:]
print("| run | epochs | final % | last-5 % | max loss ratio (epoch) | trials | train+eval wall s |")
print("|---|---|---|---|---|---|---|")
for d in sorted(p for p in root.iterdir() if p.is_dir() and (p / "metrics.jsonl").exists()):
    if parts and not any(s in d.name for s in parts):
        continue
    m = [json.loads(line) for line in (d / "metrics.jsonl").read_text().splitlines()]
    if not m:
        continue
    acc = [r["test_accuracy"] for r in m]
    loss = [r["train_loss"] for r in m]
    ratios = [b / a for a, b in zip(loss, loss[1:], strict=False)] or [float("nan")]
    worst = max(range(len(ratios)), key=ratios.__getitem__)
    tail = acc[-5:]
    report = d / "report.json"
    totals = json.loads(report.read_text())["device_totals"] if report.exists() else None
    trials = (totals or {}).get("trials")
    print(
        f"| {d.name} | {len(m)} | {100 * acc[-1]:.1f} | {100 * sum(tail) / len(tail):.2f} | "
        f"{ratios[worst]:.2f} ({worst + 2}) | {trials} | {sum(r['wall_s'] for r in m):.0f} |"
    )
