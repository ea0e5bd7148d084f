"""An independent NIR consumer (snnTorch 1.0's importer on nirtorch 2.6) reproduces an exported Yin-Yang network.

The network is trained here (a few epochs of Adam on first-spike cross-entropy with the exact
model, one spike per neuron), exported with ``training.nir``, written and read back, put into
snnTorch's conventions (below, from snnTorch's source) and simulated on a 20 ns grid.
"""

from __future__ import annotations

import contextlib
import copy

import nir
import numpy as np
import pytest
import torch
from snntorch.import_nir import import_from_nir

from training.data import SpikeEncoding, YinYang
from training.lif import LIFParameters, spike_times
from training.nir import Layer, export_network, import_network, read, write

T_MAX = 60e-6
PARAMS = LIFParameters(tau_mem=12e-6, tau_syn=6e-6)
GRID = 20e-9  # the consumer's time step in our seconds
SNNTORCH_DT = 1e-4  # snntorch.import_nir hard-codes dt = 1e-4 for CubaLIF


@contextlib.contextmanager
def threads(n: int):
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def first_spike(times: torch.Tensor, t_max: float = T_MAX) -> torch.Tensor:
    """First spike (batch, n) of times (batch, n[, k]); t_max for none (so silent neurons tie last)."""
    first = times[..., 0] if times.dim() == 3 else times
    return torch.where(first < t_max, first, torch.full_like(first, t_max))


def train_yinyang(seed: int = 0, epochs: int = 3) -> list[np.ndarray]:
    """5-120-3 weights after ``epochs`` of Adam (lr 2e-3, batch 32) on first-spike cross-entropy
    (tau_0 0.5 us, late-spike penalty 3e-3 (exp(t/60 us) - 1)); silent neurons get a weight bump."""
    g = torch.Generator().manual_seed(seed)
    w = [
        (torch.randn(5, 120, generator=g, dtype=torch.float64) * 1.5 + 1.5).requires_grad_(),
        (torch.randn(120, 3, generator=g, dtype=torch.float64) * 0.1 + 0.1).requires_grad_(),
    ]
    data = YinYang.train()
    x = SpikeEncoding()(data.x)
    optimiser = torch.optim.Adam(w, lr=2e-3)
    for _ in range(epochs):
        for batch in torch.randperm(len(data), generator=g).split(32):
            labels = data.y[batch]
            hidden = spike_times(x[batch], w[0], PARAMS, t_max=T_MAX).times
            first = first_spike(spike_times(hidden, w[1], PARAMS, t_max=T_MAX).times)
            late = torch.expm1(first.gather(1, labels[:, None]) / T_MAX).mean()
            loss = torch.nn.functional.cross_entropy(-first / 0.5e-6, labels) + 3e-3 * late
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            with torch.no_grad():  # silent neurons get no gradient: raise their input weights
                for j in range(3):
                    own = labels == j
                    if own.any():
                        w[1][:, j] += 2e-2 * (first[own, j] >= T_MAX).double().mean()
                w[0][:, ~torch.isfinite(hidden[..., 0]).any(0)] += 2e-2
    return [v.detach().numpy().copy() for v in w]


def for_snntorch(graph: nir.NIRGraph, grid: float) -> nir.NIRGraph:
    """The same network in snnTorch 1.0's conventions, one snnTorch step = ``grid`` of our seconds.

    snnTorch maps CubaLIF to ``Synaptic``: syn <- (1 - dt/tau_syn) syn + W x, mem <- (1 - dt/tau_mem)
    mem + syn, spike if mem > v_threshold / (w_in dt / tau_syn), reset to 0, with dt = 1e-4 and
    asserts r = tau_mem / dt, v_leak = 0. With syn = our current I (so W unchanged) and
    mem = (V - v_leak) tau_mem / grid this is Euler's method for our model when every time is
    scaled by dt / grid, r = tau_mem / grid and w_in = tau_syn / tau_mem.
    """
    graph = copy.deepcopy(graph)
    scale = SNNTORCH_DT / grid
    for node in graph.nodes.values():
        if isinstance(node, nir.CubaLIF):
            assert np.array_equal(node.r, np.ones_like(node.r)) and np.array_equal(node.w_in, np.ones_like(node.w_in))
            node.v_threshold, node.v_reset = node.v_threshold - node.v_leak, node.v_reset - node.v_leak
            node.v_leak = np.zeros_like(node.v_leak)
            node.r, node.w_in = node.tau_mem / grid, node.tau_syn / node.tau_mem
            node.tau_mem, node.tau_syn = node.tau_mem * scale, node.tau_syn * scale
    return graph


def simulate(graph: nir.NIRGraph, inputs: torch.Tensor, grid: float, t_max: float = T_MAX) -> torch.Tensor:
    """First output spike times (batch, n_out) in seconds (inf: none) from snnTorch, inputs (batch, n_in),
    over a trial of ``t_max`` seconds."""
    module = import_from_nir(for_snntorch(graph, grid))
    steps = torch.round(inputs / grid).long()
    first = None
    state = None
    with torch.no_grad(), threads(1):
        for step in range(int(round(t_max / grid))):
            out, state = module((steps == step).float(), state)
            if first is None:
                first = torch.full(out.shape, torch.inf, dtype=torch.float64)
            first[(out > 0) & torch.isinf(first)] = step * grid
    return first


def without_silencing(graph: nir.NIRGraph) -> nir.NIRGraph:
    """The plain CubaLIF export: the same graph without the self-inhibition loops."""
    keep = {k: v for k, v in graph.nodes.items() if not k.endswith((".silence", ".feedback"))}
    edges = [e for e in graph.edges if e[0] in keep and e[1] in keep]
    return nir.NIRGraph(nodes=keep, edges=edges, metadata=graph.metadata)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    weights = train_yinyang()
    layers = [Layer("hidden", weights[0], PARAMS), Layer("out", weights[1], PARAMS)]
    graph = export_network(layers, input_size=5, metadata={"chip_id": "software"}, t_max=T_MAX)
    return layers, read(write(tmp_path_factory.mktemp("nir") / "yinyang.nir", graph))


@pytest.mark.slow  # about 30 s on an idle machine (training, two 3000-step simulations)
def test_snntorch_predicts_the_class_of_the_exact_model_on_97_percent_of_test_samples(exported):
    layers, graph = exported
    test = YinYang.test()
    inputs = SpikeEncoding()(test.x)
    hidden = spike_times(inputs, torch.as_tensor(layers[0].weights), PARAMS, t_max=T_MAX)
    ours = first_spike(spike_times(hidden.times, torch.as_tensor(layers[1].weights), PARAMS, t_max=T_MAX).times)
    # The network is trained, and truncating to one spike matters: many hidden neurons would fire again.
    assert float((ours.argmin(1) == test.y).double().mean()) > 0.85
    assert hidden.n_overflow > 0.3 * hidden.overflow.numel()
    agree = float((first_spike(simulate(graph, inputs, GRID)).argmin(1) == ours.argmin(1)).double().mean())
    assert agree >= 0.97
    # Without the self-inhibition the consumer lets hidden neurons fire again and disagrees far more often.
    part = slice(0, 300)
    plain = first_spike(simulate(without_silencing(graph), inputs[part], GRID)).argmin(1)
    assert float((plain == ours[part].argmin(1)).double().mean()) < 0.9
    # And the file imports back to the very same network.
    back = import_network(graph)
    assert all(np.array_equal(a.weights, b.weights) for a, b in zip(layers, back.layers, strict=True))
