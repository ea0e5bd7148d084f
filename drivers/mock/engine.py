"""Simulation of the mock chip's LIF neurons: inputs of one run -> spikes, counters and ADC codes.

Per neuron (potentials and currents in LSB, times in s)::

    tau_mem dV/dt = -(V - v_rest) + I_exc - I_inh + noise,   tau_x dI_x/dt = -I_x,
    I_x += q at each arriving event,  spike when V >= theta, then V = v_reset for t_ref.

``drivers.mock.kernel`` integrates this exactly between events (closed form) and finds every
threshold crossing exactly; nothing is rounded to a time grid. Noise (when on): a
piecewise-constant noise current, redrawn every ``kernel.SEGMENT_S``, scaled so the membrane
fluctuation has the chip's rms; a fresh threshold offset per spike; timing jitter on every
event arrival. Random numbers are counter-based (``drivers.mock.streams``), so a trial's
result depends only on the run seed and its index.

Trials run in chunks of ``TRIAL_CHUNK`` on the chip's thread pool (the kernel releases the
GIL); at most a few chunks are in flight, so the spikes held at once stay bounded.

(``simulate`` runs past 60 lines: it packs the kernel's 25 arguments.)
"""

from __future__ import annotations

import collections
import itertools

import attrs
import numpy as np

from hil import chip
from hil.errors import DeviceError
from hil.measurement import SPIKE_DTYPE

from . import kernel, tables
from .physics import SYNIN_BASELINE, NeuronParameters, ReadoutModel
from .streams import GAUSS_SUM_MAX
from .trajectory import psp_max

TRIAL_CHUNK = 16


@attrs.frozen(eq=False)
class Noise:
    """Temporal noise of a run (all zero when noise is off), the fixed latencies (host event ->
    synapse, spike -> synapse), and how far below threshold (LSB) a neuron must stay to count as
    unable to fire (0 without noise)."""

    membrane_rms: float
    threshold_rms: float
    jitter_rms_s: float
    input_latency_s: float
    spike_latency_s: float
    quiet_margin: float


@attrs.frozen(eq=False)
class Probe:
    """What a run records besides spikes.

    madc_column: index (into the N) the MADC records, or -1; madc_source one of ``hil.chip.MADC_SOURCES``
    cadc_times:  (T, S) float64 sample times in s, ascending per trial, or None
    counters:    read the spike counters
    readout:     the chip's ADC model; ``adc_noise`` switches its noise
    """

    readout: ReadoutModel
    adc_noise: bool
    madc_column: int = -1
    madc_source: str = "membrane"
    madc_samples: int = 0
    cadc_times: np.ndarray | None = None
    counters: bool = False


@attrs.frozen(eq=False)
class Result:
    """Spikes (``SPIKE_DTYPE``, sorted by trial, tick, neuron) of recording neurons that reached the
    host, how many more were dropped, counters (T, 512) uint16, MADC (T, S) uint16 and CADC
    (T, S, 512) uint8 codes (each None when not recorded)."""

    spikes: np.ndarray
    dropped: int
    counters: np.ndarray | None
    madc: np.ndarray | None
    cadc: np.ndarray | None


@attrs.frozen(eq=False)
class Tables:
    """What the kernel reads of N neurons' parameters; it follows from their effective parameters and
    the chip's noise and latency alone, so the chip keeps it while those stay (``ChipState.tables``).

    parameters: (N, tables.N_ROWS) float64: rates, closed-form coefficients, bounds
    growth:     (tables.GROWTH_ROWS, 3, N) float64: e^{s / tau} of the membrane, excitatory and inhibitory
                time constants at the segment times s where host events can arrive (one per tick, less jitter)
    """

    parameters: np.ndarray
    growth: np.ndarray

    @classmethod
    def of(cls, params: NeuronParameters, columns: np.ndarray, noise: Noise) -> Tables:
        """The tables of the neurons ``columns`` (global indices) with effective parameters ``params``."""
        tau = (params.tau_mem[columns], params.tau_syn_exc[columns], params.tau_syn_inh[columns])
        potentials = (params.v_rest[columns], params.v_reset[columns], params.v_threshold[columns])
        return cls(
            _parameter_table(*potentials, *tau, params.refractory[columns], noise.membrane_rms),
            _growth_table(*tau, noise.input_latency_s),
        )


def _parameter_table(v_rest, v_reset, v_threshold, tau_mem, tau_exc, tau_inh, refractory, membrane_rms) -> np.ndarray:
    """(N, tables.N_ROWS) float64 from (N,) potentials (LSB), time constants and refractory times (s)."""
    H = tables.SEGMENT_S
    a, b, c = 1.0 / tau_mem, 1.0 / tau_exc, 1.0 / tau_inh
    a_hold = np.exp(-H * a)
    ce, ci = tau_exc / (tau_exc - tau_mem), tau_inh / (tau_inh - tau_mem)
    noise_i = membrane_rms * np.sqrt((1 + a_hold) / (1 - a_hold))
    rows = {
        tables.V_REST: v_rest,
        tables.V_RESET: v_reset,
        tables.V_THR: v_threshold,
        tables.RATE_M: a,
        tables.RATE_E: b,
        tables.RATE_I: c,
        tables.CE: ce,
        tables.CI: ci,
        tables.EM_H: a_hold,
        tables.FE_H: np.exp(-H * b),
        tables.FI_H: np.exp(-H * c),
        tables.KMAX_H: psp_max(tau_mem, tau_exc, H),
        tables.KPEAK: psp_max(tau_mem, tau_exc),
        tables.T_REF: refractory,
        tables.NOISE_I: noise_i,
        tables.KE_H: ce * (np.exp(-H * b) - a_hold),
        tables.KI_H: ci * (np.exp(-H * c) - a_hold),
        tables.NOISE_MAX: noise_i * GAUSS_SUM_MAX,
        tables.GM_H: np.exp(H * a),
        tables.GE_H: np.exp(H * b),
        tables.GI_H: np.exp(H * c),
    }
    table = np.empty((v_rest.size, tables.N_ROWS))
    for column, values in rows.items():
        table[:, column] = values
    return table


def _growth_table(tau_mem, tau_exc, tau_inh, input_latency_s: float) -> np.ndarray:
    """(tables.GROWTH_ROWS, 3, N) float64 (``Tables.growth``) from (N,) time constants (s)."""
    s = (np.arange(tables.GROWTH_ROWS) - tables.GROWTH_LEAD) * chip.TICK_S + input_latency_s
    rates = np.stack([1.0 / tau_mem, 1.0 / tau_exc, 1.0 / tau_inh])
    return np.exp(s[:, None, None] * rates[None, :, :])


@attrs.frozen(eq=False)
class Neurons:
    """The simulated neurons of a run (N of them).

    columns:  (N,) int64 global neuron index of each, ascending
    tables:   their parameter and growth tables (``Tables``)
    host:     CSR over distinct host labels (ptr (L+1,), target (k,) int64 index into the N, q_exc, q_inh (k,) LSB)
    nn:       CSR over the N: current jumps a spike of each causes in the others (empty rows for non-senders)
    records:  (N,) bool, the neuron's spikes go to the host
    """

    columns: np.ndarray
    tables: Tables
    host: tuple
    nn: tuple
    records: np.ndarray


def simulate(
    nr: Neurons,
    events: tuple,
    trials: tuple,
    noise: Noise,
    seed: np.random.SeedSequence,
    probe: Probe,
    spike_budget: tuple,
    pool=None,
    workers: int = 1,
    cancel: np.ndarray | None = None,
) -> Result:
    """Simulate one run.

    events:       (tick (E,), label row (E,) int64 with -1 for dropped events, offsets (T+1,)); an event
                  arrives at its tick plus the input latency plus jitter
    trials:       (simulated time (T,) s, duration (T,) ticks); spikes count only inside the duration
    spike_budget: (per-trial budget (T,) int64, per-run maximum) of spikes that reach the host
    pool:         an executor with ``workers`` threads for the chunks (this thread runs the first one;
                  None: this thread runs all)
    cancel:       uint8 (1,); setting it nonzero from any thread ends the run with ``DeviceError``
    """
    sim_end, ticks = (np.ascontiguousarray(x, np.float64 if k == 0 else np.int64) for k, x in enumerate(trials))
    T = sim_end.size
    ticks_in, source, offsets = events
    ro, S = probe.readout, probe.madc_samples
    counters, madc, cadc_times, cadc = _readout_arrays(probe, T)
    cancel = np.zeros(1, np.uint8) if cancel is None else cancel
    budget, max_spikes = np.ascontiguousarray(spike_budget[0], np.int64), int(spike_budget[1])
    fixed = (
        np.uint64(seed.generate_state(1, np.uint64)[0]),
        sim_end,
        ticks,
        np.ascontiguousarray(offsets, np.int64),
        np.ascontiguousarray(ticks_in, np.int64),
        np.ascontiguousarray(source, np.int64),
        nr.host,
        nr.nn,
        nr.tables.parameters,
        nr.tables.growth,
        _noise_row(noise),
        np.ascontiguousarray(nr.records, np.bool_),
        np.ascontiguousarray(nr.columns, np.int64),
    )
    outputs = (
        counters,
        _readout_row(probe),
        S if probe.madc_column >= 0 else 0,
        madc,
        cadc_times,
        np.ascontiguousarray(ro.cadc_offset[nr.columns], np.float64),
        cadc,
        cancel,
    )

    def chunk(lo: int, left: int):
        return kernel.run_trials(lo, min(lo + TRIAL_CHUNK, T), *fixed, budget, left, *outputs)

    parts = _run_chunks(chunk, T, max_spikes, pool, workers)
    if any(p[4] for p in parts):
        raise DeviceError("run cancelled")
    spikes, over = _assemble(parts, max_spikes)
    return Result(
        spikes=spikes,
        dropped=int(sum(p[3] for p in parts)) + over,
        counters=counters if probe.counters else None,
        madc=madc if probe.madc_column >= 0 else None,
        cadc=cadc if probe.cadc_times is not None else None,
    )


def _readout_arrays(probe: Probe, T: int) -> tuple:
    """Zeroed outputs the kernel fills: counters (T, 512) uint16, MADC (T, S) uint16, CADC sample
    times (T, C) s and codes (T, C, 512) uint8; empty where not recorded."""
    counters = np.zeros((T, chip.N_NEURONS) if probe.counters else (0, 0), np.uint16)
    madc = np.zeros((T, probe.madc_samples) if probe.madc_column >= 0 else (0, 0), np.uint16)
    if probe.cadc_times is None:
        return counters, madc, np.zeros((0, 0)), np.zeros((0, 0, 0), np.uint8)
    cadc_times = np.ascontiguousarray(probe.cadc_times, np.float64)
    return counters, madc, cadc_times, np.zeros((T, cadc_times.shape[1], chip.N_NEURONS), np.uint8)


def _readout_row(probe: Probe) -> np.ndarray:
    """(8,) float64: the MADC's column, period, offset, gain, baseline, source and both ADCs' noise."""
    ro = probe.readout
    rec = np.zeros(8)
    rec[[tables.MADC_COL, tables.MADC_PERIOD, tables.MADC_OFFSET, tables.MADC_GAIN, tables.MADC_BASE]] = (
        probe.madc_column,
        chip.MADC_SAMPLE_PERIOD_S,
        ro.madc_offset,
        ro.madc_gain,
        SYNIN_BASELINE,
    )
    rec[tables.MADC_SRC] = chip.MADC_SOURCES.index(probe.madc_source)
    rec[[tables.MADC_NOISE, tables.CADC_NOISE]] = (ro.madc_noise, ro.cadc_noise) if probe.adc_noise else (0.0, 0.0)
    return rec


def _noise_row(noise: Noise) -> np.ndarray:
    """(6,) float64: membrane and threshold rms, jitter rms (s), spike and input latency (s), quiet margin."""
    flags = np.zeros(6)
    flags[[tables.M_RMS, tables.TH_RMS, tables.JIT_RMS, tables.LATENCY, tables.MARGIN, tables.IN_LATENCY]] = (
        noise.membrane_rms,
        noise.threshold_rms,
        noise.jitter_rms_s,
        noise.spike_latency_s,
        noise.quiet_margin,
        noise.input_latency_s,
    )
    return flags


def _run_chunks(chunk, T: int, max_spikes: int, pool, workers: int) -> list:
    """Results of every chunk in trial order; each chunk may keep at most the spikes still allowed
    when it starts, and at most twice the pool's threads are queued at once. The first chunk runs
    in this thread while the pool starts the next ones (no hand-off and wait for it)."""
    starts = list(range(0, T, TRIAL_CHUNK))
    kept, parts = 0, []
    if pool is None or len(starts) == 1:
        for lo in starts:
            parts.append(chunk(lo, max_spikes - kept))
            kept += parts[-1][1].size
        return parts
    todo = iter(starts[1:])
    window = collections.deque(pool.submit(chunk, lo, max_spikes) for lo in itertools.islice(todo, 2 * workers - 1))
    done = chunk(starts[0], max_spikes)
    while done is not None:
        parts.append(done)
        kept += done[1].size
        lo = next(todo, None)
        if lo is not None:
            window.append(pool.submit(chunk, lo, max(max_spikes - kept, 0)))
        done = window.popleft().result() if window else None
    return parts


def _assemble(parts: list, max_spikes: int) -> tuple[np.ndarray, int]:
    """Chunk outputs -> one ``SPIKE_DTYPE`` array (at most ``max_spikes``) and the number cut off."""
    per_trial = np.concatenate([p[0] for p in parts])
    n = int(per_trial.sum())
    keep = min(n, max_spikes)
    spikes = np.empty(keep, SPIKE_DTYPE)
    spikes["trial"] = np.repeat(np.arange(per_trial.size, dtype=np.uint32), per_trial)[:keep]
    spikes["tick"] = np.concatenate([p[1] for p in parts])[:keep]
    spikes["neuron"] = np.concatenate([p[2] for p in parts])[:keep]
    return spikes, n - keep
