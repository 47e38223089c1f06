"""Where each training step's batch comes from: the full data, seeded minibatches of tensors,
or any iterable of ``(x, y)`` batches (a ``torch.utils.data.DataLoader``).

Every source answers ``batch(step)`` for consecutive steps and saves what a resume needs,
so a run stopped mid-epoch continues with exactly the batches it would have seen:

- :class:`FullBatch`: the same tensors every step (the paper's setting).
- :class:`TensorBatches`: epoch ``e`` visits the rows in a permutation drawn from
  ``(seed, e)`` alone, so step ``s`` always gets the same rows: no state to save.
- :class:`LoaderBatches`: the loader is iterated as given. At the start of each epoch the
  global RNG states are recorded (a shuffling DataLoader draws its order from them when
  iterated); a resume replays the epoch from that state, skips the batches already used
  and restores the RNG, so the continued run sees the same batches, bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

import traincore

from .data import Loss, LossFn, as_tensor, check_batch, make_loss

__all__ = ["FullBatch", "TensorBatches", "LoaderBatches", "Batch", "TrainingData",
           "training_data"]

#: One batch: inputs and targets, on the training device.
Batch = tuple[torch.Tensor, torch.Tensor]

_END = object()  # what next() returns when an epoch is over (a batch is never this)


class FullBatch:
    """Every step trains on all of ``(x, y)``."""

    full = True

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y
        self.rows = len(x)

    def batch(self, step: int) -> Batch:
        return self.x, self.y

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


class TensorBatches:
    """Seeded minibatches of ``batch_size`` rows; a last smaller batch ends each epoch.

    Examples
    --------
    >>> src = TensorBatches(torch.arange(5.0)[:, None], torch.zeros(5, 1), 2, seed=0)
    >>> [len(src.batch(s)[0]) for s in range(4)]
    [2, 2, 1, 2]
    """

    full = False

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, seed: int) -> None:
        self.x, self.y, self.batch_size, self.seed = x, y, batch_size, seed
        self.rows = batch_size
        self.per_epoch = math.ceil(len(x) / batch_size)
        self._epoch, self._order = -1, torch.empty(0, dtype=torch.long)

    def order(self, epoch: int) -> torch.Tensor:
        """The row order of ``epoch``: a permutation seeded by ``(seed, epoch)`` only."""
        mixed = np.random.SeedSequence([self.seed, epoch]).generate_state(2, np.uint32)
        gen = torch.Generator().manual_seed(int(mixed[0]) << 32 | int(mixed[1]))
        return torch.randperm(len(self.x), generator=gen).to(self.x.device)

    def batch(self, step: int) -> Batch:
        epoch, k = divmod(step, self.per_epoch)
        if epoch != self._epoch:
            self._epoch, self._order = epoch, self.order(epoch)
        rows = self._order[k * self.batch_size:(k + 1) * self.batch_size]
        return self.x[rows], self.y[rows]

    def state_dict(self) -> dict[str, Any]:
        return {}  # step -> rows is a pure function of the seed

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


class LoaderBatches:
    """Batches from a re-iterable of ``(x, y)`` pairs, each checked by ``prepare``.

    Parameters
    ----------
    loader : iterable of (x, y)
        Iterated once per epoch (a DataLoader, a list of pairs, ...). One-shot iterators
        are refused: they cannot be replayed for another epoch or a resume.
    prepare : callable ``(x, y, index) -> (x, y)``
        Checks and converts one batch (``index`` counts batches within the epoch).
    """

    full = False

    def __init__(self, loader: Iterable[Any], prepare: Callable[[Any, Any, int], Batch]) -> None:
        if iter(loader) is loader:
            raise TypeError(f"The training data must be re-iterable (a DataLoader or a list of "
                            f"(x, y) batches); got a one-shot {type(loader).__name__}, which "
                            "cannot start a second epoch or resume. Wrap it in a list.")
        self.loader, self.prepare = loader, prepare
        self.epoch = self.position = 0
        self.epoch_rng: dict[str, Any] | None = None
        self._it: Iterator[Any] | None = None
        self.rows = 0

    def _pair(self, item: Any, index: int) -> Batch:
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise TypeError(f"Each batch of the training data must be a pair (x, y); batch "
                            f"{index} of epoch {self.epoch} is a {type(item).__name__}.")
        try:
            return self.prepare(item[0], item[1], index)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"Batch {index} of epoch {self.epoch} of the training data: "
                            f"{exc}") from None

    def first(self) -> Batch:
        """The first batch, checked, without disturbing the RNGs or the epoch."""
        state = traincore.get_rng_state()
        try:
            item = next(iter(self.loader), _END)
        finally:
            traincore.set_rng_state(state)
        if item is _END:
            raise ValueError("The training data yielded no batches; pass a non-empty "
                             "DataLoader or list of (x, y) pairs.")
        x, y = self._pair(item, 0)
        self.rows = len(x)
        return x, y

    def _start(self) -> None:
        if self.position == 0 or self.epoch_rng is None:  # a new epoch begins here
            self.position = 0
            self.epoch_rng = traincore.get_rng_state()
            self._it = iter(self.loader)
            return
        now = traincore.get_rng_state()  # resume mid-epoch: replay its start, skip what ran
        traincore.set_rng_state(self.epoch_rng)
        self._it = iter(self.loader)
        for _ in range(self.position):
            next(self._it)
        traincore.set_rng_state(now)

    def batch(self, step: int) -> Batch:
        if self._it is None:
            self._start()
        item = next(self._it, _END)  # type: ignore[arg-type]
        if item is _END:  # the epoch is over: start the next one
            if self.position == 0:
                raise ValueError("The training data yielded no batches; pass a non-empty "
                                 "DataLoader or list of (x, y) pairs.")
            self.epoch, self.position = self.epoch + 1, 0
            self._start()
            item = next(self._it, _END)  # type: ignore[arg-type]
            if item is _END:
                raise ValueError(f"The training data yielded no batches in epoch {self.epoch}; "
                                 "it must give the same batches every time it is iterated.")
        self.position += 1
        return self._pair(item, self.position - 1)

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "position": self.position, "epoch_rng": self.epoch_rng}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch, self.position = int(state["epoch"]), int(state["position"])
        self.epoch_rng = state["epoch_rng"]
        self._it = None


@dataclass
class TrainingData:
    """What :func:`training_data` built: the batch source, the loss and the test set."""

    batches: FullBatch | TensorBatches | LoaderBatches
    loss: Loss
    test: tuple[torch.Tensor, torch.Tensor] | None
    n_train: int | None  # rows of tensor data; None for a loader


def _is_array(value: Any) -> bool:
    return isinstance(value, (torch.Tensor, np.ndarray, list, tuple))


def _first_item(loader: Iterable[Any]) -> Any:
    state = traincore.get_rng_state()  # peeking must not shift a shuffling loader's order
    try:
        return next(iter(loader), _END)
    finally:
        traincore.set_rng_state(state)


def _loader(model: nn.Module, loader: Any, task: str, loss_fn: LossFn | None,
            device: torch.device) -> tuple[LoaderBatches, Loss]:
    if _is_array(loader) and not (isinstance(loader, list) and loader
                                  and isinstance(loader[0], (tuple, list))):
        raise TypeError("Pass 'y_train' with array data, or an iterable of (x, y) batches "
                        "(a DataLoader) as the only training data.")
    first = _first_item(loader)
    y0 = first[1] if isinstance(first, (tuple, list)) and len(first) == 2 else None
    loss = make_loss(loss_fn, task, None if y0 is None else as_tensor("y_train", y0))
    out_shape: list[tuple[int, ...]] = []

    def prepare(x: Any, y: Any, index: int) -> Batch:
        x, y, shape = check_batch(model, x, y, loss, "train", out_shape[0] if out_shape else None)
        out_shape[:1] = [shape]
        return x.to(device), y.to(device)

    source = LoaderBatches(loader, prepare)
    source.first()
    return source, loss


def training_data(model: nn.Module, x: Any, y: Any, x_test: Any = None, y_test: Any = None,
                  *, task: str = "auto", loss: LossFn | None = None,
                  batch_size: int | None = None, seed: int = 0,
                  device: torch.device | str = "cpu") -> TrainingData:
    """Check the training (and test) data against ``model`` and choose the batch source.

    Parameters
    ----------
    x, y : arrays, or ``x`` an iterable of ``(x, y)`` batches and ``y`` None
    x_test, y_test : arrays, optional
    task, loss : see :func:`bimt.data.make_loss`
    batch_size : int, optional
        Minibatches of array data (None, or at least the number of rows: full batch).
    seed : int
        Seeds the minibatch order.
    device : where the batches go
    """
    device = torch.device(device)
    if y is None:
        if batch_size is not None:
            raise ValueError("The 'batch_size' applies to array data; a DataLoader or list of "
                             "(x, y) batches brings its own batches. Drop batch_size.")
        source, the_loss = _loader(model, x, task, loss, device)
        n_train = None
    else:
        if not _is_array(x):
            raise TypeError(f"The 'x_train' must be a torch tensor or numpy array (with "
                            f"'y_train'), or an iterable of (x, y) batches (without "
                            f"'y_train'); got {type(x).__name__}.")
        the_loss = make_loss(loss, task, as_tensor("y_train", y))
        xt, yt, _ = check_batch(model, x, y, the_loss, "train")
        xt, yt = xt.to(device), yt.to(device)
        n_train = len(xt)
        if batch_size is None or batch_size >= n_train:
            source = FullBatch(xt, yt)
        else:
            source = TensorBatches(xt, yt, batch_size, seed)
    test = None
    if x_test is not None or y_test is not None:
        if x_test is None or y_test is None:
            raise ValueError("Pass both 'x_test' and 'y_test', or neither.")
        xe, ye, _ = check_batch(model, x_test, y_test, the_loss, "test")
        test = (xe.to(device), ye.to(device))
    return TrainingData(source, the_loss, test, n_train)
