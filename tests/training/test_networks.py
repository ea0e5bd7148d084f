"""The trainer opened up, on the mock chip: deeper networks, multi-spike neurons, user data and losses.

Each trains a small network for a few epochs and checks it learns well past chance (1/3 for
Yin-Yang, 1/2 for the two-class task).
"""

import pytest
import torch

import hil
from hil.errors import ConfigError
from training import load_run
from training.config import TrainerConfig
from training.trainer import Trainer

MOCK = dict(
    train_size=600,
    test_size=300,
    batch_size=20,
    epochs=4,
    init_output_mean=0.3,
    lr=2e-3,
    ema_decay=0.9,
    device="mock://?seed=5&noise=off",
)


@pytest.mark.slow
def test_two_hidden_layers_learn_yin_yang_on_the_chip(tmp_path):
    report = Trainer(TrainerConfig.from_dict({**MOCK, "n_hidden": [40, 20]}), tmp_path, progress=False).run()
    assert [layer["size"] for layer in report["layers"]] == [40, 20, 3]
    assert report["placement"]["neurons"] == 63
    assert max(m["test_accuracy"] for m in report["metrics"]) >= 0.6, report["metrics"]


@pytest.mark.slow
def test_hidden_neurons_that_spike_several_times_learn_on_the_chip(tmp_path):
    config = TrainerConfig.from_dict({**MOCK, "n_hidden": 40, "max_spikes": [3, 1], "t_refrac": 2e-6})
    trainer = Trainer(config, tmp_path, progress=False)
    report = trainer.run()
    assert max(m["test_accuracy"] for m in report["metrics"]) >= 0.6, report["metrics"]
    run = load_run(tmp_path)
    assert run.layers[0].layer.max_spikes == 3 and float(run.layers[0].lif.t_refrac.mean()) < 3e-6
    # the chip's hidden neurons do fire more than once with the trained weights, and the trainer keeps those spikes
    with trainer.open_backend(torch.Generator().manual_seed(0)) as backend:
        with torch.no_grad():
            for name, w in run.weights().items():
                backend.network.weights[name].copy_(torch.from_numpy(w))
            times, _ = backend.network(trainer.test_data.inputs[:100].float())
    again = torch.isfinite(times["hidden0"][..., 1]).double().mean()
    assert again >= 0.05, again


class TwoPatterns(torch.utils.data.Dataset):
    """A user's data set: 6 inputs; class 0 has inputs 0-2 early and 3-5 late, class 1 the reverse, +-1 us jitter."""

    def __init__(self, n: int, seed: int):
        g = torch.Generator().manual_seed(seed)
        self.labels = torch.randint(0, 2, (n,), generator=g)
        early = torch.tensor([[1, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1]], dtype=torch.float64)[self.labels]
        self.times = 10e-6 - 8e-6 * early + (torch.rand(n, 6, generator=g, dtype=torch.float64) - 0.5) * 2e-6

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.times[i], int(self.labels[i])


def margin_loss(outputs, labels):
    """A user's loss: the label's first spike should come 1 us before the other neuron's."""
    first = torch.where(outputs.times[..., 0] < outputs.t_max, outputs.times[..., 0], outputs.t_max)
    label = first.gather(1, labels[:, None])[:, 0]
    other = first.gather(1, 1 - labels[:, None])[:, 0]
    return torch.nn.functional.softplus((label - other) / 1e-6 + 1).mean()


@pytest.mark.slow
def test_a_user_dataset_and_loss_train_on_the_chip(tmp_path):
    config = TrainerConfig.from_dict({**MOCK, "dataset": "custom", "loss": "custom", "n_hidden": 20, "epochs": 3})
    data = (TwoPatterns(300, 1), TwoPatterns(200, 2))
    report = Trainer(config, tmp_path, data=data, loss=margin_loss, progress=False).run()
    assert report["test_accuracy"] >= 0.8, report["metrics"]


def test_a_loss_that_returns_a_non_scalar_is_refused_before_any_device(tmp_path, mocker):
    opened = mocker.spy(hil, "open")
    config = TrainerConfig.from_dict({**MOCK, "dataset": "custom", "loss": "custom"})
    data = (TwoPatterns(20, 1), TwoPatterns(20, 2))
    with pytest.raises(ConfigError, match=r"shape \(4,\)"):
        Trainer(config, tmp_path, data=data, loss=lambda out, y: out.times[:, 0, 0])
    with pytest.raises(ConfigError, match="the loss fails on output times of shape"):
        Trainer(config, tmp_path, data=data, loss=lambda out, y: out.missing)
    with pytest.raises(ConfigError, match="set loss='custom'"):
        Trainer(
            TrainerConfig.from_dict({**config.to_dict(), "loss": "first_spike_ce"}),
            tmp_path,
            data=data,
            loss=margin_loss,
        )
    assert opened.call_count == 0
