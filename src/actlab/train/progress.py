"""Progress output without dependencies: a `\\r` status line on a TTY, one plain line per epoch otherwise."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TextIO


def format_epoch(m: dict[str, Any], epochs: int) -> str:
    """One line of epoch metrics; epochs are shown 0-based as in MXNet's logs."""
    parts = [
        f"epoch {m['epoch']}/{epochs - 1}",
        f"train loss {_num(m['train_loss'])} acc {_num(m['train_acc'])}",
    ]
    if m.get("val_acc") is not None:
        parts.append(f"val loss {_num(m['val_loss'])} acc {_num(m['val_acc'])} top5 {_num(m['val_top5'])}")
    parts.append(f"lr {m['lr']:.4g}  {m['seconds']:.1f}s  {m['images_per_s']:.0f} img/s")
    return "  ".join(parts)


def _num(v: float | None) -> str:
    return "nan" if v is None else f"{v:.4f}"


class Progress:
    """Reports batches (TTY only, at most every `interval` seconds) and epochs to `stream` (stderr)."""

    def __init__(self, enabled: bool, epochs: int, stream: TextIO | None = None, interval: float = 0.25):
        self.stream = stream or sys.stderr
        self.enabled, self.epochs, self.interval = enabled, epochs, interval
        self.tty = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self._last = 0.0

    def batch(self, epoch: int, i: int, n: int, loss: Callable[[], float]) -> None:
        """Redraw the status line; `loss` is only called (a device sync) when the line is redrawn."""
        now = time.perf_counter()
        if not self.tty or (now - self._last < self.interval and i + 1 < n):
            return
        self._last = now
        self.stream.write(f"\repoch {epoch}/{self.epochs - 1}  batch {i + 1}/{n}  loss {loss():.4f}\x1b[K")
        self.stream.flush()

    def epoch(self, metrics: dict[str, Any]) -> None:
        self.line(format_epoch(metrics, self.epochs))

    def line(self, text: str) -> None:
        """A whole line (clearing the status line on a TTY)."""
        if self.enabled:
            self.stream.write(("\r\x1b[K" if self.tty else "") + text + "\n")
            self.stream.flush()
