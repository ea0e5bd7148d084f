"""The drivers' programs: ``hil-mock-device`` (the mock chip behind the wire protocol) and
``hil-rig`` (N mock chips and data-parallel training on them).

Both follow ``hil.cli``: ``--version``, ``-v``/``-q``, ``--log-json``, ``--debug``; exit
codes 0 ok, 1 error, 2 usage, 130 interrupted (the rig passes the training's own code on).
``python -m drivers mock-device ...`` and ``python -m drivers rig ...`` run them too.
"""

from __future__ import annotations

import argparse
import errno
import signal
import socket
import subprocess
import sys
from collections.abc import Sequence

from hil import cli
from hil.errors import ConfigError, HilError, ResourceError

from . import rig

MOCK_DEVICE_HELP = """Serve the mock chip over the wire protocol (TCP or a pseudo-terminal).

Prints one line `listening socket://HOST:PORT` or `listening /dev/pts/N` (flushed) when
ready; the host opens that address with hil.open. SIGINT/SIGTERM stop it cleanly (exit 0).

  hil-mock-device --seed 3 --noise off
  hil-mock-device --listen 127.0.0.1:5555 --pace realtime --overhead 0.03   # paced like a real chip
"""

RIG_HELP = """A local test rig: N mock chips served over TCP, and data-parallel training on them.

  hil-rig --chips 2 -- --out runs/rig2 --epochs 3
  hil-rig --chips 4 --pace realtime --overhead 0.03 --seed0 10 -- --config cfg.json --out runs/rig4

Starts N mock-device servers (chip seeds SEED0, SEED0+1, ...) on free loopback ports, runs
the training CLI (hil-train) with `--nproc N --device URL0,URL1,... <training arguments>`
and stops all servers when training ends, fails or is interrupted. Exits with the
training's exit code. --print-urls only starts the servers, prints their URLs and serves
until Ctrl-C.
"""


def _mock_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--noise", choices=("on", "off"), default="on", help="trial-to-trial noise (default on)")
    p.add_argument(
        "--pace",
        choices=("off", "realtime"),
        default="off",
        help="realtime: each run lasts at least its trials' chip time plus --overhead (like a real chip); default off",
    )
    p.add_argument(
        "--overhead",
        type=float,
        metavar="SECONDS",
        help="per-run host/FPGA overhead of --pace realtime in seconds (default 0.005)",
    )


def mock_device_parser() -> cli.ArgumentParser:
    p = cli.ArgumentParser(
        prog="hil-mock-device", description=MOCK_DEVICE_HELP, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--listen",
        default="127.0.0.1:0",
        metavar="HOST:PORT",
        help="TCP address (port 0: pick a free one); default 127.0.0.1:0",
    )
    where.add_argument("--pty", action="store_true", help="serve on a new pseudo-terminal instead of TCP")
    p.add_argument("--seed", type=int, default=0, help="chip seed (fixed-pattern mismatch); default 0")
    p.add_argument("--noise-seed", type=int, help="seed of the noise stream (default: from --seed)")
    _mock_options(p)
    cli.add_common_arguments(p)
    return p


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) -> ``(host, port)``; ``ConfigError`` otherwise."""
    host, sep, port = text.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ConfigError(
            f"--listen {text!r}: expected HOST:PORT with a port 0..65535 (0: a free one), e.g. 127.0.0.1:5555"
        )
    return host, int(port)


def open_server(device, address: tuple[str, int] | None, listen: str = ""):
    """A ``drivers.server.Server`` for ``device`` on ``address`` (None: a pseudo-terminal);
    errors name the ``--listen`` value."""
    from .server import Server

    if address is None:
        return Server(device, pty=True)
    host, port = address
    try:
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ConfigError(f"--listen {listen}: cannot resolve the host {host!r} ({exc.strerror})") from None
    try:
        return Server(device, host=host, port=port)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise ResourceError(
                f"--listen {listen}: the port is in use; choose another one, or port 0 for a free one"
            ) from None
        raise HilError(f"--listen {listen}: cannot listen there ({exc.strerror or exc})") from None


def _check_pacing(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.overhead is not None and args.pace != "realtime":
        parser.error("--overhead needs --pace realtime")


def _serve_mock(argv: Sequence[str]) -> int:
    parser = mock_device_parser()
    args = parser.parse_args(argv)
    cli.configure_logging(args)
    _check_pacing(parser, args)
    address = None
    if not args.pty:
        try:
            address = parse_listen(args.listen)
        except ConfigError as exc:
            parser.error(str(exc))
    from .mock import MockChip

    pacing = {"pace": args.pace} | ({"overhead_s": args.overhead} if args.overhead is not None else {})
    try:
        chip = MockChip(seed=args.seed, noise=args.noise == "on", noise_seed=args.noise_seed, **pacing)
    except ConfigError as exc:
        parser.error(str(exc))
    server = open_server(chip, address, args.listen)
    previous = {sig: signal.signal(sig, lambda *_: server.request_stop()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        print(f"listening {server.address}", flush=True)
        server.serve_forever()
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return cli.EXIT_OK


def mock_device_main(argv: Sequence[str] | None = None) -> int:
    """``hil-mock-device``: serve a mock chip until SIGINT/SIGTERM."""
    return cli.run("hil-mock-device", _serve_mock, argv)


def rig_parser() -> cli.ArgumentParser:
    p = cli.ArgumentParser(
        prog="hil-rig",
        usage="hil-rig --chips N [options] [-- TRAINING ARGUMENTS]",
        description=RIG_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--chips", type=int, required=True, help="number of mock chips (= training ranks)")
    p.add_argument(
        "--seed0", type=int, default=0, help="chip seed of the first chip; chip i gets SEED0 + i (default 0)"
    )
    _mock_options(p)
    p.add_argument(
        "--print-urls", action="store_true", help="only serve the chips: print their URLs and wait for Ctrl-C"
    )
    cli.add_common_arguments(p)
    return p


_RIG_SETS = ("--device", "--nproc")


def _run_rig(argv: Sequence[str]) -> int:
    argv = list(argv)
    own, train_args = (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    parser = rig_parser()
    args = parser.parse_args(own)
    cli.configure_logging(args)
    if args.chips < 1:
        parser.error(f"--chips {args.chips}; allowed: an integer >= 1")
    _check_pacing(parser, args)
    if any(a == flag or a.startswith(flag + "=") for a in train_args for flag in _RIG_SETS):
        parser.error("the rig sets --device and --nproc of the training itself; leave them out of its arguments")
    previous = signal.signal(signal.SIGTERM, _interrupt)
    servers, train = [], None
    try:
        for i in range(args.chips):
            servers.append(rig.start_server(args.seed0 + i, noise=args.noise, pace=args.pace, overhead=args.overhead))
        urls = ",".join(url for _, url in servers)
        print(f"{parser.prog}: {args.chips} chip(s): {urls}", flush=True)
        if args.print_urls:
            signal.pause()
            return cli.EXIT_OK
        cmd = [*rig.train_command(), "--nproc", str(args.chips), "--device", urls, *train_args]
        train = subprocess.Popen(cmd, env=rig.child_env())
        return train.wait()
    finally:
        if train is not None:
            rig.stop([train], timeout=30.0)
        rig.stop([proc for proc, _ in servers])
        signal.signal(signal.SIGTERM, previous)


def _interrupt(*_) -> None:
    raise KeyboardInterrupt


def rig_main(argv: Sequence[str] | None = None) -> int:
    """``hil-rig``: N mock chips and the training CLI on them; returns the training's exit code."""
    return cli.run("hil-rig", _run_rig, argv)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m drivers {mock-device,rig} ...``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    programs = {"mock-device": mock_device_main, "rig": rig_main}
    if not argv or argv[0] not in programs:
        print(f"usage: python -m drivers {{{','.join(programs)}}} [ARGS...]", file=sys.stderr)
        return cli.EXIT_USAGE
    return programs[argv[0]](argv[1:])
