"""Built-in losses on Outputs, the loss check, SpikeData and the digits task."""

import math

import numpy as np
import pytest
import torch

from hil.errors import ConfigError
from training.datasets import SpikeData, builtin
from training.losses import (
    FirstSpikeCrossEntropy,
    Outputs,
    SpikeCountCrossEntropy,
    SpikeTimeMSE,
    checked,
    first_spike_prediction,
    soft_spike_count,
)

INF = math.inf


def outputs(times, t_max=10e-6):
    t = torch.tensor(times, dtype=torch.float64, requires_grad=True)
    return Outputs(t, {"output": t}, t_max)


def test_soft_count_weights_each_spike_by_how_early_it_is():
    out = outputs([[[1e-6, 6e-6, INF], [INF, INF, INF], [2e-6, 12e-6, INF]]])
    counts = soft_spike_count(out.times, out.t_max)
    torch.testing.assert_close(counts, torch.tensor([[0.9 + 0.4, 0.0, 0.8]], dtype=torch.float64))


def test_spike_count_cross_entropy_value_gradient_and_prediction():
    out = outputs([[[1e-6, 6e-6], [5e-6, INF]], [[INF, INF], [INF, INF]]])
    loss = SpikeCountCrossEntropy(scale=2.0)(out, torch.tensor([0, 1]))
    logits = 2.0 * torch.tensor([[1.3, 0.5], [0.0, 0.0]], dtype=torch.float64)
    torch.testing.assert_close(loss, torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1])))
    loss.backward()
    assert out.times.grad[0, 0, 0] > 0 and out.times.grad[0, 1, 0] < 0  # descent: label spikes earlier, others later
    assert out.times.grad[0, 1, 1] == 0  # no spike, no gradient
    assert SpikeCountCrossEntropy.predict(out).tolist() == [0, -1]


def test_mse_builds_target_times_from_labels_or_takes_them():
    out = outputs([[[2e-6], [4e-6]]])
    by_label = SpikeTimeMSE(label_s=1e-6, other_s=6e-6)(out, torch.tensor([1]))
    expected = 0.5 * ((2e-6 - 6e-6) ** 2 + (4e-6 - 1e-6) ** 2)
    assert by_label.item() == pytest.approx(expected)
    given = SpikeTimeMSE(1e-6, 6e-6)(out, torch.tensor([[6e-6, 1e-6]], dtype=torch.float64))
    assert given.item() == pytest.approx(expected)


def test_first_spike_rules_and_silent_trials():
    out = outputs([[[3e-6], [1e-6]], [[INF], [INF]], [[11e-6], [INF]]])
    assert first_spike_prediction(out).tolist() == [1, -1, -1]  # spikes at or after t_max do not count
    loss = FirstSpikeCrossEntropy(tau_0=1e-6, tau_1=10e-6, alpha=0.0)(out, torch.tensor([1, 0, 0]))
    assert loss.dim() == 0 and torch.isfinite(loss)


@pytest.mark.parametrize("value", [torch.ones(3), torch.tensor(1), 1.0])
def test_a_loss_that_is_not_a_scalar_tensor_is_refused(value):
    with pytest.raises(ConfigError, match="allowed: a 0-d"):
        checked(value)


def test_spike_data_from_tensors_and_datasets():
    times = torch.rand(6, 4, 2) * 1e-5
    data = SpikeData.from_tensors(times, [0, 1, 2, 0, 1, 1])
    assert data.n_inputs == 4 and data.n_classes == 3 and data.targets.dtype == torch.int64

    class Items(torch.utils.data.Dataset):
        def __len__(self):
            return 6

        def __getitem__(self, i):
            return times[i], int(data.targets[i])

    again = SpikeData.of(Items())
    assert torch.equal(again.inputs, data.inputs) and torch.equal(again.targets, data.targets)
    timed = SpikeData.of((times, torch.rand(6, 2) * 1e-5))
    assert timed.n_classes == 2 and timed.targets.dtype == torch.float64
    with pytest.raises(ConfigError, match="negative class label"):
        SpikeData.from_tensors(times, [0, -1, 0, 0, 0, 0])
    with pytest.raises(ConfigError, match="6 input samples but targets of shape"):
        SpikeData.from_tensors(times, [0, 1])
    with pytest.raises(ConfigError, match="items must be"):
        SpikeData.of([(times[0], 0), (times[0, :2], 1)])


def test_digits_split_and_encoding():
    pytest.importorskip("sklearn")
    from collections import Counter

    from sklearn.datasets import load_digits

    train, test = builtin("digits", 1437, 360)
    assert (len(train), len(test), train.n_inputs, train.n_classes) == (1437, 360, 65, 10)
    bunch = load_digits()
    available = Counter(
        (image.astype(np.int64).tobytes(), int(label)) for image, label in zip(bunch.data, bunch.target, strict=True)
    )
    used = Counter()
    for data in (train, test):
        times = data.inputs.numpy()
        assert np.all(times[:, 64] == 7e-6)  # the bias input
        # decode by the documented latency code: 16 -> 1 us, 1 -> 12.25 us, blank -> no spike
        pixels = np.where(np.isinf(times[:, :64]), 0, np.rint(16 * (13e-6 - times[:, :64]) / 12e-6)).astype(np.int64)
        used.update((p.tobytes(), int(y)) for p, y in zip(pixels, data.targets, strict=True))
    assert not used - available  # every sample is one of the data set's, with its label, none used twice
    with pytest.raises(ConfigError, match="has 1797 samples"):
        builtin("digits", 1500, 400)
