"""The mock chip: a whole BrainScaleS-2 (HICANN-X) chip in software (``MockChip``).

``hil.open("mock://?seed=7&noise=off")`` reaches it through ``open_url``; the options are
described in :mod:`drivers.mock.options`, the physics in docs/mock.md.
"""

from .chip import MockChip
from .options import parse

__all__ = ["MockChip", "open_url"]


def open_url(url: str = "mock://", **options) -> MockChip:
    """Open a mock chip from a ``mock://?seed=..&noise=..&noise_seed=..&pace=..&overhead_s=..`` URL;
    keyword ``options`` override the URL's. ``hil.ConfigError`` names an unknown or bad option."""
    return MockChip(**parse(url, options))
