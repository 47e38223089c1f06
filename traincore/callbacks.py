"""Callbacks for :func:`traincore.fit`: hooks called between steps, never inside one."""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from .io import atomic_write_text, write_error
from .state import Loop
from .validate import check_int

__all__ = ["Callback", "Every", "JSONLLogger", "ProgressBar"]


class Callback:
    """Base class: override any of the hooks. ``loop`` is the running :class:`Loop`."""

    def on_start(self, loop: Loop) -> None:
        """Called once before the first step (after a resume, before the first new step)."""

    def on_step_end(self, loop: Loop) -> None:
        """Called after every step; ``loop.step`` is the number of steps done."""

    def on_end(self, loop: Loop) -> None:
        """Called once when the loop finishes, stops or is interrupted."""


class Every(Callback):
    """Call ``fn(loop)`` every ``n`` steps (at steps n, 2n, ...) and optionally at the end.

    Examples
    --------
    >>> seen = []
    >>> cb = Every(2, lambda loop: seen.append(loop.step))
    """

    def __init__(self, n: int, fn: Callable[[Loop], Any], at_end: bool = False) -> None:
        check_int(n, "n", ge=1, where="of Every(n, fn)", fix="the period in steps")
        self.n, self.fn, self.at_end = n, fn, at_end
        self._last = -1

    def on_step_end(self, loop: Loop) -> None:
        if loop.step % self.n == 0:
            self._last = loop.step
            self.fn(loop)

    def on_end(self, loop: Loop) -> None:
        if self.at_end and self._last != loop.step:
            self.fn(loop)


class ProgressBar(Callback):
    """A tqdm bar; quiet when ``enabled`` is None and stderr is not a terminal."""

    def __init__(self, enabled: bool | None = None, every: int = 50, desc: str = "train") -> None:
        self.enabled, self.every, self.desc = enabled, max(1, every), desc
        self._bar: Any = None

    def on_start(self, loop: Loop) -> None:
        enabled = sys.stderr.isatty() if self.enabled is None else self.enabled
        if enabled:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=loop.total_steps, initial=loop.step, desc=self.desc,
                             dynamic_ncols=True, leave=False)

    def on_step_end(self, loop: Loop) -> None:
        if self._bar is not None and loop.step % self.every == 0:
            self._bar.update(loop.step - self._bar.n)
            if loop.logged:
                self._bar.set_postfix({k: f"{v:.3g}" for k, v in loop.logged.items()
                                       if isinstance(v, float)}, refresh=False)

    def on_end(self, loop: Loop) -> None:
        if self._bar is not None:
            self._bar.update(loop.step - self._bar.n)
            self._bar.close()
            self._bar = None


def _row_step(line: str) -> float:
    """The step of one log line; ``inf`` for a line that is not a whole JSON row (a write
    cut short by a crash or a full disk), so that it is dropped on resume."""
    try:
        row = json.loads(line)
        return float(row.get("step", 0)) if isinstance(row, dict) else math.inf
    except (ValueError, TypeError):
        return math.inf


class JSONLLogger(Callback):
    """Append each logged row of metrics as one JSON line to ``path``.

    On resume, rows past the resumed step are dropped (they belong to the lost future), and
    so is a last line cut short by a crash. A write error (disk full) removes the partial
    line and raises :class:`traincore.io.WriteError`.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._fh: IO[bytes] | None = None

    def on_start(self, loop: Loop) -> None:
        if loop.step > 0 and self.path.exists():
            kept = [ln for ln in self.path.read_text(errors="replace").splitlines()
                    if _row_step(ln) <= loop.step]
            atomic_write_text(self.path, "".join(ln + "\n" for ln in kept))
        elif loop.step == 0:
            atomic_write_text(self.path, "")
        try:
            # unbuffered: after a failed write no buffer is left to be flushed again later
            self._fh = open(self.path, "ab", buffering=0)  # noqa: SIM115 - closed in on_end
        except OSError as exc:
            raise write_error(exc, self.path) from None

    def on_step_end(self, loop: Loop) -> None:
        if loop.logged_now and self._fh is not None:
            row = {"step": loop.step, **{k: (v if not isinstance(v, float) or math.isfinite(v)
                                             else str(v)) for k, v in loop.logged.items()}}
            self._append(json.dumps(row) + "\n")

    def _append(self, line: str) -> None:
        """Append one whole line; on a write error (disk full) cut a partial line off again."""
        fh = self._fh
        assert fh is not None
        size = fh.tell()
        data = memoryview(line.encode("utf-8"))
        try:
            while data:
                data = data[fh.write(data) or 0:]
        except OSError as exc:
            self._fh = None
            with contextlib.suppress(OSError):
                os.truncate(self.path, size)
            with contextlib.suppress(OSError):
                fh.close()
            raise write_error(exc, self.path) from None

    def on_end(self, loop: Loop) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
