"""Storage of calibration results by key (the routine computes the key: ``routine.cache_key``).

Directory: ``$BSS2_HIL_CACHE`` if set, else ``platformdirs.user_cache_dir("bss2-hil")``,
subdirectory ``calibration/``. Entries are ``CalibrationResult`` files (JSON + .npz, mode 0644)
written atomically. An unreadable entry is never trusted: it is moved aside as
``<name>.corrupt-<UTC time>`` (both files), logged, and the lookup misses.
"""

from __future__ import annotations

import datetime as _dt
import os
import pathlib

from hil.errors import CalibrationError
from hil.logging import get_logger

from .result import CalibrationResult

log = get_logger(__name__)
ENV_VAR = "BSS2_HIL_CACHE"


def cache_dir() -> pathlib.Path:
    """The directory holding the cached results."""
    root = os.environ.get(ENV_VAR)
    if root:
        return pathlib.Path(root).expanduser() / "calibration"
    import platformdirs

    return pathlib.Path(platformdirs.user_cache_dir("bss2-hil")) / "calibration"


def path_for(key: str) -> pathlib.Path:
    """The JSON file of the entry ``key`` (its arrays sit next to it as ``.npz``)."""
    return cache_dir() / f"{key[:32]}.json"


def lookup(key: str) -> CalibrationResult | None:
    """The cached result for ``key``, or None (missing, or unreadable and moved aside)."""
    path = path_for(key)
    if not path.exists():
        return None
    try:
        return CalibrationResult.load(path)
    except CalibrationError as exc:
        moved = move_aside(path)
        log.warning("calibration.cache_unreadable", path=str(path), moved_to=str(moved), error=str(exc))
        return None


def move_aside(path: pathlib.Path) -> pathlib.Path:
    """Rename an entry's JSON and .npz to ``<name>.corrupt-<UTC time>``; returns the new JSON path."""
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    moved = path
    for p in (path, path.with_suffix(".npz")):
        if p.exists():
            target = p.with_name(f"{p.name}.corrupt-{stamp}")
            os.replace(p, target)
            moved = target if p == path else moved
    return moved


def store(key: str, result: CalibrationResult) -> pathlib.Path | None:
    """Write ``result`` as the entry ``key``; a failed write is logged, not raised (None)."""
    path = path_for(key)
    try:
        return result.save(path)
    except OSError as exc:
        log.warning("calibration.cache_write_failed", path=str(path), error=str(exc))
        return None
