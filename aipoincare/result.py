"""Result objects of :func:`aipoincare.discover`: ``Discovery`` and ``Invariant``.

OWNERSHIP: the maths helper fills these; ``report.py`` (input/output helper) formats them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy

__all__ = ["Invariant", "Discovery"]


@dataclass(frozen=True)
class Invariant:
    """One conserved quantity with the evidence that it is conserved.

    Attributes
    ----------
    expr : sympy.Expr
        The invariant, in the system's variables (exact rational coefficients when exact).
    verified : bool
        True only when a certificate check (that could have failed) passed.
    method : str
        How it was certified: "symbolic", "symbolic-modulo-constraints",
        "identity-test" (randomised exact evaluation, error bound in ``detail``),
        "mpmath-50-digits", or "numerical" (not verified).
    residual : float
        Largest |grad H . f| / scale seen in the check (0 for exact checks).
    detail : str
        A sentence on the check, e.g. its error probability bound.
    coefficients : dict
        Basis label -> coefficient (sympy Rational or float).
    """

    expr: sympy.Expr
    verified: bool
    method: str
    residual: float = 0.0
    detail: str = ""
    coefficients: dict[str, Any] = field(default_factory=dict)


@dataclass
class Discovery:
    """What :func:`aipoincare.discover` found, with its evidence.

    Attributes
    ----------
    name : str
    variables : list of str
    basis_labels : list of str
        Basis functions in order (``basis_size`` of them).
    points : int
        Sample points used for the numerical matrix (after drops).
    dropped : int
        Sample points dropped (projection failed, or f/basis not finite).
    nullity : int
        Dimension of the conserved subspace of the basis.
    independent : int
        Number of functionally independent conserved quantities (== len(invariants)).
    invariants : list of Invariant
        The independent invariants, simplest first.
    conserved : list of sympy.Expr
        A sparse basis of the whole conserved subspace (``nullity`` of them).
    coefficients : ndarray, shape (nullity, basis_size)
        Coefficients of ``conserved`` in the basis (for the heat map).
    spectrum : ndarray, shape (basis_size,)
        Normalised singular values of the numerical matrix, descending.
    gap : float
        Decades of the spectral gap at the numerical cut.
    confidence : float
        In [0, 1]; 1.0 when the counts are exact.
    exact : bool
        True when nullity and independent were computed exactly (modular arithmetic).
    count_method : str
        "exact-modular" or "numerical-gap".
    independence_spectrum : ndarray
        Normalised singular values of the Jacobian of the invariants (numerical).
    seconds : float
    timings : dict of str to float
        Seconds per pipeline stage.
    notes : list of str
        Anything a careful reader should know (points dropped, numerical counts, ...).
    independence : str
        "ambient" or "tangent": which gradients decided functional independence.
    jacobian_ranks : dict of str to int
        Exact Jacobian ranks of the whole conserved subspace with "ambient" gradients and
        along the constraint set ("tangent"); empty when not computed exactly.
    """

    name: str
    variables: list[str]
    basis_labels: list[str]
    points: int
    nullity: int
    independent: int
    invariants: list[Invariant]
    spectrum: np.ndarray
    dropped: int = 0
    conserved: list[sympy.Expr] = field(default_factory=list)
    coefficients: np.ndarray | None = None
    gap: float = 0.0
    confidence: float = 0.0
    exact: bool = False
    count_method: str = "numerical-gap"
    independence_spectrum: np.ndarray | None = None
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    independence: str = "ambient"
    jacobian_ranks: dict[str, int] = field(default_factory=dict)

    @property
    def basis_size(self) -> int:
        return len(self.basis_labels)

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of CONTRACT.md as a dict."""
        from .report import to_dict

        return to_dict(self)

    def to_json(self, indent: int = 2) -> str:
        """The JSON document of CONTRACT.md as a string."""
        import json

        return json.dumps(self.to_dict(), indent=indent)

    def __repr__(self) -> str:
        how = "exact" if self.exact else f"numerical, confidence {self.confidence:.2f}"
        return (f"Discovery({self.name!r}: basis {self.basis_size}, nullity {self.nullity}, "
                f"independent {self.independent} ({how}), "
                f"{sum(i.verified for i in self.invariants)} verified, {self.seconds:.2f} s)")
