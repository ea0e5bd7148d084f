"""One run of the mock chip: check the request, compile the configuration into the engine's
inputs (only neurons that matter), simulate, and assemble spikes, counters, ADC data and health.

A neuron is simulated if it is recorded (MADC neuron; all 512 when the CADC is on), receives
routed host events, may fire by itself (resting potential within a noise margin of its
threshold), or is reached through the crossbar by a simulated neuron's spikes. Every other
neuron provably stays silent at rest.
"""

from __future__ import annotations

import numpy as np

from hil import chip
from hil.errors import ConfigError
from hil.measurement import SPIKE_DTYPE, Health
from hil.stimulus import Recording, Stimulus

from . import engine, link, readout


def execute(mock, stimulus: Stimulus, recording: Recording, run_seed: np.random.SeedSequence):
    """-> (spikes SPIKE_DTYPE, spike_counts (T, 512) uint16, MadcTrace | None, CadcSamples | None, Health)."""
    cfg, params, routing, mismatch, limits = mock._config, mock._params, mock._routing, mock._mismatch, mock._limits
    noisy = mock.noise
    _check_request(stimulus, recording, cfg, limits)
    T = stimulus.n_trials
    sim_seed, readout_seed = run_seed.spawn(2)
    readout_rng = np.random.default_rng(readout_seed)

    # host events: every label must be routed; then the link drops what it cannot carry
    events = stimulus.events
    labels, source = np.unique(events["label"], return_inverse=True)
    w_exc, w_inh = routing.host_weights(labels)
    dropped = link.input_drops(events["tick"], stimulus.offsets, limits.link_events_per_s)
    keep = ~dropped
    gain_e = (params.weight_gain_exc * cfg.enable_synin_exc).astype(np.float32)
    gain_i = (params.weight_gain_inh * cfg.enable_synin_inh).astype(np.float32)
    q_exc, q_inh = w_exc * gain_e, w_inh * gain_i  # (L, 512) current jumps

    active, nn_exc, nn_inh = _active_set(
        mock, recording, q_exc[np.unique(source[keep])], q_inh[np.unique(source[keep])], gain_e, gain_i
    )
    neurons = engine.Neurons(
        v_rest=params.v_rest[active],
        v_reset=params.v_reset[active],
        v_threshold=params.v_threshold[active],
        tau_mem=params.tau_mem[active],
        tau_exc=params.tau_syn_exc[active],
        tau_inh=params.tau_syn_inh[active],
        refractory=params.refractory[active],
        host_exc=np.ascontiguousarray(q_exc[:, active]),
        host_inh=np.ascontiguousarray(q_inh[:, active]),
        nn_exc=nn_exc,
        nn_inh=nn_inh,
        sends=cfg.enable_spike_out[active],
    )
    nm = mismatch.noise
    noise = engine.Noise(
        membrane_rms=nm.membrane_rms if noisy else 0.0,
        threshold_rms=nm.threshold_rms if noisy else 0.0,
        jitter_rms_s=nm.jitter_rms_s if noisy else 0.0,
        spike_latency_s=nm.spike_latency_s,
    )

    duration_ticks = int(stimulus.durations.max())
    trial_end = stimulus.durations * chip.TICK_S
    column = -1
    if recording.madc_neuron is not None:
        column = int(np.searchsorted(active, recording.madc_neuron))
        trial_end = np.maximum(trial_end, recording.madc_samples * chip.MADC_SAMPLE_PERIOD_S)
    cadc_ticks = None
    if recording.cadc_period_s is not None:
        cadc_ticks = readout.cadc_ticks(T, recording.cadc_period_s, duration_ticks, readout_rng)
    probe = engine.Probe(column, recording.madc_source, None if cadc_ticks is None else cadc_ticks * chip.TICK_S)

    trial = stimulus.trial_index()[keep]
    arrival = events["tick"][keep] * chip.TICK_S + nm.input_latency_s
    sim = engine.simulate(
        neurons, arrival, trial.astype(np.int64), source[keep].astype(np.int64), trial_end, noise, sim_seed, probe
    )

    # spikes: global neuron, on the tick grid, inside their trial
    s_trial, s_time, s_active, s_theta = sim.spike_trial, sim.spike_time, sim.spike_neuron, sim.spike_theta
    s_tick = np.rint(s_time / chip.TICK_S).astype(np.int64)
    inside = s_tick < stimulus.durations[s_trial].astype(np.int64)
    s_trial, s_tick, s_active, s_time, s_theta = (x[inside] for x in (s_trial, s_tick, s_active, s_time, s_theta))
    s_neuron = active[s_active]
    cell, counts = np.unique(s_trial * chip.N_NEURONS + s_neuron, return_counts=True)
    counters = np.zeros(T * chip.N_NEURONS, np.uint16)  # 8 bit saturating, plus the overflow bit
    overflow = chip.SPIKE_COUNTER_MAX | (1 << chip.SPIKE_COUNTER_BITS)
    counters[cell] = np.where(counts > chip.SPIKE_COUNTER_MAX, overflow, counts)
    counters = counters.reshape(T, chip.N_NEURONS)

    sent = cfg.enable_spike_out[s_neuron] & recording.spikes
    order = np.argsort((s_trial << 41) | (s_tick << 9) | s_neuron, kind="stable")  # trial < 2**17, tick < 2**32
    order = order[sent[order]]
    keep_out = link.output_keep(s_trial[order], stimulus.durations, limits.link_events_per_s, limits.max_spikes)
    order = order[keep_out]
    spikes = np.empty(order.size, SPIKE_DTYPE)
    spikes["trial"], spikes["tick"], spikes["neuron"] = s_trial[order], s_tick[order], s_neuron[order]

    madc = None
    if column >= 0:
        grid = sim.madc
        mine = s_active == column
        madc = readout.madc_trace(
            grid,
            (s_trial[mine], s_time[mine], s_theta[mine]),
            float(neurons.v_reset[column]),
            float(neurons.refractory[column]),
            recording.madc_source,
            recording.madc_neuron,
            recording.madc_samples,
            mismatch.readout,
            readout_rng,
            noisy,
        )
    cadc = None
    if cadc_ticks is not None:
        cadc = readout.cadc_samples(
            sim.cadc, active, params.v_rest, cadc_ticks, mismatch.readout, nm.membrane_rms, readout_rng, noisy
        )
    health = Health(events_dropped_input=int(dropped.sum()), spikes_dropped_output=int(np.count_nonzero(~keep_out)))
    return spikes, counters, madc, cadc, health


def _check_request(stimulus: Stimulus, recording: Recording, cfg, limits) -> None:
    limits.check(stimulus, recording, "mock")
    n = recording.madc_neuron
    if n is not None and not cfg.enable_readout[n]:
        raise ConfigError(
            f"Recording.madc_neuron = {n}, but ChipConfig.enable_readout[{n}] is False; enable it to connect the neuron to the MADC"
        )


def _active_set(mock, recording: Recording, q_exc: np.ndarray, q_inh: np.ndarray, gain_e, gain_i):
    """Simulated neurons (sorted global indices) and their neuron->neuron current jumps (N, N) exc, inh."""
    cfg, params, routing, nm = mock._config, mock._params, mock._routing, mock._mismatch.noise
    margin = 6 * (nm.membrane_rms + nm.threshold_rms) if mock.noise else 0.0
    use = np.any(q_exc != 0, axis=0) | np.any(q_inh != 0, axis=0)
    use |= params.v_rest + margin >= params.v_threshold
    if recording.cadc_period_s is not None:
        use[:] = True
    if recording.madc_neuron is not None:
        use[recording.madc_neuron] = True
    rows_e = np.zeros((chip.N_NEURONS, chip.N_NEURONS), np.float32)
    rows_i = np.zeros_like(rows_e)
    done = np.zeros(chip.N_NEURONS, bool)
    while True:
        frontier = np.flatnonzero(use & ~done & cfg.enable_spike_out)
        if frontier.size == 0:
            break
        e, i = routing.neuron_weights(cfg.neuron_label, frontier)
        rows_e[frontier], rows_i[frontier] = e * gain_e, i * gain_i
        use |= np.any(rows_e[frontier] != 0, axis=0) | np.any(rows_i[frontier] != 0, axis=0)
        done[frontier] = True
    active = np.flatnonzero(use)
    nn_exc = np.ascontiguousarray(rows_e[np.ix_(active, active)])
    nn_inh = np.ascontiguousarray(rows_i[np.ix_(active, active)])
    return active, nn_exc, nn_inh
