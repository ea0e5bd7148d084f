"""``presentations`` (several chip trials per training sample and step, the loss their mean) and the
cosine learning-rate schedule."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hil.errors import ConfigError
from training import Trainer, TrainerConfig, epoch

SMALL = dict(device="software", train_size=40, test_size=20, n_hidden=10, batch_size=20)


def test_presentations_run_every_sample_again_and_in_software_change_nothing(tmp_path, monkeypatch):
    rows = []
    original = epoch.Loop.loss_of

    def spy(self, times, targets, samples=None):
        rows.append(int(targets.shape[0]))
        return original(self, times, targets, samples)

    monkeypatch.setattr(epoch.Loop, "loss_of", spy)
    runs = {}
    for p in (1, 2):
        rows.clear()
        config = TrainerConfig.from_dict(SMALL | dict(epochs=1, presentations=p, ema_decay=0.0))
        report = Trainer(config, tmp_path / f"p{p}", progress=False).run()
        runs[p] = (report, np.load(tmp_path / f"p{p}" / "network.npz"))
        assert rows[:2] == [20 * p, 20 * p]  # the two training steps; evaluation batches follow
    # the ideal model is deterministic: the mean over identical presentations is one presentation
    assert runs[2][0]["test_accuracy"] == runs[1][0]["test_accuracy"]
    for name in runs[1][1].files:
        np.testing.assert_allclose(runs[2][1][name], runs[1][1][name], rtol=1e-6, atol=1e-7)


def test_presentations_must_be_a_positive_integer():
    with pytest.raises(ConfigError, match=r"TrainerConfig.presentations = 0; allowed: an integer >= 1"):
        TrainerConfig.from_dict({"presentations": 0})


def test_cosine_schedule_anneals_from_lr_toward_zero_over_the_epochs(tmp_path):
    config = TrainerConfig.from_dict(SMALL | dict(epochs=4, schedule="cosine", lr=2e-3))
    report = Trainer(config, tmp_path, progress=False).run()
    # metrics' lr: the rate after each epoch's scheduler step
    expected = [2e-3 * (1 + math.cos(math.pi * e / 4)) / 2 for e in range(1, 5)]
    assert [m["lr"] for m in report["metrics"]] == pytest.approx(expected, abs=1e-12)
