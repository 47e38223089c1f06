"""BioMLP: a multilayer perceptron of BioLinear layers (structure and forward only).

Penalties, swaps, training and pictures are functions beside the model (``cost``, ``swap``,
``training``, ``plotting``) that read the model through its :meth:`BioMLP.spatial`
description; the model only holds weights, neuron coordinates (registered buffers, so
``.to(device)`` moves them) and the input/output permutations that swaps create, so that
``model(x)`` always takes and returns the original input/output order.

References
----------
Liu, Gan & Tegmark, "Seeing is believing: brain-inspired modular training for mechanistic
interpretability", arXiv:2305.08746.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

import traincore

from .geometry import Shape, layer_coordinates, layer_size, normalize_shape
from .layers import ACTIVATIONS, BioLinear
from .spatial import Group, Row, Spatial, Wire

__all__ = ["ACTIVATIONS", "BioLinear", "BioMLP"]  # the first two re-exported from .layers


class BioMLP(nn.Module):
    """A multilayer perceptron of :class:`BioLinear` layers with neuron positions.

    Parameters
    ----------
    widths : sequence of int or (rows, cols)
        Layer shapes from input to output, e.g. ``[4, 20, 20, 2]``; a pair makes a 2D grid
        layer (``[(8, 8), 100, 10]`` for 8x8 images). The input width counts all folds.
    activation : str
        One of :data:`ACTIVATIONS` (default ``"silu"``, as in the paper).
    in_fold : int
        The input layer is ``in_fold`` groups laid on the same positions (e.g. two token
        embeddings); input swaps move a position in every group at once.
    embedding : (vocab_size, dim), optional
        Inputs are integer tokens of shape (n, in_fold), embedded into ``dim`` numbers each
        (so ``widths[0]`` must be ``in_fold * dim``).
    bias : bool
    seed : int, optional
        Seed for the initial weights (else torch's global RNG).

    Attributes
    ----------
    layers : ModuleList of BioLinear
    in_perm : buffer, shape (widths[0] // in_fold,)
        Input slot ``k`` (within every fold) holds original input ``in_perm[k]``.
    out_perm : buffer, shape (widths[-1],)
        Output slot ``k`` holds original output ``out_perm[k]``.

    Examples
    --------
    >>> model = BioMLP([4, 20, 20, 2], seed=0)
    >>> model(torch.zeros(3, 4)).shape
    torch.Size([3, 2])
    >>> [tuple(layer.weight.shape) for layer in model.layers]
    [(20, 4), (20, 20), (2, 20)]
    """

    def __init__(self, widths: Sequence[Shape], activation: str = "silu", in_fold: int = 1,
                 embedding: tuple[int, int] | None = None, bias: bool = True,
                 seed: int | None = None) -> None:
        super().__init__()
        if isinstance(widths, (str, bytes)) or not isinstance(widths, Sequence):
            raise TypeError(f"The 'widths' must be a list of layer widths such as [4, 20, 20, 2]; "
                            f"got {type(widths).__name__} {widths!r}.")
        if len(widths) < 2:
            raise ValueError(f"The 'widths' need at least an input and an output width; "
                             f"got {list(widths)!r}.")
        shapes = [normalize_shape(w, f"width {i} of 'widths'") for i, w in enumerate(widths)]
        if activation not in ACTIVATIONS:
            raise ValueError(f"The 'activation' must be one of {sorted(ACTIVATIONS)}; "
                             f"got {activation!r}.")
        if isinstance(in_fold, bool) or not isinstance(in_fold, int) or in_fold < 1:
            raise ValueError(f"The 'in_fold' must be a positive integer; got {in_fold!r}.")
        # each layer holds its weights and the distance of every connection (float32)
        sizes = [layer_size(s) for s in shapes]
        connections = sum(a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True))
        traincore.check_memory(2 * 4 * connections, f"The BioMLP with widths {sizes} "
                               f"({connections} connections)", "use smaller widths")
        n_in = layer_size(shapes[0])
        if n_in % in_fold:
            raise ValueError(f"The input width {n_in} must be a multiple of 'in_fold' "
                             f"({in_fold}); change widths[0] or in_fold.")
        if in_fold > 1 and not isinstance(shapes[0], int):
            raise ValueError("A folded input layer must be 1D (an integer width); got "
                             f"{shapes[0]!r} with in_fold={in_fold}.")
        self.shapes: list[Shape] = shapes
        self.activation = activation
        self.in_fold = in_fold
        self.embedding: nn.Embedding | None = None
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        if embedding is not None:
            vocab, dim = embedding
            if in_fold * dim != n_in:
                raise ValueError(f"With an embedding of dim {dim} and in_fold={in_fold} the input "
                                 f"width must be {in_fold * dim}; got {n_in}.")
            self.embedding = nn.Embedding(vocab, dim)
            with torch.no_grad():
                self.embedding.weight.copy_(torch.randn(vocab, dim, generator=generator))
        first = shapes[0] if in_fold == 1 else n_in // in_fold
        coords = [layer_coordinates(first, fold=in_fold)] + [layer_coordinates(s)
                                                              for s in shapes[1:]]
        self.layers = nn.ModuleList(
            BioLinear(coords[i], coords[i + 1], bias=bias, generator=generator)
            for i in range(len(shapes) - 1)
        )
        self.register_buffer("in_perm", torch.arange(n_in // in_fold))
        self.register_buffer("out_perm", torch.arange(layer_size(shapes[-1])))

    # ------------------------------------------------------------------ structure
    @property
    def widths(self) -> list[int]:
        """Number of neurons per layer, input to output."""
        return [layer_size(s) for s in self.shapes]

    @property
    def depth(self) -> int:
        """Number of linear layers."""
        return len(self.layers)

    def input_index(self) -> torch.Tensor:
        """Column of the (embedded) input that feeds each input slot, shape (widths[0],)."""
        m = len(self.in_perm)
        folds = torch.arange(self.in_fold, device=self.in_perm.device)[:, None] * m
        return (folds + self.in_perm[None, :]).flatten()

    def output_index(self) -> torch.Tensor:
        """Output slot holding each original output, shape (widths[-1],)."""
        return torch.argsort(self.out_perm)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Inputs in slot order (after the embedding, if any), shape (n, widths[0])."""
        if self.embedding is not None:
            if x.dtype.is_floating_point:
                x = x.long()
            x = self.embedding(x).reshape(x.shape[0], -1)  # (n, in_fold) -> (n, in_fold * dim)
        return x[:, self.input_index()]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Outputs in the original order.

        Parameters
        ----------
        x : Tensor, shape (n, widths[0]) (or (n, in_fold) integer tokens with an embedding)

        Returns
        -------
        Tensor, shape (n, widths[-1])
        """
        act = ACTIVATIONS[self.activation][0]
        h = self.embed(x)
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            h = layer(h)
            if i < last:
                h = act(h)
        return h[:, self.output_index()]

    def hidden(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Activations of every layer in slot order, input first: ``len(widths)`` tensors."""
        act = ACTIVATIONS[self.activation][0]
        h = self.embed(x)
        out = [h]
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            h = layer(h)
            if i < last:
                h = act(h)
            out.append(h)
        return out

    def spatial(self) -> Spatial:
        """The neurons and wires of this MLP, as every bimt operation reads them.

        One group per layer: ``"input"`` (``in_fold`` copies in its row, permutation
        ``in_perm``), ``"hidden1"`` ... ``"hidden{depth-1}"``, ``"output"`` (``out_perm``);
        one wire per BioLinear, ``layers.k`` from row ``k`` to row ``k + 1``.
        """
        m = len(self.in_perm)
        first = self.shapes[0] if self.in_fold == 1 else m
        groups = [Group("input", "input", self.layers[0].in_coordinates[:m], first, "in_perm")]
        for k in range(1, self.depth):
            groups.append(Group(f"hidden{k}", "hidden", self.layers[k - 1].out_coordinates,
                                self.shapes[k]))
        groups.append(Group("output", "output", self.layers[-1].out_coordinates,
                            self.shapes[-1], "out_perm"))
        rows = (Row("input", self.in_fold), *(Row(g.name) for g in groups[1:]))
        wires = tuple(Wire(f"layers.{k}.weight", k, k + 1,
                           f"layers.{k}.bias" if layer.bias is not None else None)
                      for k, layer in enumerate(self.layers))
        return Spatial(tuple(groups), rows, wires)

    def config(self) -> dict[str, Any]:
        """The constructor arguments (to rebuild an empty model of the same structure)."""
        emb = (None if self.embedding is None else
               (self.embedding.num_embeddings, self.embedding.embedding_dim))
        return {"widths": [s if isinstance(s, int) else list(s) for s in self.shapes],
                "activation": self.activation, "in_fold": self.in_fold, "embedding": emb,
                "bias": self.layers[0].bias is not None}

    def extra_repr(self) -> str:
        return f"widths={self.shapes}, activation={self.activation!r}, in_fold={self.in_fold}"
