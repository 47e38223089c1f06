"""The one training loop of the toolkit: :func:`fit`.

A step function does the work of one optimisation step; ``fit`` owns everything around
it: schedules, callbacks, logging, progress, NaN/Inf guard, checkpoints, resume, Ctrl-C
and SIGTERM.
The state callbacks see (:class:`~traincore.state.Loop`) lives in :mod:`traincore.state`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from .callbacks import Callback, JSONLLogger, ProgressBar
from .checkpoint import CHECKPOINT_NAME, CheckpointError, load_checkpoint, save_checkpoint
from .seeding import get_rng_state, set_rng_state
from .signals import DeferredSignals
from .state import History, Loop, check_finite, to_float
from .validate import check_int

__all__ = ["fit", "Stateful", "StepFn"]


class Stateful(Protocol):
    """Anything with ``state_dict()``/``load_state_dict()``: modules, optimizers, schedulers."""

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any], /) -> Any: ...


#: ``step_fn(step, values)``: take optimisation step number ``step`` (0-based) with the
#: scheduled ``values`` for it; return the metrics (tensors or floats) of that step.
StepFn = Callable[[int, dict[str, float]], Mapping[str, Any]]


class _Checkpoints:
    """Saving and resuming one run's checkpoint (``None`` path: checkpoints are off)."""

    def __init__(self, directory: str | os.PathLike[str] | None,
                 state: Mapping[str, Stateful], config: dict[str, Any] | None) -> None:
        self.path = Path(directory) / CHECKPOINT_NAME if directory is not None else None
        self.state, self.config = state, config
        self.elapsed_before = 0.0
        self.start = time.perf_counter()

    def seconds(self) -> float:
        """Seconds of training, including those before a resume."""
        return self.elapsed_before + time.perf_counter() - self.start

    def save(self, loop: Loop) -> Path | None:
        if self.path is None:
            return None
        if loop.metrics:  # never save a state that went non-finite
            check_finite(loop.step, {k: to_float(v) for k, v in loop.metrics.items()}, loop)
        save_checkpoint(self.path, {
            "step": loop.step,
            "states": {name: obj.state_dict() for name, obj in self.state.items()},
            "rng": get_rng_state(),
            "config": self.config,
            "rows": loop.history.rows,
            "seconds": self.seconds(),
        })
        loop.last_good_checkpoint = (self.path, loop.step)
        return self.path

    def resume(self, loop: Loop) -> None:
        if self.path is None or not self.path.exists():
            return
        payload = load_checkpoint(self.path)
        saved = payload.get("config")
        if self.config is not None and saved is not None and saved != self.config:
            diff = sorted(k for k in set(self.config) | set(saved)
                          if self.config.get(k) != saved.get(k))
            raise CheckpointError(
                f"The checkpoint {str(self.path)!r} was written with a different config "
                f"(differs in {', '.join(diff)}); use another directory or resume=False.")
        missing = sorted(set(self.state) - set(payload["states"]))
        if missing:
            raise CheckpointError(
                f"The checkpoint {str(self.path)!r} has no state for {', '.join(missing)}; "
                "it belongs to another kind of run.")
        for name, obj in self.state.items():
            obj.load_state_dict(payload["states"][name])
        set_rng_state(payload["rng"])
        loop.step = int(payload["step"])
        loop.history.rows = list(payload["rows"])
        loop.history.resumed_from = loop.step
        loop.last_good_checkpoint = (self.path, loop.step)
        self.elapsed_before = float(payload.get("seconds", 0.0))


def _step(loop: Loop, step_fn: StepFn, schedules: Mapping[str, Callable[[int], float]],
          log_every: int, guard_every: int) -> None:
    """One step of ``step_fn`` with its scheduled values, then logging and the NaN guard."""
    i = loop.step
    loop.values = {name: float(fn(i)) for name, fn in schedules.items()}
    loop.metrics = step_fn(i, loop.values)
    loop.step = i + 1
    loop.logged_now = bool(log_every and loop.step % log_every == 0) or \
        loop.step == loop.total_steps
    if loop.logged_now:
        row = {k: to_float(v) for k, v in loop.metrics.items()}
        row.update(loop.values)
        loop.history.rows.append({"step": loop.step, **row})
        loop.logged = row
        check_finite(loop.step, row, loop)
    elif guard_every and loop.step % guard_every == 0:
        check_finite(loop.step, {k: to_float(v) for k, v in loop.metrics.items()}, loop)


def _run(loop: Loop, step_fn: StepFn, schedules: Mapping[str, Callable[[int], float]],
         callbacks: Sequence[Callback], ckpts: _Checkpoints, interrupted: DeferredSignals,
         log_every: int, guard_every: int, checkpoint_every: int) -> None:
    """The steps from ``loop.step`` to the end, with callbacks, stops and checkpoints."""
    for cb in callbacks:
        cb.on_start(loop)
    while loop.step < loop.total_steps:
        _step(loop, step_fn, schedules, log_every, guard_every)
        for cb in callbacks:
            cb.on_step_end(loop)
        if interrupted:  # Ctrl-C or SIGTERM arrived during the step: keep it, then stop
            ckpts.save(loop)
            interrupted.raise_if_set()
        if loop.stop_reason is not None:
            loop.history.status = f"stopped: {loop.stop_reason}"
            ckpts.save(loop)
            return
        if checkpoint_every and loop.step % checkpoint_every == 0 and \
                loop.step < loop.total_steps:
            ckpts.save(loop)
    ckpts.save(loop)


def _end(callbacks: Sequence[Callback], loop: Loop, completed: bool) -> None:
    """Every callback's ``on_end``, even after an error of the loop; an error of a callback
    is raised only when the loop completed (else the loop's error is the one to see)."""
    for cb in callbacks:
        try:
            cb.on_end(loop)
        except Exception:
            if completed:
                raise


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
        Log metrics every this many steps and at the end (a GPU sync, so not every step).
    guard_every : int, optional
        Check for NaN/Inf every this many steps (default: at logging steps).
    log_path : path, optional
        JSONL metrics log.
    checkpoint_dir : path, optional
        Where ``checkpoint.pt`` is written every ``checkpoint_every`` steps, at the end, on
        :meth:`Loop.stop` and on Ctrl-C or SIGTERM, and resumed from when ``resume`` is true.
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
        On Ctrl-C or ``SIGTERM`` (a ``KeyboardInterrupt``), after saving a checkpoint.
    """
    check_int(steps, "steps", ge=0)
    check_int(log_every, "log_every", ge=0, fix="0 logs only at the end")
    check_int(checkpoint_every, "checkpoint_every", ge=0, fix="0 saves only at the end")
    ckpts = _Checkpoints(checkpoint_dir, dict(state or {}),
                         dict(config) if config is not None else None)
    loop = Loop(steps, ckpts.path, lambda: ckpts.save(loop))
    if resume:
        ckpts.resume(loop)
    all_callbacks = [*([JSONLLogger(log_path)] if log_path is not None else []),
                     ProgressBar(progress, desc=desc), *callbacks]
    completed = False
    try:
        with DeferredSignals() as interrupted:  # Ctrl-C, SIGTERM: stop between steps
            _run(loop, step_fn, dict(schedules or {}), all_callbacks, ckpts, interrupted,
                 log_every, guard_every or log_every or 0, checkpoint_every)
        completed = True
    except KeyboardInterrupt:
        loop.history.status = "interrupted"
        raise
    finally:
        loop.history.steps, loop.history.seconds = loop.step, ckpts.seconds()
        _end(all_callbacks, loop, completed)
    return loop.history
