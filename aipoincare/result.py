"""Result objects of :func:`aipoincare.discover` and their JSON document.

* :class:`Discovery` and :class:`Invariant`: what a discovery found, with its evidence.
* :func:`to_dict` / :func:`to_json` -- the JSON document of ``aipoincare discover --json``
  (plus evidence fields), with only finite numbers (non-finite floats become ``null``)
  and expression strings that SymPy parses back with the declared variable names.

The reports for people (text, LaTeX) are in :mod:`aipoincare.report`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np
import sympy

from .canonical import canonical_form
from .display import certificate_tag, latex_table, to_html

__all__ = ["Invariant", "Discovery", "Exceptional", "SpecialValue", "Family", "expr_to_str",
           "to_dict", "to_json"]


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
    evidence : dict or None
        Found in trajectory data: the data evidence (``heldout_ratio``, ``fit_ratio``:
        along/across-trajectory variance; ``heldout_excess``, ``fit_excess``: the same for
        the smooth part of the along-trajectory variance, the tested one;
        ``heldout_noise``, ``fit_noise``: along-trajectory variance over what the noise
        explains; ``heldout_rough``, ``fit_rough``: over the measured non-smooth part; the
        trajectory counts and thresholds). None in the equation mode.
    """

    expr: sympy.Expr
    verified: bool
    method: str
    residual: float = 0.0
    detail: str = ""
    coefficients: dict[str, Any] = field(default_factory=dict)
    evidence: dict[str, Any] | None = None


@dataclass(frozen=True)
class Exceptional:
    """Parameter values where a result about a family may not hold.

    Attributes
    ----------
    equations : tuple of sympy.Expr
        The set is where all of them vanish (polynomials in the symbolic parameters).
    reason : str
        What happens there, e.g. "H3 vanishes identically".
    """

    equations: tuple[sympy.Expr, ...]
    reason: str


@dataclass(frozen=True)
class SpecialValue:
    """Parameter values where the basis holds more invariants than for generic values.

    Attributes
    ----------
    condition : sympy.Expr
        A polynomial in the parameters; the special values are its zeros.
    nullity : int
        The dimension of the conserved subspace there (more than the generic one).
    invariants : tuple of sympy.Expr
        A basis of the conserved subspace on the special set (coefficients in the remaining
        parameters), when it was computed; empty otherwise.
    """

    condition: sympy.Expr
    nullity: int
    invariants: tuple[sympy.Expr, ...] = ()


@dataclass(frozen=True)
class Family:
    """How a discovery with symbolic parameters is to be read.

    Attributes
    ----------
    parameters : tuple of str
        The symbolic parameters; the invariants are expressions in them and the variables.
    generic_point : dict of str to sympy.Rational
        The parameter values of the float evidence (spectrum, plots, float coefficients).
    parameter_degree : int
        Highest degree of the invariants' coefficients in the parameters.
    exceptional : tuple of Exceptional
        Where the stated invariants degenerate or the equations are undefined. Outside it
        the invariants are conserved, nonzero and linearly independent; the counts are the
        generic ones (over the field of rational functions of the parameters).
    special : tuple of SpecialValue or None
        Parameter values with more invariants in the basis (None: not searched).
    special_note : str
        How the special values were searched, or why not.
    """

    parameters: tuple[str, ...]
    generic_point: dict[str, Any]
    parameter_degree: int
    exceptional: tuple[Exceptional, ...] = ()
    special: tuple[SpecialValue, ...] | None = None
    special_note: str = ""


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
    family : Family or None
        With symbolic parameters: the parameters, the exceptional set and the special
        values; the counts are then generic counts. None otherwise.
    data : dict or None
        From trajectory data: the trajectory and sample counts, the fit/held-out split, the
        estimated noise per variable and the thresholds. None in the equation mode.
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
    family: Family | None = None
    data: dict[str, Any] | None = None

    @property
    def basis_size(self) -> int:
        return len(self.basis_labels)

    @property
    def symbolic(self) -> list[str]:
        """The symbolic parameters (empty for a system without them)."""
        return list(self.family.parameters) if self.family is not None else []

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of ``aipoincare discover --json`` as a dict (:func:`to_dict`)."""
        return to_dict(self)

    def to_json(self, indent: int | None = 2) -> str:
        """The JSON document as a string (:func:`to_json`)."""
        return to_json(self, indent=indent)

    def to_latex_table(self) -> str:
        """The independent invariants as a LaTeX ``tabular``: canonical formulas and
        certificate tags (:func:`aipoincare.display.latex_table`)."""
        return latex_table(self)

    def _repr_html_(self) -> str:
        """The notebook display: counts, the invariants with LaTeX formulas and certificate
        tags, the exceptional set of a family, the spectrum as a small figure
        (:func:`aipoincare.display.to_html`)."""
        return to_html(self)

    def __repr__(self) -> str:
        how = "exact" if self.exact else f"numerical, confidence {self.confidence:.2f}"
        return (f"Discovery({self.name!r}: basis {self.basis_size}, nullity {self.nullity}, "
                f"independent {self.independent} ({how}), "
                f"{sum(i.verified for i in self.invariants)} verified, {self.seconds:.2f} s)")


# ----------------------------------------------------------------------------------------
# The JSON document
# ----------------------------------------------------------------------------------------

def expr_to_str(expr: Any) -> str:
    """A plain-maths string of ``expr`` that :func:`sympy.parse_expr` reads back.

    Examples
    --------
    >>> x, y = sympy.symbols("x y")
    >>> expr_to_str(x**2 / 2 + sympy.sqrt(y))
    'x**2/2 + sqrt(y)'
    """
    return sympy.sstr(expr)  # never sympify: that parses (executes) strings


def finite_or_none(value: Any) -> float | None:
    """Float, or None for NaN/inf (JSON has no NaN)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _jsonable(obj: Any) -> Any:
    """Plain JSON types: finite floats or None, ints, strings (sympy numbers as text)."""
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, (int, np.integer)) and not isinstance(obj, bool):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, (float, np.floating)):
        return finite_or_none(obj)
    if isinstance(obj, (sympy.Integer,)):
        return int(obj)
    if isinstance(obj, (sympy.Rational, Fraction)):
        return str(obj)  # exact: "3/7"
    if isinstance(obj, sympy.Float):
        return finite_or_none(obj)
    if isinstance(obj, sympy.Basic):
        return expr_to_str(obj)
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, np.ndarray):
        return [_jsonable(v) for v in obj.ravel().tolist()] if obj.ndim <= 1 else \
            [_jsonable(row) for row in obj]
    if isinstance(obj, Sequence):
        return [_jsonable(v) for v in obj]
    return str(obj)


def _spectrum(values: Any) -> list[float | None]:
    if values is None:
        return []
    arr = np.asarray(values, dtype=np.float64).ravel()
    return [finite_or_none(v) for v in arr.tolist()]


def _invariant_dict(inv: Invariant, variables: Sequence[str]) -> dict[str, Any]:
    form = canonical_form(inv.expr, variables)
    out = {
        "expr": expr_to_str(inv.expr),
        "latex": sympy.latex(inv.expr),
        "verified": bool(inv.verified),
        "method": str(inv.method),
        "residual": finite_or_none(inv.residual),
        "detail": str(inv.detail),
        "coefficients": _jsonable(dict(inv.coefficients)),
        "tag": certificate_tag(inv),
        "canonical": form.text,
        "canonical_latex": form.latex,
        "decimal": form.decimal(),
    }
    if inv.evidence is not None:  # found in trajectory data
        out["evidence"] = _jsonable(dict(inv.evidence))
    return out


def _family_dict(family: Family | None) -> dict[str, Any] | None:
    if family is None:
        return None
    special = None if family.special is None else [
        {"condition": expr_to_str(s.condition), "nullity": int(s.nullity),
         "invariants": [expr_to_str(e) for e in s.invariants]} for s in family.special]
    return {
        "parameters": list(family.parameters),
        "generic_point": _jsonable(dict(family.generic_point)),
        "parameter_degree": int(family.parameter_degree),
        "exceptional": [{"equations": [expr_to_str(e) for e in x.equations],
                         "reason": x.reason} for x in family.exceptional],
        "special_values": special,
        "special_note": family.special_note,
    }


def to_dict(discovery: Discovery) -> dict[str, Any]:
    """The JSON document of ``aipoincare discover --json`` as a dict of plain JSON types.

    Fields every reader may rely on (documentation page 'Command lines', docs/cli.md):
    ``name, variables, basis_size, points, nullity, independent,
    invariants[expr, latex, verified, method], spectrum, seconds``. Added evidence: each
    invariant's ``residual``, ``detail`` (the certificate in full) and ``coefficients``, its
    short certificate ``tag`` (:func:`aipoincare.display.certificate_tag`), its
    ``canonical`` form and ``canonical_latex`` (primitive integer coefficients, positive
    leading term, fixed term order: :mod:`aipoincare.canonical`; ``expr`` is the same
    invariant as discovery scaled it) and ``decimal`` (a decimal view when a canonical
    integer coefficient has more than 10 digits, else null); ``gap``, ``confidence``,
    ``exact``, ``count_method``, ``dropped``, ``timings``, ``notes``, ``conserved`` (a sparse
    basis of the conserved subspace) and ``independence_spectrum``; ``symbolic`` (the
    symbolic parameters' names, empty without them) and ``family`` (null without them:
    the generic point, parameter degree, exceptional set and special values); from trajectory
    data, ``data`` and each invariant's ``evidence`` (both absent otherwise). Non-finite
    numbers are ``null``; ``json.dumps(..., allow_nan=False)`` accepts the result.

    Every expression string parses back with :func:`sympy.parse_expr` given the declared
    names: ``local_dict={n: sympy.Symbol(n) for n in doc["variables"] + doc["symbolic"]}``
    (needed when a name is also one of SymPy's, such as ``E``, ``I``, ``O``, ``beta``).
    """
    d = discovery
    doc = {
        "name": str(d.name),
        "variables": [str(v) for v in d.variables],
        "basis_size": int(d.basis_size),
        "points": int(d.points),
        "nullity": int(d.nullity),
        "independent": int(d.independent),
        "invariants": [_invariant_dict(inv, d.variables) for inv in d.invariants],
        "spectrum": _spectrum(d.spectrum),
        "seconds": finite_or_none(d.seconds),
        "gap": finite_or_none(d.gap),
        "confidence": finite_or_none(d.confidence),
        "exact": bool(d.exact),
        "count_method": str(d.count_method),
        "dropped": int(d.dropped),
        "conserved": [expr_to_str(e) for e in d.conserved],
        "independence_spectrum": _spectrum(d.independence_spectrum),
        "timings": {str(k): finite_or_none(v) for k, v in dict(d.timings).items()},
        "notes": [str(n) for n in d.notes],
        "symbolic": d.symbolic,
        "family": _family_dict(d.family),
    }
    if d.data is not None:  # from trajectory data
        doc["data"] = _jsonable(dict(d.data))
    return doc


def to_json(discovery: Discovery, indent: int | None = 2) -> str:
    """The JSON document as a string (strict JSON: no NaN or Infinity)."""
    return json.dumps(to_dict(discovery), indent=indent, allow_nan=False)
