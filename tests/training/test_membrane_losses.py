"""Losses on membrane samples (hand computations) and the two trainer options on both backends."""

import math

import pytest
import torch

from hil.errors import ConfigError
from training.config import TrainerConfig
from training.lif import LIFParameters
from training.losses import (
    ContinuedLabelTime,
    FirstSpikeCrossEntropy,
    MaxMembraneCrossEntropy,
    Outputs,
    SilentMembraneLoss,
    continued_label_times,
    loss_from_config,
    silent_membrane_penalty,
)
from training.membrane import MembraneSamples, SampleRequest
from training.network import IdealNetwork, layers
from training.trainer import Trainer

INF = math.inf
T = 50e-6


def outputs_with(hidden_times, out_times, hidden_v, out_v):
    """Outputs of a 2-trial network with 2 hidden and 2 output neurons, 3 samples each."""
    times = {"hidden0": torch.tensor(hidden_times)[..., None], "output": torch.tensor(out_times)[..., None]}
    voltages = {
        "hidden0": torch.tensor(hidden_v, requires_grad=True),
        "output": torch.tensor(out_v, requires_grad=True),
    }
    recorded = {name: torch.ones(2, dtype=torch.bool).numpy() for name in voltages}
    samples = MembraneSamples(torch.tensor([[0.0, 2e-6, 4e-6]] * 2), voltages, recorded)
    return Outputs(times["output"], times, T, samples), voltages


def test_max_membrane_cross_entropy_and_prediction_by_hand():
    out_v = [[[0.1, 0.7, 0.2], [0.3, 0.4, 0.0]], [[0.0, 0.1, 0.05], [0.2, 0.9, 0.5]]]
    outputs, v = outputs_with([[INF, INF]] * 2, [[INF, INF]] * 2, [[[0.0] * 3] * 2] * 2, out_v)
    labels = torch.tensor([1, 1])
    loss = MaxMembraneCrossEntropy(10.0)(outputs, labels)
    # peaks: trial 0 (0.7, 0.4), trial 1 (0.1, 0.9); label 1 both times
    expected = -math.log(math.exp(4) / (math.exp(7) + math.exp(4))) - math.log(
        math.exp(9) / (math.exp(1) + math.exp(9))
    )
    assert float(loss.detach()) == pytest.approx(expected / 2, rel=1e-6)
    assert MaxMembraneCrossEntropy.predict(outputs).tolist() == [0, 1]
    loss.backward()
    nonzero = v["output"].grad != 0  # only the peak sample of each output neuron gets a gradient
    assert nonzero.tolist() == [[[False, True, False]] * 2] * 2


def test_silent_penalty_by_hand():
    hidden_v = [[[0.2, 0.5, 0.1], [0.9, 0.0, 0.0]], [[0.3, 0.6, 0.4], [0.1, 0.2, 0.3]]]
    out_v = [[[0.1, 0.7, 0.2], [0.3, 0.4, 0.0]], [[0.0, 0.1, 1.2], [0.2, 0.9, 0.5]]]
    hidden_t = [[INF, 3e-6], [INF, INF]]  # neuron 0 silent in both trials, neuron 1 spikes in trial 0
    out_t = [[5e-6, INF], [INF, 60e-6]]  # trial 0: label 1 silent; trial 1: label 0 silent; 60 us is after T
    outputs, v = outputs_with(hidden_t, out_t, hidden_v, out_v)
    labels = torch.tensor([1, 0])
    penalty = silent_membrane_penalty(outputs, labels)
    # outputs: (relu(1 - 0.4) + relu(1 - 1.2)) / 2 = 0.3; hidden neuron 0: relu(1 - max(0.5, 0.6)) = 0.4
    assert penalty.item() == pytest.approx(0.7, rel=1e-6)
    penalty.backward()
    assert v["output"].grad[0, 1, 1] == pytest.approx(-0.5) and v["output"].grad[1, 0].abs().sum() == 0
    assert v["hidden0"].grad[1, 0, 1] == pytest.approx(-1.0) and v["hidden0"].grad[:, 1].abs().sum() == 0
    assert silent_membrane_penalty(outputs, labels, output=False).item() == pytest.approx(0.4, rel=1e-6)
    base = FirstSpikeCrossEntropy(0.5e-6, 60e-6, 0.0)
    combined = SilentMembraneLoss(base, 2.0)(outputs, labels)
    assert combined.item() == pytest.approx(base(outputs, labels).item() + 1.4, rel=1e-6)


def test_continued_label_time_by_hand():
    out_v = [[[0.1, 0.7, 0.2], [0.3, 0.4, 0.0]], [[0.0, 0.1, 1.0], [0.2, 0.9, 0.5]]]
    out_t = [[5e-6, INF], [INF, 60e-6]]  # trial 0: label 1 silent; trial 1: label 0 silent, neuron 1 after T
    outputs, v = outputs_with([[INF, INF]] * 2, out_t, [[[0.0] * 3] * 2] * 2, out_v)
    labels, tau_mem = torch.tensor([1, 0]), 10e-6
    times = continued_label_times(outputs, labels, tau_mem)
    # trial 0, neuron 1: peak 0.4 at 2 us -> 2 us + 10 us * 0.6; trial 1, neuron 0: peak 1.0 (threshold) at
    # 4 us -> exactly 4 us, the time of a spike that just vanished; the other neurons keep their times
    expected = [[5e-6, 2e-6 + 6e-6], [4e-6, 60e-6]]
    torch.testing.assert_close(times[..., 0], torch.tensor(expected), rtol=0, atol=1e-11)  # float32
    base = FirstSpikeCrossEntropy(0.5e-6, 60e-6, 0.1)
    loss = ContinuedLabelTime(base, tau_mem)(outputs, labels)
    by_hand = base(Outputs(torch.tensor(expected)[..., None], {}, T), labels)
    assert float(loss.detach()) == pytest.approx(float(by_hand), rel=1e-6)
    loss.backward()
    grad = v["output"].grad
    # only the peak sample of the two silent label neurons gets a gradient: -tau_mem dloss/dt
    assert (grad != 0).tolist() == [[[False] * 3, [False, True, False]], [[False, False, True], [False] * 3]]
    t = torch.tensor(expected, requires_grad=True)
    base(Outputs(t[..., None], {}, T), labels).backward()
    assert float(grad[0, 1, 1]) == pytest.approx(-tau_mem * float(t.grad[0, 1]), rel=1e-6)
    assert float(grad[1, 0, 2]) == pytest.approx(-tau_mem * float(t.grad[1, 0]), rel=1e-6)


def test_config_builds_the_membrane_losses_and_they_need_samples():
    assert loss_from_config(
        TrainerConfig(readout="max_membrane", readout_scale=3.0, v_threshold=150.0)
    ) == MaxMembraneCrossEntropy(3.0)
    loss = loss_from_config(TrainerConfig(silent_loss=5.0))
    assert isinstance(loss, SilentMembraneLoss) and loss.weight == 5.0 and isinstance(loss.base, FirstSpikeCrossEntropy)
    loss = loss_from_config(TrainerConfig(silent_label_time="membrane", tau_mem=10e-6))
    c = TrainerConfig()
    assert loss == ContinuedLabelTime(FirstSpikeCrossEntropy(c.tau_0, c.tau_1, c.alpha), 10e-6)
    for other in ({"loss": "spike_time_mse"}, {"output_copies": 2}, {"readout": "max_membrane", "v_threshold": 150.0}):
        with pytest.raises(ConfigError, match="silent_label_time = 'membrane' needs"):
            TrainerConfig.from_dict({"silent_label_time": "membrane", **other})
    times = torch.full((2, 3, 1), INF)
    with pytest.raises(ConfigError, match="needs membrane samples of layer 'output'"):
        MaxMembraneCrossEntropy(1.0)(Outputs(times, {"output": times}, T), torch.tensor([0, 1]))


def small_network(readout: bool) -> IdealNetwork:
    chain = layers((6,), 3, (1, 1))
    lif = {layer.name: LIFParameters(tau_mem=12e-6, tau_syn=6e-6) for layer in chain}
    net = IdealNetwork(
        chain,
        4,
        1,
        lif,
        duration_s=T,
        init={"hidden0": (1.0, 0.5), "output": (0.3, 0.1)},
        dtype=torch.float64,
        generator=torch.Generator().manual_seed(0),
    )
    net.sample_request = SampleRequest(["hidden0", "output"], "cadc", 2e-6)
    return net


def test_software_samples_are_the_exact_models_voltages_on_the_grid():
    net = small_network(readout=False)
    x = torch.rand(5, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 20e-6
    forward = net(x)
    grid = torch.arange(25, dtype=torch.float64) * 2e-6
    torch.testing.assert_close(forward.samples.times, grid.expand(5, -1))
    # the hidden layer's voltage at a sample between its inputs: closed-form PSP sum while it has not spiked
    v = forward.samples.voltages["hidden0"].detach()
    w = net.weights["hidden0"].detach()
    tm, ts = 12e-6, 6e-6

    def psp(s):
        return torch.where(s > 0, tm / (tm - ts) * (torch.exp(-s / tm) - torch.exp(-s / ts)), 0.0) * ts / tm

    before_first_spike = grid[None, None, :] < forward.times["hidden0"][..., :1]  # (batch, n, S)
    checked = 0
    for b, j, k in before_first_spike.nonzero()[::7].tolist():
        expected = float((w[:, j] * psp(grid[k] - x[b])).sum())
        assert float(v[b, j, k]) == pytest.approx(expected, rel=1e-9, abs=1e-12)
        checked += 1
    assert checked >= 10


def test_bump_output_off_leaves_the_output_weights_alone():
    net = small_network(readout=False)
    silent = {"hidden0": torch.full((3, 6, 1), INF), "output": torch.full((3, 3, 1), INF)}
    before = {k: w.detach().clone() for k, w in net.weights.items()}
    net.bump_output = False
    net.bump_silent(silent, torch.tensor([0, 1, 2]), 0.1)
    assert torch.equal(net.weights["output"], before["output"])
    torch.testing.assert_close(net.weights["hidden0"] - before["hidden0"], torch.full((4, 6), 0.1, dtype=torch.float64))
    net.bump_output = True
    net.bump_silent(silent, torch.tensor([0, 1, 2]), 0.1)
    assert not torch.equal(net.weights["output"], before["output"])


@pytest.mark.slow
@pytest.mark.parametrize("device", ["software", "mock://?seed=5&noise=off"])
def test_both_options_train_on_both_backends_and_count_the_samples_bytes(tmp_path, device):
    small = dict(train_size=150, test_size=60, n_hidden=40, batch_size=30, epochs=2, device=device)
    small |= {"v_threshold": 150.0, "weight_gain": 1.0}  # the readout's peaks must fit the CADC's range
    reports = {}
    options = {
        "spikes": {},
        "readout": {"readout": "max_membrane"},
        "silent": {"silent_loss": 24.0},
        "continued": {"silent_label_time": "membrane"},
    }
    for name, extra in options.items():
        config = TrainerConfig.from_dict({**small, **extra, "init_output_mean": 0.3, "bump_output": name != "silent"})
        reports[name] = Trainer(config, tmp_path / name, progress=False).run()["metrics"]
    for name, metrics in reports.items():
        assert metrics[-1]["train_loss"] < metrics[0]["train_loss"] or metrics[-1]["test_accuracy"] > 0.4, name
    if device != "software":  # the CADC reply (all 512 channels each sample) dominates the bytes
        spikes = reports["spikes"][0]["bytes_per_step"]
        assert reports["readout"][0]["bytes_per_step"] > 20 * spikes
        assert reports["readout"][0]["grad_cosine"] > 0.8
