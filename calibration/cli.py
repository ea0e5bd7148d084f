"""``hil-calibrate`` (``tools/calibrate``): calibrate a chip and print what it achieved.

Prints whether the result was calibrated now or came from the cache (with the chip id), a
table of every parameter's spread before (uniform start codes) and after calibration, and
the cost; ``--out`` writes the result (JSON + .npz), ``--plot`` the figures. Exit codes
(``hil.cli``): 0 ok, 1 error (one line on stderr; the traceback with ``--debug``), 2 usage,
130 interrupted. Logging is WARNING by default (``-v`` INFO, ``-vv`` DEBUG).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

import numpy as np

import hil
import hil.cli
import hil.logging
from hil import chip
from hil.errors import ConfigError, HilError

from .target import PARAMETERS, UNITS, CalibrationTarget

TARGET_OPTIONS = {
    "v_leak": ("--v-leak", "resting potential, CADC LSB"),
    "v_reset": ("--v-reset", "reset potential, CADC LSB"),
    "v_threshold": ("--v-threshold", "threshold, CADC LSB"),
    "tau_mem": ("--tau-mem", "membrane time constant, s"),
    "tau_syn_exc": ("--tau-syn-exc", "excitatory synaptic time constant, s"),
    "tau_syn_inh": ("--tau-syn-inh", "inhibitory synaptic time constant, s"),
    "refractory": ("--refractory", "refractory time, s"),
    "weight_gain_exc": ("--weight-gain-exc", "excitatory current jump per weight LSB, CADC LSB"),
    "weight_gain_inh": ("--weight-gain-inh", "inhibitory current jump per weight LSB, CADC LSB"),
}
EXAMPLES = """examples:
  hil-calibrate                                    # the mock chip, default target
  hil-calibrate --device 'mock://?seed=11' --out cal11.json --plot plots/
  hil-calibrate --device socket://127.0.0.1:5555 --tau-mem 10e-6 --refractory 2e-6
  hil-calibrate --devices socket://127.0.0.1:5555,socket://127.0.0.1:5556 --out cals/
"""


def number(text: str) -> float:
    """argparse type: a finite number (argparse names the option in its message)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not np.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def neuron_spec(text: str) -> np.ndarray | None:
    """argparse type: 'all', '0-127', '0,5,9' or ranges mixed -> neuron indices (None: all)."""
    if text.strip() == "all":
        return None
    allowed = f"allowed: 'all', or indices and ranges 0..{chip.N_NEURONS - 1} such as '0-127' or '0,5,9'"
    out = []
    for part in (p.strip() for p in text.split(",")):
        where = repr(part) if part == text.strip() else f"{part!r} in {text!r}"
        first, dash, last = part.partition("-")
        if not first.isdigit() or (dash and not last.isdigit()):
            raise argparse.ArgumentTypeError(f"{where} is not an index or a range; {allowed}")
        a, b = int(first), int(last) if dash else int(first)
        if b < a or b >= chip.N_NEURONS:
            raise argparse.ArgumentTypeError(f"{where} is out of range; {allowed}")
        out.extend(range(a, b + 1))
    return np.unique(np.array(out, dtype=np.int64))


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer >= 1")
    return int(text)


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description="Calibrate a chip: per-neuron CapMem values that make every neuron match a target.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--device", default="mock://", help="device URL (default: mock://)")
    p.add_argument(
        "--devices",
        metavar="URL,URL,...",
        help="calibrate several devices in parallel processes; --out is then a directory receiving "
        "<chip id>.json (+ .npz) per chip",
    )
    p.add_argument("--workers", type=positive_int, help="with --devices: at most this many at once (default: all)")
    p.add_argument(
        "--target",
        type=pathlib.Path,
        help="JSON file with target values (keys as in CalibrationTarget); the options below override it",
    )
    for name, (flag, text) in TARGET_OPTIONS.items():
        p.add_argument(flag, dest=name, type=number, metavar="VALUE", help=text)
    p.add_argument("--neurons", type=neuron_spec, help="neurons to calibrate: 'all' (default), '0-127', '0,5,9'")
    p.add_argument("--out", type=pathlib.Path, help="write the result here (FILE.json and FILE.npz)")
    p.add_argument("--plot", type=pathlib.Path, metavar="DIR", help="write the calibration figures (PNG) into DIR")
    p.add_argument("--no-cache", action="store_true", help="neither read nor write the calibration cache")
    hil.cli.add_common_arguments(p)
    return p


def make_target(args) -> CalibrationTarget:
    """The target from ``--target`` and the per-parameter options; errors name the option or file."""
    values = {}
    if args.target is not None:
        try:
            values = json.loads(args.target.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise HilError(f"--target {args.target}: cannot read a JSON object of target values ({exc})") from None
        if not isinstance(values, dict):
            raise HilError(f'--target {args.target}: expected a JSON object like {{"tau_mem": 12e-6}}')
        try:
            CalibrationTarget.from_dict(values)
        except ConfigError as exc:
            if "v_threshold -" not in str(exc):  # cross-parameter checks come below, with the options
                raise ConfigError(f"--target {args.target}: {exc}") from None
    for name, (flag, _) in TARGET_OPTIONS.items():
        v = getattr(args, name)
        if v is not None:
            try:
                CalibrationTarget.from_dict({name: v})
            except ConfigError as exc:
                raise ConfigError(f"{flag} {v:g}: {exc}") from None
            values[name] = v
    return CalibrationTarget.from_dict(values)


def _spread_cell(d, scale: float, relative: bool) -> str:
    """Mean and spread (relative in %, or absolute) of one ``result.spread`` entry."""
    if not d or d.get("n", 0) == 0:
        return f"{'-':>13}{'-':>10}"
    spread = f"{100 * d['rel_std']:.2f}%" if relative else f"{d['std']:.2f}"
    return f"{d['mean'] * scale:13.4g}{spread:>10}"


def spread_table(result) -> str:
    """The spread of every parameter before and after calibration, and the cost."""
    before, after = result.spread("before"), result.spread("measured")
    lines = [
        f"{int(result.success_mask.sum())}/{result.neurons.size} neurons calibrated",
        f"{'parameter':<17}{'target':>11}{'before mean':>13}{'spread':>10}{'after mean':>13}{'spread':>10}  unit",
    ]
    for p in PARAMETERS:
        if p not in after:
            continue
        t = float(np.median(result.target.per_neuron(p)))
        scale, unit = (1e6, "us") if UNITS[p] == "s" else (1.0, UNITS[p])
        cells = [
            _spread_cell(before.get(p), scale, UNITS[p] != "LSB"),
            _spread_cell(after.get(p), scale, UNITS[p] != "LSB"),
        ]
        lines.append(f"{p:<17}{t * scale:11.4g}{cells[0]}{cells[1]}  {unit}")
    f = result.figures
    lines.append(
        f"device runs {f.get('device_runs')}, trials {f.get('trials')}, "
        f"chip time {1e3 * f.get('chip_time_s', 0):.1f} ms "
        f"(a real chip: ~{f.get('real_chip_estimate_s', 0):.1f} s), bytes sent {f.get('bytes_sent')} "
        f"received {f.get('bytes_received')}"
    )
    if np.isfinite(result.adc.madc_gain):
        off = result.adc.cadc_offset[result.success_mask]
        lines.append(
            f"CADC channel offsets: rms {np.sqrt(np.nanmean(off**2)):.2f} LSB (removed from the potentials); "
            f"MADC {result.adc.madc_gain:.3f} codes/LSB, offset {result.adc.madc_offset:.1f} codes"
        )
    fails = [r for r in result.reasons if r]
    if fails:
        lines.append(f"{len(fails)} neuron(s) flagged; first: {fails[0]}")
    return "\n".join(lines)


def calibrate_one(url: str, target, args):
    """Open ``url``, calibrate, close: one device."""
    from .routine import calibrate

    with hil.open(url) as device:
        return calibrate(device, target, neurons=args.neurons, progress=not args.quiet, cache=not args.no_cache)


def calibrate_devices(args, target) -> int:
    """``--devices``: one process per device; one line per chip; exit 1 if any failed."""
    from .parallel import calibrate_many

    urls = [u.strip() for u in args.devices.split(",") if u.strip()]
    if args.out is None:
        raise HilError("--devices needs --out DIR (one result file per chip id goes there)")

    def done(o):
        if o.ok:
            print(
                f"chip {o.chip_id} ({o.url}): calibration {o.calibration_id}, {o.calibrated}/{o.neurons} neurons, "
                f"{o.wall_s:.1f} s -> {o.path}",
                flush=True,
            )
        else:
            print(f"device {o.url}: FAILED after {o.wall_s:.1f} s: {o.error}", flush=True)

    outcomes = calibrate_many(
        urls, target, args.out, neurons=args.neurons, cache=not args.no_cache, workers=args.workers, on_done=done
    )
    failed = [o for o in outcomes if not o.ok]
    print(f"calibrated {len(outcomes) - len(failed)}/{len(outcomes)} device(s) into {args.out}")
    return hil.cli.EXIT_ERROR if failed else hil.cli.EXIT_OK


def _main(argv) -> int:
    args = build_parser(PROG).parse_args(argv)
    hil.logging.configure(json=args.log_json, level=hil.cli.log_level(args))
    target = make_target(args)
    if args.devices:
        return calibrate_devices(args, target)
    result = calibrate_one(args.device, target, args)
    print(result.source_line())
    print(spread_table(result))
    if args.out is not None:
        path = result.save(args.out)
        print(f"wrote {path} and {path.with_suffix('.npz')}")
    if args.plot is not None:
        from .plots import write_figures

        for path in write_figures(result, args.plot):
            print(f"wrote {path}")
    return hil.cli.EXIT_OK


PROG = "hil-calibrate"


def main(argv=None) -> int:
    """Console script ``hil-calibrate``; returns the exit code (usage errors: 2)."""
    try:
        return hil.cli.run(PROG, _main, argv)
    except SystemExit as exc:  # argparse: --help, --version (0) and usage errors (2)
        return exc.code if isinstance(exc.code, int) else hil.cli.EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
