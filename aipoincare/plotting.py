"""The paper's figures for a :class:`~aipoincare.result.Discovery` (matplotlib, no pyplot state).

* :func:`plot_spectrum` -- normalised singular values of the matrix ``A`` (log scale) with
  the chosen cut marked and the spectral gap annotated (the paper's Fig. 2/4 top panels).
* :func:`plot_independence` -- singular values of the Jacobian of the conserved quantities:
  how many are functionally independent.
* :func:`plot_coefficients` -- heat map of the sparse coefficient matrix (conserved
  quantities x basis functions), showing only the basis functions that are used, so that
  60 x 2924 stays readable.
* :func:`plot_discovery` -- all three in one figure, written atomically (PNG/SVG/PDF by the
  file extension); :func:`render_discovery` returns the bytes instead.

References
----------
Liu, Sturm, Bharadwaj, Silva & Tegmark, "Discovering new interpretable conservation laws as
sparse invariants", arXiv:2305.19525 (figures of the singular values and sparse coefficients).
"""

from __future__ import annotations

import io
import math
import os
import re
import sys
import textwrap
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from traincore import atomic_write, check_choice, check_type

if TYPE_CHECKING:
    from .result import Discovery

__all__ = ["FORMATS", "plot_coefficients", "plot_discovery", "plot_independence",
           "plot_spectrum", "render_discovery"]

FORMATS = ("png", "svg", "pdf")
_FLOOR = 1e-18          # zeros on a log axis are drawn at this floor
_MAX_LABELLED = 90      # beyond this many used basis functions, label only some columns
_MAX_ROWS_LABELLED = 40
_ZOOM_ABOVE = 150       # spectra longer than this get an inset zoomed on the cut
_NULL = "#c0392b"       # colour of the null (conserved) part
_RANGE = "#2c3e50"


def _as_array(values: Any) -> np.ndarray:
    if values is None:
        return np.zeros(0)
    arr = np.asarray(values, dtype=np.float64).ravel()
    return arr


def _log_values(values: np.ndarray) -> np.ndarray:
    out = np.where(np.isfinite(values), np.abs(values), np.nan)
    return np.maximum(out, _FLOOR)


def _new_figure(figsize: tuple[float, float]) -> Figure:
    """A figure: through pyplot when the caller uses pyplot (so notebooks show it inline),
    else a bare ``Figure`` (no backend, no global state: safe in scripts and servers)."""
    if "matplotlib.pyplot" in sys.modules:
        import matplotlib.pyplot as plt

        return plt.figure(figsize=figsize, layout="constrained")
    return Figure(figsize=figsize, layout="constrained")


def _axes(ax: Axes | None, figsize: tuple[float, float]) -> Axes:
    return _new_figure(figsize).add_subplot() if ax is None else ax


def _cut_plot(ax: Axes, values: np.ndarray, n_null: int, what: str, ylabel: str,
              gap: float | None = None, zoom: bool = True, offset: int = 0) -> None:
    """Singular values (descending) on a log axis; the last ``n_null`` are the null part."""
    n = values.size
    if n == 0:
        ax.text(0.5, 0.5, f"no {what}", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return
    v = _log_values(values)
    idx = np.arange(1, n + 1) + offset
    cut = n - n_null  # values[:cut] are the range, values[cut:] the null part
    marker = "o" if n <= 60 else None
    size = 4 if n <= 60 else 0
    ax.plot(idx[:cut], v[:cut], color=_RANGE, marker=marker, ms=size, lw=1.2,
            label=f"{cut} nonzero")
    if n_null:
        ax.plot(idx[cut:], v[cut:], color=_NULL, marker=marker, ms=size, lw=1.2,
                label=f"{n_null} (near) zero")
    ax.set_yscale("log")
    ax.set_xlim(offset + 0.5, offset + n + 0.5)
    lo = np.nanmin(v) if np.isfinite(v).any() else _FLOOR
    hi = np.nanmax(v) if np.isfinite(v).any() else 1.0
    ax.set_ylim(max(lo / 10, _FLOOR / 10), hi * 10)
    ax.set_xlabel("index (descending)")
    ax.set_ylabel(ylabel)
    zoomed = zoom and n > _ZOOM_ABOVE and 0 < cut < n
    if 0 < cut < n:
        ax.axvline(offset + cut + 0.5, color="0.5", ls="--", lw=1)
        upper, lower = v[cut - 1], v[cut]
        if not zoomed and np.isfinite(upper) and np.isfinite(lower) and upper > lower:
            decades = math.log10(upper / lower) if gap is None else gap
            x = offset + cut + 0.5
            ax.annotate("", xy=(x, lower), xytext=(x, upper),
                        arrowprops={"arrowstyle": "<->", "color": _NULL, "lw": 1.5})
            geo = math.sqrt(upper * lower)
            side = "right" if cut < 0.6 * n else "left"
            dx = 0.02 * n + 0.3
            ax.text(x + dx if side == "right" else x - dx, geo,
                    f"gap {decades:.1f} decades\ncut: {n_null} {what}",
                    ha="left" if side == "right" else "right", va="center", fontsize=8.5,
                    color=_NULL, bbox={"boxstyle": "round,pad=0.25", "fc": "white",
                                       "ec": _NULL, "lw": 0.6, "alpha": 0.9})
    ax.grid(True, which="major", axis="y", alpha=0.3)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(loc="upper right" if zoomed else "lower left", fontsize=8, frameon=False)
    if zoomed:
        # the null part is a sliver at the right of thousands of values: zoom in on it
        lo_i = max(cut - max(2 * n_null, 20), 0)
        inset = ax.inset_axes((0.1, 0.1, 0.45, 0.42))  # below the descending curve
        _cut_plot(inset, values[lo_i:], n_null, what, "", gap, zoom=False, offset=lo_i)
        inset.set_xlabel("")
        inset.tick_params(labelsize=7)
        legend = inset.get_legend()
        if legend is not None:
            legend.remove()
        inset.set_title(f"zoom: indices {lo_i + 1}..{n}", fontsize=8)


def plot_spectrum(discovery: Discovery, ax: Axes | None = None) -> Figure:
    """Normalised singular values of A with the cut at ``nullity`` and the gap annotated.

    Parameters
    ----------
    discovery : Discovery
        Uses ``spectrum`` (shape (basis_size,), descending), ``nullity``, ``gap``.
    ax : matplotlib Axes, optional
        Where to draw; default a new figure.

    Returns
    -------
    matplotlib.figure.Figure
    """
    d = discovery
    ax = _axes(ax, (7, 4))
    values = _as_array(d.spectrum)
    if values.size == 0:  # exact counts and no spectrum asked for (spectrum=False/None)
        ax.text(0.5, 0.5, f"float spectrum not computed: nullity {d.nullity} counted "
                "exactly\n(discover(..., spectrum=True) or --spectrum computes it)",
                ha="center", va="center", transform=ax.transAxes, fontsize=9)
        ax.set_axis_off()
        return ax.figure
    gap = float(d.gap) if d.gap and math.isfinite(float(d.gap)) and d.gap > 0 else None
    _cut_plot(ax, values, min(d.nullity, values.size), "conserved", r"$\sigma_i/\sigma_1$",
              gap)
    how = "exact count" if d.exact else f"numerical, confidence {d.confidence:.2f}"
    if d.data is not None:  # trajectory data: sqrt(along/across variance) per direction
        ax.set_title(f"sqrt(along/across-trajectory variance), {d.points} samples; nullity "
                     f"{d.nullity} (held-out tests; evidence, not a proof)", fontsize=10)
        return ax.figure
    ax.set_title(f"Singular values of A ({d.points} x {d.basis_size}); nullity {d.nullity} "
                 f"({how})", fontsize=10)
    return ax.figure


def plot_independence(discovery: Discovery, ax: Axes | None = None) -> Figure:
    """Singular values of the Jacobian of the conserved quantities (independence test).

    Parameters
    ----------
    discovery : Discovery
        Uses ``independence_spectrum`` (descending) and ``independent``.
    ax : matplotlib Axes, optional
        Where to draw; default a new figure.

    Returns
    -------
    matplotlib.figure.Figure
    """
    d = discovery
    ax = _axes(ax, (6, 4))
    values = _as_array(d.independence_spectrum)
    if values.size == 0:
        ax.text(0.5, 0.5, "no independence spectrum\n(nothing conserved)", ha="center",
                va="center", transform=ax.transAxes, fontsize=9)
        ax.set_axis_off()
        ax.set_title(f"Independent: {d.independent}", fontsize=10)
        return ax.figure
    top = np.nanmax(np.abs(values)) if np.isfinite(values).any() else 0.0
    if top > 0:
        values = values / top  # normalised like the main spectrum
    n_dep = max(values.size - d.independent, 0)
    _cut_plot(ax, values, n_dep, "dependent", r"$\sigma_i/\sigma_1$ of the Jacobian")
    ax.set_title(f"Functional independence: {d.independent} independent "
                 f"{'(exact)' if d.exact else '(numerical)'}", fontsize=10)
    return ax.figure


_FACTOR = re.compile(r"^([A-Za-z][A-Za-z0-9]*)(?:\^(\d+))?$")


def pretty_label(label: str, roman: bool = False) -> str:
    """A basis label as mathtext: ``"x1**2*u2"`` -> ``"$x_{1}^{2}u_{2}$"``.

    Digit runs become subscripts and powers superscripts. Single letters are italic (maths
    variables) unless ``roman`` (used when some variable has a multi-letter name, such as
    chemical species: ``"HO2H"`` -> ``"$\\mathrm{HO}_{2}\\mathrm{H}$"``). Labels that are not
    products of powers of plain names (``"log(x)"``) are returned unchanged.

    Examples
    --------
    >>> pretty_label("x1**2*u2"), pretty_label("log(x)")
    ('$x_{1}^{2}u_{2}$', 'log(x)')
    """
    parts = []
    for factor in label.replace("**", "^").split("*"):
        m = _FACTOR.match(factor.strip())
        if m is None:
            return label
        name, power = m.groups()
        tokens = re.findall(r"[A-Za-z]+|\d+", name)
        text = ""
        for tok in tokens:
            if tok.isdigit():
                text += f"_{{{tok}}}"
            elif len(tok) == 1 and not roman:
                text += tok
            else:
                text += f"\\mathrm{{{tok}}}"
        parts.append(text + (f"^{{{power}}}" if power else ""))
    return "$" + ("\\," if roman else "").join(parts) + "$"  # thin space between species


def _roman(variables: Sequence[str]) -> bool:
    """Whether any variable name has a run of several letters (chemical species style)."""
    return any(len(run) > 1 for v in variables for run in re.findall(r"[A-Za-z]+", v))


def _used_columns(coef: np.ndarray, rtol: float = 1e-10) -> np.ndarray:
    scale = np.nanmax(np.abs(coef)) if coef.size else 0.0
    if not np.isfinite(scale) or scale == 0:
        return np.zeros(0, dtype=int)
    return np.nonzero((np.abs(coef) > rtol * scale).any(axis=0))[0]


def _invariant_rows(discovery: Discovery) -> np.ndarray | None:
    """Coefficient rows (independent, basis_size) of the invariants, from their dicts."""
    index = {label: i for i, label in enumerate(discovery.basis_labels)}
    rows = np.zeros((len(discovery.invariants), len(discovery.basis_labels)))
    for r, inv in enumerate(discovery.invariants):
        if not inv.coefficients:
            return None
        for label, value in inv.coefficients.items():
            if label not in index:
                return None
            try:
                rows[r, index[label]] = float(value)
            except (TypeError, ValueError):
                return None
    return rows


def _row_names(coef: np.ndarray, inv_rows: np.ndarray | None) -> tuple[list[str], list[int]]:
    """Name rows H_k when they are (a multiple of) invariant k, else C_r; invariants first."""
    names = [f"C{r + 1}" for r in range(coef.shape[0])]
    if inv_rows is not None and inv_rows.shape[1] == coef.shape[1]:
        unit = coef / np.maximum(np.linalg.norm(coef, axis=1, keepdims=True), 1e-300)
        for k, row in enumerate(inv_rows):
            v = row / max(np.linalg.norm(row), 1e-300)
            match = np.nonzero(np.abs(np.abs(unit @ v) - 1.0) < 1e-9)[0]
            free = [m for m in match if names[m].startswith("C")]
            if free:
                names[free[0]] = f"H{k + 1}"
    order = sorted(range(len(names)), key=lambda r: (names[r][0] != "H",
                                                     int(names[r][1:])))
    return [names[r] for r in order], order


def _empty(ax: Axes, text: str) -> Figure:
    """A panel that says why there is nothing to draw."""
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()
    return ax.figure


def plot_coefficients(discovery: Discovery, ax: Axes | None = None,
                      max_columns: int = 200) -> Figure:
    """Heat map of the sparse coefficients, rows normalised, only used basis functions shown.

    Rows that are the independent invariants are labelled H1, H2, ... and drawn first; the
    other elements of the conserved basis are C-rows. When the conserved basis uses more
    than ``max_columns`` basis functions (the 3D fluid's uses ~1600 of 2924), only the
    independent invariants are drawn, so that the labels stay readable.

    Parameters
    ----------
    discovery : Discovery
        Uses ``coefficients`` (shape (nullity, basis_size)), ``basis_labels`` and the
        invariants' ``coefficients``.
    ax : matplotlib Axes, optional
        Where to draw; default a new figure.
    max_columns : int
        Most basis functions to draw for the whole conserved basis.

    Returns
    -------
    matplotlib.figure.Figure
    """
    d = discovery
    ax = _axes(ax, (12, 5))
    inv_rows = _invariant_rows(d)
    coef = None if d.coefficients is None else np.asarray(d.coefficients, dtype=np.float64)
    if coef is None or coef.size == 0:
        coef = inv_rows
    if coef is None or coef.size == 0:
        return _empty(ax, "no conserved quantity: no coefficients")
    coef = np.where(np.isfinite(coef), coef, 0.0)
    cols = _used_columns(coef)
    what = f"the {coef.shape[0]} conserved quantities"
    if cols.size > max_columns and inv_rows is not None and inv_rows.size:
        total = cols.size
        coef = inv_rows
        cols = _used_columns(coef)
        what = (f"the {coef.shape[0]} independent invariants (the whole conserved basis of "
                f"{d.nullity} uses {total} basis functions: see --json)")
    if cols.size == 0:
        return _empty(ax, "all coefficients are zero")
    names, order = _row_names(coef, inv_rows)
    sub = coef[order][:, cols]
    row_scale = np.abs(sub).max(axis=1, keepdims=True)
    sub = sub / np.where(row_scale > 0, row_scale, 1.0)   # each row's largest entry is +-1
    sub = np.where(np.abs(sub) > 1e-10, sub, np.nan)       # blanks where a coefficient is 0
    cmap = matplotlib.colormaps["RdBu_r"].with_extremes(bad="white")
    image = ax.imshow(sub, aspect="auto", cmap=cmap, interpolation="nearest",
                      norm=TwoSlopeNorm(vcenter=0.0, vmin=-1.0, vmax=1.0))
    n_rows, n_cols = sub.shape
    roman = _roman(d.variables)
    labels = [pretty_label(d.basis_labels[c], roman) if c < len(d.basis_labels) else str(c)
              for c in cols]
    step = max(1, math.ceil(n_cols / _MAX_LABELLED))
    ticks = np.arange(0, n_cols, step)
    ax.set_xticks(ticks)
    fontsize = 9 if n_cols <= 30 else (7.5 if n_cols <= 60 else 6.5)
    ax.set_xticklabels([labels[t] for t in ticks], rotation=90, fontsize=fontsize)
    rstep = max(1, math.ceil(n_rows / _MAX_ROWS_LABELLED))
    rticks = np.arange(0, n_rows, rstep)
    ax.set_yticks(rticks)
    ax.set_yticklabels([names[r] for r in rticks], fontsize=8 if n_rows <= 20 else 6)
    # grid lines between cells help reading a sparse matrix
    if n_cols <= 200 and n_rows <= 200:
        ax.set_xticks(np.arange(-0.5, n_cols, 1), minor=True)
        ax.set_yticks(np.arange(-0.5, n_rows, 1), minor=True)
        ax.grid(which="minor", color="0.9", lw=0.4)
        ax.tick_params(which="minor", length=0)
    shown = (f"{n_cols} of {d.basis_size} basis functions used" if n_cols < d.basis_size
             else f"all {n_cols} basis functions")
    ax.set_title(f"Sparse coefficients of {what}; {shown}; rows scaled to max |c| = 1, "
                 "blank = 0", fontsize=10)
    ax.set_ylabel("H: independent invariant, C: other conserved", fontsize=8)
    cbar = ax.figure.colorbar(image, ax=ax, fraction=0.025, pad=0.01)
    cbar.ax.tick_params(labelsize=8)
    return ax.figure


def _figure(discovery: Discovery, pyplot: bool = False) -> Figure:
    d = discovery
    coef = None if d.coefficients is None else np.asarray(d.coefficients, dtype=np.float64)
    n_used = 0 if coef is None or coef.size == 0 else _used_columns(
        np.where(np.isfinite(coef), coef, 0.0)).size
    n_rows = 0 if coef is None else coef.shape[0]
    inv_rows = _invariant_rows(d)
    if n_used > 200 and inv_rows is not None and inv_rows.size:  # as plot_coefficients
        n_used, n_rows = _used_columns(inv_rows).size, inv_rows.shape[0]
    width = float(np.clip(6 + 0.2 * min(n_used, _MAX_LABELLED), 10, 24))
    heat_h = float(np.clip(1.2 + 0.22 * min(n_rows, 60), 2.2, 11)) + (
        1.2 if n_used <= _MAX_LABELLED else 1.6)  # room for rotated labels
    size = (width, 3.6 + heat_h)
    fig = _new_figure(size) if pyplot else Figure(figsize=size, layout="constrained")
    grid = fig.add_gridspec(2, 2, height_ratios=[3.6, heat_h])
    plot_spectrum(d, fig.add_subplot(grid[0, 0]))
    plot_independence(d, fig.add_subplot(grid[0, 1]))
    plot_coefficients(d, fig.add_subplot(grid[1, :]))
    how = "exact" if d.exact else "numerical"
    verified = sum(bool(i.verified) for i in d.invariants)
    name = textwrap.shorten(d.name, width=int(width * 9), placeholder="...")
    fig.suptitle(f"{name}\n{d.nullity} conserved in the basis of {d.basis_size}, "
                 f"{d.independent} independent ({how}), {verified} certified", fontsize=12)
    return fig


def render_discovery(discovery: Discovery, fmt: str = "png", dpi: int = 130) -> bytes:
    """The multi-panel figure as bytes in ``fmt`` ("png", "svg" or "pdf")."""
    check_type(fmt, "fmt", str, "a format name such as 'png'")
    check_choice(fmt.lower().lstrip("."), "fmt", FORMATS, where="(figure format)")
    fmt = fmt.lower().lstrip(".")
    fig = _figure(discovery)
    buf = io.BytesIO()
    meta = {"Software": "aipoincare"} if fmt == "png" else None
    fig.savefig(buf, format=fmt, dpi=dpi, metadata=meta)
    return buf.getvalue()


def plot_discovery(discovery: Discovery, path: str | os.PathLike[str] | None = None,
                   dpi: int = 130) -> Figure | None:
    """The paper's figures in one: singular values, independence spectrum, coefficient map.

    Parameters
    ----------
    discovery : Discovery
    path : str or path-like, optional
        Ending in .png, .svg or .pdf: the figure is rendered in memory, then written
        atomically (a failure leaves any old file untouched) and None is returned. Without a
        path the figure is returned (shown inline in notebooks that use pyplot).
    dpi : int
        Resolution of PNG output.

    Returns
    -------
    matplotlib.figure.Figure or None
    """
    if path is None:
        return _figure(discovery, pyplot=True)
    suffix = os.fspath(path).rsplit(".", 1)[-1].lower() if "." in os.fspath(path) else ""
    if suffix not in FORMATS:
        raise ValueError(f"The plot path must end in .png, .svg or .pdf; got "
                         f"{os.fspath(path)!r}.")
    data = render_discovery(discovery, suffix, dpi=dpi)
    with atomic_write(path, "wb") as fh:
        fh.write(data)
    return None
