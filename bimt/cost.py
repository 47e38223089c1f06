"""The connection cost: wiring length plus a constant per connection.

``cost = sum_ij |w_ij| (weight_factor * d_ij + l0)`` over the weights of every layer
(optionally without the last one), plus ``l0 * sum_i |b_i|`` when biases are charged.

References
----------
Liu, Gan & Tegmark, arXiv:2305.08746, eq. (2).
"""

from __future__ import annotations

import torch

from .model import BioMLP

__all__ = ["cost_matrices", "connection_cost"]


def _check(weight_factor: float, l0: float) -> None:
    for name, value in (("weight_factor", weight_factor), ("l0", l0)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ValueError(f"The '{name}' of the connection cost must be a non-negative number; "
                             f"got {value!r}.")


def cost_matrices(model: BioMLP, weight_factor: float = 1.0, l0: float = 0.1,
                  last_layer: bool = True) -> list[torch.Tensor]:
    """Per-layer cost of a unit weight on each connection, ``weight_factor * d + l0``.

    Swaps move weights between fixed positions, so these matrices stay valid for the whole
    training run and the cost is one ``(W.abs() * C).sum()`` per layer.

    Returns
    -------
    list of Tensor, shapes like the layers' weights (zeros for an excluded last layer)
    """
    _check(weight_factor, l0)
    mats = [weight_factor * layer.distance + l0 for layer in model.layers]
    if not last_layer:
        mats[-1] = torch.zeros_like(mats[-1])
    return mats


def connection_cost(model: BioMLP, weight_factor: float = 1.0, l0: float = 0.1,
                    bias: bool = False, last_layer: bool = True) -> torch.Tensor:
    """The connection cost of ``model`` (differentiable).

    Parameters
    ----------
    model : BioMLP
    weight_factor : float
        Weight of the wiring length ``d`` (in-plane distance).
    l0 : float
        Cost of a connection of unit weight independent of its length (paper: 0.1).
    bias : bool
        Also charge ``l0 * |b|`` for every bias (the paper does so late in training).
    last_layer : bool
        Include the last layer's weights (and biases).

    Returns
    -------
    Tensor, shape ()

    Examples
    --------
    >>> model = BioMLP([2, 2], seed=0)
    >>> with torch.no_grad():
    ...     _ = model.layers[0].weight.copy_(torch.tensor([[1.0, 0.0], [0.0, -2.0]]))
    >>> round(connection_cost(model).item(), 6)   # diagonal: distance 0, so 3 * l0
    0.3
    """
    mats = cost_matrices(model, weight_factor, l0, last_layer)
    n = len(model.layers)
    total = model.layers[0].weight.new_zeros(())
    for k, (layer, mat) in enumerate(zip(model.layers, mats, strict=True)):
        total = total + (layer.weight.abs() * mat).sum()
        if bias and layer.bias is not None and (last_layer or k < n - 1):
            total = total + l0 * layer.bias.abs().sum()
    return total
