"""The state of a running :func:`traincore.fit` as callbacks see it, and how a run ends.

:class:`Loop` (the running loop), :class:`History` (what a run produced) and
:class:`NonFiniteError` (a run that diverged) live here, apart from the loop itself, so that
callbacks, the loop and the command lines all import them without importing each other.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

__all__ = ["History", "Loop", "NonFiniteError", "to_float", "check_finite"]


class NonFiniteError(FloatingPointError):
    """Training produced NaN or Inf; the last good checkpoint (if any) is kept."""


@dataclass
class History:
    """What a :func:`fit` run produced: the logged rows and how the run ended."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    steps: int = 0
    seconds: float = 0.0
    status: str = "finished"  # "finished", "stopped: <reason>", "interrupted"
    resumed_from: int | None = None

    def __getitem__(self, key: str) -> list[Any]:
        """All logged values of metric ``key`` (``history["loss"]``)."""
        return [row[key] for row in self.rows if key in row]

    def last(self, key: str, default: Any = None) -> Any:
        """The most recent logged value of ``key``."""
        for row in reversed(self.rows):
            if key in row:
                return row[key]
        return default

    def __repr__(self) -> str:
        last = {k: v for k, v in (self.rows[-1] if self.rows else {}).items() if k != "step"}
        shown = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                          for k, v in list(last.items())[:4])
        return (f"History(steps={self.steps}, seconds={self.seconds:.2f}, status={self.status!r}"
                f"{', ' + shown if shown else ''})")


class Loop:
    """The running loop as callbacks see it.

    Attributes
    ----------
    step : int
        Number of steps completed.
    total_steps : int
    values : dict
        The scheduled values used by the last step.
    metrics : Mapping
        The raw metrics the last step returned (tensors are not synchronised).
    logged : dict
        The metrics as floats at the last logging step.
    logged_now : bool
        True right after a logging step.
    history : History
    stop_reason : str or None
        Set by :meth:`stop`: the loop finishes after the current step.
    """

    def __init__(self, total_steps: int, checkpoint_path: Path | None,
                 save: Callable[[], Path | None]) -> None:
        self.step = 0
        self.total_steps = total_steps
        self.values: dict[str, float] = {}
        self.metrics: Mapping[str, Any] = {}
        self.logged: dict[str, Any] = {}
        self.logged_now = False
        self.history = History()
        self.checkpoint_path = checkpoint_path
        self.last_good_checkpoint: tuple[Path, int] | None = None
        self.stop_reason: str | None = None
        self._save = save

    def stop(self, reason: str = "requested") -> None:
        """Finish after the current step (a checkpoint is written if checkpoints are on)."""
        self.stop_reason = reason

    def save_checkpoint(self) -> Path | None:
        """Write a checkpoint of the current step now (None when checkpoints are off)."""
        return self._save()

    def log(self, **extra: float) -> None:
        """Add values to the current logged row (e.g. a test loss computed by a callback)."""
        row = self.history.rows[-1] if (self.history.rows and
                                        self.history.rows[-1]["step"] == self.step) else None
        if row is None:
            row = {"step": self.step}
            self.history.rows.append(row)
        row.update({k: to_float(v) for k, v in extra.items()})
        self.logged.update(row)
        self.logged.pop("step", None)


def to_float(value: Any) -> Any:
    """A metric as a plain float (tensors with one element, numbers), lists for the rest."""
    if isinstance(value, torch.Tensor):
        return float(value.detach().float().item()) if value.numel() == 1 else value.tolist()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return value


def check_finite(step: int, row: Mapping[str, Any], loop: Loop) -> None:
    """Raise :class:`NonFiniteError` naming the first NaN/Inf metric of ``row``."""
    bad = [k for k, v in row.items() if isinstance(v, float) and not math.isfinite(v)]
    if bad:
        if loop.last_good_checkpoint is not None:
            path, good = loop.last_good_checkpoint
            kept = f"the last good checkpoint {str(path)!r} (step {good}) is kept"
        else:
            kept = "no checkpoint was written (pass checkpoint_dir to keep one)"
        raise NonFiniteError(
            f"Training stopped at step {step}: metric {bad[0]!r} is {row[bad[0]]}; {kept}. "
            "Lower the learning rate or check the data for NaN/Inf."
        )
