"""Neuron coordinates: 1D rows and 2D grids in the unit square.

Every layer of neurons lives in the plane of its own layer: a 1D layer of width ``n`` puts
its neurons at ``x = (k + 1/2) / n`` (evenly spaced in [0, 1]) and ``z = 1/2``; a 2D layer
of shape ``(rows, cols)`` puts them on the grid ``((c + 1/2) / cols, (r + 1/2) / rows)``.
Layers are stacked 0.1 apart in height (``layer_height``); the height only matters for
pictures, since the connection cost uses the in-plane distance (the height difference is the
same for every edge between two layers and acts like the constant ``l0``).

References
----------
Liu, Gan & Tegmark, "Seeing is believing: brain-inspired modular training for mechanistic
interpretability", arXiv:2305.08746.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["LAYER_SPACING", "Shape", "layer_coordinates", "layer_size", "normalize_shape",
           "distance_matrix"]

#: Vertical distance between consecutive layers (the paper's 0.1).
LAYER_SPACING = 0.1

#: A layer's shape: ``n`` (a 1D row of n neurons) or ``(rows, cols)`` (a 2D grid).
Shape = int | tuple[int, int]


def normalize_shape(shape: object, what: str = "width") -> Shape:
    """Check one layer shape and return it as ``int`` or ``(rows, cols)``.

    Examples
    --------
    >>> normalize_shape(4), normalize_shape([8, 8])
    (4, (8, 8))
    """
    if isinstance(shape, bool):
        raise TypeError(f"The {what} must be a positive integer or (rows, cols); got {shape!r}.")
    if isinstance(shape, int):
        if shape < 1:
            raise ValueError(f"The {what} must be a positive integer; got {shape}.")
        return shape
    if isinstance(shape, Sequence) and not isinstance(shape, str) and len(shape) == 2:
        rows, cols = shape
        if all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in (rows, cols)):
            return (int(rows), int(cols))
    raise TypeError(f"The {what} must be a positive integer or a pair (rows, cols) of positive "
                    f"integers; got {shape!r}.")


def layer_size(shape: Shape) -> int:
    """Number of neurons of a layer shape (``rows * cols`` for a grid)."""
    return shape if isinstance(shape, int) else shape[0] * shape[1]


def layer_coordinates(shape: Shape, fold: int = 1) -> torch.Tensor:
    """In-plane coordinates of the neurons of one layer.

    Parameters
    ----------
    shape : int or (rows, cols)
        1D row of ``n`` neurons or 2D grid, in row-major order.
    fold : int
        The layer is ``fold`` copies of ``shape`` at the same positions (token embeddings
        folded onto one another), so the result has ``fold * size`` rows.

    Returns
    -------
    Tensor, shape (fold * size, 2)
        ``(x, z)`` per neuron, inside the unit square.

    Examples
    --------
    >>> layer_coordinates(4)[:, 0].tolist()
    [0.125, 0.375, 0.625, 0.875]
    >>> layer_coordinates((2, 2)).tolist()
    [[0.25, 0.25], [0.75, 0.25], [0.25, 0.75], [0.75, 0.75]]
    """
    if isinstance(shape, int):
        x = (torch.arange(shape, dtype=torch.float64) + 0.5) / shape
        coords = torch.stack([x, torch.full_like(x, 0.5)], dim=1)
    else:
        rows, cols = shape
        r, c = torch.meshgrid(torch.arange(rows, dtype=torch.float64),
                              torch.arange(cols, dtype=torch.float64), indexing="ij")
        coords = torch.stack([(c.flatten() + 0.5) / cols, (r.flatten() + 0.5) / rows], dim=1)
    return coords.repeat(fold, 1).float()


def distance_matrix(out_coordinates: torch.Tensor, in_coordinates: torch.Tensor) -> torch.Tensor:
    """Euclidean in-plane distance of every (output neuron, input neuron) pair.

    Parameters
    ----------
    out_coordinates : Tensor, shape (n_out, 2)
    in_coordinates : Tensor, shape (n_in, 2)

    Returns
    -------
    Tensor, shape (n_out, n_in)
        Laid out like a ``Linear`` weight.
    """
    diff = out_coordinates[:, None, :] - in_coordinates[None, :, :]  # (n_out, n_in, 2)
    return diff.pow(2).sum(-1).sqrt()
