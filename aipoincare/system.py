"""Systems of ODEs: the ``System`` object, and parsing of system files (TOML) and strings.

OWNERSHIP: the "aipoincare input/output" helper fills in parsing and validation; the field
layout below is the interface the maths side relies on; do not rename fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import sympy

__all__ = ["BasisSpec", "SamplingSpec", "System", "load_system"]


@dataclass(frozen=True)
class BasisSpec:
    """Which basis functions to search over.

    kind : "polynomial" (all monomials of total degree 1..degree, no constant),
           "expressions" (the explicit ``expressions``), or "product" (every monomial of
           degree 0..degree times every expression).
    """

    kind: str = "polynomial"
    degree: int | None = None                     # None: the caller's default (3)
    expressions: tuple[sympy.Expr, ...] = ()      # for "expressions" and "product"


@dataclass(frozen=True)
class SamplingSpec:
    """How random states are drawn (or where they are read from)."""

    distribution: str = "normal"   # "normal" (mean 0, std scale) or "uniform" [low, high]
    scale: float = 1.0             # std of the normal distribution: the paper's choice
    low: float = 0.0               # uniform lower bound
    high: float = 1.0              # uniform upper bound
    points: int | None = None      # None: chosen from the basis size (>= 1.2x)
    data: str | None = None        # CSV/NPY file of states, one row per state


@dataclass(frozen=True)
class System:
    """dx/dt = f(x), optionally restricted to states where the constraints vanish.

    Attributes
    ----------
    variables : tuple of sympy.Symbol
        State variables, in order.
    equations : tuple of sympy.Expr
        ``equations[i]`` is d(variables[i])/dt with parameters and definitions substituted
        (parameters become exact Rationals of their decimal value).
    name : str
    constraints : tuple of sympy.Expr
        Expressions g_k with g_k(x) = 0 on admissible states.
    parameters : mapping of str to sympy.Number
    basis : BasisSpec or None
        Default basis from the file (command-line options override it).
    sampling : SamplingSpec
    expected : mapping of str to int
        Informative known counts (``nullity``, ``independent``).
    source : str or None
        The file the system came from.
    """

    variables: tuple[sympy.Symbol, ...]
    equations: tuple[sympy.Expr, ...]
    name: str = "system"
    constraints: tuple[sympy.Expr, ...] = ()
    parameters: Mapping[str, sympy.Expr] = field(default_factory=dict)
    basis: BasisSpec | None = None
    sampling: SamplingSpec = field(default_factory=SamplingSpec)
    expected: Mapping[str, int] = field(default_factory=dict)
    source: str | None = None


def load_system(path: str) -> System:
    """Read a system file (TOML, format in CONTRACT.md)."""
    raise NotImplementedError("filled in by the input/output helper")


def _unused(_: Any) -> None:  # pragma: no cover - placeholder, removed with the stub
    pass
