"""Command-line programs of the training package: ``train_main`` (tools/train, hil-train) and
``evaluate_main`` (tools/evaluate, hil-evaluate).

Exit codes as every tool of the project (``hil.cli``): 0 done, 1 error, 2 usage, 3 stopped
with the checkpoint kept (device or another rank failed), 130 interrupted. Every error is one
line on stderr (a traceback only with ``--debug``).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import socket
import sys

import hil
import hil.cli

from .config import TrainerConfig, describe_fields, with_assignments
from .inference import ON_MISMATCH, evaluate_run

TRAIN_EXAMPLES = """\
Train a spiking network with EventProp through a chip (default: the built-in mock chip) or
on the ideal model in software (--device software).

    tools/train                                       # defaults: Yin-Yang on mock://, runs/yinyang
    tools/train --set epochs=5 --set n_hidden=60 --out runs/quick
    tools/train --config configs/digits.json --out runs/digits
    tools/train --device socket://127.0.0.1:5555 --out runs/chip3 --epochs 30
    tools/train --out runs/yinyang --resume           # continue from the last checkpoint

Data-parallel on several chips (one process per chip; see docs/scaling.md):

    tools/train --nproc 2 --device socket://127.0.0.1:5555,socket://127.0.0.1:5556 --out runs/two
    tools/train --nproc 4 --device 'socket://127.0.0.1:{5555+rank}' --out runs/four
"""


TRAIN_PROG, EVALUATE_PROG = "hil-train", "hil-evaluate"  # the console scripts' names, also used by tools/*


def _train_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=TRAIN_PROG,
        description=TRAIN_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="config fields (--set NAME=VALUE, or keys of --config; default, meaning):\n" + describe_fields(),
    )
    p.add_argument("--config", type=pathlib.Path, help="JSON file with config fields (see below)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set one config field, typed by the field (repeatable): --set lr=2e-3 --set n_hidden=[60,30]",
    )
    p.add_argument("--print-config", action="store_true", help="print the effective config as JSON and exit")
    p.add_argument("--epochs", type=int, help="training epochs (the config field epochs)")
    p.add_argument("--seed", type=int, help="seed of the initial weights and the sample order (the config field seed)")
    p.add_argument(
        "--device",
        help="device URL or 'software' (default mock://); several ranks: comma-separated URLs, "
        "one per rank, or a template such as 'socket://127.0.0.1:{5555+rank}'",
    )
    p.add_argument(
        "--calibration",
        help="calibration result file (default: calibrate, cached per chip); "
        "several ranks: one per rank, comma-separated",
    )
    p.add_argument(
        "--out",
        type=pathlib.Path,
        default=pathlib.Path("runs/yinyang"),
        help="output directory: report.json, metrics, checkpoint.pt, network files, plots",
    )
    p.add_argument(
        "--resume", action="store_true", help="continue from OUT/checkpoint.pt (config from OUT/config.json)"
    )
    p.add_argument(
        "--nproc",
        type=int,
        metavar="N",
        help="data-parallel on N chips: relaunch under torch.distributed.run, N processes on this host",
    )
    p.add_argument(
        "--collective-timeout",
        type=float,
        default=120.0,
        metavar="S",
        help="seconds a rank waits in a collective (and for the group to form); default 120",
    )
    hil.cli.add_common_arguments(p)
    return p


def effective_config(args) -> TrainerConfig:
    """The config file (OUT/config.json when resuming without --config), then --set, then the flags."""
    flags = {"device": args.device, "epochs": args.epochs, "seed": args.seed, "calibration": args.calibration}
    if args.config is not None:
        base = TrainerConfig.load(args.config)
    elif args.resume and (args.out / "config.json").is_file():
        base = TrainerConfig.load(args.out / "config.json")
    else:
        base = TrainerConfig()
    config = with_assignments(base, args.set)
    return TrainerConfig.from_dict(config.to_dict(), **flags)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def strip_nproc(argv: list[str]) -> list[str]:
    """``argv`` without ``--nproc N`` / ``--nproc=N``."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--nproc":
            skip = True
        elif not a.startswith("--nproc="):
            out.append(a)
    return out


def launch(nproc: int, argv: list[str]) -> None:
    """Replace this process by ``torch.distributed.run`` starting ``python -m training.cli`` ``nproc`` times."""
    root = str(pathlib.Path(__file__).resolve().parent.parent)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        str(nproc),
        "--master-addr",
        "127.0.0.1",
        "--master-port",
        str(free_port()),
        "-m",
        "training.cli",
        *strip_nproc(argv),
    ]
    sys.stdout.flush()
    os.execv(sys.executable, cmd)


def _train(argv) -> int:
    args = _train_parser().parse_args(argv)
    if args.nproc is not None:
        if args.nproc < 1:
            raise hil.errors.ConfigError(f"--nproc {args.nproc}; allowed: an integer >= 1")
        if "WORLD_SIZE" in os.environ:
            raise hil.errors.ConfigError("--nproc under torchrun; launch either with torchrun or with --nproc")
        if args.nproc > 1:
            launch(args.nproc, list(argv))
    hil.logging.configure(json=args.log_json, level=hil.cli.log_level(args))
    config = effective_config(args)
    if args.print_config:
        print(json.dumps(config.to_dict(), indent=2))
        return hil.cli.EXIT_OK
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return _train_rank(args, config)
    return _train_single(args, config)


def _train_single(args, config) -> int:
    from .distributed import Group
    from .trainer import Trainer, TrainingInterrupted

    try:
        report = Trainer(config, args.out, progress=not args.quiet, group=Group.single()).run(resume=args.resume)
    except TrainingInterrupted as exc:
        raise hil.cli.Stopped(str(exc)) from None
    except KeyboardInterrupt:
        kept = args.out / "checkpoint.pt"
        print(f"train: the last finished epoch is in {kept}; rerun with --out {args.out} --resume", file=sys.stderr)
        raise
    _print_summary(args.out, report)
    return hil.cli.EXIT_OK


def _train_rank(args, config) -> int:
    """One rank of a torchrun group: on any failure, say which rank and device, and leave at once (the others
    notice a peer gone or time out, and torchrun tears the group down)."""
    from .distributed import Group, device_for_rank
    from .trainer import Trainer, TrainingInterrupted

    rank, world = int(os.environ.get("RANK", "0")), int(os.environ["WORLD_SIZE"])
    where, code, group = f"rank {rank}: ", hil.cli.EXIT_OK, None
    try:
        where = f"rank {rank} (device {device_for_rank(config.device, rank, world)}): "
        group = Group(args.collective_timeout)
        report = Trainer(config, args.out, progress=not args.quiet, group=group).run(resume=args.resume)
    except TrainingInterrupted as exc:
        print(f"train: stopped: {exc}", file=sys.stderr)
        code = hil.cli.EXIT_STOPPED
    except KeyboardInterrupt:
        print(f"train: {where}interrupted; rerun with --out {args.out} --resume", file=sys.stderr)
        code = hil.cli.EXIT_INTERRUPTED
    except Exception as exc:
        text = str(exc) if isinstance(exc, hil.HilError) else f"{type(exc).__name__}: {exc}"
        print(f"train: {where}error: {text}", file=sys.stderr)
        code = hil.cli.EXIT_ERROR
    if code:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    if group.is_main:
        _print_summary(args.out, report)
    group.close()
    return hil.cli.EXIT_OK


def _print_summary(out: pathlib.Path, report: dict) -> None:
    summary = {
        "test_accuracy": report["test_accuracy"],
        "epochs": report["epochs"],
        "wall_time_s": round(report["wall_time_s"], 1),
        "calibration": report["calibration"],
    }
    if "world_size" in report:
        summary["world_size"] = report["world_size"]
    print(json.dumps(summary))
    print(f"report: {out / 'report.json'}")
    for name, path in report["plots"].items():
        print(f"plot {name}: {path}")


def train_main(argv=None) -> int:
    """``tools/train`` / ``hil-train``."""
    return hil.cli.run(TRAIN_PROG, _train, argv)


EVALUATE_EXAMPLES = """\
    tools/evaluate runs/yinyang                                  # the run's test split on the run's device
    tools/evaluate runs/yinyang --device mock://?seed=7          # another chip: recalibrated (or --on-mismatch refuse)
    tools/evaluate runs/yinyang/network.nir --device mock:// --data yinyang    # deploy a NIR graph
"""


def _evaluate_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=EVALUATE_PROG,
        description="Evaluate a finished training run's network, or a NIR graph, on a device (or in software) "
        "on the test split of a data set.",
        epilog=EVALUATE_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "run", type=pathlib.Path, help="run directory of tools/train (network.json, network.npz) or a NIR file (.nir)"
    )
    p.add_argument("--device", help="device URL or 'software' (default: the run's device; for a graph: software)")
    p.add_argument(
        "--on-mismatch",
        choices=ON_MISMATCH,
        default="recalibrate",
        help="run directories: when the chip's calibration is not the run's: use the chip's own calibration to the "
        "run's target (recalibrate, the default) or stop (refuse)",
    )
    p.add_argument("--data", choices=("yinyang", "digits"), help="NIR graphs: the data set (default: yinyang)")
    p.add_argument(
        "--clip-weights",
        action="store_true",
        help="NIR graphs: clip weights beyond the chip's 6 bits (counted in the output) instead of refusing",
    )
    hil.cli.add_common_arguments(p)
    return p


def _evaluate(argv) -> int:
    p = _evaluate_parser()
    args = p.parse_args(argv)
    hil.logging.configure(json=args.log_json, level=hil.cli.log_level(args))
    if not args.run.exists():
        raise hil.errors.ConfigError(f"{args.run}: no such run directory or NIR file")
    if args.run.is_dir():
        if args.data or args.clip_weights:
            p.error("--data and --clip-weights are for NIR graphs; a run directory is evaluated on its own data set")
        result = evaluate_run(args.run, args.device, on_mismatch=args.on_mismatch, progress=not args.quiet)
    else:
        from .nir.deploy import evaluate_graph

        result = evaluate_graph(
            args.run,
            args.device or "software",
            data=args.data or "yinyang",
            clip_weights=args.clip_weights,
            progress=not args.quiet,
        )
    print(result["calibration_note"])
    print(json.dumps(result))
    return hil.cli.EXIT_OK


def evaluate_main(argv=None) -> int:
    """``tools/evaluate`` / ``hil-evaluate``."""
    return hil.cli.run(EVALUATE_PROG, _evaluate, argv)


if __name__ == "__main__":  # the entry torch.distributed.run starts on every rank (see ``launch``)
    sys.exit(train_main())
