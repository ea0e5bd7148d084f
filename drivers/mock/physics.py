"""The mock chip's analog physics: fixed-pattern mismatch drawn from the chip seed and the
per-neuron transfer functions CapMem value (0..1022) -> physical parameter.

Units: potentials and synaptic currents in CADC LSB (a current ``I`` moves the membrane's
equilibrium by ``I`` LSB), times in seconds. Every transfer function is strictly monotonic
in its CapMem value for every neuron, so a calibration can binary-search it.

- ``v_leak``, ``v_reset``, ``v_threshold``: ``v(c) = 10 + o + g * (0.26 c + k c**2 / 1022)``,
  offset ``o`` ~ N(0, 4) LSB, gain ``g`` ~ 1 + N(0, 0.04), curvature ``k`` ~ U(-0.01, 0.01).
- ``i_bias_leak`` -> tau_mem ``= s * 200 us / (1 + c / (28.8 r))**2`` (about 200 us at 0,
  0.15 us at 1022), scale ``s`` ~ exp(N(0, 0.2)), ``r`` ~ exp(N(0, 0.08)).
- ``i_bias_synin_{exc,inh}_tau`` -> tau_syn ``= s * 100 us / (1 + c / (33.4 r))**2``,
  ``s`` ~ exp(N(0, 0.15)), ``r`` ~ exp(N(0, 0.08)).
- ``i_bias_synin_{exc,inh}_gm`` (c) and the quadrant's ``syn_i_bias_dac`` (d) -> weight gain
  ``= 6 (c / 1022)**1.2 (0.15 + 0.85 d / 1022) m_n m_q`` LSB of current per weight LSB,
  ``m_n`` ~ exp(N(0, 0.12)) per neuron, ``m_q`` ~ exp(N(0, 0.05)) per quadrant.
- ``i_mem_offset`` -> constant current ``0.35 c m + e``, ``m`` ~ exp(N(0, 0.1)), ``e`` ~ N(0, 0.5).
- per synapse: weight factor ~ 1 + N(0, 0.03) (clipped at 3 sigma).

Every normal draw is clipped at 3 sigma, which keeps each calix feasible range of
:mod:`hil.chip` reachable for every neuron.

Two rules make the neuron model well-posed for an exact simulation (both are part of the
hidden truth that ``effective_parameters`` reports):

- a synaptic time constant within ``TAU_SEPARATION`` (relative) of the membrane's is moved
  to that distance (the closed form ``tau_syn / (tau_syn - tau_mem)`` stays well
  conditioned; real circuits never match exactly);
- a reset holds the membrane for at least ``MIN_HOLD_S`` (one 8 ns tick), so a neuron whose
  reset potential lies above its threshold fires at most once per tick.
"""

from __future__ import annotations

import attrs
import numpy as np

from hil import chip
from hil.config import ChipConfig

_N = chip.N_NEURONS
_C = float(chip.CAPMEM_MAX)

TAU_MEM_MAX_S, TAU_MEM_KNEE = 200e-6, 28.8
TAU_SYN_MAX_S, TAU_SYN_KNEE = 100e-6, 33.4
GAIN_MAX = 6.0
OFFSET_CURRENT_PER_CAPMEM = 0.35
TAU_SEPARATION = 1e-4  # smallest relative distance of a synaptic time constant from tau_mem
MIN_HOLD_S = chip.TICK_S  # shortest reset hold (refractory counter 0)


@attrs.frozen(eq=False)
class NoiseModel:
    """Temporal noise and timing of one chip (all drawn or fixed per chip seed).

    membrane_rms:    stationary rms of the membrane fluctuation, LSB
    threshold_rms:   rms of the per-spike threshold (comparator) noise, LSB
    input_latency_s: fixed delay host event -> synapse (per chip, tens of ns)
    spike_latency_s: fixed delay neuron spike -> synapse of another neuron
    jitter_rms_s:    rms of the per-event timing jitter
    """

    membrane_rms: float = 0.7
    threshold_rms: float = 0.4
    input_latency_s: float = 40e-9
    spike_latency_s: float = 30e-9
    jitter_rms_s: float = 2e-9


@attrs.frozen(eq=False)
class ReadoutModel:
    """ADC non-idealities of one chip.

    MADC code = ``madc_offset + madc_gain * 4 * x + N(0, madc_noise)``, ``x`` the membrane in
    LSB or ``SYNIN_BASELINE + I`` for a synaptic input; CADC code = ``V + cadc_offset[n] +
    N(0, cadc_noise)``; both rounded and clipped to their bit range.
    """

    madc_offset: float
    madc_gain: float
    madc_noise: float
    cadc_offset: np.ndarray  # (512,) LSB
    cadc_noise: float


SYNIN_BASELINE = 40.0  # LSB the MADC adds to a synaptic-input reading (its resting level)


def _clipped_normal(rng, scale, size):
    return scale * np.clip(rng.standard_normal(size), -3.0, 3.0)


@attrs.frozen(eq=False)
class Mismatch:
    """Fixed-pattern parameters of one chip instance, drawn once from its seed."""

    potential: dict  # name -> (offset (512,), gain (512,), curvature (512,))
    tau_mem: tuple  # (scale (512,), knee (512,))
    tau_syn: dict  # "exc"/"inh" -> (scale, knee)
    gain_neuron: dict  # "exc"/"inh" -> (512,)
    gain_quadrant: dict  # "exc"/"inh" -> (4,)
    offset_current: tuple  # (gain (512,), offset (512,))
    synapse: np.ndarray  # (2, 256, 256) float32 weight factors
    noise: NoiseModel
    readout: ReadoutModel

    @classmethod
    def draw(cls, seed: int) -> Mismatch:
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1,)))
        potential = {
            name: (_clipped_normal(rng, 4.0, _N), 1.0 + _clipped_normal(rng, 0.04, _N), rng.uniform(-0.01, 0.01, _N))
            for name in ("v_leak", "v_reset", "v_threshold")
        }
        tau_mem = (np.exp(_clipped_normal(rng, 0.2, _N)), TAU_MEM_KNEE * np.exp(_clipped_normal(rng, 0.08, _N)))
        tau_syn = {
            s: (np.exp(_clipped_normal(rng, 0.15, _N)), TAU_SYN_KNEE * np.exp(_clipped_normal(rng, 0.08, _N)))
            for s in ("exc", "inh")
        }
        gain_neuron = {s: np.exp(_clipped_normal(rng, 0.12, _N)) for s in ("exc", "inh")}
        gain_quadrant = {s: np.exp(_clipped_normal(rng, 0.05, chip.N_QUADRANTS)) for s in ("exc", "inh")}
        offset_current = (np.exp(_clipped_normal(rng, 0.1, _N)), _clipped_normal(rng, 0.5, _N))
        synapse = (
            1.0 + _clipped_normal(rng, 0.03, (chip.N_HEMISPHERES, chip.SYNAPSE_ROWS, chip.SYNAPSE_COLUMNS))
        ).astype(np.float32)
        noise = NoiseModel(
            input_latency_s=float(rng.uniform(30e-9, 60e-9)), spike_latency_s=float(rng.uniform(20e-9, 40e-9))
        )
        readout = ReadoutModel(
            madc_offset=float(_clipped_normal(rng, 6.0, None)),
            madc_gain=float(1.0 + _clipped_normal(rng, 0.02, None)),
            madc_noise=1.5,
            cadc_offset=_clipped_normal(rng, 1.0, _N),
            cadc_noise=0.5,
        )
        return cls(potential, tau_mem, tau_syn, gain_neuron, gain_quadrant, offset_current, synapse, noise, readout)

    # --- transfer functions: CapMem (512,) -> physical (512,) ---------------------------------
    def potential_of(self, name: str, capmem) -> np.ndarray:
        """``v_leak``/``v_reset``/``v_threshold`` CapMem -> potential in LSB."""
        o, g, k = self.potential[name]
        c = np.asarray(capmem, dtype=np.float64)
        return 10.0 + o + g * (0.26 * c + k * c * c / _C)

    def tau_mem_of(self, i_bias_leak) -> np.ndarray:
        """``i_bias_leak`` CapMem -> membrane time constant in s."""
        s, r = self.tau_mem
        return s * TAU_MEM_MAX_S / (1.0 + np.asarray(i_bias_leak, dtype=np.float64) / r) ** 2

    def tau_syn_of(self, sign: str, capmem) -> np.ndarray:
        """``i_bias_synin_{sign}_tau`` CapMem -> synaptic time constant in s."""
        s, r = self.tau_syn[sign]
        return s * TAU_SYN_MAX_S / (1.0 + np.asarray(capmem, dtype=np.float64) / r) ** 2

    def gain_of(self, sign: str, gm, dac_per_neuron) -> np.ndarray:
        """``i_bias_synin_{sign}_gm`` and the neuron's quadrant ``syn_i_bias_dac`` -> LSB per weight LSB."""
        gm = np.asarray(gm, dtype=np.float64) / _C
        dac = np.asarray(dac_per_neuron, dtype=np.float64) / _C
        quadrant = self.gain_quadrant[sign][chip.quadrant_of(np.arange(_N))]
        return GAIN_MAX * gm**1.2 * (0.15 + 0.85 * dac) * self.gain_neuron[sign] * quadrant

    def offset_current_of(self, i_mem_offset) -> np.ndarray:
        """``i_mem_offset`` CapMem -> constant current in LSB."""
        g, e = self.offset_current
        return OFFSET_CURRENT_PER_CAPMEM * np.asarray(i_mem_offset, dtype=np.float64) * g + e


def separated(tau_syn: np.ndarray, tau_mem: np.ndarray) -> np.ndarray:
    """``tau_syn`` moved to at least ``TAU_SEPARATION * tau_mem`` from ``tau_mem`` (on its own side; up if equal)."""
    gap = TAU_SEPARATION * tau_mem
    close = np.abs(tau_syn - tau_mem) < gap
    return np.where(close, np.where(tau_syn < tau_mem, tau_mem - gap, tau_mem + gap), tau_syn)


@attrs.frozen(eq=False)
class NeuronParameters:
    """Effective per-neuron parameters (512,) float64 of one configuration (the hidden truth)."""

    v_leak: np.ndarray
    v_reset: np.ndarray
    v_threshold: np.ndarray
    i_offset: np.ndarray
    tau_mem: np.ndarray
    tau_syn_exc: np.ndarray
    tau_syn_inh: np.ndarray
    refractory: np.ndarray
    weight_gain_exc: np.ndarray  # at the quadrant's DAC bias; enable_synin_* is applied by routing
    weight_gain_inh: np.ndarray

    @classmethod
    def of(cls, mismatch: Mismatch, cfg: ChipConfig) -> NeuronParameters:
        quadrant = chip.quadrant_of(np.arange(_N))
        dac = cfg.syn_i_bias_dac[quadrant]
        tau_mem = mismatch.tau_mem_of(cfg.i_bias_leak)
        return cls(
            v_leak=mismatch.potential_of("v_leak", cfg.v_leak),
            v_reset=mismatch.potential_of("v_reset", cfg.v_reset),
            v_threshold=mismatch.potential_of("v_threshold", cfg.v_threshold),
            i_offset=mismatch.offset_current_of(cfg.i_mem_offset),
            tau_mem=tau_mem,
            tau_syn_exc=separated(mismatch.tau_syn_of("exc", cfg.i_bias_synin_exc_tau), tau_mem),
            tau_syn_inh=separated(mismatch.tau_syn_of("inh", cfg.i_bias_synin_inh_tau), tau_mem),
            refractory=np.maximum(
                chip.refractory_seconds(cfg.refractory_counter, cfg.refractory_clock_scale[quadrant]), MIN_HOLD_S
            ),
            weight_gain_exc=mismatch.gain_of("exc", cfg.i_bias_synin_exc_gm, dac),
            weight_gain_inh=mismatch.gain_of("inh", cfg.i_bias_synin_inh_gm, dac),
        )

    @property
    def v_rest(self) -> np.ndarray:
        """Equilibrium potential without input: ``v_leak + i_offset``."""
        return self.v_leak + self.i_offset

    def as_dict(self) -> dict[str, np.ndarray]:
        return {k: v.copy() for k, v in attrs.asdict(self, recurse=False).items()}
