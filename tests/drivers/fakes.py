"""A small deterministic ``hil.Device`` for driver tests (no mock chip needed).

Its output depends on the configuration, the stimulus and a run counter, so a run applied
twice, a lost configuration or a skipped configure all show in the result.
"""

from __future__ import annotations

import numpy as np

import hil


class FakeDevice(hil.DeviceBase):
    """Each input event makes neuron ``label % 512`` spike ``v_leak[neuron] % 97 + runs`` ticks later."""

    def __init__(self, chip_id: str = "fake-0", limits: hil.DeviceLimits | None = None):
        self.chip_id = chip_id
        self.limits = limits or hil.DeviceLimits()
        self.boot_id = 1
        self.config = hil.ChipConfig()
        self.runs = 0
        self.configures = 0
        self.reset_during_run = None  # run index at which the device resets itself

    def info(self) -> hil.DeviceInfo:
        return hil.DeviceInfo(self.chip_id, "fake", hil.PROTOCOL_VERSION, self.boot_id, self.limits)

    def configure(self, config: hil.ChipConfig) -> None:
        self.config = config.copy().validate()
        self.configures += 1

    def run(self, stimulus: hil.Stimulus, recording: hil.Recording = hil.Recording()) -> hil.Measurement:
        self.runs += 1
        if self.reset_during_run == self.runs:
            self.reset()
        ev = stimulus.events
        neuron = (ev["label"] % hil.chip.N_NEURONS).astype(np.uint16)
        spikes = np.empty(ev.size, hil.SPIKE_DTYPE)
        spikes["trial"] = stimulus.trial_index()
        spikes["tick"] = ev["tick"] + (self.config.v_leak[neuron] % 97).astype(np.uint64) + np.uint64(self.runs)
        spikes["neuron"] = neuron
        spikes = spikes[np.lexsort((spikes["tick"], spikes["trial"]))]
        counts = np.zeros((stimulus.n_trials, hil.chip.N_NEURONS), np.uint16)
        np.add.at(counts, (spikes["trial"], spikes["neuron"]), 1)
        madc = None
        if recording.madc_neuron is not None:
            samples = (np.arange(stimulus.n_trials * recording.madc_samples) % 1024).astype(np.uint16)
            madc = hil.MadcTrace(recording.madc_neuron, recording.madc_source, samples.reshape(stimulus.n_trials, -1))
        prov = hil.Provenance("fake", self.chip_id, self.config.content_hash(), "test", 0.0, noise_seed=self.runs)
        return hil.Measurement(spikes, stimulus.n_trials, hil.Health(events_dropped_input=1), prov, madc, None, counts)

    def reset(self) -> None:
        self.boot_id += 1
        self.config = hil.ChipConfig()

    def close(self) -> None:
        pass


def stimulus(n_trials: int = 20, per_trial: int = 30, seed: int = 0) -> hil.Stimulus:
    rng = np.random.default_rng(seed)
    trials = []
    for _ in range(n_trials):
        ticks = np.sort(rng.integers(0, 5000, per_trial))
        labels = rng.integers(0, 64, per_trial)
        trials.append(np.stack([ticks, labels], axis=1))
    return hil.Stimulus.from_trials(trials, 6000)


def config(seed: int = 0) -> hil.ChipConfig:
    rng = np.random.default_rng(seed)
    cfg = hil.ChipConfig()
    cfg.v_leak = rng.integers(0, 1000, hil.chip.N_NEURONS)
    cfg.synapse_weights[0, :4] = rng.integers(0, 64, (4, 256))
    return cfg


def same_measurement(a: hil.Measurement, b: hil.Measurement) -> bool:
    """Spikes, counts and ADC data identical (health and provenance may differ)."""

    def eq(x, y):
        return (x is None and y is None) or (x is not None and y is not None and np.array_equal(x, y))

    return (
        a.n_trials == b.n_trials
        and np.array_equal(a.spikes, b.spikes)
        and eq(a.spike_counts, b.spike_counts)
        and eq(a.madc.samples if a.madc else None, b.madc.samples if b.madc else None)
        and eq(a.cadc.samples if a.cadc else None, b.cadc.samples if b.cadc else None)
    )
