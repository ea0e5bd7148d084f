"""The ``Device`` protocol every driver implements, ``DeviceInfo``, ``DeviceLimits`` and ``open(url)``.

Drivers register a factory ``open_url(url: str, **options) -> Device`` under the entry-point
group ``hil.drivers``, keyed by URL scheme (``mock``, ``socket``, ``replay``...). Paths
without a scheme (``/dev/ttyUSB0``) go to the ``serial`` driver. ``open(url, record=path)``
records the session of any driver (:mod:`hil.recording`).
"""

from __future__ import annotations

import urllib.parse
from importlib.metadata import entry_points
from typing import Protocol, runtime_checkable

import attrs
import numpy as np

from .config import ChipConfig
from .errors import ConfigError, HilError
from .measurement import Measurement
from .stimulus import Recording, Stimulus

PROTOCOL_VERSION = 3  # 2: column-wise spikes in RUN_REPLY; 3: ADC limits in HELLO_REPLY, BUSY retry time
ENTRY_POINT_GROUP = "hil.drivers"


@attrs.frozen
class DeviceLimits:
    """What one ``run`` may ask of a device; a device refuses more (``ConfigError``) before it starts.

    max_trials:        trials per run
    max_events:        input events per run (all trials)
    max_spikes:        spikes a run returns; later ones are dropped and counted
                       (``Health.spikes_dropped_output``), the run is not refused
    link_events_per_s: input link capacity in hardware time, events/s
    max_madc_samples:  MADC samples per run (``n_trials * Recording.madc_samples``)
    max_cadc_samples:  CADC readings of all 512 channels per run: n_trials times the readings
                       of the longest trial (``CadcSamples`` is rectangular)

    The defaults keep the largest run they allow within the 512 MiB a device server may use
    (docs/protocol.md, "Budgets").
    """

    max_trials: int = 16_384
    max_events: int = 1_000_000
    max_spikes: int = 2_000_000
    link_events_per_s: float = 125e6 / 4
    max_madc_samples: int = 1 << 21
    max_cadc_samples: int = 1 << 13

    def check(self, stimulus: Stimulus, recording: Recording = Recording(), where: str = "") -> None:  # noqa: B008 - Recording is frozen: one shared default is safe
        """``ConfigError`` naming the quantity, its value and the limit if the run asks more than
        this device allows; ``where`` (a URL) prefixes the message."""
        if not isinstance(stimulus, Stimulus):
            raise ConfigError(f"{where or 'run'}: stimulus = {type(stimulus).__name__}; expected hil.Stimulus")
        if not isinstance(recording, Recording):
            raise ConfigError(f"{where or 'run'}: recording = {type(recording).__name__}; expected hil.Recording")
        madc = stimulus.n_trials * recording.madc_samples if recording.madc_neuron is not None else 0
        per_trial = recording.cadc_samples(stimulus.durations)
        cadc = stimulus.n_trials * int(per_trial.max()) if per_trial.size else 0  # the reply is rectangular
        asked = (
            ("Stimulus.n_trials", stimulus.n_trials, "max_trials"),
            ("Stimulus.n_events", stimulus.n_events, "max_events"),
            ("MADC samples (n_trials x Recording.madc_samples)", madc, "max_madc_samples"),
            ("CADC readings (n_trials x readings of the longest trial)", cadc, "max_cadc_samples"),
        )
        for name, value, limit in asked:
            if value > getattr(self, limit):
                raise ConfigError(
                    f"{where + ': ' if where else ''}{name} = {value} exceeds the device limit "
                    f"DeviceLimits.{limit} = {getattr(self, limit)} per run; split the batch into several runs"
                )


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
    returns what the ``Recording`` asks for, after checking it against ``info().limits``
    (``DeviceLimits.check``). ``reset`` restores power-on state (the configuration must be
    sent again); ``close`` releases the link.

    Optional capability (see :class:`Cancellable`): ``cancel()``.
    """

    def info(self) -> DeviceInfo: ...

    def configure(self, config: ChipConfig) -> None: ...

    def run(self, stimulus: Stimulus, recording: Recording = Recording()) -> Measurement: ...  # noqa: B008 - Recording is frozen: one shared default is safe

    def reset(self) -> None: ...

    def close(self) -> None: ...

    def __enter__(self): ...

    def __exit__(self, *exc) -> None: ...


@runtime_checkable
class Cancellable(Protocol):
    """A device whose running ``run`` can be stopped early.

    ``cancel()`` may be called from any thread while another thread is inside ``run``; that
    ``run`` then stops as soon as it can and raises a ``HilError`` (``DeviceError`` saying it
    was cancelled), leaving the device configured and ready for the next call. Called when no
    run is active it does nothing. The device server calls it when its client disconnects
    during a run (docs/protocol.md). Devices without it simply finish the run.
    """

    def cancel(self) -> None: ...


def cancel(device) -> bool:
    """Cancel ``device``'s running ``run`` if it can be cancelled; True if ``cancel()`` was called."""
    if isinstance(device, Cancellable):
        device.cancel()
        return True
    return False


class DeviceBase:
    """Context-manager plumbing shared by drivers."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def installed_drivers() -> dict[str, object]:
    """URL scheme -> entry point of every installed driver."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def _split_record(url: str, record):
    """``(url without a record=... query item, record path or None)``; the keyword wins over the query."""
    base, sep, query = url.partition("?")
    items = urllib.parse.parse_qsl(query, keep_blank_values=True) if sep else []
    found = [v for k, v in items if k == "record"]
    if not found:
        return url, record
    rest = [(k, v) for k, v in items if k != "record"]
    return (base + "?" + urllib.parse.urlencode(rest) if rest else base), (record if record is not None else found[-1])


def open(url: str = "mock://", *, record=None, **options) -> Device:  # noqa: A001 - mirrors builtins.open on purpose
    """Open the device at ``url`` with the driver registered for its scheme.

    ``mock://?seed=7&noise=off`` is the built-in mock chip; ``socket://127.0.0.1:5555``,
    ``loop://``, ``spy://...`` and device paths such as ``/dev/ttyUSB0`` use the serial
    driver; ``replay://path`` plays back a recorded session. ``options`` go to the driver.
    ``record`` (or ``?record=PATH`` in the URL): write the session to ``PATH`` (a ``.hilrec``
    file that ``replay://PATH`` plays back), whatever the driver.
    """
    if not isinstance(url, str) or not url:
        raise HilError(f"hil.open: url = {url!r}; expected a device URL such as 'mock://?seed=7'")
    url, record = _split_record(url, record)
    scheme = urllib.parse.urlsplit(url).scheme or "serial"
    drivers = installed_drivers()
    if scheme not in drivers:
        raise HilError(
            f"hil.open: no driver for URL scheme {scheme!r} (url {url!r}); installed schemes: "
            f"{', '.join(sorted(drivers)) or 'none'} (drivers register under the entry-point group "
            f"{ENTRY_POINT_GROUP!r})"
        )
    device = drivers[scheme].load()(url, **options)
    if record is None:
        return device
    from .recording import RecordingDevice  # here: hil.recording builds on hil.wire, which imports this module

    try:
        return RecordingDevice(device, record, url)
    except BaseException:
        device.close()
        raise
