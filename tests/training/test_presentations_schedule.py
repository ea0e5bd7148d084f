"""``presentations`` (several chip trials per training sample and step, the loss their mean; the ideal
model runs each sample once) and the cosine learning-rate schedule."""

from __future__ import annotations

import math

import pytest

from hil.errors import ConfigError
from training import Trainer, TrainerConfig, epoch

SMALL = dict(device="software", train_size=40, test_size=20, n_hidden=10, batch_size=20)


@pytest.mark.parametrize("device, rows", [("mock://?seed=5&noise=off", 40), ("software", 20)])
def test_presentations_run_every_sample_again_on_a_device_only(device, rows, tmp_path, monkeypatch):
    seen = []
    original = epoch.Loop.loss_of

    def spy(self, times, targets, samples=None):
        seen.append(int(targets.shape[0]))
        return original(self, times, targets, samples)

    monkeypatch.setattr(epoch.Loop, "loss_of", spy)
    for p in (1, 2):
        seen.clear()
        config = TrainerConfig.from_dict(SMALL | dict(device=device, epochs=1, presentations=p, grad_check_batches=0))
        Trainer(config, tmp_path / f"p{p}", progress=False).run()
        # the two training steps (device times of 20 samples x p on a chip), then the evaluation of 20
        assert seen == [rows if p == 2 else 20] * 2 + [20]


def test_presentations_must_be_a_positive_integer():
    with pytest.raises(ConfigError, match=r"TrainerConfig.presentations = 0; allowed: an integer >= 1"):
        TrainerConfig.from_dict({"presentations": 0})


def test_cosine_schedule_anneals_from_lr_toward_zero_over_the_epochs(tmp_path):
    config = TrainerConfig.from_dict(SMALL | dict(epochs=4, schedule="cosine", lr=2e-3))
    report = Trainer(config, tmp_path, progress=False).run()
    # metrics' lr: the rate after each epoch's scheduler step
    expected = [2e-3 * (1 + math.cos(math.pi * e / 4)) / 2 for e in range(1, 5)]
    assert [m["lr"] for m in report["metrics"]] == pytest.approx(expected, abs=1e-12)
