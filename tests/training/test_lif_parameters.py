"""LIFParameters: typed validation errors and per-neuron selection."""

from __future__ import annotations

import pytest
import torch

from hil.errors import ConfigError
from training.lif import LIFParameters, spike_times

from .conftest import random_layer


def test_validation_errors_are_config_errors():
    with pytest.raises(ConfigError, match="tau_syn") as info:
        LIFParameters(tau_mem=1e-5, tau_syn=-1.0)
    assert isinstance(info.value, ValueError)  # callers catching ValueError keep working


def test_select_indexes_vectors_and_keeps_scalars():
    tau = torch.arange(1, 9, dtype=torch.float64) * 1e-6
    reset = -torch.arange(8, dtype=torch.float32) / 10
    params = LIFParameters(tau_mem=tau, tau_syn=5e-6, v_reset=reset, t_refrac=1e-6)
    chosen = params.select([6, 1, 1])
    assert chosen.n_neurons == 3
    assert torch.equal(torch.as_tensor(chosen.tau_mem), tau[[6, 1, 1]])
    assert torch.equal(torch.as_tensor(chosen.v_reset), reset[[6, 1, 1]])
    assert chosen.tau_syn == 5e-6 and chosen.t_refrac == 1e-6 and chosen.v_th == 1.0
    masked = params.select(torch.arange(8) % 3 == 0)
    assert torch.equal(torch.as_tensor(masked.tau_mem), tau[[0, 3, 6]])
    assert LIFParameters(tau_mem=1e-5, tau_syn=5e-6).select([0, 5]).n_neurons is None


def test_selected_neurons_spike_as_in_the_full_layer():
    n = 6
    params = LIFParameters(
        tau_mem=torch.linspace(8e-6, 14e-6, n, dtype=torch.float64),
        tau_syn=5e-6,
        v_reset=torch.linspace(-0.4, 0.1, n, dtype=torch.float64),
        t_refrac=torch.linspace(0, 2e-6, n, dtype=torch.float64),
    )
    input_times, weights = random_layer(1, n_out=n, batch=4)
    full = spike_times(input_times, weights, params, t_max=40e-6, max_spikes=4).times
    index = [4, 0, 2]
    part = spike_times(input_times, weights[:, index], params.select(index), t_max=40e-6, max_spikes=4).times
    assert torch.isfinite(part).sum() >= 6
    assert torch.equal(part, full[:, index])


@pytest.mark.parametrize(
    "index, match",
    [([0, 8], r"\[0, 7\]"), ([-1], r"\[0, 7\]"), ([True] * 3, "mask has 3"), ([[0, 1]], "1-D"), ([0.5], "integer")],
)
def test_select_rejects_bad_indices(index, match):
    params = LIFParameters(tau_mem=torch.full((8,), 1e-5), tau_syn=5e-6)
    with pytest.raises(ConfigError, match=match):
        params.select(index)
