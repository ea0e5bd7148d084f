"""Keeps numba's on-disk cache of the mock's kernels consistent with their sources.

Numba caches each compiled function next to its module and checks only that module's file, so
a kernel that calls functions of other modules keeps stale machine code after those change.
``refresh()`` (run when ``drivers.mock`` is imported) removes the cached kernels of all these
modules whenever any of their sources differs from when the cache was written.
"""

from __future__ import annotations

import hashlib
import pathlib

MODULES = ("streams", "trajectory", "heap", "wakeups", "tables", "neuron", "kernel", "routing")
_HERE = pathlib.Path(__file__).resolve().parent
_STAMP = "mock-kernels.sha256"


def sources_digest() -> str:
    """SHA-256 over the sources of the mock's numba modules."""
    h = hashlib.sha256()
    for name in MODULES:
        h.update((_HERE / f"{name}.py").read_bytes())
    return h.hexdigest()


def refresh(cache_dir: pathlib.Path = _HERE / "__pycache__") -> bool:
    """Drop cached kernels that may be stale; True if something was dropped. Best effort: an
    unwritable cache directory is left alone (numba then compiles in memory)."""
    digest = sources_digest()
    stamp = cache_dir / _STAMP
    try:
        if stamp.read_text() == digest:
            return False
    except OSError:
        pass
    dropped = False
    try:
        for name in MODULES:
            for path in cache_dir.glob(f"{name}.*.nb[ic]"):
                path.unlink(missing_ok=True)
                dropped = True
        cache_dir.mkdir(exist_ok=True)
        stamp.write_text(digest)
    except OSError:
        return dropped
    return dropped
