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
        m = lambda s: 1.0 + mismatch * s * rng.standard_normal(N)  # noqa: E731
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
        f = lambda name: c.arrays()[name].astype(np.float64)  # noqa: E731
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

    def run(self, stimulus, recording=hil.Recording()):
        t_wall = time.perf_counter()
        self.runs += 1
        p = self.truth()
        dt = self.dt
        T = stimulus.n_trials
        dur = stimulus.durations.astype(np.float64) * chip.TICK_S
        steps = int(np.ceil(dur.max() / dt))
        tm, te, ti = p["tau_mem"], p["tau_syn_exc"], p["tau_syn_inh"]
        te = np.where(np.abs(te - tm) < 1e-12, te * 1.0001, te)
        ti = np.where(np.abs(ti - tm) < 1e-12, ti * 1.0001, ti)
        Pm, Pe, Pi = np.exp(-dt / tm), np.exp(-dt / te), np.exp(-dt / ti)
        ce, ci = te / (tm - te) * (Pe - Pm), ti / (tm - ti) * (Pi - Pm)
        # u(dt) = u0 Pm + Ie0 ce' ... sign: V = J ts/(tm-ts)(e^-t/tm - e^-t/ts) -> coefficient (Pm - Ps) ts/(tm-ts)
        ce, ci = -ce, -ci
        v_inf = p["v_leak"] + p["i_offset"]
        thr, vr, tref = p["v_threshold"], p["v_reset"], p["refractory"]
        spiking = self.config.enable_spike_out & ~self.dead
        V = np.broadcast_to(v_inf, (T, N)).copy()
        Ie = np.zeros((T, N))
        Ii = np.zeros((T, N))
        ref_left = np.zeros((T, N))
        # events -> steps
        routes = self._routes(stimulus.events["label"]) if stimulus.n_events else {}
        trial_of = stimulus.trial_index()
        ev_time = stimulus.events["tick"].astype(np.float64) * chip.TICK_S + self.latency
        ev_step = np.floor(ev_time / dt).astype(np.int64)
        order = np.argsort(ev_step, kind="stable")
        ev_ptr = 0
        # CADC sample times
        cadc = recording.cadc_period_s
        if cadc is not None:
            period = cadc
            phase = self.rng.uniform(0, period, T)
            n_s = int(np.floor((dur.min() - period) / period))
            s_times = phase[:, None] + period * np.arange(n_s)[None, :]
            s_step = np.floor(s_times / dt).astype(np.int64)
            c_samples = np.zeros((T, n_s, N))
            ptr = np.zeros(T, np.int64)
        madc_trace = np.zeros((T, steps)) if recording.madc_neuron is not None else None
        spikes_t, spikes_tr, spikes_n = [], [], []
        sigma = 0.3 if self.noise else 0.0
        for k in range(steps):
            while ev_ptr < order.size and ev_step[order[ev_ptr]] <= k:
                e = order[ev_ptr]
                exc, inh = routes[int(stimulus.events["label"][e])]
                tr = trial_of[e]
                Ie[tr] += exc * p["weight_gain_exc"]
                Ii[tr] += inh * p["weight_gain_inh"]
                ev_ptr += 1
            u = V - v_inf
            u_new = u * Pm + Ie * ce - Ii * ci
            if sigma:
                u_new += sigma * np.sqrt(1 - Pm**2) * self.rng.standard_normal((T, N))
            Vn = u_new + v_inf
            Ie *= Pe
            Ii *= Pi
            inref = ref_left > 0
            Vn = np.where(inref, vr, Vn)
            ref_left = np.maximum(ref_left - dt, 0)
            cross = (~inref) & (Vn >= thr) & spiking[None, :]
            if np.any(cross) and not self.silent:
                tr, nn = np.nonzero(cross)
                frac = np.clip((thr[nn] - V[tr, nn]) / np.maximum(Vn[tr, nn] - V[tr, nn], 1e-9), 0, 1)
                spikes_t.append((k + frac) * dt)
                spikes_tr.append(tr)
                spikes_n.append(nn)
                Vn[tr, nn] = vr[nn]
                ref_left[tr, nn] = tref[nn] - (1 - frac) * dt
            elif np.any(cross):
                Vn = np.where(cross, vr, Vn)
                ref_left = np.where(cross, tref[None, :], ref_left)
            V = Vn
            if madc_trace is not None:
                madc_trace[:, k] = V[:, recording.madc_neuron]
            if cadc is not None:
                for tr in np.flatnonzero((ptr < n_s) & (s_step[np.arange(T), np.minimum(ptr, n_s - 1)] == k)):
                    c_samples[tr, ptr[tr]] = V[tr]
                    ptr[tr] += 1
        if spikes_t:
            st = np.concatenate(spikes_t)
            s = np.empty(st.size, SPIKE_DTYPE)
            s["trial"], s["tick"], s["neuron"] = (
                np.concatenate(spikes_tr),
                np.rint(st / chip.TICK_S),
                np.concatenate(spikes_n),
            )
            s = s[np.lexsort((s["tick"], s["trial"]))]
        else:
            s = np.empty(0, SPIKE_DTYPE)
        counts = np.zeros((T, N), np.uint16)
        np.add.at(counts, (s["trial"], s["neuron"]), 1)
        counts = np.minimum(counts, 511)
        cadc_out = None
        if cadc is not None:
            noise = self.rng.normal(0, 0.7 if self.noise else 0.0, c_samples.shape)
            codes = np.clip(np.rint(c_samples + self.cadc_offset + noise), 0, 255).astype(np.uint8)
            cadc_out = CadcSamples(codes, np.rint(s_times / chip.TICK_S).astype(np.uint64))
        madc = None
        if madc_trace is not None:
            n = recording.madc_neuron
            t = np.arange(recording.madc_samples) * chip.MADC_SAMPLE_PERIOD_S
            idx = np.minimum((t / dt).astype(np.int64), steps - 1)
            raw = madc_trace[:, idx] * 2.0 + 100 + self.rng.normal(0, 0.5, (T, idx.size))
            madc = MadcTrace(n, recording.madc_source, np.clip(np.rint(raw), 0, 1023).astype(np.uint16))
        return Measurement(
            spikes=s,
            n_trials=T,
            health=Health(),
            madc=madc,
            cadc=cadc_out,
            spike_counts=counts,
            provenance=Provenance(
                "fake", "fake-chip", self.config.content_hash(), hil.__version__, time.perf_counter() - t_wall
            ),
        )
