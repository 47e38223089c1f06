"""What to search and where to sample: :class:`BasisSpec` and :class:`SamplingSpec`.

Both are validated on construction, the one place their entries are checked, whether they
come from a ``[basis]``/``[sampling]`` table of a system file or from Python.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sympy

from traincore import check_choice, check_int, check_number

from .errors import SYSTEM_ERRORS, SystemFileError, SystemFileTypeError
from .parser import parse_expression

__all__ = ["BASIS_KINDS", "DISTRIBUTIONS", "MAX_DEGREE", "BasisSpec", "SamplingSpec",
           "from_table"]

#: Registry of basis kinds (the maths side builds them; here they are validated).
BASIS_KINDS: dict[str, str] = {
    "polynomial": "all monomials of total degree 1..degree (no constant)",
    "expressions": "the explicit list `expressions`",
    "product": "every monomial of degree 0..degree times every expression",
}
#: Registry of sampling distributions.
DISTRIBUTIONS: dict[str, str] = {
    "normal": "mean 0, standard deviation `scale`",
    "uniform": "uniform in [low, high]",
}
#: Largest polynomial degree accepted (degree 8 in 24 variables is already ~10^7 functions).
MAX_DEGREE = 8

@dataclass(frozen=True)
class BasisSpec:
    """Which basis functions to search over.

    kind : "polynomial" (all monomials of total degree 1..degree, no constant),
           "expressions" (the explicit ``expressions``), or "product" (every monomial of
           degree 0..degree times every expression).

    ``expressions`` may be given as strings; they are parsed safely (names are resolved
    against the variables, parameters and definitions by :class:`System`).

    Examples
    --------
    >>> BasisSpec("expressions", expressions=["x", "log(x)"]).expressions
    (x, log(x))
    """

    kind: str = "polynomial"
    degree: int | None = None                     # None: the caller's default (3)
    expressions: tuple[sympy.Expr, ...] = ()      # for "expressions" and "product"

    def __post_init__(self) -> None:
        check_choice(self.kind, "kind", BASIS_KINDS, where="of [basis]", errors=SYSTEM_ERRORS)
        if self.degree is not None:
            if isinstance(self.degree, float) and self.degree.is_integer():
                object.__setattr__(self, "degree", int(self.degree))  # TOML's 3.0
            object.__setattr__(self, "degree", check_int(
                self.degree, "degree", ge=1, le=MAX_DEGREE, where="of [basis]",
                errors=SYSTEM_ERRORS))
        exprs = self.expressions
        if isinstance(exprs, (str, sympy.Basic)) or not isinstance(exprs, Iterable):
            raise SystemFileTypeError(
                f"The 'expressions' of [basis] must be a list of strings such as "
                f"[\"x\", \"log(x)\"]; got {type(exprs).__name__} {exprs!r}.")
        parsed = tuple(e if isinstance(e, sympy.Basic) else
                       parse_expression(e, {}, where=f"[basis] expressions[{i}]",
                                        free_names=True) for i, e in enumerate(exprs))
        object.__setattr__(self, "expressions", parsed)
        if self.kind in ("expressions", "product") and not parsed:
            raise SystemFileError(
                f"[basis] kind = {self.kind!r} needs a non-empty 'expressions' list, e.g. "
                "expressions = [\"x\", \"log(x)\"]; got none.")


@dataclass(frozen=True)
class SamplingSpec:
    """How random states are drawn (or where they are read from).

    Examples
    --------
    >>> SamplingSpec("uniform", low=-1, high=2).high
    2.0
    """

    distribution: str = "normal"   # "normal" (mean 0, std scale) or "uniform" [low, high]
    scale: float = 1.0             # std of the normal distribution: the paper's choice
    low: float = 0.0               # uniform lower bound
    high: float = 1.0              # uniform upper bound
    points: int | None = None      # None: chosen from the basis size (>= 1.2x)
    data: str | None = None        # CSV/NPY file of states, one row per state

    def __post_init__(self) -> None:
        where, errors = "of [sampling]", SYSTEM_ERRORS
        check_choice(self.distribution, "distribution", DISTRIBUTIONS, where=where,
                     errors=errors)
        object.__setattr__(self, "scale", check_number(self.scale, "scale", gt=0, where=where,
                                                       errors=errors))
        for key in ("low", "high"):
            object.__setattr__(self, key, check_number(getattr(self, key), key, where=where,
                                                       errors=errors))
        if not self.low < self.high:
            raise SystemFileError(
                f"[sampling] needs low < high; got low = {self.low!r}, high = {self.high!r}.")
        if self.points is not None:
            check_int(self.points, "points", ge=1, where=where, errors=errors,
                      fix="leave it out for the default (1.2x the basis size)")
        if self.data is not None:
            if isinstance(self.data, os.PathLike):
                object.__setattr__(self, "data", os.fspath(self.data))
            if not isinstance(self.data, str) or not self.data.strip():
                raise SystemFileError(
                    "The 'data' of [sampling] must be a file name (CSV or .npy); "
                    f"got {self.data!r}.")


def from_table(make: Any, table: Mapping[str, Any], allowed: Sequence[str], section: str,
               src: str) -> Any:
    """``make(**table)`` for a TOML table (a spec class): unknown keys refused, the file
    named in its errors."""
    extra = [k for k in table if k not in allowed]
    if extra:
        raise SystemFileError(f"Unknown key {extra[0]!r} in {section}{src}; the allowed keys "
                              f"are {', '.join(allowed)}.")
    try:
        return make(**table)
    except SystemFileError as exc:
        if not src:
            raise
        raise type(exc)(f"{exc}".rstrip(".") + f" (in {src.strip(' ()')}).") from None
