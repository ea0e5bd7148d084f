"""The verdict per neuron and parameter: a neuron fails a parameter when its final measurement
is off by more than the tolerance plus twice its measurement error, when its measurement
failed, or when it was not selected. Tolerances: ``CalibrationOptions.tolerance``."""

from __future__ import annotations

import numpy as np

from .options import deviation, error_scale, is_relative
from .state import N, WorkingState
from .target import PARAMETERS


def judge(state: WorkingState) -> dict:
    """Parameter -> (512,) bool success masks; records a reason for every failure."""
    success = {}
    for p in PARAMETERS:
        v = state.measured.get(p, np.full(N, np.nan))
        t = state.target_of(p)
        sem = np.nan_to_num(state.errors.get(p, np.zeros(N)), nan=0.0)
        tol = state.options.tolerance(p)
        unit = "relative" if is_relative(p) else "LSB"
        ok = np.isfinite(v) & (np.abs(deviation(v, t, p)) <= tol + 2 * error_scale(sem, t, p))
        success[p] = ok & state.selected
        for i in np.flatnonzero(state.selected & ~ok & np.isfinite(v)):
            state.fail(
                p,
                np.arange(N) == i,
                f"measured {v[i]:.4g} vs target {t[i]:.4g}: off by more than {tol:g} {unit} "
                "(out of reach or not converged)",
            )
        state.fail(p, state.selected & ~np.isfinite(v), "measurement failed")
        state.fail(p, ~state.selected, "not calibrated (not in `neurons`)")
    return success


def combine_reasons(state: WorkingState, success: dict) -> np.ndarray:
    """(512,) one line per neuron: ``"param: reason; ..."`` over the parameters it failed."""
    out = np.full(N, "", dtype=object)
    for i in range(N):
        parts = [
            f"{p}: {state.reasons[p][i]}"
            for p in success
            if not success[p][i] and p in state.reasons and state.reasons[p][i]
        ]
        out[i] = "; ".join(parts)
    return out
