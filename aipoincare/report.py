"""Reports of a :class:`~aipoincare.result.Discovery` for people: plain text and LaTeX.

* :func:`to_text` -- the human-readable report printed by ``aipoincare discover``: the
  counts and how they were decided, then one line per independent invariant: its
  canonical form (:mod:`aipoincare.canonical`) and a short certificate tag
  (:func:`certificate_tag`); ``verbose=True`` adds each certificate's full text.
* :func:`to_latex` -- the same as a LaTeX fragment (or a standalone document);
  :func:`to_latex_table` -- the invariants as a ``tabular`` to paste into a paper.

The JSON document (serialisation) lives with the result, in :mod:`aipoincare.result`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sympy

from .canonical import canonical_form
from .display import certificate_tag, latex_table, tex_text
from .result import Discovery, Family, Invariant, expr_to_str, finite_or_none

__all__ = ["certificate_tag", "to_latex", "to_latex_table", "to_text"]

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


def invariant_lines(discovery: Discovery, verbose: bool = False) -> list[str]:
    """One line per independent invariant: ``H1 = <canonical form>  [tag]``; under it the
    decimal view when a coefficient is huge, and with ``verbose`` the full certificate."""
    d = discovery
    width = len(str(len(d.invariants)))
    pad = " " * (width + 6)
    lines = []
    for k, inv in enumerate(d.invariants, 1):
        form = canonical_form(inv.expr, d.variables)
        lines.append(f"  H{k:<{width}} = {form.text}  [{certificate_tag(inv)}]")
        decimal = form.decimal()
        if decimal is not None:
            lines.append(f"{pad}~= {decimal}  (decimal view)")
        if verbose:
            lines.append(f"{pad}certificate: {_certificate(inv)}")
    return lines


def _conserved_text(expr: sympy.Expr, variables: list[str]) -> str:
    try:
        return canonical_form(expr, variables).text
    except (sympy.PolynomialError, TypeError, ValueError):  # pragma: no cover - defensive
        return expr_to_str(expr)


def to_text(discovery: Discovery, expected: Mapping[str, int] | None = None,
            max_conserved: int = _SHOW_CONSERVED, verbose: bool = False) -> str:
    """The human-readable report.

    Each independent invariant takes one line: its canonical form (primitive integer
    coefficients, positive leading term, fixed term order: :mod:`aipoincare.canonical`) and
    the tag of its certificate (:func:`certificate_tag`).

    Parameters
    ----------
    discovery : Discovery
    expected : mapping, optional
        Known counts (``system.expected``) to compare with.
    max_conserved : int
        How many elements of the sparse conserved basis to list (0: none).
    verbose : bool
        Add each invariant's full certificate under its line.

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
        lines.extend(invariant_lines(d, verbose))
        if not verbose:
            lines.append("  (tags summarise the certificates; --verbose or the JSON has them "
                         "in full)")
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
            text = _conserved_text(e, d.variables)
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

def to_latex(discovery: Discovery, standalone: bool = False) -> str:
    """The report as LaTeX: the counts, the invariants as a table with their certificate
    tags (:func:`to_latex_table`), and for symbolic parameters the exceptional set.

    Parameters
    ----------
    discovery : Discovery
    standalone : bool
        Wrap it in a compilable ``article`` document (``aipoincare discover --latex``).

    Returns
    -------
    str
    """
    d = discovery
    out = [f"\\section*{{{tex_text(d.name)}}}", ""]
    how = "exact" if d.exact else f"numerical, confidence {(finite_or_none(d.confidence) or 0):.2f}"
    if d.data is not None:
        how = "statistical, from trajectory data: evidence, not a proof"
    names = ", ".join(sympy.latex(sympy.Symbol(v)) for v in d.variables)
    out.append(f"Basis of {d.basis_size} functions in ${names}$, "
               f"{d.points} sample points. Nullity {d.nullity}, independent conserved "
               f"quantities {d.independent} ({tex_text(how)}).")
    if d.family is not None:
        params = ", ".join(sympy.latex(sympy.Symbol(k)) for k in d.family.parameters)
        out.append(f"Symbolic parameters ${params}$: generic counts; each invariant is "
                   "conserved for every parameter value outside the exceptional set.")
    out.append("")
    if d.invariants:
        out.extend(["\\begin{center}", to_latex_table(d).rstrip("\n"), "\\end{center}"])
    else:
        out.append("No conserved quantity in this basis.")
    if d.family is not None:
        sets = [", ".join(f"{sympy.latex(e)} = 0" for e in x.equations) for x in
                d.family.exceptional]
        out.append("")
        out.append("Exceptional set: " + ("; ".join(f"${s}$ ({tex_text(x.reason)})" for s, x in
                                                  zip(sets, d.family.exceptional, strict=True))
                                          or "none") + ".")
    body = "\n".join(out) + "\n"
    if not standalone:
        return body
    return ("\\documentclass{article}\n\\usepackage{amsmath}\n\\begin{document}\n" + body
            + "\\end{document}\n")


def to_latex_table(discovery: Discovery) -> str:
    """The independent invariants as a LaTeX ``tabular``: number, canonical formula and
    certificate tag (:func:`aipoincare.display.latex_table`).

    Examples
    --------
    >>> x = sympy.Symbol("x")
    >>> d = Discovery("decay", ["x"], ["x"], 10, 1, 1, [Invariant(x, True, "symbolic")],
    ...               spectrum=[])
    >>> print(to_latex_table(d).splitlines()[4])
    $H_{1}$ & $x$ & symbolic \\\\
    """
    return latex_table(discovery)
