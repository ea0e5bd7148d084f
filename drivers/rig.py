"""A local test rig as child processes: mock-device servers on loopback ports, and the
training CLI run against them.

Children run the same interpreter with this source tree first on ``PYTHONPATH``; the
training CLI is started as a program (its console script ``hil-train``, or
``training.cli:train_main`` through ``python -c``), never imported here: ``drivers`` imports
only ``hil``.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import select
import subprocess
import sys
import threading
import time

from hil.errors import DeviceError

SOURCE_ROOT = pathlib.Path(__file__).resolve().parent.parent  # the directory holding the drivers package
TRAIN_ENTRY = "training.cli:train_main"


def child_env() -> dict[str, str]:
    """The environment of a child: ours, with :data:`SOURCE_ROOT` first on ``PYTHONPATH``."""
    path = [str(SOURCE_ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return dict(os.environ, PYTHONPATH=os.pathsep.join(path))


def mock_device_command(seed: int, *, noise: str, pace: str, overhead: float | None) -> list[str]:
    """``python -m drivers mock-device`` on a free loopback port with these mock options."""
    cmd = [sys.executable, "-m", "drivers", "mock-device", "--listen", "127.0.0.1:0", "--seed", str(seed)]
    cmd += ["--noise", noise, "--pace", pace]
    return cmd + (["--overhead", str(overhead)] if overhead is not None else [])


def train_command() -> list[str]:
    """How to start the training CLI: the ``hil-train`` script installed beside this
    interpreter, else ``train_main`` through ``python -c``."""
    script = pathlib.Path(sys.executable).with_name("hil-train")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    module, function = TRAIN_ENTRY.split(":")
    return [sys.executable, "-c", f"import sys; from {module} import {function}; sys.exit({function}())"]


def start_server(seed: int, *, noise: str = "on", pace: str = "off", overhead: float | None = None, timeout=60.0):
    """Start one mock-device server; returns ``(process, socket URL)`` once it listens.

    The server's stderr is ours (its errors reach the user). Raises ``DeviceError`` when it
    exits or does not report ``listening socket://...`` within ``timeout`` seconds.
    """
    cmd = mock_device_command(seed, noise=noise, pace=pace, overhead=overhead)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, env=child_env())
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0 and proc.poll() is None:
        ready, _, _ = select.select([proc.stdout], [], [], min(left, 0.5))
        line = proc.stdout.readline() if ready else ""
        if line.startswith("listening socket://"):
            threading.Thread(target=_drain, args=(proc.stdout,), daemon=True).start()
            return proc, line.split(None, 1)[1].strip()
    exited = proc.poll() is not None
    stop([proc])
    raise DeviceError(
        f"mock-device --seed {seed} exited with code {proc.returncode} before listening (its error is above)"
        if exited
        else f"mock-device --seed {seed} did not report 'listening socket://...' within {timeout:g} s"
    )


def _drain(stream) -> None:
    """Read a child's pipe to its end, so a chatty child never blocks on a full pipe."""
    with contextlib.suppress(Exception):
        for _ in stream:
            pass


def stop(procs, timeout: float = 10.0) -> None:
    """SIGTERM every process, wait, SIGKILL what is left: no orphans."""
    for p in procs:
        if p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                p.terminate()
    deadline = time.monotonic() + timeout
    for p in procs:
        try:
            p.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
