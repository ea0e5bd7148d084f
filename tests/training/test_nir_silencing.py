"""training.nir.silencing: the membrane kernel and the self-inhibition bound, checked with the exact model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from training.lif import LIFParameters, spike_times
from training.nir.silencing import psp, silencing_weights

T_MAX = 60e-6


@pytest.mark.parametrize(("tau_mem", "tau_syn"), [(12e-6, 6e-6), (6e-6, 12e-6), (9e-6, 9e-6), (10e-6, 10.0001e-6)])
def test_psp_solves_the_membrane_equation(tau_mem, tau_syn):
    """Against the textbook solution (equal constants: (s/tau) exp(-s/tau)) and the ODE by finite differences."""
    s = np.linspace(0, 50e-6, 2001)
    u = psp(s, tau_mem, tau_syn)
    if tau_mem == tau_syn:
        expected = s / tau_mem * np.exp(-s / tau_mem)
    else:
        expected = tau_syn / (tau_syn - tau_mem) * (np.exp(-s / tau_syn) - np.exp(-s / tau_mem))
    np.testing.assert_allclose(u, expected, rtol=1e-6, atol=1e-12)
    du = np.gradient(u, s)
    np.testing.assert_allclose(tau_mem * du[1:-1], (-u + np.exp(-s / tau_syn))[1:-1], atol=2e-4)


def neurons_of(params: LIFParameters, n: int) -> dict:
    return {
        f: torch.as_tensor(getattr(params, f), dtype=torch.float64).expand(n).numpy().copy()
        for f in ("tau_mem", "tau_syn", "v_th", "v_leak", "v_reset")
    }


def test_bound_is_the_maximum_of_g_over_kappa_from_above_and_tight():
    rng = np.random.default_rng(np.random.SeedSequence(3))
    n = 5
    weights = rng.uniform(0.2, 1.5, (6, n))
    neurons = {
        "tau_mem": rng.uniform(5e-6, 20e-6, n),
        "tau_syn": rng.uniform(2e-6, 10e-6, n),
        "v_th": np.ones(n),
        "v_leak": np.zeros(n),
        "v_reset": rng.uniform(-0.5, 0.5, n),
    }
    bound = silencing_weights(weights, neurons, t_max=T_MAX, pre_spikes=2)
    s = np.linspace(T_MAX * 1e-6, T_MAX, 400_001)[:, None]
    i_bar = 2 * weights.sum(0)
    g = neurons["v_reset"] * np.exp(-s / neurons["tau_mem"]) + i_bar * (1 - np.exp(-s / neurons["tau_mem"])) - 1
    fine = (g / psp(s, neurons["tau_mem"], neurons["tau_syn"])).max(0)
    assert (bound >= fine).all()
    assert (bound <= 1.01 * fine).all()


def first_and_second_spikes(inputs, weights, params, inhibition, t_first):
    """Spikes (batch, n, 2) of each neuron whose own first spike (t_first) adds an input of weight -inhibition."""
    out = []
    for j in range(weights.shape[1]):
        own = torch.where(torch.isfinite(t_first[:, j]), t_first[:, j] + 1e-12, torch.inf)
        x = torch.cat([inputs, own[:, None, None].expand(-1, 1, inputs.shape[2])], dim=1)
        x[:, -1, 1:] = torch.inf
        w = torch.cat([weights[:, j], torch.tensor([-inhibition[j]], dtype=torch.float64)])[:, None]
        p = LIFParameters(**{f: getattr(params, f)[j] for f in ("tau_mem", "tau_syn", "v_th", "v_leak", "v_reset")})
        out.append(spike_times(x, w, p, t_max=T_MAX, max_spikes=2).times[:, 0])
    return torch.stack(out, dim=1)


def test_the_bound_silences_every_neuron_for_the_rest_of_the_trial():
    """Exact event-based model of the graph's dynamics (the self-inhibition as an input at the neuron's own
    first spike): strong inputs keep arriving after the first spike, two spikes per input."""
    rng = np.random.default_rng(np.random.SeedSequence(11))
    n, n_in, batch = 8, 10, 400
    weights = torch.as_tensor(rng.uniform(-0.5, 2.0, (n_in, n)))
    params = LIFParameters(
        tau_mem=torch.as_tensor(rng.uniform(5e-6, 20e-6, n)),
        tau_syn=torch.as_tensor(rng.uniform(2e-6, 10e-6, n)),
        v_th=torch.ones(n, dtype=torch.float64),
        v_leak=torch.zeros(n, dtype=torch.float64),
        v_reset=torch.as_tensor(rng.uniform(-0.5, 0.5, n)),
    )
    g = torch.Generator().manual_seed(5)
    inputs = torch.rand(batch, n_in, 2, generator=g, dtype=torch.float64) * T_MAX
    free = spike_times(inputs, weights, params, t_max=T_MAX, max_spikes=1)
    assert free.n_overflow > batch, "the inputs must make neurons fire again without the inhibition"
    bound = silencing_weights(weights.numpy(), neurons_of(params, n), t_max=T_MAX, pre_spikes=2)
    silenced = first_and_second_spikes(inputs, weights, params, bound, free.times[..., 0])
    torch.testing.assert_close(silenced[..., 0], free.times[..., 0], rtol=1e-9, atol=0)
    assert not torch.isfinite(silenced[..., 1]).any()
    weak = first_and_second_spikes(inputs, weights, params, bound / 20, free.times[..., 0])
    assert torch.isfinite(weak[..., 1]).any(), "a twentieth of the bound lets some neuron fire again"
