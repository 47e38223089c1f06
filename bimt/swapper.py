"""BIMT in your own training loop: swap passes on a schedule, with the optimizer kept in step.

.. code-block:: python

    swapper = bimt.Swapper(model, optimizer, every=200)
    for step, (x, y) in enumerate(batches):
        loss = loss_fn(model(x), y) + lam * bimt.connection_cost(model)
        optimizer.zero_grad(); loss.backward(); optimizer.step()
        swapper.step(step)          # a swap pass after steps 199, 399, ...

Each pass moves the most connected neurons of every group to the slot that lowers the
connection cost most, permuting the weights, biases, norms, input/output order and the
optimizer's per-parameter state together, so ``model(x)`` and the course of training are
unchanged by it (only the cost moves). :func:`bimt.train` uses the same class.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from .cost import cost_matrices
from .spatial import describe
from .swap import Moments, SwapReport, swap_pass, torch_optimizer_moments

__all__ = ["Swapper", "relocate", "optimizer_moments"]


def optimizer_moments(model: nn.Module, optimizer: Any) -> Sequence[Moments]:
    """The optimizer state a swap must permute: none for ``None``, the views of an optimizer
    with a ``moments()`` method (:class:`traincore.FlatAdamW`), or a ``torch.optim``
    optimizer's parameter-shaped state."""
    if optimizer is None:
        return ()
    if isinstance(optimizer, torch.optim.Optimizer):
        return torch_optimizer_moments(model, optimizer)
    if callable(getattr(optimizer, "moments", None)):
        return optimizer.moments()
    raise TypeError(f"The 'optimizer' must be a torch.optim optimizer (Adam, AdamW, SGD), a "
                    f"traincore.FlatAdamW, or None; got {type(optimizer).__name__}.")


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"The '{name}' must be a positive integer; got {value!r}.")
    return value


class Swapper:
    """Run the paper's swap passes every ``every`` steps of your own loop.

    Parameters
    ----------
    model : spatial network
        :class:`bimt.BioMLP` or any module with a ``spatial()`` description.
    optimizer : torch.optim.Optimizer, traincore.FlatAdamW or None
        Its per-parameter state (Adam's moments, SGD's momentum) moves with the weights.
    every : int
        A pass after every ``every``-th step (paper: 200).
    top_k : int
        Neurons tried per group and pass, the most connected first (paper: 5).
    io : bool
        Inputs and outputs move too (their order is tracked in the model).
    weight_factor, l0, last_layer
        The connection cost the passes lower (as :func:`bimt.connection_cost`).

    Attributes
    ----------
    swaps : int
        Swaps made so far.
    seconds : float
        Time spent in passes.

    Examples
    --------
    >>> from bimt.model import BioMLP
    >>> model = BioMLP([3, 8, 2], seed=0)
    >>> opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    >>> swapper = Swapper(model, opt, every=2)
    >>> swapper.step(0) is None, swapper.step(1) is not None
    (True, True)
    """

    def __init__(self, model: nn.Module, optimizer: Any = None, every: int = 200, *,
                 top_k: int = 5, io: bool = True, weight_factor: float = 1.0, l0: float = 0.1,
                 last_layer: bool = True) -> None:
        self.spec = describe(model)
        optimizer_moments(model, optimizer)  # refuse a wrong kind now, not at the first pass
        self.model, self.optimizer = model, optimizer
        self.every = _positive_int("every", every)
        self.top_k = _positive_int("top_k", top_k)
        if not isinstance(io, bool):
            raise TypeError(f"The 'io' switch must be True or False; got {io!r}.")
        self.groups = [g.name for g in self.spec.groups
                       if io or g.kind not in ("input", "output")]
        self._cost = (weight_factor, l0, last_layer)
        self._mats = cost_matrices(model, *self._cost, spec=self.spec)
        self.swaps, self.seconds = 0, 0.0

    def _current_mats(self) -> dict[str, torch.Tensor]:
        # positions never move, so the matrices only change when the model changes device
        first = self.model.get_parameter(self.spec.wires[0].weight) if self.spec.wires else None
        ref = next(iter(self._mats.values()), None)
        if first is not None and ref is not None and (ref.device, ref.dtype) != (first.device,
                                                                                  first.dtype):
            self.spec = describe(self.model)
            self._mats = cost_matrices(self.model, *self._cost, spec=self.spec)
        return self._mats

    def due(self, step: int) -> bool:
        """Whether a pass follows step ``step`` (0-based): after steps every-1, 2 every-1..."""
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise ValueError(f"The 'step' must be the 0-based number of the step just taken; "
                             f"got {step!r}.")
        return (step + 1) % self.every == 0

    def step(self, step: int) -> SwapReport | None:
        """Call once per training step, after ``optimizer.step()``; a pass when due.

        Returns
        -------
        SwapReport or None
            None when no pass was due.
        """
        return self.relocate() if self.due(step) else None

    def relocate(self) -> SwapReport:
        """One swap pass now."""
        t0 = time.perf_counter()
        report = swap_pass(self.model, self._current_mats(), self.top_k, self.groups,
                           optimizer_moments(self.model, self.optimizer), spec=self.spec)
        self.swaps += report.swaps
        self.seconds += time.perf_counter() - t0
        return report

    def __repr__(self) -> str:
        return (f"Swapper(every={self.every}, top_k={self.top_k}, groups={self.groups}, "
                f"swaps={self.swaps})")


def relocate(model: nn.Module, optimizer: Any = None, *, top_k: int = 5, io: bool = True,
             weight_factor: float = 1.0, l0: float = 0.1, last_layer: bool = True
             ) -> SwapReport:
    """One swap pass now (see :class:`Swapper` for the parameters).

    Returns
    -------
    SwapReport
        ``swaps``, ``cost_change`` (never positive) and the ``pairs`` swapped.

    Examples
    --------
    >>> from bimt.model import BioMLP
    >>> model = BioMLP([4, 10, 2], seed=0)
    >>> x = torch.randn(3, 4)
    >>> before = model(x)
    >>> report = relocate(model)
    >>> report.cost_change <= 0, bool(torch.allclose(model(x), before, atol=1e-6))
    (True, True)
    """
    return Swapper(model, optimizer, 1, top_k=top_k, io=io, weight_factor=weight_factor,
                   l0=l0, last_layer=last_layer).relocate()
