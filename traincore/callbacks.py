"""Callbacks for :func:`traincore.fit`: hooks called between steps, never inside one."""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from .io import atomic_write_text
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


class JSONLLogger(Callback):
    """Append each logged row of metrics as one JSON line to ``path``.

    On resume, rows past the resumed step are dropped (they belong to the lost future).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._fh: IO[str] | None = None

    def on_start(self, loop: Loop) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if loop.step > 0 and self.path.exists():
            kept = [ln for ln in self.path.read_text().splitlines()
                    if ln.strip() and json.loads(ln).get("step", 0) <= loop.step]
            atomic_write_text(self.path, "".join(ln + "\n" for ln in kept))
        elif loop.step == 0:
            atomic_write_text(self.path, "")
        self._fh = open(self.path, "a")  # noqa: SIM115 - closed in on_end

    def on_step_end(self, loop: Loop) -> None:
        if loop.logged_now and self._fh is not None:
            row = {"step": loop.step, **{k: (v if not isinstance(v, float) or math.isfinite(v)
                                             else str(v)) for k, v in loop.logged.items()}}
            self._fh.write(json.dumps(row) + "\n")
            self._fh.flush()

    def on_end(self, loop: Loop) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
