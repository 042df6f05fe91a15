"""A dependency-free progress bar on stderr for long runs.

Shown only when stderr is a terminal and the work has taken more than a second;
otherwise silent, so piped and CI output stays plain.
"""

from __future__ import annotations

import sys
import time


class Progress:
    """``with Progress(total_bytes, "segment") as p: p.update(done_bytes)``."""

    def __init__(self, total: int, label: str, stream=None, delay: float = 1.0):
        self.total = max(int(total), 1)
        self.label = label
        self.stream = stream or sys.stderr
        self.delay = delay
        self.t0 = time.monotonic()
        self.last = 0.0
        self.shown = False
        self.enabled = hasattr(self.stream, "isatty") and self.stream.isatty()

    def update(self, done: int, extra: str = "") -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self.t0 < self.delay or now - self.last < 0.1:
            return
        self.last = now
        frac = min(max(done / self.total, 0.0), 1.0)
        width = 30
        bar = "#" * int(frac * width) + "-" * (width - int(frac * width))
        rate = done / max(now - self.t0, 1e-9) / 1e6
        self.stream.write(f"\r{self.label} [{bar}] {frac * 100:5.1f}% {rate:7.1f} MB/s {extra}")
        self.stream.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            self.stream.write("\n")
            self.stream.flush()
            self.shown = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
