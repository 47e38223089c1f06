"""Reports of a :class:`~aipoincare.result.Discovery` for people: plain text and LaTeX.

* :func:`to_text` -- the human-readable report printed by ``aipoincare discover``: the
  counts and how they were decided, each independent invariant in plain maths with its
  certificate, the notes.
* :func:`to_latex` -- the same as a LaTeX fragment (or a standalone document).

The JSON document (serialisation) lives with the result, in :mod:`aipoincare.result`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sympy

from .result import Discovery, Family, Invariant, expr_to_str, finite_or_none

__all__ = ["to_latex", "to_text"]

#: How the counts were decided, in words (keys: ``Discovery.count_method``).
COUNT_METHODS = {
    "exact-modular": "exact: rank over GF(p) at random rational points (Schwartz-Zippel)",
    "numerical-gap": "numerical: largest gap in the normalised singular values",
    "numerical-tol": "numerical: singular values below the given tolerance",
    "data-heldout": "statistical, from trajectory data: constant along the trajectories "
                    "within the noise, tested on held-out trajectories",
}
#: Certificate methods, in words (keys: ``Invariant.method``).
METHODS = {
    "symbolic": "grad H . f simplifies to 0 symbolically",
    "symbolic-modulo-constraints": "grad H . f reduces to 0 modulo the constraints",
    "identity-test": "grad H . f evaluates exactly to 0 at random points (randomised identity "
                     "test)",
    "mpmath-50-digits": "grad H . f is 0 to 50+ digits at random points (mpmath)",
    "numerical": "not certified: only numerically small",
    "data": "evidence, not a proof: constant along held-out trajectories within the noise",
}
_SHOW_CONSERVED = 12  # conserved-subspace elements listed in the text report


# ----------------------------------------------------------------------------------------
# Text
# ----------------------------------------------------------------------------------------

def _how_counted(d: Discovery) -> str:
    if d.exact:
        return COUNT_METHODS.get(d.count_method, d.count_method)
    base = COUNT_METHODS.get(d.count_method, d.count_method)
    gap = finite_or_none(d.gap)
    conf = finite_or_none(d.confidence)
    parts = [base]
    if gap is not None:
        parts.append(f"gap {gap:.1f} decades")
    if conf is not None and d.data is None:  # data mode: the evidence is per invariant
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
    res = finite_or_none(inv.residual)
    if res is not None and res != 0.0:
        text += f"; residual {res:.1e}"
    if inv.detail:
        text += f"; {inv.detail}"
    return text


def _where(equations: Any) -> str:
    return ", ".join(f"{expr_to_str(e)} = 0" for e in equations)


def family_lines(family: Family) -> list[str]:
    """The text report's lines on symbolic parameters: what the counts mean, the
    exceptional set, the special values."""
    lines = [f"Symbolic parameters {', '.join(family.parameters)}: counts and invariants hold "
             "for generic values (coefficients of degree <= "
             f"{family.parameter_degree} in them), each invariant for every value.",
             "Exceptional set (outside it the invariants are also nonzero and independent):"]
    if not family.exceptional:
        lines[-1] += " none"
    lines.extend(f"  - where {_where(x.equations)}: {x.reason}" for x in family.exceptional)
    if family.special is None:
        lines.append(f"Special parameter values: {family.special_note}.")
        return lines
    lines.append("Special parameter values (more invariants in this basis):"
                 + ("" if family.special else " none"))
    for sv in family.special:
        lines.append(f"  - where {_where([sv.condition])}: nullity {sv.nullity}"
                     + (", spanned by" if sv.invariants else ""))
        lines.extend(f"      {expr_to_str(e)}" for e in sv.invariants)
    lines.append(f"  ({family.special_note})")
    return lines


def _fmt_seconds(value: Any) -> str:
    v = finite_or_none(value)
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
    if d.data is not None:
        lines.append(f"data         {d.data.get('trajectories')} trajectories "
                     f"({d.data.get('fit_trajectories')} fit, "
                     f"{d.data.get('heldout_trajectories')} held out), "
                     f"{'with' if d.data.get('equations') else 'no'} equations")
    n_ver = sum(bool(i.verified) for i in d.invariants)
    lines.append(f"verified     {n_ver} of {len(d.invariants)} invariants certified")
    lines.append("")
    if d.invariants:
        lines.append("Independent conserved quantities (d/dt H = grad H . f = 0):"
                     if d.data is None else "Independent conserved quantities (constant along "
                     "each trajectory of the data; evidence, not a proof, unless verified):")
        width = len(str(len(d.invariants)))
        for k, inv in enumerate(d.invariants, 1):
            lines.append(f"  H{k:<{width}} = {expr_to_str(inv.expr)}")
            lines.append(f"  {' ' * (width + 1)}   {_certificate(inv)}")
    else:
        lines.append("No conserved quantity in this basis.")
    if d.family is not None:
        lines.append("")
        lines.extend(family_lines(d.family))
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
    how = "exact" if d.exact else f"numerical, confidence {(finite_or_none(d.confidence) or 0):.2f}"
    if d.data is not None:
        how = "statistical, from trajectory data: evidence, not a proof"
    names = ", ".join(sympy.latex(sympy.Symbol(v)) for v in d.variables)
    out.append(f"Basis of {d.basis_size} functions in ${names}$, "
               f"{d.points} sample points. Nullity {d.nullity}, independent conserved "
               f"quantities {d.independent} ({_tex_text(how)}).")
    if d.family is not None:
        params = ", ".join(sympy.latex(sympy.Symbol(k)) for k in d.family.parameters)
        out.append(f"Symbolic parameters ${params}$: generic counts; each invariant is "
                   "conserved for every parameter value.")
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
