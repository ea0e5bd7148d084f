"""Run a tool of this repository with an interpreter that has the project's dependencies.

The ``tools/*`` scripts are thin wrappers over the packages' CLI functions (the same ones
the console scripts call): ``sys.exit(launch("drivers.cli:mock_device_main"))``. Started
directly by a shell without the project's venv, the project's imports fail; then the
script runs again with the repository's ``.venv/bin/python`` when that exists, or prints a
one-line hint and exits 1. Imports only the standard library.
"""

from __future__ import annotations

import importlib
import os
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
PROJECT_PACKAGES = ("hil", "drivers", "calibration", "training")


def launch(target: str) -> int:
    """Import ``module:function`` from this source tree and return what ``function()`` returns."""
    module_name, function = target.split(":")
    sys.path.insert(0, str(ROOT))
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").split(".")[0]
        if missing in PROJECT_PACKAGES:
            raise  # the source tree itself is incomplete: a bug, not an environment without the dependencies
        _rerun_in_venv_or_exit(missing)
    return getattr(module, function)()


def _rerun_in_venv_or_exit(missing: str) -> None:
    python = VENV / "bin" / "python"
    in_venv = pathlib.Path(sys.prefix).resolve() == VENV.resolve()
    if python.exists() and not in_venv:
        os.execv(python, [str(python), os.path.abspath(sys.argv[0]), *sys.argv[1:]])
    prog = pathlib.Path(sys.argv[0]).name
    print(
        f"{prog}: error: {sys.executable} has no module {missing!r}; create the project's environment with "
        f"'{ROOT / 'run'} test', or 'pip install {ROOT}' into yours",
        file=sys.stderr,
    )
    sys.exit(1)
