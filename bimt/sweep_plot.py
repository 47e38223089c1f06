"""The phase diagram of a sweep: modularity and test loss against lambda, spread over seeds."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .plotting import _format_of, _save

__all__ = ["plot_sweep", "phase_table"]

_FORMATS = ("png", "pdf", "svg")


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) \
        else math.nan


def phase_table(rows: Sequence[Mapping[str, Any]], metric: str) -> dict[float, list[float]]:
    """``{lam: [metric of each seed, ...]}`` over the rows, finite values only, lam sorted.

    Examples
    --------
    >>> phase_table([{"lam": 0.1, "q": 0.5}, {"lam": 0.1, "q": None}, {"lam": 0.01, "q": 1}],
    ...             "q")
    {0.01: [1.0], 0.1: [0.5]}
    """
    out: dict[float, list[float]] = {}
    for row in rows:
        lam, value = _number(row.get("lam")), _number(row.get(metric))
        if math.isfinite(lam):
            out.setdefault(lam, [])
            if math.isfinite(value):
                out[lam].append(value)
    return dict(sorted(out.items()))


def _panel(ax: Any, table: dict[float, list[float]], label: str, log_y: bool,
           color: str) -> None:
    lams = list(table)
    rng = np.random.default_rng(0)  # a fixed jitter: the same rows draw the same picture
    for lam, values in table.items():
        if values:
            spread = np.exp(rng.uniform(-0.08, 0.08, len(values))) if lam > 0 else \
                rng.uniform(-0.02, 0.02, len(values)) * (min(v for v in lams if v > 0)
                                                          if any(v > 0 for v in lams) else 1)
            xs = lam * spread if lam > 0 else spread
            ax.scatter(xs, values, s=10, alpha=0.45, color=color, linewidths=0)
    med = [(lam, float(np.median(v))) for lam, v in table.items() if v]
    if med:
        q25 = [float(np.percentile(table[lam], 25)) for lam, _ in med]
        q75 = [float(np.percentile(table[lam], 75)) for lam, _ in med]
        xs, ys = zip(*med, strict=True)
        ax.plot(xs, ys, "-o", color="black", ms=4, lw=1.5, label="median over seeds")
        ax.fill_between(xs, q25, q75, color=color, alpha=0.2, label="25-75%")
    positive = [lam for lam in lams if lam > 0]
    if positive and len(positive) == len(lams):
        ax.set_xscale("log")
    elif positive:
        ax.set_xscale("symlog", linthresh=min(positive))
    if log_y and any(v > 0 for vals in table.values() for v in vals):
        ax.set_yscale("log")
    ax.set_xlabel(r"$\lambda$ (base penalty strength)")
    ax.set_ylabel(label)
    ax.grid(alpha=0.3)


def plot_sweep(rows: Sequence[Mapping[str, Any]], path: str | os.PathLike[str] | None = None,
               *, title: str | None = None, dpi: int = 120) -> Any:
    """The phase diagram: modularity Q and test loss against lambda, one dot per seed.

    Parameters
    ----------
    rows : sequence of dict
        Rows of :func:`bimt.sweep` (or ``results.jsonl``): ``lam``, ``modularity`` and
        ``test_loss`` are read; rows of a diverged run (``None``) are left out.
    path : path, optional
        Where to save (``.png``, ``.pdf`` or ``.svg``), written atomically.
    title : str, optional
        Default: the task and the number of networks.

    Returns
    -------
    matplotlib Figure

    Raises
    ------
    ValueError
        No rows, or rows without ``lam``.
    """
    import matplotlib.pyplot as plt

    fmt = _format_of(path, _FORMATS) if path is not None else None
    rows = list(rows)
    if not rows or not phase_table(rows, "lam"):
        raise ValueError("plot_sweep needs rows of a sweep (dicts with 'lam', 'modularity', "
                         "'test_loss'); got none. Run bimt.sweep(...) or load results.jsonl.")
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.6))
    _panel(axes[0], phase_table(rows, "modularity"), "modularity Q", False, "tab:blue")
    _panel(axes[1], phase_table(rows, "test_loss"), "test loss", True, "tab:red")
    axes[0].legend(fontsize=8, loc="best")
    tasks = sorted({str(r.get("task")) for r in rows if r.get("task") is not None})
    fig.suptitle(title if title is not None else
                 f"{', '.join(tasks) or 'sweep'}: {len(rows)} networks", fontsize=11)
    fig.tight_layout()
    if path is not None:
        _save(fig, path, fmt, dpi)
    return fig

