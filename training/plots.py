"""Plots of a training run (PNG through matplotlib's ``Figure``, no pyplot state): learning curves, a spike
raster, output times, weights."""

from __future__ import annotations

import math
import pathlib

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

CLASS_NAMES = {"yinyang": ("yin", "yang", "dot"), "digits": tuple(str(d) for d in range(10))}


def class_names(dataset: str, n: int) -> list[str]:
    names = CLASS_NAMES.get(dataset, ())
    return list(names) if len(names) == n else [f"class {k}" for k in range(n)]


def write_plots(out_dir, loop, history: list[dict], output_times: torch.Tensor) -> dict[str, str]:
    """Write all plots into ``out_dir`` for the loop's network and test data; returns name -> path."""
    out = pathlib.Path(out_dir)
    names = class_names(loop.config.dataset, loop.network.chain[-1].size)
    averaged = loop.config.ema_decay > 0
    paths = {
        "curves": _curves(out / "curves.png", history, 1 / len(names), averaged),
        "raster": _raster(out / "raster.png", loop, names),
        "output_times": _output_times(
            out / "output_times.png", output_times, loop.test, names, loop.network.duration_s
        ),
        "weights": _weights(out / "weights.png", loop.network),
    }
    return {k: str(v) for k, v in paths.items()}


def _figure(nrows=1, ncols=1, **kw):
    fig = Figure(figsize=kw.pop("figsize"))
    return fig, fig.subplots(nrows, ncols, **kw)


def _save(fig, path):
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


def _curves(path, history, chance: float, averaged: bool):
    fig, (ax1, ax2) = _figure(1, 2, figsize=(9, 3.5))
    epochs = [m["epoch"] for m in history]
    test = "test (moving average of the weights)" if averaged else "test"
    ax1.plot(epochs, [m["train_accuracy"] for m in history], "o-", label="train (during the epoch)")
    ax1.plot(epochs, [m["test_accuracy"] for m in history], "s-", label=test)
    ax1.axhline(chance, color="grey", linestyle=":", label=f"chance ({chance:.0%})")
    ax1.set(xlabel="epoch", ylabel="accuracy", ylim=(0, 1), title="accuracy")
    ax2.plot(epochs, [m["train_loss"] for m in history], "o-", label="train")
    ax2.plot(epochs, [m["test_loss"] for m in history], "s-", label=test)
    ax2.set(xlabel="epoch", ylabel="loss", title="loss")
    for ax in (ax1, ax2):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlim(0.5, max(epochs, default=1) + 0.5)
        ax.legend(fontsize=7)
    return _save(fig, path)


@torch.no_grad()
def _raster(path, loop, names):
    data, net = loop.test, loop.network
    labels = data.targets if data.targets.dim() == 1 else data.targets.argmin(dim=1)
    index = torch.as_tensor(
        [int(torch.nonzero(labels == k)[0]) for k in range(len(names)) if bool((labels == k).any())]
    )
    index = index[:4]
    x, _ = loop.batch(data, index)
    times, _ = net(x)
    fig, axes = _figure(1, len(index), figsize=(4 * len(index), 3.5), sharey=True, squeeze=False)
    for col, ax in enumerate(axes[0]):
        offset = 0
        for layer in net.chain:
            t = times[layer.name][col].numpy()
            n, k = np.nonzero(np.isfinite(t))
            ax.scatter(t[n, k] * 1e6, n + offset, s=4, label=layer.title)
            offset += t.shape[0]
        ax.set(
            title=f"test sample of class {names[int(labels[index[col]])]}",
            xlabel="time (us)",
            xlim=(0, net.duration_s * 1e6),
        )
    axes[0, 0].set_ylabel("neuron (hidden layers, then output)")
    axes[0, 0].legend(loc="upper right", fontsize=7)
    return _save(fig, path)


def _output_times(path, output_times, data, names, t_max):
    t = output_times.numpy()
    labels = (data.targets if data.targets.dim() == 1 else data.targets.argmin(dim=1)).numpy()
    n = t.shape[1]
    cols = min(n, 5)
    fig, axes = _figure(math.ceil(n / cols), cols, figsize=(3.6 * cols, 3 * math.ceil(n / cols)), squeeze=False)
    bins = np.linspace(0, t_max * 1e6, 40)
    for k, ax in enumerate(axes.ravel()):
        if k >= n:
            ax.axis("off")
            continue
        for c in range(n):
            v = t[labels == c, k]
            if v.size:
                ax.hist(v[np.isfinite(v)] * 1e6, bins=bins, alpha=0.5, label=f"samples of {names[c]}")
        silent = int((~np.isfinite(t[:, k])).sum())
        ax.set(title=f"output neuron {names[k]}: first spike", xlabel="time (us)", ylabel="test samples")
        ax.text(
            0.98,
            0.95,
            f"silent in {silent} of {len(t)} samples (not shown)",
            transform=ax.transAxes,
            ha="right",
            va="top",
            fontsize=7,
        )
    if n <= 5:
        axes[0, 0].legend(fontsize=7, loc="center right")
    return _save(fig, path)


def _weights(path, net):
    eff = net.effective_weights()
    fig, axes = _figure(1, len(eff), figsize=(4 * len(eff), 3), squeeze=False)
    titles = {layer.name: layer.title for layer in net.chain}
    for ax, (name, (w, hw)) in zip(axes[0], eff.items(), strict=True):
        if hw is not None:
            ax.hist(hw.ravel(), bins=np.arange(-63.5, 64.5, 2))
            ax.set(xlabel="signed 6-bit hardware weight")
        else:
            ax.hist(w.detach().numpy().ravel(), bins=40)
            ax.set(xlabel="weight (threshold distances)")
        ax.set(title=f"weights into the {titles[name]}", ylabel="synapses")
    return _save(fig, path)
