"""``MockChip``: a whole BrainScaleS-2 (HICANN-X) chip in software behind ``hil.Device``.

The chip instance (mismatch, chip id) comes from ``seed``; the noise of run ``k`` since the
last power-on comes from ``SeedSequence(noise_seed, spawn_key=(k,))``. ``reset()`` restores
the power-on state: the default ``ChipConfig``, run counter 0 and a new boot id, so a reset
chip repeats its first runs exactly.
"""

from __future__ import annotations

import time

import numpy as np

import hil
from hil.config import BlockKey, ChipConfig
from hil.device import DeviceBase, DeviceInfo, DeviceLimits
from hil.errors import ConfigError, DeviceError
from hil.logging import get_logger
from hil.measurement import Measurement, Provenance
from hil.stimulus import Recording, Stimulus

from .experiment import execute
from .options import DEFAULT_OVERHEAD_S, PARSERS
from .physics import Mismatch, NeuronParameters
from .routing import Routing

_ROUTING_BLOCKS = {"crossbar", "row_modes", "synapse_row"}


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
        self._power_on()

    # --- Device protocol -----------------------------------------------------------------------
    def info(self) -> DeviceInfo:
        self._check_open()
        return DeviceInfo(chip_id=self._chip_id, driver=self.driver, boot_id=self._boot_id, limits=self._limits)

    def configure(self, config: ChipConfig) -> None:
        """Keep ``config`` (validated, copied) as the chip state; recompute only what changed."""
        self._check_open()
        if not isinstance(config, ChipConfig):
            raise ConfigError(f"configure: expected a ChipConfig, got {type(config).__name__}")
        config.validate()
        changed = self._config.diff(config)
        self._apply(config.copy(), changed)
        self._log.info("configure", chip_id=self._chip_id, blocks_changed=len(changed))

    def run(self, stimulus: Stimulus, recording: Recording = Recording()) -> Measurement:
        self._check_open()
        start = time.perf_counter()
        if not isinstance(stimulus, Stimulus) or not isinstance(recording, Recording):
            raise ConfigError("run: expected (Stimulus, Recording)")
        run_seed = np.random.SeedSequence(self.noise_seed, spawn_key=(self._run_index,))
        spikes, counts, madc, cadc, health = execute(self, stimulus, recording, run_seed)
        wall = time.perf_counter() - start
        if self.pace == "realtime":
            remaining = stimulus.total_duration_s() + self.overhead_s - wall
            if remaining > 0:
                time.sleep(remaining)
            wall = time.perf_counter() - start
        self._run_index += 1
        provenance = Provenance(
            driver=self.driver,
            chip_id=self._chip_id,
            config_hash=self._config_hash,
            software_version=hil.__version__,
            wall_time_s=wall,
            noise_seed=self.noise_seed,
        )
        self._log.info(
            "run",
            chip_id=self._chip_id,
            trials=stimulus.n_trials,
            events=stimulus.n_events,
            spikes=int(spikes.size),
            dropped_in=health.events_dropped_input,
            dropped_out=health.spikes_dropped_output,
            wall_s=round(wall, 4),
        )
        return Measurement(
            spikes=spikes,
            n_trials=stimulus.n_trials,
            health=health,
            provenance=provenance,
            madc=madc,
            cadc=cadc,
            spike_counts=counts if recording.spike_counts else None,
        )

    def reset(self) -> None:
        """Power-on state: default configuration, run counter 0, new boot id."""
        self._check_open()
        self._boot_id += 1
        self._power_on()
        self._log.info("reset", chip_id=self._chip_id, boot_id=self._boot_id)

    def close(self) -> None:
        self._closed = True

    # --- hidden truth (tests only) --------------------------------------------------------------
    def effective_parameters(self) -> dict[str, np.ndarray]:
        """True per-neuron (512,) parameters of the current configuration: ``tau_mem``,
        ``tau_syn_exc``, ``tau_syn_inh``, ``refractory`` (s), ``v_leak``, ``v_reset``,
        ``v_threshold``, ``i_offset`` (LSB), ``weight_gain_exc``, ``weight_gain_inh`` (LSB of
        synaptic current per weight LSB). For tests; library code never calls this."""
        return self._params.as_dict()

    # --- internals ---------------------------------------------------------------------------------
    @property
    def config(self) -> ChipConfig:
        """A copy of the current configuration."""
        return self._config.copy()

    def _power_on(self) -> None:
        self._run_index = 0
        self._config = ChipConfig()
        self._apply(self._config, None)

    def _apply(self, cfg: ChipConfig, changed: list[BlockKey] | None) -> None:
        kinds = None if changed is None else {k.kind for k in changed}
        fields = None if changed is None else {k.name for k in changed if k.kind == "field"}
        self._config = cfg
        self._config_hash = cfg.content_hash()
        if kinds is None or fields - {"enable_spike_out", "neuron_label", "enable_readout"}:
            self._params = NeuronParameters.of(self._mismatch, cfg)
        if kinds is None or kinds & _ROUTING_BLOCKS:
            self._routing = Routing(cfg, self._mismatch.synapse)

    def _check_open(self) -> None:
        if self._closed:
            raise DeviceError(f"mock chip {self._chip_id} is closed; open a new one with hil.open('mock://...')")
