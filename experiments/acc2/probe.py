"""Per-step record of a Trainer run for issue 19 (experiment script): what moves first when the loss jumps.

Runs ``training.Trainer`` unchanged and records, per training step: the batch loss, how many
samples have a silent label neuron and the share of the batch loss they carry, how many
samples have every output silent, the gradient norm per layer (before the optimizer step) and
the mean weight into each output neuron (after the step). Writes ``<out>/steps.json``.

    OMP_NUM_THREADS=1 .venv/bin/python experiments/acc2/probe.py --out experiments/acc2/runs/probe_s0 \
        -- --device software --config configs/yinyang-software.json --seed 0
"""

from __future__ import annotations

import argparse
import json
import pathlib

import torch
from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook

from training import epoch
from training.cli import train_main
from training.lif.parameters import LIFParameters

STEPS: list[dict] = []
_loss_of = epoch.Loop.loss_of


def _recording_loss_of(self, times, targets, samples=None):
    value = _loss_of(self, times, targets, samples)
    if torch.is_grad_enabled():  # a training step (evaluation runs under no_grad)
        c = self.config
        first = times["output"][..., 0].detach()
        clamped = torch.where(first < c.duration_s, first, torch.full_like(first, c.duration_s))
        per_sample = torch.nn.functional.cross_entropy(-clamped / c.tau_0, targets, reduction="none")
        silent = ~(first < c.duration_s)
        label_silent = silent.gather(1, targets.view(-1, 1)).squeeze(1)
        STEPS.append(
            {
                "loss": float(value.detach()),
                "ce_mean": float(per_sample.mean()),
                "label_silent": int(label_silent.sum()),
                "ce_label_silent_share": float(per_sample[label_silent].sum() / per_sample.sum().clamp(min=1e-30)),
                "all_silent": int(silent.all(dim=1).sum()),
                "out_silent_frac": [float(v) for v in silent.double().mean(dim=0)],
            }
        )
    return value


def _pre_step(optimizer, args, kwargs):
    if STEPS:
        STEPS[-1]["grad_norm"] = [float(p.grad.norm()) if p.grad is not None else 0.0 for p in _params(optimizer)]


def _post_step(optimizer, args, kwargs):
    if STEPS:
        out = _params(optimizer)[-1].detach()
        STEPS[-1]["w_out_mean"] = [float(v) for v in out.mean(dim=0)]
        STEPS[-1]["lr"] = optimizer.param_groups[0]["lr"]


def _params(optimizer):
    return [p for group in optimizer.param_groups for p in group["params"]]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True)
    p.add_argument("--floor", type=float, help="least drive at a simulated spike (units of theta; default sqrt(eps))")
    p.add_argument("train_args", nargs="*", help="arguments of tools/train (after --)")
    a = p.parse_args()
    epoch.Loop.loss_of = _recording_loss_of
    if a.floor is not None:
        dynamics = LIFParameters.dynamics
        LIFParameters.dynamics = lambda self, *args, **kw: dynamics(self, *args, **kw)._replace(floor_scale=a.floor)
    register_optimizer_step_pre_hook(_pre_step)
    register_optimizer_step_post_hook(_post_step)
    code = train_main([*a.train_args, "--out", a.out])
    pathlib.Path(a.out, "steps.json").write_text(json.dumps(STEPS))
    return code


if __name__ == "__main__":
    raise SystemExit(main())
