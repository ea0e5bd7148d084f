"""Per-epoch view of a probe run (steps.json): loss, label-silent events, CE share of label-silent samples."""

import json
import pathlib
import sys

import numpy as np

run = pathlib.Path(sys.argv[1])
steps = json.loads((run / "steps.json").read_text())
per = 157 if len(sys.argv) < 3 else int(sys.argv[2])
loss = np.array([s["loss"] for s in steps])
ls = np.array([s["label_silent"] for s in steps])
share = np.array([s["ce_label_silent_share"] for s in steps])
alls = np.array([s["all_silent"] for s in steps])
gn = np.array([s["grad_norm"] for s in steps])
wout = np.array([s["w_out_mean"] for s in steps])
print("epoch | loss | label-silent samples | CE share of label-silent | all-silent | max grad norm h/o | w_out mean")
for e in range(len(steps) // per):
    sl = slice(e * per, (e + 1) * per)
    weighted_share = np.average(share[sl], weights=loss[sl])
    print(
        f"{e + 1:3d} | {loss[sl].mean():.3f} | {ls[sl].sum():4d} | {weighted_share:.2f} | {alls[sl].sum():3d} | "
        f"{gn[sl, 0].max():.3g}/{gn[sl, 1].max():.3g} | {np.round(wout[(e + 1) * per - 1], 3)}"
    )
if len(sys.argv) > 3:  # step detail of one epoch
    e = int(sys.argv[3]) - 1
    for i in range(e * per - 10, e * per + per):
        s = steps[i]
        print(
            i,
            f"{s['loss']:.3f}",
            s["label_silent"],
            s["all_silent"],
            np.round(s["out_silent_frac"], 2),
            np.round(s["grad_norm"], 3),
            np.round(s["w_out_mean"], 3),
        )
