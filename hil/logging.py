"""structlog set-up: console lines for people, JSON lines for machines (``--log-json``).

Library code logs one event per device operation with its key figures
(``log = hil.logging.get_logger(__name__)``; ``log.info("run", trials=..., wall_s=...)``).
"""
from __future__ import annotations

import logging as _stdlib_logging
import sys

import structlog

_configured = False


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
        logger_factory=structlog.PrintLoggerFactory(stream or sys.stderr),
        cache_logger_on_first_use=False,
    )
    _configured = True


def get_logger(name: str):
    """A structlog logger bound to ``name``; configures warnings-only output on first use if nobody did."""
    if not _configured:
        configure(level="WARNING")
    return structlog.get_logger(name)
