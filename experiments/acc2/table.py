"""Summary of the runs in experiments/acc2/runs: final and last-5 test accuracy, worst epoch loss ratio."""

import json
import pathlib
import sys

root = pathlib.Path(__file__).parent / "runs"
print("| run | epochs | final % | last-5 % | max loss ratio (epoch) | wall s |")
print("|---|---|---|---|---|---|")
for d in sorted(p for p in root.iterdir() if p.is_dir() and (p / "metrics.jsonl").exists()):
    if len(sys.argv) > 1 and not any(s in d.name for s in sys.argv[1:]):
        continue
    m = [json.loads(line) for line in (d / "metrics.jsonl").read_text().splitlines()]
    acc = [r["test_accuracy"] for r in m]
    loss = [r["train_loss"] for r in m]
    ratios = [b / a for a, b in zip(loss, loss[1:], strict=False)]
    worst = max(range(len(ratios)), key=ratios.__getitem__) if ratios else None
    wall = sum(r["wall_s"] for r in m)
    tail = acc[-5:]
    print(
        f"| {d.name} | {len(m)} | {100 * acc[-1]:.1f} | {100 * sum(tail) / len(tail):.2f} | "
        f"{ratios[worst]:.2f} ({worst + 2}) | {wall:.0f} |"
        if ratios
        else f"| {d.name} | {len(m)} | {100 * acc[-1]:.1f} | - | - | {wall:.0f} |"
    )
