"""drivers.mock.jit_cache watches every module of the mock that holds numba code."""

from __future__ import annotations

import pathlib

from drivers.mock import jit_cache


def test_every_module_with_numba_functions_is_watched():
    here = pathlib.Path(jit_cache.__file__).parent
    compiled = {path.stem for path in here.glob("*.py") if "numba.njit" in path.read_text()}
    assert compiled, "no numba modules found: the scan is broken"
    assert compiled <= set(jit_cache.MODULES), f"not watched by jit_cache: {sorted(compiled - set(jit_cache.MODULES))}"
