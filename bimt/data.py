"""Training data for BIMT: input checks and the one definition of the loss.

:class:`Loss` is the only place where a loss is written: mean squared error for regression,
cross-entropy for classification, or a callable ``loss(pred, y) -> scalar`` the user
passes. The training engines, the test evaluation and :func:`bimt.prune` all call it.
:func:`prepare_data` checks one data set against a model and converts it (one clear error
per problem, naming the argument).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .config import TASK_KINDS
from .model import BioMLP

__all__ = ["Loss", "as_tensor", "prepare_data", "check_batch", "make_loss"]

#: A user loss: predictions and targets of one batch -> scalar tensor.
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def as_tensor(name: str, value: Any) -> torch.Tensor:
    """``value`` as a detached tensor (numpy arrays and nested lists are converted)."""
    if isinstance(value, torch.Tensor):
        return value.detach()
    if isinstance(value, (np.ndarray, list, tuple)):
        try:
            return torch.as_tensor(np.asarray(value))
        except (TypeError, ValueError):
            pass
    raise TypeError(f"The '{name}' must be a torch tensor or numpy array; "
                    f"got {type(value).__name__}.")


class Loss:
    """The training loss: ``"regression"`` (MSE), ``"classification"`` (cross-entropy over
    the last dimension) or ``"custom"`` (a callable).

    Parameters
    ----------
    kind : str
    fn : callable ``(pred, y) -> scalar tensor``, only for ``"custom"``

    Examples
    --------
    >>> Loss("regression")(torch.zeros(2, 1), torch.ones(2, 1))
    tensor(1.)
    """

    def __init__(self, kind: str, fn: LossFn | None = None) -> None:
        if kind not in ("regression", "classification", "custom"):
            raise ValueError(f"The loss kind must be 'regression', 'classification' or "
                             f"'custom'; got {kind!r}.")
        if (kind == "custom") != (fn is not None):
            raise ValueError("A 'custom' loss needs its function, and only it takes one.")
        self.kind, self.fn = kind, fn

    @property
    def name(self) -> str:
        """``"mse"``, ``"cross-entropy"`` or ``"custom:<function name>"`` (saved in runs)."""
        if self.fn is not None:
            return f"custom:{getattr(self.fn, '__qualname__', type(self.fn).__name__)}"
        return "mse" if self.kind == "regression" else "cross-entropy"

    def __call__(self, pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The loss of predictions ``pred`` against targets ``y`` (a scalar tensor)."""
        if self.kind == "regression":
            return (pred - y).pow(2).mean()
        if self.kind == "classification":
            if pred.ndim == 2:
                return F.cross_entropy(pred, y)
            return F.cross_entropy(pred.reshape(-1, pred.shape[-1]), y.reshape(-1))
        return self.fn(pred, y)  # type: ignore[misc]

    def accuracy(self, pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor | None:
        """Fraction of correct classes (classification only, else None)."""
        if self.kind != "classification":
            return None
        return (pred.argmax(-1) == y).float().mean()

    def gradient_target(self, y: torch.Tensor, n_out: int) -> torch.Tensor:
        """What :meth:`gradient` compares against: ``y``, or one-hot rows of the labels."""
        return F.one_hot(y, n_out).float() if self.kind == "classification" else y

    def gradient(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``d loss / d pred`` of a 2D ``pred`` (MSE or cross-entropy; may overwrite ``pred``).

        ``target`` is :meth:`gradient_target`'s, in the same column order as ``pred``.
        """
        if self.kind == "regression":
            return pred.sub_(target).mul_(2.0 / target.numel())
        if self.kind == "classification":
            return torch.softmax(pred, 1).sub_(target).mul_(1.0 / len(target))
        raise ValueError("A custom loss has no closed-form gradient; use custom_gradient().")

    def custom_gradient(self, pred: torch.Tensor, y: torch.Tensor
                        ) -> tuple[torch.Tensor, torch.Tensor]:
        """Value and ``d loss / d pred`` of a custom loss, by autograd on ``pred`` alone."""
        with torch.enable_grad():
            leaf = pred.detach().requires_grad_()
            value = self(leaf, y)
            (grad,) = torch.autograd.grad(value, leaf)
        return value.detach(), grad

    def __repr__(self) -> str:
        return f"Loss({self.name!r})"


def make_loss(loss: LossFn | None, task: str, y: torch.Tensor | None) -> Loss:
    """The :class:`Loss` of a run: ``loss`` if given, else by ``task`` ("auto": integer
    labels mean classification)."""
    if loss is not None:
        if not callable(loss) or isinstance(loss, (str, bytes)):
            raise TypeError(f"The 'loss' must be a callable loss(pred, y) -> scalar tensor, or "
                            f"None for the default; got {type(loss).__name__}.")
        return Loss("custom", loss)
    if task not in TASK_KINDS:
        raise ValueError(f"The 'task' must be one of {list(TASK_KINDS)}; got {task!r}.")
    if task == "auto":
        task = "regression" if y is None or y.dtype.is_floating_point else "classification"
    return Loss(task)


def _model_dtype(model: nn.Module) -> torch.dtype:
    p = next(model.parameters(), None)
    return p.dtype if p is not None and p.dtype.is_floating_point else torch.float32


def _check_float(x: torch.Tensor, what: str, dtype: torch.dtype) -> torch.Tensor:
    if not (x.dtype.is_floating_point or x.dtype in (torch.int64, torch.int32, torch.uint8,
                                                      torch.int16, torch.int8, torch.bool)):
        raise TypeError(f"The {what} must hold real numbers; got dtype {x.dtype}.")
    x = x.to(dtype)
    if not torch.isfinite(x).all():
        raise ValueError(f"The {what} contains NaN or Inf values; clean the data first.")
    return x


def _biomlp_inputs(model: BioMLP, x: torch.Tensor, name: str) -> torch.Tensor:
    if x.ndim != 2:
        raise ValueError(f"The 'x_{name}' must be a 2D array (points, features); "
                         f"got shape {tuple(x.shape)}.")
    if model.embedding is None:
        if x.shape[1] != model.widths[0]:
            raise ValueError(f"The model's input width {model.widths[0]} does not match "
                             f"'x_{name}' with {x.shape[1]} columns; build "
                             f"BioMLP([{x.shape[1]}, ...]) or fix the data.")
        return _check_float(x, f"'x_{name}'", _model_dtype(model))
    if x.shape[1] != model.in_fold:
        raise ValueError(f"The 'x_{name}' must hold {model.in_fold} tokens per row for this "
                         f"model (in_fold); got {x.shape[1]} columns.")
    vocab = model.embedding.num_embeddings
    if x.dtype.is_floating_point and not torch.equal(x, x.round()):
        raise ValueError(f"The 'x_{name}' must hold integer tokens; got fractional values.")
    x = x.long()
    if x.numel() and (int(x.min()) < 0 or int(x.max()) >= vocab):
        raise ValueError(f"The tokens in 'x_{name}' must be in [0, {vocab}); "
                         f"got values from {int(x.min())} to {int(x.max())}.")
    return x


def _trial_output(model: nn.Module, x: torch.Tensor, name: str) -> torch.Tensor:
    """The model's output on the first two rows: the shape every check compares against."""
    p = next(model.parameters(), None)
    try:
        with torch.no_grad():
            return model(x[:2].to(p.device if p is not None else "cpu"))
    except (RuntimeError, ValueError, IndexError, TypeError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"The model cannot take 'x_{name}' of shape {tuple(x.shape)} "
                         f"({reason}); fix the data or the model's input size.") from None


def _labels(y: torch.Tensor, n_out: int, name: str, want: tuple[int, ...]) -> torch.Tensor:
    if tuple(y.shape[1:]) != want:
        need = "1D integers" if not want else f"shape (n, {', '.join(map(str, want))})"
        raise ValueError(f"Classification labels 'y_{name}' must be {need}; "
                         f"got shape {tuple(y.shape)}.")
    if y.dtype.is_floating_point and not torch.equal(y, y.round()):
        raise ValueError(f"Classification labels 'y_{name}' must be integers.")
    y = y.long()
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= n_out):
        raise ValueError(f"The labels in 'y_{name}' must be in [0, {n_out}) for a model with "
                         f"{n_out} outputs; got {int(y.min())} to {int(y.max())}.")
    return y


def _targets(y: torch.Tensor, out_shape: tuple[int, ...], name: str, dtype: torch.dtype,
             hint: str) -> torch.Tensor:
    if y.ndim == len(out_shape) - 1 and out_shape[-1] == 1:
        y = y[..., None]
    if tuple(y.shape[1:]) != tuple(out_shape[1:]):
        size = (f"output width {out_shape[1]}" if len(out_shape) == 2 else
                f"output shape (n, {', '.join(map(str, out_shape[1:]))})")
        raise ValueError(f"The model's {size} does not match 'y_{name}' with shape "
                         f"{tuple(y.shape)}; {hint}")
    return _check_float(y, f"'y_{name}'", dtype)


def prepare_data(model: nn.Module, x: Any, y: Any, task: str | Loss = "auto",
                 name: str = "train") -> tuple[torch.Tensor, torch.Tensor, str]:
    """Validate and convert one data set for ``model``.

    Parameters
    ----------
    model : spatial network
        BioMLP inputs are checked against its widths and embedding; other networks by a
        trial forward pass on the first rows.
    x, y : arrays (tensor, numpy array or nested list) with one row per example
    task : "auto", "regression", "classification" or a :class:`Loss`
        "auto": integer labels mean classification. A custom loss takes ``y`` as given.
    name : str
        Used in messages (``'x_train'``, ``'y_test'``).

    Returns
    -------
    x : Tensor, shape (n, ...), float in the model's dtype (or int64 tokens)
    y : Tensor, float targets shaped like the model's output, or int64 labels
    task : str
        ``"regression"``, ``"classification"`` or ``"custom"``.
    """
    loss = task if isinstance(task, Loss) else make_loss(None, task, as_tensor(f"y_{name}", y))
    x, y, _ = check_batch(model, x, y, loss, name)
    return x, y, loss.kind


def check_batch(model: nn.Module, x: Any, y: Any, loss: Loss, name: str = "train",
                out_shape: tuple[int, ...] | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, tuple[int, ...]]:
    """:func:`prepare_data` for one batch; ``out_shape`` (the model's output shape, as
    returned by an earlier call) skips the trial forward pass of a non-BioMLP model."""
    x, y = as_tensor(f"x_{name}", x), as_tensor(f"y_{name}", y)
    if x.ndim < 1 or x.shape[0] == 0:
        raise ValueError(f"The 'x_{name}' must hold at least one example (one per row); got "
                         f"shape {tuple(x.shape)}.")
    if y.ndim < 1 or y.shape[0] != x.shape[0]:
        got = f"{y.shape[0]}" if y.ndim else "a single number (shape ())"
        raise ValueError(f"The 'y_{name}' must have one row per row of 'x_{name}' "
                         f"({x.shape[0]}); got {got}.")
    dtype = _model_dtype(model)
    first = out_shape is None  # later batches of a loader skip the one-off checks
    if isinstance(model, BioMLP):
        x = _biomlp_inputs(model, x, name)
        out_shape = (len(x), model.widths[-1])
        hint = f"build BioMLP([..., {y.shape[-1]}]) or fix the data."
    else:
        if x.dtype.is_floating_point:
            x = _check_float(x, f"'x_{name}'", dtype)
        if out_shape is None:
            out_shape = tuple(_trial_output(model, x, name).shape)
        hint = "fix the data or the model's output size."
    if loss.kind == "classification":
        y = _labels(y, out_shape[-1], name, tuple(out_shape[1:-1]))
    elif loss.kind == "regression":
        y = _targets(y, out_shape, name, dtype, hint)
    else:
        if y.dtype.is_floating_point:
            y = _check_float(y, f"'y_{name}'", dtype)
        if first:
            _check_custom_loss(loss, _trial_output(model, x, name), y[:2])
    return x, y, out_shape


def _check_custom_loss(loss: Loss, pred: torch.Tensor, y: torch.Tensor) -> None:
    p = pred.detach()
    try:
        with torch.no_grad():
            value = loss(p, y.to(p.device))
    except (RuntimeError, ValueError, IndexError, TypeError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"The 'loss' failed on the model's output of shape {tuple(p.shape)} "
                         f"and targets of shape {tuple(y.shape)} ({reason}); fix the loss or "
                         "the data.") from None
    if not isinstance(value, torch.Tensor) or value.numel() != 1:
        raise TypeError(f"The 'loss' must return a scalar tensor; got "
                        f"{type(value).__name__}"
                        f"{'' if not isinstance(value, torch.Tensor) else tuple(value.shape)}.")
