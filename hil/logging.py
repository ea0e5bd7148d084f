"""structlog set-up: console lines for people, JSON lines for machines (``--log-json``).

Library code logs one event per device operation with its key figures
(``log = hil.logging.get_logger(__name__)``; ``log.info("run", trials=..., wall_s=...)``).
"""

from __future__ import annotations

import logging as _stdlib_logging
import sys

import structlog

_configured = False


class _StreamLogger:
    """Writes each rendered event as a line to ``stream`` (looked up at write time when None,
    so redirected or replaced ``sys.stderr`` is honoured). A closed or broken stream never
    takes down the caller: logging is not worth a crashed device server."""

    def __init__(self, stream=None):
        self._stream = stream

    def msg(self, message: str) -> None:
        try:
            print(message, file=self._stream or sys.stderr, flush=True)
        except (ValueError, OSError):
            pass

    debug = info = warning = warn = error = critical = exception = fatal = log = msg


def configure(*, json: bool = False, level: str = "INFO", stream=None) -> None:
    """Route structlog to ``stream`` (default stderr) as console text or JSON lines."""
    global _configured
    renderer = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_stdlib_logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=lambda *args: _StreamLogger(stream),
        cache_logger_on_first_use=False,
    )
    _configured = True


def get_logger(name: str):
    """A structlog logger bound to ``name``; configures warnings-only output on first use if nobody did."""
    if not _configured:
        configure(level="WARNING")
    return structlog.get_logger(name)
