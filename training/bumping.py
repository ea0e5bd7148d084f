"""Weight bumping (Goltz et al. 2021): revive neurons that get no gradient because they are silent."""

from __future__ import annotations

import torch


@torch.no_grad()
def bump_silent(layers: list[tuple[torch.Tensor, torch.Tensor]], labels: torch.Tensor, bump: float) -> None:
    """Raise weights into silent neurons, in place.

    layers: per layer in order, (weights into it (n_in, n_out), its spike times (batch, n_out, M));
    the last layer is the output. Weights into an output neuron grow by ``bump`` times the
    fraction of the batch in which it is the label's neuron and silent; weights into a
    hidden neuron silent on the whole batch grow by ``bump``.
    """
    for i, (weights, times) in enumerate(layers):
        silent = ~torch.isfinite(times[..., 0].detach())
        if i == len(layers) - 1:
            is_label = torch.nn.functional.one_hot(labels, silent.shape[1]).bool()
            weights += bump * (silent & is_label).to(weights.dtype).mean(dim=0)
        else:
            weights += bump * silent.all(dim=0).to(weights.dtype)
