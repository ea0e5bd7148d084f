"""Progress reporting that suits both people and CI logs.

On a terminal: a tqdm bar. Elsewhere (``CI`` set to a true value, pipes, files): one plain
line per ``every`` fraction of the work, so logs stay readable. Disabled: nothing.
"""

from __future__ import annotations

import os
import sys
import time

from tqdm import tqdm


def interactive(stream=None) -> bool:
    """True when ``stream`` (default stderr) is a terminal and we are not under CI."""
    stream = stream or sys.stderr
    is_tty = getattr(stream, "isatty", None)
    return bool(is_tty and is_tty()) and os.environ.get("CI", "").lower() not in ("1", "true", "yes")


class Progress:
    """``with Progress(total, desc) as p: p.update(n, **figures)``.

    ``figures`` are shown next to the bar (or appended to the plain line); ``unit`` names
    what is counted.
    """

    def __init__(
        self,
        total: int,
        desc: str,
        *,
        enabled: bool = True,
        every: float = 0.25,
        stream=None,
        unit: str = "it",
        leave: bool = False,
    ):
        self.total, self.desc, self.enabled, self.every = total, desc, enabled, every
        self.stream = stream or sys.stderr
        self.done, self._next, self._start = 0, every, time.perf_counter()
        self._bar = None
        if enabled and interactive(self.stream):
            self._bar = tqdm(total=total, desc=desc, file=self.stream, leave=leave, unit=unit)

    def update(self, n: int = 1, **figures) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
            if figures:
                self._bar.set_postfix({k: f"{v:.4g}" if isinstance(v, float) else v for k, v in figures.items()})
        elif self.enabled and self.total and self.done >= self._next * self.total:
            while self._next * self.total <= self.done:
                self._next += self.every
            rate = self.done / max(time.perf_counter() - self._start, 1e-9)
            extra = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in figures.items())
            print(
                f"{self.desc}: {self.done}/{self.total} ({rate:.1f}/s) {extra}".rstrip(), file=self.stream, flush=True
            )

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
