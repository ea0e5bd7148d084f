"""Bounded work per request: every run the mock's advertised limits allow stays within the device
server's memory budget; a run beyond them is refused before anything is simulated; a long run
can be cancelled from another thread."""

from __future__ import annotations

import re
import threading

import numpy as np
import pytest

import hil
from drivers.mock import MockChip
from hil import chip

from .conftest import quiet_config, route_host

BUDGET_MIB = 512  # memory a device server may use (docs/protocol.md)


def _status(key: str) -> int:
    with open("/proc/self/status") as fh:
        return int(re.search(key + r":\s+(\d+)", fh.read()).group(1))


def peak_growth_mib(fn) -> float:
    """Peak resident memory ``fn()`` adds to this process (kernel high-water mark reset before), MiB."""
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")  # resets VmHWM to the current resident size
    before = _status("VmRSS")
    fn()
    return (_status("VmHWM") - before) / 1024


def test_the_52_byte_request_costs_little():
    """HELLO, CONFIGURE enable_readout, RUN 1 trial of 4,294,967,295 ticks, MADC neuron 0, 1 sample."""
    mock = MockChip(seed=1)
    cfg = hil.ChipConfig()
    cfg.enable_readout[0] = True
    mock.configure(cfg)
    stim = hil.Stimulus.from_trials([np.zeros((0, 2))], chip.TIMER_MAX_TICKS)
    out = {}
    growth = peak_growth_mib(lambda: out.update(m=mock.run(stim, hil.Recording(madc_neuron=0, madc_samples=1))))
    assert growth < 64, growth
    assert out["m"].madc.samples.shape == (1, 1)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["madc", "cadc", "events"])
def test_largest_allowed_requests_stay_within_the_budget(kind):
    mock = MockChip(seed=2)
    limits = mock.info().limits
    cfg = quiet_config()
    cfg.enable_readout[:] = True
    route_host(cfg, 0, 0, 0)
    cfg.row_modes[0, 0] = chip.ROW_MODE_EXCITATORY
    cfg.synapse_labels[0, 0, 3] = 1
    cfg.synapse_weights[0, 0, 3] = 1
    mock.configure(cfg)
    if kind == "madc":
        trials = limits.max_madc_samples // chip.MADC_MAX_SAMPLES
        stim = hil.Stimulus.from_trials([np.zeros((0, 2))] * trials, 1000)
        rec = hil.Recording(madc_neuron=3, madc_samples=chip.MADC_MAX_SAMPLES)
    elif kind == "cadc":
        period = int(np.ceil(chip.CADC_MIN_PERIOD_S / chip.TICK_S))
        stim = hil.Stimulus.from_trials([np.zeros((0, 2))], period * limits.max_cadc_samples)
        rec = hil.Recording(cadc_period_s=chip.CADC_MIN_PERIOD_S)
    else:
        n = limits.max_events
        events = np.column_stack([4 * np.arange(n), np.full(n, int(chip.make_label(0, 1)))])
        stim = hil.Stimulus.from_trials([events], 4 * n + 1)
        rec = hil.Recording(spike_counts=True)
    out = {}
    growth = peak_growth_mib(lambda: out.update(m=mock.run(stim, rec)))
    assert growth < BUDGET_MIB / 2, growth  # half of it for the request, the reply and the server
    m = out["m"]
    if kind == "madc":
        assert m.madc.samples.size == limits.max_madc_samples - limits.max_madc_samples % chip.MADC_MAX_SAMPLES
    elif kind == "cadc":
        assert m.cadc.samples.shape == (1, limits.max_cadc_samples, chip.N_NEURONS)
    else:
        assert m.health.events_dropped_input == 0 and m.spike_counts[0, 3] == 0


@pytest.mark.parametrize(
    "stimulus, recording, field",
    [
        (lambda L: hil.Stimulus.from_trials([np.zeros((0, 2))] * (L.max_trials + 1), 10), hil.Recording(), "max_trials"),
        (
            lambda L: hil.Stimulus.from_trials([np.zeros((0, 2))] * 2, 10),
            hil.Recording(madc_neuron=0, madc_samples=chip.MADC_MAX_SAMPLES),
            None,  # allowed
        ),
        (
            lambda L: hil.Stimulus.from_trials([np.zeros((0, 2))] * (L.max_madc_samples // 1000 + 1), 10),
            hil.Recording(madc_neuron=0, madc_samples=1000),
            "max_madc_samples",
        ),
        (
            lambda L: hil.Stimulus.from_trials([np.zeros((0, 2))] * 2, 213 * L.max_cadc_samples),
            hil.Recording(cadc_period_s=chip.CADC_MIN_PERIOD_S),
            "max_cadc_samples",
        ),
    ],
)
def test_requests_beyond_the_limits_are_refused_at_once(stimulus, recording, field):
    mock = MockChip(seed=3)
    cfg = quiet_config()
    cfg.enable_readout[0] = True
    mock.configure(cfg)
    stim = stimulus(mock.info().limits)
    if field is None:
        mock.run(stim, recording)
        return
    with pytest.raises(hil.ConfigError, match=field):
        mock.run(stim, recording)


def test_max_events_limit_is_refused_at_once():
    mock = MockChip(seed=3)
    n = mock.info().limits.max_events + 1
    events = np.column_stack([np.arange(n), np.zeros(n, int)])
    with pytest.raises(hil.ConfigError, match=f"{n}.*max_events"):
        mock.run(hil.Stimulus.from_trials([events], n + 1))


def test_cancel_ends_a_long_run_and_the_chip_stays_usable():
    mock = MockChip(seed=4)
    cfg = quiet_config(i_mem_offset=600, refractory_counter=10)  # tonic neurons: the run cannot end early
    cfg.enable_spike_out[:] = True
    mock.configure(cfg)
    forever = hil.Stimulus.from_trials([np.zeros((0, 2))], chip.TIMER_MAX_TICKS)
    caught = []

    def long_run():
        try:
            mock.run(forever)
        except hil.HilError as exc:
            caught.append(exc)

    worker = threading.Thread(target=long_run)
    worker.start()
    for _ in range(6000):  # cancel() acts only on a run in progress: repeat until the run has seen it
        mock.cancel()
        worker.join(timeout=0.01)
        if not worker.is_alive():
            break
    assert not worker.is_alive()
    assert len(caught) == 1 and isinstance(caught[0], hil.DeviceError) and "cancelled" in str(caught[0])
    mock.cancel()  # without a run in progress: nothing happens
    short = hil.Stimulus.from_trials([np.zeros((0, 2))], 2000)
    assert mock.run(short).spikes.size > 0
