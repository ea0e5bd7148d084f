"""The mock chip's event-driven LIF simulation: a numba kernel that runs trials one at a time.

Time runs in noise segments of ``SEGMENT_S`` (the membrane-noise hold). Inside a segment a
neuron's drive is constant, so its trajectory is closed form between events
(``drivers.mock.neuron``). Events are processed in time order from one queue
(``drivers.mock.heap``): host events (pre-sorted), neuron -> neuron arrivals, and each neuron's
own next spike or end of reset hold; neurons waiting outside the sweep until a known segment
are filed in a timing wheel (``drivers.mock.wakeups``) and brought back at its start. An
input updates the closed form of its targets; where bounds say a neuron may now reach
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

from . import heap, neuron, streams, wakeups
from .tables import (
    ARRIVAL,
    CADC_NOISE,
    CALM,
    COUNT,
    EH,
    GROWTH_LEAD,
    GROWTH_ROWS,
    GSEG,
    HOLD,
    IH,
    IN_LATENCY,
    JIT_RMS,
    LATENCY,
    M_RMS,
    MADC_BASE,
    MADC_COL,
    MADC_GAIN,
    MADC_NOISE,
    MADC_OFFSET,
    MADC_PERIOD,
    MADC_SRC,
    MARGIN,
    MODE,
    N_STATE,
    NO_SEGMENT,
    NOISE_MAX,
    NSPK,
    PARKED,
    PEND,
    PIN,
    RATE_E,
    RATE_I,
    RELEASE,
    SAFE,
    SEGMENT_S,
    SEGMENT_TICKS,
    SINCE,
    STAMP,
    SWEEP,
    T_REF,
    TH_RMS,
    THETA,
    UB,
    V_RESET,
    V_REST,
    V_THR,
    E,
    I,
    V,
)  # fmt: skip

_FAST = {"cache": True, "_nrt": False}


@numba.njit(**_FAST)
def _start_trial(P, S, columns, tkey, noise, keys, active):
    """Initial state: at rest (a neuron resting above threshold at reset) plus a membrane-noise
    sample; neurons that cannot fire without input start out of the sweep. Returns the sweep size."""
    k_start = streams.derive(tkey, streams.START)
    k_mem, k_jump = streams.derive(tkey, streams.MEMBRANE), streams.derive(tkey, streams.JUMP)
    na = 0
    for i in range(P.shape[0]):
        g = columns[i]
        z_v, z_theta = streams.gauss_pair(k_start, g)
        S[i, V] = (P[i, V_RESET] if P[i, V_REST] >= P[i, V_THR] else P[i, V_REST]) + noise[M_RMS] * z_v
        S[i, THETA] = P[i, V_THR] + noise[TH_RMS] * z_theta
        S[i, E], S[i, I], S[i, HOLD], S[i, NSPK], S[i, COUNT], S[i, STAMP] = 0.0, 0.0, -1.0, 0.0, 0.0, 0.0
        keys[0, i], keys[1, i] = streams.derive(k_mem, g), streams.derive(k_jump, g)
        S[i, CALM], S[i, SINCE], S[i, MODE], S[i, GSEG] = 0.0, 0.0, SWEEP, NO_SEGMENT
        S[i, UB] = max(S[i, V], P[i, V_REST] + P[i, NOISE_MAX])
        if S[i, PIN] == 0.0 and S[i, UB] < S[i, THETA]:
            S[i, MODE] = SAFE
        elif S[i, PIN] == 0.0 and max(S[i, V], P[i, V_REST]) < S[i, THETA] - noise[MARGIN]:
            S[i, MODE] = PARKED
        else:
            active[na] = i
            na += 1
    return na


@numba.njit(**_FAST)
def _host_order(ev_tick, ev_src, e0, e1, latency, jit, key, arrival, delta, order):
    """Arrival times (tick + input latency + jitter when ``jit`` > 0) of a trial's kept host events,
    their jitter, and their time order (insertion sort: the ticks are sorted, only jitter reorders).
    Returns the number of kept events."""
    n = 0
    for j in range(e0, e1):
        if ev_src[j] < 0:
            continue
        d = jit * streams.gauss(key, j - e0) if jit > 0.0 else 0.0
        arrival[n], delta[n], order[n] = ev_tick[j] * chip.TICK_S + latency + d, d, j
        m = n
        while m > 0 and arrival[m - 1] > arrival[m]:
            arrival[m - 1], arrival[m] = arrival[m], arrival[m - 1]
            delta[m - 1], delta[m] = delta[m], delta[m - 1]
            order[m - 1], order[m] = order[m], order[m - 1]
            m -= 1
        n += 1
    return n


@numba.njit(**_FAST)
def _madc_code(P, S, rec, m, s, t, key, j):
    """MADC code of neuron m at segment time s (absolute t)."""
    src = int(rec[MADC_SRC])
    if src == 0:
        x = P[m, V_RESET] if S[m, HOLD] > t else neuron.membrane(P, S, m, s)
    elif src == 1:
        x = rec[MADC_BASE] + S[m, EH] * math.exp(-P[m, RATE_E] * s)
    else:
        x = rec[MADC_BASE] + S[m, IH] * math.exp(-P[m, RATE_I] * s)
    code = rec[MADC_OFFSET] + rec[MADC_GAIN] * 4.0 * x
    if rec[MADC_NOISE] > 0.0:
        code += rec[MADC_NOISE] * streams.gauss(key, j)
    return min(max(round(code), 0.0), float(chip.MADC_MAX))


@numba.njit(**_FAST)
def _cadc_codes(P, S, rec, trial, j, s, t, offset, columns, key, out):
    """CADC codes of every simulated neuron at segment time s (absolute t) into ``out[trial, j]``."""
    k = streams.derive(key, j)
    for i in range(P.shape[0]):
        v = (P[i, V_RESET] if S[i, HOLD] > t else neuron.membrane(P, S, i, s)) + offset[i]
        if rec[CADC_NOISE] > 0.0:
            v += rec[CADC_NOISE] * streams.gauss(k, columns[i])
        out[trial, j, columns[i]] = min(max(round(v), 0.0), float(chip.CADC_MAX))


# Calls (not inlined bodies) from ``run_trials``: an inlined body would take the kernel's reference
# counting, an atomic increment and decrement per array argument on every event (~10 % of a trial).
@numba.njit(**_FAST)
def _pop(Q, n):
    return heap.pop(Q, n)


@numba.njit(**_FAST)
def _push(Q, n, t, kind, ident, stamp):
    return heap.push(Q, n, t, kind, ident, stamp)


@numba.njit(**_FAST)
def _enter(P, S, Q, n, i, keys, k, s0, w, m_rms):
    return neuron.enter(P, S, Q, n, i, keys, k, s0, w, m_rms)


@numba.njit(**_FAST)
def _wake_filed(P, S, Q, n, wheel, nodes, active, na, keys, k, s0, w, m_rms):
    """Bring the neurons whose wake-ups are filed for segment k into its sweep, skipping stale ones;
    returns (queue size, sweep size)."""
    j = wakeups.take(wheel, nodes, k)
    while j >= 0:
        m = nodes[j, wakeups.NEURON]
        if nodes[j, wakeups.STAMP] == S[m, STAMP] and S[m, MODE] == SAFE:
            n, na = neuron.wake(P, S, Q, n, m, active, na, keys, k, s0, w, m_rms)
        j = wakeups.take(wheel, nodes, k)
    return n, na


@numba.njit(cache=True)
def _grown(a):
    out = np.empty(2 * a.size, a.dtype)
    out[: a.size] = a
    return out


@numba.njit(cache=True, nogil=True)
def run_trials(
    lo, hi, key, sim_end, trial_ticks, ev_ptr, ev_tick, ev_src, host, nn, P, G, noise, records, columns,
    budget, run_budget, counters, rec, madc_n, madc_out, cadc_times, cadc_offset, cadc_out, cancel,
):  # fmt: skip
    """Simulate trials [lo, hi). ``host``/``nn``: CSR (ptr, target, q_exc, q_inh) of host labels and of
    neuron -> neuron spikes; ``P``: (N, N_ROWS) parameter table, ``G`` the growth table of host events
    (``tables.GROWTH_ROWS``); host event j arrives at ``ev_tick[j]`` ticks plus the input latency
    (``noise[IN_LATENCY]``) plus jitter; spikes are kept for ``records``
    neurons up to ``budget[trial]`` per trial and ``run_budget`` in all. Writes spike counters, MADC
    and CADC codes of these trials into their arrays (columns: global neuron of each simulated one).
    Returns (spikes per trial, tick, global neuron, spikes dropped, cancelled)."""
    N, H, m_rms = P.shape[0], SEGMENT_S, noise[M_RMS]
    h_ptr, h_idx, h_qe, h_qi = host
    n_ptr, n_idx, n_qe, n_qi = nn
    S, Q = np.zeros((N, N_STATE)), np.empty((4 * N + 64, 4))
    keys, active = np.empty((2, N), np.uint64), np.empty(N, np.int64)
    o_count = np.zeros(hi - lo, np.int64)
    o_tick, o_neur = np.empty(256, np.uint32), np.empty(256, np.uint16)
    n_out, dropped = 0, 0
    m_col, period, n_cadc = int(rec[MADC_COL]), rec[MADC_PERIOD], cadc_times.shape[1]
    size = 0
    for trial in range(lo, hi):
        size = max(size, ev_ptr[trial + 1] - ev_ptr[trial])
    arrival, delta, order = np.empty(size), np.empty(size), np.empty(size, np.int64)
    wheel, nodes = np.empty(wakeups.SLOTS + 2, np.int64), np.empty((N + 64, 4), np.int64)
    for trial in range(lo, hi):
        tkey = streams.derive(key, trial)
        k_spike = streams.derive(tkey, streams.SPIKE)
        k_madc, k_cadc = streams.derive(tkey, streams.MADC_NOISE), streams.derive(tkey, streams.CADC_NOISE)
        S[:, PIN] = 1.0 if n_cadc > 0 else 0.0
        if madc_n > 0:
            S[m_col, PIN] = 1.0
        na = _start_trial(P, S, columns, tkey, noise, keys, active)
        k_jit = streams.derive(tkey, streams.HOST_JITTER)
        n_ev = _host_order(ev_tick, ev_src, ev_ptr[trial], ev_ptr[trial + 1], noise[IN_LATENCY], noise[JIT_RMS], k_jit, arrival, delta, order)  # fmt: skip
        end, first = sim_end[trial], n_out
        # int64, not literal 0: a callee typed with a literal argument is compiled twice (once per type)
        hn = ep = jm = jc = k = np.int64(0)
        wakeups.clear(wheel)
        s0, w = 0.0, min(H, end)
        for q in range(na):
            hn = _enter(P, S, Q, hn, active[q], keys, k, 0.0, w, m_rms)
        while True:
            if cancel[0] != 0:
                return o_count, o_tick[:n_out], o_neur[:n_out], dropped, True
            if wheel[k % wakeups.SLOTS] >= 0:
                if hn + 2 * N + 4 > Q.shape[0]:
                    Q = heap.grown(Q, hn + 2 * N + 4)
                hn, na = _wake_filed(P, S, Q, hn, wheel, nodes, active, na, keys, k, s0, w, m_rms)
            s_end = s0 + w
            while True:
                t_host = arrival[ep] if ep < n_ev else np.inf
                t_queue = Q[0, heap.TIME] if hn > 0 else np.inf
                t = min(t_host, t_queue, s_end)
                while jm < madc_n and jm * period < t:
                    madc_out[trial, jm] = _madc_code(P, S, rec, m_col, jm * period - s0, jm * period, k_madc, jm)
                    jm += 1
                while jc < n_cadc and cadc_times[trial, jc] < t:
                    ts = cadc_times[trial, jc]
                    _cadc_codes(P, S, rec, trial, jc, ts - s0, ts, cadc_offset, columns, k_cadc, cadc_out)
                    jc += 1
                if t >= s_end:
                    break
                if hn + 2 * N + 4 > Q.shape[0]:
                    Q = heap.grown(Q, hn + 2 * N + 4)
                s = t - s0
                if t_queue > t_host:
                    j = order[ep]
                    row_g = ev_tick[j] - SEGMENT_TICKS * k + GROWTH_LEAD
                    if 0 <= row_g < GROWTH_ROWS:
                        hn, na = neuron.deliver_host(h_ptr, h_idx, h_qe, h_qi, ev_src[j], row_g, delta[ep], G, s0, s, w, P, S, Q, hn, active, na, keys, k, m_rms)  # fmt: skip
                    else:
                        hn, na = neuron.deliver(h_ptr, h_idx, h_qe, h_qi, ev_src[j], s0, s, w, P, S, Q, hn, active, na, keys, k, m_rms)  # fmt: skip
                    ep += 1
                    continue
                kind, i, stamp = Q[0, heap.KIND], int(Q[0, heap.ID]), Q[0, heap.STAMP]
                hn = _pop(Q, hn)
                if kind == ARRIVAL:
                    hn, na = neuron.deliver(n_ptr, n_idx, n_qe, n_qi, i, s0, s, w, P, S, Q, hn, active, na, keys, k, m_rms)  # fmt: skip
                elif stamp != S[i, STAMP]:
                    continue
                elif kind == RELEASE:
                    hn = neuron.release(P, S, Q, hn, i, s0, s, w)
                else:  # neuron i spikes at t
                    g = columns[i]
                    S[i, PEND] = 0.0
                    tick = int(round(t / chip.TICK_S))
                    if tick < trial_ticks[trial]:
                        S[i, COUNT] += 1.0
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
                    S[i, NSPK] += 1.0
                    z_theta, z_jit = 0.0, 0.0
                    if noise[TH_RMS] > 0.0 or noise[JIT_RMS] > 0.0:
                        z_theta, z_jit = streams.gauss_pair(streams.derive(k_spike, g), int(S[i, NSPK]))
                    S[i, THETA] = P[i, V_THR] + noise[TH_RMS] * z_theta
                    S[i, HOLD] = t + P[i, T_REF]
                    if S[i, HOLD] < s_end:
                        hn = _push(Q, hn, S[i, HOLD], RELEASE, i, S[i, STAMP])
                    if n_ptr[i + 1] > n_ptr[i]:
                        t_arr = t + noise[LATENCY] + noise[JIT_RMS] * z_jit
                        hn = _push(Q, hn, max(t_arr, t), ARRIVAL, i, 0.0)
            if madc_n > 0 and jm == madc_n:
                S[m_col, PIN] = 0.0
            if n_cadc > 0 and jc == n_cadc:
                S[:, PIN] = 0.0
            if s_end >= end:
                break
            k += 1
            s0 = k * H
            w = min(H, end - s0)
            if hn + 2 * N + 4 > Q.shape[0]:
                Q = heap.grown(Q, hn + 2 * N + 4)
            if wheel[wakeups.USED] + na > nodes.shape[0]:
                nodes = wakeups.grown(nodes, wheel[wakeups.USED] + na)
            hn, na = neuron.advance(P, S, Q, hn, active, na, keys, k, s0, w, m_rms, noise[MARGIN], wheel, nodes)
            if na > 0:
                continue
            nxt = arrival[ep] if ep < n_ev else np.inf
            if hn > 0:
                nxt = min(nxt, Q[0, heap.TIME])
            if jm < madc_n:
                nxt = min(nxt, jm * period)
            if jc < n_cadc:
                nxt = min(nxt, cadc_times[trial, jc])
            k_next = wakeups.next_filed(wheel, nodes, k, max(k, int(nxt // H)) if nxt < end else wakeups.NEVER)
            if k_next * H >= end:
                break
            k = k_next
            s0 = k * H
            w = min(H, end - s0)
        o_count[trial - lo] = n_out - first
        if counters.shape[0] > 0:
            for i in range(N):
                c = int(S[i, COUNT])
                counters[trial, columns[i]] = c if c <= chip.SPIKE_COUNTER_MAX else 2 * chip.SPIKE_COUNTER_MAX + 1
    return o_count, o_tick[:n_out], o_neur[:n_out], dropped, False
