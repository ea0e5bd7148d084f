"""Reset, threshold, membrane time constant and refractory time from one run of regularly
firing neurons (all neurons at once).

A constant current (``i_mem_offset``) drives every membrane towards a level ``C`` above its
threshold. Every CADC sample carries its tick; folding each sample on the time ``s`` since
its neuron's previous spike (spike times are exact) gives a dense curve per neuron: flat at
``v_reset`` during the refractory time ``t0``, then ``C - (C - v_reset) exp(-(s - t0)/tau)``.
One fit per neuron gives ``v_reset``, ``t0`` and ``tau_mem``; the threshold is the fitted
curve at the mean inter-spike interval.
"""

from __future__ import annotations

import warnings

import attrs
import numpy as np

from hil import chip
from hil.config import ChipConfig

from .. import fit
from .rest import CADC_RECORDING, reasons_array, require_cadc
from .setups import N, idle_stimulus, refractory_seconds

SPIKE_GUARD_S = 0.1e-6  # CADC samples this close to a spike are not used


@attrs.frozen(eq=False)
class SpikingResult:
    """Per neuron (512,): potentials in LSB, times in s; ``nan`` where ``valid`` is False
    (``reasons`` says why). ``v_drive``: the level the membrane charges towards."""

    v_reset: np.ndarray
    v_threshold: np.ndarray
    tau_mem: np.ndarray
    refractory: np.ndarray
    v_drive: np.ndarray
    isi: np.ndarray
    n_spikes: np.ndarray
    tau_mem_err: np.ndarray
    v_reset_err: np.ndarray
    refractory_err: np.ndarray
    sigma: np.ndarray
    valid: np.ndarray
    reasons: np.ndarray


def fold_on_spikes(m):
    """Per CADC sample and neuron: value, time since the neuron's previous spike, and the
    interval between that spike and its next one (nan if none). Arrays (512, M)."""
    spk = m.spikes
    samples = m.cadc.samples  # (T, S, N)
    T, S, _ = samples.shape
    key_sp = spk["trial"].astype(np.int64) * N + spk["neuron"].astype(np.int64)
    comp = (key_sp << 33) + spk["tick"].astype(np.int64)
    comp.sort()
    trial = np.arange(T)[:, None, None]
    neuron = np.arange(N)[None, None, :]
    tick = m.cadc.ticks.astype(np.int64)[:, :, None]
    key = trial * N + neuron
    q = ((key << 33) + tick).ravel()
    idx = np.searchsorted(comp, q, side="right") - 1
    keyq = np.broadcast_to(key, (T, S, N)).ravel()
    ok = idx >= 0
    idx_c = np.maximum(idx, 0)
    prev = comp[idx_c] if comp.size else np.zeros_like(q)
    ok &= (prev >> 33) == keyq
    prev_tick = prev & ((1 << 33) - 1)
    nxt_idx = np.minimum(idx + 1, max(comp.size - 1, 0))
    nxt = comp[nxt_idx] if comp.size else np.zeros_like(q)
    has_next = ok & (idx + 1 < comp.size) & ((nxt >> 33) == keyq)
    since = np.where(ok, (np.broadcast_to(tick, (T, S, N)).ravel() - prev_tick) * chip.TICK_S, np.nan)
    isi = np.where(has_next, ((nxt & ((1 << 33) - 1)) - prev_tick) * chip.TICK_S, np.nan)
    v = samples.astype(np.float64).reshape(-1)
    shape = (T * S, N)
    return v.reshape(shape).T, since.reshape(shape).T, isi.reshape(shape).T


def isi_stats(spikes):
    """Per neuron: mean, std, count and minimum of inter-spike intervals within trials, and spike counts."""
    key = spikes["trial"].astype(np.int64) * N + spikes["neuron"].astype(np.int64)
    order = np.lexsort((spikes["tick"], key))
    k = key[order]
    t = spikes["tick"][order].astype(np.int64)
    same = k[1:] == k[:-1]
    d = (t[1:] - t[:-1])[same] * chip.TICK_S
    n_of = k[1:][same] % N
    count = np.bincount(n_of, minlength=N)
    total = np.bincount(n_of, weights=d, minlength=N)
    total2 = np.bincount(n_of, weights=d * d, minlength=N)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / count
        std = np.sqrt(np.maximum(total2 / count - mean**2, 0))
        dmin = np.full(N, np.inf)
        np.minimum.at(dmin, n_of, d)
    n_spikes = np.bincount(spikes["neuron"].astype(np.int64), minlength=N)
    return mean, std, count, dmin, n_spikes


def _fit_robust(s, v, w, t0_guess, t0_max, C, valid):
    """Charging-curve fit; samples more than 6 robust sigmas off are dropped and those neurons
    refitted. Returns the fit dict (errors inflated for correlated noise) and the final weights."""
    f = fit.fit_charging(s, v, w, t0_guess, t0_max, C=C)
    model = fit.charging_curve(s, f["R"], f["C"], f["tau"], f["t0"])
    resid = np.where(w > 0, v - model, np.nan)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mad = 1.4826 * np.nanmedian(np.abs(resid), axis=1)
    out = np.abs(np.nan_to_num(resid)) > 6 * np.maximum(mad, 0.5)[:, None]
    redo = np.flatnonzero(out.any(1) & valid)
    if redo.size:
        w2 = np.where(out, 0.0, w)[redo]
        g = fit.fit_charging(s[redo], v[redo], w2, t0_guess[redo], t0_max[redo], C=None if C is None else C[redo])
        for k in f:
            f[k] = f[k].copy()
            f[k][redo] = g[k]
        w = w.copy()
        w[redo] = w2
    # correlated noise: inflate the fit errors (residuals in sample order)
    infl = fit.ar1_inflation(v - fit.charging_curve(s, f["R"], f["C"], f["tau"], f["t0"]), w)
    for k in ("tau_err", "R_err", "t0_err"):
        f[k] = f[k] * infl
    return f, w


def _sample_weights(v, since, cycle, t_nominal, isi_mean, late_cut, valid):
    """(512, M) 1/0 weights of the folded samples: in the first ``late_cut`` of the charging
    time, inside the CADC range, clear of spikes, of a neuron that can be fitted."""
    sat = (v >= chip.CADC_MAX) | (v <= 0)
    # a sample taken while its neuron fires may catch the drop to reset half-way: keep clear of spikes
    sat |= (since < SPIKE_GUARD_S) | (np.isfinite(cycle) & (cycle - since < SPIKE_GUARD_S))
    t_charge = np.maximum(isi_mean - np.minimum(t_nominal, isi_mean), 0)
    s_cut = np.minimum(t_nominal, isi_mean) + late_cut * t_charge
    early = np.isfinite(since) & (since <= s_cut[:, None])
    return (early & ~sat & valid[:, None]).astype(np.float64)


def _spike_validity(spikes, drive, min_intervals):
    """ISI statistics, and which neurons fired often enough (with a known drive) to be fitted."""
    reasons = reasons_array()
    isi_mean, _, n_isi, isi_min, n_spikes = isi_stats(spikes)
    valid = n_isi >= min_intervals
    none = n_spikes == 0
    reasons[none] = (
        "no spikes while driven above threshold (drive too weak, threshold too high, or spikes not reported)"
    )
    reasons[~none & ~valid] = f"too few spikes for a fit (need {min_intervals + 1} in a trial)"
    if drive is not None:
        nodrive = valid & ~np.isfinite(drive)
        reasons[nodrive] = "drive level unknown (its measurement failed)"
        valid &= ~nodrive
    return isi_mean, isi_min, n_spikes, valid, reasons


def _plausible(f, w, s, valid, reasons):
    """Reject fits with too few charging samples, a time constant at the search limit or a
    large residual; updates ``reasons``, returns the new ``valid``."""
    n_charge = (w * (s > f["t0"][:, None])).sum(1)
    few = valid & (n_charge < 10)
    reasons[few] = "too few CADC samples on the charging curve (< 10); lengthen the run"
    valid = valid & ~few
    tau = f["tau"]
    bad = valid & ~(np.isfinite(tau) & (tau > 0.25e-6) & (tau < 190e-6) & (f["C"] > f["R"]))
    reasons[bad] = "charging curve fit failed (time constant at the search limit or curve not rising)"
    valid &= ~bad
    noisy = valid & (f["sigma"] > 4.0)
    reasons[noisy] = "charging curve fit residual > 4 LSB (irregular firing)"
    return valid & ~noisy


def measure_spiking(
    session,
    config: ChipConfig,
    drive=None,
    *,
    n_trials: int = 8,
    duration_s: float = 100e-6,
    min_intervals: int = 3,
    late_cut: float = 0.75,
    what="spiking",
) -> SpikingResult:
    """Reset potential, refractory time, ``tau_mem`` and threshold of every neuron from one
    run of regularly firing neurons (see the module docstring).

    ``drive`` (512,): the level the membrane charges towards, measured by
    :func:`~calibration.measure.measure_drive` (recommended; else it is fitted too). Only
    samples in the first ``late_cut`` of each neuron's mean charging time enter the fit: near
    the threshold the cycles that have not fired yet are those with a downward noise
    excursion, which would bias the curve. Samples within 0.1 us of a spike are left out.
    """
    m = session.run(config, idle_stimulus(n_trials, duration_s), CADC_RECORDING, what=what)
    require_cadc(m, what)
    drive = None if drive is None else np.asarray(drive, np.float64)
    isi_mean, isi_min, n_spikes, valid, reasons = _spike_validity(m.spikes, drive, min_intervals)
    if not np.any(valid):
        nan = np.full(N, np.nan)
        return SpikingResult(nan, nan, nan, nan, nan, isi_mean, n_spikes, nan, nan, nan, nan, valid, reasons)
    v, since, cycle = fold_on_spikes(m)
    t_nominal = refractory_seconds(config)
    w = _sample_weights(v, since, cycle, t_nominal, isi_mean, late_cut, valid)
    s = np.where(np.isfinite(since), since, 0.0)
    t0_max = np.where(np.isfinite(isi_min), np.minimum(isi_min, isi_mean) * 0.98, 1e-6)
    C = None if drive is None else np.where(np.isfinite(drive), drive, 0.0)
    t0_guess = np.minimum(t_nominal, 0.8 * t0_max)
    f, w = _fit_robust(s, v, w, t0_guess, t0_max, C, valid)
    with np.errstate(invalid="ignore", over="ignore"):
        v_th = f["C"] - (f["C"] - f["R"]) * np.exp(-(isi_mean - f["t0"]) / f["tau"])
    valid = _plausible(f, w, s, valid, reasons)

    def keep(x):
        return np.where(valid, x, np.nan)

    return SpikingResult(
        v_reset=keep(f["R"]),
        v_threshold=keep(v_th),
        tau_mem=keep(f["tau"]),
        refractory=keep(f["t0"]),
        v_drive=keep(f["C"]),
        isi=isi_mean,
        n_spikes=n_spikes,
        tau_mem_err=keep(f["tau_err"]),
        v_reset_err=keep(f["R_err"]),
        refractory_err=keep(f["t0_err"]),
        sigma=f["sigma"],
        valid=valid,
        reasons=reasons,
    )
