"""BioRNN: a recurrent network whose hidden neurons sit in the plane (structure and forward).

The hidden neurons of an Elman network lie on a 2D grid in the unit square, as in "Growing
Brains" (Liu, Khona, Fiete & Tegmark); the inputs and the outputs are rows of neurons
across the same square, like a :class:`bimt.BioMLP`'s. Three :class:`bimt.BioLinear`
layers hold the weights: ``inp`` (inputs to hidden, with the hidden bias), ``rec`` (hidden
to hidden, no bias) and ``out`` (hidden to outputs)::

    h_0 = 0,   h_t = act(W_in x_t + b + W_rec h_{t-1}),   y_t = W_out h_t + c

The recurrent matrix joins the hidden group to itself, so its :class:`bimt.Spatial`
description has one wire with the same group on both sides: a swap of hidden neurons ``i``
and ``j`` permutes rows *and* columns of ``W_rec``, rows of ``W_in`` and ``b``, columns of
``W_out`` (and the optimizer's moments of all of them), and the connection cost charges
every recurrent weight by the in-plane distance of the two neurons it joins. Everything else
(cost, swaps, graph, modules, pictures, explorer, export, training) reads that description.

References
----------
Liu, Khona, Fiete & Tegmark, "Growing Brains: Co-emergence of Anatomical and Functional
Modularity in Recurrent Neural Networks", arXiv:2310.07711.
Liu, Gan & Tegmark, "Seeing is believing: brain-inspired modular training for mechanistic
interpretability", arXiv:2305.08746.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

import traincore

from .geometry import Shape, layer_coordinates, layer_size, normalize_shape
from .layers import ACTIVATIONS, BioLinear
from .spatial import Group, Row, Spatial, Wire

__all__ = ["BioRNN", "grid_shape"]


def grid_shape(n: int) -> tuple[int, int]:
    """The most nearly square ``(rows, cols)`` grid of exactly ``n`` neurons, rows <= cols.

    Examples
    --------
    >>> grid_shape(16), grid_shape(12), grid_shape(7)
    ((4, 4), (3, 4), (1, 7))
    """
    rows = max(r for r in range(1, math.isqrt(n) + 1) if n % r == 0)
    return rows, n // rows


def _positive(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"The '{name}' of BioRNN must be a positive integer; got {value!r}.")
    return int(value)


class BioRNN(nn.Module):
    """An Elman recurrent network of :class:`BioLinear` layers with hidden neurons in 2D.

    Parameters
    ----------
    in_dim : int
        Inputs per time step (a row of neurons).
    hidden : int or (rows, cols)
        Hidden neurons: an integer is laid out on the most nearly square grid
        (:func:`grid_shape`: 16 -> 4 x 4), a pair gives the grid itself.
    out_dim : int
        Outputs per time step (a row of neurons).
    activation : str
        One of :data:`bimt.ACTIVATIONS` (default ``"tanh"``, the classic Elman network).
    bias : bool
        Hidden and output biases.
    seed : int, optional
        Seed for the initial weights (else torch's global RNG).

    Attributes
    ----------
    inp, rec, out : BioLinear
        ``(hidden, in_dim)`` with the hidden bias, ``(hidden, hidden)`` without bias,
        ``(out_dim, hidden)``.
    in_perm, out_perm : buffers
        Input (output) slot ``k`` holds original input (output) ``perm[k]``; swaps of the
        end neurons update them, so ``model(x)`` always uses the original order.

    Examples
    --------
    >>> rnn = BioRNN(in_dim=3, hidden=16, out_dim=2, seed=0)
    >>> rnn(torch.zeros(5, 7, 3)).shape          # (batch, time, in_dim) -> (batch, time, out_dim)
    torch.Size([5, 7, 2])
    >>> rnn.shape, tuple(rnn.rec.weight.shape)
    ((4, 4), (16, 16))
    """

    def __init__(self, in_dim: int, hidden: Shape | list[int], out_dim: int,
                 activation: str = "tanh", bias: bool = True, seed: int | None = None) -> None:
        super().__init__()
        in_dim, out_dim = _positive("in_dim", in_dim), _positive("out_dim", out_dim)
        shape = normalize_shape(hidden, "'hidden' size of BioRNN")
        if isinstance(shape, int):
            shape = grid_shape(shape)
        if activation not in ACTIVATIONS:
            raise ValueError(f"The 'activation' of BioRNN must be one of {sorted(ACTIVATIONS)}; "
                             f"got {activation!r}.")
        n = layer_size(shape)
        # each weight and the distance of every connection, float32
        connections = n * (in_dim + n + out_dim)
        traincore.check_memory(2 * 4 * connections, f"The BioRNN with {n} hidden neurons "
                               f"({connections} connections)", "use fewer hidden neurons")
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        c_in, c_h, c_out = layer_coordinates(in_dim), layer_coordinates(shape), \
            layer_coordinates(out_dim)
        self.inp = BioLinear(c_in, c_h, bias=bias, generator=generator)
        self.rec = BioLinear(c_h, c_h, bias=False, generator=generator)
        self.out = BioLinear(c_h, c_out, bias=bias, generator=generator)
        self.register_buffer("in_perm", torch.arange(in_dim))
        self.register_buffer("out_perm", torch.arange(out_dim))
        self.shape: tuple[int, int] = shape
        self.activation = activation

    @property
    def in_dim(self) -> int:
        """Inputs per time step."""
        return self.inp.in_features

    @property
    def hidden_size(self) -> int:
        """Number of hidden neurons."""
        return self.rec.in_features

    @property
    def out_dim(self) -> int:
        """Outputs per time step."""
        return self.out.out_features

    def _check_input(self, x: torch.Tensor) -> None:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"The input of BioRNN must be a tensor of shape (batch, time, "
                            f"{self.in_dim}); got {type(x).__name__}.")
        if x.ndim != 3 or x.shape[-1] != self.in_dim:
            raise ValueError(f"The input of BioRNN must have shape (batch, time, {self.in_dim}); "
                             f"got {tuple(x.shape)}. Give sequences of {self.in_dim} inputs "
                             f"per step, or build BioRNN(in_dim={x.shape[-1] if x.ndim else 1}, "
                             "...).")

    def hidden_states(self, x: torch.Tensor) -> torch.Tensor:
        """Hidden activations at every step, in slot order, shape (batch, time, hidden)."""
        self._check_input(x)
        act = ACTIVATIONS[self.activation][0]
        drive = self.inp(x[..., self.in_perm])  # (batch, time, hidden): all steps in one matmul
        h = drive.new_zeros(drive.shape[0], self.hidden_size)
        rec_t = self.rec.weight.T  # the step below is drive_t + h @ W_rec.T, one fused op
        states = []
        for drive_t in drive.unbind(1):
            h = act(torch.addmm(drive_t, h, rec_t))
            states.append(h)
        if not states:
            return drive
        return torch.stack(states, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Outputs at every time step, in the original output order.

        Parameters
        ----------
        x : Tensor, shape (batch, time, in_dim)

        Returns
        -------
        Tensor, shape (batch, time, out_dim)
        """
        out = self.out(self.hidden_states(x))
        return out[..., torch.argsort(self.out_perm)]

    def spatial(self) -> Spatial:
        """Inputs, the hidden grid and outputs, as every bimt operation reads them.

        Three groups, ``"input"`` (permutation ``in_perm``), ``"hidden"`` (kind
        ``"recurrent"``, the 2D grid) and ``"output"`` (``out_perm``), one drawing row each;
        three wires: ``inp`` (row 0 -> 1), ``rec`` (row 1 -> 1: the recurrent matrix, rows
        and columns both hidden neurons) and ``out`` (row 1 -> 2).
        """
        groups = (Group("input", "input", self.inp.in_coordinates, self.in_dim, "in_perm"),
                  Group("hidden", "recurrent", self.rec.in_coordinates, self.shape),
                  Group("output", "output", self.out.out_coordinates, self.out_dim, "out_perm"))
        rows = (Row("input"), Row("hidden"), Row("output"))
        bias_in = "inp.bias" if self.inp.bias is not None else None
        bias_out = "out.bias" if self.out.bias is not None else None
        wires = (Wire("inp.weight", 0, 1, bias_in), Wire("rec.weight", 1, 1),
                 Wire("out.weight", 1, 2, bias_out))
        return Spatial(groups, rows, wires)

    def config(self) -> dict[str, Any]:
        """The constructor arguments (to rebuild an empty model of the same structure)."""
        return {"in_dim": self.in_dim, "hidden": list(self.shape), "out_dim": self.out_dim,
                "activation": self.activation, "bias": self.inp.bias is not None}

    def extra_repr(self) -> str:
        return (f"in_dim={self.in_dim}, hidden={self.shape}, out_dim={self.out_dim}, "
                f"activation={self.activation!r}")
