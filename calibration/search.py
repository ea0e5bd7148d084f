"""Per-neuron searches for the CapMem code that brings a measured value to its target.

All searches work on every neuron at once: ``measure(codes) -> values`` takes a (n,) integer
code array and returns a (n,) float array (``nan`` where a neuron's measurement failed).
Transfer functions are assumed monotonic per neuron; the direction may differ between
parameters (``increasing``) and is detected from the data by the model-based search.

- :func:`binary_search`: classic bisection over ``[low, high]``, ``ceil(log2(range))`` steps.
- :func:`noisy_binary_search`: bisection with a random offset added to each test code, so
  neighbouring CapMem cells do not all hold the same value while searching (the offset
  shrinks with the bracket, the last steps are exact).
- :class:`ModelSearch`: fit a per-neuron line ``y = a + b * code`` (in a transformed space
  where the transfer function is close to linear, e.g. ``1 / tau`` for time constants)
  through the points measured so far, invert it, and keep a bracket so a bad model never
  leaves the region known to contain the answer. Two to four measurements usually suffice.

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


def _as_array(x, n, dtype=np.float64):
    return np.broadcast_to(np.asarray(x, dtype=dtype), (n,)).copy()


def _judge(codes, values, target, tolerance, low, high, increasing):
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
    target = _as_array(target, n)
    tolerance = _as_array(tolerance, n)
    increasing = _as_array(increasing, n, bool)
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
    success, reasons = _judge(codes, values, target, tolerance, low, high, increasing)
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


class ModelSearch:
    """Model-based search: predict each neuron's code from a line fitted to its measurements.

    ``transform`` maps measured values to a space where the transfer function is about
    linear in the code (identity for potentials, ``1/x`` for time constants). Use as::

        s = ModelSearch(target, initial_codes, low=0, high=1022, transform=...)
        for _ in range(iterations):
            codes = s.codes
            s.update(codes, measure(codes))   # proposes the next codes
            if s.converged.all(): break
        result = s.result(tolerance)

    Until two distinct codes have been measured, the slope comes from ``slope_guess``
    (in transformed units per code, scalar or per neuron) or, with ``through_origin``,
    from the line through the origin. A per-neuron bracket of codes known to lie on either
    side of the target bounds every prediction; predictions outside it fall back to
    bisecting the bracket. ``max_step`` limits the change per update (codes).
    """

    def __init__(
        self,
        target,
        initial_codes,
        *,
        low: int = 0,
        high: int = 1022,
        transform: Callable[[np.ndarray], np.ndarray] | None = None,
        slope_guess=None,
        through_origin: bool = False,
        settle=0.0,
        max_step: int | None = None,
        history: int = 6,
        probes=(),
        closeness: float = 0.3,
        min_spread: float = 2.0,
        min_span: float = 0.04,
        bracket_margin=None,
        uniform_until: float | None = None,
        prior_band=(0.25, 4.0),
    ):
        codes = np.asarray(initial_codes, np.int64).copy()
        self.n = codes.size
        self.low, self.high = int(low), int(high)
        self.transform = transform or (lambda v: v)
        self.target_value = _as_array(target, self.n)
        with np.errstate(divide="ignore", invalid="ignore"):
            self.target = np.asarray(self.transform(self.target_value), np.float64)
        self.slope_guess = None if slope_guess is None else _as_array(slope_guess, self.n)
        self.through_origin = through_origin
        self.settle = _as_array(settle, self.n)  # |value - target| below which a neuron is left alone
        self.max_step = max_step
        self.history = history
        self.closeness = closeness  # relative distance from the target at which a point's weight halves
        self.min_spread = min_spread  # codes; a slope from points closer than this is not trusted
        self.uniform_until = uniform_until
        self.prior_band = prior_band  # fitted slope / prior slope outside this band: keep the prior
        self.min_span = min_span  # relative span in transformed units needed to re-estimate a known slope
        self.bracket_margin = 10.0 * self.settle if bracket_margin is None else _as_array(bracket_margin, self.n)
        self.codes = np.clip(codes, self.low, self.high)
        self.probes = [
            np.clip(np.broadcast_to(np.asarray(p, np.int64), (self.n,)), self.low, self.high) for p in probes
        ]
        self.xs: list[np.ndarray] = []
        self.ys: list[np.ndarray] = []
        self.values: list[np.ndarray] = []
        self.bracket_lo = np.full(self.n, self.low - 1, np.int64)  # code known to give y < target (if increasing)
        self.bracket_hi = np.full(self.n, self.high + 1, np.int64)
        self.converged = np.zeros(self.n, bool)
        self.best_codes = self.codes.copy()
        self.best_values = np.full(self.n, np.nan)
        self.slope = np.full(self.n, np.nan)
        self.fitted = np.zeros(self.n, bool)  # slope estimated from the data (not a guess)

    # ---------------------------------------------------------------------------------------
    def update(self, codes, values, active=None) -> np.ndarray:
        """Record ``values`` measured at ``codes`` and propose the next ``self.codes``."""
        codes = np.asarray(codes, np.int64)
        values = np.asarray(values, np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            y = np.asarray(self.transform(values), np.float64)
        y = np.where(np.isfinite(y), y, np.nan)
        self.xs.append(codes.copy())
        self.ys.append(y)
        self.values.append(values)
        # best so far
        err = np.abs(values - self.target_value)
        better = np.isfinite(err) & ~(np.abs(self.best_values - self.target_value) <= err)
        self.best_codes = np.where(better, codes, self.best_codes)
        self.best_values = np.where(better, values, self.best_values)
        self.converged = np.isfinite(values) & (err <= self.settle)

        # slope: a line through the recent history (points near the target weigh more),
        # else the guess; a slope from points too close together is not trusted
        k = min(self.history, len(self.xs))
        X = np.array(self.xs[-k:], np.float64)
        Y = np.array(self.ys[-k:])
        scale = np.abs(self.target) * self.closeness + 1e-30
        with np.errstate(invalid="ignore", over="ignore"):
            w = 1.0 / (1.0 + ((Y - self.target) / scale) ** 2)
        w = np.where(np.isfinite(Y), w, 0.0)
        intercept, slope = fit_lines(X, Y, w)
        sw = w.sum(0)
        with np.errstate(invalid="ignore", divide="ignore"):
            xm = (w * np.nan_to_num(X)).sum(0) / sw
            ym = (w * np.nan_to_num(Y)).sum(0) / sw
            spread = np.sqrt((w * (np.nan_to_num(X) - xm) ** 2).sum(0) / sw)
        if self.slope_guess is not None:
            fallback = self.slope_guess
        elif self.through_origin:
            with np.errstate(divide="ignore", invalid="ignore"):
                fallback = np.where(codes != 0, y / codes, np.nan)
        else:
            fallback = np.full(self.n, np.nan)
        known = np.isfinite(self.slope)
        with np.errstate(invalid="ignore", divide="ignore"):
            # weighted spread of the points in y: a slope from points that differ by noise only is noise
            y_span = np.sqrt((w * (np.nan_to_num(Y) - ym) ** 2).sum(0) / sw)
        # a slope from points that barely differ is mostly noise: keep the earlier one then
        untrusted = ~np.isfinite(slope) | (slope == 0) | (spread < self.min_spread)
        untrusted |= ~(y_span >= self.min_span * np.abs(self.target))
        untrusted |= self.fitted & (np.sign(slope) != np.sign(self.slope))
        if self.through_origin or self.slope_guess is not None:
            # a fitted slope far from the prior (sign or a factor 4) is more likely noise than physics
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = slope / fallback
            untrusted |= np.isfinite(ratio) & ((ratio < self.prior_band[0]) | (ratio > self.prior_band[1]))
        self.fitted |= ~untrusted
        slope = np.where(untrusted, np.where(known, self.slope, fallback), slope)
        self.slope = np.where(np.isfinite(slope) & (slope != 0), slope, self.slope)
        increasing = self.slope > 0
        anchor_x = np.where(np.isfinite(xm), xm, codes)
        anchor_y = np.where(np.isfinite(ym), ym, y)

        # bracket from every measurement so far that lies clearly on one side of the target
        # (needs the slope's sign; recomputed from the whole history)
        valid = np.isfinite(y)
        sign_known = np.isfinite(self.slope)
        lo = np.full(self.n, self.low - 1, np.int64)
        hi = np.full(self.n, self.high + 1, np.int64)
        for xk, yk, vk in zip(self.xs, self.ys, self.values):
            with np.errstate(invalid="ignore"):
                clear = sign_known & np.isfinite(yk) & (np.abs(vk - self.target_value) > self.bracket_margin)
                below = yk < self.target
            needs_up = clear & np.where(increasing, below, ~below)
            needs_down = clear & ~np.where(increasing, below, ~below)
            lo = np.where(needs_up & (xk > lo), xk, lo)
            hi = np.where(needs_down & (xk < hi), xk, hi)
        inverted = lo >= hi  # noise or a wrong sign: forget the bracket
        self.bracket_lo = np.where(inverted, self.low - 1, lo)
        self.bracket_hi = np.where(inverted, self.high + 1, hi)

        # prediction: from the weighted mean of the recent points along the slope
        with np.errstate(divide="ignore", invalid="ignore"):
            pred = anchor_x + (self.target - anchor_y) / self.slope
        ok = np.isfinite(pred)
        pred = np.where(ok, pred, codes)
        if self.max_step is not None:
            pred = np.clip(pred, codes - self.max_step, codes + self.max_step)
        new = np.rint(pred).astype(np.int64)
        # keep inside the open bracket; bisect when the model leaves it
        inside = (new >= self.bracket_lo) & (new <= self.bracket_hi)
        has_both = (self.bracket_lo >= self.low) & (self.bracket_hi <= self.high)
        bisect = (self.bracket_lo + self.bracket_hi) // 2
        new = np.where(~inside & has_both, bisect, new)
        new = np.where(~inside & ~has_both, np.clip(new, self.bracket_lo + 1, self.bracket_hi - 1), new)
        new = np.clip(new, self.low, self.high)
        act = np.ones(self.n, bool) if active is None else np.asarray(active, bool)
        va = valid & act
        if self.uniform_until is not None and va.any():
            # far from the target, single measurements may be poor (e.g. tiny signals):
            # move all neurons together (the median proposal) until the median is close
            with np.errstate(divide="ignore", invalid="ignore"):
                rel = np.median(np.abs(values[va] / self.target_value[va] - 1))
            if rel > self.uniform_until:
                new = np.full(self.n, int(np.median(new[va])))
        # neurons without any valid measurement yet follow the others (median proposal)
        never = ~np.any(np.isfinite(np.array(self.ys)), axis=0)
        if never.any() and va.any():
            new = np.where(never, int(np.median(new[va])), new)
        if len(self.xs) <= len(self.probes):  # fixed probe codes first
            new = self.probes[len(self.xs) - 1].copy()
        keep = (self.converged | (~valid & ~never)) & (len(self.xs) > len(self.probes))
        if active is not None:
            keep |= ~np.asarray(active, bool)
        self.codes = np.where(keep, codes, new)
        return self.codes

    def result(self, tolerance, choose: str = "last") -> SearchResult:
        """Final codes, the values measured there, success flags and reasons. ``choose``:
        ``"last"`` the last measured codes (themselves model predictions; no selection on
        noise), ``"best"`` the codes whose measurement came closest to the target."""
        tolerance = _as_array(tolerance, self.n)
        if choose == "last" and self.xs:
            last_v = self.values[-1]
            ok = np.isfinite(last_v)
            codes = np.where(ok, self.xs[-1], self.best_codes)
            values = np.where(ok, last_v, self.best_values)
            increasing = np.where(np.isfinite(self.slope), self.slope > 0, True)
            success, reasons = _judge(codes, values, self.target_value, tolerance, self.low, self.high, increasing)
            flat = ~np.isfinite(self.slope)
            for i in np.flatnonzero(~success & flat & (reasons == "")):
                reasons[i] = "transfer function flat or unmeasurable"
            return SearchResult(codes.astype(np.int64), values, success, reasons, len(self.xs))
        increasing = np.where(np.isfinite(self.slope), self.slope > 0, True)
        success, reasons = _judge(
            self.best_codes, self.best_values, self.target_value, tolerance, self.low, self.high, increasing
        )
        flat = ~np.isfinite(self.slope)
        for i in np.flatnonzero(~success & flat & (reasons == "")):
            reasons[i] = "transfer function flat or unmeasurable"
        return SearchResult(self.best_codes.copy(), self.best_values.copy(), success, reasons, len(self.xs))


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
