"""Synaptic time constants, weight gains and the input latency.

- :func:`measure_psp`: host events through configured synapse rows (excitatory and
  inhibitory trials in one run); CADC samples folded on the time since the latest input burst
  are fitted with the current-based LIF PSP (``tau_mem`` known): ``tau_syn`` and the current
  jump, hence the weight gain.
- :func:`measure_latency`: the input latency (event time to current onset) from MADC traces
  of a few neurons (34 ns samples: the only readout fine enough for tens of ns).
"""

from __future__ import annotations

import attrs
import numpy as np

from hil import chip
from hil.config import ChipConfig
from hil.errors import CalibrationError
from hil.stimulus import Recording

from .. import fit
from .rest import CADC_RECORDING, reasons_array, require_cadc
from .setups import N, SynapseSetup, burst_stimulus


@attrs.frozen(eq=False)
class PspResult:
    """Per neuron (512,) of one sign: ``tau_syn`` (s), ``gain`` (LSB of current per weight LSB),
    their standard errors, the fitted ``baseline`` (LSB) and residual ``sigma``; ``nan`` where
    ``valid`` is False (``reasons`` says why)."""

    tau_syn: np.ndarray
    tau_syn_err: np.ndarray
    gain: np.ndarray
    gain_err: np.ndarray
    baseline: np.ndarray
    sigma: np.ndarray
    valid: np.ndarray
    reasons: np.ndarray


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


def _guess(tau_syn_guess, sign):
    """Per-neuron start value of the ``tau_syn`` search (missing neurons: the median), or None."""
    if tau_syn_guess is None or sign not in tau_syn_guess:
        return None
    g = np.asarray(tau_syn_guess[sign], np.float64)
    if not np.any(np.isfinite(g)):
        return None
    return np.where(np.isfinite(g), g, np.median(g[np.isfinite(g)]))


def _fit_sign(v, s1, s2, tau_mem, fired, setup, sign, guess) -> PspResult:
    """Fit the PSPs of one sign: ``v`` (512, M) readings, ``s1``/``s2`` times since the
    latest/previous burst."""
    sat = (v >= chip.CADC_MAX) | (v <= 0)
    reasons = reasons_array()
    ok_tau = np.isfinite(tau_mem) & (tau_mem > 0)
    reasons[~ok_tau] = "membrane time constant unknown (its measurement failed)"
    w = (~sat).astype(np.float64) * ok_tau[:, None]
    f = fit.fit_psp([s1, s2], v, w, np.where(ok_tau, tau_mem, 10e-6), tau_guess=guess)
    J = f["J"] if sign == "exc" else -f["J"]
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

    def keep(x):
        return np.where(valid, x, np.nan)

    return PspResult(
        keep(f["tau_s"]),
        keep(f["tau_s_err"]),
        keep(J / setup.weight_sum),
        keep(f["J_err"] / setup.weight_sum),
        keep(f["baseline"]),
        f["sigma"],
        valid,
        reasons,
    )


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
    from :func:`~calibration.measure.psp_config`). ``tau_mem`` (512,) is the membrane time
    constant per neuron; ``tau_syn_guess``: sign -> (512,) start values of the fit."""
    tau_mem = np.asarray(tau_mem, np.float64)
    first = 10e-6
    duration = first + n_bursts * interval_s
    labels = [setup.labels(sign) for sign in signs for _ in range(n_trials)]
    stim, centres = burst_stimulus(labels, n_bursts, first, interval_s, setup.spacing_ticks, duration)
    m = session.run(config, stim, CADC_RECORDING, what=what)
    require_cadc(m, what)
    if m.health.events_dropped_input:
        raise CalibrationError(
            f"{what}: the device dropped {m.health.events_dropped_input} input events; "
            "the PSP amplitudes would be wrong"
        )
    fired = np.zeros(N, bool)
    if m.spikes.size:
        fired[np.unique(m.spikes["neuron"])] = True
    out = {}
    for g, sign in enumerate(signs):
        sl = slice(g * n_trials, (g + 1) * n_trials)
        s1, s2 = _fold_on_bursts(m.cadc.ticks[sl], centres[sl], latency_s)
        v = m.cadc.samples[sl].reshape(-1, N).T.astype(np.float64)
        out[sign] = _fit_sign(v, s1, s2, tau_mem, fired, setup, sign, _guess(tau_syn_guess, sign))
    return out


def _best_shift(trace, t, burst_s, tau_mem, shifts):
    """The time shift (of ``shifts``) whose PSP fit to ``trace`` has the least squared error,
    refined by a parabola through the neighbours."""
    v = np.broadcast_to(trace, (shifts.size, trace.size))
    s1 = t[None, :] - (burst_s + shifts[:, None])
    f = fit.fit_psp([s1], v, np.ones_like(v), np.full(shifts.size, tau_mem))
    sse = f["sigma"] ** 2
    k = int(np.argmin(sse))
    if not 0 < k < shifts.size - 1:
        return shifts[k]
    a, b, c = sse[k - 1], sse[k], sse[k + 1]
    den = a - 2 * b + c
    frac = 0.5 * (a - c) / den if den > 0 else 0.0
    return shifts[k] + frac * (shifts[1] - shifts[0])


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
        recording = Recording(spikes=False, madc_neuron=int(n), madc_source="membrane", madc_samples=n_samples)
        m = session.run(config, stim, recording, what=f"{what}[{n}]")
        if m.madc is None or m.madc.samples.size == 0:
            raise CalibrationError(f"{what}: the device returned no MADC samples for neuron {n}")
        trace = m.madc.samples.astype(np.float64).mean(0)
        found.append(_best_shift(trace, m.madc.times(), centres[0, 0], tau_mem[n], shifts))
    if not found:
        raise CalibrationError(f"{what}: no neuron with a known membrane time constant among {list(neurons)}")
    per = np.array(found)
    return {"latency_s": float(np.median(per)), "per_neuron": per, "err_s": float(per.std())}
