"""The one search loop every calibration step runs, and the ``Step`` it drives.

A step (calix style) has four parts: *prelude* (one-off settings and measurements; returns
its searches, one per configuration field), *configure* (write the searches' codes into the
working configuration), *measure* (one measurement of all neurons), *search* (feed the
measurement to the search algorithms: ``ModelSearch``, ``ProportionalCorrection`` or any
object with ``codes``, ``converged`` and ``update(codes, values, active)``), and a
*postlude* that records the outcome. ``run_step`` repeats configure -> measure -> search
until the searches have converged or the step's iterations are used up.
"""

from __future__ import annotations

import numpy as np

from hil.config import ChipConfig
from hil.logging import get_logger

from .state import WorkingState

log = get_logger("calibration")


class Step:
    """Base class of a calibration step; subclasses override the parts they need.

    ``name`` names the step in logs and the progress line; ``min_iterations``: convergence
    is checked from this iteration on.
    """

    name = "step"
    min_iterations = 0

    def iterations(self, state: WorkingState) -> int:
        """Most measurements the step may take."""
        return state.options.max_iterations

    def prelude(self, state: WorkingState) -> dict:
        """Set-up; returns the searches keyed by the configuration field they set."""
        return {}

    def configure(self, state: WorkingState, codes: dict) -> tuple[ChipConfig, dict]:
        """Write ``codes`` into the working configuration (selected neurons); returns the
        configuration to measure and the codes it holds per field."""
        applied = {field: state.set_codes(field, c) for field, c in codes.items()}
        return state.config, applied

    def measure(self, state: WorkingState, config: ChipConfig, iteration: int):
        """One measurement of ``config``; returns an observation for :meth:`search`."""
        raise NotImplementedError

    def values(self, observation) -> dict:
        """Field -> (512,) measured values (for the default :meth:`search`)."""
        raise NotImplementedError

    def search(self, state: WorkingState, searches: dict, codes: dict, observation, iteration: int) -> None:
        """Feed each search the values measured at ``codes`` (selected neurons move)."""
        values = self.values(observation)
        for field, s in searches.items():
            s.update(codes[field], values[field], active=state.selected)

    def done(self, state: WorkingState, searches: dict) -> bool:
        """True when every selected neuron has converged in every search."""
        return all(np.all(s.converged[state.selected]) for s in searches.values())

    def postlude(self, state: WorkingState, searches: dict, observation) -> None:
        """Record the outcome (final codes, measured values, reasons)."""


def run_step(step: Step, state: WorkingState) -> None:
    """prelude, then configure -> measure -> search until done, then postlude."""
    searches = step.prelude(state)
    observation = None
    for iteration in range(step.iterations(state)):
        config, applied = step.configure(state, {field: s.codes for field, s in searches.items()})
        observation = step.measure(state, config, iteration)
        step.search(state, searches, applied, observation, iteration)
        if iteration >= step.min_iterations and step.done(state, searches):
            break
    step.postlude(state, searches, observation)


def nanmedian(x) -> float:
    """Median of the finite entries (nan if none)."""
    x = np.asarray(x, np.float64)
    x = x[np.isfinite(x)]
    return float(np.median(x)) if x.size else float("nan")


def inv_sqrt(x):
    """The transform of time constants: ``1/sqrt(tau)`` is about linear in a bias current code."""
    return 1.0 / np.sqrt(x)


def residual_summary(values, target, relative=False) -> dict:
    """``n``, mean and std of the residuals (relative or in LSB) for a log event."""
    x = np.asarray(values)
    ok = np.isfinite(x)
    if not ok.any():
        return {"n": 0}
    r = (x[ok] / target[ok] - 1) if relative else (x[ok] - target[ok])
    return {"n": int(ok.sum()), "res_mean": round(float(r.mean()), 4), "res_std": round(float(r.std()), 4)}
