"""Training steps: one optimisation step of BIMT on one batch.

Both engines train on a :class:`traincore.FlatAdamW` (all parameters in one flat vector)
and add the connection-cost gradient ``lam * C * sign(w)`` through :class:`Penalty`, with
``C`` the per-connection cost computed once (swaps move weights between fixed positions, so
``C`` never changes):

- :class:`AnalyticEngine`: a hand-written forward and backward of a :class:`bimt.BioMLP`
  (token embeddings included), several times faster than autograd on the paper's small
  networks. Checked against autograd in the tests.
- :class:`AutogradEngine`: any spatial network (transformers, recurrent nets, networks from
  :func:`bimt.from_torch`): forward, the loss, ``torch.autograd.grad``.

``engine.step(x, y, lam, bias_on, metrics)`` trains on one batch and returns the step's
metrics (``train_loss``, ``connection_cost``) when ``metrics`` is true; ``engine.resync()``
must follow every swap pass (the analytic engine caches data in slot order).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import nn

from traincore import FlatAdamW

from .cost import bias_costs, cost_matrices
from .data import Loss
from .layers import ACTIVATIONS
from .model import BioMLP
from .spatial import Spatial, describe

__all__ = ["Penalty", "AnalyticEngine", "AutogradEngine", "ENGINE_CLASSES"]


class Penalty:
    """The connection cost on the flat parameter vector of ``opt``.

    Parameters
    ----------
    model : spatial network whose parameters live in ``opt.flat``
    opt : traincore.FlatAdamW
    weight_factor, l0, last_layer
        As :func:`bimt.connection_cost`.

    Attributes
    ----------
    c, c_bias : Tensor, shape (n_params,)
        Cost per unit |parameter|: weights only, and weights plus biases.
    """

    def __init__(self, model: nn.Module, opt: FlatAdamW, weight_factor: float = 1.0,
                 l0: float = 0.1, last_layer: bool = True, spec: Spatial | None = None) -> None:
        spec = describe(model) if spec is None else spec
        mats = cost_matrices(model, weight_factor, l0, last_layer, spec)
        self.opt = opt
        self.c = opt.flat_like(mats)
        self.c_bias = opt.flat_like({**mats, **bias_costs(model, l0, last_layer, spec)})

    def value(self) -> torch.Tensor:
        """The connection cost without biases (as :func:`bimt.connection_cost`), shape ()."""
        return (self.opt.flat.abs() * self.c).sum()

    def add_gradient(self, lam: float, bias_on: float) -> None:
        """``opt.grad += lam * C * sign(w)``, biases included when ``bias_on``."""
        c = self.c_bias if bias_on else self.c
        self.opt.grad.addcmul_(self.opt.flat.sign(), c, value=lam)  # d(lam * cost)/d theta


class AutogradEngine:
    """One BIMT step of any spatial network by autograd.

    Examples
    --------
    >>> from traincore import FlatAdamW
    >>> model = BioMLP([2, 4, 1], seed=0)
    >>> opt = FlatAdamW(model)
    >>> engine = AutogradEngine(model, opt, Loss("regression"), Penalty(model, opt))
    >>> sorted(engine.step(torch.ones(3, 2), torch.zeros(3, 1), 1e-3, 0.0, True))
    ['connection_cost', 'train_loss']
    """

    name = "autograd"

    def __init__(self, model: nn.Module, opt: FlatAdamW, loss: Loss, penalty: Penalty) -> None:
        self.model, self.opt, self.loss, self.penalty = model, opt, loss, penalty
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        views = opt.views(opt.grad)
        self.params = [p for _, p in named]
        self.grads = [views[n] for n, _ in named]

    def resync(self) -> None:
        """Nothing is cached: the model itself is always current."""

    def step(self, x: torch.Tensor, y: torch.Tensor, lam: float, bias_on: float,
             metrics: bool) -> dict[str, Any]:
        """Train on one batch ``(x, y)``; the step's metrics when ``metrics``."""
        loss = self.loss(self.model(x), y)
        grads = torch.autograd.grad(loss, self.params, allow_unused=True)
        if any(g is None for g in grads):  # a parameter the loss does not reach
            grads = tuple(torch.zeros_like(p) if g is None else g
                          for p, g in zip(self.params, grads, strict=True))
        with torch.no_grad():
            torch._foreach_copy_(self.grads, grads)
            out = ({"train_loss": loss.detach(), "connection_cost": self.penalty.value()}
                   if metrics else {})
            self.penalty.add_gradient(lam, bias_on)
            self.opt.step()
        return out


class _Slots(NamedTuple):
    """A batch in the network's slot order (inputs and outputs as swaps left them)."""

    x: torch.Tensor | None        # (n, widths[0]) inputs in slot order (no embedding)
    index: torch.Tensor | None    # embedded column feeding each input slot
    inverse: torch.Tensor | None  # its inverse permutation
    value_target: torch.Tensor    # what the loss value compares with (slot order)
    grad_target: torch.Tensor     # what the loss gradient compares with (slot order)


class AnalyticEngine:
    """One BIMT step of a :class:`bimt.BioMLP` with a hand-written backward pass.

    Same arithmetic as :class:`AutogradEngine` up to float rounding (tested); about 3x
    faster on the paper's networks because nothing is recorded for autograd. A custom loss
    is differentiated by autograd on the outputs alone.
    """

    name = "analytic"

    def __init__(self, model: BioMLP, opt: FlatAdamW, loss: Loss, penalty: Penalty) -> None:
        if not isinstance(model, BioMLP):
            raise TypeError(f"The analytic engine trains a bimt.BioMLP only; got "
                            f"{type(model).__name__}. Use engine='autograd' (or 'auto').")
        self.model, self.opt, self.loss, self.penalty = model, opt, loss, penalty
        self.weights = [layer.weight for layer in model.layers]
        self.weights_t = [w.t() for w in self.weights]  # views: stay current through swaps
        self.biases = [layer.bias for layer in model.layers]
        views = opt.views(opt.grad)
        self.gw = [views[f"layers.{k}.weight"] for k in range(model.depth)]
        self.gb = [views.get(f"layers.{k}.bias") for k in range(model.depth)]
        self.act, self.act_bwd = ACTIVATIONS[model.activation]
        self.emb = model.embedding
        self.g_emb = views["embedding.weight"] if self.emb is not None else None
        self._cache: tuple[torch.Tensor, torch.Tensor, _Slots] | None = None

    def resync(self) -> None:
        """Forget data cached in slot order (call after swaps moved inputs or outputs)."""
        self._cache = None

    def _slots(self, x: torch.Tensor, y: torch.Tensor) -> _Slots:
        if self._cache is not None and self._cache[0] is x and self._cache[1] is y:
            return self._cache[2]  # the full batch: reordered once per swap pass
        model = self.model
        xs = index = inverse = None
        if self.emb is None:
            xs = model.embed(x).contiguous()
        else:  # tokens: embedded every step, gradient scattered back to the table
            index = model.input_index()
            inverse = torch.argsort(index)
        if self.loss.kind == "classification":
            grad_t = self.loss.gradient_target(y, model.widths[-1])[:, model.out_perm]
            slots = _Slots(xs, index, inverse, model.output_index()[y], grad_t.contiguous())
        elif self.loss.kind == "regression":
            target = y[:, model.out_perm].contiguous()
            slots = _Slots(xs, index, inverse, target, target)
        else:  # custom: the loss sees outputs in the original order
            slots = _Slots(xs, index, inverse, model.output_index(), model.out_perm)
        self._cache = (x, y, slots)
        return slots

    def _output_gradient(self, out: torch.Tensor, y: torch.Tensor, s: _Slots,
                         metrics: bool) -> tuple[torch.Tensor, dict[str, Any]]:
        """``d loss / d out`` (slot order) and the metrics; ``out`` may be overwritten."""
        if self.loss.kind == "custom":
            value, g = self.loss.custom_gradient(out[:, s.value_target], y)
            g = g[:, s.grad_target]  # original order -> slot order
        else:
            value = self.loss(out, s.value_target) if metrics else None
            g = self.loss.gradient(out, s.grad_target)
        found = {"train_loss": value, "connection_cost": self.penalty.value()} if metrics else {}
        return g, found

    def step(self, x: torch.Tensor, y: torch.Tensor, lam: float, bias_on: float,
             metrics: bool) -> dict[str, Any]:
        """Train on one batch ``(x, y)``; the step's metrics when ``metrics``."""
        w, wt, b, act = self.weights, self.weights_t, self.biases, self.act
        last = len(w) - 1
        with torch.no_grad():
            s = self._slots(x, y)
            if self.emb is None:
                h = s.x
            else:
                h = self.emb.weight[x].reshape(len(x), -1)[:, s.index]  # (n, widths[0])
            hs, zs = [h], []
            for k in range(last + 1):  # forward, keeping what the backward needs
                z = torch.addmm(b[k], h, wt[k]) if b[k] is not None else h @ wt[k]
                if k < last:
                    zs.append(z)
                    h = act(z)
                    hs.append(h)
            g, found = self._output_gradient(z, y, s, metrics)  # z: (n, n_out), slot order
            for k in range(last, -1, -1):  # backward
                torch.mm(g.t(), hs[k], out=self.gw[k])
                if self.gb[k] is not None:
                    torch.sum(g, 0, out=self.gb[k])
                if k:
                    g = self.act_bwd(g.mm(w[k]), zs[k - 1])
            if self.emb is not None:  # d loss / d table: input slots -> token columns -> rows
                g_in = g.mm(w[0])[:, s.inverse].reshape(-1, self.emb.embedding_dim)
                self.g_emb.zero_().index_add_(0, x.reshape(-1), g_in)  # type: ignore[union-attr]
            self.penalty.add_gradient(lam, bias_on)
            self.opt.step()
        return found


#: name -> engine class (the BIMTConfig 'engine' field; "auto" picks analytic for BioMLP).
ENGINE_CLASSES = {"analytic": AnalyticEngine, "autograd": AutogradEngine}
