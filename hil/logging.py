"""Logging: library events go through stdlib ``logging``; only programs configure output.

Library code logs one event per device operation with its key figures::

    log = hil.logging.get_logger(__name__)
    log.info("run", trials=3, wall_s=0.12)

Each call becomes one stdlib ``LogRecord`` on the logger ``__name__`` (structlog's stdlib
integration, with processors local to these loggers: the global structlog configuration is
neither read nor changed). Its message reads ``run trials=3 wall_s=0.12``; the attributes
``record.event`` (``"run"``) and ``record.fields`` (``{"trials": 3, "wall_s": 0.12}``) carry
the structure. So the user's handlers, levels and filters, and pytest's ``caplog``, decide
what is shown. Nothing here configures logging on import or on first use: without any
configuration, Python's last-resort handler prints WARNING and above to stderr.

Programs (the tools) call :func:`configure` once: one handler on the root logger, human
lines or JSON lines, written through ``tqdm.write`` so that a progress bar on the same
terminal is cleared, the line printed, and the bar redrawn.
"""

from __future__ import annotations

import datetime
import json as _json
import logging
import pathlib
import sys

import structlog
from tqdm import tqdm

PROJECT_LOGGERS = ("hil", "drivers", "calibration", "training")
"""Top-level logger names of the project's packages (set their level to tune the project's output)."""

_STRUCTLOG_DIR = str(pathlib.Path(structlog.__file__).parent)


def _value(v) -> str:
    text = str(v)
    return repr(text) if (not text or any(c.isspace() for c in text)) and isinstance(v, str) else text


def _to_stdlib(logger: logging.Logger, method_name: str, event_dict: dict):
    """Final processor: the positional message and the ``extra`` of the stdlib call."""
    kwargs = {k: event_dict.pop(k) for k in ("exc_info", "stack_info") if k in event_dict}
    event = str(event_dict.pop("event", ""))
    message = " ".join([event, *(f"{k}={_value(v)}" for k, v in event_dict.items())])
    kwargs["extra"] = {"event": event, "fields": event_dict}
    kwargs["stacklevel"] = _caller_stacklevel()
    return (message,), kwargs


def _caller_stacklevel() -> int:
    """``stacklevel`` that makes the record name the code that called ``log.info(...)``.

    Frames from here: this function, ``_to_stdlib``, structlog's event processing, then
    structlog's frames from the one that calls the stdlib logger (stacklevel 1) up to the
    caller.
    """
    frame, depth = sys._getframe(2), 0
    while frame is not None and frame.f_code.co_filename.startswith(_STRUCTLOG_DIR):
        frame, depth = frame.f_back, depth + 1
    return max(depth, 1)


_PROCESSORS = (structlog.stdlib.filter_by_level, _to_stdlib)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A structlog logger writing to the stdlib logger ``name`` (``log.info("event", key=value)``)."""
    return structlog.stdlib.BoundLogger(logging.getLogger(name), _PROCESSORS, {})


# --- output for programs ----------------------------------------------------------------------
def _timestamp(record: logging.LogRecord) -> str:
    t = datetime.datetime.fromtimestamp(record.created, tz=datetime.UTC)
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class HumanFormatter(logging.Formatter):
    """``2025-01-31T12:00:00.000Z warning  calibration.cache: cache_unreadable path=...``"""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{_timestamp(record)} {record.levelname.lower():<8} {record.name}: {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``timestamp``, ``level``, ``logger``, ``event`` and the fields."""

    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "fields", None)
        out = {"timestamp": _timestamp(record), "level": record.levelname.lower(), "logger": record.name}
        if isinstance(fields, dict) and hasattr(record, "event"):
            out |= {"event": record.event, **{k: v for k, v in fields.items() if k not in out}}
        else:
            out["event"] = record.getMessage()
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return _json.dumps(out, default=_json_default)


def _json_default(v):
    item = getattr(v, "item", None)  # numpy scalars; 0-d arrays
    if callable(item) and getattr(v, "size", 1) == 1:
        return item()
    tolist = getattr(v, "tolist", None)
    return tolist() if callable(tolist) else str(v)


class ToolHandler(logging.Handler):
    """Writes formatted records to ``stream`` (``sys.stderr`` looked up at write time when None)
    through ``tqdm.write``, so progress bars survive log lines. A closed or broken stream drops
    the line instead of raising: logging is not worth a crashed device server."""

    def __init__(self, stream=None, level: int = logging.NOTSET):
        super().__init__(level)
        self._stream = stream

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=self._stream or sys.stderr)
        except (ValueError, OSError):
            pass


def level_number(level: str | int) -> int:
    """``"info"``/``"INFO"``/``20`` -> 20; ``ValueError`` names the allowed names."""
    if isinstance(level, int):
        return level
    names = logging.getLevelNamesMapping()
    if str(level).upper() not in names:
        raise ValueError(f"log level {level!r}; allowed: DEBUG, INFO, WARNING, ERROR, CRITICAL")
    return names[str(level).upper()]


def configure(*, json: bool = False, level: str | int = "INFO", stream=None) -> logging.Handler:
    """For programs only: show log records on ``stream`` (default stderr) as human or JSON lines.

    Installs one :class:`ToolHandler` on the root logger (replacing the one an earlier call
    installed; other handlers stay) and sets the root logger to ``level``. DEBUG is the
    exception: the root logger stays at INFO and only the project's loggers
    (:data:`PROJECT_LOGGERS`) go to DEBUG, so ``-vv`` shows the project's DEBUG events
    without every library's. Returns the handler.
    """
    number = level_number(level)
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, ToolHandler)]:
        root.removeHandler(old)
    handler = ToolHandler(stream)
    handler.setFormatter(JsonFormatter() if json else HumanFormatter())
    root.addHandler(handler)
    root.setLevel(max(number, logging.INFO))
    for name in PROJECT_LOGGERS:
        logging.getLogger(name).setLevel(number if number < logging.INFO else logging.NOTSET)
    return handler
