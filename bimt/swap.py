"""Swap moves: exchange two neurons of a layer without changing the network function.

A neuron of layer ``l`` (0 = input, ``depth`` = output) is row ``k`` of the incoming weight
and bias and column ``k`` of the outgoing weight. Exchanging two such neurons (and the
optimizer moments of those weights, and the input/output permutation at the ends) leaves
``model(x)`` unchanged but moves the weights between fixed positions, which changes the
connection cost. Only that layer's incoming and outgoing weights are involved, so the cost of
putting neuron ``a`` at slot ``p`` is a matrix ``M[a, p]`` of one matmul per side, and the
cost change of swapping ``i`` with every ``j`` is ``M[i, j] + M[j, i] - M[i, i] - M[j, j]``.

References
----------
Liu, Gan & Tegmark, arXiv:2305.08746, section 2 ("swap").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from .model import BioMLP

__all__ = ["Moments", "SwapReport", "placement_cost", "swap_deltas", "swap_neurons",
           "relocate", "torch_optimizer_moments", "connectivity"]

#: Tensors shaped like the model's parameters, keyed by parameter name (e.g. Adam moments),
#: that must move with the weights on every swap.
Moments = Mapping[str, torch.Tensor]


def _check_layer(model: BioMLP, layer: int) -> None:
    if isinstance(layer, bool) or not isinstance(layer, int) or not 0 <= layer <= model.depth:
        raise ValueError(f"The neuron 'layer' must be an integer from 0 (input) to {model.depth} "
                         f"(output); got {layer!r}.")


def n_slots(model: BioMLP, layer: int) -> int:
    """Number of swappable positions of neuron layer ``layer`` (input: per fold)."""
    return len(model.in_perm) if layer == 0 else model.widths[layer]


def placement_cost(model: BioMLP, layer: int, mats: Sequence[torch.Tensor]) -> torch.Tensor:
    """``M[a, p]``: connection cost of neuron ``a``'s weights if it sat at slot ``p``.

    Parameters
    ----------
    model : BioMLP
    layer : int
        Neuron layer, 0 (input) to ``model.depth`` (output).
    mats : list of Tensor
        Per-layer cost matrices from :func:`bimt.cost.cost_matrices`.

    Returns
    -------
    Tensor, shape (n, n) with ``n`` the layer's number of slots
    """
    n = n_slots(model, layer)
    with torch.no_grad():
        m = mats[0].new_zeros(n, n)
        if layer >= 1:  # incoming: rows of W_{l-1}, (n_l, n_{l-1})
            a = model.layers[layer - 1].weight.abs()
            m += a @ mats[layer - 1].T
        if layer < model.depth:  # outgoing: columns of W_l, all folds stacked as extra rows
            b = model.layers[layer].weight.abs().reshape(-1, n)  # (n_{l+1} * fold, n)
            m += b.T @ mats[layer].reshape(-1, n)
    return m


def swap_deltas(m: torch.Tensor, i: int) -> torch.Tensor:
    """Cost change of swapping neuron ``i`` with every neuron ``j`` (shape (n,), 0 at ``i``)."""
    diag = m.diagonal()
    return m[i] + m[:, i] - m[i, i] - diag


def _targets(model: BioMLP, layer: int) -> list[tuple[str, int, int]]:
    """(parameter name, dim, fold) of every tensor a swap in ``layer`` permutes."""
    out = []
    if layer >= 1:
        out.append((f"layers.{layer - 1}.weight", 0, 1))
        if model.layers[layer - 1].bias is not None:
            out.append((f"layers.{layer - 1}.bias", 0, 1))
    if layer < model.depth:
        out.append((f"layers.{layer}.weight", 1, model.in_fold if layer == 0 else 1))
    return out


def _exchange(t: torch.Tensor, dim: int, a: torch.Tensor, b: torch.Tensor) -> None:
    ta, tb = t.index_select(dim, a), t.index_select(dim, b)
    t.index_copy_(dim, a, tb)
    t.index_copy_(dim, b, ta)


def swap_neurons(model: BioMLP, layer: int, i: int, j: int,
                 moments: Sequence[Moments] = ()) -> None:
    """Exchange neurons ``i`` and ``j`` of neuron layer ``layer`` in place.

    Parameters
    ----------
    model : BioMLP
    layer : int
        0 (input) to ``model.depth`` (output).
    i, j : int
        Slots in that layer (input: within one fold; every fold moves together).
    moments : sequence of mapping name -> Tensor
        Optimizer state shaped like the parameters (Adam's first and second moments), which
        is permuted identically so that training continues as if nothing moved.

    Examples
    --------
    >>> model = BioMLP([3, 4, 2], seed=0)
    >>> x = torch.randn(5, 3)
    >>> before = model(x)
    >>> swap_neurons(model, 1, 0, 3); swap_neurons(model, 0, 0, 2)
    >>> bool(torch.allclose(before, model(x), atol=1e-6)), model.in_perm.tolist()
    (True, [2, 1, 0])
    """
    _check_layer(model, layer)
    n = n_slots(model, layer)
    for name, v in (("i", i), ("j", j)):
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < n:
            raise ValueError(f"The neuron index '{name}' must be an integer from 0 to {n - 1} "
                             f"in layer {layer}; got {v!r}.")
    if i == j:
        return
    params = dict(model.named_parameters())
    device = model.in_perm.device
    with torch.no_grad():
        for name, dim, fold in _targets(model, layer):
            base = torch.arange(fold, device=device) * n
            a, b = base + i, base + j
            for store in (params, *moments):
                if name in store:
                    _exchange(store[name], dim, a, b)
        ij = torch.tensor([i], device=device), torch.tensor([j], device=device)
        if layer == 0:
            _exchange(model.in_perm, 0, *ij)
        if layer == model.depth:
            _exchange(model.out_perm, 0, *ij)


def connectivity(model: BioMLP, layer: int) -> torch.Tensor:
    """Sum of |incoming| and |outgoing| weights of each neuron of a layer, shape (n,)."""
    n = n_slots(model, layer)
    with torch.no_grad():
        score = model.layers[0].weight.new_zeros(n)
        if layer >= 1:
            score += model.layers[layer - 1].weight.abs().sum(1)
        if layer < model.depth:
            score += model.layers[layer].weight.abs().reshape(-1, n).sum(0)
    return score


@dataclass
class SwapReport:
    """What one :func:`relocate` pass did: swaps made and the cost change they bought."""

    swaps: int
    cost_change: float
    pairs: list[tuple[int, int, int]]  # (layer, i, j)


def relocate(model: BioMLP, mats: Sequence[torch.Tensor], top_k: int = 5,
             layers: Sequence[int] | None = None, moments: Sequence[Moments] = (),
             tol: float = 1e-7) -> SwapReport:
    """The paper's swap pass: the ``top_k`` most connected neurons of each layer in turn
    move to the slot that lowers the connection cost most (if any does).

    Parameters
    ----------
    model : BioMLP
    mats : list of Tensor
        Cost matrices (:func:`bimt.cost.cost_matrices`).
    top_k : int
        Neurons tried per layer, the most connected first.
    layers : sequence of int, optional
        Neuron layers to relocate (default: all, inputs and outputs included).
    moments : sequence of Moments
        Optimizer state permuted along with the weights.
    tol : float
        A swap must lower the cost by more than ``tol`` (relative to the layer's cost).

    Returns
    -------
    SwapReport
        The cost never increases: every swap made lowers it.
    """
    layers = range(model.depth + 1) if layers is None else layers
    swaps, change, pairs = 0, 0.0, []
    for layer in layers:
        n = n_slots(model, layer)
        if n < 2:
            continue
        m = placement_cost(model, layer, mats)
        order = torch.argsort(connectivity(model, layer), descending=True)[:top_k].tolist()
        scale = float(m.diagonal().sum()) + 1e-30
        for i in order:
            delta = swap_deltas(m, i)
            j = int(torch.argmin(delta))
            d = float(delta[j])
            if d < -tol * scale:
                swap_neurons(model, layer, i, j, moments)
                m[[i, j]] = m[[j, i]]  # neuron contents moved; positions did not
                swaps, change = swaps + 1, change + d
                pairs.append((layer, i, j))
    return SwapReport(swaps, change, pairs)


def torch_optimizer_moments(model: BioMLP, optimizer: torch.optim.Optimizer) -> list[Moments]:
    """The per-parameter state tensors of a ``torch.optim`` optimizer as :data:`Moments`.

    Every state entry with the parameter's shape (Adam's ``exp_avg``, ``exp_avg_sq``, ...)
    is included, so swaps keep a stock optimizer consistent too.
    """
    keys: dict[str, dict[str, torch.Tensor]] = {}
    for name, p in model.named_parameters():
        for key, value in optimizer.state.get(p, {}).items():
            if isinstance(value, torch.Tensor) and value.shape == p.shape:
                keys.setdefault(key, {})[name] = value
    return list(keys.values())
