"""Benchmarks of the mock chip (drivers.mock): the placed Yin-Yang network and the full chip."""

from __future__ import annotations

import hashlib
import time
import tracemalloc

import numpy as np

try:
    from bench import case
except ModuleNotFoundError:  # imported as tools.bench_cases.mock (the mock's tests use yinyang_config)
    from tools.bench import case

import hil
from drivers.mock import MockChip
from hil import chip


def yinyang_config(placement, seed=0):
    """Moderate random weights and hand-picked CapMem (no calibration) on the Yin-Yang placement."""
    rng = np.random.default_rng(seed)
    weights = {"input->hidden0": rng.normal(0.15, 0.3, (25, 120)), "hidden0->output": rng.normal(0.1, 0.3, (120, 3))}
    n = np.ones(chip.N_NEURONS, int)
    base = hil.ChipConfig(
        v_leak=300 * n,
        v_reset=300 * n,
        v_threshold=560 * n,
        i_bias_leak=110 * n,
        i_bias_synin_exc_tau=100 * n,
        i_bias_synin_inh_tau=100 * n,
        i_bias_synin_exc_gm=500 * n,
        i_bias_synin_inh_gm=500 * n,
        refractory_counter=255 * n,
    )
    return weights, placement.config(weights, 40, base)


def _ideal_lif_seconds(bench, placement, weights, times, mock):
    """Median time of training.lif.spike_times on the same network (None if it is not there)."""
    try:
        import torch

        from training.lif import LIFParameters, spike_times
    except ImportError:
        return None
    p = mock.effective_parameters()
    hidden = placement.neurons["hidden0"]
    params = LIFParameters(tau_mem=float(p["tau_mem"][hidden].mean()), tau_syn=float(p["tau_syn_exc"][hidden].mean()))
    x = torch.tensor(np.repeat(times, 5, axis=1), dtype=torch.float32)
    w1 = torch.tensor(weights["input->hidden0"], dtype=torch.float32)
    w2 = torch.tensor(weights["hidden0->output"], dtype=torch.float32)

    def forward():
        with torch.no_grad():
            h = spike_times(x, w1, params, t_max=50e-6).times[..., 0]
            spike_times(h, w2, params, t_max=50e-6)

    return bench.time(forward, label="ideal_lif")


@case("mock.yinyang")
def yinyang(bench):
    batch = 200 if bench.quick else 1000
    placement = hil.place(hil.Network.feedforward(5, [120], 3, duplication=5))
    weights, cfg = yinyang_config(placement)
    mock = MockChip(seed=7, noise=True)
    mock.configure(cfg)
    times = np.random.default_rng(1).uniform(0, 10e-6, (batch, 5))
    stim = placement.encode(times, 50e-6)
    last = {}

    def run():
        last["m"] = mock.run(stim)

    seconds = bench.time(run)
    cpu = _cpu_seconds(run)
    out = placement.decode(last["m"])
    figures = {
        "batch": batch,
        "trial_s": 50e-6,
        "seconds": seconds,
        "trials_per_s": batch / seconds,
        "cpu_us_per_trial": 1e6 * cpu / batch,
        "spikes_per_trial": last["m"].spikes.size / batch,
        "spikes_sha256": spike_digest(last["m"]),
        "hidden_fired": float(np.isfinite(out["hidden0"]).mean()),
        "output_fired": float(np.isfinite(out["output"]).mean()),
    }
    ideal = _ideal_lif_seconds(bench, placement, weights, times, mock)
    if ideal is not None:
        figures["ideal_lif_seconds"] = ideal
        figures["mock_over_ideal_lif"] = seconds / ideal
    return figures


def spike_digest(measurement) -> str:
    """First 16 hex digits of the SHA-256 of the spike array (a fingerprint of the results)."""
    return hashlib.sha256(measurement.spikes.tobytes()).hexdigest()[:16]


def _cpu_seconds(fn, repeats: int = 3) -> float:
    """Least process CPU time (all threads) of ``repeats`` calls of ``fn()``: less sensitive to other
    jobs than wall time, which counts the time the threads wait for a core."""
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


@case("mock.overhead")
def overhead(bench):
    """What the mock costs a training step at batch 32: configure with new weights, then run."""
    placement = hil.place(hil.Network.feedforward(5, [120], 3, duplication=5))
    mock = MockChip(seed=7, noise=True)
    times = np.random.default_rng(1).uniform(0, 10e-6, (32, 5))
    stim = placement.encode(times, 50e-6)
    configs = [yinyang_config(placement, seed)[1] for seed in range(8)]
    state = {"k": 0}

    def reconfigure():
        mock.configure(configs[state["k"] % len(configs)])
        state["k"] += 1

    def step():
        reconfigure()
        mock.run(stim)

    seconds = bench.time(step)
    configure = bench.time(reconfigure, label="configure")
    return {"batch": 32, "step_ms": 1e3 * seconds, "configure_ms": 1e3 * configure, "cpu_ms": 1e3 * _cpu_seconds(step)}


def fullchip_setup(seed=0, rate_hz=20e3, duration_s=200e-6, batch=100):
    """Every driver of both hemispheres gets its own host source (256 sources, 20 kHz Poisson each in
    hardware time); each source's row pair holds random excitatory and inhibitory weights onto all
    256 neurons of its hemisphere, so all 512 neurons are driven."""
    rng = np.random.default_rng(seed)
    cfg = hil.ChipConfig(i_bias_synin_exc_gm=np.full(512, 400), v_threshold=np.full(512, 560), v_leak=np.full(512, 350))
    for c in range(chip.N_HOST_CHANNELS):
        for h in range(chip.N_HEMISPHERES):
            o = h * chip.PADI_BUSES + c
            i = chip.CROSSBAR_HOST_INPUT_OFFSET + c
            cfg.crossbar_enable[i, o] = True
            cfg.crossbar_mask[i, o] = chip.LABEL_CHANNEL_MASK
            cfg.crossbar_target[i, o] = c << chip.LABEL_CHANNEL_SHIFT
    cfg.row_modes[:, 0::2] = chip.ROW_MODE_EXCITATORY
    cfg.row_modes[:, 1::2] = chip.ROW_MODE_INHIBITORY
    weights = rng.integers(0, 32, (2, 256, 256))
    weights[:, 1::2] = rng.integers(0, 8, (2, 128, 256))
    cfg.synapse_weights = weights
    cfg.synapse_labels[1] = 1  # hemisphere h listens to synapse label h
    drivers = np.arange(chip.SYNAPSE_DRIVERS)
    labels = np.concatenate([chip.make_label(drivers // 4, h, channel=drivers % 4) for h in range(2)])
    duration = int(round(duration_s / chip.TICK_S))
    trials = []
    for _ in range(batch):
        n = rng.poisson(rate_hz * duration_s, labels.size)
        ticks = rng.integers(0, duration, n.sum())
        lab = np.repeat(labels, n)
        order = np.argsort(ticks, kind="stable")
        trials.append(np.column_stack([ticks[order], lab[order]]))
    return cfg, hil.Stimulus.from_trials(trials, duration)


@case("mock.fullchip")
def fullchip(bench):
    batch = 20 if bench.quick else 100
    cfg, stim = fullchip_setup(batch=batch)
    mock = MockChip(seed=7, noise=True)
    mock.configure(cfg)
    last = {}

    def run():
        last["m"] = mock.run(stim)

    seconds = bench.time(run)
    cpu = _cpu_seconds(run)
    tracemalloc.start()
    mock.run(stim)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    m = last["m"]
    return {
        "batch": batch,
        "trial_s": 200e-6,
        "input_rate_hz_hardware": 20e3,
        "sources": 256,
        "events_per_trial": stim.n_events / batch,
        "seconds": seconds,
        "trials_per_s": batch / seconds,
        "cpu_ms_per_trial": 1e3 * cpu / batch,
        "spikes_per_trial": m.spikes.size / batch,
        "spikes_sha256": spike_digest(m),
        "neurons_fired": np.unique(m.spikes["trial"].astype(np.int64) * chip.N_NEURONS + m.spikes["neuron"]).size
        / (batch * chip.N_NEURONS),
        "events_dropped_input": m.health.events_dropped_input,
        "peak_memory_mib": peak / 2**20,
    }
