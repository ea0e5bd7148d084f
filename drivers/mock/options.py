"""Options of the mock chip, from ``mock://?seed=7&noise=off`` URLs or keyword arguments.

seed        chip instance (mismatch, chip id), integer >= 0 (default 0)
noise       temporal noise "on"/"off" (default on; mismatch is always present)
noise_seed  seed of the per-run noise streams, integer >= 0 (default: derived from seed)
pace        "off" (as fast as possible) or "realtime" (each run lasts at least the wall time
            a real chip needs: sum of trial durations + overhead_s)
overhead_s  per-run overhead of ``pace=realtime`` in seconds, >= 0 (default 0.005)
"""

from __future__ import annotations

import urllib.parse

from hil.errors import ConfigError

DEFAULT_OVERHEAD_S = 5e-3
_TRUE, _FALSE = ("on", "true", "1", "yes"), ("off", "false", "0", "no")


def _nonnegative_int(name, value):
    try:
        out = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"mock option {name} = {value!r}: expected an integer >= 0") from None
    if isinstance(value, bool) or out < 0 or (isinstance(value, float) and value != out):
        raise ConfigError(f"mock option {name} = {value!r}: expected an integer >= 0")
    return out


def _switch(name, value):
    if isinstance(value, bool):
        return value
    text = str(value).lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigError(f"mock option {name} = {value!r}; allowed: on, off")


def _pace(name, value):
    if value not in ("off", "realtime"):
        raise ConfigError(f"mock option {name} = {value!r}; allowed: off, realtime")
    return value


def _seconds(name, value):
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"mock option {name} = {value!r}: expected seconds >= 0") from None
    if not out >= 0 or out == float("inf"):
        raise ConfigError(f"mock option {name} = {value!r}: expected finite seconds >= 0")
    return out


PARSERS = {
    "seed": _nonnegative_int,
    "noise": _switch,
    "noise_seed": lambda name, v: None if v is None or v == "" else _nonnegative_int(name, v),
    "pace": _pace,
    "overhead_s": _seconds,
}


def parse(url: str, options: dict) -> dict:
    """URL query plus keyword options -> validated keyword arguments of ``MockChip``."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "mock":
        raise ConfigError(f"mock driver: url {url!r} does not start with 'mock://'")
    if parts.netloc or parts.path not in ("", "/"):
        raise ConfigError(f"mock driver: url {url!r} has a host or path; expected 'mock://?option=value&...'")
    raw = {}
    for key, values in urllib.parse.parse_qs(parts.query, keep_blank_values=True, strict_parsing=False).items():
        if len(values) > 1:
            raise ConfigError(f"mock option {key} is given {len(values)} times in {url!r}")
        raw[key] = values[0]
    raw.update(options)
    unknown = sorted(set(raw) - set(PARSERS))
    if unknown:
        raise ConfigError(f"mock driver: unknown option(s) {', '.join(unknown)}; allowed: {', '.join(PARSERS)}")
    return {key: PARSERS[key](key, value) for key, value in raw.items()}
