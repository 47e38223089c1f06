"""Pictures in the paper's style: neurons as dots, connections blue (+) / red (-).

Every connection is drawn by one ``LineCollection`` (not one plot call per edge), widths
proportional to ``|w|``; inputs and outputs are labelled with their original indices, so
the labels follow the swaps. 2D grid layers are drawn in an oblique projection.

References
----------
Liu, Gan & Tegmark, arXiv:2305.08746, figures 2-6.
"""

from __future__ import annotations

import copy
import io
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

import traincore

from .layout import draw_positions, loop_points
from .modularity import Analysis, analyse
from .spatial import Spatial, describe

__all__ = ["draw", "animate", "neuron_positions"]

_FORMATS = ("png", "svg", "pdf")
_MODULE_COLORS = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02",
                  "#a6761d", "#1f78b4", "#b2df8a", "#fb9a99"]


def _format_of(path: str | os.PathLike[str], allowed: Sequence[str]) -> str:
    ext = Path(path).suffix.lower().lstrip(".")
    if ext not in allowed:
        got = f".{ext}" if ext else "no extension"
        raise ValueError(f"The picture path {str(path)!r} must end in one of "
                         f"{', '.join('.' + a for a in allowed)}; got {got}.")
    return ext


def _save(fig: Any, path: str | os.PathLike[str], fmt: str | None, dpi: int) -> None:
    """Write ``fig`` to ``path`` atomically (rendered in memory first) and close it.

    ``fmt`` is what :func:`_format_of` returned for ``path``, checked before any drawing.
    """
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, dpi=dpi, bbox_inches="tight")
    with traincore.atomic_write(path, "wb") as fh:
        fh.write(buffer.getbuffer())
    plt.close(fig)


def neuron_positions(model: nn.Module) -> list[np.ndarray]:
    """Drawing positions of every row's neurons: one (n, 2) array per row, inputs first.

    Rows are one unit apart vertically; a 2D grid is drawn obliquely (depth ``z`` shifts
    right and up), a 1D row spans x in [0, 1].
    """
    return draw_positions(describe(model))


def _edges(model: nn.Module, spec: Spatial, pos: list[np.ndarray], threshold: float,
           max_width: float) -> Any:
    from matplotlib.collections import LineCollection

    with torch.no_grad():
        ws = [model.get_parameter(w.weight).detach().float().cpu().numpy() for w in spec.wires]
    biggest = max((float(np.abs(w).max()) for w in ws), default=0.0) or 1.0
    segs, colors, widths = [], [], []
    for wire, w in zip(spec.wires, ws, strict=True):
        rows, cols = np.nonzero(np.abs(w) > max(threshold, 1e-3) * biggest)
        if not len(rows):
            continue
        vals = w[rows, cols]
        lines = np.stack([pos[wire.src][cols], pos[wire.dst][rows]], 1)  # (e, 2, 2)
        loops = (rows == cols) & (wire.src == wire.dst)  # a neuron's weight to itself
        segs.extend(loop_points(*pos[wire.dst][r]) if loop else line
                    for r, loop, line in zip(rows, loops, lines, strict=True))
        strength = np.abs(vals) / biggest
        rgba = np.zeros((len(vals), 4))
        rgba[:, 2] = vals > 0   # blue for positive
        rgba[:, 0] = vals <= 0  # red for negative
        rgba[:, 3] = np.clip(0.15 + 0.85 * strength, 0, 1)
        colors.append(rgba)
        widths.append(max_width * strength)
    for link in spec.links:  # residual skips: thin grey, behind the weights
        n = len(pos[link.dst])
        off = link.src_fold * spec.row_group(link.src).n
        segs.extend(np.stack([pos[link.src][off:off + n], pos[link.dst]], 1))
        colors.append(np.tile([0.6, 0.6, 0.6, 0.3], (n, 1)))
        widths.append(np.full(n, 0.5))
    if not segs:
        return None
    return LineCollection(segs, colors=np.concatenate(colors),
                          linewidths=np.concatenate(widths), zorder=1)


def _labels(model: nn.Module, spec: Spatial, pos: list[np.ndarray], ax: Any) -> None:
    """``x_i`` under input rows and ``y_j`` over output rows (original order, <= 24)."""
    for row, p in enumerate(pos):
        g = spec.row_group(row)
        if g.perm is None or len(p) > 24 or g.kind not in ("input", "output"):
            continue
        perm = model.get_buffer(g.perm).tolist()
        for s, (x, y) in enumerate(p):
            index = (s // g.n) * g.n + perm[s % g.n]
            if g.kind == "input":
                ax.text(x, y - 0.12, f"$x_{{{index + 1}}}$", ha="center", va="top", fontsize=9)
            else:
                ax.text(x, y + 0.12, f"$y_{{{index + 1}}}$", ha="center", va="bottom",
                        fontsize=9)


def _render(model: nn.Module, ax: Any, color_modules: bool, threshold: float,
            title: str | None, max_width: float, labels: bool,
            analysis: Analysis | None = None) -> None:
    spec = describe(model)
    pos = draw_positions(spec)
    lines = _edges(model, spec, pos, threshold, max_width)
    if lines is not None:
        ax.add_collection(lines)
    # with module colours, neurons outside every module are grey
    base = "#b0b0b0" if color_modules else "black"
    node_colors = [np.full(len(p), base, dtype=object) for p in pos]
    if color_modules:
        if analysis is None or analysis.threshold < threshold:  # else: the caller's modules
            analysis = analyse(model, threshold=max(threshold, 0.05))
        for (row, slot), i in analysis.module_of.items():
            node_colors[row][slot] = _MODULE_COLORS[i % len(_MODULE_COLORS)]
    for row, p in enumerate(pos):
        size = 18 if len(p) <= 40 else 6
        ax.scatter(p[:, 0], p[:, 1], s=size, c=list(node_colors[row]), zorder=2,
                   linewidths=0)
    if labels:
        _labels(model, spec, pos, ax)
    named = [r.label for r in spec.rows]
    if labels and any(named):  # row names (embedding, attention, ...) left of the rows
        for row, name in enumerate(named):
            if name:
                ax.text(-0.07, row, name, ha="right", va="center", fontsize=8, color="#555555")
    ax.set_xlim(-0.4 if labels and any(named) else -0.05, 1.05)
    ax.set_ylim(-0.45, len(pos) - 1 + 0.45)
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=10)


def _figsize(model: nn.Module) -> tuple[float, float]:
    # wide rows get a wider picture so that their neurons stay apart
    spec = describe(model)
    shapes = [spec.row_group(r).shape for r in range(len(spec.rows))]
    widest = max(s if isinstance(s, int) else s[1] for s in shapes)
    return (min(12.0, max(4.0, widest / 7)), 1.2 + 1.1 * (len(shapes) - 1))


def draw(model: nn.Module, path: str | os.PathLike[str] | None = None, *, ax: Any = None,
         color_modules: bool = False, threshold: float = 0.0, title: str | None = None,
         max_width: float = 3.0, labels: bool = True, dpi: int = 150,
         analysis: Analysis | None = None) -> Any:
    """Draw ``model`` like the paper's figures; save to ``path`` (.png, .svg or .pdf).

    Parameters
    ----------
    model : spatial network
    path : path, optional
        Written atomically; the format follows the extension.
    ax : matplotlib Axes, optional
        Draw into this axes instead of a new figure.
    color_modules : bool
        Colour neurons by the module (:func:`bimt.modules`) they belong to.
    threshold : float
        Hide edges weaker than this fraction of the largest |w| (always hides < 0.1 %).
    title : str, optional
    max_width : float
        Line width of the strongest connection.
    labels : bool
        Label inputs ``x_i`` and outputs ``y_j`` (original indices; layers of at most 24).
    analysis : Analysis, optional
        :func:`bimt.analyse`'s result, whose modules colour the neurons without building
        the graph again (omitted, or pruned below ``threshold``: modules at
        ``max(threshold, 0.05)``).

    Returns
    -------
    matplotlib Figure
    """
    import matplotlib.pyplot as plt

    describe(model)  # a clear error for a network without positions, before any figure
    fmt = _format_of(path, _FORMATS) if path is not None else None
    if ax is None:
        fig, ax = plt.subplots(figsize=_figsize(model))
    else:
        fig = ax.figure
    _render(model, ax, color_modules, threshold, title, max_width, labels, analysis)
    if path is not None:
        _save(fig, path, fmt, dpi)
    return fig


def animate(model: nn.Module, snapshots: Sequence[dict[str, Any]],
            path: str | os.PathLike[str], *, fps: int = 8, max_frames: int = 40,
            dpi: int = 80) -> Path:
    """Write a GIF of the network through training (matplotlib's PillowWriter).

    Parameters
    ----------
    model : spatial network
        Gives the structure; it is not modified.
    snapshots : sequence of ``{"step", "state"}``
        From ``history.snapshots``; at most ``max_frames`` evenly chosen ones are drawn
        (always including the last).
    path : path ending in .gif
        Written atomically.

    Returns
    -------
    Path
    """
    import matplotlib.pyplot as plt
    from matplotlib.animation import PillowWriter

    _format_of(path, ("gif",))
    if not snapshots:
        raise ValueError("animate() needs at least one snapshot; train with snapshot_every > 0.")
    idx = np.unique(np.linspace(0, len(snapshots) - 1, min(max_frames, len(snapshots)))
                    .round().astype(int))
    frame_model = copy.deepcopy(model).cpu()
    fig, ax = plt.subplots(figsize=_figsize(model))
    fig.subplots_adjust(left=0.02, right=0.98, bottom=0.02, top=0.92)  # no wasted margins
    writer = PillowWriter(fps=fps)
    with tempfile.TemporaryDirectory() as tmp:
        tmp_gif = Path(tmp) / "frames.gif"
        with writer.saving(fig, str(tmp_gif), dpi):
            for i in idx:
                snap = snapshots[int(i)]
                frame_model.load_state_dict(snap["state"], strict=False)
                ax.clear()
                _render(frame_model, ax, False, 0.0, f"step {snap['step']}", 3.0, True)
                writer.grab_frame()
        data = tmp_gif.read_bytes()
    plt.close(fig)
    with traincore.atomic_write(path, "wb") as fh:
        fh.write(data)
    return Path(path)
