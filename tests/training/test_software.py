"""Software Yin-Yang training: determinism (fast) and a short end-to-end run (slow)."""

from __future__ import annotations

import pytest
import torch

from training.data import SpikeEncoding, YinYang
from training.software import Network, TrainConfig, train


def test_network_is_reproducible_from_seed():
    config = TrainConfig()
    a = Network(config, torch.Generator().manual_seed(3))
    b = Network(config, torch.Generator().manual_seed(3))
    assert torch.equal(a.w_hidden, b.w_hidden) and torch.equal(a.w_out, b.w_out)
    inputs = SpikeEncoding()(YinYang(30, seed=1).x.float())
    _, out_a = a(inputs)
    _, out_b = b(inputs)
    assert torch.equal(out_a, out_b)
    assert torch.isfinite(out_a).float().mean() > 0.9  # the initialisation makes outputs fire


@pytest.mark.slow
def test_short_training_reaches_good_accuracy():
    history = train(TrainConfig(seed=0, epochs=12), log=lambda line: None)
    assert max(record["test_accuracy"] for record in history[-3:]) >= 0.93
