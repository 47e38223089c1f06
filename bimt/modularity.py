"""Reading a trained BIMT network: graph, pruning, modules, modularity, active neurons.

All results refer to the original (unpermuted) inputs and outputs, whatever swaps did.

References
----------
Liu, Gan & Tegmark, arXiv:2305.08746; Newman, "Modularity and community structure in
networks", PNAS 103, 8577 (2006).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import networkx as nx
import torch
import torch.nn.functional as F

from .geometry import LAYER_SPACING
from .model import BioMLP

__all__ = ["Module", "PruneResult", "to_networkx", "prune", "modules", "modularity",
           "active_neurons", "summarize"]


def _check_threshold(threshold: float) -> float:
    if (isinstance(threshold, bool) or not isinstance(threshold, (int, float))
            or not 0 <= threshold <= 1):
        raise ValueError(f"The pruning 'threshold' must be a fraction of the largest |weight| "
                         f"in [0, 1]; got {threshold!r}.")
    return float(threshold)


def _cutoff(model: BioMLP, threshold: float) -> float:
    with torch.no_grad():
        biggest = max(float(layer.weight.abs().max()) for layer in model.layers)
    return _check_threshold(threshold) * biggest


def _labels(model: BioMLP) -> tuple[list[int], list[int]]:
    """Original input index of each input slot, original output index of each output slot."""
    return model.input_index().tolist(), model.out_perm.tolist()


def to_networkx(model: BioMLP, threshold: float = 0.0) -> nx.DiGraph:
    """The network as a directed graph of neurons and weighted connections.

    Parameters
    ----------
    model : BioMLP
    threshold : float
        Keep only edges with ``|w| > threshold * max |w|`` (0 keeps every nonzero edge).

    Returns
    -------
    networkx.DiGraph
        Nodes ``(layer, slot)`` with attributes ``layer``, ``slot``, ``pos`` (in-plane
        ``(x, z)``), ``height`` (``layer * 0.1``), ``kind`` (input/hidden/output) and, for
        inputs and outputs, ``index`` (original order) and ``label`` (``x1``, ``y2``, ...).
        Edges from layer ``l`` to ``l + 1`` carry ``weight`` and ``abs_weight``.

    Examples
    --------
    >>> g = to_networkx(BioMLP([2, 3, 1], seed=0))
    >>> g.number_of_nodes(), g.number_of_edges()
    (6, 9)
    """
    cut = _cutoff(model, threshold)
    ins, outs = _labels(model)
    g = nx.DiGraph()
    depth = model.depth
    for layer in range(depth + 1):
        if layer == 0:
            coords = model.layers[0].in_coordinates
        else:
            coords = model.layers[layer - 1].out_coordinates
        kind = "input" if layer == 0 else "output" if layer == depth else "hidden"
        for s, (x, z) in enumerate(coords.tolist()):
            attrs: dict[str, Any] = {"layer": layer, "slot": s, "pos": (x, z),
                                     "height": layer * LAYER_SPACING, "kind": kind}
            if kind == "input":
                attrs.update(index=ins[s], label=f"x{ins[s] + 1}")
            elif kind == "output":
                attrs.update(index=outs[s], label=f"y{outs[s] + 1}")
            g.add_node((layer, s), **attrs)
    with torch.no_grad():
        for k, lin in enumerate(model.layers):
            w = lin.weight.detach().cpu()
            rows, cols = torch.nonzero(w.abs() > cut, as_tuple=True) if cut > 0 else \
                torch.nonzero(w != 0, as_tuple=True)
            vals = w[rows, cols].tolist()
            g.add_edges_from(((k, c), (k + 1, r), {"weight": v, "abs_weight": abs(v)})
                             for r, c, v in zip(rows.tolist(), cols.tolist(), vals, strict=True))
    return g


@dataclass(frozen=True)
class Module:
    """A connected group of neurons linking some inputs to some outputs.

    Attributes
    ----------
    inputs, outputs : frozenset of int
        0-based indices of the original (unpermuted) inputs and outputs.
    neurons : int
        Hidden neurons in the module.
    """

    inputs: frozenset[int]
    outputs: frozenset[int]
    neurons: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"inputs": sorted(self.inputs), "outputs": sorted(self.outputs),
                "neurons": self.neurons}

    def __repr__(self) -> str:
        ins = ", ".join(f"x{i + 1}" for i in sorted(self.inputs))
        outs = ", ".join(f"y{i + 1}" for i in sorted(self.outputs))
        return f"Module({{{ins}}} -> {{{outs}}}, {self.neurons} hidden neurons)"


def modules(model: BioMLP, threshold: float = 0.05) -> list[Module]:
    """Independent modules: connected components that link inputs to outputs.

    Edges with ``|w| <= threshold * max |w|`` are pruned first; components without both an
    input and an output are dropped. Sorted by their smallest input.

    Examples
    --------
    >>> model = BioMLP([2, 2, 2], seed=0)
    >>> with torch.no_grad():
    ...     for layer in model.layers:
    ...         _ = layer.weight.copy_(torch.eye(2))
    >>> modules(model)
    [Module({x1} -> {y1}, 1 hidden neurons), Module({x2} -> {y2}, 1 hidden neurons)]
    """
    g = to_networkx(model, threshold)
    found = []
    for comp in nx.weakly_connected_components(g):
        ins = frozenset(g.nodes[n]["index"] for n in comp if g.nodes[n]["kind"] == "input")
        outs = frozenset(g.nodes[n]["index"] for n in comp if g.nodes[n]["kind"] == "output")
        if ins and outs:
            hidden = sum(1 for n in comp if g.nodes[n]["kind"] == "hidden")
            found.append(Module(ins, outs, hidden))
    return sorted(found, key=lambda m: (min(m.inputs), min(m.outputs)))


def modularity(model: BioMLP, threshold: float = 0.05) -> float:
    """Newman modularity Q of the pruned, |w|-weighted graph.

    The partition is the one greedy modularity maximisation (Clauset-Newman-Moore, as in
    networkx) finds, so a connected network can still score high when it splits into
    weakly linked groups; disconnected modules give Q close to ``1 - 1/k`` for ``k`` equal
    modules. 0 for a graph without edges.
    """
    g = to_networkx(model, threshold).to_undirected()
    g.remove_nodes_from([n for n in list(g.nodes) if g.degree(n) == 0])
    if g.number_of_edges() == 0:
        return 0.0
    parts = nx.community.greedy_modularity_communities(g, weight="abs_weight")
    return float(nx.community.modularity(g, parts, weight="abs_weight"))


def active_neurons(model: BioMLP, threshold: float = 0.05) -> list[int]:
    """Per hidden layer, the neurons with at least one incoming and one outgoing edge left
    after pruning."""
    cut = _cutoff(model, threshold)
    counts = []
    with torch.no_grad():
        for k in range(1, model.depth):
            has_in = (model.layers[k - 1].weight.abs() > cut).any(1)
            has_out = (model.layers[k].weight.abs() > cut).any(0)
            counts.append(int((has_in & has_out).sum()))
    return counts


def summarize(model: BioMLP, threshold: float = 0.05) -> dict[str, float]:
    """Scalars logged during training: modules, modularity, active hidden neurons."""
    return {"modules": float(len(modules(model, threshold))),
            "modularity": modularity(model, threshold),
            "active_neurons": float(sum(active_neurons(model, threshold)))}


@dataclass
class PruneResult:
    """A pruned copy of a model and what pruning cost.

    Attributes
    ----------
    model : BioMLP
    removed, kept : int
        Weights set to zero / left nonzero.
    loss_before, loss_after : float or None
        Loss on the given data (MSE, or cross-entropy for integer labels).
    """

    model: BioMLP
    removed: int
    kept: int
    loss_before: float | None = None
    loss_after: float | None = None


def _loss(model: BioMLP, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        out = model(x)
        if not y.dtype.is_floating_point:
            return float(F.cross_entropy(out, y.long()))
        return float((out - y.reshape(out.shape)).pow(2).mean())


def prune(model: BioMLP, threshold: float = 0.05, x: Any = None, y: Any = None,
          inplace: bool = False) -> PruneResult:
    """Zero every weight with ``|w| <= threshold * max |w|``.

    Parameters
    ----------
    model : BioMLP
    threshold : float
        Fraction of the largest |weight| of the network.
    x, y : arrays, optional
        Data to measure the loss before and after pruning on.
    inplace : bool
        Prune ``model`` itself instead of a copy.

    Returns
    -------
    PruneResult
    """
    cut = _cutoff(model, threshold)
    target = model if inplace else copy.deepcopy(model)
    xt = yt = None
    if x is not None and y is not None:
        from .training import prepare_data

        xt, yt, _ = prepare_data(model, x, y)
        dev = model.in_perm.device
        xt, yt = xt.to(dev), yt.to(dev)
    before = _loss(model, xt, yt) if xt is not None else None
    removed = kept = 0
    with torch.no_grad():
        for layer in target.layers:
            mask = layer.weight.abs() <= cut
            removed += int(mask.sum())
            kept += int((~mask).sum())
            layer.weight.masked_fill_(mask, 0.0)
    after = _loss(target, xt, yt) if xt is not None else None
    return PruneResult(target, removed, kept, before, after)
