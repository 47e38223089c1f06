"""Reports of a :class:`~aipoincare.result.Discovery`: JSON document, plain text, LaTeX.

* :func:`to_dict` -- the JSON document of CONTRACT.md (plus evidence fields), with only
  finite numbers (non-finite floats become ``null``) and expression strings that SymPy parses
  back with the declared variable names.
* :func:`to_text` -- the human-readable report printed by ``aipoincare discover``: the
  counts and how they were decided, each independent invariant in plain maths with its
  certificate, the notes.
* :func:`to_latex` -- the same as a LaTeX fragment (or a standalone document).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import numpy as np
import sympy

if TYPE_CHECKING:
    from .result import Discovery, Invariant

__all__ = ["expr_to_str", "to_dict", "to_json", "to_latex", "to_text"]

#: How the counts were decided, in words (keys: ``Discovery.count_method``).
COUNT_METHODS = {
    "exact-modular": "exact: rank over GF(p) at random rational points (Schwartz-Zippel)",
    "numerical-gap": "numerical: largest gap in the normalised singular values",
    "numerical-tol": "numerical: singular values below the given tolerance",
}
#: Certificate methods, in words (keys: ``Invariant.method``).
METHODS = {
    "symbolic": "grad H . f simplifies to 0 symbolically",
    "symbolic-modulo-constraints": "grad H . f reduces to 0 modulo the constraints",
    "identity-test": "grad H . f evaluates exactly to 0 at random points (randomised identity "
                     "test)",
    "mpmath-50-digits": "grad H . f is 0 to 50+ digits at random points (mpmath)",
    "numerical": "not certified: only numerically small",
}
_SHOW_CONSERVED = 12  # conserved-subspace elements listed in the text report


def expr_to_str(expr: Any) -> str:
    """A plain-maths string of ``expr`` that :func:`sympy.parse_expr` reads back.

    Examples
    --------
    >>> x, y = sympy.symbols("x y")
    >>> expr_to_str(x**2 / 2 + sympy.sqrt(y))
    'x**2/2 + sqrt(y)'
    """
    return sympy.sstr(expr)  # never sympify: that parses (executes) strings


def _finite(value: Any) -> float | None:
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
        return _finite(obj)
    if isinstance(obj, (sympy.Integer,)):
        return int(obj)
    if isinstance(obj, (sympy.Rational, Fraction)):
        return str(obj)  # exact: "3/7"
    if isinstance(obj, sympy.Float):
        return _finite(obj)
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
    return [_finite(v) for v in arr.tolist()]


def _invariant_dict(inv: Invariant) -> dict[str, Any]:
    return {
        "expr": expr_to_str(inv.expr),
        "latex": sympy.latex(inv.expr),
        "verified": bool(inv.verified),
        "method": str(inv.method),
        "residual": _finite(inv.residual),
        "detail": str(inv.detail),
        "coefficients": _jsonable(dict(inv.coefficients)),
    }


def to_dict(discovery: Discovery) -> dict[str, Any]:
    """The JSON document of CONTRACT.md as a dict of plain JSON types.

    Contract fields: ``name, variables, basis_size, points, nullity, independent,
    invariants[expr, latex, verified, method], spectrum, seconds``. Added evidence: each
    invariant's ``residual``, ``detail`` and ``coefficients``; ``gap``, ``confidence``,
    ``exact``, ``count_method``, ``dropped``, ``timings``, ``notes``, ``conserved`` (a sparse
    basis of the conserved subspace) and ``independence_spectrum``. Non-finite numbers are
    ``null``; ``json.dumps(..., allow_nan=False)`` accepts the result.
    """
    d = discovery
    return {
        "name": str(d.name),
        "variables": [str(v) for v in d.variables],
        "basis_size": int(d.basis_size),
        "points": int(d.points),
        "nullity": int(d.nullity),
        "independent": int(d.independent),
        "invariants": [_invariant_dict(inv) for inv in d.invariants],
        "spectrum": _spectrum(d.spectrum),
        "seconds": _finite(d.seconds),
        "gap": _finite(d.gap),
        "confidence": _finite(d.confidence),
        "exact": bool(d.exact),
        "count_method": str(d.count_method),
        "dropped": int(d.dropped),
        "conserved": [expr_to_str(e) for e in d.conserved],
        "independence_spectrum": _spectrum(d.independence_spectrum),
        "timings": {str(k): _finite(v) for k, v in dict(d.timings).items()},
        "notes": [str(n) for n in d.notes],
    }


def to_json(discovery: Discovery, indent: int | None = 2) -> str:
    """The JSON document as a string (strict JSON: no NaN or Infinity)."""
    return json.dumps(to_dict(discovery), indent=indent, allow_nan=False)


# ----------------------------------------------------------------------------------------
# Text
# ----------------------------------------------------------------------------------------

def _how_counted(d: Discovery) -> str:
    if d.exact:
        return COUNT_METHODS.get(d.count_method, d.count_method)
    base = COUNT_METHODS.get(d.count_method, d.count_method)
    gap = _finite(d.gap)
    conf = _finite(d.confidence)
    parts = [base]
    if gap is not None:
        parts.append(f"gap {gap:.1f} decades")
    if conf is not None:
        parts.append(f"confidence {conf:.2f}")
    return ", ".join(parts)


def _expected_mark(value: int, expected: Mapping[str, int] | None, key: str) -> str:
    if not expected or key not in expected:
        return ""
    want = expected[key]
    return f"  (expected {want}: {'matches' if want == value else 'DIFFERS'})"


def _certificate(inv: Invariant) -> str:
    if not inv.verified:
        text = f"NOT verified ({inv.method})"
    else:
        text = f"verified: {inv.method}"
        words = METHODS.get(inv.method)
        if words:
            text += f" ({words})"
    res = _finite(inv.residual)
    if res is not None and res != 0.0:
        text += f"; residual {res:.1e}"
    if inv.detail:
        text += f"; {inv.detail}"
    return text


def _fmt_seconds(value: Any) -> str:
    v = _finite(value)
    return "?" if v is None else (f"{v:.2f} s" if v < 100 else f"{v:.0f} s")


def to_text(discovery: Discovery, expected: Mapping[str, int] | None = None,
            max_conserved: int = _SHOW_CONSERVED) -> str:
    """The human-readable report.

    Parameters
    ----------
    discovery : Discovery
    expected : mapping, optional
        Known counts (``system.expected``) to compare with.
    max_conserved : int
        How many elements of the sparse conserved basis to list (0: none).

    Returns
    -------
    str
        Several lines, ending with a newline.
    """
    d = discovery
    lines = [f"{d.name}", "=" * min(len(d.name), 78)]
    lines.append(f"variables    {', '.join(map(str, d.variables))}  ({len(d.variables)})")
    drop = f", {d.dropped} dropped" if d.dropped else ""
    lines.append(f"basis        {d.basis_size} functions, {d.points} sample points{drop}")
    how = _how_counted(d)
    lines.append(f"nullity      {d.nullity}  [{how}]"
                 + _expected_mark(d.nullity, expected, "nullity"))
    lines.append(f"independent  {d.independent}  [{'exact' if d.exact else 'numerical'}: "
                 "Jacobian rank, greedy by simplicity]"
                 + _expected_mark(d.independent, expected, "independent"))
    n_ver = sum(bool(i.verified) for i in d.invariants)
    lines.append(f"verified     {n_ver} of {len(d.invariants)} invariants certified")
    lines.append("")
    if d.invariants:
        lines.append("Independent conserved quantities (d/dt H = grad H . f = 0):")
        width = len(str(len(d.invariants)))
        for k, inv in enumerate(d.invariants, 1):
            lines.append(f"  H{k:<{width}} = {expr_to_str(inv.expr)}")
            lines.append(f"  {' ' * (width + 1)}   {_certificate(inv)}")
    else:
        lines.append("No conserved quantity in this basis.")
    extra = list(d.conserved)
    if max_conserved and len(extra) > len(d.invariants):
        lines.append("")
        lines.append(f"Sparse basis of the conserved subspace ({len(extra)} elements; functions "
                     "of the invariants above):")
        for e in extra[:max_conserved]:
            text = expr_to_str(e)
            lines.append("  " + (text if len(text) <= 100 else text[:97] + "..."))
        if len(extra) > max_conserved:
            lines.append(f"  ... and {len(extra) - max_conserved} more (see --json)")
    if d.notes:
        lines.append("")
        lines.append("Notes:")
        lines.extend(f"  - {n}" for n in d.notes)
    lines.append("")
    timing = ""
    if d.timings:
        timing = " (" + ", ".join(f"{k} {_fmt_seconds(v)}" for k, v in d.timings.items()) + ")"
    lines.append(f"time         {_fmt_seconds(d.seconds)}{timing}")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------------
# LaTeX
# ----------------------------------------------------------------------------------------

_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                  "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                  "^": r"\textasciicircum{}"}


def _tex_text(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(c, c) for c in str(text))


def to_latex(discovery: Discovery, standalone: bool = False) -> str:
    """The report as LaTeX: counts, then the invariants in an ``align*`` with certificates.

    Parameters
    ----------
    discovery : Discovery
    standalone : bool
        Wrap it in a compilable ``article`` document (with ``amsmath``).

    Returns
    -------
    str
    """
    d = discovery
    out = [f"\\section*{{{_tex_text(d.name)}}}", ""]
    how = "exact" if d.exact else f"numerical, confidence {(_finite(d.confidence) or 0):.2f}"
    names = ", ".join(sympy.latex(sympy.Symbol(v)) for v in d.variables)
    out.append(f"Basis of {d.basis_size} functions in ${names}$, "
               f"{d.points} sample points. Nullity {d.nullity}, independent conserved "
               f"quantities {d.independent} ({_tex_text(how)}).")
    out.append("")
    if d.invariants:
        out.append("\\begin{align*}")
        rows = []
        for k, inv in enumerate(d.invariants, 1):
            mark = (f"\\text{{verified: {_tex_text(inv.method)}}}" if inv.verified
                    else f"\\text{{not verified ({_tex_text(inv.method)})}}")
            rows.append(f"  H_{{{k}}} &= {sympy.latex(inv.expr)} && {mark}")
        out.append(" \\\\\n".join(rows))
        out.append("\\end{align*}")
    else:
        out.append("No conserved quantity in this basis.")
    body = "\n".join(out) + "\n"
    if not standalone:
        return body
    return ("\\documentclass{article}\n\\usepackage{amsmath}\n\\begin{document}\n" + body
            + "\\end{document}\n")
