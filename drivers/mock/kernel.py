"""The mock chip's event-driven LIF simulation: a numba kernel that runs trials one at a time.

Time runs in noise segments of ``SEGMENT_S`` (the membrane-noise hold). Inside a segment a
neuron's drive is constant, so its trajectory is closed form between events
(``drivers.mock.trajectory``); events are processed in time order from one queue: host
events (pre-sorted), neuron -> neuron arrivals, and each neuron's own next spike or end of
reset hold (a binary heap). An input updates the closed form of its targets and, where a
cheap bound says the neuron may now reach threshold, its next crossing is found exactly.
Nothing is rounded to a grid: spikes, resets, holds and ADC samples happen at their exact
times. Between segments every neuron's state is propagated with precomputed factors.

Once nothing is pending and no neuron can reach threshold without new input (noise on:
without a 6 sigma excursion), the trial ends, or jumps ahead to the next input or ADC sample
(the membrane noise over the jump drawn as one Gaussian with the exact variance).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from hil import chip

from . import streams
from .trajectory import first_crossing

SEGMENT_S = 384e-9  # membrane-noise hold; the unit of the outer loop
TICK_S = chip.TICK_S

# rows of the per-neuron parameter table (rates are inverse time constants)
V_REST, V_RESET, V_THR, RATE_M, RATE_E, RATE_I, CE, CI, EM_H, FE_H, FI_H, KMAX_H, KPEAK, T_REF, NOISE_I = range(15)
N_ROWS = 15
# noise settings: membrane rms, threshold rms, jitter rms (s), spike latency (s), quiet margin
M_RMS, TH_RMS, JIT_RMS, LATENCY, MARGIN = range(5)
# readout settings
MADC_COL, MADC_SRC, MADC_PERIOD, MADC_OFFSET, MADC_GAIN, MADC_NOISE, MADC_BASE, CADC_NOISE = range(8)
# heap item kinds, processed in this order at equal times (before host events at that time)
SPIKE, RELEASE, ARRIVAL = 0, 1, 2


@numba.njit(cache=True, inline="always")
def _before(t1, k1, i1, t2, k2, i2):
    return t1 < t2 or (t1 == t2 and (k1 < k2 or (k1 == k2 and i1 < i2)))


@numba.njit(cache=True)
def _push(ht, hk, hi, hs, n, t, k, i, s):
    """Insert (time t, kind k, id i, stamp s) into the heap of size n; returns the new size."""
    j = n
    while j > 0:
        p = (j - 1) >> 1
        if not _before(t, k, i, ht[p], hk[p], hi[p]):
            break
        ht[j], hk[j], hi[j], hs[j] = ht[p], hk[p], hi[p], hs[p]
        j = p
    ht[j], hk[j], hi[j], hs[j] = t, k, i, s
    return n + 1


@numba.njit(cache=True)
def _pop(ht, hk, hi, hs, n):
    """Remove the earliest item (read it at index 0 first); returns the new size."""
    n -= 1
    t, k, i, s = ht[n], hk[n], hi[n], hs[n]
    j = 0
    while True:
        c = 2 * j + 1
        if c >= n:
            break
        if c + 1 < n and _before(ht[c + 1], hk[c + 1], hi[c + 1], ht[c], hk[c], hi[c]):
            c += 1
        if not _before(ht[c], hk[c], hi[c], t, k, i):
            break
        ht[j], hk[j], hi[j], hs[j] = ht[c], hk[c], hi[c], hs[c]
        j = c
    if n > 0:
        ht[j], hk[j], hi[j], hs[j] = t, k, i, s
    return n


@numba.njit(cache=True)
def _grow(a, size):
    out = np.empty(max(2 * a.size, size), a.dtype)
    out[: a.size] = a
    return out


@numba.njit(cache=True, inline="always")
def _membrane(P, i, s, v_inf, A, Eh, Ih):
    """V(s) of a free neuron from its segment coefficients."""
    v = v_inf + A * math.exp(-P[RATE_M, i] * s) + Eh * P[CE, i] * math.exp(-P[RATE_E, i] * s)
    if Ih != 0.0:
        v -= Ih * P[CI, i] * math.exp(-P[RATE_I, i] * s)
    return v


@numba.njit(cache=True)
def _next_spike(P, i, s, w, v_inf, A, Eh, Ih, theta, ub):
    """First crossing in [s, w] of neuron i (segment time), or -1.0; tightens ``ub[i]``."""
    e = Eh * math.exp(-P[RATE_E, i] * s)
    bound = max(_membrane(P, i, s, v_inf, A, Eh, Ih), v_inf) + e * P[KMAX_H, i]
    ub[i] = bound
    if bound < theta:
        return -1.0
    return first_crossing(
        v_inf - theta, A, Eh * P[CE, i], -Ih * P[CI, i], P[RATE_M, i], P[RATE_E, i], P[RATE_I, i], s, w
    )


@numba.njit(cache=True)
def _sample_madc(P, rec, m, s, held, v_inf, A, Eh, Ih, key, j):
    """MADC code of neuron m at segment time s."""
    src = int(rec[MADC_SRC])
    if src == 0:
        x = P[V_RESET, m] if held else _membrane(P, m, s, v_inf, A, Eh, Ih)
    elif src == 1:
        x = rec[MADC_BASE] + Eh * math.exp(-P[RATE_E, m] * s)
    else:
        x = rec[MADC_BASE] + Ih * math.exp(-P[RATE_I, m] * s)
    code = rec[MADC_OFFSET] + rec[MADC_GAIN] * 4.0 * x
    if rec[MADC_NOISE] > 0.0:
        code += rec[MADC_NOISE] * streams.gauss(key, j)
    return min(max(round(code), 0.0), float(chip.MADC_MAX))


@numba.njit(cache=True)
def _deliver(ptr, idx, qe, qi, row, s0, s, w, P, v_inf, A, Eh, Ih, theta, ub, hold_end, stamp, pending, heap, hn):
    """Input of CSR ``row`` at segment time ``s`` to its targets; (re)schedules their next spike."""
    ht, hk, hi, hs = heap
    t = s0 + s
    for k in range(ptr[row], ptr[row + 1]):
        i, e, h = idx[k], qe[k], qi[k]
        grow = math.exp(P[RATE_M, i] * s)
        if e != 0.0:
            Eh[i] += e * math.exp(P[RATE_E, i] * s)
            A[i] -= e * P[CE, i] * grow
            ub[i] += e * P[KMAX_H, i]
        if h != 0.0:
            Ih[i] += h * math.exp(P[RATE_I, i] * s)
            A[i] += h * P[CI, i] * grow
        if hold_end[i] > t or not (pending[i] or (e > 0.0 and ub[i] >= theta[i])):
            continue
        stamp[i] += 1
        pending[i] = False
        tc = _next_spike(P, i, s, w, v_inf[i], A[i], Eh[i], Ih[i], theta[i], ub)
        if tc >= 0.0:
            hn = _push(ht, hk, hi, hs, hn, s0 + tc, SPIKE, i, stamp[i])
            pending[i] = True
    return hn


@numba.njit(cache=True)
def _release(i, s0, s, w, P, v_inf, A, Eh, Ih, theta, ub, stamp, pending, heap, hn):
    """End of neuron i's reset hold at segment time ``s``: it starts from ``v_reset``."""
    ht, hk, hi, hs = heap
    vi = v_inf[i]
    rest = P[V_RESET, i] - vi - Eh[i] * P[CE, i] * math.exp(-P[RATE_E, i] * s)
    if Ih[i] != 0.0:
        rest += Ih[i] * P[CI, i] * math.exp(-P[RATE_I, i] * s)
    A[i] = rest * math.exp(P[RATE_M, i] * s)
    stamp[i] += 1
    tc = _next_spike(P, i, s, w, vi, A[i], Eh[i], Ih[i], theta[i], ub)
    if tc >= 0.0:
        hn = _push(ht, hk, hi, hs, hn, s0 + tc, SPIKE, i, stamp[i])
        pending[i] = True
    return hn


@numba.njit(cache=True)
def _sample_cadc(P, rec, trial, j, s, t, v_inf, A, Eh, Ih, hold_end, offset, columns, key, out):
    """CADC codes of every simulated neuron at segment time ``s`` (absolute ``t``) into ``out[trial, j]``."""
    sigma = rec[CADC_NOISE]
    k = streams.derive(key, j)
    for i in range(P.shape[1]):
        v = P[V_RESET, i] if hold_end[i] > t else _membrane(P, i, s, v_inf[i], A[i], Eh[i], Ih[i])
        v += offset[i]
        if sigma > 0.0:
            v += sigma * streams.gauss(k, i)
        out[trial, j, columns[i]] = min(max(round(v), 0.0), float(chip.CADC_MAX))


@numba.njit(cache=True)
def _quiet(P, V, E, hold_end, theta, s_end, margin):
    """No neuron can reach threshold (less ``margin``) without new input; ``V`` at ``s_end``."""
    for i in range(P.shape[1]):
        v = P[V_RESET, i] if hold_end[i] >= s_end else V[i]
        if max(v, P[V_REST, i]) + E[i] * P[KPEAK, i] >= theta[i] - margin:
            return False
    return True


@numba.njit(cache=True)
def _jump(P, V, E, I, d, m_rms, key, k2):
    """Advance every (free, quiet) neuron by ``d`` seconds at rest drive; membrane noise as one draw."""
    for i in range(P.shape[1]):
        em = math.exp(-P[RATE_M, i] * d)
        fe = math.exp(-P[RATE_E, i] * d)
        fi = math.exp(-P[RATE_I, i] * d)
        v = P[V_REST, i] + (V[i] - P[V_REST, i]) * em + E[i] * P[CE, i] * (fe - em) - I[i] * P[CI, i] * (fi - em)
        if m_rms > 0.0:
            v += m_rms * math.sqrt(max(1.0 - em * em, 0.0)) * streams.gauss(streams.derive(key, i), k2)
        V[i], E[i], I[i] = v, E[i] * fe, I[i] * fi


@numba.njit(cache=True)
def _host_order(ev_time, ev_src, e0, e1, jit, key, arrival, order):
    """Arrival times (jittered when ``jit`` > 0) of a trial's kept host events, and their time order
    (insertion sort: the ticks are sorted, only jitter reorders). Returns the number of kept events."""
    n = 0
    for j in range(e0, e1):
        if ev_src[j] < 0:
            continue
        t = ev_time[j] + (jit * streams.gauss(key, j - e0) if jit > 0.0 else 0.0)
        arrival[n] = max(t, 0.0)
        order[n] = j
        m = n
        while m > 0 and arrival[m - 1] > arrival[m]:
            arrival[m - 1], arrival[m] = arrival[m], arrival[m - 1]
            order[m - 1], order[m] = order[m], order[m - 1]
            m -= 1
        n += 1
    return n


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
    N = P.shape[1]
    H = SEGMENT_S
    m_rms, th_rms, jit, latency, margin = noise[M_RMS], noise[TH_RMS], noise[JIT_RMS], noise[LATENCY], noise[MARGIN]
    h_ptr, h_idx, h_qe, h_qi = host
    n_ptr, n_idx, n_qe, n_qi = nn
    V, E, I, A, Eh, Ih = np.empty(N), np.empty(N), np.empty(N), np.empty(N), np.empty(N), np.empty(N)
    v_inf, ub, hold_end, theta = np.empty(N), np.empty(N), np.empty(N), np.empty(N)
    stamp, n_spk, count = np.zeros(N, np.int64), np.zeros(N, np.int64), np.zeros(N, np.int64)
    pending = np.zeros(N, np.bool_)
    mem_key = np.empty(N, np.uint64)
    em, fe, fi = np.empty(N), np.empty(N), np.empty(N)
    cap = 4 * N + 64
    ht, hk, hi_, hs = np.empty(cap), np.empty(cap, np.int64), np.empty(cap, np.int64), np.empty(cap, np.int64)
    o_count = np.zeros(hi - lo, np.int64)
    o_tick, o_neur = np.empty(256, np.int64), np.empty(256, np.int64)
    n_out, dropped = 0, 0
    m_col, period = int(rec[MADC_COL]), rec[MADC_PERIOD]
    n_cadc = cadc_times.shape[1]
    max_events = 0
    for trial in range(lo, hi):
        max_events = max(max_events, ev_ptr[trial + 1] - ev_ptr[trial])
    arrival, order = np.empty(max_events), np.empty(max_events, np.int64)

    for trial in range(lo, hi):
        tkey = streams.derive(key, trial)
        k_theta, k_nn = streams.derive(tkey, streams.THETA), streams.derive(tkey, streams.NN_JITTER)
        k_madc, k_cadc = streams.derive(tkey, streams.MADC_NOISE), streams.derive(tkey, streams.CADC_NOISE)
        k_jump, k_v0 = streams.derive(tkey, streams.JUMP), streams.derive(tkey, streams.V0)
        k_mem = streams.derive(tkey, streams.MEMBRANE)
        end, first_out = sim_end[trial], n_out
        e0 = ev_ptr[trial]
        n_ev = _host_order(ev_time, ev_src, e0, ev_ptr[trial + 1], jit, streams.derive(tkey, streams.HOST_JITTER), arrival, order)  # fmt: skip
        for i in range(N):
            tonic = P[V_REST, i] >= P[V_THR, i]
            V[i] = (P[V_RESET, i] if tonic else P[V_REST, i]) + (m_rms * streams.gauss(k_v0, i) if m_rms > 0 else 0.0)
            E[i], I[i], hold_end[i], n_spk[i], count[i], stamp[i] = 0.0, 0.0, -1.0, 0, 0, 0
            theta[i] = P[V_THR, i] + (th_rms * streams.gauss(streams.derive(k_theta, i), 0) if th_rms > 0 else 0.0)
            mem_key[i] = streams.derive(k_mem, i)
        hn, ep, jm, jc = 0, 0, 0, 0
        k = 0
        while k * H < end:
            if cancel[0] != 0:
                return o_count, o_tick[:n_out], o_neur[:n_out], dropped, True
            s0 = k * H
            s_end = min(s0 + H, end)
            w = s_end - s0
            if hn + N + 4 > ht.size:
                ht, hk, hi_, hs = _grow(ht, 0), _grow(hk, 0), _grow(hi_, 0), _grow(hs, 0)
            for i in range(N):
                if w < H:
                    em[i], fe[i], fi[i] = math.exp(-P[RATE_M, i] * w), math.exp(-P[RATE_E, i] * w), math.exp(-P[RATE_I, i] * w)  # fmt: skip
                else:
                    em[i], fe[i], fi[i] = P[EM_H, i], P[FE_H, i], P[FI_H, i]
                vi = P[V_REST, i] + (P[NOISE_I, i] * streams.gauss_sum(mem_key[i], k) if m_rms > 0 else 0.0)
                v_inf[i], Eh[i], Ih[i], pending[i] = vi, E[i], I[i], False
                if hold_end[i] > s0:
                    if hold_end[i] < s_end:
                        hn = _push(ht, hk, hi_, hs, hn, hold_end[i], RELEASE, i, stamp[i])
                    continue
                A[i] = V[i] - vi - E[i] * P[CE, i] + I[i] * P[CI, i]
                ub[i] = max(V[i], vi) + E[i] * P[KMAX_H, i]
                if ub[i] >= theta[i]:
                    stamp[i] += 1
                    tc = first_crossing(vi - theta[i], A[i], E[i] * P[CE, i], -I[i] * P[CI, i], P[RATE_M, i], P[RATE_E, i], P[RATE_I, i], 0.0, w)  # fmt: skip
                    if tc >= 0.0:
                        hn = _push(ht, hk, hi_, hs, hn, s0 + tc, SPIKE, i, stamp[i])
                        pending[i] = True
            while True:
                t_host = arrival[ep] if ep < n_ev else np.inf
                t_heap = ht[0] if hn > 0 else np.inf
                t = min(t_host, t_heap, s_end)
                while jm < madc_n and jm * period < t:
                    s = jm * period - s0
                    madc_out[trial, jm] = _sample_madc(P, rec, m_col, s, hold_end[m_col] > jm * period, v_inf[m_col], A[m_col], Eh[m_col], Ih[m_col], k_madc, jm)  # fmt: skip
                    jm += 1
                while jc < n_cadc and cadc_times[trial, jc] < t:
                    ts = cadc_times[trial, jc]
                    _sample_cadc(P, rec, trial, jc, ts - s0, ts, v_inf, A, Eh, Ih, hold_end, cadc_offset, columns, k_cadc, cadc_out)  # fmt: skip
                    jc += 1
                if t >= s_end:
                    break
                if hn + N + 4 > ht.size:
                    ht, hk, hi_, hs = _grow(ht, 0), _grow(hk, 0), _grow(hi_, 0), _grow(hs, 0)
                heap = (ht, hk, hi_, hs)
                s = t - s0
                if t_heap > t_host:
                    row = ev_src[order[ep]]
                    hn = _deliver(h_ptr, h_idx, h_qe, h_qi, row, s0, s, w, P, v_inf, A, Eh, Ih, theta, ub, hold_end, stamp, pending, heap, hn)  # fmt: skip
                    ep += 1
                    continue
                kind, i, st = hk[0], hi_[0], hs[0]
                hn = _pop(ht, hk, hi_, hs, hn)
                if kind == ARRIVAL:
                    hn = _deliver(n_ptr, n_idx, n_qe, n_qi, i, s0, s, w, P, v_inf, A, Eh, Ih, theta, ub, hold_end, stamp, pending, heap, hn)  # fmt: skip
                elif st != stamp[i]:
                    continue
                elif kind == RELEASE:
                    hn = _release(i, s0, s, w, P, v_inf, A, Eh, Ih, theta, ub, stamp, pending, heap, hn)
                else:  # a spike of neuron i at t
                    pending[i] = False
                    tick = int(round(t / TICK_S))
                    if tick < trial_ticks[trial]:
                        count[i] += 1
                        if records[i]:
                            if n_out - first_out < budget[trial] and n_out < run_budget:
                                if n_out == o_tick.size:
                                    o_tick, o_neur = _grow(o_tick, 0), _grow(o_neur, 0)
                                g, j = columns[i], n_out
                                while j > first_out and o_tick[j - 1] == tick and o_neur[j - 1] > g:
                                    o_tick[j], o_neur[j] = o_tick[j - 1], o_neur[j - 1]
                                    j -= 1
                                o_tick[j], o_neur[j] = tick, g
                                n_out += 1
                            else:
                                dropped += 1
                    n_spk[i] += 1
                    theta[i] = P[V_THR, i] + (th_rms * streams.gauss(streams.derive(k_theta, i), n_spk[i]) if th_rms > 0 else 0.0)  # fmt: skip
                    hold_end[i] = t + P[T_REF, i]
                    if hold_end[i] < s_end:
                        hn = _push(ht, hk, hi_, hs, hn, hold_end[i], RELEASE, i, stamp[i])
                    if n_ptr[i + 1] > n_ptr[i]:
                        t_arr = t + latency + (jit * streams.gauss(streams.derive(k_nn, i), n_spk[i]) if jit > 0 else 0.0)
                        hn = _push(ht, hk, hi_, hs, hn, max(t_arr, t), ARRIVAL, i, 0)
            for i in range(N):
                if hold_end[i] >= s_end:
                    V[i] = P[V_RESET, i]
                else:
                    V[i] = v_inf[i] + A[i] * em[i] + Eh[i] * P[CE, i] * fe[i] - Ih[i] * P[CI, i] * fi[i]
                E[i], I[i] = Eh[i] * fe[i], Ih[i] * fi[i]
            k += 1
            if hn > 0 or not _quiet(P, V, E, hold_end, theta, s_end, margin):
                continue
            nxt = arrival[ep] if ep < n_ev else np.inf
            if jm < madc_n:
                nxt = min(nxt, jm * period)
            if jc < n_cadc:
                nxt = min(nxt, cadc_times[trial, jc])
            if nxt >= end:
                break
            k2 = int(nxt // H)
            if k2 > k and hold_end.max() <= s_end:
                _jump(P, V, E, I, (k2 - k) * H, m_rms, k_jump, k2)
                k = k2
        o_count[trial - lo] = n_out - first_out
        if counters.shape[0] > 0:
            for i in range(N):
                counters[trial, columns[i]] = count[i] if count[i] <= chip.SPIKE_COUNTER_MAX else 2 * chip.SPIKE_COUNTER_MAX + 1  # fmt: skip
    return o_count, o_tick[:n_out], o_neur[:n_out], dropped, False
