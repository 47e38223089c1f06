"""Optimizers whose state can be permuted together with the parameters.

:class:`FlatAdamW` keeps every parameter of a model in one flat vector, so an update is a
handful of vector operations whatever the number of layers, and a permutation of a
parameter's rows or columns (a neuron swap) can be applied to the moments through the same
parameter-shaped views (:meth:`FlatAdamW.moments`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

__all__ = ["FlatAdamW"]


class FlatAdamW:
    """AdamW on one flat vector that holds every trainable parameter of a model.

    The model's parameters become views into ``self.flat``; a step function writes the
    gradient into ``self.grad`` (directly or through :meth:`views`) and calls :meth:`step`.
    Same arithmetic as ``torch.optim.AdamW`` (checked in the tests).

    Parameters
    ----------
    model : torch.nn.Module
        All trainable parameters must share dtype and device.
    lr, betas, eps, weight_decay
        As for ``torch.optim.AdamW``.

    Attributes
    ----------
    flat, grad, m, v : Tensor, shape (n_params,)
        Parameters, gradient, first and second moments.
    names : list of str
        Trainable parameter names in flat order (``model.named_parameters()`` order).

    Examples
    --------
    >>> net = torch.nn.Linear(3, 2)
    >>> opt = FlatAdamW(net, lr=0.1)
    >>> opt.flat.shape, net.weight.data_ptr() == opt.flat.data_ptr()
    (torch.Size([8]), True)
    """

    def __init__(self, model: torch.nn.Module, lr: float = 2e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0) -> None:
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        if not named:
            raise ValueError(f"The model {type(model).__name__} has no trainable parameters; "
                             "FlatAdamW needs at least one.")
        ref = named[0][1]
        mixed = [n for n, p in named if p.dtype != ref.dtype or p.device != ref.device]
        if mixed:
            raise ValueError(f"FlatAdamW needs every parameter on one dtype and device "
                             f"({ref.dtype}, {ref.device}); {mixed[0]!r} differs. Call "
                             "model.to(dtype, device) first.")
        self.lr, self.betas, self.eps, self.weight_decay = lr, betas, eps, weight_decay
        self.names = [n for n, _ in named]
        self.shapes = [p.shape for _, p in named]
        sizes = [p.numel() for _, p in named]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int).tolist()
        self._index = {n: i for i, n in enumerate(self.names)}
        total = self.offsets[-1]
        self.flat = torch.empty(total, dtype=ref.dtype, device=ref.device)
        for (_, p), a, b in zip(named, self.offsets[:-1], self.offsets[1:], strict=True):
            self.flat[a:b].copy_(p.detach().reshape(-1))
            p.data = self.flat[a:b].view(p.shape)  # the parameter now lives in the flat vector
        self.grad = torch.zeros_like(self.flat)
        self.m = torch.zeros_like(self.flat)
        self.v = torch.zeros_like(self.flat)
        self.t = 0

    def views(self, vec: torch.Tensor) -> dict[str, torch.Tensor]:
        """Parameter-shaped views of a flat vector, keyed by parameter name."""
        return {n: vec[a:b].view(s) for n, s, a, b in
                zip(self.names, self.shapes, self.offsets[:-1], self.offsets[1:], strict=True)}

    def flat_like(self, per_param: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Concatenate parameter-shaped tensors (missing names: zeros) in flat order.

        Raises
        ------
        KeyError
            For a name that is not a trainable parameter.
        """
        out = torch.zeros_like(self.flat)
        for name, t in per_param.items():
            if name not in self._index:
                raise KeyError(f"{name!r} is not a trainable parameter of the model; "
                               f"known: {', '.join(self.names)}.")
            a = self.offsets[self._index[name]]
            out[a:a + t.numel()] = t.reshape(-1)
        return out

    def moments(self) -> list[dict[str, torch.Tensor]]:
        """First and second moments as parameter-shaped views (to permute with the weights)."""
        return [self.views(self.m), self.views(self.v)]

    def step(self) -> None:
        """One AdamW update from ``self.grad``."""
        self.t += 1
        b1, b2 = self.betas
        bc1 = 1 - b1 ** self.t
        bc2 = 1 - b2 ** self.t
        if self.weight_decay:
            self.flat.mul_(1 - self.lr * self.weight_decay)
        self.m.lerp_(self.grad, 1 - b1)
        self.v.mul_(b2).addcmul_(self.grad, self.grad, value=1 - b2)
        denom = self.v.sqrt().mul_(1 / math.sqrt(bc2)).add_(self.eps)
        self.flat.addcdiv_(self.m, denom, value=-self.lr / bc1)

    def state_dict(self) -> dict[str, Any]:
        """Moments and step count (the parameters are saved with the model)."""
        return {"m": self.m.clone(), "v": self.v.clone(), "t": self.t}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`'s moments and step count."""
        self.m.copy_(state["m"])
        self.v.copy_(state["v"])
        self.t = int(state["t"])
