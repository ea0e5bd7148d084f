"""``MockChip``: a whole BrainScaleS-2 (HICANN-X) chip in software behind ``hil.Device``.

The chip instance (mismatch, chip id) comes from ``seed``; the noise of run ``k`` since the
last power-on comes from ``SeedSequence(noise_seed, spawn_key=(k,))``. ``reset()`` restores
the power-on state: the default ``ChipConfig``, run counter 0 and a new boot id, so a reset
chip repeats its first runs exactly. ``cancel()`` (from any thread) stops a running ``run``.
"""

from __future__ import annotations

import concurrent.futures
import os
import threading
import time

import attrs
import numpy as np

import hil
from hil.config import ChipConfig
from hil.device import DeviceBase, DeviceInfo, DeviceLimits
from hil.errors import ConfigError, DeviceError
from hil.logging import get_logger
from hil.measurement import Measurement, Provenance
from hil.stimulus import Recording, Stimulus

from . import traffic
from .engine import TRIAL_CHUNK
from .experiment import execute
from .options import DEFAULT_OVERHEAD_S, PARSERS
from .physics import Mismatch
from .state import ChipState


class MockChip(DeviceBase):
    """An emulated BSS-2 chip. ``MockChip(seed=7, noise=False)``; see ``drivers.mock.options``."""

    driver = "mock"

    def __init__(
        self,
        seed: int = 0,
        noise: bool = True,
        noise_seed: int | None = None,
        pace: str = "off",
        overhead_s: float = DEFAULT_OVERHEAD_S,
    ):
        self.seed = PARSERS["seed"]("seed", seed)
        self.noise = PARSERS["noise"]("noise", noise)
        self.pace = PARSERS["pace"]("pace", pace)
        self.overhead_s = PARSERS["overhead_s"]("overhead_s", overhead_s)
        derived = int(np.random.SeedSequence(self.seed, spawn_key=(2,)).generate_state(1)[0])
        self.noise_seed = derived if noise_seed is None else PARSERS["noise_seed"]("noise_seed", noise_seed)
        self._mismatch = Mismatch.draw(self.seed)
        words = np.random.SeedSequence(self.seed, spawn_key=(3,)).generate_state(2)
        self._chip_id = f"mock-{int(words[0]):08x}{int(words[1]):08x}"
        self._limits = DeviceLimits()
        self._boot_id = 0
        self._closed = False
        self._log = get_logger("drivers.mock")
        self._running = threading.Lock()  # one run at a time
        self._flag_lock = threading.Lock()
        self._cancel_flag: np.ndarray | None = None  # of the run in progress
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._pool_size = 0
        self._cpus = os.cpu_count() or 1  # read once: glibc reads /sys on every call
        self._power_on()

    # --- Device protocol -----------------------------------------------------------------------
    def info(self) -> DeviceInfo:
        self._check_open()
        return DeviceInfo(chip_id=self._chip_id, driver=self.driver, boot_id=self._boot_id, limits=self._limits)

    def configure(self, config: ChipConfig) -> None:
        """Keep ``config`` as the chip state; recompute only what changed. Only the fields that differ
        from the current state are validated and copied (the others equal fields validated before)."""
        self._check_open()
        if not isinstance(config, ChipConfig):
            raise ConfigError(f"configure: expected a ChipConfig, got {type(config).__name__}")
        changed = self._state.config.changed_fields(config)
        config.validate(changed)
        if changed:
            self._state = self._state.with_config(self._state.config.updated(config, changed), changed)
            self._config_hash = self._state.config.content_hash()
        self._log.info("configure", chip_id=self._chip_id, fields_changed=len(changed))

    def run(self, stimulus: Stimulus, recording: Recording = Recording()) -> Measurement:
        """Play ``stimulus``; the health counts the bytes the RUN exchange takes on the wire protocol."""
        self._check_open()
        start = time.perf_counter()
        if not isinstance(stimulus, Stimulus) or not isinstance(recording, Recording):
            raise ConfigError("run: expected (Stimulus, Recording)")
        with self._running:
            flag = np.zeros(1, np.uint8)
            with self._flag_lock:
                self._cancel_flag = flag
            try:
                run_seed = np.random.SeedSequence(self.noise_seed, spawn_key=(self._run_index,))
                pool, workers = self._workers(stimulus.n_trials)
                out = execute(self._state, stimulus, recording, run_seed, pool, workers, flag)
            finally:
                with self._flag_lock:
                    self._cancel_flag = None
            self._run_index += 1
        wall = time.perf_counter() - start
        if self.pace == "realtime":
            remaining = stimulus.total_duration_s() + self.overhead_s - wall
            if remaining > 0:
                time.sleep(remaining)
            wall = time.perf_counter() - start
        provenance = Provenance(
            driver=self.driver,
            chip_id=self._chip_id,
            config_hash=self._config_hash,
            software_version=hil.__version__,
            wall_time_s=wall,
            noise_seed=self.noise_seed,
        )
        measurement = Measurement(
            spikes=out.spikes,
            n_trials=stimulus.n_trials,
            health=out.health,
            provenance=provenance,
            madc=out.madc,
            cadc=out.cadc,
            spike_counts=out.counters,
        )
        sent, received = traffic.run_bytes(stimulus, recording, measurement)
        health = attrs.evolve(out.health, bytes_sent=sent, bytes_received=received)
        self._log.info(
            "run",
            chip_id=self._chip_id,
            trials=stimulus.n_trials,
            events=stimulus.n_events,
            spikes=int(out.spikes.size),
            dropped_in=health.events_dropped_input,
            dropped_out=health.spikes_dropped_output,
            wall_s=round(wall, 4),
        )
        return attrs.evolve(measurement, health=health)

    def cancel(self) -> None:
        """Stop the run in progress (from any thread): it raises ``DeviceError("run cancelled")``
        within about a millisecond of simulated work; without a run in progress nothing happens."""
        with self._flag_lock:
            if self._cancel_flag is not None:
                self._cancel_flag[0] = 1

    def reset(self) -> None:
        """Power-on state: default configuration, run counter 0, new boot id."""
        self._check_open()
        self._boot_id += 1
        self._power_on()
        self._log.info("reset", chip_id=self._chip_id, boot_id=self._boot_id)

    def close(self) -> None:
        self._closed = True
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None

    # --- hidden truth (tests only) --------------------------------------------------------------
    def effective_parameters(self) -> dict[str, np.ndarray]:
        """The hidden truth of the current configuration. For tests; library code never calls this.

        Per neuron (512,): ``tau_mem``, ``tau_syn_exc``, ``tau_syn_inh``, ``refractory`` (s),
        ``v_leak``, ``v_reset``, ``v_threshold``, ``i_offset`` (LSB), ``weight_gain_exc``,
        ``weight_gain_inh`` (LSB of synaptic current per weight LSB; ``enable_synin_*`` is applied
        by routing), ``cadc_offset`` (LSB). Per synapse: ``synapse_factor`` (2, 256, 256), the
        weight mismatch. Per chip (0-d): ``input_latency_s`` (host event -> synapse),
        ``spike_latency_s`` (spike -> synapse of another neuron), ``madc_offset`` (codes) and
        ``madc_gain`` (code = offset + gain * 4 * LSB)."""
        m = self._mismatch
        truth = self._state.params.as_dict()
        truth["cadc_offset"] = m.readout.cadc_offset.copy()
        truth["synapse_factor"] = m.synapse.copy()
        for name, value in (
            ("input_latency_s", m.noise.input_latency_s),
            ("spike_latency_s", m.noise.spike_latency_s),
            ("madc_offset", m.readout.madc_offset),
            ("madc_gain", m.readout.madc_gain),
        ):
            truth[name] = np.array(value)
        return truth

    # --- internals ---------------------------------------------------------------------------------
    @property
    def config(self) -> ChipConfig:
        """A copy of the current configuration."""
        return self._state.config.copy()

    def _power_on(self) -> None:
        self._run_index = 0
        self._state = ChipState.power_on(self._mismatch, self._limits, self.noise)
        self._config_hash = self._state.config.content_hash()

    def _workers(self, n_trials: int):
        """(pool, threads) for a run of ``n_trials``: no pool when one thread suffices."""
        threads = min(self._cpus, -(-n_trials // TRIAL_CHUNK))
        if threads <= 1:
            return None, 1
        if self._pool is None or self._pool_size != threads:
            if self._pool is not None:
                self._pool.shutdown(wait=False)
            self._pool = concurrent.futures.ThreadPoolExecutor(threads, thread_name_prefix="mock-chip")
            self._pool_size = threads
        return self._pool, threads

    def _check_open(self) -> None:
        if self._closed:
            raise DeviceError(f"mock chip {self._chip_id} is closed; open a new one with hil.open('mock://...')")
