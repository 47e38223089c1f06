"""A Pareto picture of the conserved basis: which conserved quantities read best.

Every element of the conserved subspace is conserved, and many combinations of them are as
well; a reader wants the ones with few terms and small integer coefficients. The picture
puts each candidate -- the sparse basis of the conserved subspace
(:attr:`Discovery.conserved <aipoincare.result.Discovery.conserved>`) and the independent
invariants (:attr:`Discovery.invariants <aipoincare.result.Discovery.invariants>`) -- at

* **terms**: the number of basis functions with a nonzero coefficient, against
* **coefficient size**: the largest |integer coefficient| of its canonical form (primitive
  integers, :mod:`aipoincare.canonical`); for float coefficients, which have no integer
  form, the ratio of the largest to the smallest |coefficient|,

and marks the *Pareto front*: the candidates that no other beats on both counts (fewer or
equal terms and smaller or equal coefficients, one of them strictly). The independent
invariants are highlighted and labelled H1, H2, ... as in the report.

* :func:`pareto_points` -- the data, one :class:`ParetoPoint` per distinct candidate.
* :func:`plot_pareto` -- the figure (matplotlib, no pyplot state unless you use pyplot),
  written atomically to PNG/SVG/PDF when given a path.

Examples
--------
>>> import sympy
>>> from aipoincare import Discovery, Invariant
>>> x, y = sympy.symbols("x y")
>>> d = Discovery("toy", ["x", "y"], ["x", "y", "x*y"], 10, 2, 1,
...               [Invariant(x + y, True, "symbolic")], spectrum=[],
...               conserved=[x + y, 3*x + 3*y + 12*x*y])
>>> [(p.text, p.terms, p.size, p.front) for p in pareto_points(d)]
[('x + y', 2, 1.0, True), ('4*x*y + x + y', 3, 4.0, False)]
"""

from __future__ import annotations

import io
import math
import os
import textwrap
from dataclasses import dataclass
from typing import Any

import numpy as np

from traincore import atomic_write

from .canonical import canonical_form

__all__ = ["ParetoPoint", "pareto_points", "plot_pareto"]

FORMATS = ("png", "svg", "pdf")
_GREY, _FRONT, _INV = "#7f8c8d", "#2c3e50", "#c0392b"


@dataclass(frozen=True)
class ParetoPoint:
    """One candidate conserved quantity in the Pareto picture.

    Attributes
    ----------
    text : str
        Its canonical form (as printed in the report).
    terms : int
        Number of basis functions with a nonzero coefficient.
    size : float
        Coefficient size: the largest |integer coefficient| of the canonical form, or for
        float coefficients ``max |c| / min |c|``.
    exact : bool
        The size is that of primitive integer coefficients.
    invariant : int or None
        ``k`` when it is the independent invariant ``Hk`` of the report (up to a factor).
    conserved : int or None
        Its index in ``Discovery.conserved`` (None for an invariant not in that basis).
    front : bool
        On the Pareto front: no other candidate has fewer-or-equal terms and a
        smaller-or-equal size with one of them strictly smaller.
    """

    text: str
    terms: int
    size: float
    exact: bool
    invariant: int | None
    conserved: int | None
    front: bool

    @property
    def log10_size(self) -> float:
        """``log10(size)`` (0 for size 1)."""
        return math.log10(self.size) if self.size > 0 else 0.0


def pareto_points(result: Any) -> list[ParetoPoint]:
    """The candidates of the Pareto picture of a discovery, with the front marked.

    Parameters
    ----------
    result : Discovery

    Returns
    -------
    list of ParetoPoint
        The sparse conserved basis in its order (equal canonical forms once), then any
        independent invariant not among them; sorted by (terms, size) for reading.
    """
    variables = list(result.variables)
    rows: dict[str, dict[str, Any]] = {}
    for k, expr in enumerate(result.conserved or []):
        form = canonical_form(expr, variables)
        rows.setdefault(form.text, {"form": form, "conserved": k, "invariant": None})
    for k, inv in enumerate(result.invariants, 1):
        form = canonical_form(inv.expr, variables)
        row = rows.setdefault(form.text, {"form": form, "conserved": None, "invariant": None})
        if row["invariant"] is None:
            row["invariant"] = k
    cand = [(text, r["form"].n_terms, r["form"].max_coefficient, r) for text, r in rows.items()]
    points = []
    for text, terms, size, r in cand:
        dominated = any(t2 <= terms and s2 <= size and (t2 < terms or s2 < size)
                        for _, t2, s2, _ in cand)
        points.append(ParetoPoint(text, terms, float(size), bool(r["form"].exact),
                                  r["invariant"], r["conserved"], not dominated))
    points.sort(key=lambda p: (p.terms, p.size, p.text))
    return points


def _draw(ax: Any, points: list[ParetoPoint], title: str) -> None:
    if not points:
        ax.text(0.5, 0.5, "no conserved quantity in this basis", ha="center", va="center",
                transform=ax.transAxes, color=_GREY)
        ax.set_axis_off()
        return
    groups: dict[tuple[int, float], int] = {}
    for p in points:
        groups[(p.terms, p.size)] = groups.get((p.terms, p.size), 0) + 1
    xs = np.array([k[0] for k in groups], dtype=float)
    ys = np.array([k[1] for k in groups], dtype=float)
    counts = np.array(list(groups.values()))
    ax.scatter(xs, ys, s=18 + 14 * np.sqrt(counts), color=_GREY, alpha=0.55, lw=0,
               label="conserved basis element", zorder=2)
    for (t, s), n in groups.items():
        if n > 1:
            ax.annotate(f"x{n}", (t, s), xytext=(4, -8), textcoords="offset points",
                        fontsize=7, color=_GREY)
    front = sorted({(p.terms, p.size) for p in points if p.front})
    fx = [f[0] for f in front]
    fy = [f[1] for f in front]
    ax.step(fx, fy, where="post", color=_FRONT, lw=1.2, label="Pareto front", zorder=3)
    ax.scatter(fx, fy, s=40, facecolor="none", edgecolor=_FRONT, lw=1.2, zorder=4)
    inv = [p for p in points if p.invariant is not None]
    ax.scatter([p.terms for p in inv], [p.size for p in inv], marker="*", s=110,
               color=_INV, zorder=5, label="independent invariant")
    labels: dict[tuple[int, float], list[str]] = {}
    for p in sorted(inv, key=lambda p: p.invariant or 0):
        labels.setdefault((p.terms, p.size), []).append(f"H{p.invariant}")
    for (t, s), names in labels.items():  # one label per place: "H1, H2, H3"
        ax.annotate(", ".join(names), (t, s), xytext=(4, 6), textcoords="offset points",
                    fontsize=8, color=_INV, rotation=30)
    ax.set_yscale("log")
    top = max(p.size for p in points)
    ax.set_ylim(0.6, max(10.0, top * 4))
    ax.set_xlim(0, max(p.terms for p in points) + 1.5)
    exact = all(p.exact for p in points)
    ax.set_xlabel("terms (nonzero coefficients)")
    ax.set_ylabel("max |integer coefficient|" if exact else "coefficient size")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.25, which="both")
    ax.legend(fontsize=7, loc="upper left")


def _figure(result: Any, pyplot: bool) -> Any:
    from matplotlib.figure import Figure

    from .plotting import _new_figure

    size = (6.4, 4.2)
    fig = _new_figure(size) if pyplot else Figure(figsize=size, layout="constrained")
    points = pareto_points(result)
    _draw(fig.add_subplot(), points, _title(result.name, points))
    return fig


def _title(name: str, points: list[ParetoPoint]) -> str:
    return (f"{textwrap.shorten(str(name), width=70, placeholder='...')}\n{len(points)} "
            f"candidate conserved quantities, {sum(p.front for p in points)} on the Pareto "
            "front")


def plot_pareto(result: Any, path: str | os.PathLike[str] | None = None, ax: Any = None,
                dpi: int = 130) -> Any:
    """The Pareto picture of a discovery's conserved basis: terms against coefficient size.

    Parameters
    ----------
    result : Discovery
    path : str or path-like, optional
        Ending in .png, .svg or .pdf: rendered in memory, written atomically (an old file is
        replaced only by a complete new one), and None is returned.
    ax : matplotlib.axes.Axes, optional
        Draw into these axes instead (returns their figure; ``path`` must then be None).
    dpi : int
        Resolution of PNG output.

    Returns
    -------
    matplotlib.figure.Figure or None

    See Also
    --------
    pareto_points : the data of the picture.
    """
    if ax is not None:
        if path is not None:
            raise ValueError("Give either 'ax' (draw into it) or 'path' (write a file) to "
                             "plot_pareto, not both.")
        points = pareto_points(result)
        _draw(ax, points, _title(result.name, points))
        return ax.figure
    if path is None:
        return _figure(result, pyplot=True)
    suffix = os.fspath(path).rsplit(".", 1)[-1].lower() if "." in os.fspath(path) else ""
    if suffix not in FORMATS:
        raise ValueError(f"The Pareto plot path must end in .png, .svg or .pdf; got "
                         f"{os.fspath(path)!r}.")
    buf = io.BytesIO()
    _figure(result, pyplot=False).savefig(buf, format=suffix, dpi=dpi)
    with atomic_write(path, "wb") as fh:
        fh.write(buf.getvalue())
    return None
