"""Parameter and input validation, losses, and the Yin-Yang data set."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from training.data import SpikeEncoding, YinYang, yin_yang_class
from training.lif import LIFParameters, replay_spike_times, spike_times
from training.losses import first_spike_cross_entropy, predict, spike_time_mse


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"tau_mem": -1e-6, "tau_syn": 5e-6}, "tau_mem"),
        ({"tau_mem": 1e-5, "tau_syn": 0.0}, "tau_syn"),
        ({"tau_mem": math.nan, "tau_syn": 5e-6}, "tau_mem"),
        ({"tau_mem": 1e-5, "tau_syn": 5e-6, "v_th": math.inf}, "v_th"),
        ({"tau_mem": 1e-5, "tau_syn": 5e-6, "v_reset": 1.0}, "v_reset"),
        ({"tau_mem": 1e-5, "tau_syn": 5e-6, "v_leak": 1.5}, "v_leak"),
        ({"tau_mem": 1e-5, "tau_syn": 5e-6, "t_refrac": -1e-6}, "t_refrac"),
        ({"tau_mem": torch.full((3,), 1e-5), "tau_syn": torch.full((2,), 5e-6)}, "lengths"),
        ({"tau_mem": torch.full((2, 2), 1e-5), "tau_syn": 5e-6}, "tau_mem"),
    ],
)
def test_invalid_parameters(kwargs, field):
    with pytest.raises(ValueError, match=field):
        LIFParameters(**kwargs)


def test_parameter_vector_must_match_layer():
    params = LIFParameters(tau_mem=torch.full((3,), 1e-5), tau_syn=5e-6)
    with pytest.raises(ValueError, match="tau_mem"):
        spike_times(torch.zeros(1, 2, dtype=torch.float64), torch.ones(2, 4, dtype=torch.float64), params, t_max=1e-5)


@pytest.mark.parametrize(
    "input_times, weights, t_max, match",
    [
        (torch.tensor([[math.nan, 1e-6]]), torch.ones(2, 3), 1e-5, "NaN"),
        (torch.tensor([[-1e-6, 1e-6]]), torch.ones(2, 3), 1e-5, "negative"),
        (torch.zeros(1, 3), torch.ones(2, 3), 1e-5, "shape"),
        (torch.zeros(1, 2, dtype=torch.float64), torch.ones(2, 3), 1e-5, "dtype"),
        (torch.zeros(1, 2), torch.ones(2, 3), math.inf, "t_max"),
        (torch.zeros(1, 2), torch.tensor([[1.0, math.nan, 0.0]] * 2), 1e-5, "weights"),
    ],
)
def test_invalid_inputs(input_times, weights, t_max, match):
    with pytest.raises(ValueError, match=match):
        spike_times(input_times, weights, LIFParameters(tau_mem=1e-5, tau_syn=5e-6), t_max=t_max)


def test_invalid_replay_inputs():
    params = LIFParameters(tau_mem=1e-5, tau_syn=5e-6)
    with pytest.raises(ValueError, match="measured_times"):
        replay_spike_times(torch.zeros(1, 2), torch.ones(2, 3), params, torch.zeros(1, 2, 1), t_max=1e-5)
    with pytest.raises(ValueError, match="drive_floor"):
        replay_spike_times(
            torch.zeros(1, 2), torch.ones(2, 3), params, torch.zeros(1, 3, 1), t_max=1e-5, drive_floor=0.0
        )
    with pytest.raises(ValueError, match="max_spikes"):
        spike_times(torch.zeros(1, 2), torch.ones(2, 3), params, t_max=1e-5, max_spikes=0)


def test_cross_entropy_value_and_silent_clamp():
    times = torch.tensor([[1e-6, 2e-6, math.inf], [3e-6, 1e-6, 2e-6]], dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([0, 2])
    loss = first_spike_cross_entropy(times, labels, tau_0=1e-6, t_max=10e-6)
    clamped = torch.tensor([[1.0, 2.0, 10.0], [3.0, 1.0, 2.0]], dtype=torch.float64)
    expected = -torch.log_softmax(-clamped, dim=1)[[0, 1], [0, 2]].mean()
    assert torch.allclose(loss, expected)
    loss.backward()
    assert torch.isfinite(times.grad).all() and times.grad[0, 2] == 0
    assert times.grad[0, 0] > 0 and times.grad[0, 1] < 0  # descent: label earlier, others later


def test_cross_entropy_regulariser_and_multi_spike_input():
    times = torch.tensor([[[1e-6, 5e-6], [2e-6, math.inf]]], dtype=torch.float64)
    labels = torch.tensor([1])
    base = first_spike_cross_entropy(times, labels, tau_0=1e-6, t_max=10e-6)
    reg = first_spike_cross_entropy(times, labels, tau_0=1e-6, t_max=10e-6, alpha=0.1, tau_1=4e-6)
    assert torch.allclose(reg - base, torch.tensor(0.1 * math.expm1(0.5), dtype=torch.float64))
    with pytest.raises(ValueError, match="tau_1"):
        first_spike_cross_entropy(times, labels, tau_0=1e-6, t_max=10e-6, alpha=0.1)


def test_spike_time_mse_and_predict():
    times = torch.tensor([[1e-6, math.inf], [4e-6, 2e-6]], dtype=torch.float64, requires_grad=True)
    targets = torch.tensor([[2e-6, 6e-6], [4e-6, 1e-6]], dtype=torch.float64)
    loss = spike_time_mse(times, targets, t_max=5e-6)
    assert torch.allclose(loss, torch.tensor(0.5 * ((1e-6**2 + 1e-6**2) + 1e-6**2) / 2, dtype=torch.float64))
    loss.backward()
    assert times.grad[0, 1] == 0
    assert predict(times, 5e-6).tolist() == [0, 1]


def test_yin_yang_balanced_deterministic_and_consistent():
    data = YinYang(600, seed=5)
    assert data.x.shape == (600, 4) and data.y.dtype == torch.int64
    assert np.bincount(data.y_np).tolist() == [200, 200, 200]
    assert np.allclose(data.x_np[:, 2:], 1 - data.x_np[:, :2])
    xy = data.x_np[:, :2]
    assert (np.hypot(xy[:, 0] - 0.5, xy[:, 1] - 0.5) <= 0.5).all()
    assert (yin_yang_class(xy[:, 0], xy[:, 1]) == data.y_np).all()
    again = YinYang(600, seed=5)
    assert np.array_equal(again.x_np, data.x_np) and np.array_equal(again.y_np, data.y_np)
    assert not np.array_equal(YinYang(600, seed=6).x_np, data.x_np)


def test_yin_yang_geometry_and_splits():
    assert yin_yang_class(np.array([0.25, 0.75, 0.5, 0.5]), np.array([0.5, 0.5, 0.9, 0.1])).tolist() == [2, 2, 0, 1]
    train, test = YinYang.train(), YinYang.test()
    assert len(train) == 5000 and len(test) == 1000
    assert not np.array_equal(train.x_np[:1000], test.x_np)


@pytest.mark.parametrize("size, seed", [(math.nan, 0), (2, 0), (10, -1), (10, math.nan)])
def test_yin_yang_invalid(size, seed):
    with pytest.raises(ValueError):
        YinYang(size, seed)


def test_encoding():
    encode = SpikeEncoding(t_early=1e-6, t_late=3e-6, t_bias=2e-6)
    times = encode(torch.tensor([[0.0, 1.0, 0.5, 0.25]], dtype=torch.float64))
    assert torch.allclose(times, torch.tensor([[1e-6, 3e-6, 2e-6, 1.5e-6, 2e-6]], dtype=torch.float64))
    with pytest.raises(ValueError):
        encode(torch.tensor([[math.nan, 0.0, 0.0, 0.0]]))
    with pytest.raises(ValueError, match="t_late"):
        SpikeEncoding(t_early=2e-6, t_late=1e-6)
