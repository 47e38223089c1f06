"""Swap moves: exchange two neurons of a group without changing the network function.

A neuron of a group is a row of every wire that writes it (and of its bias), a column of
every wire that reads it, and an entry of every touched tensor (LayerNorm weights,
embedding columns), in every fold copy; the :class:`bimt.spatial.Spatial` description lists
them all (:meth:`~bimt.spatial.Spatial.targets`). Exchanging two neurons there (and in the
optimizer moments, and in the input/output permutation of an end group) leaves
``model(x)`` unchanged but moves weights between fixed positions, which changes the
connection cost.

Only the group's own wires are involved, so the cost of putting neuron ``a`` at slot ``p``
(everything else fixed) is a matrix ``M[a, p]`` of one matmul per wire side, and the cost
change of swapping ``i`` with every ``j`` is ``M[i, j] + M[j, i] - M[i, i] - M[j, j]``,
plus, for a wire with the group on both sides (a recurrent matrix), the exact pair term
``(A_ii + A_jj - A_ij - A_ji) (C_ii + C_jj - C_ij - C_ji)`` with ``A = |W|``.

References
----------
Liu, Gan & Tegmark, arXiv:2305.08746, section 2 ("swap").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from .spatial import Spatial, cols_as_neurons, describe, rows_as_neurons

__all__ = ["Moments", "SwapReport", "placement_cost", "pair_terms", "swap_deltas",
           "swap_neurons", "swap_pass", "connectivity", "torch_optimizer_moments"]

#: Tensors shaped like the model's parameters, keyed by parameter name (e.g. Adam moments),
#: that must move with the weights on every swap.
Moments = Mapping[str, torch.Tensor]


def placement_cost(model: nn.Module, group: str | int, mats: Mapping[str, torch.Tensor],
                   spec: Spatial | None = None) -> torch.Tensor:
    """``M[a, p]``: connection cost of neuron ``a``'s wires if it sat at slot ``p``.

    Parameters
    ----------
    model : spatial network
    group : str or int
        Neuron group, by name or index in the description (BioMLP: the layer, 0 = input).
    mats : mapping of weight name -> Tensor
        Cost matrices from :func:`bimt.cost.cost_matrices`.
    spec : Spatial, optional

    Returns
    -------
    Tensor, shape (n, n) with ``n`` the group's number of slots
    """
    spec = describe(model) if spec is None else spec
    g = spec.group(group)
    n = g.n
    params = dict(model.named_parameters())
    with torch.no_grad():
        m = next(iter(mats.values())).new_zeros(n, n)
        for w in spec.incoming(g.name):  # rows of the wire, (fold * n, n_in)
            fold = spec.rows[w.dst].fold
            a = rows_as_neurons(params[w.weight].abs(), fold, n)  # (n, fold * n_in)
            m += a @ rows_as_neurons(mats[w.weight], fold, n).T
        for w in spec.outgoing(g.name):  # columns, all folds stacked as extra rows
            fold = spec.rows[w.src].fold
            b = cols_as_neurons(params[w.weight].abs(), fold, n)  # (n, n_out * fold)
            m += b @ cols_as_neurons(mats[w.weight], fold, n).T
    return m


def pair_terms(model: nn.Module, group: str | int, mats: Mapping[str, torch.Tensor],
               spec: Spatial | None = None) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``(|W|, C)`` of every wire with ``group`` on both sides (recurrent matrices)."""
    spec = describe(model) if spec is None else spec
    name = spec.group(group).name
    params = dict(model.named_parameters())
    return [(params[w.weight].detach().abs(), mats[w.weight])
            for w in spec.incoming(name) if spec.is_recurrent(w)]


def swap_deltas(m: torch.Tensor, i: int,
                pairs: Sequence[tuple[torch.Tensor, torch.Tensor]] = ()) -> torch.Tensor:
    """Cost change of swapping neuron ``i`` with every neuron ``j`` (shape (n,), 0 at ``i``).

    ``pairs`` are the recurrent wires' ``(|W|, C)`` (:func:`pair_terms`), whose entries
    between ``i`` and ``j`` both move.
    """
    diag = m.diagonal()
    delta = m[i] + m[:, i] - m[i, i] - diag
    for a, c in pairs:
        delta = delta + ((a[i, i] + a.diagonal() - a[i] - a[:, i])
                         * (c[i, i] + c.diagonal() - c[i] - c[:, i]))
    return delta


def _exchange(t: torch.Tensor, dim: int, a: torch.Tensor, b: torch.Tensor) -> None:
    ta, tb = t.index_select(dim, a), t.index_select(dim, b)
    t.index_copy_(dim, a, tb)
    t.index_copy_(dim, b, ta)


def _check_slots(spec: Spatial, gi: int, i: object, j: object) -> None:
    g = spec.groups[gi]
    if not g.movable:
        raise ValueError(f"The {g.kind} neurons of group {g.name!r} cannot move: the model "
                         "records no permutation for them ('perm' of its Group).")
    for name, v in (("i", i), ("j", j)):
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < g.n:
            raise ValueError(f"The neuron index '{name}' must be an integer from 0 to {g.n - 1} "
                             f"in group {g.name!r}; got {v!r}.")
    hs = g.head_size
    if hs and i // hs != j // hs:  # type: ignore[operator]
        raise ValueError(f"The neurons {i} and {j} of group {g.name!r} are in different heads "
                         f"(head_size {hs}); swap only inside one head.")


def _swap(model: nn.Module, spec: Spatial, gi: int, i: int, j: int,
          params: Mapping[str, torch.Tensor], moments: Sequence[Moments]) -> None:
    g = spec.groups[gi]
    with torch.no_grad():
        for name, dim, fold in spec.targets(gi):
            base = torch.arange(fold, device=params[name].device) * g.n
            a, b = base + i, base + j
            for store in (params, *moments):
                if name in store:
                    _exchange(store[name], dim, a, b)
        if g.perm is not None:
            perm = model.get_buffer(g.perm)
            _exchange(perm, 0, torch.tensor([i], device=perm.device),
                      torch.tensor([j], device=perm.device))


def swap_neurons(model: nn.Module, group: str | int, i: int, j: int,
                 moments: Sequence[Moments] = (), spec: Spatial | None = None) -> None:
    """Exchange neurons ``i`` and ``j`` of one group in place.

    Parameters
    ----------
    model : spatial network
    group : str or int
        The group by name (``"hidden1"``) or index (BioMLP: 0 = input ... depth = output).
    i, j : int
        Slots in that group (folded rows: every fold copy moves together).
    moments : sequence of mapping name -> Tensor
        Optimizer state shaped like the parameters (Adam's first and second moments), which
        is permuted identically so that training continues as if nothing moved.
    spec : Spatial, optional

    Examples
    --------
    >>> from bimt.model import BioMLP
    >>> model = BioMLP([3, 4, 2], seed=0)
    >>> x = torch.randn(5, 3)
    >>> before = model(x)
    >>> swap_neurons(model, "hidden1", 0, 3); swap_neurons(model, 0, 0, 2)
    >>> bool(torch.allclose(before, model(x), atol=1e-6)), model.in_perm.tolist()
    (True, [2, 1, 0])
    """
    spec = describe(model) if spec is None else spec
    gi = spec.group_index(group)
    _check_slots(spec, gi, i, j)
    if i != j:
        _swap(model, spec, gi, i, j, dict(model.named_parameters()), moments)


def connectivity(model: nn.Module, group: str | int, spec: Spatial | None = None
                 ) -> torch.Tensor:
    """Sum of |incoming| and |outgoing| weights of each neuron of a group, shape (n,)."""
    spec = describe(model) if spec is None else spec
    g = spec.group(group)
    params = dict(model.named_parameters())
    with torch.no_grad():  # zeros where the weights live (coordinates may be elsewhere)
        first = spec.wires[0].weight if spec.wires else None
        score = (params[first] if first else g.coordinates).new_zeros(g.n)
        for w in spec.incoming(g.name):
            score = score + rows_as_neurons(params[w.weight].abs(), spec.rows[w.dst].fold,
                                            g.n).sum(1)
        for w in spec.outgoing(g.name):
            score = score + params[w.weight].abs().reshape(-1, g.n).sum(0)
    return score


@dataclass
class SwapReport:
    """What one swap pass did: swaps made, the cost change they bought, and which."""

    swaps: int = 0
    cost_change: float = 0.0
    pairs: list[tuple[str, int, int]] = field(default_factory=list)  # (group, i, j)


def swap_pass(model: nn.Module, mats: Mapping[str, torch.Tensor], top_k: int = 5,
              groups: Sequence[str | int] | None = None, moments: Sequence[Moments] = (),
              tol: float = 1e-7, spec: Spatial | None = None) -> SwapReport:
    """The paper's swap pass: the ``top_k`` most connected neurons of each group in turn
    move to the slot that lowers the connection cost most (if any does).

    Parameters
    ----------
    model : spatial network
    mats : mapping of weight name -> Tensor
        Cost matrices (:func:`bimt.cost.cost_matrices`).
    top_k : int
        Neurons tried per group, the most connected first.
    groups : sequence of str or int, optional
        Groups to relocate, in order (default: all, inputs and outputs included).
    moments : sequence of Moments
        Optimizer state permuted along with the weights.
    tol : float
        A swap must lower the cost by more than ``tol`` (relative to the group's cost).
    spec : Spatial, optional

    Returns
    -------
    SwapReport
        The cost never increases: every swap made lowers it.
    """
    spec = describe(model) if spec is None else spec
    keys = range(len(spec.groups)) if groups is None else [spec.group_index(g) for g in groups]
    params = dict(model.named_parameters())
    report = SwapReport()
    for gi in keys:
        g = spec.groups[gi]
        if g.n < 2 or not g.movable:
            continue
        m = placement_cost(model, gi, mats, spec)
        pairs = pair_terms(model, gi, mats, spec)
        order = torch.argsort(connectivity(model, gi, spec), descending=True)[:top_k].tolist()
        scale = float(m.diagonal().sum()) + 1e-30
        for i in order:
            delta = swap_deltas(m, i, pairs)
            lo, hi = (0, g.n) if not g.head_size else (i - i % g.head_size,
                                                       i - i % g.head_size + g.head_size)
            j = lo + int(torch.argmin(delta[lo:hi]))
            d = float(delta[j])
            if d < -tol * scale:
                _swap(model, spec, gi, i, j, params, moments)
                if pairs:  # a recurrent wire: every neuron's placement cost changed
                    m = placement_cost(model, gi, mats, spec)
                    pairs = pair_terms(model, gi, mats, spec)
                else:  # neuron contents moved; positions (and other groups) did not
                    m[[i, j]] = m[[j, i]]
                report.swaps += 1
                report.cost_change += d
                report.pairs.append((g.name, i, j))
    return report


def torch_optimizer_moments(model: nn.Module, optimizer: torch.optim.Optimizer
                            ) -> list[dict[str, torch.Tensor]]:
    """The per-parameter state tensors of a ``torch.optim`` optimizer as :data:`Moments`.

    Every state entry shaped like its parameter (Adam's ``exp_avg``, ``exp_avg_sq``,
    ``max_exp_avg_sq``; SGD's ``momentum_buffer``) is included, so swaps keep a stock
    optimizer consistent too. Scalars (Adam's ``step``) need no permutation.

    Raises
    ------
    ValueError
        When the state holds a tensor that is neither a scalar nor parameter-shaped (a
        factored optimizer), which a swap could not permute.
    """
    keys: dict[str, dict[str, torch.Tensor]] = {}
    for name, p in model.named_parameters():
        for key, value in optimizer.state.get(p, {}).items():
            if not isinstance(value, torch.Tensor) or value.ndim == 0:
                continue
            if value.shape != p.shape:
                raise ValueError(f"The optimizer state {key!r} of parameter {name!r} has shape "
                                 f"{tuple(value.shape)}, not the parameter's "
                                 f"{tuple(p.shape)}; swaps can permute only parameter-shaped "
                                 "state (Adam, AdamW, SGD with momentum).")
            keys.setdefault(key, {})[name] = value
    return list(keys.values())
