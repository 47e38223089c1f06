"""``from_torch``: turn a plain ``nn.Sequential`` MLP into a :class:`bimt.BioMLP`.

The weights and biases are copied exactly, so the BioMLP computes the same outputs; its
neurons get the paper's evenly spaced positions, ready for :func:`bimt.train` or a
:class:`bimt.Swapper` in your own loop.
"""

from __future__ import annotations

import torch
from torch import nn

from .model import BioMLP

__all__ = ["from_torch", "TORCH_ACTIVATIONS"]

#: torch activation modules -> BioMLP activation names.
TORCH_ACTIVATIONS: dict[type[nn.Module], str] = {
    nn.SiLU: "silu", nn.ReLU: "relu", nn.Tanh: "tanh", nn.GELU: "gelu", nn.Identity: "identity",
}
_SUPPORTED = "nn.Linear and the activations SiLU, ReLU, Tanh, GELU, Identity"


def _flatten(module: nn.Module) -> list[nn.Module]:
    if isinstance(module, nn.Sequential):
        return [leaf for child in module for leaf in _flatten(child)]
    return [module]


def _activation(layer: nn.Module, position: int) -> str:
    kind = TORCH_ACTIVATIONS.get(type(layer))
    if kind is None:
        raise TypeError(f"from_torch() supports {_SUPPORTED}; layer {position} is "
                        f"{type(layer).__name__}. Replace it or build the network from "
                        "bimt.BioLinear layers with a spatial() description.")
    if kind == "gelu" and getattr(layer, "approximate", "none") != "none":
        raise ValueError(f"Layer {position} is GELU(approximate='tanh'); from_torch() supports "
                         "the exact GELU only.")
    return kind


def _parse(layers: list[nn.Module]) -> tuple[list[nn.Linear], str]:
    linears: list[nn.Linear] = []
    acts: list[tuple[int, str]] = []
    for i, layer in enumerate(layers):
        want_linear = len(linears) == len(acts)
        if isinstance(layer, nn.Linear):
            if not want_linear:
                raise ValueError(f"Layers {i - 1} and {i} are both nn.Linear; a BioMLP needs one "
                                 "activation between linear layers (nn.Identity for none).")
            if linears and layer.in_features != linears[-1].out_features:
                raise ValueError(f"Linear layer {i} takes {layer.in_features} inputs but the one "
                                 f"before gives {linears[-1].out_features}.")
            linears.append(layer)
        else:
            kind = _activation(layer, i)
            if want_linear:
                where = "first" if not linears else "next"
                raise ValueError(f"Layer {i} ({type(layer).__name__}) stands where the {where} "
                                 "nn.Linear should be; a BioMLP starts and ends with a linear "
                                 "layer and has one activation between linear layers.")
            acts.append((i, kind))
    if not linears:
        raise ValueError("from_torch() needs at least one nn.Linear layer; got none.")
    if len(acts) == len(linears):
        i = acts[-1][0]
        raise ValueError(f"Layer {i} ({type(layers[i]).__name__}) stands where the last "
                         "nn.Linear should be; a BioMLP ends with a linear layer (apply the "
                         "activation to its outputs yourself).")
    kinds = {k for _, k in acts}
    if len(kinds) > 1:
        (i, a), (j, b) = acts[0], next((p, k) for p, k in acts if k != acts[0][1])
        raise ValueError(f"The network mixes activations ({a} at layer {i}, {b} at layer {j}); "
                         "a BioMLP has one activation throughout.")
    if len({lin.bias is None for lin in linears}) > 1:
        raise ValueError("Some nn.Linear layers have a bias and some do not; a BioMLP has "
                         "biases everywhere or nowhere.")
    return linears, acts[0][1] if acts else "identity"


def from_torch(module: nn.Module) -> BioMLP:
    """A :class:`bimt.BioMLP` with the weights of ``module`` and identical outputs.

    Parameters
    ----------
    module : nn.Sequential
        ``Linear, act, Linear, act, ..., Linear`` (nested Sequentials are flattened), one
        kind of activation: SiLU, ReLU, Tanh, GELU or Identity.

    Returns
    -------
    BioMLP
        Same dtype and device as ``module``; ``module`` itself is not changed.

    Raises
    ------
    TypeError
        For a module that is not an ``nn.Sequential`` or holds an unsupported layer.
    ValueError
        For a layer order, size or activation mix a BioMLP cannot represent.

    Examples
    --------
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 20), torch.nn.SiLU(),
    ...                           torch.nn.Linear(20, 2))
    >>> bio = from_torch(net)
    >>> x = torch.randn(5, 4)
    >>> bio.widths, bool(torch.equal(bio(x), net(x)))
    ([4, 20, 2], True)
    """
    if not isinstance(module, nn.Sequential):
        raise TypeError(f"from_torch() takes an nn.Sequential of {_SUPPORTED}; got "
                        f"{type(module).__name__}.")
    linears, activation = _parse(_flatten(module))
    widths = [linears[0].in_features] + [lin.out_features for lin in linears]
    ref = linears[0].weight
    # seed=0: a private generator, so converting never consumes the caller's global RNG
    bio = BioMLP(widths, activation=activation, bias=linears[0].bias is not None, seed=0)
    bio.to(device=ref.device, dtype=ref.dtype)
    with torch.no_grad():
        for mine, theirs in zip(bio.layers, linears, strict=True):
            mine.weight.copy_(theirs.weight)
            if theirs.bias is not None:
                mine.bias.copy_(theirs.bias)  # type: ignore[union-attr]
    return bio
