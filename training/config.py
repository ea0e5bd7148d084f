"""``TrainerConfig``: everything a training run is configured by, for both backends.

One flat attrs class, loadable from JSON. Every field carries its help text (``FIELD_HELP``),
so ``--help``, ``--print-config`` and ``--set NAME=VALUE`` list and type the same fields.
Unknown keys and wrong types are rejected with the key, the value and what is allowed,
before anything touches a device.
"""

from __future__ import annotations

import json
import math
import pathlib

import attrs

from calibration.target import WEIGHT_GAIN_RANGE
from hil.chip import CADC_MIN_PERIOD_S, V_THRESHOLD_RANGE
from hil.errors import ConfigError

SOFTWARE = "software"  # the device value that selects the ideal model instead of a chip
COPIES_LOSSES = ("first_spike_ce", "spike_time_mse")  # losses of one first-spike time per class
MEMBRANE_READOUT_MAX_V_THRESHOLD = 165.0  # LSB: 80 + 2 x 85 = 250 < 255, the CADC's top


def _check(predicate, allowed):
    def validator(inst, attribute, value):
        if not predicate(value):
            raise ConfigError(f"TrainerConfig.{attribute.name} = {value!r}; allowed: {allowed}")

    return validator


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _is_real(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _float(v):
    """JSON integers in float fields become floats (``lr = 1`` is ``1.0``); anything else is left to the validator."""
    return float(v) if _is_int(v) else v


def _int_or_list(v):
    """A list of integers becomes a tuple (hashable, comparable); anything else is left to the validator."""
    return tuple(v) if isinstance(v, list) else v


def _ints(v):
    return _is_int(v) or (isinstance(v, tuple) and len(v) >= 1 and all(_is_int(x) for x in v))


_pos_int = _check(lambda v: _is_int(v) and v >= 1, "an integer >= 1")
_nonneg_int = _check(lambda v: _is_int(v) and v >= 0, "an integer >= 0")
_pos_real = _check(lambda v: _is_real(v) and v > 0, "a finite number > 0")
_nonneg_real = _check(lambda v: _is_real(v) and v >= 0, "a finite number >= 0")
_real = _check(_is_real, "a finite number")
_unit = _check(lambda v: _is_real(v) and 0 < v <= 1, "a number in (0, 1]")
_bool = _check(lambda v: isinstance(v, bool), "true or false")
_opt_str = _check(lambda v: v is None or isinstance(v, str), "null or a string")
_layers = _check(
    lambda v: _ints(v) and all(x >= 1 for x in (v if isinstance(v, tuple) else (v,))),
    "an integer >= 1 or a non-empty list of them",
)


def _one_of(*options):
    return _check(lambda v: v in options, " or ".join(map(repr, options)))


def _field(default, validator, help, converter=None):
    return attrs.field(default=default, validator=validator, converter=converter, metadata={"help": help})


def _real_field(default, validator, help):
    return _field(default, validator, help, converter=_float)


@attrs.frozen(kw_only=True)
class TrainerConfig:
    """A training run; times in seconds (hardware time). See ``FIELD_HELP`` for each field."""

    # --- task --------------------------------------------------------------------------------
    dataset: str = _field(
        "yinyang",
        _one_of("yinyang", "digits", "custom"),
        "built-in data set ('yinyang', 'digits': scikit-learn's 8x8 digits) or 'custom' (data given in Python)",
    )
    train_size: int = _field(5000, _pos_int, "training samples of the built-in data set")
    test_size: int = _field(1000, _pos_int, "test samples of the built-in data set")
    # --- network -----------------------------------------------------------------------------
    n_hidden: int | tuple = _field(
        120, _layers, "hidden layer sizes: one integer (one layer) or a list, one per layer", _int_or_list
    )
    max_spikes: int | tuple = _field(
        1,
        _layers,
        "spikes per neuron that count: one integer for all layers or a list, hidden layers then output",
        _int_or_list,
    )
    duplication: int = _field(5, _pos_int, "times every input spike is sent, each copy with its own weights")
    duration_s: float = _real_field(50e-6, _pos_real, "trial duration (s); spikes after it do not count")
    tau_mem: float = _real_field(12e-6, _pos_real, "membrane time constant (s): the calibration target on a chip")
    tau_syn: float = _real_field(6e-6, _pos_real, "synaptic time constant (s): the calibration target on a chip")
    t_refrac: float = _real_field(
        30e-6, _nonneg_real, "refractory time (s): the calibration target on a chip; below duration_s for multi-spike"
    )
    # --- loss --------------------------------------------------------------------------------
    loss: str = _field(
        "first_spike_ce",
        _one_of("first_spike_ce", "spike_time_mse", "spike_count_ce", "custom"),
        "loss on the output spikes: first_spike_ce, spike_time_mse, spike_count_ce, or custom (given in Python)",
    )
    # tau_0 0.12 us (0.5 us before issue 19): the softmax saturates on well-separated samples, so the gradient
    # goes to those close to a class boundary, which the chip's jitter flips (docs/benchmarks.md)
    tau_0: float = _real_field(0.12e-6, _pos_real, "first_spike_ce: softmax time scale (s)")
    tau_1: float = _real_field(60e-6, _pos_real, "first_spike_ce: time scale (s) of the label-spike regulariser")
    alpha: float = _real_field(
        1e-2, _nonneg_real, "first_spike_ce: weight of the regulariser that pulls the label's spike early"
    )  # 1e-2: earlier, steeper label spikes; steadier across seeds on the noisy chip (docs/benchmarks.md)
    target_label_s: float = _real_field(
        10e-6, _nonneg_real, "spike_time_mse on labels: target time of the label neuron"
    )
    target_other_s: float = _real_field(30e-6, _nonneg_real, "spike_time_mse on labels: target time of the others")
    count_scale: float = _real_field(2.0, _pos_real, "spike_count_ce: logit per (time-weighted) spike")
    # --- optimisation ------------------------------------------------------------------------
    optimizer: str = _field("adam", _one_of("adam", "sgd"), "optimizer (sgd with momentum 0.9)")
    lr: float = _real_field(1e-3, _pos_real, "learning rate")
    schedule: str = _field(
        "cosine",
        _one_of("exponential", "step", "cosine", "none"),
        "learning-rate schedule (cosine: from lr toward 0 over the epochs, gamma unused)",
    )  # cosine: higher last-5 mean than exponential on every seed on the noisy chip (docs/benchmarks.md)
    step_size: int = _field(10, _pos_int, "schedule 'step': epochs between decays")
    gamma: float = _real_field(0.88, _unit, "learning-rate decay per epoch ('exponential') or per step_size epochs")
    drive_floor: float = _real_field(
        1e-2, _pos_real, "replay: least drive at a measured spike, in threshold distances (training.lif)"
    )
    bump: float = _real_field(2e-2, _nonneg_real, "weight bump of silent neurons per step (0: off)")
    ema_decay: float = _real_field(
        0.995,
        _check(lambda v: _is_real(v) and 0 <= v < 1, "a number in [0, 1)"),
        "evaluate a moving average of the weights with this decay per step (0: the raw weights)",
    )
    epochs: int = _field(30, _pos_int, "training epochs")  # 30 with the cosine schedule: issue 19, docs/benchmarks.md
    batch_size: int = _field(32, _pos_int, "samples per step (see batch_scope)")
    batch_scope: str = _field(
        "global",
        _one_of("global", "per_rank"),
        "with several ranks: batch_size per step of the group ('global') or per rank ('per_rank')",
    )
    seed: int = _field(0, _nonneg_int, "seed of the weights and the sample order")
    init_hidden_mean: float = _real_field(0.3, _real, "initial weights into hidden layers: mean (model units)")
    init_hidden_std: float = _real_field(0.6, _nonneg_real, "initial weights into hidden layers: standard deviation")
    init_output_mean: float = _real_field(0.1, _real, "initial weights into the output layer: mean")
    init_output_std: float = _real_field(0.1, _nonneg_real, "initial weights into the output layer: standard deviation")
    # --- where it runs -----------------------------------------------------------------------
    device: str = _field(
        "mock://",
        _check(lambda v: isinstance(v, str) and v, "a device URL or 'software'"),
        "device URL (mock://, socket://HOST:PORT, ...) or 'software' for the ideal model",
    )
    calibration: str | None = _field(None, _opt_str, "calibration result file (default: calibrate, cached per chip)")
    grad_check_batches: int = _field(
        2, _nonneg_int, "batches per epoch whose device gradient is compared with the ideal model's"
    )
    dtype: str = _field("float32", _one_of("float32", "float64"), "torch dtype of weights and times")
    init_from: str | None = _field(
        None, _opt_str, "NIR graph (.nir, e.g. a run's network.nir) whose weights start the run; its shape must match"
    )
    # --- membrane samples (docs/training.md, Membrane readouts) ----------------------------------
    readout: str = _field(
        "first_spike",
        _one_of("first_spike", "max_membrane"),
        "output readout: first_spike (the loss field), or max_membrane: non-spiking outputs, cross-entropy "
        "on each output's peak sampled membrane (CADC on a chip)",
    )
    readout_scale: float = _real_field(10.0, _pos_real, "max_membrane: logit per model unit of peak membrane")
    silent_label_time: str = _field(
        "clamp",
        _one_of("clamp", "membrane"),
        "first_spike_ce: the time of a label neuron that stayed silent: clamp (duration_s), or membrane: its "
        "sampled peak's time plus tau_mem (1 - peak), continuous where the spike vanishes (reads CADC samples "
        "of the output layer)",
    )
    silent_loss: float = _real_field(
        0.0,
        _nonneg_real,
        "weight of relu(1 - peak membrane) of label neurons that stayed silent and hidden neurons silent on "
        "the whole batch (0: off; reads CADC samples of every layer)",
    )
    bump_output: bool = _field(
        True, _check(lambda v: isinstance(v, bool), "true or false"), "weight bumping of silent output neurons"
    )
    sample_period_s: float = _real_field(
        2e-6,
        _check(lambda v: _is_real(v) and v >= CADC_MIN_PERIOD_S, f">= {CADC_MIN_PERIOD_S:g} s (the CADC's minimum)"),
        "membrane sampling period (s): the CADC's on a chip, the model's grid in software",
    )
    mask_silent_labels: bool = _field(
        True,
        _bool,
        "no gradient from samples whose label neuron is silent (bumping revives it; see training.bumping)",
    )
    bump_anneal: bool = _field(True, _bool, "scale the bump with the learning-rate schedule")
    # --- the chip's operating point: calibration targets (leak and reset stay at 80 LSB) ------------
    v_threshold: float = _real_field(
        220.0,
        _check(lambda v: _is_real(v) and 85 <= v <= V_THRESHOLD_RANGE[1], f"85..{V_THRESHOLD_RANGE[1]:g} CADC LSB"),
        "calibration target: threshold in CADC LSB (220: a 140 LSB threshold distance, half the relative noise of 150)",
    )
    weight_gain: float = _real_field(
        2.0,
        _check(
            lambda v: _is_real(v) and WEIGHT_GAIN_RANGE[0] <= v <= WEIGHT_GAIN_RANGE[1],
            f"{WEIGHT_GAIN_RANGE[0]:g}..{WEIGHT_GAIN_RANGE[1]:g} LSB per weight LSB",
        ),
        "calibration target: synaptic current per weight LSB, both signs (LSB)",
    )
    # --- noise-aware readout and schedule (issue 19, docs/training.md) -------------------------------
    output_copies: int = _field(
        1,
        _pos_int,
        "output neurons per class (class-major: neuron j reads class j // output_copies); the loss and the "
        "prediction see one time per class (output_copies_time)",
    )
    output_copies_time: str = _field(
        "mean",
        _one_of("mean", "earliest"),
        "output_copies > 1: a class's time is the mean of its copies' first spikes (silent ones count as "
        "duration_s) or the earliest",
    )
    presentations: int = _field(
        1, _pos_int, "chip trials per training sample and step; the loss is the mean over them (device runs)"
    )

    def __attrs_post_init__(self):
        if self.readout == "max_membrane" and self.loss != "first_spike_ce":
            raise ConfigError(
                f"TrainerConfig.loss = {self.loss!r} with readout = 'max_membrane' (whose loss is the cross-entropy "
                "of the peak membranes); allowed: readout = 'first_spike' for this loss"
            )
        if self.readout == "max_membrane" and self.v_threshold > MEMBRANE_READOUT_MAX_V_THRESHOLD:
            raise ConfigError(
                f"TrainerConfig.v_threshold = {self.v_threshold:g} with readout = 'max_membrane'; allowed: <= "
                f"{MEMBRANE_READOUT_MAX_V_THRESHOLD:g} LSB, so that a peak of twice the threshold distance above the "
                "leak (80) stays inside the CADC's range (255) and below the highest threshold the chip can set "
                "(set v_threshold=150, weight_gain=1)"
            )
        if self.silent_label_time == "membrane" and (
            self.readout != "first_spike" or self.loss != "first_spike_ce" or self.output_copies > 1
        ):
            raise ConfigError(
                "TrainerConfig.silent_label_time = 'membrane' needs readout = 'first_spike', loss = 'first_spike_ce' "
                f"and output_copies = 1 (got {self.readout!r}, {self.loss!r}, {self.output_copies})"
            )
        if self.output_copies > 1 and (self.readout != "first_spike" or self.loss not in COPIES_LOSSES):
            raise ConfigError(
                f"TrainerConfig.output_copies = {self.output_copies} with loss = {self.loss!r}, readout = "
                f"{self.readout!r}; allowed: output_copies = 1, or readout 'first_spike' with loss "
                f"{' or '.join(map(repr, COPIES_LOSSES))}"
            )
        n_layers = len(self.hidden_sizes) + 1
        if isinstance(self.max_spikes, tuple) and len(self.max_spikes) != n_layers:
            raise ConfigError(
                f"TrainerConfig.max_spikes = {list(self.max_spikes)!r} has {len(self.max_spikes)} entries; allowed: "
                f"one integer, or {n_layers} (one per hidden layer, then the output layer)"
            )

    # --- derived -------------------------------------------------------------------------------
    @property
    def hidden_sizes(self) -> tuple[int, ...]:
        return self.n_hidden if isinstance(self.n_hidden, tuple) else (self.n_hidden,)

    @property
    def spikes_per_layer(self) -> tuple[int, ...]:
        """max_spikes of every layer: hidden layers, then the output layer."""
        n = len(self.hidden_sizes) + 1
        return self.max_spikes if isinstance(self.max_spikes, tuple) else (self.max_spikes,) * n

    @property
    def software(self) -> bool:
        return self.device == SOFTWARE

    # --- files ---------------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: dict, **overrides) -> TrainerConfig:
        """From a dict of field values; ``overrides`` that are not None win."""
        if not isinstance(data, dict):
            raise ConfigError(f"trainer config: expected a JSON object, got {type(data).__name__}")
        merged = {**data, **{k: v for k, v in overrides.items() if v is not None}}
        unknown = sorted(set(merged) - set(FIELD_HELP))
        if unknown:
            raise ConfigError(f"trainer config: unknown key(s) {unknown}; known keys: {sorted(FIELD_HELP)}")
        return cls(**merged)

    @classmethod
    def load(cls, path, **overrides) -> TrainerConfig:
        """Read a JSON file; a missing or unreadable file, a directory, bad UTF-8 or bad JSON raise ``ConfigError``."""
        path = pathlib.Path(path)
        try:
            text = path.read_bytes().decode("utf-8")
            data = json.loads(text)
        except IsADirectoryError:
            raise ConfigError(f"trainer config {path}: is a directory; expected a JSON file") from None
        except FileNotFoundError:
            raise ConfigError(f"trainer config {path}: no such file") from None
        except OSError as exc:
            raise ConfigError(f"trainer config {path}: cannot be read ({exc.strerror or exc})") from None
        except UnicodeDecodeError as exc:
            raise ConfigError(f"trainer config {path}: not UTF-8 text (byte {exc.start})") from None
        except json.JSONDecodeError as exc:
            raise ConfigError(f"trainer config {path}: not valid JSON ({exc})") from None
        try:
            return cls.from_dict(data, **overrides)
        except ConfigError as exc:
            raise ConfigError(f"trainer config {path}: {exc}") from None

    def to_dict(self) -> dict:
        """JSON-ready (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in attrs.asdict(self).items()}


FIELD_HELP: dict[str, str] = {f.name: f.metadata["help"] for f in attrs.fields(TrainerConfig)}


def parse_assignment(text: str) -> tuple[str, object]:
    """``"lr=2e-3"`` -> ``("lr", 0.002)``, typed by the field: JSON values, and strings as they are
    for string fields (``device=mock://``); ``null``/``none`` for optional fields. ``ConfigError``
    names the field and what is allowed."""
    name, sep, raw = text.partition("=")
    name = name.strip()
    if not sep or not name:
        raise ConfigError(f"--set {text!r}: expected NAME=VALUE, for example lr=2e-3")
    if name not in FIELD_HELP:
        raise ConfigError(f"--set {name}: unknown field; known: {', '.join(sorted(FIELD_HELP))}")
    default = attrs.fields_dict(TrainerConfig)[name].default
    if raw.strip().lower() in ("null", "none") and default is None:
        return name, None
    if isinstance(default, str) or (default is None and not raw.strip().startswith(("[", "{"))):
        return name, raw
    try:
        return name, json.loads(raw)
    except json.JSONDecodeError:
        raise ConfigError(
            f"--set {name}={raw!r}: not a number or JSON list; TrainerConfig.{name}: {FIELD_HELP[name]} "
            f"(default {json.dumps(default)})"
        ) from None


def with_assignments(config: TrainerConfig, assignments: list[str]) -> TrainerConfig:
    """``config`` with ``--set`` assignments applied (later ones win), validated as a whole."""
    values = config.to_dict()
    for text in assignments:
        name, value = parse_assignment(text)
        values[name] = value
    return TrainerConfig.from_dict(values)


def describe_fields() -> str:
    """One line per field: name, default, help (for ``--help``)."""
    defaults = TrainerConfig().to_dict()
    width = max(map(len, FIELD_HELP))
    return "\n".join(
        f"  {name:<{width}}  {json.dumps(defaults[name]):>12}  {text}" for name, text in FIELD_HELP.items()
    )
