"""The ``Device`` protocol every driver implements, ``DeviceInfo``, and ``open(url)``.

Drivers register a factory ``open_url(url: str, **options) -> Device`` under the entry-point
group ``hil.drivers``, keyed by URL scheme (``mock``, ``socket``, ``replay``...). Paths
without a scheme (``/dev/ttyUSB0``) go to the ``serial`` driver.
"""

from __future__ import annotations

import urllib.parse
from importlib.metadata import entry_points
from typing import Protocol, runtime_checkable

import attrs

from .config import ChipConfig
from .errors import HilError
from .measurement import Measurement
from .stimulus import Recording, Stimulus

PROTOCOL_VERSION = 2  # 2: column-wise spikes in RUN_REPLY
ENTRY_POINT_GROUP = "hil.drivers"


@attrs.frozen
class DeviceLimits:
    """What one ``run`` may ask of a device.

    max_madc_samples: MADC samples per run (``n_trials * Recording.madc_samples``)
    max_cadc_samples: CADC readings of all 512 channels per run
    """

    max_trials: int = 16_384
    max_events: int = 1_000_000
    max_spikes: int = 4_000_000
    link_events_per_s: float = 125e6 / 4  # input link capacity in hardware time, events/s
    max_madc_samples: int = 1 << 22
    max_cadc_samples: int = 1 << 14


@attrs.frozen
class DeviceInfo:
    """Identity and limits of an open device. ``boot_id`` changes whenever the device resets."""

    chip_id: str
    driver: str
    protocol_version: int = PROTOCOL_VERSION
    boot_id: int = 0
    limits: DeviceLimits = attrs.field(factory=DeviceLimits)


@runtime_checkable
class Device(Protocol):
    """A chip (or its emulation) the host can configure and run.

    ``configure`` keeps the given configuration as the chip's state; drivers send only the
    blocks that changed since the previous ``configure``. ``run`` plays a ``Stimulus`` and
    returns what the ``Recording`` asks for. ``reset`` restores power-on state (the
    configuration must be sent again); ``close`` releases the link.
    """

    def info(self) -> DeviceInfo: ...

    def configure(self, config: ChipConfig) -> None: ...

    def run(self, stimulus: Stimulus, recording: Recording = Recording()) -> Measurement: ...

    def reset(self) -> None: ...

    def close(self) -> None: ...

    def __enter__(self): ...

    def __exit__(self, *exc) -> None: ...


class DeviceBase:
    """Context-manager plumbing shared by drivers."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def installed_drivers() -> dict[str, object]:
    """URL scheme -> entry point of every installed driver."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def open(url: str = "mock://", **options) -> Device:  # noqa: A001 - mirrors builtins.open on purpose
    """Open the device at ``url`` with the driver registered for its scheme.

    ``mock://?seed=7&noise=off`` is the built-in mock chip; ``socket://127.0.0.1:5555``,
    ``loop://``, ``spy://...`` and device paths such as ``/dev/ttyUSB0`` use the serial
    driver; ``replay://path`` plays back a recorded session. ``options`` go to the driver.
    """
    if not isinstance(url, str) or not url:
        raise HilError(f"hil.open: url = {url!r}; expected a device URL such as 'mock://?seed=7'")
    scheme = urllib.parse.urlsplit(url).scheme or "serial"
    drivers = installed_drivers()
    if scheme not in drivers:
        raise HilError(
            f"hil.open: no driver for URL scheme {scheme!r} (url {url!r}); installed schemes: "
            f"{', '.join(sorted(drivers)) or 'none'} (drivers register under the entry-point group {ENTRY_POINT_GROUP!r})"
        )
    return drivers[scheme].load()(url, **options)
