"""Calibration figures (issue 17 item 6): own bins per panel, titles and annotations, and one
overview of every parameter; drawn from a synthetic result."""

import numpy as np

from calibration import plots
from calibration.target import PARAMETERS


def texts(fig):
    out = [fig._suptitle.get_text()] if fig._suptitle else []
    for ax in fig.axes:
        out += [ax.get_title()] + [t.get_text() for t in ax.texts]
        legend = ax.get_legend()
        if legend:
            out += [t.get_text() for t in legend.get_texts()]
    return "\n".join(out)


def test_after_panel_has_its_own_bins_and_annotations(synthetic_result):
    r = synthetic_result
    fig = plots.parameter_figure(r, "tau_mem")
    left, right = fig.axes
    after = r.measured["tau_mem"][r.success_mask] * 1e6
    lo, hi = right.get_xlim()
    assert hi - lo < 3 * (after.max() - after.min()) + 1.0  # the target line may widen it a little
    bars = [p for p in right.patches if p.get_height() > 0]
    assert len(bars) >= 15  # a 1 % spread fills many bins, not 2-3
    words = texts(fig)
    for w in (r.chip_id, r.id, "mean", "std", "target 12", "1 flagged", "511 calibrated"):
        assert w in words, w
    assert left.get_xlabel() == "us"


def test_overview_shows_every_parameter_on_one_axis(synthetic_result):
    fig = plots.overview_figure(synthetic_result)
    (ax,) = fig.axes
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert sorted(labels) == sorted(plots.LABELS[p] for p in PARAMETERS)
    assert "std" in texts(fig) and synthetic_result.id in ax.get_title()


def test_deviations_are_relative_to_the_target(synthetic_result):
    r = synthetic_result
    d = plots.deviations(r, "measured")
    ok = r.success_mask
    np.testing.assert_allclose(d["tau_mem"], 100 * (r.measured["tau_mem"][ok] / 12e-6 - 1))
    np.testing.assert_allclose(d["v_leak"], 100 * (r.measured["v_leak"][ok] - 80) / 70)


def test_write_figures_writes_pngs(synthetic_result, tmp_path):
    paths = plots.write_figures(synthetic_result, tmp_path / "figs")
    assert len(paths) == 10 and all(p.stat().st_size > 10_000 for p in paths)
