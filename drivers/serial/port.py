"""The pyserial side of the host driver: URL options and a ``ByteStream`` over a pyserial port."""

from __future__ import annotations

import urllib.parse

import serial

from hil import wire
from hil.errors import ConfigError

# Options the driver takes from the URL query (everything else goes to pyserial).
DRIVER_OPTIONS = {
    "timeout": float,
    "run_timeout": float,
    "retries": int,
    "backoff": float,
    "ack_timeout": float,
    "chunk_size": int,
    "window": int,
    "baudrate": int,
    "busy_wait": float,
}


def split_url(url: str) -> tuple[str, dict]:
    """``(pyserial URL, driver options)``: strips ``serial://`` and the driver's own query options."""
    if url.startswith("serial://"):
        url = url[len("serial://") :]
    base, sep, query = url.partition("?")
    _check_network_address(url, base)
    if not sep:
        return url, {}
    keep, options = [], {}
    for name, value in urllib.parse.parse_qsl(query, keep_blank_values=True):
        if name in DRIVER_OPTIONS:
            try:
                options[name] = DRIVER_OPTIONS[name](value)
            except ValueError:
                raise ConfigError(
                    f"{url}: option {name} = {value!r} is not a {DRIVER_OPTIONS[name].__name__}"
                ) from None
        else:
            keep.append((name, value))
    return (base + "?" + urllib.parse.urlencode(keep)) if keep else base, options


def _check_network_address(url: str, base: str) -> None:
    """``socket://`` and ``rfc2217://`` need ``HOST:PORT`` with a port 1..65535: ``ConfigError`` at once,
    not a timeout after retries."""
    scheme, sep, rest = base.partition("://")
    if not sep or scheme not in ("socket", "rfc2217"):
        return
    host, colon, port = rest.rpartition(":")
    if not colon or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ConfigError(f"{url}: expected {scheme}://HOST:PORT with a port 1..65535, got {rest!r}")


class PortStream:
    """``ByteStream`` over a pyserial port (any ``serial_for_url`` URL); counts bytes both ways."""

    def __init__(self, port):
        self.port = port
        self.bytes_in = 0
        self.bytes_out = 0

    @classmethod
    def open(cls, url: str, baudrate: int) -> PortStream:
        try:
            return cls(serial.serial_for_url(url, baudrate=baudrate, timeout=0))
        except (serial.SerialException, OSError, ValueError) as exc:
            raise wire.LinkClosed(f"cannot open {url}: {exc}") from exc

    def read_some(self, timeout: float) -> bytes:
        try:
            self.port.timeout = max(timeout, 0)
            first = self.port.read(1)
            if not first:
                return b""
            self.port.timeout = 0
            data = first + self.port.read(1 << 20)
        except (serial.SerialException, OSError) as exc:
            raise wire.LinkClosed(str(exc)) from exc
        self.bytes_in += len(data)
        return data

    def write(self, data) -> None:
        try:
            self.port.write(data)
        except (serial.SerialException, OSError) as exc:
            raise wire.LinkClosed(f"write: {exc}") from exc
        self.bytes_out += len(data)

    def close(self) -> None:
        try:
            self.port.close()
        except (serial.SerialException, OSError):
            pass
