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

import traincore

from .model import BioMLP
from .modularity import modules as find_modules

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


def neuron_positions(model: BioMLP) -> list[np.ndarray]:
    """Drawing positions of every layer's neurons: one (n, 2) array per layer.

    Layers are one unit apart vertically; a 2D grid is drawn obliquely (depth ``z`` shifts
    right and up), a 1D row spans x in [0, 1].
    """
    out = []
    for layer in range(model.depth + 1):
        lin = model.layers[0] if layer == 0 else model.layers[layer - 1]
        c = (lin.in_coordinates if layer == 0 else lin.out_coordinates).detach().cpu().numpy()
        shape = model.shapes[layer]
        if isinstance(shape, int):
            xy = np.stack([c[:, 0], np.full(len(c), float(layer))], 1)
        else:
            xy = np.stack([0.8 * c[:, 0] + 0.2 * c[:, 1], layer + 0.45 * (c[:, 1] - 0.5)], 1)
        out.append(xy)
    return out


def _render(model: BioMLP, ax: Any, color_modules: bool, threshold: float,
            title: str | None, max_width: float, labels: bool) -> None:
    from matplotlib.collections import LineCollection

    pos = neuron_positions(model)
    with torch.no_grad():
        ws = [lin.weight.detach().float().cpu().numpy() for lin in model.layers]
    biggest = max(float(np.abs(w).max()) for w in ws) or 1.0
    segs, colors, widths = [], [], []
    for k, w in enumerate(ws):
        rows, cols = np.nonzero(np.abs(w) > max(threshold, 1e-3) * biggest)
        if not len(rows):
            continue
        vals = w[rows, cols]
        segs.append(np.stack([pos[k][cols], pos[k + 1][rows]], 1))  # (e, 2 points, 2)
        strength = np.abs(vals) / biggest
        rgba = np.zeros((len(vals), 4))
        rgba[:, 2] = vals > 0   # blue for positive
        rgba[:, 0] = vals <= 0  # red for negative
        rgba[:, 3] = np.clip(0.15 + 0.85 * strength, 0, 1)
        colors.append(rgba)
        widths.append(max_width * strength)
    if segs:
        ax.add_collection(LineCollection(np.concatenate(segs), colors=np.concatenate(colors),
                                         linewidths=np.concatenate(widths), zorder=1))
    # with module colours, neurons outside every module are grey
    base = "#b0b0b0" if color_modules else "black"
    node_colors = [np.full(len(p), base, dtype=object) for p in pos]
    if color_modules:
        import networkx as nx

        from .modularity import to_networkx

        g = to_networkx(model, threshold=max(threshold, 0.05))
        kept = find_modules(model, threshold=max(threshold, 0.05))
        for comp in nx.weakly_connected_components(g):
            ins = {g.nodes[n]["index"] for n in comp if g.nodes[n]["kind"] == "input"}
            for i, mod in enumerate(kept):
                if ins and ins <= mod.inputs:
                    for layer, slot in comp:
                        node_colors[layer][slot] = _MODULE_COLORS[i % len(_MODULE_COLORS)]
    for layer, p in enumerate(pos):
        size = 18 if len(p) <= 40 else 6
        ax.scatter(p[:, 0], p[:, 1], s=size, c=list(node_colors[layer]), zorder=2,
                   linewidths=0)
    if labels:
        ins = model.input_index().tolist()
        if len(pos[0]) <= 24:
            for s, (x, y) in enumerate(pos[0]):
                ax.text(x, y - 0.12, f"$x_{{{ins[s] + 1}}}$", ha="center", va="top", fontsize=9)
        outs = model.out_perm.tolist()
        if len(pos[-1]) <= 24:
            for s, (x, y) in enumerate(pos[-1]):
                ax.text(x, y + 0.12, f"$y_{{{outs[s] + 1}}}$", ha="center", va="bottom",
                        fontsize=9)
    ax.set_xlim(-0.05, 1.05)
    ax.set_ylim(-0.45, model.depth + 0.45)
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=10)


def _figsize(model: BioMLP) -> tuple[float, float]:
    # wide layers get a wider picture so that their neurons stay apart
    widest = max(s if isinstance(s, int) else s[1] for s in model.shapes)
    return (min(12.0, max(4.0, widest / 7)), 1.2 + 1.1 * model.depth)


def draw(model: BioMLP, path: str | os.PathLike[str] | None = None, *, ax: Any = None,
         color_modules: bool = False, threshold: float = 0.0, title: str | None = None,
         max_width: float = 3.0, labels: bool = True, dpi: int = 150) -> Any:
    """Draw ``model`` like the paper's figures; save to ``path`` (.png, .svg or .pdf).

    Parameters
    ----------
    model : BioMLP
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

    Returns
    -------
    matplotlib Figure
    """
    import matplotlib.pyplot as plt

    if not isinstance(model, BioMLP):
        raise TypeError(f"draw() needs a bimt.BioMLP; got {type(model).__name__}.")
    fmt = _format_of(path, _FORMATS) if path is not None else None
    if ax is None:
        fig, ax = plt.subplots(figsize=_figsize(model))
    else:
        fig = ax.figure
    _render(model, ax, color_modules, threshold, title, max_width, labels)
    if path is not None:
        buffer = io.BytesIO()
        fig.savefig(buffer, format=fmt, dpi=dpi, bbox_inches="tight")
        with traincore.atomic_write(path, "wb") as fh:
            fh.write(buffer.getbuffer())
        plt.close(fig)
    return fig


def animate(model: BioMLP, snapshots: Sequence[dict[str, Any]],
            path: str | os.PathLike[str], *, fps: int = 8, max_frames: int = 40,
            dpi: int = 80) -> Path:
    """Write a GIF of the network through training (matplotlib's PillowWriter).

    Parameters
    ----------
    model : BioMLP
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
