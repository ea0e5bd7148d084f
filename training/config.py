"""``TrainerConfig``: everything a hardware-in-the-loop training run is configured by.

One flat attrs class, loadable from JSON. Unknown keys and wrong types are rejected with
the key, the value and what is allowed, before anything touches a device.
"""

from __future__ import annotations

import json
import math
import pathlib

import attrs

from hil.errors import ConfigError


def _check(predicate, allowed):
    def validator(inst, attribute, value):
        if not predicate(value):
            raise ConfigError(f"TrainerConfig.{attribute.name} = {value!r}; allowed: {allowed}")

    return validator


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _is_real(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


_pos_int = _check(lambda v: _is_int(v) and v >= 1, "an integer >= 1")
_nonneg_int = _check(lambda v: _is_int(v) and v >= 0, "an integer >= 0")
_pos_real = _check(lambda v: _is_real(v) and v > 0, "a finite number > 0")
_nonneg_real = _check(lambda v: _is_real(v) and v >= 0, "a finite number >= 0")
_unit = _check(lambda v: _is_real(v) and 0 < v <= 1, "a number in (0, 1]")
_opt_str = _check(lambda v: v is None or isinstance(v, str), "null or a string")


def _one_of(*options):
    return _check(lambda v: v in options, " or ".join(map(repr, options)))


@attrs.frozen(kw_only=True)
class TrainerConfig:
    """A training run. Times in seconds (hardware time).

    Network: ``n_hidden`` LIF neurons between the 5 Yin-Yang inputs (each sent
    ``duplication`` times) and 3 outputs; trials last ``duration_s``.
    Loss: first-spike cross-entropy with ``tau_0``, ``tau_1``, ``alpha`` (Wunderlich & Pehle 2021).
    Weights are in model units (synaptic jump / threshold distance); ``init_*`` set their
    normal initialisation per layer. Data-parallel runs split each step's batch over the ranks:
    ``batch_scope = "global"`` keeps ``batch_size`` samples per step whatever the number of
    ranks (same steps as one process); ``"per_rank"`` gives each chip ``batch_size`` samples, so
    a step of N ranks covers N times as many (fewer, larger steps; what hides per-run overhead).
    """

    dataset: str = attrs.field(default="yinyang", validator=_one_of("yinyang"))
    train_size: int = attrs.field(default=5000, validator=_pos_int)
    test_size: int = attrs.field(default=1000, validator=_pos_int)
    n_hidden: int = attrs.field(default=120, validator=_pos_int)
    duplication: int = attrs.field(default=5, validator=_pos_int)
    duration_s: float = attrs.field(default=50e-6, validator=_pos_real)

    loss: str = attrs.field(default="first_spike_ce", validator=_one_of("first_spike_ce"))
    tau_0: float = attrs.field(default=0.5e-6, validator=_pos_real)
    tau_1: float = attrs.field(default=60e-6, validator=_pos_real)
    alpha: float = attrs.field(
        default=1e-2, validator=_nonneg_real
    )  # 1e-2: earlier, steeper label spikes; steadier across seeds on the noisy chip (docs/benchmarks.md)

    optimizer: str = attrs.field(default="adam", validator=_one_of("adam", "sgd"))
    lr: float = attrs.field(default=1e-3, validator=_pos_real)
    schedule: str = attrs.field(default="exponential", validator=_one_of("exponential", "step", "none"))
    step_size: int = attrs.field(default=10, validator=_pos_int)
    gamma: float = attrs.field(
        default=0.88, validator=_unit
    )  # per epoch ("exponential") or per step_size epochs ("step")
    drive_floor: float = attrs.field(
        default=1e-2, validator=_pos_real
    )  # replay: least drive at a measured spike, see training.lif.replay_spike_times
    bump: float = attrs.field(
        default=2e-2, validator=_nonneg_real
    )  # weight bumping of silent neurons, see DeviceNetwork.bump_silent
    ema_decay: float = attrs.field(
        default=0.995, validator=_check(lambda v: _is_real(v) and 0 <= v < 1, "a number in [0, 1)")
    )  # evaluate a moving average of the weights (0: off), see training.averaging
    epochs: int = attrs.field(default=20, validator=_pos_int)
    batch_size: int = attrs.field(default=32, validator=_pos_int)
    batch_scope: str = attrs.field(
        default="global", validator=_one_of("global", "per_rank")
    )  # batch_size per step of the group, or per rank (chip)
    seed: int = attrs.field(default=0, validator=_nonneg_int)

    init_hidden_mean: float = attrs.field(default=0.3, validator=_check(_is_real, "a finite number"))
    init_hidden_std: float = attrs.field(default=0.6, validator=_nonneg_real)
    init_output_mean: float = attrs.field(default=0.1, validator=_check(_is_real, "a finite number"))
    init_output_std: float = attrs.field(default=0.1, validator=_nonneg_real)

    device: str = attrs.field(default="mock://", validator=_check(lambda v: isinstance(v, str) and v, "a device URL"))
    calibration: str | None = attrs.field(default=None, validator=_opt_str)
    grad_check_batches: int = attrs.field(default=2, validator=_nonneg_int)
    dtype: str = attrs.field(default="float32", validator=_one_of("float32", "float64"))

    @classmethod
    def from_dict(cls, data: dict, **overrides) -> TrainerConfig:
        if not isinstance(data, dict):
            raise ConfigError(f"trainer config: expected a JSON object, got {type(data).__name__}")
        merged = {**data, **{k: v for k, v in overrides.items() if v is not None}}
        known = {f.name for f in attrs.fields(cls)}
        unknown = sorted(set(merged) - known)
        if unknown:
            raise ConfigError(f"trainer config: unknown key(s) {unknown}; known keys: {sorted(known)}")
        return cls(**merged)

    @classmethod
    def load(cls, path, **overrides) -> TrainerConfig:
        try:
            data = json.loads(pathlib.Path(path).read_text())
        except json.JSONDecodeError as exc:
            raise ConfigError(f"trainer config {path}: not valid JSON ({exc})") from None
        return cls.from_dict(data, **overrides)

    def to_dict(self) -> dict:
        return attrs.asdict(self)
