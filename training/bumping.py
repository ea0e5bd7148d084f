"""Silent neurons: weight bumping (Goltz et al. 2021) revives them, and the silent-label mask keeps
the loss of samples whose label neuron is silent from pushing the other output neurons silent too."""

from __future__ import annotations

import torch


@torch.no_grad()
def bump_silent(
    layers: list[tuple[torch.Tensor, torch.Tensor]], labels: torch.Tensor, bump: float, copies: int = 1
) -> None:
    """Raise weights into silent neurons, in place.

    layers: per layer in order, (weights into it (n_in, n_out), its spike times (batch, n_out, M));
    the last layer is the output. Weights into an output neuron grow by ``bump`` times the
    fraction of the batch in which it is the label's neuron and silent (with ``copies`` output
    neurons per class, class-major: each copy of the label's class); weights into a hidden
    neuron silent on the whole batch grow by ``bump``.
    """
    for i, (weights, times) in enumerate(layers):
        silent = ~torch.isfinite(times[..., 0].detach())
        if i == len(layers) - 1:
            is_label = label_neurons(labels, silent.shape[1], copies)
            weights += bump * (silent & is_label).to(weights.dtype).mean(dim=0)
        else:
            weights += bump * silent.all(dim=0).to(weights.dtype)


def label_neurons(labels: torch.Tensor, n_out: int, copies: int = 1) -> torch.Tensor:
    """(batch, n_out) bool: the output neurons of each sample's label, ``copies`` per class, class-major."""
    return torch.nn.functional.one_hot(labels, n_out // copies).bool().repeat_interleave(copies, dim=1)


def label_silent(output_times: torch.Tensor, labels: torch.Tensor, t_max: float, copies: int = 1) -> torch.Tensor:
    """(batch,) bool: no output neuron of the label's class has a spike before ``t_max``.

    output_times (batch, n_out, M) in seconds (inf where none), ``copies`` neurons per class
    (class-major); labels (batch,) int64.
    """
    spiked = output_times[..., 0].detach() < t_max
    return ~(spiked & label_neurons(labels, spiked.shape[1], copies)).any(dim=1)


def mask_silent_labels(times: dict, labels: torch.Tensor, t_max: float, copies: int = 1) -> dict:
    """``times`` (layer name -> (batch, n, M)) with every layer's times detached in the samples whose
    label neuron is silent (every copy of it, ``copies`` per class), so those samples add to the
    loss value but nothing to the gradient.

    Why: with the label's spike clamped to ``t_max`` the cross-entropy of such a sample has no
    gradient toward its label neuron, only a full-strength push (1 / tau_0 per sample) delaying
    every other output neuron. Those pushes silence more output neurons, which makes more
    label-silent samples: the loss jumps of issue 19. Weight bumping revives the label neuron.
    """
    mask = label_silent(times["output"], labels, t_max, copies)
    if not bool(mask.any()):
        return times
    rows = mask.view(-1, 1, 1)
    return {name: torch.where(rows, t.detach(), t) for name, t in times.items()}
