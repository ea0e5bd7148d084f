"""``ModelSearch``: predict each neuron's CapMem code from a line fitted to its measurements.

Per neuron, a line ``y = a + b * code`` in a transformed space where the transfer function is
close to linear (``1/sqrt(tau)`` for time constants, identity for potentials and gains) is
fitted through the recent measurements (points near the target weigh more) and inverted at
the target. A bracket of codes measured clearly on either side of the target bounds every
step. Two to four measurements usually suffice. See docs/calibration.md ("Searches").
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .search import SearchResult, as_array, fit_lines, judge


def halve(codes: np.ndarray) -> np.ndarray:
    """Retreat rule: half the code (e.g. a drive or gain that saturates the ADC)."""
    return codes // 2


def step_down(amount: int) -> Callable[[np.ndarray], np.ndarray]:
    """Retreat rule: ``amount`` codes lower, at least 0."""
    return lambda codes: np.maximum(codes - amount, 0)


class ModelSearch:
    """Model-based search over all neurons at once. Use as::

        s = ModelSearch(target, initial_codes, low=0, high=1022, transform=...)
        for _ in range(iterations):
            s.update(s.codes, measure(s.codes))   # proposes the next s.codes
            if s.converged.all(): break
        result = s.result(tolerance)

    Until two distinct codes have been measured, the slope comes from ``slope_guess``
    (in transformed units per code, scalar or per neuron) or, with ``through_origin``, from
    the line through the origin. A per-neuron bracket of codes known to lie on either side of
    the target bounds every prediction; predictions outside it fall back to bisecting the
    bracket. ``max_step`` limits the change per update (codes). ``settle``: |value - target|
    below which a neuron is left alone. ``uniform_until``: while the median relative distance
    from the target exceeds it, all neurons move together (the median proposal). ``probes``:
    fixed codes measured first. ``retreat``: the rule :meth:`retreat` applies to neurons whose
    measurement shows the code is too high to be measured at all (e.g. :func:`halve`).
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
        retreat: Callable[[np.ndarray], np.ndarray] | None = None,
    ):
        codes = np.asarray(initial_codes, np.int64).copy()
        self.n = codes.size
        self.low, self.high = int(low), int(high)
        self.transform = transform or (lambda v: v)
        self.target_value = as_array(target, self.n)
        with np.errstate(divide="ignore", invalid="ignore"):
            self.target = np.asarray(self.transform(self.target_value), np.float64)
        self.slope_guess = None if slope_guess is None else as_array(slope_guess, self.n)
        self.through_origin = through_origin
        self.settle = as_array(settle, self.n)
        self.max_step = max_step
        self.history = history
        self.closeness = closeness  # relative distance from the target at which a point's weight halves
        self.min_spread = min_spread  # codes; a slope from points closer than this is not trusted
        self.uniform_until = uniform_until
        self.prior_band = prior_band  # fitted slope / prior slope outside this band: keep the prior
        self.min_span = min_span  # relative span in transformed units needed to re-estimate a known slope
        self.bracket_margin = 10.0 * self.settle if bracket_margin is None else as_array(bracket_margin, self.n)
        self.retreat_rule = retreat
        self.codes = np.clip(codes, self.low, self.high)
        self.probes = [
            np.clip(np.broadcast_to(np.asarray(p, np.int64), (self.n,)), self.low, self.high) for p in probes
        ]
        self.xs: list[np.ndarray] = []
        self.ys: list[np.ndarray] = []
        self.values: list[np.ndarray] = []
        self.errors: list[np.ndarray] = []  # standard errors of the values (0: not given)
        self.y_errors: list[np.ndarray] = []  # the same in transformed units
        self.bracket_lo = np.full(self.n, self.low - 1, np.int64)  # code known to give y < target (if increasing)
        self.bracket_hi = np.full(self.n, self.high + 1, np.int64)
        self.converged = np.zeros(self.n, bool)
        self.best_codes = self.codes.copy()
        self.best_values = np.full(self.n, np.nan)
        self.slope = np.full(self.n, np.nan)
        self.fitted = np.zeros(self.n, bool)  # slope estimated from the data (not a guess)

    # --- one update -------------------------------------------------------------------------
    def update(self, codes, values, active=None, errors=None) -> np.ndarray:
        """Record ``values`` measured at ``codes`` and propose the next ``self.codes``.
        ``active`` (bool (n,)): only these neurons move. ``errors`` (n,): standard errors of
        ``values``; a point then weighs in the line fit by its precision, and lies clearly on
        one side of the target only beyond the bracket margin plus twice its error."""
        codes = np.asarray(codes, np.int64)
        values = np.asarray(values, np.float64)
        y = self._record(codes, values, errors)
        anchor_x, anchor_y = self._estimate_slope(codes, y)
        self._update_bracket()
        proposal = self._predict(codes, anchor_x, anchor_y)
        self.codes = self._choose(codes, values, np.isfinite(y), proposal, active)
        return self.codes

    def retreat(self, mask, codes) -> None:
        """The next code of the neurons in ``mask``, whose measurement at ``codes`` failed
        because the code is too high (e.g. the ADC saturated), is the ``retreat`` rule of it."""
        if self.retreat_rule is None:
            raise TypeError("ModelSearch.retreat: this search has no retreat rule")
        self.codes = np.where(mask, self.retreat_rule(np.asarray(codes, np.int64)), self.codes)

    def _record(self, codes, values, errors) -> np.ndarray:
        """Append the measurement to the history; update the best point and ``converged``.
        Returns the values in transformed units (``nan`` where not finite)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            y = np.asarray(self.transform(values), np.float64)
            errors = np.zeros(self.n) if errors is None else np.nan_to_num(np.asarray(errors, np.float64), nan=0.0)
            y_err = np.abs(np.asarray(self.transform(values + errors), np.float64) - y)
        y = np.where(np.isfinite(y), y, np.nan)
        self.xs.append(codes.copy())
        self.ys.append(y)
        self.values.append(values)
        self.errors.append(errors)
        self.y_errors.append(np.where(np.isfinite(y_err), y_err, 0.0))
        err = np.abs(values - self.target_value)
        better = np.isfinite(err) & ~(np.abs(self.best_values - self.target_value) <= err)
        self.best_codes = np.where(better, codes, self.best_codes)
        self.best_values = np.where(better, values, self.best_values)
        self.converged = np.isfinite(values) & (err <= self.settle)
        return y

    def _slope_prior(self, codes, y) -> np.ndarray:
        """The slope to fall back on: the guess, the line through the origin, or none (nan)."""
        if self.slope_guess is not None:
            return self.slope_guess
        if self.through_origin:
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.where(codes != 0, y / codes, np.nan)
        return np.full(self.n, np.nan)

    def _estimate_slope(self, codes, y):
        """Fit a line through the recent history (points near the target weigh more) and keep
        its slope where it is trustworthy; returns the weighted mean point ``(x, y)`` to
        predict from. A slope from points that differ by noise only, that flips sign, or that
        lies far from the prior keeps the earlier (or the prior) slope."""
        k = min(self.history, len(self.xs))
        X = np.array(self.xs[-k:], np.float64)
        Y = np.array(self.ys[-k:])
        scale = np.abs(self.target) * self.closeness + 1e-30
        with np.errstate(invalid="ignore", over="ignore"):
            w = 1.0 / (1.0 + ((Y - self.target) / scale) ** 2)
        w = np.where(np.isfinite(Y), w, 0.0)
        E = np.array(self.y_errors[-k:])
        if np.any(E > 0):  # inverse-variance weights relative to each neuron's most precise point
            with np.errstate(invalid="ignore", divide="ignore"):
                best = np.where(E > 0, E, np.inf).min(0)
                w = w * np.where(E > 0, (best / E) ** 2, 1.0)
        _, slope = fit_lines(X, Y, w)
        sw = w.sum(0)
        with np.errstate(invalid="ignore", divide="ignore"):
            xm = (w * np.nan_to_num(X)).sum(0) / sw
            ym = (w * np.nan_to_num(Y)).sum(0) / sw
            spread = np.sqrt((w * (np.nan_to_num(X) - xm) ** 2).sum(0) / sw)
            y_span = np.sqrt((w * (np.nan_to_num(Y) - ym) ** 2).sum(0) / sw)
        fallback = self._slope_prior(codes, y)
        known = np.isfinite(self.slope)
        untrusted = ~np.isfinite(slope) | (slope == 0) | (spread < self.min_spread)
        untrusted |= ~(y_span >= self.min_span * np.abs(self.target))
        untrusted |= self.fitted & (np.sign(slope) != np.sign(self.slope))
        if self.through_origin or self.slope_guess is not None:
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = slope / fallback
            untrusted |= np.isfinite(ratio) & ((ratio < self.prior_band[0]) | (ratio > self.prior_band[1]))
        self.fitted |= ~untrusted
        slope = np.where(untrusted, np.where(known, self.slope, fallback), slope)
        self.slope = np.where(np.isfinite(slope) & (slope != 0), slope, self.slope)
        return np.where(np.isfinite(xm), xm, codes), np.where(np.isfinite(ym), ym, y)

    def _update_bracket(self) -> None:
        """The bracket from the recent measurements (the last ``history``) that lie clearly on
        one side of the target (needs the slope's sign); an inverted bracket (noise, wrong sign)
        is forgotten. A single early outlier thus cannot hold the search away from the answer."""
        increasing = self.slope > 0
        sign_known = np.isfinite(self.slope)
        lo = np.full(self.n, self.low - 1, np.int64)
        hi = np.full(self.n, self.high + 1, np.int64)
        recent = slice(-self.history, None)
        points = zip(self.xs[recent], self.ys[recent], self.values[recent], self.errors[recent], strict=True)
        for xk, yk, vk, ek in points:
            with np.errstate(invalid="ignore"):
                margin = self.bracket_margin + 2 * ek
                clear = sign_known & np.isfinite(yk) & (np.abs(vk - self.target_value) > margin)
                below = yk < self.target
            needs_up = clear & np.where(increasing, below, ~below)
            needs_down = clear & ~np.where(increasing, below, ~below)
            lo = np.where(needs_up & (xk > lo), xk, lo)
            hi = np.where(needs_down & (xk < hi), xk, hi)
        inverted = lo >= hi
        self.bracket_lo = np.where(inverted, self.low - 1, lo)
        self.bracket_hi = np.where(inverted, self.high + 1, hi)

    def _predict(self, codes, anchor_x, anchor_y) -> np.ndarray:
        """Codes from the anchor along the slope, at most ``max_step`` away, inside the bracket
        (bisecting it when the model leaves it) and the code range."""
        with np.errstate(divide="ignore", invalid="ignore"):
            pred = anchor_x + (self.target - anchor_y) / self.slope
        pred = np.where(np.isfinite(pred), pred, codes)
        if self.max_step is not None:
            pred = np.clip(pred, codes - self.max_step, codes + self.max_step)
        new = np.rint(pred).astype(np.int64)
        inside = (new >= self.bracket_lo) & (new <= self.bracket_hi)
        has_both = (self.bracket_lo >= self.low) & (self.bracket_hi <= self.high)
        bisect = (self.bracket_lo + self.bracket_hi) // 2
        new = np.where(~inside & has_both, bisect, new)
        new = np.where(~inside & ~has_both, np.clip(new, self.bracket_lo + 1, self.bracket_hi - 1), new)
        return np.clip(new, self.low, self.high)

    def _choose(self, codes, values, valid, new, active) -> np.ndarray:
        """The next codes: uniform moves while far from the target, the median proposal for
        neurons never measured, fixed probes first; converged, inactive and (once measured)
        failed neurons keep their codes."""
        act = np.ones(self.n, bool) if active is None else np.asarray(active, bool)
        va = valid & act
        if self.uniform_until is not None and va.any():
            with np.errstate(divide="ignore", invalid="ignore"):
                rel = np.median(np.abs(values[va] / self.target_value[va] - 1))
            if rel > self.uniform_until:
                new = np.full(self.n, int(np.median(new[va])))
        never = ~np.any(np.isfinite(np.array(self.ys)), axis=0)
        if never.any() and va.any():
            new = np.where(never, int(np.median(new[va])), new)
        if len(self.xs) <= len(self.probes):
            new = self.probes[len(self.xs) - 1].copy()
        keep = (self.converged | (~valid & ~never)) & (len(self.xs) > len(self.probes))
        if active is not None:
            keep |= ~np.asarray(active, bool)
        return np.where(keep, codes, new)

    # --- outcome -----------------------------------------------------------------------------
    def result(self, tolerance, choose: str = "last") -> SearchResult:
        """Final codes, the values measured there, success flags and reasons. ``choose``:
        ``"last"`` the last measured codes (themselves model predictions; no selection on
        noise), ``"best"`` the codes whose measurement came closest to the target."""
        tolerance = as_array(tolerance, self.n)
        if choose == "last" and self.xs:
            ok = np.isfinite(self.values[-1])
            codes = np.where(ok, self.xs[-1], self.best_codes)
            values = np.where(ok, self.values[-1], self.best_values)
        else:
            codes, values = self.best_codes.copy(), self.best_values.copy()
        increasing = np.where(np.isfinite(self.slope), self.slope > 0, True)
        success, reasons = judge(codes, values, self.target_value, tolerance, self.low, self.high, increasing)
        flat = ~np.isfinite(self.slope)
        for i in np.flatnonzero(~success & flat & (reasons == "")):
            reasons[i] = "transfer function flat or unmeasurable"
        return SearchResult(codes.astype(np.int64), values, success, reasons, len(self.xs))
