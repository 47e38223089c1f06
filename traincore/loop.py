"""The one training loop of the toolkit: :func:`fit`.

A step function does the work of one optimisation step; ``fit`` owns everything around
it: schedules, callbacks, logging, progress, NaN/Inf guard, checkpoints, resume and Ctrl-C.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch

from .callbacks import Callback, JSONLLogger, NonFiniteError, ProgressBar
from .checkpoint import CHECKPOINT_NAME, CheckpointError, load_checkpoint, save_checkpoint
from .seeding import get_rng_state, set_rng_state
from .signals import DeferredSignals

__all__ = ["fit", "Loop", "History", "Stateful", "StepFn"]


class Stateful(Protocol):
    """Anything with ``state_dict()``/``load_state_dict()``: modules, optimizers, schedulers."""

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any], /) -> Any: ...


#: ``step_fn(step, values)``: take optimisation step number ``step`` (0-based) with the
#: scheduled ``values`` for it; return the metrics (tensors or floats) of that step.
StepFn = Callable[[int, dict[str, float]], Mapping[str, Any]]


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
        self._stop_reason: str | None = None
        self._save = save

    def stop(self, reason: str = "requested") -> None:
        """Finish after the current step (a checkpoint is written if checkpoints are on)."""
        self._stop_reason = reason

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
        row.update({k: _to_float(v) for k, v in extra.items()})
        self.logged.update(row)
        self.logged.pop("step", None)


def _to_float(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return float(value.detach().float().item()) if value.numel() == 1 else value.tolist()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return value


def _check_finite(step: int, row: Mapping[str, Any], loop: Loop) -> None:
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


def fit(
    step_fn: StepFn,
    steps: int,
    *,
    state: Mapping[str, Stateful] | None = None,
    schedules: Mapping[str, Callable[[int], float]] | None = None,
    callbacks: Sequence[Callback] = (),
    log_every: int = 100,
    guard_every: int | None = None,
    log_path: str | os.PathLike[str] | None = None,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    checkpoint_every: int = 0,
    resume: bool = True,
    config: Mapping[str, Any] | None = None,
    progress: bool | None = None,
    desc: str = "train",
) -> History:
    """Run ``steps`` optimisation steps of ``step_fn`` with logging, checkpoints and guards.

    Parameters
    ----------
    step_fn : callable ``(step, values) -> metrics``
        Does one step (forward, backward, optimizer) and returns its metrics.
    steps : int
        Total number of steps (a resumed run continues up to the same total).
    state : mapping of name to object with ``state_dict``/``load_state_dict``
        What a checkpoint saves and a resume restores (model, optimizer, ...). RNG states
        of python, numpy and torch are always included.
    schedules : mapping of name to ``f(step) -> float``
        Values computed before each step and passed to ``step_fn`` (e.g. a penalty weight).
    callbacks : sequence of Callback
        Called between steps (:class:`traincore.Every` for periodic work).
    log_every : int
        Metrics are converted to floats and logged every ``log_every`` steps and at the end
        (the conversion synchronises a GPU, so it is not done every step).
    guard_every : int, optional
        Check for NaN/Inf every this many steps (default: at logging steps).
    log_path : path, optional
        JSONL metrics log.
    checkpoint_dir : path, optional
        Where ``checkpoint.pt`` is written every ``checkpoint_every`` steps, at the end, on
        :meth:`Loop.stop` and on Ctrl-C or ``SIGTERM``, and resumed from when ``resume`` is true.
    config : mapping, optional
        Saved in checkpoints; resuming with a different config is refused.
    progress : bool, optional
        tqdm progress bar; None shows it only when stderr is a terminal.

    Returns
    -------
    History

    Raises
    ------
    NonFiniteError
        When a metric becomes NaN or Inf; the last good checkpoint is kept.
    traincore.Interrupted
        On Ctrl-C or ``SIGTERM`` (a :class:`KeyboardInterrupt`), after saving a checkpoint of
        the last completed step.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"The number of 'steps' must be a non-negative integer; got {steps!r}.")
    for name, value in (("log_every", log_every), ("checkpoint_every", checkpoint_every)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"The '{name}' must be a non-negative integer; got {value!r}.")
    state = dict(state or {})
    schedules = dict(schedules or {})
    config = dict(config) if config is not None else None
    guard_every = guard_every or log_every or 0
    ckpt_path = Path(checkpoint_dir) / CHECKPOINT_NAME if checkpoint_dir is not None else None
    elapsed_before = 0.0
    start_time = time.perf_counter()

    def save() -> Path | None:
        if ckpt_path is None:
            return None
        if loop.metrics:  # never save a state that went non-finite
            _check_finite(loop.step, {k: _to_float(v) for k, v in loop.metrics.items()}, loop)
        payload = {
            "step": loop.step,
            "states": {name: obj.state_dict() for name, obj in state.items()},
            "rng": get_rng_state(),
            "config": config,
            "rows": loop.history.rows,
            "seconds": elapsed_before + time.perf_counter() - start_time,
        }
        save_checkpoint(ckpt_path, payload)
        loop.last_good_checkpoint = (ckpt_path, loop.step)
        return ckpt_path

    loop = Loop(steps, ckpt_path, save)

    if ckpt_path is not None and resume and ckpt_path.exists():
        payload = load_checkpoint(ckpt_path)
        if config is not None and payload.get("config") is not None and payload["config"] != config:
            diff = sorted(k for k in set(config) | set(payload["config"])
                          if config.get(k) != payload["config"].get(k))
            raise CheckpointError(
                f"The checkpoint {str(ckpt_path)!r} was written with a different config "
                f"(differs in {', '.join(diff)}); use another directory or resume=False."
            )
        missing = sorted(set(state) - set(payload["states"]))
        if missing:
            raise CheckpointError(
                f"The checkpoint {str(ckpt_path)!r} has no state for {', '.join(missing)}; "
                "it belongs to another kind of run."
            )
        for name, obj in state.items():
            obj.load_state_dict(payload["states"][name])
        set_rng_state(payload["rng"])
        loop.step = int(payload["step"])
        loop.history.rows = list(payload["rows"])
        loop.history.resumed_from = loop.step
        loop.last_good_checkpoint = (ckpt_path, loop.step)
        elapsed_before = float(payload.get("seconds", 0.0))

    all_callbacks: list[Callback] = []
    if log_path is not None:
        all_callbacks.append(JSONLLogger(log_path))
    all_callbacks.append(ProgressBar(progress, desc=desc))
    all_callbacks.extend(callbacks)

    # Ctrl-C and SIGTERM set a flag that is honoured between steps, so the saved state is
    # consistent; the handlers are restored when the loop ends.
    interrupted = DeferredSignals().install()

    completed = False
    try:
        for cb in all_callbacks:
            cb.on_start(loop)
        while loop.step < steps:
            i = loop.step
            loop.values = {name: float(fn(i)) for name, fn in schedules.items()}
            loop.metrics = step_fn(i, loop.values)
            loop.step = i + 1
            last = loop.step == steps
            loop.logged_now = bool(log_every and loop.step % log_every == 0) or last
            if loop.logged_now:
                row = {k: _to_float(v) for k, v in loop.metrics.items()}
                row.update(loop.values)
                loop.history.rows.append({"step": loop.step, **row})
                loop.logged = row
                _check_finite(loop.step, row, loop)
            elif guard_every and loop.step % guard_every == 0:
                _check_finite(loop.step, {k: _to_float(v) for k, v in loop.metrics.items()}, loop)
            for cb in all_callbacks:
                cb.on_step_end(loop)
            if interrupted:
                save()
                loop.history.status = "interrupted"
                interrupted.raise_if_set()
            if loop._stop_reason is not None:
                loop.history.status = f"stopped: {loop._stop_reason}"
                save()
                break
            if checkpoint_every and loop.step % checkpoint_every == 0 and not last:
                save()
        else:
            save()
        completed = True
    except KeyboardInterrupt:
        loop.history.status = "interrupted"
        raise
    finally:
        loop.history.steps = loop.step
        loop.history.seconds = elapsed_before + time.perf_counter() - start_time
        interrupted.restore()
        for cb in all_callbacks:
            try:
                cb.on_end(loop)
            except Exception:
                if completed:  # an error of the loop itself is the one worth reporting
                    raise
    return loop.history
