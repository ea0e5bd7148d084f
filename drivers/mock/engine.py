"""Time-grid simulation of the mock chip's LIF neurons: a numba kernel walks each trial's grid.

Per neuron (potentials and currents in LSB, times in s)::

    tau_mem dV/dt = -(V - v_rest) + I_exc - I_inh + noise,   tau_x dI_x/dt = -I_x,
    I_x += q at each arriving event,  spike when V >= theta, then V = v_reset for t_ref.

The grid has step ``DT_S`` (64 ns). Between grid points the linear dynamics are propagated
exactly; an event arriving inside a step adds its exact contribution at the step's end
(sub-step arrival times kept to ``LAG_BIN_S`` = 0.5 ns). A threshold crossing inside a step is
timed by solving the second-order Taylor expansion of V around the step's end (V' and V''
are known analytically), falling back to linear interpolation; the error is far below the
8 ns tick. Neuron -> neuron spikes arrive after the chip's spike latency (plus jitter).

Noise (when on): a piecewise-constant noise current, redrawn every ``NOISE_HOLD_STEPS``
steps, scaled so the membrane fluctuation has the chip's rms (an Ornstein-Uhlenbeck-like
process with the membrane's time constant); a fresh threshold offset per spike; timing
jitter on every event arrival. Every random number is a counter-based hash (splitmix64) of
(run key, trial, stream, neuron or event, counter) turned Gaussian by Box-Muller, so a trial's
result depends only on the run seed and its index, never on how trials are split over threads.

Trials run in chunks of ``TRIAL_CHUNK`` on a thread pool (the kernel releases the GIL).
Without ADC recording a trial stops early once no event is pending and no neuron can reach
threshold any more.
"""

from __future__ import annotations

import concurrent.futures
import math
import os

import attrs
import numba
import numpy as np

from hil import chip

DT_S = 64e-9
NOISE_HOLD_STEPS = 6
LAG_BIN_S = 0.5e-9  # resolution of event arrival times inside a step
_LAG_BINS = int(round(DT_S / LAG_BIN_S))
TRIAL_CHUNK = 16
_QUIET_CHECK_STEPS = 16

# rows of the per-neuron parameter table handed to the kernel
_V_REST, _V_RESET, _V_THR, _TAU_M, _TAU_E, _TAU_I, _T_REF, _A, _CE, _CI, _KE, _KI, _NOISE_I, _PSP_PEAK = range(14)
# random streams
_S_JITTER_HOST, _S_V0, _S_THETA, _S_MEMBRANE, _S_JITTER_NN = 1, 2, 3, 4, 5


@attrs.frozen(eq=False)
class Neurons:
    """Per-run parameters of the simulated (active) neurons, each (N,) float64, and their wiring.

    host_exc, host_inh: (L, N) float32 current jumps (LSB) of each distinct host label
    nn_exc, nn_inh:     (N, N) float32 current jumps of a spike of neuron row onto neuron column
    sends:              (N,) bool, the neuron's spikes leave it (``enable_spike_out``)
    """

    v_rest: np.ndarray
    v_reset: np.ndarray
    v_threshold: np.ndarray
    tau_mem: np.ndarray
    tau_exc: np.ndarray
    tau_inh: np.ndarray
    refractory: np.ndarray
    host_exc: np.ndarray
    host_inh: np.ndarray
    nn_exc: np.ndarray
    nn_inh: np.ndarray
    sends: np.ndarray

    @property
    def size(self) -> int:
        return self.v_rest.size


@attrs.frozen(eq=False)
class Noise:
    """Temporal noise settings of a run; all zero when noise is off."""

    membrane_rms: float
    threshold_rms: float
    jitter_rms_s: float
    spike_latency_s: float


@attrs.frozen(eq=False)
class Probe:
    """What to record besides spikes.

    madc_column: active-neuron index the MADC records (or -1), madc_source: one of ``hil.chip.MADC_SOURCES``
    cadc_times:  (n_trials, n_samples) float64 sample times in s, ascending per trial (or None)
    """

    madc_column: int = -1
    madc_source: str = "membrane"
    cadc_times: np.ndarray | None = None


@attrs.frozen(eq=False)
class Result:
    """Raw output of a run: spikes as (trial, time_s, neuron, theta) arrays (neuron an
    active-neuron index), sorted by trial; MADC grid trace (T, n_steps + 1) float32 or None;
    CADC values (T, S, N) float32 or None."""

    spike_trial: np.ndarray
    spike_time: np.ndarray
    spike_neuron: np.ndarray
    spike_theta: np.ndarray
    madc: np.ndarray | None
    cadc: np.ndarray | None


def psp_kernel(lag, tau_mem, tau_syn):
    """Membrane response at ``lag`` (s) to a unit current jump at 0, from rest:
    ``tau_syn / (tau_syn - tau_mem) * (exp(-lag/tau_syn) - exp(-lag/tau_mem))``."""
    lag, tau_mem, tau_syn = np.broadcast_arrays(*(np.asarray(x, dtype=np.float64) for x in (lag, tau_mem, tau_syn)))
    em = np.exp(-lag / tau_mem)
    near = np.abs(tau_syn - tau_mem) < 1e-4 * tau_mem
    diff = np.where(near, 1.0, tau_syn - tau_mem)
    return np.where(near, lag / tau_mem * em, tau_syn / diff * (np.exp(-lag / tau_syn) - em))


def psp_peak(tau_mem, tau_syn):
    """Maximum over the lag of ``psp_kernel`` (reached at ``ln(tau_mem/tau_syn) / (1/tau_syn - 1/tau_mem)``)."""
    tau_mem, tau_syn = np.broadcast_arrays(np.asarray(tau_mem, np.float64), np.asarray(tau_syn, np.float64))
    near = np.abs(tau_syn - tau_mem) < 1e-4 * tau_mem
    ts = np.where(near, tau_mem * 1.5, tau_syn)
    t_peak = np.where(near, tau_mem, np.log(tau_mem / ts) / (1 / ts - 1 / tau_mem))
    return psp_kernel(t_peak, tau_mem, tau_syn) * (1 + 1e-9)


def simulate(
    neurons: Neurons,
    event_time,
    event_trial,
    event_source,
    trial_end_s,
    noise: Noise,
    seed: np.random.SeedSequence,
    probe: Probe,
    workers: int | None = None,
) -> Result:
    """Simulate one trial per entry of ``trial_end_s`` (s), trial ``i`` up to ``trial_end_s[i]``
    (with the MADC on, every trial up to the longest). Host events: arrival time (s), trial and
    row of ``neurons.host_*`` (E,) each, sorted by trial."""
    trial_end_s = np.asarray(trial_end_s, dtype=np.float64)
    T, N = trial_end_s.size, neurons.size
    steps = np.maximum(1, np.ceil(trial_end_s / DT_S - 1e-9)).astype(np.int64)
    recording = probe.madc_column >= 0 or probe.cadc_times is not None
    if probe.madc_column >= 0:
        steps[:] = steps.max(initial=1)
    madc = np.zeros((T if probe.madc_column >= 0 else 0, int(steps.max(initial=1)) + 1), np.float32)
    cadc_times = np.zeros((0, 0)) if probe.cadc_times is None else np.ascontiguousarray(probe.cadc_times, np.float64)
    cadc = np.zeros((cadc_times.shape[0], cadc_times.shape[1], N if probe.cadc_times is not None else 0), np.float32)
    ev_ptr = np.searchsorted(np.asarray(event_trial, np.int64), np.arange(T + 1)).astype(np.int64)
    host = _sparse(neurons.host_exc, neurons.host_inh)
    nn = _sparse(neurons.nn_exc * neurons.sends[:, None], neurons.nn_inh * neurons.sends[:, None])
    params, lags = _tables(neurons, noise)
    key = np.uint64(seed.generate_state(1, np.uint64)[0])
    flags = np.array(
        [
            noise.membrane_rms,
            noise.threshold_rms,
            noise.jitter_rms_s,
            noise.spike_latency_s,
            6 * noise.membrane_rms + 6 * noise.threshold_rms + 1e-3,
        ]
    )
    event_time = np.ascontiguousarray(event_time, np.float64)
    event_source = np.ascontiguousarray(event_source, np.int64)
    source = chip.MADC_SOURCES.index(probe.madc_source)

    def one(lo):
        hi = min(lo + TRIAL_CHUNK, T)
        return _run_trials(
            lo,
            hi,
            key,
            steps,
            ev_ptr,
            event_time,
            event_source,
            *host,
            *nn,
            params,
            lags,
            flags,
            recording,
            probe.madc_column,
            source,
            madc,
            cadc_times,
            cadc,
        )

    starts = range(0, T, TRIAL_CHUNK)
    workers = workers or min(len(starts), os.cpu_count() or 1)
    if workers <= 1:
        parts = [one(lo) for lo in starts]
    else:
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            parts = list(pool.map(one, starts))
    empty = (np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.int64), np.zeros(0))
    trial, time, neuron, theta = (np.concatenate(x) for x in zip(empty, *parts))
    return Result(
        trial,
        time,
        neuron,
        theta,
        madc if probe.madc_column >= 0 else None,
        cadc if probe.cadc_times is not None else None,
    )


def _sparse(exc: np.ndarray, inh: np.ndarray):
    """(R, N) exc, inh current jumps -> CSR rows (ptr (R+1,), target (k,), q_exc (k,), q_inh (k,))."""
    row, col = np.nonzero((exc != 0) | (inh != 0))
    ptr = np.searchsorted(row, np.arange(exc.shape[0] + 1)).astype(np.int64)
    return ptr, col.astype(np.int64), exc[row, col].astype(np.float64), inh[row, col].astype(np.float64)


def _tables(nr: Neurons, noise: Noise):
    """Per-neuron parameter rows (14, N) and lag tables (4, _LAG_BINS + 1, N): current decay and
    membrane response (exc, inh) of an event ``lag`` bins before a grid point."""
    dt = DT_S
    a = np.exp(-dt / nr.tau_mem)
    a_hold = np.exp(-NOISE_HOLD_STEPS * dt / nr.tau_mem)
    params = np.stack(
        [
            nr.v_rest,
            nr.v_reset,
            nr.v_threshold,
            nr.tau_mem,
            nr.tau_exc,
            nr.tau_inh,
            nr.refractory,
            a,
            np.exp(-dt / nr.tau_exc),
            np.exp(-dt / nr.tau_inh),
            psp_kernel(dt, nr.tau_mem, nr.tau_exc),
            psp_kernel(dt, nr.tau_mem, nr.tau_inh),
            noise.membrane_rms * np.sqrt((1 + a_hold) / (1 - a_hold)),
            psp_peak(nr.tau_mem, nr.tau_exc),
        ]
    ).astype(np.float64)
    lag = (LAG_BIN_S * np.arange(_LAG_BINS + 1))[:, None]
    lags = np.stack(
        [
            np.exp(-lag / nr.tau_exc),
            psp_kernel(lag, nr.tau_mem, nr.tau_exc),
            np.exp(-lag / nr.tau_inh),
            psp_kernel(lag, nr.tau_mem, nr.tau_inh),
        ]
    )
    return np.ascontiguousarray(params), np.ascontiguousarray(lags, np.float64)


# --- counter-based random numbers ----------------------------------------------------------------
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_U30, _U27, _U31, _U32, _LOW32 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(32), np.uint64(0xFFFFFFFF)
_U16, _U48, _LOW16 = np.uint64(16), np.uint64(48), np.uint64(0xFFFF)
_SQRT3 = math.sqrt(3.0)


@numba.njit(cache=True, inline="always")
def _mix(z):
    """splitmix64 finaliser (a bijection of uint64 with full avalanche)."""
    z = (z ^ (z >> _U30)) * _M1
    z = (z ^ (z >> _U27)) * _M2
    return z ^ (z >> _U31)


@numba.njit(cache=True, inline="always")
def _key(key, a):
    """Derived key of ``key`` and a non-negative integer ``a``."""
    return _mix(key + (np.uint64(a) + np.uint64(1)) * _GOLDEN)


@numba.njit(cache=True, inline="always")
def _gauss(key, counter):
    """Standard normal number ``counter`` of stream ``key`` (Box-Muller on two 32-bit halves)."""
    h = _mix(key + (np.uint64(counter) + np.uint64(1)) * _GOLDEN)
    u1 = (np.float64(h >> _U32) + 0.5) * 2.0**-32
    u2 = np.float64(h & _LOW32) * 2.0**-32
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


@numba.njit(cache=True, inline="always")
def _gauss_sum(key, counter):
    """Approximately standard normal number ``counter`` of stream ``key``: the standardised sum
    of four 16-bit uniforms of one hash (Irwin-Hall; exact mean and variance, tails cut at
    3.46 sigma). Cheap enough for the membrane noise, which the membrane averages anyway."""
    h = _mix(key + (np.uint64(counter) + np.uint64(1)) * _GOLDEN)
    s = (h & _LOW16) + ((h >> _U16) & _LOW16) + ((h >> _U32) & _LOW16) + (h >> _U48)
    return (np.float64(s) * 2.0**-16 + (2.0**-15 - 2.0)) * _SQRT3


# --- the kernel ------------------------------------------------------------------------------------
@numba.njit(cache=True, inline="always")
def _step_of(t):
    """Grid step whose interval (n dt, (n+1) dt] holds time ``t`` (times <= 0 go to step 0)."""
    return max(np.int64(math.ceil(t / DT_S - 1e-9)) - 1, 0)


@numba.njit(cache=True, inline="always")
def _lag_bin(lag):
    return min(max(np.int64(round(lag / LAG_BIN_S)), 0), _LAG_BINS)


@numba.njit(cache=True, inline="always")
def _kernel(fs, em, tau_mem, tau_syn, lag):
    """``psp_kernel`` from ``fs = exp(-lag/tau_syn)`` and ``em = exp(-lag/tau_mem)``."""
    if abs(tau_syn - tau_mem) < 1e-4 * tau_mem:
        return lag / tau_mem * em
    return tau_syn / (tau_syn - tau_mem) * (fs - em)


@numba.njit(cache=True, inline="always")
def _relaxed(v_inf, v_start, ie, ii, r, tm, te, ti):
    """V after ``r`` s of free evolution from ``v_start``, given the currents (ie, ii) at the end."""
    em = math.exp(-r / tm)
    fe = math.exp(-r / te)
    fi = math.exp(-r / ti)
    return v_inf + (v_start - v_inf) * em + ie / fe * _kernel(fe, em, tm, te, r) - ii / fi * _kernel(fi, em, tm, ti, r)


@numba.njit(cache=True, inline="always")
def _deliver(V, Ie, Ii, lags, b, ptr, idx, qe, qi, row):
    """Add the contribution of an event of CSR ``row`` arriving ``b`` lag bins before the grid point."""
    for k in range(ptr[row], ptr[row + 1]):
        i, e, h = idx[k], qe[k], qi[k]
        Ie[i] += e * lags[0, b, i]
        Ii[i] += h * lags[2, b, i]
        V[i] += e * lags[1, b, i] - h * lags[3, b, i]


@numba.njit(cache=True)
def _grow(a, size):
    out = np.empty(max(2 * a.size, size), a.dtype)
    out[: a.size] = a
    return out


@numba.njit(cache=True, nogil=True)
def _run_trials(
    lo,
    hi,
    key,
    steps,
    ev_ptr,
    ev_time,
    ev_src,
    h_ptr,
    h_idx,
    h_qe,
    h_qi,
    n_ptr,
    n_idx,
    n_qe,
    n_qi,
    P,
    lags,
    flags,
    recording,
    madc_col,
    madc_src,
    madc,
    cadc_times,
    cadc,
):
    """Simulate trials [lo, hi); returns their spikes (trial, time, neuron, theta). Writes the
    MADC grid trace and CADC values of these trials into ``madc`` / ``cadc``."""
    N = P.shape[1]
    dt = DT_S
    m_rms, th_rms, jit_rms, latency, margin = flags[0], flags[1], flags[2], flags[3], flags[4]
    v_rest, v_reset, v_thr = P[_V_REST], P[_V_RESET], P[_V_THR]
    tau_m, tau_e, tau_i, t_ref = P[_TAU_M], P[_TAU_E], P[_TAU_I], P[_T_REF]
    a, ce, ci, ke, ki, noise_i, peak = P[_A], P[_CE], P[_CI], P[_KE], P[_KI], P[_NOISE_I], P[_PSP_PEAK]
    one_minus_a = 1.0 - a
    V, V0, Ie, Ii = np.empty(N), np.empty(N), np.empty(N), np.empty(N)
    theta, v_inf, drive, ref_end = np.empty(N), np.empty(N), np.empty(N), np.empty(N)
    n_spikes = np.zeros(N, np.int64)
    mem_keys = np.empty(N, np.uint64)
    cr = np.empty(N, np.int64)
    ref_idx = np.empty(N, np.int64)
    cr_t = np.empty(N)
    p_step, p_time, p_src = np.empty(64, np.int64), np.empty(64), np.empty(64, np.int64)
    o_trial, o_time, o_neuron, o_theta = np.empty(256, np.int64), np.empty(256), np.empty(256, np.int64), np.empty(256)
    n_out = 0
    S = cadc_times.shape[1]

    for trial in range(lo, hi):
        tkey = _key(key, trial)
        k_theta, k_nn = _key(tkey, _S_THETA), _key(tkey, _S_JITTER_NN)
        n_steps = steps[trial]
        # host events of the trial: jittered arrival, sorted, those inside the trial
        e0, e1 = ev_ptr[trial], ev_ptr[trial + 1]
        arrival = ev_time[e0:e1].copy()
        if jit_rms > 0:
            k_jit = _key(tkey, _S_JITTER_HOST)
            for j in range(arrival.size):
                arrival[j] += jit_rms * _gauss(k_jit, j)
        order = np.argsort(arrival, kind="mergesort")
        n_ev = 0
        while n_ev < order.size and _step_of(arrival[order[n_ev]]) < n_steps:
            n_ev += 1
        # initial state: at rest (a tonic neuron at reset) plus a membrane-noise sample
        k_v0, k_mem = _key(tkey, _S_V0), _key(tkey, _S_MEMBRANE)
        for i in range(N):
            V[i] = v_rest[i] if v_rest[i] < v_thr[i] else v_reset[i]
            if m_rms > 0:
                V[i] += m_rms * _gauss(k_v0, i)
            Ie[i] = 0.0
            Ii[i] = 0.0
            theta[i] = v_thr[i] + (th_rms * _gauss(_key(k_theta, i), 0) if th_rms > 0 else 0.0)
            v_inf[i] = v_rest[i]
            drive[i] = v_rest[i] * one_minus_a[i]
            ref_end[i] = -1.0
            n_spikes[i] = 0
            mem_keys[i] = _key(k_mem, i)
        n_ref = 0
        n_pend = 0
        ep = 0
        cs = 0
        if madc_col >= 0:
            madc[trial, 0] = V[madc_col] if madc_src == 0 else 0.0

        for n in range(n_steps):
            t1 = (n + 1) * dt
            if m_rms > 0 and n % NOISE_HOLD_STEPS == 0:
                c = n // NOISE_HOLD_STEPS
                for i in range(N):
                    v_inf[i] = v_rest[i] + noise_i[i] * _gauss_sum(mem_keys[i], c)
                    drive[i] = v_inf[i] * one_minus_a[i]
            # exact propagation over the step
            for i in range(N):
                v = V[i]
                V0[i] = v
                V[i] = a[i] * v + drive[i] + ke[i] * Ie[i] - ki[i] * Ii[i]
                Ie[i] *= ce[i]
                Ii[i] *= ci[i]
            # arriving host events and neuron -> neuron spikes
            while ep < n_ev:
                j = order[ep]
                t = arrival[j]
                if _step_of(t) > n:
                    break
                _deliver(V, Ie, Ii, lags, _lag_bin(t1 - t), h_ptr, h_idx, h_qe, h_qi, ev_src[e0 + j])
                ep += 1
            k = 0
            while k < n_pend:
                if p_step[k] == n:
                    _deliver(V, Ie, Ii, lags, _lag_bin(t1 - p_time[k]), n_ptr, n_idx, n_qe, n_qi, p_src[k])
                    n_pend -= 1
                    p_step[k], p_time[k], p_src[k] = p_step[n_pend], p_time[n_pend], p_src[n_pend]
                else:
                    k += 1
            # refractory neurons stay at reset; those whose refractory time ends now relax from reset
            r = 0
            while r < n_ref:
                i = ref_idx[r]
                if ref_end[i] >= t1:
                    V[i] = v_reset[i]
                    r += 1
                else:
                    V[i] = _relaxed(v_inf[i], v_reset[i], Ie[i], Ii[i], t1 - ref_end[i], tau_m[i], tau_e[i], tau_i[i])
                    ref_end[i] = -1.0
                    n_ref -= 1
                    ref_idx[r] = ref_idx[n_ref]
            # threshold crossings: time, record, reset
            n_cr = 0
            for i in range(N):
                n_cr += V[i] >= theta[i]
            if n_cr > 0:
                n_cr = 0
                for i in range(N):
                    if V[i] >= theta[i]:
                        cr[n_cr] = i
                        n_cr += 1
            for c in range(n_cr):
                i = cr[c]
                v1, th, ie, ii, vi, tm = V[i], theta[i], Ie[i], Ii[i], v_inf[i], tau_m[i]
                d1 = (vi - v1 + ie - ii) / tm
                d2 = (-d1 - ie / tau_e[i] + ii / tau_i[i]) / tm
                cc = v1 - th
                disc = d1 * d1 - 2.0 * d2 * cc
                delta = 0.0
                quad = 2.0 * cc / (d1 + math.sqrt(max(disc, 0.0))) if d1 > 0 else -1.0
                if d1 > 0 and disc >= 0 and 0.0 <= quad <= dt:
                    delta = quad
                elif v1 > V0[i]:
                    delta = dt * cc / (v1 - V0[i])
                delta = min(max(delta, 0.0), dt)
                t_spike = t1 - delta
                if n_out == o_trial.size:
                    o_trial, o_time = _grow(o_trial, n_out + 1), _grow(o_time, n_out + 1)
                    o_neuron, o_theta = _grow(o_neuron, n_out + 1), _grow(o_theta, n_out + 1)
                o_trial[n_out], o_time[n_out], o_neuron[n_out], o_theta[n_out] = trial, t_spike, i, th
                n_out += 1
                r = delta - t_ref[i]
                if r > 0:
                    V[i] = _relaxed(vi, v_reset[i], ie, ii, r, tm, tau_e[i], tau_i[i])
                else:
                    V[i] = v_reset[i]
                    if ref_end[i] < 0.0:
                        ref_idx[n_ref] = i
                        n_ref += 1
                    ref_end[i] = t_spike + t_ref[i]
                n_spikes[i] += 1
                theta[i] = v_thr[i] + (th_rms * _gauss(_key(k_theta, i), n_spikes[i]) if th_rms > 0 else 0.0)
                cr_t[c] = t_spike
            # deliveries of this step's spikes: now (still inside the step) or later
            for c in range(n_cr):
                i = cr[c]
                if n_ptr[i + 1] == n_ptr[i]:
                    continue
                s_t = cr_t[c] + latency
                if jit_rms > 0:
                    s_t += jit_rms * _gauss(_key(k_nn, i), n_spikes[i])
                s_step = max(_step_of(s_t), n)
                if s_step == n:
                    _deliver(V, Ie, Ii, lags, _lag_bin(t1 - s_t), n_ptr, n_idx, n_qe, n_qi, i)
                else:
                    if n_pend == p_step.size:
                        p_step, p_time, p_src = (
                            _grow(p_step, n_pend + 1),
                            _grow(p_time, n_pend + 1),
                            _grow(p_src, n_pend + 1),
                        )
                    p_step[n_pend], p_time[n_pend], p_src[n_pend] = s_step, s_t, i
                    n_pend += 1
            # recording
            if madc_col >= 0:
                madc[trial, n + 1] = V[madc_col] if madc_src == 0 else (Ie[madc_col] if madc_src == 1 else Ii[madc_col])
            while cs < S:
                ts = cadc_times[trial, cs]
                if _step_of(ts) > n:
                    break
                f = (ts - n * dt) / dt
                for i in range(N):
                    cadc[trial, cs, i] = V0[i] + f * (V[i] - V0[i])
                cs += 1
            # quiet: nothing pending and no neuron can reach threshold any more (V stays below
            # max(V, v_rest) + I_exc * max psp_kernel; a refractory neuron sits at reset) -> the trial is over
            if not recording and ep == n_ev and n_pend == 0 and n % _QUIET_CHECK_STEPS == 0:
                near = 0
                for i in range(N):
                    near += max(V[i], v_rest[i]) + Ie[i] * peak[i] - theta[i] >= -margin
                if near == 0:
                    break
    return o_trial[:n_out], o_time[:n_out], o_neuron[:n_out], o_theta[:n_out]
