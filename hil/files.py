"""Writing files so that a crash leaves the old file or the new one, never a torn one."""

from __future__ import annotations

import os
import pathlib
import tempfile

FILE_MODE = 0o644  # results and checkpoints are shared with colleagues: readable by all, writable by the owner


def write_atomic(path, data: bytes | str, *, mode: int = FILE_MODE) -> pathlib.Path:
    """Write ``data`` (str as UTF-8) to ``path`` atomically: a temporary file in the same
    directory, fsync, chmod ``mode``, then ``os.replace``. Returns the path."""
    path = pathlib.Path(path)
    if isinstance(data, str):
        data = data.encode("utf-8")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path
