"""One neuron inside a noise segment, for the mock's kernel: closed form, bounds, inputs, spikes.

Inside segment ``[s0, s0 + w)`` neuron i follows, with s the time since ``s0``::

    V(s) = VINF + A e^{-a s} + B e^{-b s} + C e^{-c s},   B = EH * CE,   C = -IH * CI
    E(s) = EH e^{-b s},   I(s) = IH e^{-c s}

(``drivers.mock.trajectory``). An input changes ``EH``/``IH`` and ``A`` so that V stays
continuous. Before an exact search for the next crossing, two bounds of V over the rest of the
segment must both reach the threshold: a cheap one kept up to date across inputs (``UB``: the
free relaxation is monotonic and a current adds at most ``E * KMAX_H``), and a second-order
one (Taylor at s with the largest V'' over the interval; each of V'''s three terms is monotonic).
Tables: ``P`` (N, N_ROWS) parameters, ``S`` (N, N_STATE) state, ``Q`` the event queue.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from . import heap, streams, wakeups
from .tables import (
    CALM,
    CATCH_UP_MAX,
    CE,
    CI,
    EH,
    EM,
    EM_H,
    FE,
    FE_H,
    FI,
    FI_H,
    GA,
    GB,
    GC,
    GE_H,
    GI_H,
    GM_H,
    GSEG,
    HOLD,
    IH,
    KE_H,
    KI_H,
    KMAX_H,
    KPEAK,
    LAZY_SPAN,
    MODE,
    NO_SEGMENT,
    NOISE_I,
    NOISE_MAX,
    PARK_AFTER,
    PARKED,
    PEND,
    PIN,
    RATE_E,
    RATE_I,
    RATE_M,
    RELEASE,
    SAFE,
    SAFE_MIN,
    SEGMENT_S,
    SINCE,
    SLACK,
    SPIKE,
    STAMP,
    SWEEP,
    THETA,
    UB,
    V_RESET,
    V_REST,
    VINF,
    A,
    E,
    I,
    V,
)  # fmt: skip
from .trajectory import first_crossing

_FAST = {"cache": True, "_nrt": False}


@numba.njit(inline="always", **_FAST)
def membrane(P, S, i, s):
    """V at segment time s of free neuron i."""
    v = S[i, VINF] + S[i, A] * math.exp(-P[i, RATE_M] * s) + S[i, EH] * P[i, CE] * math.exp(-P[i, RATE_E] * s)
    if S[i, IH] != 0.0:
        v -= S[i, IH] * P[i, CI] * math.exp(-P[i, RATE_I] * s)
    return v


@numba.njit(inline="always", **_FAST)
def _ceiling(P, S, i, span, ta, tb, tc):
    """Upper bound of V over [s, s + span] (ending at the segment end) from the closed form's terms at s."""
    a, b, c = P[i, RATE_M], P[i, RATE_E], P[i, RATE_I]
    v = S[i, VINF] + ta + tb + tc
    d1 = -(a * ta + b * tb + c * tc)
    end_a, end_b = S[i, A] * S[i, EM], S[i, EH] * P[i, CE] * S[i, FE]
    end_c = -S[i, IH] * P[i, CI] * S[i, FI]
    m2 = a * a * max(ta, end_a) + b * b * max(tb, end_b) + c * c * max(tc, end_c)
    top = max(v, v + span * (d1 + 0.5 * m2 * span))
    if m2 < 0.0 and d1 > 0.0 and -d1 > m2 * span:
        top = v - d1 * d1 / (2.0 * m2)
    return top


@numba.njit(**_FAST)
def schedule(P, S, Q, n, i, s0, s, w, ea, eb, ec):
    """(Re)schedule free neuron i's next spike in [s, w] (segment time; ``ea, eb, ec`` = e^{-as},
    e^{-bs}, e^{-cs}); returns the queue size. ``S[i, UB]`` becomes a bound of V over [s, w]."""
    S[i, STAMP] += 1.0
    S[i, PEND] = 0.0
    ta, tb, tc = S[i, A] * ea, S[i, EH] * P[i, CE] * eb, -S[i, IH] * P[i, CI] * ec
    S[i, UB] = _ceiling(P, S, i, w - s, ta, tb, tc)
    if S[i, UB] + SLACK < S[i, THETA]:
        return n
    t = first_crossing(
        S[i, VINF] - S[i, THETA], S[i, A], S[i, EH] * P[i, CE], -S[i, IH] * P[i, CI], P[i, RATE_M], P[i, RATE_E], P[i, RATE_I], s, w
    )  # fmt: skip
    if t < 0.0:
        return n
    S[i, PEND] = 1.0
    return heap.push(Q, n, s0 + t, SPIKE, i, S[i, STAMP])


@numba.njit(inline="always", **_FAST)
def enter(P, S, Q, n, i, keys, k, s0, w, m_rms):
    """Neuron i at the start of segment k = [s0, s0 + w): noise draw, closed-form coefficients, and its
    first spike or hold release in the segment; returns the queue size."""
    if w >= SEGMENT_S:
        S[i, EM], S[i, FE], S[i, FI] = P[i, EM_H], P[i, FE_H], P[i, FI_H]
    else:
        S[i, EM], S[i, FE], S[i, FI] = math.exp(-P[i, RATE_M] * w), math.exp(-P[i, RATE_E] * w), math.exp(-P[i, RATE_I] * w)  # fmt: skip
    vi = P[i, V_REST] + (P[i, NOISE_I] * streams.gauss_sum(keys[0, i], k) if m_rms > 0.0 else 0.0)
    S[i, VINF], S[i, EH], S[i, IH], S[i, PEND] = vi, S[i, E], S[i, I], 0.0
    if S[i, HOLD] > s0:
        if S[i, HOLD] < s0 + w:
            n = heap.push(Q, n, S[i, HOLD], RELEASE, i, S[i, STAMP])
        return n
    S[i, A] = S[i, V] - vi - S[i, E] * P[i, CE] + S[i, I] * P[i, CI]
    S[i, UB] = max(S[i, V], vi + (S[i, V] - vi) * S[i, EM]) + S[i, E] * P[i, KMAX_H]
    if S[i, UB] >= S[i, THETA]:
        n = schedule(P, S, Q, n, i, s0, 0.0, w, 1.0, 1.0, 1.0)
    return n


@numba.njit(inline="always", **_FAST)
def _out_of_sweep(S, i, s0):
    """Neuron i leaves the sweep as ``SAFE`` at s0 (its state V, E, I refers to s0)."""
    S[i, MODE], S[i, SINCE], S[i, CALM], S[i, GSEG] = SAFE, s0, 0.0, NO_SEGMENT


@numba.njit(**_FAST)
def advance(P, S, Q, n, active, na, keys, k, s0, w, m_rms, margin, wheel, nodes):
    """End the previous segment (at s0) for the neurons in the sweep and enter segment k = [s0, s0 + w).
    A neuron that is not pinned leaves the sweep while its reset hold lasts through the next
    segment, or (not held) if it cannot reach threshold without new input whatever the noise, ever
    or for ``SAFE_MIN`` segments or more (``SAFE``; a wake-up filed in ``wheel``/``nodes``, room for
    ``na`` more, brings it back), or if it could not reach threshold less ``margin`` at
    ``PARK_AFTER`` segment ends in a row (``PARKED``). Returns the queue size and the sweep size
    (``active`` compacted)."""
    m = 0
    for q in range(na):
        i = active[q]
        if S[i, HOLD] >= s0:
            S[i, V] = P[i, V_RESET]
        else:
            S[i, V] = S[i, VINF] + S[i, A] * S[i, EM] + S[i, EH] * P[i, CE] * S[i, FE] - S[i, IH] * P[i, CI] * S[i, FI]  # fmt: skip
        S[i, E], S[i, I] = S[i, EH] * S[i, FE], S[i, IH] * S[i, FI]
        if S[i, HOLD] >= s0 + SEGMENT_S and S[i, PIN] == 0.0:  # held through the next segment
            _out_of_sweep(S, i, s0)
            S[i, STAMP] += 1.0
            wakeups.file(wheel, nodes, np.floor(S[i, HOLD] / SEGMENT_S), i, S[i, STAMP])
            continue
        if S[i, HOLD] < s0 and S[i, PIN] == 0.0:
            v, reach = S[i, V], S[i, E] * P[i, KPEAK]
            if max(v, P[i, V_REST] + P[i, NOISE_MAX]) + reach < S[i, THETA]:
                _out_of_sweep(S, i, s0)
                S[i, UB] = max(v, P[i, V_REST] + P[i, NOISE_MAX]) + reach
                continue
            # V(s0 + t) <= v + (max(0, v_rest + NOISE_MAX - v) + E) t / tau_mem, whatever the noise
            rise = (max(0.0, P[i, V_REST] + P[i, NOISE_MAX] - v) + S[i, E]) * P[i, RATE_M] * SEGMENT_S
            if v + SAFE_MIN * rise < S[i, THETA]:
                _out_of_sweep(S, i, s0)
                S[i, UB] = math.inf
                S[i, STAMP] += 1.0
                wakeups.file(wheel, nodes, k + np.floor((S[i, THETA] - v) / rise), i, S[i, STAMP])
                continue
            calm = max(v, P[i, V_REST]) + reach < S[i, THETA] - margin
            S[i, CALM] = S[i, CALM] + 1.0 if calm else 0.0
            if S[i, CALM] >= PARK_AFTER:
                S[i, MODE], S[i, SINCE] = PARKED, s0
                continue
        active[m] = i
        m += 1
        n = enter(P, S, Q, n, i, keys, k, s0, w, m_rms)
    return n, m


@numba.njit(inline="always", **_FAST)
def _jump(P, S, i, s0, m_rms, keys, k):
    """Advance a neuron outside the sweep to s0 (the start of segment k) at rest drive; the membrane
    noise of the stretch as one Gaussian draw (its exact variance)."""
    d = s0 - S[i, SINCE]
    if d <= 0.0:
        return
    em, fe, fi = math.exp(-P[i, RATE_M] * d), math.exp(-P[i, RATE_E] * d), math.exp(-P[i, RATE_I] * d)
    v = P[i, V_REST] + (S[i, V] - P[i, V_REST]) * em + S[i, E] * P[i, CE] * (fe - em) - S[i, I] * P[i, CI] * (fi - em)  # fmt: skip
    if m_rms > 0.0:
        v += m_rms * math.sqrt(max(1.0 - em * em, 0.0)) * streams.gauss(keys[1, i], k)
    S[i, V], S[i, E], S[i, I] = v, S[i, E] * fe, S[i, I] * fi


@numba.njit(inline="always", **_FAST)
def _catch_up(P, S, i, s0, m_rms, keys, k):
    """Advance a ``SAFE`` neuron to s0 (the start of segment k) through the segments it sat out, with
    the same noise draws the sweep would have made (at once without noise or while held; beyond
    ``CATCH_UP_MAX`` segments like a parked neuron)."""
    if S[i, HOLD] >= s0:  # held all along: V sits at v_reset, the currents decay
        d = s0 - S[i, SINCE]
        S[i, V] = P[i, V_RESET]
        S[i, E] *= math.exp(-P[i, RATE_E] * d)
        S[i, I] *= math.exp(-P[i, RATE_I] * d)
        return
    first = int(round(S[i, SINCE] / SEGMENT_S))
    if m_rms == 0.0 or k - first > CATCH_UP_MAX:
        _jump(P, S, i, s0, m_rms, keys, k)
        return
    v, e, c = S[i, V], S[i, E], S[i, I]
    for j in range(first, k):
        vi = P[i, V_REST] + P[i, NOISE_I] * streams.gauss_sum(keys[0, i], j)
        v = vi + (v - vi) * P[i, EM_H] + e * P[i, KE_H] - c * P[i, KI_H]
        e *= P[i, FE_H]
        c *= P[i, FI_H]
    S[i, V], S[i, E], S[i, I] = v, e, c


@numba.njit(inline="always", **_FAST)
def _absorbable(P, S, i, t, e):
    """A ``SAFE`` neuron i can take input (exc e) at time t without returning to the sweep: it is held
    then, or its bound ``UB`` (valid whatever the noise) stays below threshold with the input, and
    t is within ``LAZY_SPAN`` time constants of ``SINCE``."""
    held = S[i, HOLD] > t
    span = (t - S[i, SINCE]) * max(P[i, RATE_M], P[i, RATE_E], P[i, RATE_I])
    return (held or S[i, UB] + e * P[i, KPEAK] < S[i, THETA]) and span <= LAZY_SPAN


@numba.njit(inline="always", **_FAST)
def _absorb(P, S, i, e, h, grow_a, grow_b, grow_c):
    """Take input (e, h) into ``SAFE`` neuron i, with ``grow_x`` = e^{x / tau_x} for the time x since
    ``SINCE``: the stored state becomes a virtual state at ``SINCE`` whose free evolution gives the
    true state from the input on (the model is linear)."""
    S[i, E] += e * grow_b
    S[i, I] += h * grow_c
    S[i, V] += e * P[i, CE] * (grow_b - grow_a) - h * P[i, CI] * (grow_c - grow_a)
    S[i, UB] += e * P[i, KPEAK]


@numba.njit(inline="always", **_FAST)
def _since(P, S, i, k, s0):
    """Growth factors e^{(s0 - SINCE) / tau_x} of neuron i in segment k (computed once per segment; from
    the previous segment's by one segment's growth)."""
    if S[i, GSEG] == k - 1:
        S[i, GA], S[i, GB], S[i, GC] = S[i, GA] * P[i, GM_H], S[i, GB] * P[i, GE_H], S[i, GC] * P[i, GI_H]
        S[i, GSEG] = k
    elif S[i, GSEG] != k:
        d = s0 - S[i, SINCE]
        S[i, GA], S[i, GB], S[i, GC] = math.exp(P[i, RATE_M] * d), math.exp(P[i, RATE_E] * d), math.exp(P[i, RATE_I] * d)  # fmt: skip
        S[i, GSEG] = k
    return S[i, GA], S[i, GB], S[i, GC]


@numba.njit(inline="always", **_FAST)
def wake(P, S, Q, n, i, active, na, keys, k, s0, w, m_rms):
    """Bring neuron i into the sweep of segment k if it is out of it; returns (queue size, sweep size)."""
    if S[i, MODE] == SWEEP:
        return n, na
    if S[i, MODE] == SAFE:
        _catch_up(P, S, i, s0, m_rms, keys, k)
    else:
        _jump(P, S, i, s0, m_rms, keys, k)
    S[i, MODE] = SWEEP
    n = enter(P, S, Q, n, i, keys, k, s0, w, m_rms)
    active[na] = i
    return n, na + 1


@numba.njit(inline="always", **_FAST)
def _take(P, S, Q, n, i, e, h, grow_a, grow_b, grow_c, s0, s, w):
    """Current jumps e (exc), h (inh) into neuron i at segment time s; ``grow_x`` = e^{s/tau_x} (for a
    current that does not jump: 0, or the factor if known). Reschedules the neuron's next spike where
    needed."""
    S[i, CALM] = 0.0
    S[i, EH] += e * grow_b
    S[i, IH] += h * grow_c
    S[i, A] += (h * P[i, CI] - e * P[i, CE]) * grow_a
    S[i, UB] += e * P[i, KMAX_H]
    if S[i, HOLD] > s0 + s or not (S[i, PEND] != 0.0 or (e > 0.0 and S[i, UB] >= S[i, THETA])):
        return n
    eb = ec = 0.0
    if S[i, EH] != 0.0:
        eb = 1.0 / grow_b if grow_b != 0.0 else math.exp(-P[i, RATE_E] * s)
    if S[i, IH] != 0.0:
        ec = 1.0 / grow_c if grow_c != 0.0 else math.exp(-P[i, RATE_I] * s)
    return schedule(P, S, Q, n, i, s0, s, w, 1.0 / grow_a, eb, ec)


@numba.njit(**_FAST)
def deliver(ptr, idx, qe, qi, row, s0, s, w, P, S, Q, n, active, na, keys, k, m_rms):
    """Spike of CSR ``row`` arriving at segment time s (segment k) at its targets; returns the queue
    size and the sweep size."""
    for j in range(ptr[row], ptr[row + 1]):
        i, e, h = idx[j], qe[j], qi[j]
        if S[i, MODE] == SAFE and _absorbable(P, S, i, s0 + s, e):
            x = s0 + s - S[i, SINCE]
            _absorb(P, S, i, e, h, math.exp(P[i, RATE_M] * x), math.exp(P[i, RATE_E] * x), math.exp(P[i, RATE_I] * x))
            continue
        n, na = wake(P, S, Q, n, i, active, na, keys, k, s0, w, m_rms)
        grow_b = math.exp(P[i, RATE_E] * s) if e != 0.0 else 0.0
        grow_c = math.exp(P[i, RATE_I] * s) if h != 0.0 else 0.0
        n = _take(P, S, Q, n, i, e, h, math.exp(P[i, RATE_M] * s), grow_b, grow_c, s0, s, w)
    return n, na


@numba.njit(inline="always", **_FAST)
def _exp_small(u):
    """e^u for the small u of timing jitter (Taylor to 4th order: relative error u^5 / 120, below
    1e-9 for a 10 ns shift at time constants from the calibratable 0.3 us up)."""
    return 1.0 + u * (1.0 + u * (0.5 + u * (1 / 6 + u * (1 / 24))))


@numba.njit(**_FAST)
def deliver_host(ptr, idx, qe, qi, row, row_g, delta, G, s0, s, w, P, S, Q, n, active, na, keys, k, m_rms):
    """Host event of CSR ``row`` at segment time s = table row ``row_g`` of ``G`` plus jitter ``delta``
    (s): like ``deliver``, with the growth factors from the table."""
    for j in range(ptr[row], ptr[row + 1]):
        i, e, h = idx[j], qe[j], qi[j]
        safe = S[i, MODE] == SAFE and _absorbable(P, S, i, s0 + s, e)
        if not safe:
            n, na = wake(P, S, Q, n, i, active, na, keys, k, s0, w, m_rms)
        grow_a, grow_b, grow_c = G[row_g, 0, i], 0.0, 0.0
        if delta != 0.0:
            grow_a *= _exp_small(delta * P[i, RATE_M])
        if e != 0.0 or not safe:
            grow_b = G[row_g, 1, i] * _exp_small(delta * P[i, RATE_E]) if delta != 0.0 else G[row_g, 1, i]
        if h != 0.0 or not safe:
            grow_c = G[row_g, 2, i] * _exp_small(delta * P[i, RATE_I]) if delta != 0.0 else G[row_g, 2, i]
        if safe:
            fa, fb, fc = _since(P, S, i, k, s0)
            _absorb(P, S, i, e, h, grow_a * fa, grow_b * fb, grow_c * fc)
        else:
            n = _take(P, S, Q, n, i, e, h, grow_a, grow_b, grow_c, s0, s, w)
    return n, na


@numba.njit(**_FAST)
def release(P, S, Q, n, i, s0, s, w):
    """End of neuron i's reset hold at segment time s: it relaxes from ``v_reset``."""
    ea, eb = math.exp(-P[i, RATE_M] * s), math.exp(-P[i, RATE_E] * s)
    ec = math.exp(-P[i, RATE_I] * s) if S[i, IH] != 0.0 else 0.0
    S[i, A] = (P[i, V_RESET] - S[i, VINF] - S[i, EH] * P[i, CE] * eb + S[i, IH] * P[i, CI] * ec) / ea
    return schedule(P, S, Q, n, i, s0, s, w, ea, eb, ec)
