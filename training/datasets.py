"""Training data as input spike times and targets: ``SpikeData``, and the built-in tasks.

``SpikeData`` is what the trainer consumes: input spike times (N, n_in) or (N, n_in, k) in
seconds (inf = no spike) and targets, either class labels (N,) int64 or target spike times
(N, n_out) in seconds. Build it from a tensor pair or any torch ``Dataset`` of
``(times, target)`` items. Built-in tasks (``builtin``): Yin-Yang (``training.data``) and
scikit-learn's 8x8 handwritten digits (optional extra ``digits``), both latency coded.
"""

from __future__ import annotations

import attrs
import numpy as np
import torch

from hil.errors import ConfigError

from .data import TEST_SEED, TRAIN_SEED, SpikeEncoding, YinYang

DIGITS_SPLIT_SEED = 1797
DIGITS_ENCODING = SpikeEncoding(t_early=1e-6, t_late=13e-6, t_bias=7e-6, bright_early=True, zero_silent=True)


@attrs.frozen(eq=False)
class SpikeData:
    """Input spike times and targets of N samples (see the module docstring).

    ``n_classes``: output neurons the targets need (labels: the largest label + 1 unless given;
    target times: their width).
    """

    inputs: torch.Tensor
    targets: torch.Tensor
    n_classes: int

    @classmethod
    def from_tensors(cls, inputs, targets, *, n_classes: int | None = None, name: str = "data") -> SpikeData:
        """Validate and convert; ``ConfigError`` names ``name``, the problem and what is allowed."""
        x = torch.as_tensor(inputs).detach().to(torch.float64)
        y = torch.as_tensor(targets).detach()
        if x.dim() not in (2, 3) or x.shape[0] == 0 or x.shape[1] == 0:
            raise ConfigError(f"{name}: input times have shape {tuple(x.shape)}; allowed: (N, n_in) or (N, n_in, k)")
        if bool(torch.isnan(x).any()) or bool((x < 0).any()):
            raise ConfigError(f"{name}: input times contain NaN or negative values; allowed: seconds >= 0, inf = none")
        if y.shape[:1] != x.shape[:1]:
            raise ConfigError(f"{name}: {x.shape[0]} input samples but targets of shape {tuple(y.shape)}")
        if y.dim() == 1 and not y.is_floating_point() and y.dtype != torch.bool:
            y = y.to(torch.int64)
            if bool((y < 0).any()):
                raise ConfigError(f"{name}: negative class label {int(y.min())}; allowed: 0, 1, ...")
            n = int(y.max()) + 1 if n_classes is None else n_classes
            if int(y.max()) >= n:
                raise ConfigError(f"{name}: class label {int(y.max())}; allowed: 0..{n - 1} ({n} output neurons)")
        elif y.dim() == 2 and y.is_floating_point():
            y = y.to(torch.float64)
            n = y.shape[1]
            if not bool(torch.isfinite(y).all()) or bool((y < 0).any()):
                raise ConfigError(f"{name}: target times must be finite seconds >= 0")
        else:
            raise ConfigError(
                f"{name}: targets of shape {tuple(y.shape)} and dtype {y.dtype}; allowed: integer labels (N,) "
                "or target spike times (N, n_out) in seconds"
            )
        return cls(x, y, n)

    @classmethod
    def from_dataset(cls, dataset, *, n_classes: int | None = None, name: str = "data") -> SpikeData:
        """Read every ``(times, target)`` item of a torch ``Dataset`` (anything with ``len`` and indexing) once."""
        try:
            items = [dataset[i] for i in range(len(dataset))]
            xs = torch.stack([torch.as_tensor(x) for x, _ in items])
            ys = torch.stack([torch.as_tensor(y) for _, y in items])
        except (TypeError, ValueError, RuntimeError) as exc:
            raise ConfigError(f"{name}: items must be (input times, target) pairs of equal shapes ({exc})") from None
        return cls.from_tensors(xs, ys, n_classes=n_classes, name=name)

    @classmethod
    def of(cls, data, *, n_classes: int | None = None, name: str = "data") -> SpikeData:
        """``SpikeData`` as it is, a ``(inputs, targets)`` pair, or a ``Dataset``."""
        if isinstance(data, SpikeData):
            return data
        if isinstance(data, tuple) and len(data) == 2:
            return cls.from_tensors(*data, n_classes=n_classes, name=name)
        return cls.from_dataset(data, n_classes=n_classes, name=name)

    def __len__(self) -> int:
        return self.inputs.shape[0]

    @property
    def n_inputs(self) -> int:
        return self.inputs.shape[1]

    def check_fits(self, n_inputs: int, n_outputs: int, duration_s: float, name: str) -> None:
        """``ConfigError`` unless the samples fit ``n_inputs`` -> ``n_outputs`` and trials ``duration_s`` long."""
        if self.n_inputs != n_inputs:
            raise ConfigError(f"{name}: {self.n_inputs} inputs per sample; the network has {n_inputs}")
        if self.targets.dim() == 2 and self.targets.shape[1] != n_outputs:
            raise ConfigError(f"{name}: target times for {self.targets.shape[1]} outputs; the network has {n_outputs}")
        if self.targets.dim() == 1 and self.n_classes > n_outputs:
            raise ConfigError(f"{name}: labels up to {self.n_classes - 1}; the network has {n_outputs} output neurons")
        finite = self.inputs[torch.isfinite(self.inputs)]
        if finite.numel() and float(finite.max()) >= duration_s:
            raise ConfigError(
                f"{name}: an input spike at {float(finite.max()):g} s; allowed: before duration_s = {duration_s:g} s"
            )


def yinyang(train_size: int, test_size: int) -> tuple[SpikeData, SpikeData]:
    """Yin-Yang, latency coded (``SpikeEncoding()``): 5 inputs, 3 classes."""
    encode = SpikeEncoding()
    train, test = YinYang(train_size, TRAIN_SEED), YinYang(test_size, TEST_SEED)
    return tuple(
        SpikeData.from_tensors(encode(ds.x), ds.y, n_classes=3, name=n) for ds, n in ((train, "train"), (test, "test"))
    )


def digits(train_size: int, test_size: int) -> tuple[SpikeData, SpikeData]:
    """scikit-learn's 8x8 handwritten digits (1,797 samples, 10 classes), latency coded: the
    brightest pixels spike first, blank pixels not at all, plus a bias spike (65 inputs).
    A fixed seeded split: ``test_size`` samples for testing, the next ``train_size`` for training."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise ConfigError("dataset 'digits' needs scikit-learn: pip install 'bss2-hil[digits]'") from None
    bunch = load_digits()
    n = len(bunch.target)
    if train_size + test_size > n:
        raise ConfigError(f"dataset 'digits' has {n} samples; train_size + test_size = {train_size + test_size}")
    order = np.random.default_rng(np.random.SeedSequence(DIGITS_SPLIT_SEED)).permutation(n)
    x = torch.from_numpy(bunch.data / 16.0)
    y = torch.from_numpy(bunch.target.astype(np.int64))
    parts = {"test": order[:test_size], "train": order[test_size : test_size + train_size]}
    made = {k: SpikeData.from_tensors(DIGITS_ENCODING(x[i]), y[i], n_classes=10, name=k) for k, i in parts.items()}
    return made["train"], made["test"]


BUILTIN = {"yinyang": yinyang, "digits": digits}


def builtin(name: str, train_size: int, test_size: int) -> tuple[SpikeData, SpikeData]:
    """The (train, test) ``SpikeData`` of a built-in task."""
    if name not in BUILTIN:
        raise ConfigError(f"dataset {name!r} is not built in; built in: {', '.join(BUILTIN)} (or pass data in Python)")
    return BUILTIN[name](train_size, test_size)


def batch_targets(targets: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Targets for a loss: labels stay int64, target times take the network's dtype."""
    return targets if not targets.is_floating_point() else targets.to(dtype)
