"""The mock chip: a whole BrainScaleS-2 (HICANN-X) chip in software (``MockChip``).

``hil.open("mock://?seed=7&noise=off")`` reaches it through ``open_url``; the options are
described in :mod:`drivers.mock.options`, the physics in docs/mock.md.
"""

from . import jit_cache

jit_cache.refresh()  # before any kernel module is imported (loads its cache)

from .chip import MockChip  # noqa: E402 - after the cache refresh
from .options import parse  # noqa: E402 - after the cache refresh

__all__ = ["MockChip", "open_url"]


def open_url(url: str = "mock://", **options) -> MockChip:
    """Open a mock chip from a ``mock://?seed=..&noise=..&noise_seed=..&pace=..&overhead_s=..`` URL;
    keyword ``options`` override the URL's. ``hil.ConfigError`` names an unknown or bad option."""
    return MockChip(**parse(url, options))
