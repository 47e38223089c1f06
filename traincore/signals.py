"""SIGTERM handled like Ctrl-C: a job stopped by ``kill`` or a batch scheduler keeps its work.

:class:`Interrupted` is a :class:`KeyboardInterrupt` that remembers the signal, so code that
handles Ctrl-C handles ``SIGTERM`` too, and a command line can exit with the status a shell
expects (``128 + signal``: 130 for Ctrl-C, 143 for ``SIGTERM``).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

__all__ = ["Interrupted", "DeferredSignals", "terminate_raises"]

#: The signals a run treats as "stop, keeping what you have".
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """The run was stopped by a signal (Ctrl-C or ``SIGTERM``).

    Attributes
    ----------
    signum : int
        The signal number.
    exit_status : int
        ``128 + signum``, as a shell reports a process ended by that signal.
    """

    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)
        self.exit_status = 128 + self.signum

    @property
    def name(self) -> str:
        """``"SIGINT"`` or ``"SIGTERM"``."""
        return signal.Signals(self.signum).name


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


class DeferredSignals:
    """While installed, Ctrl-C and ``SIGTERM`` only set a flag, honoured at a safe point.

    A second signal while the flag is set raises :class:`Interrupted` at once (the user
    insists). Outside the main thread (where Python delivers no signals) this does nothing.
    :meth:`restore` puts the previous handlers back.

    Examples
    --------
    >>> import os, signal
    >>> with DeferredSignals() as flag:
    ...     os.kill(os.getpid(), signal.SIGTERM)
    ...     bool(flag), flag.signum == signal.SIGTERM
    (True, True)
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def __bool__(self) -> bool:
        return self.signum is not None

    def _handler(self, signum: int, frame: Any) -> None:
        if self.signum is not None:  # second signal: give up immediately
            raise Interrupted(signum)
        self.signum = signum

    def install(self) -> DeferredSignals:
        """Catch the stop signals from now on (main thread only)."""
        if _in_main_thread() and not self._previous:
            self._previous = {s: signal.signal(s, self._handler) for s in STOP_SIGNALS}
        return self

    def restore(self) -> None:
        """Put the previous handlers back (idempotent)."""
        previous, self._previous = self._previous, {}
        for s, h in previous.items():
            signal.signal(s, h)

    def raise_if_set(self) -> None:
        """Raise :class:`Interrupted` for the signal that arrived, if one did."""
        if self.signum is not None:
            raise Interrupted(self.signum)

    def __enter__(self) -> DeferredSignals:
        return self.install()

    def __exit__(self, *exc: object) -> None:
        self.restore()


@contextlib.contextmanager
def terminate_raises() -> Iterator[None]:
    """Within the block, ``SIGTERM`` raises :class:`Interrupted` like Ctrl-C raises
    :class:`KeyboardInterrupt` (Python's default would end the process without cleanup)."""
    if not _in_main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise Interrupted(signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
