"""Small vectorised least-squares fits (numpy only), one row per neuron.

Data come as (n, m) arrays ``s`` (time), ``v`` (value) and ``w`` (weight, 0 for missing
samples). The fits separate the linear parameters (solved exactly for each guess of the
nonlinear ones: variable projection) from the one or two nonlinear parameters (found by a
vectorised golden-section search). Uncertainties come from the Jacobian at the optimum,
``cov = sigma^2 (J^T W J)^-1`` with ``sigma^2 = SSE / (n - p)``.
"""

from __future__ import annotations

import warnings

import numpy as np

_G = (np.sqrt(5.0) - 1.0) / 2.0


def golden_min(f, lo, hi, iters: int = 24):
    """Vectorised golden-section search: per row, the ``x`` in ``[lo, hi]`` minimising ``f(x)``
    (``f`` maps an (n,) array to an (n,) array). Returns ``(x, f(x))``."""
    a = np.asarray(lo, np.float64).copy()
    b = np.asarray(hi, np.float64).copy()
    c = b - _G * (b - a)
    d = a + _G * (b - a)
    fc, fd = f(c), f(d)
    for _ in range(iters):
        left = ~(fc > fd)  # minimum in [a, d]; nan counts as left
        b = np.where(left, d, b)
        a = np.where(left, a, c)
        x_new = np.where(left, b - _G * (b - a), a + _G * (b - a))
        f_new = f(x_new)
        d_next = np.where(left, c, x_new)
        fd_next = np.where(left, fc, f_new)
        c = np.where(left, x_new, d)
        fc = np.where(left, f_new, fd)
        d, fd = d_next, fd_next
    x = np.where(fc < fd, c, d)
    return x, np.minimum(fc, fd)


def _rowdot(a, b):
    return np.einsum("ij,ij->i", a, b)


def line_projection(basis, v, w, pre=None):
    """Per row, weighted least squares ``v ~ c0 + c1 * basis``. Returns ``(c0, c1, sse)``.
    ``pre``: optional ``(sw, swv, svv)`` from :func:`projection_sums` (for repeated calls
    with the same ``v`` and ``w``)."""
    sw, swv, svv = pre if pre is not None else projection_sums(v, w)
    wb = w * basis
    swb = wb.sum(1)
    swbb = _rowdot(wb, basis)
    swbv = _rowdot(wb, v)
    with np.errstate(invalid="ignore", divide="ignore"):
        sbb = swbb - swb * swb / sw
        sbv = swbv - swb * swv / sw
        c1 = np.where(sbb > 1e-30, sbv / sbb, 0.0)
        c0 = (swv - c1 * swb) / sw
        sse = np.maximum(svv - c1 * sbv, 0.0)
    return c0, c1, sse


def projection_sums(v, w):
    sw = w.sum(1)
    wv = w * v
    swv = wv.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        svv = _rowdot(wv, v) - swv * swv / sw
    return sw, swv, svv


def ar1_inflation(resid, w):
    """Factor by which correlated noise inflates standard errors, per row: residuals in
    sample order (n, m), weights ``w``; lag-1 autocorrelation ``rho`` -> ``sqrt((1+rho)/(1-rho))``
    (membrane noise is correlated over ``tau_mem``, longer than the CADC sample period)."""
    r = np.where(w > 0, resid, 0.0)
    both = (w[:, 1:] > 0) & (w[:, :-1] > 0)
    num = np.where(both, r[:, 1:] * r[:, :-1], 0.0).sum(1)
    den = np.where(both, r[:, 1:] ** 2, 0.0).sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = np.clip(num / den, 0.0, 0.95)
    rho = np.where(np.isfinite(rho), rho, 0.0)
    return np.sqrt((1 + rho) / (1 - rho))


def _covariance(jac, w, sse, n_params):
    """(n, p, p) covariance from the Jacobian (n, m, p), weights (n, m) and SSE (n,)."""
    n_obs = w.sum(1)
    jtj = np.nan_to_num((jac * w[:, :, None]).transpose(0, 2, 1) @ jac)
    dg = np.diagonal(jtj, axis1=1, axis2=2)
    jtj = jtj + (1e-12 * dg + 1e-300)[:, :, None] * np.eye(n_params)[None]
    inv = np.full_like(jtj, np.nan)
    try:
        inv = np.linalg.inv(jtj)
    except np.linalg.LinAlgError:
        for i in range(jtj.shape[0]):
            try:
                inv[i] = np.linalg.inv(jtj[i])
            except np.linalg.LinAlgError:
                pass
    sigma2 = sse / np.maximum(n_obs - n_params, 1)
    return inv * sigma2[:, None, None]


# --- reset-and-charge curve -------------------------------------------------------------------
def charging_basis(s, t0, tau):
    x = (s - t0[:, None]) / tau[:, None]
    return np.where(x > 0, -np.expm1(-np.maximum(x, 0)), 0.0)


def _charging_model(s, R, C, tau, t0):
    x = (s - t0[:, None]) / tau[:, None]
    on = x > 0
    E = np.where(on, np.exp(-np.maximum(x, 0)), 1.0)
    model = C[:, None] - (C - R)[:, None] * E
    jac = np.stack(
        [
            E,  # d/dR
            1.0 - E,  # d/dC
            np.where(on, -(C - R)[:, None] * E * x, 0.0),  # d/d log tau
            np.where(on, -(C - R)[:, None] * E / tau[:, None], 0.0),  # d/dt0
        ],
        axis=-1,
    )
    return model, jac


def charging_curve(s, R, C, tau, t0):
    """The reset-and-charge curve of :func:`fit_charging` at times ``s`` (n, m)."""
    return _charging_model(s, np.asarray(R), np.asarray(C), np.asarray(tau), np.asarray(t0))[0]


def levenberg_marquardt(model_fn, p, v, w, iters: int = 20, lower=None, upper=None):
    """Vectorised Levenberg-Marquardt: ``model_fn(p) -> (model (n, m), jac (n, m, k))``,
    ``p`` (n, k) start values. Returns ``(p, sse, cov)``."""
    n, k = p.shape
    lam = np.full(n, 1e-3)
    model, jac = model_fn(p)
    r = v - model
    sse = (w * r * r).sum(1)
    eye = np.eye(k)[None]
    for _ in range(iters):
        jw = (jac * w[:, :, None]).transpose(0, 2, 1)
        jtj = jw @ jac
        jtr = (jw @ r[:, :, None])[..., 0]
        jtj = np.nan_to_num(jtj)
        jtr = np.nan_to_num(jtr)
        dg = np.diagonal(jtj, axis1=1, axis2=2)
        # damping on the diagonal plus a tiny ridge keeps every row solvable (rows without data included)
        a = jtj + ((lam[:, None] + 1e-12) * dg + 1e-30)[:, :, None] * eye
        try:
            step = np.linalg.solve(a, jtr[..., None])[..., 0]
        except np.linalg.LinAlgError:  # a row still singular: solve row by row
            step = np.zeros_like(p)
            for i in range(n):
                try:
                    step[i] = np.linalg.solve(a[i], jtr[i])
                except np.linalg.LinAlgError:
                    pass
        step = np.where(np.isfinite(step), step, 0.0)
        p_new = p + step
        if lower is not None:
            p_new = np.maximum(p_new, lower)
        if upper is not None:
            p_new = np.minimum(p_new, upper)
        m_new, j_new = model_fn(p_new)
        r_new = v - m_new
        sse_new = (w * r_new * r_new).sum(1)
        better = sse_new < sse
        p = np.where(better[:, None], p_new, p)
        model = np.where(better[:, None], m_new, model)
        jac = np.where(better[:, None, None], j_new, jac)
        r = np.where(better[:, None], r_new, r)
        sse = np.where(better, sse_new, sse)
        lam = np.clip(np.where(better, lam * 0.3, lam * 10.0), 1e-9, 1e9)
    cov = _covariance(jac, w, sse, k)
    return p, sse, cov


def _charging_start(s, v, w, t0, t0_max, C, tau_lo, tau_hi):
    """Start values of the charging fit: ``t0`` (the last time the curve sits at its floor,
    when the data show it), the floor (5th percentile), the best ``log tau`` on a grid, and
    the linear ``R`` and amplitude ``A`` there."""
    n = s.shape[0]
    wv = np.where(w > 0, v, np.nan)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        floor = np.nanpercentile(wv, 5, axis=1)
    at_floor = (w > 0) & (v <= floor[:, None] + 3.0)
    t0_data = np.where(at_floor, s, -np.inf).max(1)
    use = np.isfinite(t0_data) & (at_floor.sum(1) >= 5)
    t0 = np.clip(np.where(use, t0_data, t0), 0, t0_max)
    grid = np.linspace(np.log(tau_lo), np.log(tau_hi), 20)
    best = np.full(n, np.inf)
    log_tau = np.full(n, grid[len(grid) // 2])
    for g in grid:
        b = charging_basis(s, t0, np.full(n, np.exp(g)))
        if C is not None:
            E = 1.0 - b
            y = v - C[:, None]
            with np.errstate(all="ignore"):
                a = (w * y * E).sum(1) / (w * E * E).sum(1)
            sse = (w * (y - a[:, None] * E) ** 2).sum(1)
        else:
            sse = line_projection(b, v, w)[2]
        better = np.isfinite(sse) & (sse < best)
        best = np.where(better, sse, best)
        log_tau = np.where(better, g, log_tau)
    R, A, _ = line_projection(charging_basis(s, t0, np.exp(log_tau)), v, w)
    return t0, floor, log_tau, R, A


def _charging_lm(s, v, w, p0, t0_max, C, tau_lo, tau_hi):
    """Levenberg-Marquardt from ``p0`` = (R, log tau, t0) with ``C`` given, or (R, C, log tau,
    t0) with ``C`` None. Returns ``(R, C, tau, t0), (their errors), sse, number of parameters``."""
    n = s.shape[0]
    if C is not None:
        lower = np.stack([np.full(n, -1e3), np.full(n, np.log(tau_lo)), np.zeros(n)], 1)
        upper = np.stack([np.full(n, 1e4), np.full(n, np.log(tau_hi)), t0_max], 1)

        def model_fn(p):
            model, jac = _charging_model(s, p[:, 0], C, np.exp(p[:, 1]), p[:, 2])
            return model, jac[..., [0, 2, 3]]

    else:
        lower = np.stack([np.full(n, -1e3), np.full(n, -1e3), np.full(n, np.log(tau_lo)), np.zeros(n)], 1)
        upper = np.stack([np.full(n, 1e4), np.full(n, 1e5), np.full(n, np.log(tau_hi)), t0_max], 1)

        def model_fn(p):
            return _charging_model(s, p[:, 0], p[:, 1], np.exp(p[:, 2]), p[:, 3])

    p, sse, cov = levenberg_marquardt(model_fn, p0, v, w, lower=lower, upper=upper)
    err = np.sqrt(np.abs(np.diagonal(cov, axis1=1, axis2=2)))
    if C is not None:
        tau = np.exp(p[:, 1])
        return (p[:, 0], C, tau, p[:, 2]), (err[:, 0], np.zeros(n), err[:, 1] * tau, err[:, 2]), sse, 3
    tau = np.exp(p[:, 2])
    return (p[:, 0], p[:, 1], tau, p[:, 3]), (err[:, 0], err[:, 1], err[:, 2] * tau, err[:, 3]), sse, 4


def fit_charging(s, v, w, t0_guess, t0_max, C=None, tau_lo=0.2e-6, tau_hi=200e-6):
    """Fit ``v = R`` for ``s < t0`` and ``v = C - (C - R) exp(-(s - t0) / tau)`` after, per row.

    This is a membrane held at the reset potential ``R`` for the refractory time ``t0`` and
    then charging towards ``C`` with time constant ``tau``. ``t0`` stays in
    ``[0, t0_max]``. ``C`` (n,) may be given (measured separately), else it is fitted.
    Start values from a grid over ``tau`` at a data-driven ``t0``, then Levenberg-Marquardt.
    Returns a dict of (n,) arrays: ``R, C, tau, t0, sigma`` (residual rms) and the standard
    errors ``R_err, C_err, tau_err, t0_err`` (``C_err`` 0 when ``C`` is given).
    """
    n = s.shape[0]
    t0_max = np.broadcast_to(np.asarray(t0_max, np.float64), (n,)).copy()
    t0 = np.clip(np.broadcast_to(np.asarray(t0_guess, np.float64), (n,)), 0, t0_max)
    C = None if C is None else np.asarray(C, np.float64)
    t0, floor, log_tau, R, A = _charging_start(s, v, w, t0, t0_max, C, tau_lo, tau_hi)
    if C is not None:
        p0 = np.stack([np.where(np.isfinite(floor), floor, R), log_tau, t0], axis=1)
    else:
        p0 = np.stack([R, R + A, log_tau, t0], axis=1)
    values, errors, sse, k = _charging_lm(s, v, w, p0, t0_max, C, tau_lo, tau_hi)
    n_obs = w.sum(1)
    out = dict(zip(("R", "C", "tau", "t0"), values, strict=True))
    out.update(zip(("R_err", "C_err", "tau_err", "t0_err"), errors, strict=True))
    out.update(sigma=np.sqrt(sse / np.maximum(n_obs - k, 1)), n=n_obs)
    return out


# --- post-synaptic potential --------------------------------------------------------------------
def psp_kernel(s, tau_m, tau_s):
    """Membrane response to a unit current jump at ``s = 0``: ``tau_s/(tau_m - tau_s) (e^-s/tau_m - e^-s/tau_s)``
    (``s`` (n, m) or (m,), taus (n,)); zero for ``s <= 0``."""
    tm = tau_m[:, None]
    ts = tau_s[:, None]
    close = np.abs(tm - ts) < 1e-4 * tm
    ts = np.where(close, ts * (1 + 2e-4), ts)
    sp = np.maximum(s, 0.0)
    k = ts / (tm - ts) * (np.exp(-sp / tm) - np.exp(-sp / ts))
    return np.where(s > 0, k, 0.0)


def _start_grid(n, tau_lo, tau_hi, tau_guess):
    """(k, n) start grid of ``log tau_s`` per row: 7 points within a factor e of the guess,
    or 14 over the whole range."""
    if tau_guess is not None and np.all(np.isfinite(tau_guess)):
        centre = np.log(np.clip(tau_guess, tau_lo, tau_hi))
        return centre[None, :] + np.linspace(-1.0, 1.0, 7)[:, None]
    full = np.linspace(np.log(tau_lo), np.log(tau_hi), 14)
    return np.repeat(full[:, None], n, axis=1)


def _psp_errors(basis, ts, b, J, K, v, w, sse_v):
    """(n, 3) standard errors of baseline, J and tau_s (numerical derivative in tau_s),
    inflated for correlated residuals."""
    h = 1e-4
    dK = (basis(ts * (1 + h)) - basis(ts * (1 - h))) / (2 * h * ts[:, None])
    jac = np.stack([np.ones_like(K), K, J[:, None] * dK], axis=-1)
    cov = _covariance(jac, w, sse_v, 3)
    inflation = ar1_inflation(v - b[:, None] - J[:, None] * K, w)
    return np.sqrt(np.abs(np.diagonal(cov, axis1=1, axis2=2))) * inflation[:, None]


def fit_psp(s_list, v, w, tau_m, tau_lo=0.1e-6, tau_hi=80e-6, tau_guess=None):
    """Fit ``v = b + J * sum_k psp_kernel(s_k, tau_m, tau_s)`` per row, ``tau_m`` given.

    ``s_list``: list of (n, m) or (1, m) arrays, time since each preceding input (the latest
    first; negative where there is none). ``tau_guess`` (n,): narrows the start grid to a
    factor 2 around it (neurons with a non-finite guess search the full range). Returns a dict of (n,) arrays
    ``baseline, J, tau_s, sigma`` and errors ``J_err, tau_s_err, baseline_err``.
    """
    n = v.shape[0]
    tau_m = np.asarray(tau_m, np.float64)
    tm = tau_m[:, None]
    pos = [np.maximum(s, 0.0) for s in s_list]
    on = [s > 0 for s in s_list]
    em = [np.where(o, np.exp(-p / tm), 0.0) for p, o in zip(pos, on, strict=True)]  # fixed during the search
    pre = projection_sums(v, w)

    def basis(ts):
        t = ts[:, None]
        t = np.where(np.abs(tm - t) < 1e-4 * tm, t * (1 + 2e-4), t)
        f = t / (tm - t)
        out = 0.0
        for p, o, e in zip(pos, on, em, strict=True):
            out = out + np.where(o, e - np.exp(-p / t), 0.0)
        return f * out

    def sse(log_ts):
        return line_projection(basis(np.exp(log_ts)), v, w, pre)[2]

    grids = _start_grid(n, tau_lo, tau_hi, tau_guess)
    sse_grid = np.stack([sse(g) for g in grids])
    sse_grid = np.where(np.isfinite(sse_grid), sse_grid, np.inf)
    k = np.argmin(sse_grid, 0)
    step = np.full(n, grids[1, 0] - grids[0, 0])
    best = grids[k, np.arange(n)]
    edge = (k == 0) | (k == grids.shape[0] - 1)
    if tau_guess is not None and edge.any():  # the guess was poor for these: search the full range
        sub = np.flatnonzero(edge)
        s_sub = [s if s.shape[0] == 1 else s[sub] for s in s_list]
        f_sub = fit_psp(s_sub, v[sub], w[sub], tau_m[sub], tau_lo, tau_hi, None)
        best[sub] = np.log(f_sub["tau_s"])
        step[sub] = 0.05
    log_ts, _ = golden_min(sse, best - step, best + step, iters=16)
    ts = np.exp(log_ts)
    K = basis(ts)
    b, J, sse_v = line_projection(K, v, w, pre)
    err = _psp_errors(basis, ts, b, J, K, v, w, sse_v)
    n_obs = w.sum(1)
    return {
        "baseline": b,
        "J": J,
        "tau_s": ts,
        "sigma": np.sqrt(sse_v / np.maximum(n_obs - 3, 1)),
        "baseline_err": err[:, 0],
        "J_err": err[:, 1],
        "tau_s_err": err[:, 2],
        "n": n_obs,
    }
