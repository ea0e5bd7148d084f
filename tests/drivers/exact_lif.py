"""An exact, event-by-event reference for the mock chip's neuron model (noise off), independent of
``drivers.mock``: it shares no code with the engine and reads the chip's truth only through
``MockChip.effective_parameters()``.

Per neuron, in float64: the state (V, E, I) is carried from event to event with the closed form

    V(t) = v_rest + (V0 - v_rest) e^{-t/tau_m} + E0 k_e(t) - I0 k_i(t),  k_x(t) = tau_x / (tau_x - tau_m) (e^{-t/tau_x} - e^{-t/tau_m})
    E(t) = E0 e^{-t/tau_e},  I(t) = I0 e^{-t/tau_i}

and the first threshold crossing between events is found by sampling V every ``GRID_S`` and
ruling sub-intervals out with a Lipschitz bound (|V'| <= (|V0 - v_rest| + 2 E0 + 2 I0) / tau_m),
then bisecting the first interval the bound cannot rule out down to ``RESOLUTION_S``.
Spikes reset V to v_reset for the refractory time; a spike reaches the neurons it is wired to
after the spike latency; host events arrive after the input latency.
"""

from __future__ import annotations

import heapq
import math

import attrs
import numpy as np

GRID_S = 1e-9
RESOLUTION_S = 1e-14


@attrs.frozen
class Cell:
    """One neuron's effective parameters (s, LSB)."""

    tau_m: float
    tau_e: float
    tau_i: float
    v_rest: float
    v_reset: float
    theta: float
    t_ref: float

    @classmethod
    def of(cls, truth: dict, n: int) -> Cell:
        return cls(
            *(float(truth[k][n]) for k in ("tau_mem", "tau_syn_exc", "tau_syn_inh")),
            float(truth["v_leak"][n] + truth["i_offset"][n]),
            float(truth["v_reset"][n]),
            float(truth["v_threshold"][n]),
            float(truth["refractory"][n]),
        )

    def kernel(self, t, tau_x):
        return tau_x / (tau_x - self.tau_m) * (np.exp(-t / tau_x) - np.exp(-t / self.tau_m))

    def free(self, state, t):
        """(V, E, I) after t seconds without input from state (V0, E0, I0); t may be an array."""
        v0, e0, i0 = state
        v = self.v_rest + (v0 - self.v_rest) * np.exp(-t / self.tau_m)
        v = v + e0 * self.kernel(t, self.tau_e) - i0 * self.kernel(t, self.tau_i)
        return v, e0 * np.exp(-t / self.tau_e), i0 * np.exp(-t / self.tau_i)

    def first_crossing(self, state, span: float) -> float | None:
        """Smallest t in [0, span] with V(t) >= theta, or None."""
        v0, e0, i0 = state
        if v0 >= self.theta:
            return 0.0
        slope = (abs(v0 - self.v_rest) + 2 * e0 + 2 * i0) / self.tau_m
        n = max(1, math.ceil(span / GRID_S))
        t = np.linspace(0.0, span, n + 1)
        v = self.free(state, t)[0]
        reach = np.maximum(v[:-1], v[1:]) + slope * (t[1] - t[0]) / 2
        for k in np.flatnonzero(reach >= self.theta):
            found = self._refine(state, slope, t[k], t[k + 1])
            if found is not None:
                return found
        return None

    def _refine(self, state, slope, a, b):
        va, vb = self.free(state, a)[0], self.free(state, b)[0]
        if va >= self.theta:
            return a
        if max(va, vb) + slope * (b - a) / 2 < self.theta:
            return None
        if b - a <= RESOLUTION_S:
            return b if vb >= self.theta else None
        m = 0.5 * (a + b)
        left = self._refine(state, slope, a, m)
        return left if left is not None else self._refine(state, slope, m, b)


@attrs.define
class _Neuron:
    cell: Cell
    state: tuple  # (V, E, I) at time t
    t: float
    hold_end: float = -1.0

    def at(self, t: float) -> tuple:
        """(V, E, I) at t >= self.t (without input in between, and no crossing before t)."""
        if t <= self.hold_end:
            _, e, i = self.cell.free(self.state, t - self.t)
            return (self.cell.v_reset, e, i)
        if self.t < self.hold_end:  # the hold ends in between: relax from v_reset after it
            _, e, i = self.cell.free(self.state, self.hold_end - self.t)
            return self.cell.free((self.cell.v_reset, e, i), t - self.hold_end)
        return self.cell.free(self.state, t - self.t)

    def next_spike(self, t: float, until: float) -> float | None:
        """First crossing in [max(t, end of hold), until), or None."""
        start = max(t, self.hold_end)
        if start >= until:
            return None
        found = self.cell.first_crossing(self.at(start), until - start)
        return None if found is None or start + found >= until else start + found


def simulate(cells, inputs, wiring, spike_latency: float, t_end: float):
    """Spike times of ``cells`` (list of Cell) up to ``t_end``.

    inputs: list of (arrival s, neuron, q_exc, q_inh) current jumps in LSB
    wiring: dict source neuron -> list of (target, q_exc, q_inh)
    Returns (spikes [(t, neuron)] in time order, a function V(neuron, t) of the membrane).
    """
    neurons = [_Neuron(c, (c.v_reset if c.v_rest >= c.theta else c.v_rest, 0.0, 0.0), 0.0) for c in cells]
    queue = [(t, k, n, qe, qi) for k, (t, n, qe, qi) in enumerate(inputs)]
    heapq.heapify(queue)
    serial = len(inputs)
    spikes, history = [], [[(0.0, nr.state, nr.hold_end)] for nr in neurons]
    t = 0.0
    while True:
        t_next = min(queue[0][0] if queue else t_end, t_end)
        crossings = [(nr.next_spike(t, t_next), n) for n, nr in enumerate(neurons)]
        crossings = [(tc, n) for tc, n in crossings if tc is not None]
        if crossings:
            tc, n = min(crossings)
            nr = neurons[n]
            _, e, i = nr.at(tc)
            nr.state, nr.t, nr.hold_end = (nr.cell.v_reset, e, i), tc, tc + nr.cell.t_ref
            history[n].append((tc, nr.state, nr.hold_end))
            spikes.append((tc, n))
            for target, qe, qi in wiring.get(n, ()):
                heapq.heappush(queue, (tc + spike_latency, serial, target, qe, qi))
                serial += 1
            t = tc
            continue
        if not queue or queue[0][0] >= t_end:
            break
        t, _, n, qe, qi = heapq.heappop(queue)
        nr = neurons[n]
        v, e, i = nr.at(t)
        nr.state, nr.t = (v, e + qe, i + qi), t
        history[n].append((t, nr.state, nr.hold_end))
    return spikes, _trace(cells, history)


def _trace(cells, history):
    def membrane(n: int, t: float) -> float:
        times = [h[0] for h in history[n]]
        k = int(np.searchsorted(times, t, side="right")) - 1
        t0, state, hold_end = history[n][k]
        nr = _Neuron(cells[n], state, t0, hold_end)
        return float(nr.at(t)[0])

    return membrane
