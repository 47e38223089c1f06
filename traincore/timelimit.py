"""Time limits that the code enforces itself, with a clear message instead of a hang.

``with time_limit(60, what="the discovery", hint="lower --degree"):`` runs a block with a
deadline. Long computations call :func:`check_time` between chunks and stages (cheap: one
clock read), which raises :class:`TimeLimitError` once the deadline has passed. As a
backstop for long stretches without a check (a big symbolic simplification), the main
thread also gets a ``SIGALRM`` timer that raises the same error at the deadline; it
interrupts Python code, not a single long call into compiled code, which is why the chunked
loops check too.

:class:`TimeLimitError` is a :class:`TimeoutError` (an :class:`OSError`), so the command
lines report it as one ``error: ...`` line with exit status 2.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

from .validate import check_number

__all__ = ["TimeLimitError", "TimeLimit", "time_limit", "check_time", "time_left"]


class TimeLimitError(TimeoutError):
    """A computation ran past the time limit it was given."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "time limit reached"


class TimeLimit:
    """A deadline: ``seconds`` from creation, for the computation named ``what``.

    Parameters
    ----------
    seconds : float
        Wall-clock seconds allowed (positive, finite).
    what : str
        The computation, for the message (``"the discovery"``).
    hint : str
        How to stay within the limit (``"lower --degree or raise --time-limit"``).
    """

    def __init__(self, seconds: float, what: str = "the computation",
                 hint: str = "raise the time limit or make the problem smaller") -> None:
        self.seconds = check_number(seconds, "time_limit", gt=0, fix="give it in seconds")
        self.what, self.hint = what, hint
        self.start = time.monotonic()
        self.deadline = self.start + self.seconds
        self.stage: str | None = None  # the last stage checked: where the alarm finds it

    def left(self) -> float:
        """Seconds left (negative once past the deadline)."""
        return self.deadline - time.monotonic()

    def error(self, stage: str | None = None) -> TimeLimitError:
        where = f" during {stage}" if stage else ""
        return TimeLimitError(f"{self.what[:1].upper()}{self.what[1:]} stopped at its time "
                              f"limit of {self.seconds:g} s{where}; {self.hint}.")

    def check(self, stage: str | None = None) -> None:
        """Raise :class:`TimeLimitError` if the deadline has passed."""
        self.stage = stage or self.stage
        if time.monotonic() > self.deadline:
            raise self.error(self.stage)


#: Seconds between repeated alarms once the deadline has passed.
_REPEAT = 0.25

_CURRENT: contextvars.ContextVar[TimeLimit | None] = contextvars.ContextVar(
    "traincore_time_limit", default=None)


def check_time(stage: str | None = None) -> None:
    """Raise :class:`TimeLimitError` if the innermost :func:`time_limit` has run out.

    A no-op outside any time limit. ``stage`` names what was running, for the message.
    """
    limit = _CURRENT.get()
    if limit is not None:
        limit.check(stage)


def time_left() -> float:
    """Seconds left in the innermost :func:`time_limit` (``inf`` outside one)."""
    limit = _CURRENT.get()
    return math.inf if limit is None else limit.left()


@contextlib.contextmanager
def time_limit(seconds: float | None, what: str = "the computation",
               hint: str = "raise the time limit or make the problem smaller",
               alarm: bool = True) -> Iterator[TimeLimit | None]:
    """Run the block with a deadline; ``seconds=None`` means no limit.

    A limit inside another never extends it: the earlier deadline wins.

    Parameters
    ----------
    seconds : float or None
    what, hint : str
        For the message of :class:`TimeLimitError`.
    alarm : bool
        Also arm a ``SIGALRM`` timer in the main thread (see the module doc).

    Examples
    --------
    >>> with time_limit(0.05, what="the demo", hint="wait less"):
    ...     while True:
    ...         check_time("the loop")
    Traceback (most recent call last):
    ...
    traincore.timelimit.TimeLimitError: The demo stopped at its time limit of 0.05 s...
    """
    if seconds is None:
        yield _CURRENT.get()
        return
    limit = TimeLimit(seconds, what, hint)
    outer = _CURRENT.get()
    if outer is not None and outer.deadline <= limit.deadline:
        limit = outer  # the outer deadline comes first: keep its message and timer
    token = _CURRENT.set(limit)
    use_alarm = (alarm and limit is not outer and hasattr(signal, "setitimer")
                 and threading.current_thread() is threading.main_thread())
    previous: Any = None
    old_timer = (0.0, 0.0)
    if use_alarm:
        def on_alarm(signum: int, frame: Any) -> None:
            raise limit.error(limit.stage)

        previous = signal.signal(signal.SIGALRM, on_alarm)
        # repeating after the deadline: code that swallows exceptions (`except Exception:`)
        # gets the error again a moment later
        old_timer = signal.setitimer(signal.ITIMER_REAL, max(limit.left(), 1e-3), _REPEAT)
    try:
        yield limit
    finally:
        if use_alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
            if old_timer[0] > 0:  # an outer timer was running: re-arm what is left of it
                spent = time.monotonic() - limit.start
                signal.setitimer(signal.ITIMER_REAL, max(old_timer[0] - spent, 1e-3),
                                 old_timer[1])
        _CURRENT.reset(token)
