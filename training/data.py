"""The Yin-Yang data set (Kriener et al. 2022) and latency coding of features into input spike times."""

from __future__ import annotations

import math

import attrs
import numpy as np
import torch

from hil.errors import ConfigError

R_BIG = 0.5
R_SMALL = 0.1
CLASSES = ("yin", "yang", "dot")
TRAIN_SEED = 42
TEST_SEED = 40


def yin_yang_class(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Class (0 yin, 1 yang, 2 dot) of points inside the big circle of centre (0.5, 0.5).

    The S-line between yin and yang is made of two half circles of radius R_BIG/2 centred at
    (0.25, 0.5) and (0.75, 0.5); the dots are the discs of radius R_SMALL around these centres.
    """
    d_left = np.hypot(x - R_BIG / 2, y - R_BIG)
    d_right = np.hypot(x - 3 * R_BIG / 2, y - R_BIG)
    dot = (d_left <= R_SMALL) | (d_right <= R_SMALL)
    yin = ((y > R_BIG) & (d_right > R_BIG / 2)) | ((y <= R_BIG) & (d_left <= R_BIG / 2))
    return np.where(dot, 2, np.where(yin, 0, 1)).astype(np.int64)


def _sample(size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Balanced sample: label i % 3, shuffled; each point drawn by rejection until it has it."""
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    labels = rng.permutation(np.arange(size) % 3)
    points = np.empty((size, 2))
    for cls in range(3):
        need = int((labels == cls).sum())
        kept = []
        while need > 0:
            xy = rng.uniform(0, 2 * R_BIG, size=(4 * need + 16, 2))
            inside = np.hypot(xy[:, 0] - R_BIG, xy[:, 1] - R_BIG) <= R_BIG
            xy = xy[inside & (yin_yang_class(xy[:, 0], xy[:, 1]) == cls)][:need]
            kept.append(xy)
            need -= len(xy)
        points[labels == cls] = np.concatenate(kept)
    return points, labels


@attrs.frozen
class SpikeEncoding:
    """Latency coding: feature value v in [0, 1] -> one spike at t_early + v (t_late - t_early).

    ``bright_early``: v = 1 spikes at t_early instead (intensities: the strongest pixel first).
    ``zero_silent``: v = 0 sends no spike (inf) instead of one at the latest time.
    ``t_bias``: one extra input that spikes at this time in every sample (None: no bias input).
    Defaults (seconds) are Yin-Yang's and suit tau_mem = 12 us, tau_syn = 6 us: inputs spread
    over one tau_mem.
    """

    t_early: float = 1e-6
    t_late: float = 13e-6
    t_bias: float | None = 7e-6
    bright_early: bool = False
    zero_silent: bool = False

    def __attrs_post_init__(self):
        for name in ("t_early", "t_late", "t_bias"):
            value = getattr(self, name)
            if value is None and name == "t_bias":
                continue
            if not (math.isfinite(value) and value >= 0):
                raise ConfigError(f"SpikeEncoding.{name} = {value!r}; allowed range: finite, >= 0 seconds")
        if not self.t_late > self.t_early:
            raise ConfigError(f"SpikeEncoding.t_late = {self.t_late!r}; allowed range: > t_early = {self.t_early!r}")

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Features (batch, n) in [0, 1] -> input spike times (batch, n + 1 with a bias) in seconds."""
        if bool(torch.isnan(x).any()) or bool(((x < 0) | (x > 1)).any()):
            raise ConfigError("SpikeEncoding features must lie in [0, 1] (no NaN)")
        v = 1 - x if self.bright_early else x
        times = self.t_early + v * (self.t_late - self.t_early)
        if self.zero_silent:
            times = torch.where(x == 0, torch.full_like(times, math.inf), times)
        if self.t_bias is None:
            return times
        return torch.cat([times, torch.full_like(times[:, :1], self.t_bias)], dim=1)


class YinYang:
    """Yin-Yang samples: ``x`` (size, 4) float64 features (x, y, 1-x, 1-y), ``y`` (size,) int64.

    Balanced over the three classes; reproducible from ``seed``. ``x_np``/``y_np`` are the
    numpy arrays, ``x``/``y`` torch views of them.
    """

    def __init__(self, size: int, seed: int):
        if not (isinstance(size, int) and size >= 3):
            raise ValueError(f"YinYang size = {size!r}; allowed: an integer >= 3")
        if not (isinstance(seed, int) and seed >= 0):
            raise ValueError(f"YinYang seed = {seed!r}; allowed: an integer >= 0")
        points, labels = _sample(size, seed)
        self.x_np = np.concatenate([points, 1 - points], axis=1)
        self.y_np = labels
        self.x = torch.from_numpy(self.x_np)
        self.y = torch.from_numpy(self.y_np)

    @classmethod
    def train(cls) -> YinYang:
        """The standard training split: 5000 samples."""
        return cls(5000, TRAIN_SEED)

    @classmethod
    def test(cls) -> YinYang:
        """The standard test split: 1000 samples."""
        return cls(1000, TEST_SEED)

    def __len__(self) -> int:
        return len(self.y_np)
