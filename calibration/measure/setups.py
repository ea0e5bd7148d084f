"""The *configure* half of every measurement: the ``ChipConfig`` and the stimulus it needs,
built on the configuration under calibration.

- :func:`rest_config`: no synaptic input, threshold out of reach (resting potential).
- :func:`spiking_config`: no synaptic input, a constant drive current (regular firing).
- :func:`psp_config`: a few synapse rows fed by the host (PSPs), threshold out of reach.
- :func:`idle_stimulus`, :func:`burst_stimulus`: trials without input, or with bursts.
"""

from __future__ import annotations

import attrs
import numpy as np

from hil import chip
from hil.config import ChipConfig
from hil.stimulus import EVENT_DTYPE, Stimulus

N = chip.N_NEURONS
QUADRANT = chip.quadrant_of(np.arange(N))


def rest_config(base: ChipConfig, *, i_mem_offset=0, v_threshold=chip.CAPMEM_MAX) -> ChipConfig:
    """``base`` with no synaptic input, the threshold out of reach and ``i_mem_offset``."""
    cfg = base.copy().synapses_off()
    cfg.v_threshold = v_threshold
    cfg.i_mem_offset = i_mem_offset
    cfg.enable_spike_out = True
    return cfg


def spiking_config(base: ChipConfig, i_mem_offset) -> ChipConfig:
    """``base`` with no synaptic input and a constant drive ``i_mem_offset`` (per neuron)."""
    cfg = base.copy().synapses_off()
    cfg.i_mem_offset = i_mem_offset
    cfg.enable_spike_out = True
    return cfg


def spiking_measurement_config(base: ChipConfig, drive_codes, refractory_s: float) -> ChipConfig:
    """:func:`spiking_config` with a short refractory time ``refractory_s`` (clock scale 2,
    the same counter for all neurons): many charging cycles per trial."""
    cfg = spiking_config(base, drive_codes)
    scale = 2
    cfg.refractory_clock_scale = scale
    cfg.refractory_counter = int(
        np.clip(np.rint(refractory_s * chip.REFRACTORY_CLOCK_BASE_HZ / 2**scale), 1, chip.REFRACTORY_COUNTER_MAX)
    )
    return cfg


@attrs.frozen
class SynapseSetup:
    """Synapse rows used to inject current: ``n_drivers`` drivers (0..n_drivers-1), each with
    an excitatory row (synapse label 0) and an inhibitory row (label 1) of weight ``weight``
    in every column of both hemispheres."""

    n_drivers: int = 8
    weight: int = 32
    spacing_ticks: int = 4  # between the events of one burst (link capacity)

    def labels(self, sign: str) -> np.ndarray:
        d = np.arange(self.n_drivers)
        return chip.make_label(d // chip.PADI_BUSES, 0 if sign == "exc" else 1, channel=d % chip.PADI_BUSES)

    @property
    def weight_sum(self) -> int:
        """Weight LSB one burst delivers to every neuron."""
        return self.n_drivers * self.weight


def psp_config(base: ChipConfig, setup: SynapseSetup) -> ChipConfig:
    """``base`` with ``setup``'s synapse rows and host routing, the threshold out of reach
    and no offset current."""
    cfg = rest_config(base)
    for d in range(setup.n_drivers):
        for h in range(chip.N_HEMISPHERES):
            cfg.row_modes[h, 2 * d] = chip.ROW_MODE_EXCITATORY
            cfg.row_modes[h, 2 * d + 1] = chip.ROW_MODE_INHIBITORY
            cfg.synapse_weights[h, 2 * d, :] = setup.weight
            cfg.synapse_weights[h, 2 * d + 1, :] = setup.weight
            cfg.synapse_labels[h, 2 * d, :] = 0
            cfg.synapse_labels[h, 2 * d + 1, :] = 1
    for c in range(chip.PADI_BUSES):
        for h in range(chip.N_HEMISPHERES):
            i, o = chip.CROSSBAR_HOST_INPUT_OFFSET + c, h * chip.PADI_BUSES + c
            cfg.crossbar_enable[i, o] = True
            cfg.crossbar_mask[i, o] = chip.LABEL_CHANNEL_MASK
            cfg.crossbar_target[i, o] = c << chip.LABEL_CHANNEL_SHIFT
    return cfg


def refractory_seconds(cfg: ChipConfig) -> np.ndarray:
    """Nominal (uncalibrated) refractory time per neuron of a configuration."""
    return chip.refractory_seconds(cfg.refractory_counter, cfg.refractory_clock_scale[QUADRANT])


def idle_stimulus(n_trials: int, duration_s: float) -> Stimulus:
    """``n_trials`` trials of ``duration_s`` seconds without input events."""
    ticks = int(round(duration_s / chip.TICK_S))
    return Stimulus(np.empty(0, EVENT_DTYPE), np.zeros(n_trials + 1, np.int64), np.full(n_trials, ticks, np.uint64))


def burst_stimulus(
    labels_per_trial, n_bursts: int, first_s: float, interval_s: float, spacing_ticks: int, duration_s: float
) -> tuple[Stimulus, np.ndarray]:
    """Trials of ``n_bursts`` bursts; burst ``k`` of trial ``t`` sends ``labels_per_trial[t]``
    ``spacing_ticks`` apart from ``first_s + k * interval_s``. Returns the stimulus and the
    (n_trials, n_bursts) mean event time of each burst in seconds."""
    trials, centres = [], []
    start = np.rint((first_s + interval_s * np.arange(n_bursts)) / chip.TICK_S).astype(np.int64)
    for labels in labels_per_trial:
        labels = np.asarray(labels, np.uint16)
        offs = spacing_ticks * np.arange(labels.size)
        ev = np.empty(n_bursts * labels.size, EVENT_DTYPE)
        ev["tick"] = (start[:, None] + offs[None, :]).ravel()
        ev["label"] = np.tile(labels, n_bursts)
        trials.append(ev)
        centres.append((start + offs.mean()) * chip.TICK_S)
    ticks = int(round(duration_s / chip.TICK_S))
    return Stimulus.from_trials(trials, ticks), np.array(centres)
