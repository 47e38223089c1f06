"""One description of a spatial network, read by every bimt operation.

A model takes part in BIMT by returning a :class:`Spatial` from its ``spatial()`` method.
The connection cost, the vectorised swap search, the swaps (weights, biases, norms,
permutations, optimizer moments), :func:`bimt.to_networkx`, :func:`bimt.modules`,
:func:`bimt.draw`, :func:`bimt.animate` and the training engines all work from it and from
nothing else, so a new kind of network is one new ``spatial()`` method, not a new copy of
each operation. :class:`bimt.BioMLP` is one case.

The description has five parts:

``Group``
    Neurons that can trade places: ``n`` slots with fixed in-plane coordinates (a 1D row
    or a 2D grid). A swap exchanges the contents of two slots of one group; positions never
    move, so cost matrices stay valid for a whole run. ``perm`` names a buffer that records
    which original input/output sits in each slot; ``head_size`` keeps swaps inside blocks
    of that many slots (attention heads: permuting dimensions inside a head leaves
    ``q . k`` and ``softmax(q k^T) v`` unchanged, moving one across heads does not).
``Row``
    One appearance of a group in the drawing and the graph, with ``fold`` copies laid on
    the same positions (BioMLP's folded token inputs; attention's q and k as one
    BioLinear with two copies). Tensors index folded neurons fold-major:
    ``copy * n + slot``. An optional ``label`` names the row in pictures.
``Wire``
    A weight matrix from one row to another, shape ``(dst_fold * n_dst, src_fold *
    n_src)``, with its bias (shape ``(dst_fold * n_dst,)``) if any. Wires pay the
    connection cost and are the graph's edges.
``Touch``
    Any other tensor dimension indexed by a group's neurons: LayerNorm weight and bias,
    the columns of a token or positional embedding table. A swap permutes them too.
``Link``
    An identity connection between two rows of one group (a residual skip): drawn and
    analysed as edges of weight 1, never trained or charged.

Residual streams
----------------
A residual-stream neuron is read and written by every block: the embedding writes it, each
block's attention and MLP read it (the columns of their first matrices, after a LayerNorm)
and write it (the rows of their last matrices, plus bias), the final LayerNorm and the
unembedding read it. It is therefore *one* group with one set of coordinates, appearing as
several rows (the stream between blocks, joined by links). Swapping residual neurons ``a``
and ``b`` must exchange them in every tensor the group touches, in every block at once:
rows of every writing matrix and its bias, columns of every reading matrix, the LayerNorm
weights and biases (LayerNorm's mean and variance are sums over the stream, unchanged by a
permutation), and the embedding columns. Permuting only one block's matrices (as the
research code's transformer would) changes the function; that is why its swaps were off.
Here :meth:`Spatial.targets` lists every such tensor from the wires and touches, so the
swap is consistent by construction, and its cost change sums over every wire of the group.

A recurrent matrix has the same group on both sides: a swap permutes its rows *and*
columns. The vectorised swap search adds the exact pair term for such wires
(:func:`bimt.swap.swap_deltas`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import torch
from torch import nn

from .geometry import Shape, layer_size
from .layers import BioLinear

__all__ = ["Group", "Row", "Wire", "Touch", "Link", "Spatial", "SpatialModule", "describe",
           "GROUP_KINDS"]

#: Kinds a group may have; "input" and "output" groups carry the permutation of the
#: original inputs/outputs, all others are hidden neurons of some sort.
GROUP_KINDS = ("input", "hidden", "output", "residual", "attn", "mlp", "embed", "recurrent")


@dataclass(frozen=True, eq=False)
class Group:
    """Neurons that can trade places.

    Attributes
    ----------
    name : str
        Unique, e.g. ``"input"``, ``"hidden1"``, ``"residual"``.
    kind : str
        One of :data:`GROUP_KINDS`.
    coordinates : Tensor, shape (n, 2)
        In-plane position of each slot.
    shape : int or (rows, cols)
        Drawing layout: a 1D row of ``n`` or a 2D grid with ``rows * cols == n``.
    perm : str, optional
        Name of a buffer of shape (n,): slot ``k`` holds original neuron ``perm[k]``.
    head_size : int, optional
        Swaps stay inside consecutive blocks of this many slots.
    """

    name: str
    kind: str
    coordinates: torch.Tensor
    shape: Shape
    perm: str | None = None
    head_size: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in GROUP_KINDS:
            raise ValueError(f"The kind of group {self.name!r} must be one of {GROUP_KINDS}; "
                             f"got {self.kind!r}.")
        if self.coordinates.ndim != 2 or self.coordinates.shape[1] != 2:
            raise ValueError(f"The coordinates of group {self.name!r} must have shape (n, 2); "
                             f"got {tuple(self.coordinates.shape)}.")
        if layer_size(self.shape) != self.n:
            raise ValueError(f"The drawing shape {self.shape!r} of group {self.name!r} does not "
                             f"hold its {self.n} neurons.")
        hs = self.head_size
        if hs is not None and (hs < 1 or self.n % hs):
            raise ValueError(f"The head_size of group {self.name!r} must divide its {self.n} "
                             f"neurons; got {hs}.")

    @property
    def n(self) -> int:
        """Number of slots."""
        return int(self.coordinates.shape[0])

    @property
    def movable(self) -> bool:
        """Whether swaps may move these neurons: inputs and outputs only with a ``perm``
        that records where each original one went (else ``model(x)`` would change)."""
        return self.kind not in ("input", "output") or self.perm is not None


@dataclass(frozen=True)
class Row:
    """One appearance of a group (a drawing row), with ``fold`` copies on the same spots;
    ``label`` (optional) names the row beside the picture (``"attention"``)."""

    group: str
    fold: int = 1
    label: str | None = None


@dataclass(frozen=True)
class Wire:
    """A weight matrix from row ``src`` to row ``dst`` (indices into :attr:`Spatial.rows`)."""

    weight: str
    src: int
    dst: int
    bias: str | None = None


@dataclass(frozen=True)
class Touch:
    """Dimension ``dim`` of parameter ``param`` is indexed by ``group`` (``fold`` copies)."""

    param: str
    dim: int
    group: str
    fold: int = 1


@dataclass(frozen=True)
class Link:
    """Slot ``s`` of row ``dst`` receives slot ``src_fold * n + s`` of row ``src`` unchanged."""

    src: int
    dst: int
    src_fold: int = 0


@dataclass(frozen=True, eq=False)
class Spatial:
    """The description of a spatial network (see the module docstring).

    Attributes
    ----------
    groups, rows, wires, touches, links : tuples of the parts above
        Rows are listed bottom (inputs) to top (outputs); a row's index is its drawing layer.
    """

    groups: tuple[Group, ...]
    rows: tuple[Row, ...]
    wires: tuple[Wire, ...]
    touches: tuple[Touch, ...] = ()
    links: tuple[Link, ...] = ()
    _index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        index = {g.name: i for i, g in enumerate(self.groups)}
        if len(index) != len(self.groups):
            raise ValueError("The group names of a spatial description must be unique; got "
                             f"{[g.name for g in self.groups]}.")
        object.__setattr__(self, "_index", index)
        for row in self.rows:
            self.group(row.group)
            if row.fold < 1:
                raise ValueError(f"A row of group {row.group!r} needs fold >= 1; got {row.fold}.")
        n_rows = len(self.rows)
        for part in (*self.wires, *self.links):
            if not (0 <= part.src < n_rows and 0 <= part.dst < n_rows):
                raise ValueError(f"{part!r} refers to a row outside 0..{n_rows - 1}.")
        for w in self.wires:
            if self.is_recurrent(w) and (self.rows[w.src].fold, self.rows[w.dst].fold) != (1, 1):
                raise ValueError(f"The wire {w.weight!r} joins group {self.rows[w.src].group!r} "
                                 "to itself with folded rows, which swaps do not support.")
        for t in self.touches:
            self.group(t.group)

    # ------------------------------------------------------------------ lookups
    def group_index(self, key: str | int) -> int:
        """Index of a group given by name or index; unknown keys list the valid names."""
        if isinstance(key, str) and key in self._index:  # the common case, kept fast
            return self._index[key]
        names = ", ".join(g.name for g in self.groups)
        if isinstance(key, bool) or not isinstance(key, (str, int)):
            raise TypeError(f"The neuron 'group' must be a name ({names}) or an index; "
                            f"got {key!r}.")
        if isinstance(key, int):
            if not 0 <= key < len(self.groups):
                raise ValueError(f"The neuron 'group' must be a name ({names}) or an index "
                                 f"from 0 to {len(self.groups) - 1}; got {key}.")
            return key
        if key not in self._index:
            raise ValueError(f"The neuron 'group' must be a name ({names}) or an index "
                             f"from 0 to {len(self.groups) - 1}; got {key!r}.")
        return self._index[key]

    def group(self, key: str | int) -> Group:
        """The group named ``key`` (or at index ``key``)."""
        return self.groups[self.group_index(key)]

    def row_group(self, row: int) -> Group:
        """The group shown in row ``row``."""
        return self.group(self.rows[row].group)

    def row_coordinates(self, row: int) -> torch.Tensor:
        """Coordinates of every neuron of a row, fold copies fold-major: (fold * n, 2)."""
        r = self.rows[row]
        coords = self.group(r.group).coordinates
        return coords if r.fold == 1 else coords.repeat(r.fold, 1)

    def is_recurrent(self, wire: Wire) -> bool:
        """True when both sides of ``wire`` belong to the same group (rows and columns move)."""
        return self.rows[wire.src].group == self.rows[wire.dst].group

    def incoming(self, group: str | int) -> list[Wire]:
        """Wires whose rows (and biases) are neurons of ``group``."""
        name = self.group(group).name
        return [w for w in self.wires if self.rows[w.dst].group == name]

    def outgoing(self, group: str | int) -> list[Wire]:
        """Wires whose columns are neurons of ``group``."""
        name = self.group(group).name
        return [w for w in self.wires if self.rows[w.src].group == name]

    def targets(self, group: str | int) -> list[tuple[str, int, int]]:
        """``(parameter, dim, fold)`` of every tensor a swap in ``group`` permutes."""
        name = self.group(group).name
        out: list[tuple[str, int, int]] = []
        for w in self.wires:
            dst, src = self.rows[w.dst], self.rows[w.src]
            if dst.group == name:
                out.append((w.weight, 0, dst.fold))
                if w.bias is not None:
                    out.append((w.bias, 0, dst.fold))
            if src.group == name:
                out.append((w.weight, 1, src.fold))
        out.extend((t.param, t.dim, t.fold) for t in self.touches if t.group == name)
        return out

    # ------------------------------------------------------------------ checks
    def check(self, model: nn.Module) -> Spatial:
        """Check every named tensor against ``model``; return ``self``.

        Raises
        ------
        ValueError
            Naming the first tensor whose name or shape does not fit the description.
        """
        params = dict(model.named_parameters())
        who = type(model).__name__

        def size(name: str, dim: int, what: str) -> int:
            if name not in params:
                raise ValueError(f"The spatial description of {who} names parameter {name!r} "
                                 f"({what}), which the model does not have.")
            shape = params[name].shape
            if dim >= len(shape):
                raise ValueError(f"The parameter {name!r} of {who} has no dimension {dim} "
                                 f"({what}); its shape is {tuple(shape)}.")
            return int(shape[dim])

        def expect(name: str, dim: int, want: int, what: str) -> None:
            got = size(name, dim, what)
            if got != want:
                raise ValueError(f"The parameter {name!r} of {who} has {got} entries along "
                                 f"dimension {dim} but {what} has {want} neurons.")

        for w in self.wires:
            dst, src = self.rows[w.dst], self.rows[w.src]
            n_dst = dst.fold * self.group(dst.group).n
            n_src = src.fold * self.group(src.group).n
            expect(w.weight, 0, n_dst, f"row {w.dst} ({dst.group})")
            expect(w.weight, 1, n_src, f"row {w.src} ({src.group})")
            if w.bias is not None:
                expect(w.bias, 0, n_dst, f"row {w.dst} ({dst.group})")
        for t in self.touches:
            expect(t.param, t.dim, t.fold * self.group(t.group).n, f"group {t.group!r}")
        buffers = dict(model.named_buffers())
        for g in self.groups:
            if g.perm is not None and (g.perm not in buffers or buffers[g.perm].shape != (g.n,)):
                raise ValueError(f"The permutation buffer {g.perm!r} of group {g.name!r} must "
                                 f"exist in {who} with shape ({g.n},).")
        return self


@runtime_checkable
class SpatialModule(Protocol):
    """A module that describes its neurons: ``spatial() -> Spatial``."""

    def spatial(self) -> Spatial: ...


def describe(model: object) -> Spatial:
    """The checked spatial description of ``model``.

    Parameters
    ----------
    model : torch.nn.Module with a ``spatial()`` method

    Raises
    ------
    TypeError
        When ``model`` is not a module, has no BioLinear layer, or does not describe itself.

    Examples
    --------
    >>> from bimt.model import BioMLP
    >>> spec = describe(BioMLP([3, 4, 2], seed=0))
    >>> [g.name for g in spec.groups], [w.weight for w in spec.wires]
    (['input', 'hidden1', 'output'], ['layers.0.weight', 'layers.1.weight'])
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"The 'model' must be a torch.nn.Module built from bimt's spatial layers; "
                        f"got {type(model).__name__}.")
    spatial = getattr(model, "spatial", None)
    if callable(spatial):
        spec = spatial()
        if not isinstance(spec, Spatial):
            raise TypeError(f"{type(model).__name__}.spatial() must return a bimt.Spatial; got "
                            f"{type(spec).__name__}.")
        return spec.check(model)
    if not any(isinstance(m, BioLinear) for m in model.modules()):
        raise TypeError(f"The 'model' ({type(model).__name__}) has no BioLinear layer, so its "
                        "neurons have no positions; use bimt.BioMLP, or bimt.from_torch(...) "
                        "for an nn.Sequential of Linear layers.")
    raise TypeError(f"The 'model' ({type(model).__name__}) has BioLinear layers but no "
                    "spatial() method saying how they connect; add one returning a "
                    "bimt.Spatial (see the bimt concepts page).")


def rows_as_neurons(t: torch.Tensor, fold: int, n: int) -> torch.Tensor:
    """A (fold * n, k) tensor as (n, fold * k): all copies of neuron ``s`` in row ``s``."""
    if fold == 1:
        return t
    return t.reshape(fold, n, -1).transpose(0, 1).reshape(n, -1)


def cols_as_neurons(t: torch.Tensor, fold: int, n: int) -> torch.Tensor:
    """A (k, fold * n) tensor as (n, k * fold): all copies of neuron ``s`` in row ``s``."""
    return t.reshape(-1, n).T  # (k * fold, n) -> (n, k * fold)

