"""Plots of a training run (PNG, matplotlib Agg): curves, raster, output times, weights."""

from __future__ import annotations

import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

CLASS_NAMES = ("yin", "yang", "dot")


def write_plots(out_dir, net, history: list[dict], output_times: torch.Tensor, test_set, inputs) -> dict[str, str]:
    """Write all plots into ``out_dir``; returns name -> path."""
    out = pathlib.Path(out_dir)
    paths = {
        "curves": _curves(out / "curves.png", history),
        "raster": _raster(out / "raster.png", net, test_set, inputs),
        "output_times": _output_times(out / "output_times.png", output_times, test_set, net.duration_s),
        "weights": _weights(out / "weights.png", net),
    }
    return {k: str(v) for k, v in paths.items()}


def _curves(path, history):
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.5))
    epochs = [m["epoch"] for m in history]
    ax1.plot(epochs, [m["train_accuracy"] for m in history], label="train")
    ax1.plot(epochs, [m["test_accuracy"] for m in history], label="test (device)")
    ax1.set(xlabel="epoch", ylabel="accuracy", ylim=(0, 1))
    ax1.legend()
    ax2.plot(epochs, [m["train_loss"] for m in history], label="train")
    ax2.plot(epochs, [m["test_loss"] for m in history], label="test")
    ax2.set(xlabel="epoch", ylabel="loss")
    ax2.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


@torch.no_grad()
def _raster(path, net, test_set, inputs):
    y = np.asarray(test_set.y)
    index = torch.as_tensor([int(np.flatnonzero(y == k)[0]) for k in range(len(CLASS_NAMES)) if np.any(y == k)])
    x, _ = inputs(test_set, index)
    out = net(x)
    fig, axes = plt.subplots(1, len(index), figsize=(4 * len(index), 3.5), sharey=True)
    for col, ax in enumerate(np.atleast_1d(axes)):
        offset = 0
        for name, times in out.items():
            t = times[col].numpy()
            n, k = np.nonzero(np.isfinite(t))
            ax.scatter(t[n, k] * 1e6, n + offset, s=4, label=name)
            offset += t.shape[0]
        ax.set(
            title=f"test sample, class {CLASS_NAMES[int(y[index[col]])]}",
            xlabel="time (us)",
            xlim=(0, net.duration_s * 1e6),
        )
    np.atleast_1d(axes)[0].set_ylabel("neuron (hidden, then output)")
    np.atleast_1d(axes)[0].legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _output_times(path, output_times, test_set, t_max):
    t = output_times.numpy()
    y = np.asarray(test_set.y)
    fig, axes = plt.subplots(1, t.shape[1], figsize=(4 * t.shape[1], 3), sharey=True)
    bins = np.linspace(0, t_max * 1e6, 40)
    for k, ax in enumerate(np.atleast_1d(axes)):
        for c in range(t.shape[1]):
            v = t[y == c, k]
            ax.hist(
                np.clip(v[np.isfinite(v)] * 1e6, 0, t_max * 1e6), bins=bins, alpha=0.5, label=f"class {CLASS_NAMES[c]}"
            )
        ax.set(title=f"output neuron {CLASS_NAMES[k]}: first spike", xlabel="time (us)")
    np.atleast_1d(axes)[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _weights(path, net):
    eff = net.effective_weights()
    fig, axes = plt.subplots(1, len(eff), figsize=(4 * len(eff), 3))
    for ax, (name, (_, hw)) in zip(np.atleast_1d(axes), eff.items()):
        ax.hist(hw.ravel(), bins=np.arange(-63.5, 64.5, 2))
        ax.set(title=f"hardware weights into {name}", xlabel="signed 6-bit weight")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
