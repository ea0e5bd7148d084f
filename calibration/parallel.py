"""Calibrate several chips at once: one process per device URL (``spawn``), one result per chip.

``calibrate_many(urls, target, out_dir)`` opens each URL with ``hil.open`` in its own
process, calibrates it (``calibrate``, cached per chip id like every calibration) and saves
the result as ``out_dir/<chip id>.json`` (+ ``.npz``). A failing chip does not stop the
others; its entry carries the error message. Works on any ``hil.Device`` (no driver imports).
"""

from __future__ import annotations

import multiprocessing
import pathlib
import time
from concurrent.futures import ProcessPoolExecutor, as_completed

import attrs

import hil

from .routine import calibrate
from .target import CalibrationTarget


@attrs.frozen
class ChipOutcome:
    """What happened to one device: its result file, or the error that stopped it."""

    url: str
    chip_id: str | None = None
    calibration_id: str | None = None
    path: str | None = None
    calibrated: int = 0
    neurons: int = 0
    wall_s: float = 0.0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def calibrate_url(url: str, target: CalibrationTarget, out_dir, *, neurons=None, cache: bool = True) -> ChipOutcome:
    """Open ``url``, calibrate it, save ``out_dir/<chip id>.json``; errors are returned, not raised."""
    start = time.perf_counter()
    try:
        with hil.open(url) as device:
            result = calibrate(device, target, neurons=neurons, progress=False, cache=cache)
        path = result.save(pathlib.Path(out_dir) / result.chip_id)
        return ChipOutcome(
            url,
            result.chip_id,
            result.id,
            str(path),
            int(result.success_mask.sum()),
            int(result.neurons.size),
            time.perf_counter() - start,
        )
    except (hil.HilError, OSError, ValueError) as exc:
        return ChipOutcome(url, wall_s=time.perf_counter() - start, error=f"{type(exc).__name__}: {exc}")


def calibrate_many(
    urls,
    target: CalibrationTarget | None = None,
    out_dir=".",
    *,
    neurons=None,
    cache: bool = True,
    workers: int | None = None,
    on_done=None,
) -> list[ChipOutcome]:
    """Calibrate every URL in its own process (at most ``workers`` at once, default all).

    Returns one ``ChipOutcome`` per URL in the order given; ``on_done(outcome)`` is called as
    each finishes. Two URLs of the same chip would write the same file: refused.
    """
    urls = list(urls)
    if len(set(urls)) != len(urls):
        raise hil.ConfigError(f"calibrate_many: device URLs repeat in {urls}; give each device once")
    target = target or CalibrationTarget()
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if len(urls) == 1:
        outcomes = [calibrate_url(urls[0], target, out, neurons=neurons, cache=cache)]
        if on_done:
            on_done(outcomes[0])
        return outcomes
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers or len(urls), mp_context=ctx) as pool:
        futures = {
            pool.submit(calibrate_url, url, target, out, neurons=neurons, cache=cache): i for i, url in enumerate(urls)
        }
        outcomes: list = [None] * len(urls)
        for fut in as_completed(futures):
            i = futures[fut]
            try:
                outcomes[i] = fut.result()
            except Exception as exc:  # a worker died (e.g. killed): report, keep the others
                outcomes[i] = ChipOutcome(urls[i], error=f"worker failed: {type(exc).__name__}: {exc}")
            if on_done:
                on_done(outcomes[i])
    return outcomes
