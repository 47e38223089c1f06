"""The network as one annotated graph: what the explorer shows and the exports write.

:func:`network_graph` takes :func:`bimt.to_networkx` and adds, per neuron, the module it
belongs to, and per connection its sign; :func:`neuron_modules` is the one place that
decides which neuron belongs to which module (the connected components of the pruned graph
that link inputs to outputs, numbered as :func:`bimt.modules` lists them), and
:data:`MODULE_COLORS` the one palette that colours them.

References
----------
Liu, Gan & Tegmark, "Seeing is believing: brain-inspired modular training for mechanistic
interpretability", arXiv:2305.08746.
"""

from __future__ import annotations

from collections.abc import Hashable

import networkx as nx
import torch

from .model import BioMLP
from .modularity import Module, modules, to_networkx

__all__ = ["MODULE_COLORS", "NO_MODULE_COLOR", "module_color", "neuron_modules",
           "network_graph", "module_name"]

#: Colours of modules 0, 1, 2, ... (ColorBrewer Dark2 then Paired: distinct on white).
MODULE_COLORS = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02",
                 "#a6761d", "#1f78b4", "#b2df8a", "#fb9a99"]
#: Colour of a neuron outside every module.
NO_MODULE_COLOR = "#b0b0b0"


def module_color(module: int | None) -> str:
    """Colour of module number ``module`` (``None``: no module, grey)."""
    return NO_MODULE_COLOR if module is None else MODULE_COLORS[module % len(MODULE_COLORS)]


def _index_set(prefix: str, indices: frozenset[int], what: str, limit: int) -> str:
    names = [f"{prefix}{i + 1}" for i in sorted(indices)]
    if len(names) <= limit:
        return "{" + ", ".join(names) + "}"
    # a wide module (64 pixels) would fill a screen: its first few, its last and the count
    return "{" + ", ".join(names[:limit - 2]) + f", ..., {names[-1]}}} ({len(names)} {what})"


def module_name(module: Module, limit: int = 8) -> str:
    """``{x1, x3} -> {y1}``: a module by its original inputs and outputs.

    Sets of more than ``limit`` are shortened: ``{x1, x2, ..., x64} (64 inputs)``.

    Examples
    --------
    >>> module_name(Module(frozenset({0, 2}), frozenset({0})))
    '{x1, x3} -> {y1}'
    >>> module_name(Module(frozenset(range(64)), frozenset({1})), limit=4)
    '{x1, x2, ..., x64} (64 inputs) -> {y2}'
    """
    return (f"{_index_set('x', module.inputs, 'inputs', limit)} -> "
            f"{_index_set('y', module.outputs, 'outputs', limit)}")


def neuron_modules(model: torch.nn.Module, threshold: float = 0.05
                   ) -> tuple[list[Module], dict[Hashable, int]]:
    """Which module every neuron belongs to.

    A module is a connected component of the graph pruned at ``threshold`` (as in
    :func:`bimt.modules`) that links inputs to outputs; each of its neurons gets the
    module's position in ``bimt.modules(model, threshold)``.

    Returns
    -------
    modules : list of Module
        ``bimt.modules(model, threshold)``.
    membership : dict
        Node of :func:`bimt.to_networkx` -> module number; neurons in no module are absent.
    """
    found = modules(model, threshold)
    number = {(m.inputs, m.outputs): i for i, m in enumerate(found)}
    g = to_networkx(model, threshold)
    membership: dict[Hashable, int] = {}
    for comp in nx.weakly_connected_components(g):
        ends = [(g.nodes[n]["kind"], g.nodes[n].get("index")) for n in comp]
        key = (frozenset(i for kind, i in ends if kind == "input"),
               frozenset(i for kind, i in ends if kind == "output"))
        if key in number:
            membership.update(dict.fromkeys(comp, number[key]))
    return found, membership


# ---------------------------------------------------------------------------------------
# ADAPTER (issue 8): today's to_networkx gives nodes `layer`, `slot`, `pos`, `height`,
# `kind`, and `index`/`label` on inputs and outputs only. The spatial-network description
# adds `group`, `x`, `y`, `label`, `index` and `bias` to every node; this fills in whatever
# is missing, from a BioMLP, and does nothing once to_networkx provides them all. Delete it
# (and its call in network_graph) when that lands.
def _fill_missing_attributes(model: torch.nn.Module, g: nx.DiGraph) -> None:
    missing = {k for _, d in g.nodes(data=True) for k in ("group", "x", "y", "label", "index",
                                                          "bias") if k not in d}
    if not missing:
        return
    if not isinstance(model, BioMLP):
        raise TypeError(f"Drawing or exporting needs the neurons' {sorted(missing)} from "
                        f"bimt.to_networkx, which gives none for a {type(model).__name__}; "
                        "pass a bimt.BioMLP.")
    from .plotting import neuron_positions

    positions = neuron_positions(model)
    with torch.no_grad():
        biases = [None if lin.bias is None else lin.bias.detach().cpu().tolist()
                  for lin in model.layers]
    for _, d in g.nodes(data=True):
        layer, slot = d["layer"], d["slot"]
        d.setdefault("group", d["kind"])
        # hidden neurons have no original order (swaps exchange them): index = slot
        d.setdefault("index", slot)
        d.setdefault("label", f"h{layer}.{slot + 1}")
        x, y = positions[layer][slot]
        d.setdefault("x", float(x))
        d.setdefault("y", float(y))
        b = biases[layer - 1] if layer > 0 else None
        d.setdefault("bias", None if b is None else float(b[slot]))
# ---------------------------------------------------------------------------------------


def network_graph(model: torch.nn.Module, threshold: float = 0.0,
                  module_threshold: float = 0.05) -> nx.DiGraph:
    """:func:`bimt.to_networkx` with every attribute the explorer and the exports show.

    Parameters
    ----------
    model : BioMLP (or any network :func:`bimt.to_networkx` describes)
    threshold : float
        Keep only connections with ``|w| > threshold * max |w|`` (0: every nonzero one).
    module_threshold : float
        Pruning threshold that defines the modules (as in :func:`bimt.modules`).

    Returns
    -------
    networkx.DiGraph
        Nodes carry ``layer``, ``slot``, ``group``, ``kind``, ``index``, ``label``, ``x``,
        ``y`` (drawing coordinates, as :func:`bimt.draw` places them), ``bias`` (float, or
        None for inputs and bias-free layers) and ``module`` (number in ``bimt.modules``
        order, or None); edges carry ``weight``, ``abs_weight`` and ``sign`` (+1 or -1).
        ``graph["modules"]`` is the list of :class:`bimt.Module`.

    Examples
    --------
    >>> g = network_graph(BioMLP([2, 3, 1], seed=0))
    >>> d = g.nodes[(1, 0)]
    >>> d["label"], d["group"], d["module"], round(d["bias"], 3)
    ('h1.1', 'hidden1', 0, -0.014)
    """
    g = to_networkx(model, threshold)
    _fill_missing_attributes(model, g)
    found, membership = neuron_modules(model, module_threshold)
    for n, d in g.nodes(data=True):
        d["module"] = membership.get(n)
    for _, _, d in g.edges(data=True):
        d["sign"] = 1 if d["weight"] > 0 else -1
    g.graph["modules"] = found
    return g

