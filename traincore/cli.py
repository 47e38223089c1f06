"""The command-line scaffolding of the toolkit: usage errors, debug switch, exit statuses.

Every command maps failures the same way: one ``error: ...`` line on stderr, no traceback.
A command line is an :class:`ArgumentParser` (usage errors become :class:`UsageError`, a
``ValueError``), argument types from :func:`int_arg`/:func:`number_arg` (messages worded
as :mod:`traincore.validate`'s), and :func:`run_cli` (parse, dispatch to the subcommand,
map exceptions to exit statuses with :func:`run_command`). An environment variable (e.g.
``AIPOINCARE_DEBUG=1``) is the debug switch: errors then keep their traceback.

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

import argparse
import math
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import NoReturn

from .signals import terminate_raises
from .validate import range_text

__all__ = ["EXIT_OK", "EXIT_INTERNAL", "EXIT_BAD_INPUT", "EXIT_INTERRUPTED", "EXIT_TERMINATED",
           "ArgumentParser",
           "UsageError", "int_arg", "number_arg", "run_cli", "run_command"]

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
    except _non_finite() as exc:  # training diverged: not an input error
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


class UsageError(ValueError):
    """A command-line usage error (reported like any other bad input: exit status 2)."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a usage error raises :class:`UsageError` instead of exiting.

    :func:`run_command` then prints it as one ``error: ...`` line with exit status 2, like
    every other bad input.
    """

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message}; see `{self.prog} --help`.")


def int_arg(ge: int | None = None, le: int | None = None) -> Callable[[str], int]:
    """An argparse ``type``: an integer within bounds, e.g. ``int_arg(1, 8)``.

    >>> int_arg(1, 8)("3")
    3
    """
    def parse(text: str) -> int:
        expected = range_text("integer", ge, le, None, None)
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {expected}; got {text!r}") from None
        if (ge is not None and value < ge) or (le is not None and value > le):
            raise argparse.ArgumentTypeError(f"must be {expected}; got {value}")
        return value
    return parse


def number_arg(gt: float | None = None, lt: float | None = None,
               example: str = "") -> Callable[[str], float]:
    """An argparse ``type``: a finite number strictly within bounds, e.g. ``number_arg(0, 1)``.

    >>> number_arg(0, 1)("1e-9")
    1e-09
    """
    def parse(text: str) -> float:
        expected = range_text("number", None, None, gt, lt) + (f" (e.g. {example})"
                                                               if example else "")
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {expected}; got {text!r}") from None
        if not math.isfinite(value) or (gt is not None and not value > gt) or \
                (lt is not None and not value < lt):
            raise argparse.ArgumentTypeError(f"must be {expected}; got {text}")
        return value
    return parse


def _non_finite() -> tuple[type[BaseException], ...]:
    """``(NonFiniteError,)`` once :mod:`traincore.state` is loaded, else ``()``: that error
    exists only then, and importing it here would load torch before any input is checked."""
    state = sys.modules.get("traincore.state")
    return (state.NonFiniteError,) if state is not None else ()


def run_cli(parser: argparse.ArgumentParser, commands: Mapping[str, Callable[..., int]],
            argv: Sequence[str] | None, *, interrupted: str, debug_env: str | None = None
            ) -> int:
    """Parse ``argv``, run the subcommand ``commands[args.command](args)``, return the status.

    Parameters
    ----------
    parser : ArgumentParser
        With subcommands stored in ``args.command``.
    commands : mapping of str to callable ``(args) -> int``
    argv : sequence of str or None
        Arguments without the program name (None: ``sys.argv[1:]``).
    interrupted, debug_env
        As for :func:`run_command`.

    Returns
    -------
    int
        0 on success, 2 for bad input (usage included), as in the table above; ``--help``
        returns argparse's status (0).
    """
    def action() -> int:
        try:
            args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
        except SystemExit as exc:  # --help / --version: argparse already printed
            return int(exc.code) if isinstance(exc.code, int) else EXIT_OK
        return commands[args.command](args)

    return run_command(action, interrupted=interrupted, debug_env=debug_env)
