"""Discoveries for readers: certificate tags, a LaTeX table, and the notebook display.

* :func:`certificate_tag` -- a few words on how far an invariant is certified
  (``symbolic``, ``identity test p<=1e-33``, ...), read from its certificate only.
* :func:`latex_table` -- the independent invariants as a LaTeX ``tabular``
  (:meth:`Discovery.to_latex_table <aipoincare.result.Discovery.to_latex_table>`).
* :func:`to_html` -- the notebook display (:meth:`Discovery._repr_html_`): the counts, a
  table of the invariants with LaTeX formulas and tags, the exceptional set of a family, and
  the spectrum as a small inline PNG.

The functions read a discovery's attributes only (no import of :mod:`aipoincare.result`),
so that the result objects can use them.
"""

from __future__ import annotations

import base64
import html
import io
import math
import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import sympy

from .canonical import CanonicalForm, canonical_form

__all__ = ["certificate_tag", "latex_table", "to_html"]

#: The identity test's detail ends with "error probability <= P^N per prime" (certify.py).
_IDENTITY_BOUND = re.compile(r"probability <= ([0-9.]+e[-+]?[0-9]+)\^([0-9]+) per prime")
#: The mpmath check's detail starts with "|grad H . f| / sum |terms| <= R at N random points".
_MPMATH_BOUND = re.compile(r"<= ([0-9.]+e[-+]?[0-9]+) at ([0-9]+) random points")
#: Short tags of the certificate methods that need no number from the detail.
_TAGS = {"symbolic": "symbolic", "symbolic-modulo-constraints": "symbolic mod constraints",
         "numerical": "not certified: numerical only", "undecided": "undecided"}
_THUMB_SIZE = (3.4, 1.9)  # inches: the spectrum beside the table, not a full figure
_THUMB_DPI = 80


def _finite(value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _power_of_ten(value: float) -> str:
    """``1e-K`` with the largest K such that ``value <= 1e-K`` (a bound never overstated)."""
    if value <= 0 or not math.isfinite(value):
        return f"{value:.0e}"
    k = math.floor(-math.log10(value) + 1e-12)
    while 10.0 ** -k < value:  # guard the rounding of log10
        k -= 1
    return f"1e{-k}"


def _evidence_tag(evidence: Any) -> str:
    """A few words on trajectory-data evidence: the held-out along/across-trajectory variance
    ratio and the along-trajectory variance in units of the noise (``aipoincare.datamode``);
    for another mapping its first number."""
    if not isinstance(evidence, Mapping):
        return "data evidence"
    ratio, noise = _finite(evidence.get("heldout_ratio")), _finite(evidence.get("heldout_noise"))
    if ratio is not None or noise is not None:
        parts = ([f"held-out ratio {ratio:.1e}"] if ratio is not None else []) + \
            ([f"{noise:.2g}x noise"] if noise is not None else [])
        return "data evidence: " + ", ".join(parts)
    for key, value in evidence.items():
        v = None if isinstance(value, bool) else _finite(value)
        if v is not None:
            return f"data evidence: {str(key).replace('_', ' ')} {v:.1e}"
    return "data evidence"


def certificate_tag(inv: Any) -> str:
    """A short tag saying how far ``inv`` is certified, derived from its certificate only.

    ``symbolic``, ``symbolic mod constraints``, ``identity test p<=1e-33`` (the error
    probability bound the identity test stated in its detail), ``mpmath residual <=1e-45
    at 4 points, not a proof``, ``data evidence ...``; an unverified one says
    ``NOT verified`` with its method. The tag never claims more than the certificate: a
    bound it cannot read from the certificate's ``detail`` is left out.

    Parameters
    ----------
    inv : Invariant

    Returns
    -------
    str

    Examples
    --------
    >>> from aipoincare import Invariant
    >>> certificate_tag(Invariant(sympy.Symbol("x"), True, "symbolic"))
    'symbolic'
    >>> certificate_tag(Invariant(sympy.Symbol("x"), False, "numerical", 3e-9))
    'NOT verified: numerical only, residual 3.0e-09'
    """
    method, detail = str(inv.method), str(inv.detail or "")
    evidence = getattr(inv, "evidence", None)
    data = _evidence_tag(evidence) if evidence or method.startswith("data") else ""
    if method == "identity-test":
        m = _IDENTITY_BOUND.search(detail)
        tag = "identity test"
        if m and inv.verified:
            tag += f" p<={_power_of_ten(float(m.group(1)) ** int(m.group(2)))}"
    elif method == "mpmath-50-digits":
        m = _MPMATH_BOUND.search(detail)
        tag = "mpmath 60 digits"
        if inv.verified:
            if m:
                worst = float(m.group(1))
                size = "0" if worst == 0 else f"<={_power_of_ten(worst)}"
                tag = f"mpmath residual {size} at {m.group(2)} points"
            tag += ", not a proof"
    elif method.startswith("data"):
        tag = ""
    else:
        tag = _TAGS.get(method, method)
    if not inv.verified and method.startswith("data"):  # data only: evidence, said so
        return f"{data}, not a proof"
    if not inv.verified:
        tag = "NOT verified" + (f": {tag.replace('not certified: ', '')}" if tag else "")
        res = _finite(inv.residual)
        if res is not None and res != 0.0:
            tag += f", residual {res:.1e}"
    return "; ".join(t for t in (tag, data) if t)


def forms(discovery: Any) -> list[CanonicalForm]:
    """The canonical forms of the independent invariants, in order."""
    return [canonical_form(inv.expr, discovery.variables) for inv in discovery.invariants]


# ----------------------------------------------------------------------------------------
# LaTeX table
# ----------------------------------------------------------------------------------------

_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                  "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                  "^": r"\textasciicircum{}", "<": r"\textless{}", ">": r"\textgreater{}"}


def tex_text(text: str) -> str:
    """``text`` with LaTeX's special characters escaped (for text mode)."""
    return "".join(_LATEX_SPECIAL.get(c, c) for c in str(text))


def latex_table(discovery: Any) -> str:
    """The independent invariants as a LaTeX ``tabular``: number, canonical formula (with
    the decimal view under a huge integer coefficient) and certificate tag.

    The formula column is a paragraph column, so long invariants break after a ``+``.
    Needs no package beyond LaTeX itself.

    Parameters
    ----------
    discovery : Discovery

    Returns
    -------
    str
        ``\\begin{tabular}...\\end{tabular}`` and a newline.
    """
    rows = []
    for k, (inv, form) in enumerate(zip(discovery.invariants, forms(discovery),
                                        strict=True), 1):
        cell = f"${form.latex}$"
        dec = form.decimal_latex()
        if dec is not None:
            cell += f"\\newline $\\approx {dec}$"
        rows.append(f"$H_{{{k}}}$ & {cell} & {tex_text(certificate_tag(inv))} \\\\")
    if not rows:
        rows.append("\\multicolumn{3}{l}{No conserved quantity in this basis.} \\\\")
    head = ["\\begin{tabular}{@{}r p{0.62\\linewidth} p{0.26\\linewidth}@{}}", "\\hline",
            " & Conserved quantity & Certificate \\\\", "\\hline"]
    return "\n".join(head + rows + ["\\hline", "\\end{tabular}"]) + "\n"


# ----------------------------------------------------------------------------------------
# HTML (notebooks)
# ----------------------------------------------------------------------------------------

def spectrum_png(discovery: Any) -> bytes | None:
    """A small PNG of the normalised singular values with the cut, or None without a
    spectrum (e.g. exact counts that skipped the float spectrum)."""
    values = np.asarray(discovery.spectrum if discovery.spectrum is not None else [],
                        dtype=np.float64).ravel()
    values = values[np.isfinite(values)]
    if values.size < 2:
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=_THUMB_SIZE, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    idx = np.arange(1, values.size + 1)
    ax.semilogy(idx, np.maximum(np.abs(values), 1e-18), ".", ms=3, color="#2c3e50")
    cut = values.size - int(discovery.nullity)
    if 0 < cut < values.size:
        ax.axvline(cut + 0.5, color="#c0392b", lw=1)
        ax.semilogy(idx[cut:], np.maximum(np.abs(values[cut:]), 1e-18), ".", ms=3,
                    color="#c0392b")
    ax.set_xlabel("index", fontsize=7)
    ax.set_ylabel("singular value", fontsize=7)
    ax.set_title(f"spectrum: {int(discovery.nullity)} conserved (red)", fontsize=8)
    ax.tick_params(labelsize=6)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_THUMB_DPI)
    return buf.getvalue()


def _counts_html(d: Any) -> str:
    if d.exact:
        how = "exact"
    else:
        conf = _finite(d.confidence)
        how = "numerical" + (f", confidence {conf:.2f}" if conf is not None else "")
    n_ver = sum(bool(i.verified) for i in d.invariants)
    seconds = _finite(d.seconds)
    took = f", {seconds:.2f} s" if seconds is not None else ""
    return (f"<p><b>{html.escape(str(d.name))}</b><br>basis {len(d.basis_labels)} "
            f"functions in {len(d.variables)} variables, {int(d.points)} sample points{took}"
            f"<br>nullity <b>{int(d.nullity)}</b>, independent <b>{int(d.independent)}</b> "
            f"({how}); {n_ver} of {len(d.invariants)} certified</p>")


def _family_html(family: Any) -> str:
    names = ", ".join(f"${sympy.latex(sympy.Symbol(p))}$" for p in family.parameters)
    items = []
    for x in family.exceptional:
        eqs = ", ".join(f"{sympy.latex(e)} = 0" for e in x.equations)
        items.append(f"<li>${html.escape(eqs)}$: {html.escape(str(x.reason))}</li>")
    out = (f"<p>Symbolic parameters {names}: generic counts; every invariant holds for all "
           "parameter values outside the exceptional set.</p><p>Exceptional set:"
           + (f"</p><ul>{''.join(items)}</ul>" if items else " none</p>"))
    if family.special:
        specials = "".join(f"<li>${html.escape(sympy.latex(s.condition))} = 0$: nullity "
                           f"{int(s.nullity)}</li>" for s in family.special)
        out += f"<p>Special parameter values (more invariants):</p><ul>{specials}</ul>"
    return out


def to_html(discovery: Any, spectrum: bool = True) -> str:
    """The notebook display of a discovery (self-contained HTML, formulas as ``$...$``).

    Parameters
    ----------
    discovery : Discovery
    spectrum : bool
        Include the spectrum as an inline PNG when the discovery has one.

    Returns
    -------
    str
    """
    d = discovery
    parts = ['<div class="aipoincare-discovery">', _counts_html(d)]
    if d.invariants:
        rows = []
        for k, (inv, form) in enumerate(zip(d.invariants, forms(d), strict=True), 1):
            cell = f"${html.escape(form.latex)}$"
            dec = form.decimal_latex()
            if dec is not None:
                cell += f"<br><small>$\\approx {html.escape(dec)}$</small>"
            rows.append(f"<tr><td>$H_{{{k}}}$</td><td style=\"text-align:left\">{cell}</td>"
                        f"<td style=\"text-align:left\">{html.escape(certificate_tag(inv))}"
                        "</td></tr>")
        parts.append("<table><thead><tr><th></th><th style=\"text-align:left\">conserved "
                     "quantity</th><th style=\"text-align:left\">certificate</th></tr></thead>"
                     f"<tbody>{''.join(rows)}</tbody></table>")
    else:
        parts.append("<p>No conserved quantity in this basis.</p>")
    if getattr(d, "family", None) is not None:
        parts.append(_family_html(d.family))
    png = spectrum_png(d) if spectrum else None
    if png is not None:
        data = base64.b64encode(png).decode("ascii")
        parts.append(f'<img alt="normalised singular values" src="data:image/png;base64,'
                     f'{data}">')
    parts.append("</div>")
    return "\n".join(parts)
