"""``calibrate(device, target)``: run the steps, judge, build the result; cache by key.

Order (each step: *configure* the working configuration, *measure* all neurons at once,
*search* the CapMem codes; see :mod:`calibration.steps` and docs/calibration.md):
``leak`` -> ``offsets`` -> ``drive`` -> ``membrane`` -> ``refractory`` -> ``synapse`` -> ``final``.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import time

import attrs
import numpy as np

import hil
from hil.config import ChipConfig
from hil.errors import CalibrationError, ConfigError
from hil.progress import Progress

from . import cache as result_cache
from .judge import combine_reasons, judge
from .loop import log, run_step
from .options import POTENTIALS, CalibrationOptions
from .result import NEURON_FIELDS, QUADRANT_FIELDS, CalibrationResult, unknown_adc_scale
from .session import Session
from .state import N, WorkingState
from .steps import STEPS
from .target import CalibrationTarget

ALGORITHM_VERSION = 2  # part of the cache key: bump when the routine changes its results


def cache_key(target: CalibrationTarget, chip_id: str, base: ChipConfig, selected: np.ndarray, options) -> str:
    """SHA-256 hex of everything a result depends on: target, chip, software and algorithm
    versions, base configuration, selected neurons and options."""
    opts = {k: (list(v) if isinstance(v, tuple) else v) for k, v in attrs.asdict(options).items()}
    key = {
        "target": target.key(),
        "chip_id": chip_id,
        "software": hil.__version__,
        "algorithm": ALGORITHM_VERSION,
        "base": base.content_hash(),
        "neurons": hashlib.sha256(np.packbits(selected).tobytes()).hexdigest(),
        "options": opts,
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def selection(neurons) -> np.ndarray:
    """(512,) bool mask from neuron indices, a mask, or None (all)."""
    sel = np.zeros(N, bool)
    if neurons is None:
        sel[:] = True
        return sel
    idx = np.asarray(neurons)
    if idx.dtype == bool:
        if idx.shape != (N,):
            raise ConfigError(f"calibrate: neurons mask has shape {idx.shape}; expected ({N},)")
        return idx.copy()
    idx = idx.astype(np.int64).ravel()
    if idx.size == 0 or idx.min() < 0 or idx.max() >= N:
        raise ConfigError(f"calibrate: neurons = {idx[:5]}...: expected neuron indices 0..{N - 1}")
    sel[idx] = True
    return sel


def run_steps(state: WorkingState, progress: bool) -> dict:
    """Every step in order, with one log event and one progress update per step; returns
    step name -> {"runs", "wall_s"}."""
    bar = Progress(len(STEPS), "calibrate", enabled=progress, every=1 / len(STEPS), unit="step", leave=True)
    per_step = {}
    try:
        for step_class in STEPS:
            step = step_class()
            t0, runs0 = time.perf_counter(), state.session.runs
            run_step(step, state)
            figures = {"runs": state.session.runs - runs0, "wall_s": round(time.perf_counter() - t0, 2)}
            per_step[step.name] = figures
            log.info("calibration.step", step=step.name, **figures)
            bar.update(1, step=step.name, **figures)
    finally:
        bar.close()
    return per_step


def build_result(state: WorkingState, wall_s: float, per_step: dict) -> CalibrationResult:
    """Judge the final measurements and assemble the ``CalibrationResult`` (``per_step``: the
    runs and wall time of each step, kept in ``figures["steps"]``)."""
    success = judge(state)
    before = {k: np.asarray(v, np.float64) for k, v in state.before.items()}
    for name in POTENTIALS:  # readings at the start codes -> offset-free (where the offset is known)
        if name in before:
            before[name] = before[name] - state.cadc_offset()
    return CalibrationResult(
        codes={name: np.asarray(getattr(state.config, name)).copy() for name in NEURON_FIELDS + QUADRANT_FIELDS},
        measured={k: np.asarray(v, np.float64) for k, v in state.measured.items()},
        errors={k: np.asarray(v, np.float64) for k, v in state.errors.items()},
        before=before,
        success=success,
        reasons=combine_reasons(state, success),
        target=state.target,
        chip_id=state.session.chip_id,
        software_version=hil.__version__,
        timestamp=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        wall_time_s=wall_s,
        figures={**state.session.figures(), "steps": per_step},
        aux=state.aux(),
        neurons=np.flatnonzero(state.selected),
        adc=state.adc if state.adc is not None else unknown_adc_scale(),
    )


def calibrate(
    device: hil.Device,
    target: CalibrationTarget | None = None,
    *,
    neurons=None,
    progress: bool = True,
    cache: bool = True,
    base: ChipConfig | None = None,
    options: CalibrationOptions | None = None,
) -> CalibrationResult:
    """Calibrate ``device`` (any ``hil.Device``) to ``target`` (default ``CalibrationTarget()``).

    ``neurons``: indices or a (512,) mask of the neurons to calibrate (default all); the
    others keep ``base``'s values and are reported as not calibrated. ``progress``: tqdm bar
    on a terminal, plain lines otherwise. ``cache``: reuse (and store) a result with the same
    target, chip id, software version, base configuration and neurons from the user cache
    (``BSS2_HIL_CACHE`` overrides the directory); a cache hit costs no device runs and has
    ``from_cache`` set. ``base``: configuration to start from and whose non-neuron fields are
    kept (default ``ChipConfig()``). Raises ``CalibrationError`` when the device gives no
    usable data.
    """
    target = target if target is not None else CalibrationTarget()
    if not isinstance(target, CalibrationTarget):
        raise ConfigError(f"calibrate: target must be a CalibrationTarget, got {type(target).__name__}")
    base = (base or ChipConfig()).copy()
    base.validate()
    options = options or CalibrationOptions()
    sel = selection(neurons)
    session = Session(device)
    key = cache_key(target, session.chip_id, base, sel, options)
    if cache:
        hit = result_cache.lookup(key)
        if hit is not None:
            log.info("calibration.cache_hit", chip_id=session.chip_id, id=hit.id, key=key[:16])
            return attrs.evolve(hit, from_cache=True)
    start = time.perf_counter()
    state = WorkingState(session, target, options, sel, base.copy())
    per_step = run_steps(state, progress)
    result = build_result(state, time.perf_counter() - start, per_step)
    n_ok = int(result.success_mask.sum())
    figures = result.figures
    log.info(
        "calibration.done",
        chip_id=session.chip_id,
        id=result.id,
        success=n_ok,
        selected=int(sel.sum()),
        wall_s=round(result.wall_time_s, 2),
        **{k: v for k, v in figures.items() if k in ("device_runs", "chip_time_s", "bytes_sent", "bytes_received")},
    )
    if n_ok == 0:
        first = sorted(set(r for r in result.reasons if r))[:3]
        raise CalibrationError(f"calibration of chip {session.chip_id} failed for every neuron; first reasons: {first}")
    if cache:
        result_cache.store(key, result)
    return result
