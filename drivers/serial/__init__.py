"""Host driver for the wire protocol over pyserial: ``/dev/ttyUSB0``, ``socket://host:port``,
``loop://``, ``spy://...``, ``rfc2217://...``. :class:`Link` is the transport (retries,
reconnection, BUSY waits), :class:`SerialDevice` the ``hil.Device`` on top; docs/protocol.md."""

from __future__ import annotations

from hil.errors import ConfigError

from .device import SerialDevice
from .link import Link
from .port import DRIVER_OPTIONS, PortStream, split_url


def open_url(url: str, **options) -> SerialDevice:
    """``hil.open`` entry point. Driver options come from ``options`` or the URL query
    (``?timeout=1&retries=2``); other query items go to pyserial."""
    port_url, from_query = split_url(url)
    merged = {**from_query, **options}
    unknown = sorted(set(merged) - set(DRIVER_OPTIONS))
    if unknown:
        raise ConfigError(f"{url}: unknown option(s) {', '.join(unknown)}; allowed: {', '.join(DRIVER_OPTIONS)}")
    return SerialDevice(Link(url, port_url, **merged)).open()


__all__ = ["SerialDevice", "Link", "open_url", "PortStream", "split_url", "DRIVER_OPTIONS"]
