"""Training a batched :class:`~bimt.ensemble.Ensemble`: the step, the swap pass, the results.

:func:`fit_ensemble` runs the members' steps on :func:`traincore.fit` exactly as
:func:`bimt.train` runs one network's: the same lambda and bias schedules, a swap pass
after every ``swap_every``-th step, the test loss after the last pass. The step is the
analytic step of :class:`bimt.AnalyticEngine` with every product batched over members
(``torch.baddbmm`` / ``torch.bmm``), the penalty gradient and AdamW update one vector
operation each over all members; where :mod:`bimt.ensemble_native` applies (SiLU networks on
the CPU with a C compiler) the same step is two compiled calls instead. The swap pass
searches every member at once: the placement-cost matrices of all members are one batched
product, and each of the ``top_k`` candidate rounds picks, per member, the best partner by
one ``argmin`` over a batch; the swaps chosen in a group are composed into one permutation
per member and applied once.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

import traincore

from .config import BIMTConfig, bias_schedule, lambda_schedule
from .ensemble import Ensemble
from .ensemble_native import NativeGradient

__all__ = ["EnsembleResult", "fit_ensemble", "swap_pass_batched", "connection_costs",
           "lambda_factor"]

KINDS = ("regression", "classification")


@dataclass
class EnsembleResult:
    """Per-member results of :func:`fit_ensemble` (lists of length M).

    ``train_loss`` and ``connection_cost`` are those of the last step (before its update),
    as :class:`bimt.TrainingHistory` reports them; ``test_loss`` and ``test_accuracy``
    (classification only) are measured once at the end (None without test data).
    """

    train_loss: list[float]
    connection_cost: list[float]
    test_loss: list[float] | None
    test_accuracy: list[float] | None
    swaps: list[int]
    seconds: float
    swap_seconds: float


def lambda_factor(config: BIMTConfig) -> Callable[[int], float]:
    """``step -> factor`` of the lambda schedule (the schedule with ``lam = 1``)."""
    return lambda_schedule(dataclasses.replace(config, lam=1.0))


def connection_costs(ens: Ensemble) -> torch.Tensor:
    """Each member's connection cost without biases (as :func:`bimt.connection_cost`),
    shape (M,)."""
    weighted = ens.views(ens.flat.abs() * ens.c)
    return sum(v.reshape(ens.size, -1).sum(1) for v in weighted.values())  # type: ignore[return-value]


# -- the swap pass -------------------------------------------------------------------------
def _placement(ens: Ensemble, gi: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Placement costs ``M[m, a, p]`` (M, n, n) and connectivity (M, n) of group ``gi``."""
    depth = len(ens.weights)
    mat = ens.flat.new_zeros(ens.size, n, n)
    score = ens.flat.new_zeros(ens.size, n)
    if gi > 0:  # the wire that writes the group: its rows
        a = ens.weights[gi - 1].abs()  # (M, n, n_prev)
        mat += a @ ens.mats[f"layers.{gi - 1}.weight"].T  # one product for all members
        score = score + a.sum(2)
    if gi < depth:  # the wire that reads it: its columns, every fold copy as extra rows
        w = ens.weights[gi].abs()  # (M, n_next, fold * n)
        b = w.reshape(ens.size, -1, n).transpose(1, 2)  # (M, n, n_next * fold)
        mat += b @ ens.mats[f"layers.{gi}.weight"].reshape(-1, n)
        score = score + w.reshape(ens.size, -1, n).sum(1)
    return mat, score


def _apply(ens: Ensemble, stores: list[dict[str, torch.Tensor]], gi: int, p: torch.Tensor
           ) -> None:
    """Move neuron contents of group ``gi``: slot ``s`` of member ``m`` gets ``p[m, s]``."""
    depth = len(ens.weights)
    size, n = p.shape
    if gi > 0:
        rows = p[:, :, None]
        for st in stores:
            w = st[f"layers.{gi - 1}.weight"]
            w.copy_(w.gather(1, rows.expand_as(w)))
            bias = st.get(f"layers.{gi - 1}.bias")
            if bias is not None:
                bias.copy_(bias.gather(1, p))
    if gi < depth:
        fold = ens.in_fold if gi == 0 else 1
        base = torch.arange(fold, device=p.device)[None, :, None] * n
        cols = (base + p[:, None, :]).reshape(size, 1, fold * n)
        for st in stores:
            w = st[f"layers.{gi}.weight"]
            w.copy_(w.gather(2, cols.expand_as(w)))
    if gi == 0:
        ens.in_perm = ens.in_perm.gather(1, p)
    if gi == depth:
        ens.out_perm = ens.out_perm.gather(1, p)


def swap_pass_batched(ens: Ensemble, top_k: int = 5, io: bool = True, moments: bool = True,
                      tol: float = 1e-7) -> torch.Tensor:
    """One swap pass of every member (the decisions of :func:`bimt.swap.swap_pass`).

    Returns
    -------
    Tensor, shape (M,)
        Swaps made per member.
    """
    made = torch.zeros(ens.size, dtype=torch.long, device=ens.flat.device)
    stores = [ens.views(ens.flat)] + ([ens.views(ens.m1), ens.views(ens.m2)] if moments else [])
    ar = torch.arange(ens.size, device=ens.flat.device)
    with torch.no_grad():
        for gi, g in enumerate(ens.spec.groups):
            if (not io and g.kind in ("input", "output")) or g.n < 2 or not g.movable:
                continue
            n = g.n
            mat, score = _placement(ens, gi, n)
            order = torch.argsort(score, dim=1, descending=True)[:, :top_k]
            scale = mat.diagonal(dim1=1, dim2=2).sum(1) + 1e-30
            ident = torch.arange(n, device=ar.device).expand(ens.size, n)
            p = ident.clone()
            for r in range(order.shape[1]):
                i = order[:, r]
                diag = mat.diagonal(dim1=1, dim2=2)
                delta = mat[ar, i, :] + mat[ar, :, i] - mat[ar, i, i][:, None] - diag
                j = delta.argmin(1)
                do = delta[ar, j] < -tol * scale
                if not bool(do.any()):
                    continue
                q = ident.clone()  # this round's exchange of slots i and j, where chosen
                q[ar, i] = torch.where(do, j, i)
                q[ar, j] = torch.where(do, i, j)
                mat = mat.gather(1, q[:, :, None].expand(-1, -1, n))  # neuron contents moved
                p = p.gather(1, q)
                made += do
            if bool((p != ident).any()):
                _apply(ens, stores, gi, p)
    return made


# -- the step --------------------------------------------------------------------------------
class _Slots:
    """Each member's data in its slot order, features by points; rebuilt after swap passes.

    The step works on activations shaped (M, features, points): every product then has the
    points (the longest dimension) as its contiguous output dimension, which batched GEMM
    runs faster on these narrow layers than the (M, points, features) layout.
    """

    def __init__(self, ens: Ensemble, x: torch.Tensor, y: torch.Tensor, kind: str) -> None:
        self.x = ens._gather_inputs(x).transpose(1, 2).contiguous()  # (M, widths[0], n)
        self.xt = self.x.transpose(1, 2)
        # d loss / d z = scale (z - target): 2 / (n n_out) for the mean squared error, 1 / n
        # for the mean cross-entropy
        self.scale = (2.0 / (y.shape[1] * y.shape[2]) if kind == "regression" else
                      1.0 / y.shape[1])
        if kind == "regression":  # targets in output-slot order, (M, n_out, n)
            self.value = self.grad = y.gather(2, ens.out_perm[:, None, :].expand_as(y)
                                              ).transpose(1, 2).contiguous()
        else:  # labels as slots (M, n); the one-hot gradient target (M, n_out, n)
            self.value = ens._output_index().gather(1, y)
            self.grad = F.one_hot(self.value, ens.out_perm.shape[1]).to(x.dtype
                                                                        ).transpose(1, 2)


def _loss_values(z: torch.Tensor, target: torch.Tensor, kind: str) -> torch.Tensor:
    """Each member's mean loss, shape (M,)."""
    if kind == "regression":
        return (z - target).pow(2).mean((1, 2))
    return F.cross_entropy(z, target, reduction="none").mean(1)  # z: (M, classes, n)


def _adam(ens: Ensemble, work: _Work) -> None:
    """The AdamW update of :class:`traincore.FlatAdamW`, member-wise learning rates."""
    cfg = ens.config
    ens.t += 1
    b1, b2 = cfg.betas
    if work.fused:  # one learning rate and weight decay: torch's fused AdamW, one pass
        work.step.fill_(ens.t)
        torch._fused_adamw_([ens.flat], [ens.grad], [ens.m1], [ens.m2], [], [work.step],
                            lr=ens.lr_scalar, beta1=b1, beta2=b2,
                            weight_decay=ens.wd_scalar, eps=cfg.eps, amsgrad=False,
                            maximize=False)
        return
    bc1, bc2 = 1 - b1 ** ens.t, 1 - b2 ** ens.t
    if ens.decay is not None:
        ens.flat.mul_(ens.decay)
    ens.m1.lerp_(ens.grad, 1 - b1)
    ens.m2.mul_(b2).addcmul_(ens.grad, ens.grad, value=1 - b2)
    denom = torch.sqrt(ens.m2, out=work.denom).mul_(1 / math.sqrt(bc2)).add_(cfg.eps)
    if ens.lr_scalar is not None:
        ens.flat.addcdiv_(ens.m1, denom, value=-ens.lr_scalar / bc1)
    else:  # (-lr / bc1) * m / denom, the same rounding as the scalar form
        ens.flat.addcdiv_(torch.div(ens.lr, -bc1, out=work.flat).mul_(ens.m1), denom)


class _Work:
    """The buffers of one step, allocated once for a whole run.

    Every product and elementwise pass of :func:`_step` writes into these instead of a
    fresh tensor: at sweep sizes a step's tensors are hundreds of kB each, and allocating
    and faulting in a new one per operation cost about a third of the step.
    """

    def __init__(self, ens: Ensemble, points: int) -> None:
        new = ens.flat.new_empty
        outs = [w.shape[1] for w in ens.weights]
        self.z = [new(ens.size, o, points) for o in outs]      # pre-activations, outputs
        self.g = [new(ens.size, o, points) for o in outs]      # d loss / d z
        hidden = outs[:-1]
        self.s = [new(ens.size, o, points) for o in hidden]    # sigmoid(z) of SiLU layers
        self.d = [new(ens.size, o, points) for o in hidden]    # SiLU's derivative
        self.flat = torch.empty_like(ens.flat)                 # the sign; lr / bc1
        self.denom = torch.empty_like(ens.flat)
        # torch's fused AdamW (the same update in one pass over the moments) where every
        # member has the same learning rate and weight decay and this torch has it
        self.fused = (ens.lr_scalar is not None and ens.wd_scalar is not None and
                      hasattr(torch, "_fused_adamw_"))
        self.step = ens.flat.new_zeros(())
        # views made once (each costs a few µs per step otherwise): biases as columns, the
        # SiLU outputs (computed in place in z) transposed for the weight gradients
        self.bias = [None if b is None else b[:, :, None] for b in ens.biases]
        self.zt = [z.transpose(1, 2) for z in self.z]


def _forward(ens: Ensemble, s: _Slots, work: _Work) -> tuple[torch.Tensor, list[Any]]:
    """Outputs (M, n_out, n) in slot order and, per hidden layer, ``(h, h transposed, s or
    z)``: what the backward needs."""
    last = len(ens.weights) - 1
    h, saved = s.x, []
    for k in range(last + 1):
        b, z = work.bias[k], work.z[k]
        if b is not None:  # (M, out, n)
            torch.baddbmm(b, ens.weights[k], h, out=z)
        else:
            torch.bmm(ens.weights[k], h, out=z)
        if k == last:
            return z, saved
        if ens.activation == "silu":  # one exponential: silu(z) = z s, s = sigmoid(z)
            sig = torch.sigmoid(z, out=work.s[k])
            h = z.mul_(sig)
            saved.append((h, work.zt[k], sig))
        else:
            h = ens.act(z)
            saved.append((h, h.transpose(1, 2), z))
    raise AssertionError("unreachable")  # pragma: no cover


def _hidden_gradient(ens: Ensemble, g: torch.Tensor, h: torch.Tensor, other: torch.Tensor,
                     d: torch.Tensor) -> torch.Tensor:
    """d loss / d z of a hidden layer from d loss / d h (``g``, overwritten; ``d`` a buffer)."""
    if ens.activation == "silu":  # silu'(z) = s (1 + z (1 - s)) = s + h - h s
        return g.mul_(torch.add(other, h, out=d).addcmul_(h, other, value=-1))
    return ens.act_bwd(g, other)


def _step(ens: Ensemble, s: _Slots, work: _Work, kind: str, factor: float, bias_on: bool,
          metrics: bool, native: NativeGradient | None = None) -> dict[str, torch.Tensor]:
    """One training step of every member; per-member metrics when ``metrics``. With
    ``native`` (bound to ``s``'s data), unless ``metrics``, the step is its two C calls: the
    gradient, then the penalty and the AdamW update."""
    if native is not None and not metrics:
        native()
        native.update(factor, bias_on)
        return {}
    z, saved = _forward(ens, s, work)
    found = {}
    if metrics:
        found = {"train_loss": _loss_values(z, s.value, kind),
                 "connection_cost": connection_costs(ens)}
    if kind == "regression":  # d loss / d z, as bimt.Loss.gradient, per member
        g = z.sub_(s.grad).mul_(s.scale)
    else:
        g = torch.softmax(z, 1, out=work.g[-1]).sub_(s.grad).mul_(s.scale)
    for k in range(len(ens.weights) - 1, -1, -1):  # backward, into the flat gradient
        torch.bmm(g, saved[k - 1][1] if k else s.xt, out=ens.gw[k])  # (M,out,n) @ (M,n,in)
        if ens.gb[k] is not None:
            torch.sum(g, 2, out=ens.gb[k])
        if k:
            h, _, other = saved[k - 1]
            g = _hidden_gradient(ens, torch.bmm(ens.weights_t[k], g, out=work.g[k - 1]),
                                 h, other, work.d[k - 1])
    _update(ens, work, factor, bias_on)
    return found


def _update(ens: Ensemble, work: _Work, factor: float, bias_on: bool) -> None:
    """The penalty's gradient added to the loss's, then the AdamW update."""
    ens.grad.addcmul_(torch.sign(ens.flat, out=work.flat), ens.penalty_weights(factor, bias_on))
    _adam(ens, work)


def _check_data(ens: Ensemble, x: Any, y: Any, kind: str, name: str
                ) -> tuple[torch.Tensor, torch.Tensor]:
    widths = ens.model_config["widths"]
    n_in = widths[0] if isinstance(widths[0], int) else widths[0][0] * widths[0][1]
    n_out = widths[-1] if isinstance(widths[-1], int) else widths[-1][0] * widths[-1][1]
    dt, dev = ens.flat.dtype, ens.flat.device
    x = torch.as_tensor(x)
    if x.ndim != 3 or x.shape[0] != ens.size or x.shape[2] != n_in:
        raise ValueError(f"The 'x_{name}' of an ensemble must have shape (members={ens.size}, "
                         f"points, {n_in}); got {tuple(x.shape)}.")
    y = torch.as_tensor(y)
    if kind == "regression":
        if tuple(y.shape) != (ens.size, x.shape[1], n_out):
            raise ValueError(f"The 'y_{name}' must have shape ({ens.size}, {x.shape[1]}, "
                             f"{n_out}) for regression; got {tuple(y.shape)}.")
        y = y.to(dev, dt)
    else:
        if tuple(y.shape) != (ens.size, x.shape[1]) or y.dtype.is_floating_point:
            raise ValueError(f"The 'y_{name}' must be integer labels of shape ({ens.size}, "
                             f"{x.shape[1]}) for classification; got {tuple(y.shape)} "
                             f"{y.dtype}.")
        y = y.to(dev, torch.long)
    return x.to(dev, dt), y


def _evaluate(ens: Ensemble, x: torch.Tensor, y: torch.Tensor, kind: str
              ) -> tuple[list[float], list[float] | None]:
    out = ens.forward(x)  # original output order, as model(x)
    if kind == "regression":
        return (out - y).pow(2).mean((1, 2)).tolist(), None
    loss = _loss_values(out.transpose(1, 2), y, kind).tolist()
    return loss, (out.argmax(-1) == y).float().mean(1).tolist()


def fit_ensemble(ens: Ensemble, x: Any, y: Any, x_test: Any = None, y_test: Any = None,
                 kind: str = "regression", progress: bool | None = False) -> EnsembleResult:
    """Train every member for ``config.steps`` full-batch steps, as :func:`bimt.train` would.

    Parameters
    ----------
    ens : Ensemble
    x, y : arrays
        Each member's training data (inputs and targets in the original order), shapes
        ``(M, n, widths[0])`` and ``(M, n, widths[-1])`` (or ``(M, n)`` labels).
    x_test, y_test : arrays, optional
        Each member's test data, evaluated once at the end.
    kind : "regression" or "classification"
        Mean squared error or cross-entropy (:class:`bimt.Loss`).
    progress : bool, optional
        A progress bar (None: only on a terminal).

    Returns
    -------
    EnsembleResult

    Examples
    --------
    >>> from bimt.model import BioMLP
    >>> ens = Ensemble([BioMLP([2, 6, 1], seed=s) for s in range(3)],
    ...                BIMTConfig(steps=20, swap_every=10))
    >>> x = torch.rand(3, 16, 2); y = x[..., :1] ** 2
    >>> len(fit_ensemble(ens, x, y).train_loss)
    3
    """
    traincore.check_choice(kind, "kind", KINDS)
    cfg = ens.config
    x, y = _check_data(ens, x, y, kind, "train")
    test = None if x_test is None else _check_data(ens, x_test, y_test, kind, "test")
    traincore.check_memory(8 * x.element_size() * ens.size * x.shape[1] *
                           sum(ens.weights[k].shape[1] for k in range(len(ens.weights))),
                           f"Training {ens.size} networks on {x.shape[1]} points",
                           "train fewer members per chunk")
    state: dict[str, Any] = {"slots": None, "swap_seconds": 0.0, "last": {}}
    work = _Work(ens, x.shape[1])
    native = NativeGradient.create(ens, kind)

    def step(i: int, values: dict[str, float]) -> dict[str, Any]:
        if state["slots"] is None:
            state["slots"] = s = _Slots(ens, x, y, kind)
            if native is not None:
                native.bind(s.x, s.grad if kind == "regression" else s.value, s.scale)
        last = i + 1 == cfg.steps
        found = _step(ens, state["slots"], work, kind, values["lam"], values["bias_cost"] > 0,
                      last, native)
        if last:
            state["last"] = found
        return {}

    def swap(loop: traincore.Loop) -> None:
        t0 = time.perf_counter()
        ens.swaps += swap_pass_batched(ens, cfg.swap_top_k, cfg.swap_io, cfg.swap_moments)
        state["slots"] = None  # inputs and outputs may have moved
        state["swap_seconds"] += time.perf_counter() - t0

    with torch.no_grad():
        hist = traincore.fit(step, cfg.steps, schedules={"lam": lambda_factor(cfg),
                                                         "bias_cost": bias_schedule(cfg)},
                             callbacks=[traincore.Every(cfg.swap_every, swap)], log_every=0,
                             progress=progress, desc=f"ensemble of {ens.size}")
        loss = acc = None
        if test is not None:
            loss, acc = _evaluate(ens, *test, kind)
    last = state["last"]
    nan = [math.nan] * ens.size
    return EnsembleResult(
        train_loss=last["train_loss"].tolist() if last else nan,
        connection_cost=last["connection_cost"].tolist() if last else nan,
        test_loss=loss, test_accuracy=acc, swaps=ens.swaps.tolist(), seconds=hist.seconds,
        swap_seconds=state["swap_seconds"])
