"""Measurements of per-neuron parameters through any ``hil.Device``, all neurons at once
where the chip allows it.

Each measurement has a *configure* part (a function returning the ``ChipConfig`` the
measurement needs, built on the configuration under calibration) and a *measure* part
(runs the device through a :class:`~calibration.session.Session` and evaluates). Results
are attrs objects of (512,) arrays with a ``valid`` mask and a ``reasons`` array naming
why a neuron's value is missing (``nan`` values, never a silently wrong one).

- :func:`measure_rest`: resting potential = mean CADC reading with no input (all neurons).
- :func:`measure_spiking`: neurons driven above threshold by a constant current
  (``i_mem_offset``) fire regularly. CADC samples carry their tick; folding every sample on
  the time since its neuron's previous spike (spike times are exact) gives a dense curve:
  flat at the reset potential during the refractory time, then charging exponentially
  towards the drive level until the threshold. One fit per neuron gives ``v_reset``,
  refractory time, ``tau_mem``, the drive level, and ``v_threshold`` (the fitted curve at
  the mean inter-spike interval).
- :func:`measure_psp`: host events through configured synapse rows (exc and inh in separate
  trials), CADC samples folded on the time since the last input burst, fitted with the
  current-based LIF PSP (``tau_mem`` known) give ``tau_syn`` and the current jump, hence the
  weight gain.
- :func:`measure_latency`: the input latency (event time to current onset) from MADC traces
  of a few neurons (34 ns samples: the only readout fine enough for tens of ns).

CADC channel offsets (~1 LSB per neuron) add equally to every potential measured on one
channel; differences such as ``v_threshold - v_leak`` are free of them. See docs/calibration.md.
"""

from __future__ import annotations

import warnings

import attrs
import numpy as np

from hil import chip
from hil.config import ChipConfig
from hil.errors import CalibrationError
from hil.stimulus import EVENT_DTYPE, Recording, Stimulus

from . import fit

N = chip.N_NEURONS
_QUADRANT = chip.quadrant_of(np.arange(N))
CADC_PERIOD_S = chip.CADC_MIN_PERIOD_S
SPIKE_GUARD_S = 0.1e-6  # CADC samples this close to a spike are not used


# =============================================================================================
# configure
# =============================================================================================
def _synapses_off(cfg: ChipConfig) -> None:
    cfg.synapse_weights = 0
    cfg.synapse_labels = 0
    cfg.row_modes = chip.ROW_MODE_DISABLED
    cfg.crossbar_enable = False
    cfg.crossbar_mask = 0
    cfg.crossbar_target = 0


def rest_config(base: ChipConfig, *, i_mem_offset=0, v_threshold=chip.CAPMEM_MAX) -> ChipConfig:
    """``base`` with no synaptic input, the threshold out of reach and ``i_mem_offset``."""
    cfg = base.copy()
    _synapses_off(cfg)
    cfg.v_threshold = v_threshold
    cfg.i_mem_offset = i_mem_offset
    cfg.enable_spike_out = True
    return cfg


def spiking_config(base: ChipConfig, i_mem_offset) -> ChipConfig:
    """``base`` with no synaptic input and a constant drive ``i_mem_offset`` (per neuron)."""
    cfg = base.copy()
    _synapses_off(cfg)
    cfg.i_mem_offset = i_mem_offset
    cfg.enable_spike_out = True
    return cfg


@attrs.frozen
class SynapseSetup:
    """Synapse rows used to inject current: ``n_drivers`` drivers (0..n_drivers-1), each with
    an excitatory row (synapse label 0) and an inhibitory row (label 1) of weight ``weight``
    in every column of both hemispheres."""

    n_drivers: int = 8
    weight: int = 32
    spacing_ticks: int = 4  # between the events of one burst (link capacity)

    def labels(self, sign: str) -> np.ndarray:
        d = np.arange(self.n_drivers)
        return chip.make_label(d // chip.PADI_BUSES, 0 if sign == "exc" else 1, channel=d % chip.PADI_BUSES)

    @property
    def weight_sum(self) -> int:
        """Weight LSB one burst delivers to every neuron."""
        return self.n_drivers * self.weight


def psp_config(base: ChipConfig, setup: SynapseSetup) -> ChipConfig:
    """``base`` with ``setup``'s synapse rows and host routing, the threshold out of reach
    and no offset current."""
    cfg = rest_config(base)
    for d in range(setup.n_drivers):
        for h in range(chip.N_HEMISPHERES):
            cfg.row_modes[h, 2 * d] = chip.ROW_MODE_EXCITATORY
            cfg.row_modes[h, 2 * d + 1] = chip.ROW_MODE_INHIBITORY
            cfg.synapse_weights[h, 2 * d, :] = setup.weight
            cfg.synapse_weights[h, 2 * d + 1, :] = setup.weight
            cfg.synapse_labels[h, 2 * d, :] = 0
            cfg.synapse_labels[h, 2 * d + 1, :] = 1
    for c in range(chip.PADI_BUSES):
        for h in range(chip.N_HEMISPHERES):
            i, o = chip.CROSSBAR_HOST_INPUT_OFFSET + c, h * chip.PADI_BUSES + c
            cfg.crossbar_enable[i, o] = True
            cfg.crossbar_mask[i, o] = chip.LABEL_CHANNEL_MASK
            cfg.crossbar_target[i, o] = c << chip.LABEL_CHANNEL_SHIFT
    return cfg


def refractory_seconds(cfg: ChipConfig) -> np.ndarray:
    """Nominal (uncalibrated) refractory time per neuron of a configuration."""
    return chip.refractory_seconds(cfg.refractory_counter, cfg.refractory_clock_scale[_QUADRANT])


def idle_stimulus(n_trials: int, duration_s: float) -> Stimulus:
    ticks = int(round(duration_s / chip.TICK_S))
    return Stimulus(np.empty(0, EVENT_DTYPE), np.zeros(n_trials + 1, np.int64), np.full(n_trials, ticks, np.uint64))


def burst_stimulus(
    labels_per_trial, n_bursts: int, first_s: float, interval_s: float, spacing_ticks: int, duration_s: float
) -> tuple[Stimulus, np.ndarray]:
    """Trials of ``n_bursts`` bursts; burst ``k`` of trial ``t`` sends ``labels_per_trial[t]``
    ``spacing_ticks`` apart from ``first_s + k * interval_s``. Returns the stimulus and the
    (n_trials, n_bursts) mean event time of each burst in seconds."""
    trials, centres = [], []
    start = np.rint((first_s + interval_s * np.arange(n_bursts)) / chip.TICK_S).astype(np.int64)
    for labels in labels_per_trial:
        labels = np.asarray(labels, np.uint16)
        offs = spacing_ticks * np.arange(labels.size)
        ev = np.empty(n_bursts * labels.size, EVENT_DTYPE)
        ev["tick"] = (start[:, None] + offs[None, :]).ravel()
        ev["label"] = np.tile(labels, n_bursts)
        trials.append(ev)
        centres.append((start + offs.mean()) * chip.TICK_S)
    ticks = int(round(duration_s / chip.TICK_S))
    return Stimulus.from_trials(trials, ticks), np.array(centres)


# =============================================================================================
# results
# =============================================================================================
def _reasons(n=N):
    return np.full(n, "", dtype=object)


@attrs.frozen(eq=False)
class RestResult:
    mean: np.ndarray
    std: np.ndarray
    sem: np.ndarray
    valid: np.ndarray
    reasons: np.ndarray


@attrs.frozen(eq=False)
class SpikingResult:
    v_reset: np.ndarray
    v_threshold: np.ndarray
    tau_mem: np.ndarray
    refractory: np.ndarray
    v_drive: np.ndarray  # level the membrane charges towards (leak + offset current)
    isi: np.ndarray
    n_spikes: np.ndarray
    tau_mem_err: np.ndarray
    v_reset_err: np.ndarray
    refractory_err: np.ndarray
    sigma: np.ndarray
    valid: np.ndarray
    reasons: np.ndarray


@attrs.frozen(eq=False)
class PspResult:
    tau_syn: np.ndarray
    tau_syn_err: np.ndarray
    gain: np.ndarray
    gain_err: np.ndarray
    baseline: np.ndarray
    sigma: np.ndarray
    valid: np.ndarray
    reasons: np.ndarray


# =============================================================================================
# measure
# =============================================================================================
def measure_rest(
    session, config: ChipConfig, *, n_trials: int = 4, duration_s: float = 60e-6, what="rest"
) -> RestResult:
    """Mean CADC reading per neuron with no input (``config`` should keep neurons silent)."""
    m = session.run(
        config, idle_stimulus(n_trials, duration_s), Recording(spikes=True, cadc_period_s=CADC_PERIOD_S), what=what
    )
    if m.cadc is None or m.cadc.samples.size == 0:
        raise CalibrationError(
            f"{what}: the device returned no CADC samples (Recording.cadc_period_s = {CADC_PERIOD_S:g} s was requested)"
        )
    x = m.cadc.samples.reshape(-1, N).astype(np.float64)
    mean = x.mean(0)
    std = x.std(0)
    sem = std / np.sqrt(max(x.shape[0], 1)) + 0.29 / np.sqrt(max(x.shape[0], 1))
    reasons = _reasons()
    valid = np.ones(N, bool)
    sat = (x.max(0) >= chip.CADC_MAX) | (x.min(0) <= 0)
    reasons[sat] = "CADC saturated (reading 0 or 255)"
    valid &= ~sat
    spiking = np.zeros(N, bool)
    if m.spikes.size:
        spiking[np.unique(m.spikes["neuron"])] = True
    reasons[spiking & valid] = "neuron fired while it should rest (threshold below resting potential)"
    valid &= ~spiking
    mean = np.where(valid, mean, np.nan)
    return RestResult(mean, std, sem, valid, reasons)


def _fold_on_spikes(m, n_trials):
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
    # to (N, M)
    shape = (T * S, N)
    return v.reshape(shape).T, since.reshape(shape).T, isi.reshape(shape).T


def _isi_stats(spikes):
    """Per neuron: mean and count of inter-spike intervals within trials, and spike counts."""
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


def measure_drive(
    session, config: ChipConfig, *, n_trials: int = 4, duration_s: float = 40e-6, what="drive"
) -> RestResult:
    """The level a driven neuron charges towards (leak plus offset current): the resting
    potential of ``config`` with the threshold out of reach."""
    return measure_rest(
        session,
        rest_config(config, i_mem_offset=config.i_mem_offset),
        n_trials=n_trials,
        duration_s=duration_s,
        what=what,
    )


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
    :func:`measure_drive` (recommended; else it is fitted too). Only samples in the first
    ``late_cut`` of each neuron's mean charging time enter the fit: near the threshold the
    cycles that have not fired yet are those with a downward noise excursion, which would
    bias the curve. The threshold is the fitted curve at the mean inter-spike interval.
    """
    m = session.run(
        config, idle_stimulus(n_trials, duration_s), Recording(spikes=True, cadc_period_s=CADC_PERIOD_S), what=what
    )
    if m.cadc is None or m.cadc.samples.size == 0:
        raise CalibrationError(
            f"{what}: the device returned no CADC samples (Recording.cadc_period_s = {CADC_PERIOD_S:g} s was requested)"
        )
    reasons = _reasons()
    isi_mean, isi_std, n_isi, isi_min, n_spikes = _isi_stats(m.spikes)
    valid = n_isi >= min_intervals
    none = n_spikes == 0
    reasons[none] = (
        "no spikes while driven above threshold (drive too weak, threshold too high, or spikes not reported)"
    )
    reasons[~none & ~valid] = f"too few spikes for a fit (need {min_intervals + 1} in a trial)"
    if drive is not None:
        drive = np.asarray(drive, np.float64)
        nodrive = valid & ~np.isfinite(drive)
        reasons[nodrive] = "drive level unknown (its measurement failed)"
        valid &= ~nodrive
    if not np.any(valid):
        nan = np.full(N, np.nan)
        return SpikingResult(nan, nan, nan, nan, nan, isi_mean, n_spikes, nan, nan, nan, nan, valid, reasons)
    v, since, cycle = _fold_on_spikes(m, n_trials)
    sat = (v >= chip.CADC_MAX) | (v <= 0)
    # a sample taken while its neuron fires may catch the drop to reset half-way: keep clear of spikes
    near_spike = (since < SPIKE_GUARD_S) | (np.isfinite(cycle) & (cycle - since < SPIKE_GUARD_S))
    sat |= near_spike
    t_nominal = refractory_seconds(config)
    t_charge = np.maximum(isi_mean - np.minimum(t_nominal, isi_mean), 0)
    s_cut = np.minimum(t_nominal, isi_mean) + late_cut * t_charge
    early = np.isfinite(since) & (since <= s_cut[:, None])
    w = (early & ~sat & valid[:, None]).astype(np.float64)
    s = np.where(np.isfinite(since), since, 0.0)
    t0_max = np.where(np.isfinite(isi_min), np.minimum(isi_min, isi_mean) * 0.98, 1e-6)
    C = None if drive is None else np.where(np.isfinite(drive), drive, 0.0)
    t0_guess = np.minimum(t_nominal, 0.8 * t0_max)
    f = fit.fit_charging(s, v, w, t0_guess, t0_max, C=C)
    # robustness: drop samples more than 6 robust sigmas off the fit and refit those neurons
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
    tau = f["tau"]
    R, C, t0 = f["R"], f["C"], f["t0"]
    # correlated noise: inflate the fit errors (residuals in sample order)
    infl = fit.ar1_inflation(v - fit.charging_curve(s, R, C, tau, t0), w)
    for k in ("tau_err", "R_err", "t0_err"):
        f[k] = f[k] * infl
    with np.errstate(invalid="ignore", over="ignore"):
        v_th = C - (C - R) * np.exp(-(isi_mean - t0) / tau)
    # plausibility of each fit
    n_charge = (w * (s > t0[:, None])).sum(1)
    few = valid & (n_charge < 10)
    reasons[few] = "too few CADC samples on the charging curve (< 10); lengthen the run"
    valid &= ~few
    bad = valid & ~(np.isfinite(tau) & (tau > 0.25e-6) & (tau < 190e-6) & (C > R))
    reasons[bad] = "charging curve fit failed (time constant at the search limit or curve not rising)"
    valid &= ~bad
    noisy = valid & (f["sigma"] > 4.0)
    reasons[noisy] = "charging curve fit residual > 4 LSB (irregular firing)"
    valid &= ~noisy
    nan = lambda x: np.where(valid, x, np.nan)  # noqa: E731
    return SpikingResult(
        v_reset=nan(R),
        v_threshold=nan(v_th),
        tau_mem=nan(tau),
        refractory=nan(t0),
        v_drive=nan(C),
        isi=isi_mean,
        n_spikes=n_spikes,
        tau_mem_err=nan(f["tau_err"]),
        v_reset_err=nan(f["R_err"]),
        refractory_err=nan(f["t0_err"]),
        sigma=f["sigma"],
        valid=valid,
        reasons=reasons,
    )


def _fold_on_bursts(ticks, centres, latency):
    """Time since the latest and the previous burst for each sample: two (1, T*S) arrays (-1 where none)."""
    t = ticks.astype(np.float64) * chip.TICK_S  # (T, S)
    out1 = np.full(t.shape, -1.0)
    out2 = np.full(t.shape, -1.0)
    for i in range(t.shape[0]):
        c = centres[i] + latency
        k = np.searchsorted(c, t[i], side="right") - 1
        has1 = k >= 0
        out1[i, has1] = t[i, has1] - c[k[has1]]
        has2 = k >= 1
        out2[i, has2] = t[i, has2] - c[k[has2] - 1]
    return out1.reshape(1, -1), out2.reshape(1, -1)


def measure_psp(
    session,
    config: ChipConfig,
    setup: SynapseSetup,
    tau_mem,
    *,
    latency_s: float = 0.0,
    tau_syn_guess: dict | None = None,
    n_trials: int = 3,
    n_bursts: int = 6,
    interval_s: float = 80e-6,
    signs=("exc", "inh"),
    what="psp",
) -> dict[str, PspResult]:
    """``tau_syn`` and weight gain per neuron and sign from CADC-sampled PSPs (``config``
    from :func:`psp_config`). ``tau_mem`` (512,) is the membrane time constant per neuron."""
    tau_mem = np.asarray(tau_mem, np.float64)
    first = 10e-6
    duration = first + n_bursts * interval_s
    labels = [setup.labels(sign) for sign in signs for _ in range(n_trials)]
    stim, centres = burst_stimulus(labels, n_bursts, first, interval_s, setup.spacing_ticks, duration)
    m = session.run(config, stim, Recording(spikes=True, cadc_period_s=CADC_PERIOD_S), what=what)
    if m.cadc is None or m.cadc.samples.size == 0:
        raise CalibrationError(f"{what}: the device returned no CADC samples")
    if m.health.events_dropped_input:
        raise CalibrationError(
            f"{what}: the device dropped {m.health.events_dropped_input} input events; the PSP amplitudes would be wrong"
        )
    out = {}
    fired = np.zeros(N, bool)
    if m.spikes.size:
        fired[np.unique(m.spikes["neuron"])] = True
    for g, sign in enumerate(signs):
        sl = slice(g * n_trials, (g + 1) * n_trials)
        samples = m.cadc.samples[sl]
        s1, s2 = _fold_on_bursts(m.cadc.ticks[sl], centres[sl], latency_s)
        v = samples.reshape(-1, N).T.astype(np.float64)
        sat = (v >= chip.CADC_MAX) | (v <= 0)
        reasons = _reasons()
        ok_tau = np.isfinite(tau_mem) & (tau_mem > 0)
        reasons[~ok_tau] = "membrane time constant unknown (its measurement failed)"
        w = (~sat).astype(np.float64) * ok_tau[:, None]
        guess = None
        if tau_syn_guess is not None and sign in tau_syn_guess:
            g_arr = np.asarray(tau_syn_guess[sign], np.float64)
            if np.any(np.isfinite(g_arr)):
                guess = np.where(np.isfinite(g_arr), g_arr, np.median(g_arr[np.isfinite(g_arr)]))
        f = fit.fit_psp([s1, s2], v, w, np.where(ok_tau, tau_mem, 10e-6), tau_guess=guess)
        J = f["J"] if sign == "exc" else -f["J"]
        gain = J / setup.weight_sum
        gain_err = f["J_err"] / setup.weight_sum
        valid = ok_tau.copy()
        too_sat = valid & (sat.mean(1) > 0.05)
        reasons[too_sat] = "PSPs leave the CADC range (more than 5% of samples at 0 or 255)"
        valid &= ~too_sat
        spk = valid & fired
        reasons[spk] = "neuron fired during the PSP measurement (threshold too low)"
        valid &= ~spk
        tiny = valid & ~(J > 4 * np.maximum(f["J_err"], 1e-9))
        reasons[tiny] = "no measurable PSP (synaptic input not reaching the neuron, or gain ~0)"
        valid &= ~tiny
        bad = valid & ~((f["tau_s"] > 0.12e-6) & (f["tau_s"] < 75e-6))
        reasons[bad] = "PSP fit failed (synaptic time constant at the search limit)"
        valid &= ~bad
        nan = lambda x: np.where(valid, x, np.nan)  # noqa: E731
        out[sign] = PspResult(
            nan(f["tau_s"]),
            nan(f["tau_s_err"]),
            nan(gain),
            nan(gain_err),
            nan(f["baseline"]),
            f["sigma"],
            valid,
            reasons,
        )
    return out


def measure_latency(
    session,
    config: ChipConfig,
    setup: SynapseSetup,
    tau_mem,
    neurons=(0, 128, 256, 384),
    *,
    n_trials: int = 8,
    what="latency",
) -> dict:
    """Input latency (event time to current onset) from MADC membrane traces of ``neurons``
    (one run each): the PSP model with a time shift fitted on a grid of shifts.
    Returns ``{"latency_s": median, "per_neuron": array, "err_s": spread}``."""
    tau_mem = np.asarray(tau_mem, np.float64)
    first, window = 3e-6, 25e-6
    n_samples = int(window / chip.MADC_SAMPLE_PERIOD_S)
    stim, centres = burst_stimulus([setup.labels("exc")] * n_trials, 1, first, window, setup.spacing_ticks, window)
    shifts = np.arange(-200e-9, 600e-9 + 1e-12, 8e-9)
    found = []
    for n in neurons:
        if not np.isfinite(tau_mem[n]):
            continue
        m = session.run(
            config,
            stim,
            Recording(spikes=False, madc_neuron=int(n), madc_source="membrane", madc_samples=n_samples),
            what=f"{what}[{n}]",
        )
        if m.madc is None or m.madc.samples.size == 0:
            raise CalibrationError(f"{what}: the device returned no MADC samples for neuron {n}")
        trace = m.madc.samples.astype(np.float64).mean(0)
        t = m.madc.times()
        v = np.broadcast_to(trace, (shifts.size, trace.size))
        s1 = t[None, :] - (centres[0, 0] + shifts[:, None])
        wgt = np.ones_like(v)
        f = fit.fit_psp([s1], v, wgt, np.full(shifts.size, tau_mem[n]))
        sse = f["sigma"] ** 2
        k = int(np.argmin(sse))
        if 0 < k < shifts.size - 1:  # parabolic refinement
            a, b, c = sse[k - 1], sse[k], sse[k + 1]
            den = a - 2 * b + c
            frac = 0.5 * (a - c) / den if den > 0 else 0.0
            found.append(shifts[k] + frac * (shifts[1] - shifts[0]))
        else:
            found.append(shifts[k])
    if not found:
        raise CalibrationError(f"{what}: no neuron with a known membrane time constant among {list(neurons)}")
    per = np.array(found)
    return {"latency_s": float(np.median(per)), "per_neuron": per, "err_s": float(per.std())}
