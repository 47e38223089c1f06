"""BioLinear: a linear layer whose input and output neurons have positions in the plane.

The building block of every spatial network (:class:`bimt.BioMLP`, and any network that
describes itself with :mod:`bimt.spatial`). Structure and forward only.

References
----------
Liu, Gan & Tegmark, "Seeing is believing: brain-inspired modular training for mechanistic
interpretability", arXiv:2305.08746.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .geometry import distance_matrix

__all__ = ["ACTIVATIONS", "BioLinear"]

#: name -> (activation, backward(grad_output, pre_activation)); the backward is used by the
#: analytic training step and checked against autograd in the tests.
ACTIVATIONS: dict[str, tuple[Callable[[torch.Tensor], torch.Tensor],
                             Callable[[torch.Tensor, torch.Tensor], torch.Tensor]]] = {
    "silu": (F.silu, lambda g, z: torch.ops.aten.silu_backward(g, z)),
    "relu": (F.relu, lambda g, z: torch.ops.aten.threshold_backward(g, z, 0.0)),
    "tanh": (torch.tanh, lambda g, z: g * (1 - torch.tanh(z).square())),
    "gelu": (F.gelu, lambda g, z: torch.ops.aten.gelu_backward(g, z)),
    "identity": (lambda z: z, lambda g, z: g),
}


class BioLinear(nn.Module):
    """A linear layer whose input and output neurons have in-plane coordinates.

    Parameters
    ----------
    in_coordinates : Tensor, shape (in_features, 2)
    out_coordinates : Tensor, shape (out_features, 2)
    bias : bool
    generator : torch.Generator, optional
        Source of the initial weights (``nn.Linear``'s uniform init), else torch's global RNG.

    Attributes
    ----------
    weight : Parameter, shape (out_features, in_features)
    bias : Parameter, shape (out_features,) or None
    in_coordinates, out_coordinates : buffers, shape (n, 2)
    distance : buffer, shape (out_features, in_features)
        In-plane distance of every connection. Swaps move weights between fixed neuron
        positions, so the coordinates and distances never change.

    Examples
    --------
    >>> from bimt.geometry import layer_coordinates
    >>> layer = BioLinear(layer_coordinates(3), layer_coordinates(2))
    >>> layer(torch.zeros(5, 3)).shape
    torch.Size([5, 2])
    """

    def __init__(self, in_coordinates: torch.Tensor, out_coordinates: torch.Tensor,
                 bias: bool = True, generator: torch.Generator | None = None) -> None:
        super().__init__()
        n_in, n_out = len(in_coordinates), len(out_coordinates)
        self.in_features, self.out_features = n_in, n_out
        bound = 1.0 / math.sqrt(n_in)
        w = torch.rand(n_out, n_in, generator=generator) * (2 * bound) - bound
        self.weight = nn.Parameter(w)
        if bias:
            b = torch.rand(n_out, generator=generator) * (2 * bound) - bound
            self.bias: nn.Parameter | None = nn.Parameter(b)
        else:
            self.register_parameter("bias", None)
        self.register_buffer("in_coordinates", in_coordinates.detach().clone().float())
        self.register_buffer("out_coordinates", out_coordinates.detach().clone().float())
        self.register_buffer("distance", distance_matrix(self.out_coordinates,
                                                         self.in_coordinates))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x @ weight.T + bias``; x of shape (..., in_features) -> (..., out_features)."""
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"
