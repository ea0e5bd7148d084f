"""Host driver for the wire protocol over pyserial: ``/dev/ttyUSB0``, ``socket://host:port``,
``loop://``, ``spy://...``, ``rfc2217://...``. See :class:`SerialDevice` and docs/protocol.md."""

from __future__ import annotations

from .device import SerialDevice
from .port import DRIVER_OPTIONS, PortStream, split_url


def open_url(url: str, **options) -> SerialDevice:
    """``hil.open`` entry point. Driver options come from ``options`` or the URL query
    (``?timeout=1&retries=2&record=session.hilrec``); other query items go to pyserial."""
    port_url, from_query = split_url(url)
    return SerialDevice(url, port_url, **{**from_query, **options})


__all__ = ["SerialDevice", "open_url", "PortStream", "split_url", "DRIVER_OPTIONS"]
