"""Per-neuron searches for the CapMem code that brings a measured value to its target.

All searches work on every neuron at once: ``measure(codes) -> values`` takes a (n,) integer
code array and returns a (n,) float array (``nan`` where a neuron's measurement failed).
Transfer functions are assumed monotonic per neuron; the direction may differ between
parameters (``increasing``).

- :func:`binary_search`: classic bisection over ``[low, high]``, ``ceil(log2(range))`` steps.
- :func:`noisy_binary_search`: bisection with a random offset added to each test code, so
  neighbouring CapMem cells do not all hold the same value while searching (the offset
  shrinks with the bracket, the last steps are exact).
- :class:`ProportionalCorrection`: one correction per measurement for cells whose slope is
  known (digital counters, a potential refined after the search).
- :class:`~calibration.model_search.ModelSearch` (its own module): per-neuron line models.
- :func:`predict_codes`: the one-shot model prediction from a few probe points.

Every search returns a :class:`SearchResult` with a success flag and a reason per neuron.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs
import numpy as np


@attrs.frozen(eq=False)
class SearchResult:
    """codes: (n,) int final codes; values: (n,) last measured values at ``codes``;
    success: (n,) bool; reasons: (n,) str ("" where successful); steps: measurements used."""

    codes: np.ndarray
    values: np.ndarray
    success: np.ndarray
    reasons: np.ndarray
    steps: int


def as_array(x, n, dtype=np.float64):
    return np.broadcast_to(np.asarray(x, dtype=dtype), (n,)).copy()


def judge(codes, values, target, tolerance, low, high, increasing):
    """Success flag and reason per neuron after a search."""
    n = codes.size
    res = values - target
    success = np.isfinite(values) & (np.abs(res) <= tolerance)
    reasons = np.full(n, "", dtype=object)
    nan = ~np.isfinite(values)
    reasons[nan] = "measurement failed at the final code"
    bad = ~success & ~nan
    # out of reach: at a bound and the residual says the target lies beyond it
    too_low = res < 0  # value below target: needs larger value
    wants_up = np.where(increasing, too_low, ~too_low)  # needs a larger code
    at_high = codes >= high
    at_low = codes <= low
    beyond = bad & ((wants_up & at_high) | (~wants_up & at_low))
    for i in np.flatnonzero(beyond):
        reasons[i] = f"target {target[i]:.4g} out of reach: {values[i]:.4g} at code {codes[i]} (range end)"
    for i in np.flatnonzero(bad & ~beyond):
        reasons[i] = (
            f"did not converge: {values[i]:.4g} at code {codes[i]}, target {target[i]:.4g} +- {tolerance[i]:.3g}"
        )
    return success, reasons


def binary_search(
    measure: Callable[[np.ndarray], np.ndarray],
    target,
    *,
    n: int,
    low: int = 0,
    high: int = 1022,
    increasing=True,
    tolerance=np.inf,
    noise: int = 0,
    exact_steps: int = 2,
    rng: np.random.Generator | None = None,
) -> SearchResult:
    """Vectorised (noisy) binary search of ``measure`` over integer codes ``low..high``.

    Each step tests ``mid = (lo + hi) // 2`` (plus, with ``noise > 0``, a random integer
    offset of at most ``min(noise, (hi - lo) // 4)``, none in the last ``exact_steps``
    steps) and keeps the half that contains the target. A final measurement at the chosen
    code gives ``values``; ``tolerance`` (absolute, scalar or per neuron) decides success.
    """
    target = as_array(target, n)
    tolerance = as_array(tolerance, n)
    increasing = as_array(increasing, n, bool)
    lo = np.full(n, low, np.int64)
    hi = np.full(n, high, np.int64)
    steps = int(np.ceil(np.log2(max(high - low, 1)))) + 1
    if noise and rng is None:
        rng = np.random.default_rng(0)
    used = 0
    for step in range(steps + 8):  # noisy test codes do not halve exactly: allow a few more steps
        if np.all(hi - lo <= 1):
            break
        mid = (lo + hi) // 2
        if noise and step < steps - exact_steps and np.any(hi - lo > 4):
            amp = np.minimum(noise, (hi - lo) // 4)
            mid = mid + np.rint(rng.uniform(-1, 1, n) * amp).astype(np.int64)
            mid = np.clip(mid, lo + 1, np.maximum(hi - 1, lo + 1))
        values = np.asarray(measure(mid), dtype=np.float64)
        used += 1
        below = values < target  # value too small
        go_up = np.where(increasing, below, ~below) & np.isfinite(values)
        go_down = ~go_up & np.isfinite(values)
        lo = np.where(go_up, mid, lo)
        hi = np.where(go_down, mid, hi)
    # choose the better end of the final bracket: measure both once
    v_lo = np.asarray(measure(lo), dtype=np.float64)
    v_hi = np.asarray(measure(hi), dtype=np.float64)
    used += 2
    pick_hi = np.abs(v_hi - target) < np.abs(v_lo - target)
    pick_hi |= ~np.isfinite(v_lo)
    codes = np.where(pick_hi, hi, lo)
    values = np.where(pick_hi, v_hi, v_lo)
    success, reasons = judge(codes, values, target, tolerance, low, high, increasing)
    return SearchResult(codes, values, success, reasons, used)


def noisy_binary_search(measure, target, *, n: int, noise: int = 8, rng=None, **kwargs) -> SearchResult:
    """:func:`binary_search` with random offsets on the test codes (see there)."""
    return binary_search(
        measure, target, n=n, noise=noise, rng=rng if rng is not None else np.random.default_rng(0), **kwargs
    )


def fit_lines(x: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None):
    """Per-column weighted least-squares lines through points ``x, y`` of shape (k, n).

    Non-finite ``y`` are ignored. Returns ``(intercept, slope)``, each (n,); ``nan`` slope
    where fewer than two distinct valid points exist.
    """
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    w = np.ones_like(y) if weights is None else np.asarray(weights, np.float64).copy()
    w = np.where(np.isfinite(y) & np.isfinite(x), w, 0.0)
    y0 = np.where(w > 0, y, 0.0)
    x0 = np.where(w > 0, x, 0.0)
    sw = w.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mx = (w * x0).sum(0) / sw
        my = (w * y0).sum(0) / sw
        sxx = (w * (x0 - mx) ** 2).sum(0)
        sxy = (w * (x0 - mx) * (y0 - my)).sum(0)
        slope = np.where(sxx > 1e-12, sxy / sxx, np.nan)
    return my - slope * mx, slope


class ProportionalCorrection:
    """Corrections for cells with a known linear response ``slope`` (value per code, > 0):
    each :meth:`update` moves every neuron whose value is off by more than ``settle``
    (absolute, or relative with ``relative``) by ``rint((target - value) / slope)`` codes,
    clipped to ``low..high``. ``converged``: no neuron had to move at the last update."""

    def __init__(self, target, initial_codes, slope, settle, *, relative=False, low=0, high=1022):
        self.codes = np.asarray(initial_codes, np.int64).copy()
        self.n = self.codes.size
        self.target = as_array(target, self.n)
        self.slope = as_array(slope, self.n)
        self.settle, self.relative, self.low, self.high = settle, relative, low, high
        self.converged = np.zeros(self.n, bool)
        self.values = np.full(self.n, np.nan)

    def update(self, codes, values, active=None) -> np.ndarray:
        codes = np.asarray(codes, np.int64)
        values = np.asarray(values, np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            off = np.abs(values / self.target - 1) if self.relative else np.abs(values - self.target)
            step = np.rint((self.target - values) / self.slope)
        move = np.isfinite(values) & (off > self.settle) & (self.slope > 0)
        if active is not None:
            move &= np.asarray(active, bool)
        moved = np.clip(codes + np.nan_to_num(step), self.low, self.high).astype(np.int64)
        self.codes = np.where(move, moved, codes)
        self.converged = ~move
        self.values = values
        return self.codes


def predict_codes(codes, values, target, *, low=0, high=1022, transform=None):
    """Model-based prediction from a few probe points: fit a line per neuron through
    ``(codes[k], transform(values[k]))`` (arrays (k, n)) and invert it at ``target``.

    Returns ``(codes, reachable)``: rounded codes clipped to ``low..high`` and whether the
    unclipped prediction lay inside the range.
    """
    tf = transform or (lambda v: v)
    with np.errstate(divide="ignore", invalid="ignore"):
        y = np.asarray(tf(np.asarray(values, np.float64)))
        t = np.asarray(tf(np.asarray(target, np.float64)))
    intercept, slope = fit_lines(codes, y)
    with np.errstate(divide="ignore", invalid="ignore"):
        pred = (t - intercept) / slope
    reachable = np.isfinite(pred) & (pred >= low - 0.5) & (pred <= high + 0.5)
    pred = np.where(np.isfinite(pred), pred, (low + high) / 2)
    return np.clip(np.rint(pred), low, high).astype(np.int64), reachable
