"""Argument checks with one message format, for every package of the toolkit.

Every check raises with one line that names the argument, says what was expected, what was
received and (when it is not obvious) the fix::

    The 'degree' of [basis] must be an integer from 1 to 8; got 'three'.
    The 'points' must be a positive integer; got 0; pass None for the default.

A value of the wrong kind raises ``TypeError``, a value of the right kind that is out of
range or not among the choices raises ``ValueError`` (as in scikit-learn's parameter
validation). A package with its own error classes passes them as ``errors``, e.g.
``Errors(SystemFileTypeError, SystemFileError)``; each must be a subclass of ``TypeError``
and ``ValueError`` respectively, so callers can always catch the builtin ones.

Each check returns the value, converted where that loses nothing (a numpy integer becomes
``int`` in :func:`check_int`, any real number ``float`` in :func:`check_number`; an integral
float such as ``3.0`` is *not* an integer), so a ``__post_init__`` can store it back.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple, TypeVar

__all__ = ["Errors", "check_bool", "check_choice", "check_int", "check_number", "check_type",
           "replace_fields"]

T = TypeVar("T")


class Errors(NamedTuple):
    """The exception classes a check raises: one for a wrong kind, one for a wrong value."""

    type_error: type[TypeError] = TypeError
    value_error: type[ValueError] = ValueError


_DEFAULT = Errors()


def _subject(name: str, where: str) -> str:
    return f"The {name!r}" + (f" {where}" if where else "")


def _message(name: str, where: str, expected: str, got: str, fix: str) -> str:
    return f"{_subject(name, where)} must be {expected}; got {got}" + (f"; {fix}" if fix else "") \
        + "."


def _got_kind(value: Any) -> str:
    return f"{type(value).__name__} {value!r}"


def _num(value: float) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}"  # 2**31 - 1 in full


def range_text(noun: str, ge: float | None, le: float | None, gt: float | None,
               lt: float | None) -> str:
    """``"an integer from 1 to 8"``, ``"a positive number"``, ``"a number in (0, 1)"``..."""
    a = "an" if noun[0] in "aeiou" else "a"
    lo, hi = (ge if ge is not None else gt), (le if le is not None else lt)
    if lo is not None and hi is not None:
        if ge is not None and le is not None:
            return f"{a} {noun} from {_num(ge)} to {_num(le)}"
        return (f"{a} {noun} in {'[' if ge is not None else '('}{_num(lo)}, {_num(hi)}"
                f"{']' if le is not None else ')'}")
    if gt == 0 or (ge == 1 and noun == "integer"):
        return f"a positive {noun}"
    if ge == 0:
        return f"a non-negative {noun}"
    if lo is not None:
        return f"{a} {noun} {'of at least' if ge is not None else 'above'} {_num(lo)}"
    if hi is not None:
        return f"{a} {noun} {'of at most' if le is not None else 'below'} {_num(hi)}"
    return f"{a} finite {noun}" if noun == "number" else f"{a} {noun}"


def _in_range(value: float, ge: float | None, le: float | None, gt: float | None,
              lt: float | None) -> bool:
    return ((ge is None or value >= ge) and (le is None or value <= le)
            and (gt is None or value > gt) and (lt is None or value < lt))


def check_int(value: Any, name: str, *, ge: int | None = None, le: int | None = None,
              where: str = "", fix: str = "", errors: Errors = _DEFAULT) -> int:
    """An integer (``bool`` is refused), optionally within bounds.

    Parameters
    ----------
    value : any
        What the caller received.
    name : str
        The argument's name, as the user wrote it (``"degree"``).
    ge, le : int, optional
        Inclusive bounds.
    where : str
        Where the argument sits, appended to its name (``"of [basis]"``).
    fix : str
        How to put it right, when the expected value alone does not say it.
    errors : Errors
        The exception classes to raise.

    Returns
    -------
    int

    Examples
    --------
    >>> check_int(3, "degree", ge=1, le=8)
    3
    >>> check_int(9, "degree", ge=1, le=8, where="of [basis]")
    Traceback (most recent call last):
    ...
    ValueError: The 'degree' of [basis] must be an integer from 1 to 8; got 9.
    >>> check_int("3", "seed", ge=0)
    Traceback (most recent call last):
    ...
    TypeError: The 'seed' must be a non-negative integer; got str '3'.
    """
    expected = range_text("integer", ge, le, None, None)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise errors.type_error(_message(name, where, expected, _got_kind(value), fix))
    value = int(value)
    if not _in_range(value, ge, le, None, None):
        raise errors.value_error(_message(name, where, expected, repr(value), fix))
    return value


def check_number(value: Any, name: str, *, ge: float | None = None, le: float | None = None,
                 gt: float | None = None, lt: float | None = None, where: str = "",
                 fix: str = "", errors: Errors = _DEFAULT) -> float:
    """A finite real number (``bool`` is refused), optionally within bounds, as a float.

    Examples
    --------
    >>> check_number(1e-9, "tol", gt=0, lt=1)
    1e-09
    >>> check_number(2, "tol", gt=0, lt=1, fix="e.g. 1e-9")
    Traceback (most recent call last):
    ...
    ValueError: The 'tol' must be a number in (0, 1); got 2; e.g. 1e-9.
    """
    expected = range_text("number", ge, le, gt, lt)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise errors.type_error(_message(name, where, expected, _got_kind(value), fix))
    if not math.isfinite(value) or not _in_range(value, ge, le, gt, lt):
        raise errors.value_error(_message(name, where, expected, repr(value), fix))
    return float(value)


def check_bool(value: Any, name: str, *, where: str = "", fix: str = "",
               errors: Errors = _DEFAULT) -> bool:
    """``True`` or ``False`` (not 0/1, not a string).

    Examples
    --------
    >>> check_bool("yes", "certify")
    Traceback (most recent call last):
    ...
    TypeError: The 'certify' must be True or False; got str 'yes'.
    """
    if not isinstance(value, bool):
        raise errors.type_error(_message(name, where, "True or False", _got_kind(value), fix))
    return value


def check_choice(value: Any, name: str, choices: Iterable[Any], *, where: str = "",
                 fix: str = "", errors: Errors = _DEFAULT) -> Any:
    """One of ``choices`` (compared with ``==``; ``True`` never matches ``1``).

    Examples
    --------
    >>> check_choice("tangent", "independence", ("ambient", "tangent"))
    'tangent'
    >>> check_choice("both", "independence", ("ambient", "tangent"))
    Traceback (most recent call last):
    ...
    ValueError: The 'independence' must be one of 'ambient', 'tangent'; got 'both'.
    """
    options = list(choices)
    if not any(type(value) is type(c) and value == c for c in options):
        expected = "one of " + ", ".join(map(repr, options))
        raise errors.value_error(_message(name, where, expected, repr(value), fix))
    return value


def check_type(value: Any, name: str, types: type | tuple[type, ...], expected: str, *,
               where: str = "", fix: str = "", errors: Errors = _DEFAULT) -> Any:
    """An instance of ``types``; ``expected`` says what in words (``"a BasisSpec"``).

    Examples
    --------
    >>> check_type(3, "system", str, "a path")
    Traceback (most recent call last):
    ...
    TypeError: The 'system' must be a path; got int 3.
    """
    if not isinstance(value, types):
        raise errors.type_error(_message(name, where, expected, _got_kind(value), fix))
    return value


def replace_fields(config: T, settings: Mapping[str, Any], caller: str) -> T:
    """``config`` with the named fields replaced (validated again), unknown names refused.

    The one way keyword settings are merged into a frozen config dataclass: the caller's
    keywords win over the config's fields, and a misspelt name is an error rather than
    silently ignored.

    Parameters
    ----------
    config : dataclass instance
    settings : mapping of str to any
        Field name -> new value.
    caller : str
        The function that received the settings, for the message (``"discover()"``).

    Examples
    --------
    >>> @dataclasses.dataclass(frozen=True)
    ... class Config:
    ...     degree: int = 3
    >>> replace_fields(Config(), {"degree": 5}, "discover()")
    Config(degree=5)
    >>> replace_fields(Config(), {"degre": 5}, "discover()")
    Traceback (most recent call last):
    ...
    TypeError: discover() got the unknown setting(s) 'degre'; the settings are the fields of ...
    """
    fields = [f.name for f in dataclasses.fields(config)]  # type: ignore[arg-type]
    unknown = [k for k in settings if k not in fields]
    if unknown:
        raise TypeError(f"{caller} got the unknown setting(s) {', '.join(map(repr, unknown))}; "
                        f"the settings are the fields of {type(config).__name__}: "
                        f"{', '.join(fields)}.")
    return dataclasses.replace(config, **settings) if settings else config  # type: ignore
