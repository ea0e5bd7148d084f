"""Conventions every command-line tool of the project shares.

Exit codes (the same for every tool, documented in ``docs/protocol.md``):

    0 ok, 1 error, 2 usage, 3 stopped with the checkpoint kept, 130 interrupted.

Every error path prints one line on stderr, ``<prog>: error: <message>``; a traceback only
with ``--debug``. Tools add the common flags with :func:`add_common_arguments`, set up their
log output with :func:`configure_logging` and wrap their ``main`` in :func:`run`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_STOPPED = 3
EXIT_INTERRUPTED = 130


class Stopped(Exception):
    """Raised by a tool's main to exit with ``EXIT_STOPPED`` (work stopped, the checkpoint kept)."""


class ArgumentParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose usage errors are one line, ``<prog>: error: <message>;
    see --help``, with exit code ``EXIT_USAGE``."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}; see --help\n")


def version_string(prog: str) -> str:
    from . import __version__

    return f"{prog} (bss2-hil) {__version__}"


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """``--version``, ``-v``/``-q``, ``--log-json`` and ``--debug``."""
    group = parser.add_argument_group("output")
    group.add_argument("--version", action="version", version=version_string(parser.prog))
    group.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-v info, -vv debug)")
    group.add_argument("-q", "--quiet", action="store_true", help="no progress output, errors only")
    group.add_argument("--log-json", action="store_true", help="log events as JSON lines on stderr")
    group.add_argument("--debug", action="store_true", help="show the traceback of an error")


def log_level(args: argparse.Namespace) -> str:
    """WARNING by default; -v INFO, -vv DEBUG; -q ERROR."""
    if getattr(args, "quiet", False):
        return "ERROR"
    return {0: "WARNING", 1: "INFO"}.get(getattr(args, "verbose", 0), "DEBUG")


def configure_logging(args: argparse.Namespace) -> None:
    """The tool's log output from its common arguments: :func:`log_level`, JSON lines with ``--log-json``."""
    from . import logging as hil_logging

    hil_logging.configure(json=getattr(args, "log_json", False), level=log_level(args))


def run(prog: str, main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None = None) -> int:
    """Call ``main(argv)`` and turn every failure into one stderr line and an exit code.

    ``HilError``/``OSError``/``ValueError`` and any other exception: 1 (with ``--debug`` in argv
    the traceback is shown); ``Stopped``: 3; ``KeyboardInterrupt``: 130; argparse usage
    errors exit 2 on their own.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    try:
        return int(main(args) or EXIT_OK)
    except Stopped as exc:
        print(f"{prog}: stopped: {exc}", file=sys.stderr)
        return EXIT_STOPPED
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except SystemExit:
        raise
    except Exception as exc:
        if debug:
            raise
        from .errors import HilError

        what = str(exc) if isinstance(exc, HilError) else f"{type(exc).__name__}: {exc}"
        print(f"{prog}: error: {what.splitlines()[0] if what else type(exc).__name__}", file=sys.stderr)
        if not isinstance(exc, HilError | OSError):
            print(f"{prog}: (unexpected; rerun with --debug for the traceback)", file=sys.stderr)
        return EXIT_ERROR
