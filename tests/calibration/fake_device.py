"""A small fake ``hil.Device`` for calibration tests: a numpy LIF chip with known per-neuron
parameters and monotonic CapMem transfer functions (not the project's mock chip).

Time is stepped at ``dt`` (exact exponential propagation within a step, events applied at
step starts, threshold crossings interpolated linearly). Units follow the calibration:
potentials in CADC LSB, currents in LSB, times in seconds.
"""

from __future__ import annotations

import time

import numpy as np

import hil
from hil import chip
from hil.measurement import SPIKE_DTYPE, CadcSamples, Health, MadcTrace, Measurement, Provenance

N = chip.N_NEURONS


class FakeChip(hil.DeviceBase):
    def __init__(
        self, seed=0, *, mismatch=1.0, noise=True, dt=0.1e-6, cadc_offsets=True, silent=False, dead=(), latency=40e-9
    ):
        rng = np.random.default_rng(seed)
        m = lambda s: 1.0 + mismatch * s * rng.standard_normal(N)
        self.rng = np.random.default_rng(seed + 1000)
        self.dt = dt
        self.noise = noise
        self.silent = silent  # a broken device: never reports spikes
        self.latency = latency
        # transfer function parameters
        self.leak_a, self.leak_b = 30 + mismatch * 8 * rng.standard_normal(N), 0.2 * m(0.08)
        self.reset_a, self.reset_b = 25 + mismatch * 8 * rng.standard_normal(N), 0.2 * m(0.08)
        self.thr_a, self.thr_b = 35 + mismatch * 8 * rng.standard_normal(N), 0.25 * m(0.08)
        self.tau_k = 3.2e-3 * m(0.2)  # tau_mem = k / (code + 20)
        self.tse_k = 2.0e-3 * m(0.2)  # tau_syn = k / (code + 20)
        self.tsi_k = 2.0e-3 * m(0.2)
        self.ge_k = m(0.15)  # gain = k * gm / 300 * dac / 600
        self.gi_k = m(0.15)
        self.off_k = 0.3 * m(0.15)  # offset current per code (LSB)
        self.ref_k = m(0.03)
        self.cadc_offset = rng.standard_normal(N) if cadc_offsets else np.zeros(N)
        self.dead = np.zeros(N, bool)
        self.dead[list(dead)] = True  # neurons that never fire
        self.config = hil.ChipConfig()
        self.runs = 0

    # --- truth --------------------------------------------------------------------------
    def truth(self, cfg=None):
        c = self.config if cfg is None else cfg
        f = lambda name: c.arrays()[name].astype(np.float64)
        q = chip.quadrant_of(np.arange(N))
        dac = c.syn_i_bias_dac.astype(np.float64)[q]
        return {
            "v_leak": self.leak_a + self.leak_b * f("v_leak"),
            "v_reset": self.reset_a + self.reset_b * f("v_reset"),
            "v_threshold": self.thr_a + self.thr_b * f("v_threshold"),
            "tau_mem": self.tau_k / (f("i_bias_leak") + 20),
            "tau_syn_exc": self.tse_k / (f("i_bias_synin_exc_tau") + 20),
            "tau_syn_inh": self.tsi_k / (f("i_bias_synin_inh_tau") + 20),
            "weight_gain_exc": self.ge_k * f("i_bias_synin_exc_gm") / 300 * dac / 600,
            "weight_gain_inh": self.gi_k * f("i_bias_synin_inh_gm") / 300 * dac / 600,
            "i_offset": self.off_k * f("i_mem_offset"),
            "refractory": self.ref_k * chip.refractory_seconds(c.refractory_counter, c.refractory_clock_scale[q]),
        }

    # --- Device protocol ------------------------------------------------------------------
    def info(self):
        return hil.DeviceInfo(chip_id="fake-chip", driver="fake")

    def configure(self, config):
        config.validate()
        self.config = config.copy()

    def reset(self):
        self.config = hil.ChipConfig()

    def close(self):
        pass

    def _routes(self, labels):
        """label -> (exc weights (512,), inh weights (512,)) in weight LSB."""
        c = self.config
        out = {}
        for lab in np.unique(labels):
            lab = int(lab)
            ch, rs, sl = (lab >> 14) & 3, (lab >> 6) & 31, lab & 63
            exc = np.zeros(N)
            inh = np.zeros(N)
            i = chip.CROSSBAR_HOST_INPUT_OFFSET + ch
            for o in range(chip.CROSSBAR_OUTPUTS):
                if not c.crossbar_enable[i, o] or (lab & int(c.crossbar_mask[i, o])) != int(c.crossbar_target[i, o]):
                    continue
                h, bus = divmod(o, chip.PADI_BUSES)
                d = rs * chip.PADI_BUSES + bus
                for r in (2 * d, 2 * d + 1):
                    mode = c.row_modes[h, r]
                    if mode == chip.ROW_MODE_DISABLED:
                        continue
                    hit = c.synapse_labels[h, r] == sl
                    w = np.where(hit, c.synapse_weights[h, r], 0).astype(np.float64)
                    tgt = exc if mode == chip.ROW_MODE_EXCITATORY else inh
                    tgt[h * 256 : (h + 1) * 256] += w
            out[lab] = (exc, inh)
        return out

    def run(self, stimulus, recording=None):
        recording = recording or hil.Recording()
        t_wall = time.perf_counter()
        self.runs += 1
        p = self.truth()
        dur = stimulus.durations.astype(np.float64) * chip.TICK_S
        steps = int(np.ceil(dur.max() / self.dt))
        cadc = self._cadc_times(recording, dur, stimulus.n_trials)
        spikes, madc_grid, cadc_values = self._simulate(stimulus, recording, p, steps, cadc)
        counts = np.zeros((stimulus.n_trials, N), np.uint16)
        np.add.at(counts, (spikes["trial"], spikes["neuron"]), 1)
        cadc_samples = self._cadc(cadc, cadc_values)  # noise drawn before the MADC's
        return Measurement(
            spikes=spikes,
            n_trials=stimulus.n_trials,
            health=Health(),
            madc=self._madc(recording, madc_grid, steps),
            cadc=cadc_samples,
            spike_counts=np.minimum(counts, 511),
            provenance=Provenance(
                "fake", "fake-chip", self.config.content_hash(), hil.__version__, time.perf_counter() - t_wall
            ),
        )

    def _cadc_times(self, recording, dur, T):
        """(sample times (T, S) s, their step indices) or None without CADC."""
        period = recording.cadc_period_s
        if period is None:
            return None
        phase = self.rng.uniform(0, period, T)
        n_s = int(np.floor((dur.min() - period) / period))
        s_times = phase[:, None] + period * np.arange(n_s)[None, :]
        return s_times, np.floor(s_times / self.dt).astype(np.int64)

    def _propagators(self, p):
        """Per-step decay factors and the current -> membrane coefficients (exact within a step)."""
        dt, tm = self.dt, p["tau_mem"]
        te = np.where(np.abs(p["tau_syn_exc"] - tm) < 1e-12, p["tau_syn_exc"] * 1.0001, p["tau_syn_exc"])
        ti = np.where(np.abs(p["tau_syn_inh"] - tm) < 1e-12, p["tau_syn_inh"] * 1.0001, p["tau_syn_inh"])
        Pm, Pe, Pi = np.exp(-dt / tm), np.exp(-dt / te), np.exp(-dt / ti)
        # V = J ts/(tm-ts)(e^-t/tm - e^-t/ts): a current I adds I ts/(tm-ts) (Pm - Ps) per step
        return Pm, Pe, Pi, te / (tm - te) * (Pm - Pe), ti / (tm - ti) * (Pm - Pi)

    def _simulate(self, stimulus, recording, p, steps, cadc):
        """Step the LIF; returns spikes (SPIKE_DTYPE), the MADC neuron's grid trace, CADC values."""
        T = stimulus.n_trials
        Pm, Pe, Pi, ce, ci = self._propagators(p)
        v_inf = p["v_leak"] + p["i_offset"]
        V = np.broadcast_to(v_inf, (T, N)).copy()
        Ie, Ii, ref_left = np.zeros((T, N)), np.zeros((T, N)), np.zeros((T, N))
        events = self._events(stimulus, p)
        c_values = None if cadc is None else np.zeros((*cadc[0].shape, N))
        c_ptr = np.zeros(T, np.int64)
        madc = np.zeros((T, steps)) if recording.madc_neuron is not None else None
        fired = []
        sigma = 0.3 if self.noise else 0.0
        for k in range(steps):
            for tr, exc, inh in events.get(k, ()):
                Ie[tr] += exc
                Ii[tr] += inh
            u = (V - v_inf) * Pm + Ie * ce - Ii * ci
            if sigma:
                u += sigma * np.sqrt(1 - Pm**2) * self.rng.standard_normal((T, N))
            Ie *= Pe
            Ii *= Pi
            V = self._fire(V, u + v_inf, ref_left, p, k, fired)
            if madc is not None:
                madc[:, k] = V[:, recording.madc_neuron]
            if cadc is not None:
                S = cadc[1].shape[1]
                for tr in np.flatnonzero((c_ptr < S) & (cadc[1][np.arange(T), np.minimum(c_ptr, S - 1)] == k)):
                    c_values[tr, c_ptr[tr]] = V[tr]
                    c_ptr[tr] += 1
        return self._spike_array(fired), madc, c_values

    def _events(self, stimulus, p):
        """Step -> [(trial, exc current (512,), inh current (512,))] of the routed host events."""
        if not stimulus.n_events:
            return {}
        routes = self._routes(stimulus.events["label"])
        trial_of = stimulus.trial_index()
        step = np.floor((stimulus.events["tick"] * chip.TICK_S + self.latency) / self.dt).astype(np.int64)
        out = {}
        for e in np.argsort(step, kind="stable"):
            exc, inh = routes[int(stimulus.events["label"][e])]
            out.setdefault(int(step[e]), []).append(
                (trial_of[e], exc * p["weight_gain_exc"], inh * p["weight_gain_inh"])
            )
        return out

    def _fire(self, V, Vn, ref_left, p, k, fired):
        """Refractory hold, threshold crossings (linearly interpolated times) and resets."""
        thr, vr = p["v_threshold"], p["v_reset"]
        inref = ref_left > 0
        Vn = np.where(inref, vr, Vn)
        ref_left[...] = np.maximum(ref_left - self.dt, 0)
        cross = (~inref) & (Vn >= thr) & (self.config.enable_spike_out & ~self.dead)[None, :]
        if not np.any(cross):
            return Vn
        tr, nn = np.nonzero(cross)
        frac = np.clip((thr[nn] - V[tr, nn]) / np.maximum(Vn[tr, nn] - V[tr, nn], 1e-9), 0, 1)
        if self.silent:
            frac = np.ones_like(frac)
        else:
            fired.append(((k + frac) * self.dt, tr, nn))
        Vn[tr, nn] = vr[nn]
        ref_left[tr, nn] = p["refractory"][nn] - (1 - frac) * self.dt
        return Vn

    @staticmethod
    def _spike_array(fired):
        s = np.empty(sum(f[0].size for f in fired), SPIKE_DTYPE)
        if fired:
            s["tick"] = np.rint(np.concatenate([f[0] for f in fired]) / chip.TICK_S)
            s["trial"] = np.concatenate([f[1] for f in fired])
            s["neuron"] = np.concatenate([f[2] for f in fired])
            s = s[np.lexsort((s["tick"], s["trial"]))]
        return s

    def _cadc(self, cadc, values):
        if cadc is None:
            return None
        noise = self.rng.normal(0, 0.7 if self.noise else 0.0, values.shape)
        codes = np.clip(np.rint(values + self.cadc_offset + noise), 0, 255).astype(np.uint8)
        return CadcSamples(codes, np.rint(cadc[0] / chip.TICK_S).astype(np.uint64))

    def _madc(self, recording, grid, steps):
        if grid is None:
            return None
        t = np.arange(recording.madc_samples) * chip.MADC_SAMPLE_PERIOD_S
        idx = np.minimum((t / self.dt).astype(np.int64), steps - 1)
        raw = grid[:, idx] * 2.0 + 100 + self.rng.normal(0, 0.5, (grid.shape[0], idx.size))
        codes = np.clip(np.rint(raw), 0, 1023).astype(np.uint16)
        return MadcTrace(recording.madc_neuron, recording.madc_source, codes)
