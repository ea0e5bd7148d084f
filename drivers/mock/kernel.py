"""The mock chip's event-driven LIF simulation: a numba kernel that runs trials one at a time.

Time runs in noise segments of ``SEGMENT_S`` (the membrane-noise hold). Inside a segment a
neuron's drive is constant, so its trajectory is closed form between events
(``drivers.mock.trajectory``), kept as coefficients relative to the segment start. Events are
processed in time order from one queue (``drivers.mock.heap``): host events (pre-sorted),
neuron -> neuron arrivals, and each neuron's own next spike or end of reset hold. An input
updates the coefficients of its targets and, where a cheap bound says the neuron may now reach
threshold, its next crossing is found exactly. Nothing is rounded to a grid: spikes, resets,
holds and ADC samples happen at their exact times.

A neuron that cannot reach threshold without new input (noise on: without a 6 sigma
excursion) is parked: it leaves the per-segment sweep and is advanced in closed form only when
an input reaches it (the membrane noise over that stretch drawn as one Gaussian with the exact
variance of the segment-wise process). When every neuron is parked and nothing is queued, the
trial ends, or skips to its next input or ADC sample.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from hil import chip

from . import heap, streams
from .trajectory import first_crossing

SEGMENT_S = 384e-9  # membrane-noise hold; the unit of the outer loop

# rows of the per-neuron parameter table P (rates are inverse time constants)
V_REST, V_RESET, V_THR, RATE_M, RATE_E, RATE_I, CE, CI, EM_H, FE_H, FI_H, KMAX_H, KPEAK, T_REF, NOISE_I = range(15)
N_ROWS = 15
# rows of the per-neuron state table S: values at the segment start (V, E, I); coefficients of the
# closed form (A, EH, IH) and drive (VINF) in the segment; bound (UB), end of reset hold (HOLD, s),
# threshold, queue stamp, pending spike (0/1), factors to the segment end, spikes, counted spikes,
# time the values V, E, I refer to while parked (-1: in the sweep), never parked (0/1)
V, E, I, A, EH, IH, VINF, UB, HOLD, THETA, STAMP, PEND, EM, FE, FI, NSPK, COUNT, PARK, PIN = range(19)
N_STATE = 19
# noise settings: membrane rms, threshold rms, jitter rms (s), spike latency (s), quiet margin
M_RMS, TH_RMS, JIT_RMS, LATENCY, MARGIN = range(5)
# readout settings
MADC_COL, MADC_SRC, MADC_PERIOD, MADC_OFFSET, MADC_GAIN, MADC_NOISE, MADC_BASE, CADC_NOISE = range(8)
# queue item kinds, processed in this order at equal times (before host events at that time)
SPIKE, RELEASE, ARRIVAL = 0.0, 1.0, 2.0


@numba.njit(cache=True, inline="always", _nrt=False)
def _membrane(P, S, i, s):
    """V at segment time s of free neuron i."""
    v = S[VINF, i] + S[A, i] * math.exp(-P[RATE_M, i] * s) + S[EH, i] * P[CE, i] * math.exp(-P[RATE_E, i] * s)
    if S[IH, i] != 0.0:
        v -= S[IH, i] * P[CI, i] * math.exp(-P[RATE_I, i] * s)
    return v


@numba.njit(cache=True, _nrt=False)
def _schedule(P, S, Q, n, i, s0, s, w):
    """(Re)schedule free neuron i's next spike in [s, w] (segment time); returns the queue size.

    ``S[UB, i]`` becomes a bound of V over [s, w] without further input: the free relaxation is
    monotonic, so its maximum is at an end, and the current adds at most ``E(s) * KMAX_H``."""
    S[STAMP, i] += 1.0
    S[PEND, i] = 0.0
    ea, eb = math.exp(-P[RATE_M, i] * s), math.exp(-P[RATE_E, i] * s)
    vi = S[VINF, i]
    v = vi + S[A, i] * ea + S[EH, i] * P[CE, i] * eb
    if S[IH, i] != 0.0:
        v -= S[IH, i] * P[CI, i] * math.exp(-P[RATE_I, i] * s)
    S[UB, i] = max(v, vi + (v - vi) * (S[EM, i] / ea)) + S[EH, i] * eb * P[KMAX_H, i]
    if S[UB, i] < S[THETA, i]:
        return n
    tc = first_crossing(
        vi - S[THETA, i], S[A, i], S[EH, i] * P[CE, i], -S[IH, i] * P[CI, i], P[RATE_M, i], P[RATE_E, i], P[RATE_I, i], s, w
    )  # fmt: skip
    if tc < 0.0:
        return n
    S[PEND, i] = 1.0
    return heap.push(Q, n, s0 + tc, SPIKE, i, S[STAMP, i])


@numba.njit(cache=True, _nrt=False)
def _deliver(ptr, idx, qe, qi, row, s0, s, w, P, S, Q, n, active, na, keys, k, m_rms):
    """Input of CSR ``row`` at segment time s (segment k) to its targets, parked ones first brought
    into the sweep; returns the queue size and the sweep size."""
    t = s0 + s
    for j in range(ptr[row], ptr[row + 1]):
        i, e, h = idx[j], qe[j], qi[j]
        if S[PARK, i] >= 0.0:
            _unpark(P, S, i, s0, m_rms, keys, k)
            n = _enter(P, S, Q, n, i, keys, k, s0, w, m_rms)
            active[na] = i
            na += 1
        grow = math.exp(P[RATE_M, i] * s)
        if e != 0.0:
            S[EH, i] += e * math.exp(P[RATE_E, i] * s)
            S[A, i] -= e * P[CE, i] * grow
            S[UB, i] += e * P[KMAX_H, i]
        if h != 0.0:
            S[IH, i] += h * math.exp(P[RATE_I, i] * s)
            S[A, i] += h * P[CI, i] * grow
        if S[HOLD, i] <= t and (S[PEND, i] != 0.0 or (e > 0.0 and S[UB, i] >= S[THETA, i])):
            n = _schedule(P, S, Q, n, i, s0, s, w)
    return n, na


@numba.njit(cache=True, _nrt=False)
def _release(P, S, Q, n, i, s0, s, w):
    """End of neuron i's reset hold at segment time s: it relaxes from ``v_reset``."""
    rest = P[V_RESET, i] - S[VINF, i] - S[EH, i] * P[CE, i] * math.exp(-P[RATE_E, i] * s)
    if S[IH, i] != 0.0:
        rest += S[IH, i] * P[CI, i] * math.exp(-P[RATE_I, i] * s)
    S[A, i] = rest * math.exp(P[RATE_M, i] * s)
    return _schedule(P, S, Q, n, i, s0, s, w)


@numba.njit(cache=True, _nrt=False)
def _enter(P, S, Q, n, i, keys, k, s0, w, m_rms):
    """Neuron i at the start of segment k = [s0, s0 + w): noise draw, closed-form coefficients, and its
    first spike or hold release in the segment; returns the queue size."""
    if w >= SEGMENT_S:
        S[EM, i], S[FE, i], S[FI, i] = P[EM_H, i], P[FE_H, i], P[FI_H, i]
    else:
        S[EM, i], S[FE, i], S[FI, i] = math.exp(-P[RATE_M, i] * w), math.exp(-P[RATE_E, i] * w), math.exp(-P[RATE_I, i] * w)  # fmt: skip
    vi = P[V_REST, i] + (P[NOISE_I, i] * streams.gauss_sum(keys[0, i], k) if m_rms > 0.0 else 0.0)
    S[VINF, i], S[EH, i], S[IH, i], S[PEND, i] = vi, S[E, i], S[I, i], 0.0
    if S[HOLD, i] > s0:
        if S[HOLD, i] < s0 + w:
            n = heap.push(Q, n, S[HOLD, i], RELEASE, i, S[STAMP, i])
        return n
    S[A, i] = S[V, i] - vi - S[E, i] * P[CE, i] + S[I, i] * P[CI, i]
    S[UB, i] = max(S[V, i], vi + (S[V, i] - vi) * S[EM, i]) + S[E, i] * P[KMAX_H, i]
    if S[UB, i] >= S[THETA, i]:
        n = _schedule(P, S, Q, n, i, s0, 0.0, w)
    return n


@numba.njit(cache=True, _nrt=False)
def _segment_end(P, S, s_end, margin, active, na):
    """State of the neurons in the sweep at the segment end (into V, E, I); those that cannot reach
    threshold (less ``margin``) without new input and are neither held nor pinned are parked.
    Returns the number left in the sweep (``active`` compacted)."""
    m = 0
    for q in range(na):
        i = active[q]
        if S[HOLD, i] >= s_end:
            S[V, i] = P[V_RESET, i]
        else:
            S[V, i] = S[VINF, i] + S[A, i] * S[EM, i] + S[EH, i] * P[CE, i] * S[FE, i] - S[IH, i] * P[CI, i] * S[FI, i]  # fmt: skip
        S[E, i], S[I, i] = S[EH, i] * S[FE, i], S[IH, i] * S[FI, i]
        quiet = max(S[V, i], P[V_REST, i]) + S[E, i] * P[KPEAK, i] < S[THETA, i] - margin
        if quiet and S[HOLD, i] < s_end and S[PIN, i] == 0.0:
            S[PARK, i] = s_end
        else:
            active[m] = i
            m += 1
    return m


@numba.njit(cache=True, _nrt=False)
def _unpark(P, S, i, s0, m_rms, keys, k):
    """Advance parked neuron i to s0 (the start of segment k) at rest drive; the membrane noise of the
    stretch as one Gaussian draw (its exact variance)."""
    d = s0 - S[PARK, i]
    S[PARK, i] = -1.0
    if d <= 0.0:
        return
    em, fe, fi = math.exp(-P[RATE_M, i] * d), math.exp(-P[RATE_E, i] * d), math.exp(-P[RATE_I, i] * d)
    v = P[V_REST, i] + (S[V, i] - P[V_REST, i]) * em + S[E, i] * P[CE, i] * (fe - em) - S[I, i] * P[CI, i] * (fi - em)  # fmt: skip
    if m_rms > 0.0:
        v += m_rms * math.sqrt(max(1.0 - em * em, 0.0)) * streams.gauss(keys[1, i], k)
    S[V, i], S[E, i], S[I, i] = v, S[E, i] * fe, S[I, i] * fi


@numba.njit(cache=True, _nrt=False)
def _start_trial(P, S, columns, tkey, noise, keys, active):
    """Initial state: at rest (a neuron resting above threshold at reset) plus a membrane-noise
    sample; neurons that cannot fire without input start parked. Returns the sweep size."""
    k_v0, k_theta = streams.derive(tkey, streams.V0), streams.derive(tkey, streams.THETA)
    k_mem, k_jump = streams.derive(tkey, streams.MEMBRANE), streams.derive(tkey, streams.JUMP)
    na = 0
    for i in range(P.shape[1]):
        g = columns[i]
        S[V, i] = P[V_RESET, i] if P[V_REST, i] >= P[V_THR, i] else P[V_REST, i]
        if noise[M_RMS] > 0.0:
            S[V, i] += noise[M_RMS] * streams.gauss(k_v0, g)
        S[E, i], S[I, i], S[HOLD, i], S[NSPK, i], S[COUNT, i], S[STAMP, i] = 0.0, 0.0, -1.0, 0.0, 0.0, 0.0
        S[THETA, i] = P[V_THR, i] + (noise[TH_RMS] * streams.gauss(streams.derive(k_theta, g), 0) if noise[TH_RMS] > 0.0 else 0.0)  # fmt: skip
        keys[0, i], keys[1, i] = streams.derive(k_mem, g), streams.derive(k_jump, g)
        if S[PIN, i] == 0.0 and max(S[V, i], P[V_REST, i]) < S[THETA, i] - noise[MARGIN]:
            S[PARK, i] = 0.0
        else:
            S[PARK, i] = -1.0
            active[na] = i
            na += 1
    return na


@numba.njit(cache=True, _nrt=False)
def _host_order(ev_time, ev_src, e0, e1, jit, key, arrival, order):
    """Arrival times (jittered when ``jit`` > 0) of a trial's kept host events, and their time order
    (insertion sort: the ticks are sorted, only jitter reorders). Returns the number of kept events."""
    n = 0
    for j in range(e0, e1):
        if ev_src[j] < 0:
            continue
        arrival[n] = max(ev_time[j] + (jit * streams.gauss(key, j - e0) if jit > 0.0 else 0.0), 0.0)
        order[n] = j
        m = n
        while m > 0 and arrival[m - 1] > arrival[m]:
            arrival[m - 1], arrival[m] = arrival[m], arrival[m - 1]
            order[m - 1], order[m] = order[m], order[m - 1]
            m -= 1
        n += 1
    return n


@numba.njit(cache=True, _nrt=False)
def _sample_madc(P, S, rec, m, s, t, key, j):
    """MADC code of neuron m at segment time s (absolute t)."""
    src = int(rec[MADC_SRC])
    if src == 0:
        x = P[V_RESET, m] if S[HOLD, m] > t else _membrane(P, S, m, s)
    elif src == 1:
        x = rec[MADC_BASE] + S[EH, m] * math.exp(-P[RATE_E, m] * s)
    else:
        x = rec[MADC_BASE] + S[IH, m] * math.exp(-P[RATE_I, m] * s)
    code = rec[MADC_OFFSET] + rec[MADC_GAIN] * 4.0 * x
    if rec[MADC_NOISE] > 0.0:
        code += rec[MADC_NOISE] * streams.gauss(key, j)
    return min(max(round(code), 0.0), float(chip.MADC_MAX))


@numba.njit(cache=True, _nrt=False)
def _sample_cadc(P, S, rec, trial, j, s, t, offset, columns, key, out):
    """CADC codes of every simulated neuron at segment time s (absolute t) into ``out[trial, j]``."""
    sigma = rec[CADC_NOISE]
    k = streams.derive(key, j)
    for i in range(P.shape[1]):
        v = (P[V_RESET, i] if S[HOLD, i] > t else _membrane(P, S, i, s)) + offset[i]
        if sigma > 0.0:
            v += sigma * streams.gauss(k, columns[i])
        out[trial, j, columns[i]] = min(max(round(v), 0.0), float(chip.CADC_MAX))


@numba.njit(cache=True, nogil=True)
def run_trials(
    lo, hi, key, sim_end, trial_ticks, ev_ptr, ev_time, ev_src, host, nn, P, noise, records, columns,
    budget, run_budget, counters, rec, madc_n, madc_out, cadc_times, cadc_offset, cadc_out, cancel,
):  # fmt: skip
    """Simulate trials [lo, hi). ``host``/``nn``: CSR (ptr, target, q_exc, q_inh) of host labels and of
    neuron -> neuron spikes; ``P``: (N_ROWS, N) parameter table; spikes are kept for ``records``
    neurons up to ``budget[trial]`` per trial and ``run_budget`` in all. Writes spike counters, MADC
    and CADC codes of these trials into their arrays (columns: global neuron of each simulated one).
    Returns (spikes per trial, tick, global neuron, spikes dropped, cancelled)."""
    N, H, m_rms = P.shape[1], SEGMENT_S, noise[M_RMS]
    h_ptr, h_idx, h_qe, h_qi = host
    n_ptr, n_idx, n_qe, n_qi = nn
    S, Q = np.zeros((N_STATE, N)), np.empty((4, 4 * N + 64))
    keys, active = np.empty((2, N), np.uint64), np.empty(N, np.int64)
    o_count = np.zeros(hi - lo, np.int64)
    o_tick, o_neur = np.empty(256, np.uint32), np.empty(256, np.uint16)
    n_out, dropped = 0, 0
    m_col, period, n_cadc = int(rec[MADC_COL]), rec[MADC_PERIOD], cadc_times.shape[1]
    size = 0
    for trial in range(lo, hi):
        size = max(size, ev_ptr[trial + 1] - ev_ptr[trial])
    arrival, order = np.empty(size), np.empty(size, np.int64)
    for trial in range(lo, hi):
        tkey = streams.derive(key, trial)
        k_theta, k_nn = streams.derive(tkey, streams.THETA), streams.derive(tkey, streams.NN_JITTER)
        k_madc, k_cadc = streams.derive(tkey, streams.MADC_NOISE), streams.derive(tkey, streams.CADC_NOISE)
        S[PIN] = 1.0 if n_cadc > 0 else 0.0
        if madc_n > 0:
            S[PIN, m_col] = 1.0
        na = _start_trial(P, S, columns, tkey, noise, keys, active)
        k_jit = streams.derive(tkey, streams.HOST_JITTER)
        n_ev = _host_order(ev_time, ev_src, ev_ptr[trial], ev_ptr[trial + 1], noise[JIT_RMS], k_jit, arrival, order)
        end, first = sim_end[trial], n_out
        hn, ep, jm, jc, k = 0, 0, 0, 0, 0
        while k * H < end:
            if cancel[0] != 0:
                return o_count, o_tick[:n_out], o_neur[:n_out], dropped, True
            s0 = k * H
            s_end = min(s0 + H, end)
            w = s_end - s0
            if hn + 2 * N + 4 > Q.shape[1]:
                Q = heap.grown(Q, hn + 2 * N + 4)
            for q in range(na):
                hn = _enter(P, S, Q, hn, active[q], keys, k, s0, w, m_rms)
            while True:
                t_host = arrival[ep] if ep < n_ev else np.inf
                t_queue = Q[heap.TIME, 0] if hn > 0 else np.inf
                t = min(t_host, t_queue, s_end)
                while jm < madc_n and jm * period < t:
                    madc_out[trial, jm] = _sample_madc(P, S, rec, m_col, jm * period - s0, jm * period, k_madc, jm)
                    jm += 1
                while jc < n_cadc and cadc_times[trial, jc] < t:
                    ts = cadc_times[trial, jc]
                    _sample_cadc(P, S, rec, trial, jc, ts - s0, ts, cadc_offset, columns, k_cadc, cadc_out)
                    jc += 1
                if t >= s_end:
                    break
                if hn + 2 * N + 4 > Q.shape[1]:
                    Q = heap.grown(Q, hn + 2 * N + 4)
                s = t - s0
                if t_queue > t_host:
                    row = ev_src[order[ep]]
                    hn, na = _deliver(h_ptr, h_idx, h_qe, h_qi, row, s0, s, w, P, S, Q, hn, active, na, keys, k, m_rms)
                    ep += 1
                    continue
                kind, i, stamp = Q[heap.KIND, 0], int(Q[heap.ID, 0]), Q[heap.STAMP, 0]
                hn = heap.pop(Q, hn)
                if kind == ARRIVAL:
                    hn, na = _deliver(n_ptr, n_idx, n_qe, n_qi, i, s0, s, w, P, S, Q, hn, active, na, keys, k, m_rms)
                elif stamp != S[STAMP, i]:
                    continue
                elif kind == RELEASE:
                    hn = _release(P, S, Q, hn, i, s0, s, w)
                else:  # neuron i spikes at t
                    g = columns[i]
                    S[PEND, i] = 0.0
                    tick = int(round(t / chip.TICK_S))
                    if tick < trial_ticks[trial]:
                        S[COUNT, i] += 1.0
                        if records[i] and n_out - first < budget[trial] and n_out < run_budget:
                            if n_out == o_tick.size:
                                o_tick, o_neur = _grown(o_tick), _grown(o_neur)
                            j = n_out
                            while j > first and o_tick[j - 1] == tick and o_neur[j - 1] > g:
                                o_tick[j], o_neur[j] = o_tick[j - 1], o_neur[j - 1]
                                j -= 1
                            o_tick[j], o_neur[j] = tick, g
                            n_out += 1
                        elif records[i]:
                            dropped += 1
                    S[NSPK, i] += 1.0
                    if noise[TH_RMS] > 0.0:
                        S[THETA, i] = P[V_THR, i] + noise[TH_RMS] * streams.gauss(streams.derive(k_theta, g), int(S[NSPK, i]))  # fmt: skip
                    S[HOLD, i] = t + P[T_REF, i]
                    if S[HOLD, i] < s_end:
                        hn = heap.push(Q, hn, S[HOLD, i], RELEASE, i, S[STAMP, i])
                    if n_ptr[i + 1] > n_ptr[i]:
                        t_arr = t + noise[LATENCY]
                        if noise[JIT_RMS] > 0.0:
                            t_arr += noise[JIT_RMS] * streams.gauss(streams.derive(k_nn, g), int(S[NSPK, i]))
                        hn = heap.push(Q, hn, max(t_arr, t), ARRIVAL, i, 0.0)
            if jm == madc_n and madc_n > 0:
                S[PIN, m_col] = 0.0
            if jc == n_cadc:
                S[PIN] = 0.0
            na = _segment_end(P, S, s_end, noise[MARGIN], active, na)
            k += 1
            if na > 0 or hn > 0:
                continue
            nxt = arrival[ep] if ep < n_ev else np.inf
            if jm < madc_n:
                nxt = min(nxt, jm * period)
            if jc < n_cadc:
                nxt = min(nxt, cadc_times[trial, jc])
            if nxt >= end:
                break
            k = max(k, int(nxt // H))
        o_count[trial - lo] = n_out - first
        if counters.shape[0] > 0:
            for i in range(N):
                c = int(S[COUNT, i])
                counters[trial, columns[i]] = c if c <= chip.SPIKE_COUNTER_MAX else 2 * chip.SPIKE_COUNTER_MAX + 1
    return o_count, o_tick[:n_out], o_neur[:n_out], dropped, False


@numba.njit(cache=True)
def _grown(a):
    out = np.empty(2 * a.size, a.dtype)
    out[: a.size] = a
    return out
