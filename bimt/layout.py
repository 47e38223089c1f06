"""Drawing positions of a spatial network's neurons (shared by pictures and graphs).

Rows are one unit apart vertically, inputs at the bottom; a 1D row spans x in [0, 1] at its
neurons' in-plane x; a 2D grid is drawn in an oblique projection (depth ``z`` shifts right
and up). Fold copies share their neuron's position.
"""

from __future__ import annotations

import numpy as np

from .spatial import Spatial

__all__ = ["draw_positions", "loop_points"]


def draw_positions(spec: Spatial) -> list[np.ndarray]:
    """Drawing ``(x, y)`` of every neuron, one (fold * n, 2) array per row of ``spec``.

    Examples
    --------
    >>> from bimt.model import BioMLP
    >>> from bimt.spatial import describe
    >>> [p.shape for p in draw_positions(describe(BioMLP([4, 3, 2])))]
    [(4, 2), (3, 2), (2, 2)]
    """
    out = []
    for row in range(len(spec.rows)):
        c = spec.row_coordinates(row).detach().cpu().numpy()
        if isinstance(spec.row_group(row).shape, int):
            xy = np.stack([c[:, 0], np.full(len(c), float(row))], 1)
        else:
            xy = np.stack([0.8 * c[:, 0] + 0.2 * c[:, 1], row + 0.45 * (c[:, 1] - 0.5)], 1)
        out.append(xy)
    return out


def loop_points(x: float, y: float, rx: float = 0.03, ry: float = 0.1,
                n: int = 13) -> np.ndarray:
    """A small closed loop above the neuron at ``(x, y)``: how a connection of a neuron to
    itself (the diagonal of a recurrent matrix) is drawn; shape (n, 2), first point = last.
    ``ry > rx`` because rows are one unit apart and a row is one unit wide: drawn, a unit
    up is shorter than a unit across.

    Examples
    --------
    >>> p = loop_points(0.5, 1.0)
    >>> p.shape, bool(np.allclose(p[0], p[-1])), bool(np.allclose(p[0], [0.5, 1.0]))
    ((13, 2), True, True)
    """
    t = np.linspace(0.0, 2 * np.pi, n)
    return np.stack([x + rx * np.sin(t), y + ry * (1 - np.cos(t))], 1)
