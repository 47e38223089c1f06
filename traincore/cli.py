"""Shared exit-status policy of the toolkit's command lines.

Every command maps failures the same way: one ``error: ...`` line on stderr, no traceback.

=========================================  ===========
what happened                               exit status
=========================================  ===========
success                                     0
internal error (a bug: please report it)    1
training diverged (NaN/Inf)                 1
bad input (ValueError, TypeError, OSError)  2
Ctrl-C                                      130
``SIGTERM`` (``kill``, a batch scheduler)   143
stdout closed early (``| head``)            141
=========================================  ===========
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from .callbacks import NonFiniteError
from .signals import terminate_raises

__all__ = ["EXIT_OK", "EXIT_INTERNAL", "EXIT_BAD_INPUT", "EXIT_INTERRUPTED", "EXIT_TERMINATED",
           "run_command"]

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143  # 128 + SIGTERM
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, as a shell reports it


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def run_command(action: Callable[[], int], *, interrupted: str,
                debug_env: str | None = None) -> int:
    """Run ``action()`` and turn any exception into one stderr line and an exit status.

    Parameters
    ----------
    action : callable returning int
        The command's work; its return value is the exit status on success.
    interrupted : str
        The line printed after ``error: `` on Ctrl-C or ``SIGTERM`` (say what was kept).
    debug_env : str, optional
        Environment variable that, set to ``1``, re-raises errors with their traceback.

    Examples
    --------
    >>> run_command(lambda: int("three"), interrupted="stopped")
    2
    """
    debug = debug_env is not None and os.environ.get(debug_env) == "1"
    try:
        with terminate_raises():  # SIGTERM unwinds like Ctrl-C: cleanups run, work is kept
            return action()
    except BrokenPipeError:
        # the reader went away (e.g. `| head`): stop quietly, and keep Python from
        # complaining again when it flushes stdout at exit
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt as exc:
        # traincore.Interrupted knows its signal; a plain KeyboardInterrupt is Ctrl-C
        status = getattr(exc, "exit_status", EXIT_INTERRUPTED)
        prefix = "terminated by SIGTERM: " if status == EXIT_TERMINATED else ""
        print(f"error: {prefix}{interrupted}", file=sys.stderr)
        return status
    except NonFiniteError as exc:  # training diverged: not an input error
        if debug:
            raise
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_INTERNAL
    except (ValueError, TypeError, OSError) as exc:
        if debug:
            raise
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as exc:  # a bug: still one line, with a way to see more
        if debug:
            raise
        hint = f"rerun with {debug_env}=1 for the traceback and " if debug_env else ""
        print(f"error: internal error ({type(exc).__name__}: {_one_line(exc)}); {hint}"
              "report it.", file=sys.stderr)
        return EXIT_INTERNAL
