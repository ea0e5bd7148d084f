"""EventProp LIF layers: forward (inference, no autograd bookkeeping) and forward+backward
(training step) throughput of a 5-120-3 network."""

from __future__ import annotations

import torch
from bench import case

from training.lif import LIFParameters, spike_times

REFERENCE = {  # jaxsnn 0.3.0, 2 cores, samples/s
    "float32": {"forward": 6700, "forward_backward": 4200},
    "float64": {"forward": 3600, "forward_backward": 3400},
}
T_MAX = 60e-6


def _network(dtype, batch, seed=0):
    """Yin-Yang-like inputs (4 features + bias) and weights that make every neuron spike."""
    g = torch.Generator().manual_seed(seed)
    features = torch.rand(batch, 4, generator=g, dtype=dtype)
    inputs = torch.cat([1e-6 + 12e-6 * features, torch.full((batch, 1), 7e-6, dtype=dtype)], dim=1)
    w1 = (torch.randn(5, 120, generator=g, dtype=dtype) * 0.3 + 3.0).requires_grad_()
    w2 = (torch.randn(120, 3, generator=g, dtype=dtype) * 0.05 + 0.15).requires_grad_()
    return inputs, w1, w2


def _measure(bench, params, dtype, batch, label):
    inputs, w1, w2 = _network(dtype, batch)

    def forward():
        hidden = spike_times(inputs, w1, params, t_max=T_MAX).times
        return hidden, spike_times(hidden, w2, params, t_max=T_MAX).times

    def inference():
        with torch.no_grad():
            return forward()

    def forward_backward():
        hidden, out = forward()
        torch.where(torch.isfinite(out), out, torch.zeros_like(out)).sum().backward()

    hidden, out = inference()
    t_fwd = bench.time(inference, label=f"{label}.forward")
    t_fb = bench.time(forward_backward, label=f"{label}.forward_backward")
    return {
        "forward_samples_per_s": batch / t_fwd,
        "forward_backward_samples_per_s": batch / t_fb,
        "backward_over_forward_time": (t_fb - t_fwd) / t_fwd,
        "hidden_spiking_fraction": float(torch.isfinite(hidden).double().mean()),
        "output_spiking_fraction": float(torch.isfinite(out).double().mean()),
    }


@case("eventprop.yinyang")
def yinyang(bench):
    torch.set_num_threads(2)
    batch = 200 if bench.quick else 1000
    figures = {"batch": batch, "threads": 2, "network": "5-120-3, max_spikes=1", "reference_jaxsnn_0.3.0": REFERENCE}
    for dtype in (torch.float32, torch.float64):
        name = str(dtype).removeprefix("torch.")
        closed = _measure(bench, LIFParameters(tau_mem=12e-6, tau_syn=6e-6), dtype, batch, f"{name}.ratio2")
        closed["speedup_forward_vs_reference"] = closed["forward_samples_per_s"] / REFERENCE[name]["forward"]
        closed["speedup_forward_backward_vs_reference"] = (
            closed["forward_backward_samples_per_s"] / REFERENCE[name]["forward_backward"]
        )
        figures[f"{name}.tau_ratio_2"] = closed
        figures[f"{name}.tau_ratio_1.37"] = _measure(
            bench, LIFParameters(tau_mem=12e-6, tau_syn=12e-6 / 1.37), dtype, batch, f"{name}.ratio1.37"
        )
    return figures
