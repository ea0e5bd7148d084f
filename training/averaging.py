"""Exponential moving average of weights, for evaluating through noisy training steps.

On a noisy chip every gradient step carries measurement noise, so the weights wander
around a good point from step to step; their running average sits closer to it. Training
updates the raw weights; evaluation swaps the average in (``applied``).
"""

from __future__ import annotations

import contextlib

import torch


class WeightAverage:
    """``avg <- decay * avg + (1 - decay) * w`` after every ``update``, per parameter.

    ``decay`` in [0, 1): 0 disables averaging (``applied`` leaves the weights alone). The
    average starts at the initial weights and is bias-corrected (divided by ``1 - decay**n``
    after ``n`` updates, as in Adam), so early epochs see the mean of the steps so far.
    """

    def __init__(self, params, decay: float):
        if not 0 <= decay < 1:
            raise ValueError(f"weight average decay = {decay!r}; allowed: 0 <= decay < 1")
        self.params = list(params)
        self.decay = float(decay)
        self.steps = 0
        self._sums = [torch.zeros_like(p, dtype=torch.float64) for p in self.params]

    @property
    def enabled(self) -> bool:
        return self.decay > 0

    @torch.no_grad()
    def update(self) -> None:
        if not self.enabled:
            return
        self.steps += 1
        for s, p in zip(self._sums, self.params, strict=True):
            s.mul_(self.decay).add_(p.detach().double(), alpha=1 - self.decay)

    def averaged(self) -> list[torch.Tensor]:
        """The bias-corrected averages, one per parameter (the weights themselves before any update)."""
        if not self.steps:
            return [p.detach().clone() for p in self.params]
        correction = 1 - self.decay**self.steps
        return [(s / correction).to(p.dtype) for s, p in zip(self._sums, self.params, strict=True)]

    @contextlib.contextmanager
    def applied(self):
        """Inside the block the parameters hold their averages; the raw weights come back after."""
        if not self.enabled:
            yield
            return
        raw = [p.detach().clone() for p in self.params]
        with torch.no_grad():
            for p, a in zip(self.params, self.averaged(), strict=True):
                p.copy_(a)
        try:
            yield
        finally:
            with torch.no_grad():
                for p, r in zip(self.params, raw, strict=True):
                    p.copy_(r)

    def state_dict(self) -> dict:
        return {"decay": self.decay, "steps": self.steps, "sums": [s.clone() for s in self._sums]}

    def load_state_dict(self, state: dict) -> None:
        if state["decay"] != self.decay or len(state["sums"]) != len(self._sums):
            raise ValueError(
                f"weight average state has decay {state['decay']} over {len(state['sums'])} tensors; "
                f"this run uses decay {self.decay} over {len(self._sums)}"
            )
        self.steps = int(state["steps"])
        for s, saved in zip(self._sums, state["sums"], strict=True):
            s.copy_(saved)
