"""A device server around a ``MockChip`` in a process of its own, with its memory watched.

Parent side: ``ServerProcess(budget_bytes)`` starts ``python -m tests.drivers.server_process``,
reads the server's ``socket://`` address, and polls the child's resident memory every 10 ms;
if it ever exceeds the budget the child is killed (so a runaway request fails the test at
once instead of exhausting the machine) and ``exceeded`` says when. ``peak_bytes()`` is the
kernel's high-water mark (``VmHWM``) of the child's resident memory.

Child side: ``python -m tests.drivers.server_process SEED NOISE_SEED`` serves until its
standard input closes.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _status_bytes(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


def rss_bytes(pid: int) -> int:
    """Resident memory of process ``pid`` now."""
    return _status_bytes(pid, "VmRSS")


class ServerProcess:
    """A mock-chip device server in a child process; use as a context manager."""

    def __init__(self, budget_bytes: int, *, seed: int = 7, noise_seed: int = 11):
        self.budget = budget_bytes
        self.exceeded = ""  # what the watchdog saw when it killed the child
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.drivers.server_process", str(seed), str(noise_seed)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.address = self.proc.stdout.readline().strip()
        if not self.address.startswith("socket://"):
            self.stop()
            raise RuntimeError(f"the server process did not start (printed {self.address!r})")
        self._done = threading.Event()
        self._watch = threading.Thread(target=self._watchdog, daemon=True)
        self._watch.start()

    def _watchdog(self) -> None:
        while not self._done.wait(0.01) and self.proc.poll() is None:
            try:
                rss = rss_bytes(self.proc.pid)
            except (OSError, KeyError):
                return
            if rss > self.budget:
                self.exceeded = f"resident memory {rss / 2**20:.0f} MiB > budget {self.budget / 2**20:.0f} MiB"
                self.proc.kill()
                return

    def rss_bytes(self) -> int:
        return rss_bytes(self.proc.pid)

    def peak_bytes(self) -> int:
        """High-water mark of the child's resident memory so far."""
        return _status_bytes(self.proc.pid, "VmHWM")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if hasattr(self, "_done"):
            self._done.set()
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def main(argv: list[str]) -> None:
    from drivers.mock import MockChip
    from drivers.server import Server

    server = Server(MockChip(seed=int(argv[0]), noise=True, noise_seed=int(argv[1]))).start()
    print(server.address, flush=True)
    sys.stdin.read()
    server.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
