"""Figures of a calibration (matplotlib, imported only when a figure is drawn).

- :func:`parameter_figure`: one parameter, two panels with their own bins: the spread at the
  uniform start codes and the calibrated spread, each annotated (chip, calibration id,
  mean +- std, target, flagged neurons).
- :func:`overview_figure`: every parameter before and after on one shared axis: the spread
  uniform codes leave (around its median) and the calibrated spread (around the target), in %
  (potentials in % of the threshold distance, the model's unit).
- :func:`write_figures`: all of them as PNG files into a directory.
"""

from __future__ import annotations

import pathlib

import numpy as np

from .target import PARAMETERS, UNITS

LABELS = {
    "v_leak": "leak potential",
    "v_reset": "reset potential",
    "v_threshold": "threshold",
    "tau_mem": "membrane time constant",
    "tau_syn_exc": "exc. synaptic time constant",
    "tau_syn_inh": "inh. synaptic time constant",
    "refractory": "refractory time",
    "weight_gain_exc": "exc. weight gain",
    "weight_gain_inh": "inh. weight gain",
}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _scale(p: str):
    """Display factor and unit of parameter ``p`` (times in us)."""
    return (1e6, "us") if UNITS[p] == "s" else (1.0, UNITS[p])


def _finite(x) -> np.ndarray:
    x = np.asarray(x, np.float64)
    return x[np.isfinite(x)]


def _panel(ax, values, target, title, colour, unit):
    """Histogram with bins of its own, the target line and a mean +- std box."""
    ax.set_title(title, fontsize=9)
    if values.size == 0:
        ax.text(0.5, 0.5, "no values", transform=ax.transAxes, ha="center")
        return
    lo, hi = float(values.min()), float(values.max())
    pad = max(hi - lo, 1e-9 * max(abs(lo), 1.0)) * 0.05
    ax.hist(values, bins=np.linspace(lo - pad, hi + pad, 40), color=colour, alpha=0.8)
    ax.axvline(target, color="k", ls="--", lw=1, label=f"target {target:.4g}")
    ax.text(
        0.02,
        0.97,
        f"mean {values.mean():.4g} {unit}\nstd {values.std():.3g} {unit} "
        f"({100 * values.std() / abs(values.mean()):.2f} %)\nn = {values.size}",
        transform=ax.transAxes,
        va="top",
        fontsize=7,
        bbox={"boxstyle": "round", "fc": "white", "alpha": 0.8},
    )
    ax.set_xlabel(f"{unit}")
    ax.legend(fontsize=7, loc="upper right")


def parameter_figure(result, p: str):
    """The before/after figure of parameter ``p`` (a matplotlib Figure)."""
    plt = _pyplot()
    scale, unit = _scale(p)
    target = float(np.median(result.target.per_neuron(p))) * scale
    ok = result.success_mask
    flagged = int(result.neurons.size - ok.sum())
    fig, (left, right) = plt.subplots(1, 2, figsize=(8.5, 3.4))
    before = _finite(result.before.get(p, [])) * scale
    after = _finite(np.asarray(result.measured[p])[ok]) * scale
    _panel(left, before, target, "before: uniform start codes, all neurons", "0.55", unit)
    _panel(right, after, target, f"after: {ok.sum()} calibrated neurons ({flagged} flagged)", "tab:blue", unit)
    left.set_ylabel("neurons")
    fig.suptitle(f"{LABELS[p]} ({p}) - chip {result.chip_id}, calibration {result.id}", fontsize=10)
    fig.tight_layout()
    return fig


def deviations(result, which: str) -> dict:
    """Parameter -> deviation in % (potentials: in % of the threshold distance): of the
    calibrated neurons from the target (``"measured"``), or of all neurons at the uniform start
    codes from their median (``"before"``: the spread uniform codes leave, centred as if the
    one common code had been chosen for the target)."""
    after = which == "measured"
    src = result.measured if after else result.before
    mask = result.success_mask if after else np.ones(result.success_mask.size, bool)
    distance = result.target.per_neuron("v_threshold") - result.target.per_neuron("v_leak")
    out = {}
    for p in PARAMETERS:
        if p not in src:
            continue
        x = np.asarray(src[p], np.float64)
        ref = result.target.per_neuron(p) if after else np.full(x.shape, np.nanmedian(x))
        with np.errstate(invalid="ignore", divide="ignore"):
            dev = (x - ref) / distance if UNITS[p] == "LSB" else x / ref - 1
        out[p] = _finite(100 * dev[mask])
    return out


def overview_figure(result):
    """Every parameter before (grey) and after (blue) calibration on one shared axis: box
    (quartiles), whiskers (1st-99th percentile) and the after spread written next to it."""
    plt = _pyplot()
    before, after = deviations(result, "before"), deviations(result, "measured")
    params = [p for p in PARAMETERS if p in after]
    fig, ax = plt.subplots(figsize=(8, 0.55 * len(params) + 1.6))
    for i, p in enumerate(params):
        y = len(params) - 1 - i
        for data, dy, colour in ((before.get(p), 0.18, "0.6"), (after[p], -0.18, "tab:blue")):
            if data is None or data.size == 0:
                continue
            ax.boxplot(
                data,
                positions=[y + dy],
                orientation="horizontal",
                widths=0.3,
                whis=(1, 99),
                showfliers=False,
                patch_artist=True,
                boxprops={"facecolor": colour, "alpha": 0.7},
                medianprops={"color": "k"},
            )
        if after[p].size:
            ax.text(1.01, y - 0.18, f"std {after[p].std():.2f} %", transform=ax.get_yaxis_transform(), fontsize=7)
    ax.axvline(0, color="k", ls="--", lw=1, label="target")
    ax.set_xscale("symlog", linthresh=1.0, linscale=0.6)
    ticks = [t for t in (-100, -30, -10, -3, -1, 0, 1, 3, 10, 30, 100) if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.set_yticks(range(len(params)), [LABELS[p] for p in reversed(params)], fontsize=8)
    ax.set_xlabel("deviation [%]  (potentials: % of the threshold distance; log scale beyond 1 %)")
    handles = [plt.Rectangle((0, 0), 1, 1, fc=c, alpha=0.7) for c in ("0.6", "tab:blue")]
    fig.legend(
        handles,
        [
            "before: uniform start codes, all neurons, around their median",
            "after: calibrated neurons, around the target",
        ],
        loc="lower center",
        ncol=1,
        fontsize=8,
    )
    ax.set_title(
        f"Calibration {result.id} of chip {result.chip_id}\n"
        f"{int(result.success_mask.sum())}/{result.neurons.size} neurons calibrated; boxes: quartiles, "
        "whiskers: 1st-99th percentile",
        fontsize=9,
    )
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


def write_figures(result, directory) -> list[pathlib.Path]:
    """``calibration_<parameter>.png`` per parameter and ``calibration_overview.png`` in ``directory``."""
    plt = _pyplot()
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    figures = [(f"calibration_{p}.png", parameter_figure(result, p)) for p in PARAMETERS if p in result.measured]
    figures.append(("calibration_overview.png", overview_figure(result)))
    written = []
    for name, fig in figures:
        fig.savefig(directory / name, dpi=120)
        plt.close(fig)
        written.append(directory / name)
    return written
