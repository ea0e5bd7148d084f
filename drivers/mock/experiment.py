"""One run of the mock chip: check the request, compile it into the engine's inputs, simulate,
and assemble spikes, counters, ADC data and health.

``execute`` reads only the ``ChipState`` it is given (configuration, effective parameters,
routing, mismatch, limits, noise switch) plus the request and the run's seed.
"""

from __future__ import annotations

import attrs
import numpy as np

from hil import chip
from hil.errors import ConfigError
from hil.measurement import CadcSamples, Health, MadcTrace
from hil.stimulus import Recording, Stimulus

from . import engine, link, readout
from .state import ChipState


@attrs.frozen(eq=False)
class RunOutput:
    """What a run produced: spikes (``SPIKE_DTYPE``), counters (T, 512) uint16 or None, ADC data, health."""

    spikes: np.ndarray
    counters: np.ndarray | None
    madc: MadcTrace | None
    cadc: CadcSamples | None
    health: Health


def execute(
    state: ChipState,
    stimulus: Stimulus,
    recording: Recording,
    run_seed: np.random.SeedSequence,
    pool=None,
    workers: int = 1,
    cancel: np.ndarray | None = None,
) -> RunOutput:
    """Simulate ``stimulus`` on ``state``; ``pool``/``workers``/``cancel`` as in ``engine.simulate``."""
    check_request(stimulus, recording, state)
    sim_seed, readout_seed = run_seed.spawn(2)
    events, durations = stimulus.events, stimulus.durations
    labels, source = _distinct(events["label"])
    wiring = state.wiring(labels, recording.madc_neuron, recording.cadc_period_s is not None)
    dropped = link.input_drops(events["tick"], stimulus.offsets, state.limits.link_events_per_s)
    sim_end = durations * chip.TICK_S
    madc_column = -1
    if recording.madc_neuron is not None:
        madc_column = int(np.searchsorted(wiring.columns, recording.madc_neuron))
        sim_end = np.maximum(sim_end, recording.madc_samples * chip.MADC_SAMPLE_PERIOD_S)
    cadc_ticks = None
    if recording.cadc_period_s is not None:
        rng = np.random.default_rng(readout_seed)
        cadc_ticks = readout.cadc_ticks(stimulus.n_trials, recording.cadc_period_s, durations, rng)
    probe = engine.Probe(
        readout=state.mismatch.readout,
        adc_noise=state.noise,
        madc_column=madc_column,
        madc_source=recording.madc_source,
        madc_samples=recording.madc_samples,
        cadc_times=None if cadc_ticks is None else cadc_ticks * chip.TICK_S,
        counters=recording.spike_counts,
    )
    noise = _noise(state)
    result = engine.simulate(
        wiring.neurons(state, recording.spikes, noise),
        (events["tick"].astype(np.int64), np.where(dropped, -1, source), stimulus.offsets),
        (sim_end, durations),
        noise,
        sim_seed,
        probe,
        (link.output_budget(durations, state.limits.link_events_per_s), state.limits.max_spikes),
        pool,
        workers,
        cancel,
    )
    madc = None
    if result.madc is not None:
        madc = MadcTrace(neuron=recording.madc_neuron, source=recording.madc_source, samples=result.madc)
    cadc = None if result.cadc is None else CadcSamples(samples=result.cadc, ticks=cadc_ticks)
    health = Health(events_dropped_input=int(np.count_nonzero(dropped)), spikes_dropped_output=result.dropped)
    return RunOutput(result.spikes, result.counters, madc, cadc, health)


def _noise(state: ChipState) -> engine.Noise:
    """The run's noise: the chip's amplitudes when noise is on, zero otherwise; latencies always."""
    nm, on = state.mismatch.noise, state.noise
    return engine.Noise(
        membrane_rms=nm.membrane_rms if on else 0.0,
        threshold_rms=nm.threshold_rms if on else 0.0,
        jitter_rms_s=nm.jitter_rms_s if on else 0.0,
        input_latency_s=nm.input_latency_s,
        spike_latency_s=nm.spike_latency_s,
        quiet_margin=state.noise_margin,
    )


def check_request(stimulus: Stimulus, recording: Recording, state: ChipState) -> None:
    """``ConfigError`` for a request beyond the device's limits (``DeviceLimits.check``) or its configuration."""
    state.limits.check(stimulus, recording, "mock")
    n = recording.madc_neuron
    if n is not None and not state.config.enable_readout[n]:
        raise ConfigError(
            f"Recording.madc_neuron = {n}, but ChipConfig.enable_readout[{n}] is False; "
            "enable it to connect the neuron to the MADC"
        )


def _distinct(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct labels (ascending, uint16) and each event's index into them."""
    present = np.zeros(chip.EVENT_LABEL_MAX + 1, bool)
    present[labels] = True
    distinct = np.flatnonzero(present)
    lookup = np.empty(chip.EVENT_LABEL_MAX + 1, np.int64)
    lookup[distinct] = np.arange(distinct.size)
    return distinct.astype(np.uint16), lookup[labels]
