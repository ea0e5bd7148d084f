#!/usr/bin/env python3
"""Benchmarks of the project, printed as JSON.

Usage: tools/bench.py [CASE ...] [--repeats N] [--processes K] [--quick] [--out FILE]

Each case lives in ``tools/bench_cases/<area>.py`` as a function registered with
``@case("area.name")``. A case receives a :class:`Bench` and returns a dict of figures;
it times its work with ``bench.time(fn)``, which runs ``fn`` ``repeats`` times after a
warm-up and returns the median wall time in seconds (all runs are kept in the output).
Ratios against a baseline are computed inside the case, in the same process.

A machine whose speed per core differs between processes (a shared or virtual CPU) moves
every figure of a process together; ``--processes K`` runs the cases in K fresh processes,
one after another, and reports each numeric figure as the median over them (the figures of
every process are kept under ``per_process``).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.modules.setdefault("bench", sys.modules[__name__])  # cases import `bench` while this runs as __main__
CASES: dict = {}


def case(name):
    """Register a benchmark case under ``name`` (``area.what``)."""

    def register(fn):
        CASES[name] = fn
        return fn

    return register


class Bench:
    """Timing helper handed to every case."""

    def __init__(self, repeats: int, quick: bool):
        self.repeats = repeats
        self.quick = quick
        self.runs: dict[str, list[float]] = {}

    def time(self, fn, *, label: str = "main", warmup: int = 1) -> float:
        """Median wall time of ``fn()`` in seconds over ``repeats`` runs after ``warmup`` runs."""
        for _ in range(warmup):
            fn()
        runs = []
        for _ in range(self.repeats):
            start = time.perf_counter()
            fn()
            runs.append(time.perf_counter() - start)
        self.runs[label] = runs
        return statistics.median(runs)


def load_cases():
    sys.path.insert(0, str(HERE))
    for path in sorted((HERE / "bench_cases").glob("*.py")):
        if path.stem != "__init__":
            importlib.import_module(f"bench_cases.{path.stem}")


_SIMD = ("sse4_2", "avx2", "fma", "avx512f")  # the instruction sets numba's and torch's kernels use


def _cpu() -> tuple[str, list[str]]:
    """The processor's model name and which of ``_SIMD`` it has (Linux: /proc/cpuinfo; elsewhere
    the name ``platform`` knows and no flags)."""
    name, flags = platform.processor() or platform.machine(), []
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                name = value.strip()
            elif key.strip() == "flags":
                have = set(value.split())
                flags = [f for f in _SIMD if f in have]
                break
    except OSError:
        pass
    return name, flags


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages (None where the system has none)."""
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None


def machine() -> dict:
    """What the figures were measured on: figures from different machines do not compare."""
    cpu, simd = _cpu()
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu,
        "simd": simd,
        "cpus": os.cpu_count(),
        "load_average_at_end": load_average(),
    }


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def merge_figures(per_process: list):
    """One figure from the same figure of several processes: numbers -> their median; dicts merged
    key by key; anything else kept when every process agrees, else the list of the processes' values."""
    first = per_process[0]
    if all(_is_number(v) for v in per_process):
        return statistics.median(per_process)
    if all(isinstance(v, dict) for v in per_process) and all(v.keys() == first.keys() for v in per_process):
        return {key: merge_figures([v[key] for v in per_process]) for key in first}
    return first if all(v == first for v in per_process) else list(per_process)


def _in_this_process(selected: list[str], args) -> dict:
    """Run the cases ``selected`` here; their figures and runs."""
    results = {}
    for name in selected:
        bench = Bench(args.repeats, args.quick)
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        figures = CASES[name](bench)
        results[name] = {"figures": figures, "runs_s": bench.runs}
    return results


def _in_processes(selected: list[str], args) -> dict:
    """Run the cases ``selected`` in ``args.processes`` fresh processes in turn; the merged results."""
    reports = []
    with tempfile.TemporaryDirectory() as tmp:
        for index in range(args.processes):
            out = pathlib.Path(tmp, f"process{index}.json")
            command = [sys.executable, str(HERE / "bench.py"), *selected, "--repeats", str(args.repeats)]
            command += ["--quick"] * args.quick + ["--out", str(out)]
            print(f"[bench] process {index + 1}/{args.processes}", file=sys.stderr, flush=True)
            done = subprocess.run(command, stdout=subprocess.DEVNULL)
            if done.returncode:
                print(f"[bench] process {index + 1} failed (exit code {done.returncode})", file=sys.stderr)
                raise SystemExit(done.returncode)
            reports.append(json.loads(out.read_text())["results"])
    return {
        name: {
            "figures": merge_figures([r[name]["figures"] for r in reports]),
            "per_process": [r[name]["figures"] for r in reports],
            "runs_s": [r[name]["runs_s"] for r in reports],
        }
        for name in reports[0]
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("cases", nargs="*", help="case names or prefixes (default: all)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--processes", type=int, default=1, help="run in K fresh processes, medians over them")
    parser.add_argument("--quick", action="store_true", help="smaller problem sizes (smoke run)")
    parser.add_argument("--out", type=pathlib.Path, help="also write the JSON here")
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    args = parser.parse_args(argv)
    load_cases()
    if args.list:
        print("\n".join(sorted(CASES)))
        return 0
    selected = [
        n
        for n in sorted(CASES)
        if not args.cases or any(n == c or n.startswith(c + ".") or n.startswith(c) for c in args.cases)
    ]
    if not selected:
        parser.error(f"no case matches {args.cases}; known: {', '.join(sorted(CASES))}")
    if args.repeats < 1 or args.processes < 1:
        parser.error(f"--repeats {args.repeats} --processes {args.processes}: both must be >= 1")
    results = (_in_processes if args.processes > 1 else _in_this_process)(selected, args)
    report = {
        "machine": machine(),
        "repeats": args.repeats,
        "processes": args.processes,
        "quick": args.quick,
        "results": results,
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
