"""The project's one exception hierarchy. Messages name the field, the value and what is allowed."""

from __future__ import annotations


class HilError(Exception):
    """Base of every error the project raises on purpose."""


class ConfigError(HilError, ValueError):
    """Invalid configuration, stimulus, recording or argument, caught before reaching a device."""


class ResourceError(HilError):
    """A network or request does not fit the chip's resources."""


class ProtocolError(HilError):
    """Malformed, corrupted or unexpected bytes on the wire."""


class DeviceTimeout(HilError, TimeoutError):
    """The device did not answer in time (after the bounded retries)."""


class DeviceError(HilError):
    """The device reported a failure or is in an unusable state."""


class CalibrationError(HilError):
    """A calibration could not be found, loaded, applied or reached."""


def out_of_range(field: str, value, allowed: str) -> ConfigError:
    """A ``ConfigError`` for ``field`` holding ``value`` outside ``allowed``."""
    return ConfigError(f"{field} = {value!r} is out of range; allowed: {allowed}")
