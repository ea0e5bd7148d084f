"""Cache of calibration results, keyed by target, chip id, software version, base
configuration, selected neurons and options.

Directory: ``$BSS2_HIL_CACHE`` if set, else ``platformdirs.user_cache_dir("bss2-hil")``,
subdirectory ``calibration/``. Entries are ``CalibrationResult`` files (JSON + .npz) written
atomically; an unreadable entry is ignored (and logged), never trusted.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib

import attrs
import numpy as np

import hil
from hil.errors import CalibrationError
from hil.logging import get_logger

log = get_logger(__name__)
ENV_VAR = "BSS2_HIL_CACHE"


def cache_dir() -> pathlib.Path:
    root = os.environ.get(ENV_VAR)
    if root:
        return pathlib.Path(root).expanduser() / "calibration"
    import platformdirs

    return pathlib.Path(platformdirs.user_cache_dir("bss2-hil")) / "calibration"


def cache_key(target, chip_id: str, base, selected: np.ndarray, options) -> str:
    from .routines import ALGORITHM_VERSION

    opts = {k: (list(v) if isinstance(v, tuple) else v) for k, v in attrs.asdict(options).items()}
    h = hashlib.sha256()
    h.update(
        json.dumps(
            {
                "target": target.key(),
                "chip_id": chip_id,
                "software": hil.__version__,
                "algorithm": ALGORITHM_VERSION,
                "base": base.content_hash(),
                "neurons": hashlib.sha256(np.packbits(selected).tobytes()).hexdigest(),
                "options": opts,
            },
            sort_keys=True,
        ).encode()
    )
    return h.hexdigest()


def path_for(key: str) -> pathlib.Path:
    return cache_dir() / f"{key[:32]}.json"


def lookup(key: str):
    from .result import CalibrationResult

    path = path_for(key)
    if not path.exists():
        return None
    try:
        return CalibrationResult.load(path)
    except CalibrationError as exc:
        log.warning("calibration.cache_unreadable", path=str(path), error=str(exc))
        return None


def store(key: str, result) -> pathlib.Path | None:
    path = path_for(key)
    try:
        return result.save(path)
    except OSError as exc:
        log.warning("calibration.cache_write_failed", path=str(path), error=str(exc))
        return None
