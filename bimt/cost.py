"""The connection cost: wiring length plus a constant per connection, for any spatial network.

``cost = sum_ij |w_ij| (weight_factor * d_ij + l0)`` over every wire of the network's
:class:`bimt.spatial.Spatial` description (optionally without the wires into the output
group: the "last layer"), plus ``l0 * sum_i |b_i|`` when biases are charged. ``d_ij`` is
the in-plane distance between the two neurons a weight joins; fold copies share their
neuron's position.

References
----------
Liu, Gan & Tegmark, arXiv:2305.08746, eq. (2).
"""

from __future__ import annotations

import weakref
from typing import Any

import torch
from torch import nn

from .geometry import distance_matrix
from .spatial import Spatial, describe

__all__ = ["cost_matrices", "bias_costs", "connection_cost"]

#: model -> (settings, description, cost matrices, ids of the wire weights), for
#: connection_cost; entries go with their model.
_CACHE: weakref.WeakKeyDictionary[nn.Module, tuple[Any, ...]] = weakref.WeakKeyDictionary()


def _check(weight_factor: float, l0: float) -> None:
    for name, value in (("weight_factor", weight_factor), ("l0", l0)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ValueError(f"The '{name}' of the connection cost must be a non-negative number; "
                             f"got {value!r}.")


def _charged(spec: Spatial, wire_index: int, last_layer: bool) -> bool:
    return last_layer or spec.row_group(spec.wires[wire_index].dst).kind != "output"


def cost_matrices(model: nn.Module, weight_factor: float = 1.0, l0: float = 0.1,
                  last_layer: bool = True, spec: Spatial | None = None
                  ) -> dict[str, torch.Tensor]:
    """Cost of a unit weight on each connection, ``weight_factor * d + l0``, per wire.

    Swaps move weights between fixed positions, so these matrices stay valid for the whole
    training run and the cost is one ``(W.abs() * C).sum()`` per wire.

    Parameters
    ----------
    model : spatial network (anything :func:`bimt.spatial.describe` accepts)
    weight_factor, l0 : float
        See :func:`connection_cost`.
    last_layer : bool
        False: zeros for the wires into the output group.
    spec : Spatial, optional
        The model's description, when the caller already has it.

    Returns
    -------
    dict of weight name -> Tensor shaped like that weight
    """
    _check(weight_factor, l0)
    spec = describe(model) if spec is None else spec
    params = dict(model.named_parameters())
    mats = {}
    for k, w in enumerate(spec.wires):
        weight = params[w.weight]
        d = distance_matrix(spec.row_coordinates(w.dst), spec.row_coordinates(w.src))
        mat = (weight_factor * d + l0).to(weight.device, weight.dtype)
        mats[w.weight] = mat if _charged(spec, k, last_layer) else torch.zeros_like(mat)
    return mats


def bias_costs(model: nn.Module, l0: float = 0.1, last_layer: bool = True,
               spec: Spatial | None = None) -> dict[str, torch.Tensor]:
    """Cost ``l0`` per unit of every charged bias, keyed by bias name (shaped like it)."""
    spec = describe(model) if spec is None else spec
    params = dict(model.named_parameters())
    return {w.bias: torch.full_like(params[w.bias], l0) for k, w in enumerate(spec.wires)
            if w.bias is not None and _charged(spec, k, last_layer)}


def connection_cost(model: nn.Module, weight_factor: float = 1.0, l0: float = 0.1,
                    bias: bool = False, last_layer: bool = True) -> torch.Tensor:
    """The connection cost of a spatial network (differentiable).

    Parameters
    ----------
    model : spatial network
        :class:`bimt.BioMLP` or any module with a ``spatial()`` description.
    weight_factor : float
        Weight of the wiring length ``d`` (in-plane distance).
    l0 : float
        Cost of a connection of unit weight independent of its length (paper: 0.1).
    bias : bool
        Also charge ``l0 * |b|`` for every bias (the paper does so late in training).
    last_layer : bool
        Include the wires into the output group (weights and biases).

    Returns
    -------
    Tensor, shape ()
        Add ``lam * connection_cost(model)`` to the loss of your own training loop.

    Examples
    --------
    >>> from bimt.model import BioMLP
    >>> model = BioMLP([2, 2], seed=0)
    >>> with torch.no_grad():
    ...     _ = model.layers[0].weight.copy_(torch.tensor([[1.0, 0.0], [0.0, -2.0]]))
    >>> round(connection_cost(model).item(), 6)   # diagonal: distance 0, so 3 * l0
    0.3
    """
    _check(weight_factor, l0)
    spec, mats, weights = _wiring(model, (weight_factor, l0, last_layer))
    total = weights[0].new_zeros(()) if weights else torch.zeros(())
    for k, w in enumerate(spec.wires):
        total = total + (weights[k].abs() * mats[w.weight]).sum()
        if bias and w.bias is not None and _charged(spec, k, last_layer):
            total = total + l0 * model.get_parameter(w.bias).abs().sum()
    return total


def _wiring(model: nn.Module, settings: tuple[float, float, bool]
            ) -> tuple[Spatial, dict[str, torch.Tensor], list[torch.Tensor]]:
    """Description, cost matrices and wire weights of ``model``, cached between calls.

    ``connection_cost`` runs every step of a training loop; positions never move, so the
    description and matrices are reused as long as the settings and the wire weights (the
    same Parameter objects, dtype and device) are.
    """
    entry = _CACHE.get(model)
    if entry is not None and entry[0] == settings:
        spec, mats = entry[1], entry[2]
        try:
            weights = [model.get_parameter(w.weight) for w in spec.wires]
        except AttributeError:  # a layer was replaced
            weights = []
        if len(weights) == len(spec.wires) and all(
                id(p) == i and p.dtype == mats[w.weight].dtype and p.device == mats[w.weight].device
                for p, i, w in zip(weights, entry[3], spec.wires, strict=True)):
            return spec, mats, weights
    spec = describe(model)
    mats = cost_matrices(model, *settings, spec=spec)
    weights = [model.get_parameter(w.weight) for w in spec.wires]
    _CACHE[model] = (settings, spec, mats, [id(p) for p in weights])
    return spec, mats, weights
