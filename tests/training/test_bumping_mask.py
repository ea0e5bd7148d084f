"""The silent-label mask: samples whose label neuron is silent add to the loss value, not to the gradient."""

import pytest
import torch

from hil.errors import ConfigError
from training import epoch
from training.bumping import label_silent, mask_silent_labels
from training.config import TrainerConfig
from training.losses import first_spike_cross_entropy
from training.trainer import Trainer

INF = float("inf")
T_MAX = 50e-6


def _times():
    hidden = torch.tensor([[[1e-6], [2e-6]], [[3e-6], [INF]], [[4e-6], [5e-6]]], requires_grad=True)
    # sample 0: label 0 spikes; sample 1: label 1 silent (inf); sample 2: label 2 spikes at t_max (does not count)
    out = torch.tensor(
        [[[5e-6], [9e-6], [8e-6]], [[6e-6], [INF], [7e-6]], [[9e-6], [4e-6], [T_MAX]]], requires_grad=True
    )
    return {"hidden": hidden, "output": out}, torch.tensor([0, 1, 2])


def test_label_silent_means_no_spike_of_the_label_neuron_before_t_max():
    times, labels = _times()
    assert label_silent(times["output"], labels, T_MAX).tolist() == [False, True, True]


def test_masked_samples_keep_their_loss_value_and_lose_their_gradient():
    times, labels = _times()
    masked = mask_silent_labels(times, labels, T_MAX)

    def loss(t):
        return first_spike_cross_entropy(t["output"], labels, tau_0=0.5e-6, t_max=T_MAX, alpha=1e-2, tau_1=60e-6)

    torch.testing.assert_close(loss(masked), loss(times), rtol=0, atol=0)
    (full,) = torch.autograd.grad(loss(times), times["output"])
    (kept,) = torch.autograd.grad(loss(masked), times["output"])
    assert full[1:].abs().sum() > 0  # without the mask the silent-label samples push the other outputs
    assert kept[1:].abs().sum() == 0
    torch.testing.assert_close(kept[0], full[0], rtol=0, atol=0)
    # every layer is masked (a loss on the hidden times gets no gradient from those samples either)
    (hidden,) = torch.autograd.grad(masked["hidden"].nan_to_num(posinf=0).sum(), times["hidden"])
    assert hidden[:, 0, 0].tolist() == [1.0, 0.0, 0.0]


def test_no_silent_label_returns_the_times_unchanged():
    times, _ = _times()
    assert mask_silent_labels(times, torch.tensor([0, 0, 1]), T_MAX) is times


def test_mask_switch_must_be_a_boolean():
    with pytest.raises(ConfigError, match=r"TrainerConfig.mask_silent_labels = 'yes'; allowed: true or false"):
        TrainerConfig.from_dict({"mask_silent_labels": "yes"})


@pytest.mark.parametrize("on", [True, False])
def test_training_step_masks_only_when_configured(on, tmp_path, monkeypatch):
    calls = []

    def spy(times, labels, t_max, copies=1):
        calls.append((labels.clone(), t_max))
        return mask_silent_labels(times, labels, t_max, copies)

    monkeypatch.setattr(epoch, "mask_silent_labels", spy)
    config = TrainerConfig.from_dict(
        dict(
            device="software", train_size=40, test_size=20, n_hidden=10, batch_size=20, epochs=1, mask_silent_labels=on
        )
    )
    Trainer(config, tmp_path, progress=False).run()
    assert len(calls) == (2 if on else 0)
    if on:
        assert calls[0][1] == config.duration_s and calls[0][0].dtype == torch.int64


@pytest.mark.parametrize("anneal, second_epoch", [(True, 0.25), (False, 1.0)])
def test_bump_follows_the_learning_rate_schedule_only_when_annealed(anneal, second_epoch, tmp_path, monkeypatch):
    from training.network import SpikingNetwork

    seen = []
    original = SpikingNetwork.bump_silent
    monkeypatch.setattr(
        SpikingNetwork,
        "bump_silent",
        lambda self, times, labels, bump, copies=1: seen.append(bump) or original(self, times, labels, bump, copies),
    )
    config = TrainerConfig.from_dict(
        dict(device="software", train_size=40, test_size=20, n_hidden=10, batch_size=20, epochs=2, gamma=0.25)
        | dict(schedule="exponential")
        | dict(bump=0.5, bump_anneal=anneal)
    )
    Trainer(config, tmp_path, progress=False).run()
    assert seen == pytest.approx([0.5, 0.5, 0.5 * second_epoch, 0.5 * second_epoch])
