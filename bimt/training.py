"""BIMT training: :func:`train` wires data, engine, penalty, swaps and analysis into
:func:`traincore.fit`.

Every part lives in its own module: settings in :mod:`bimt.config`, data checks and the
loss in :mod:`bimt.data`, batch sources in :mod:`bimt.batches`, the training steps in
:mod:`bimt.engines`, swap passes in :mod:`bimt.swapper`, the graph analysis in
:mod:`bimt.modularity`; this module only connects them and records what happened.

References
----------
Liu, Gan & Tegmark, "Seeing is believing: brain-inspired modular training for mechanistic
interpretability", arXiv:2305.08746.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

import traincore
from traincore import FlatAdamW

from .batches import TrainingData, training_data
from .config import BIMTConfig, bias_schedule, lambda_schedule, lr_schedule
from .data import LossFn
from .engines import ENGINE_CLASSES, Penalty
from .model import BioMLP
from .modularity import summarize
from .rnn import BioRNN
from .spatial import describe
from .swapper import Swapper
from .transformer import BioTransformer

__all__ = ["TrainingHistory", "RunState", "train", "model_config"]


@dataclass
class TrainingHistory:
    """What :func:`train` produced.

    Attributes
    ----------
    kind : str
        ``"regression"``, ``"classification"`` or ``"custom"`` (a loss you passed).
    engine : str
        ``"analytic"`` or ``"autograd"``.
    test_loss, test_accuracy : float or None
        Final test metrics (accuracy only for classification; None without test data).
    train_loss, connection_cost : float
        At the last step (the cost without biases, as :func:`bimt.connection_cost`).
    seconds, swap_seconds : float
        Wall time of the whole run and of the swap passes in it.
    swaps : int
        Swaps made.
    rows : list of dict
        The logged metrics (one row per logging step).
    snapshots : list of dict
        ``{"step", "state"}`` model state dicts (CPU) for :func:`bimt.animate`.
    """

    kind: str
    engine: str
    steps: int
    seconds: float
    swap_seconds: float
    swaps: int
    train_loss: float
    connection_cost: float
    test_loss: float | None
    test_accuracy: float | None
    rows: list[dict[str, Any]] = field(default_factory=list, repr=False)
    snapshots: list[dict[str, Any]] = field(default_factory=list, repr=False)
    status: str = "finished"
    resumed_from: int | None = None

    def __getitem__(self, key: str) -> list[Any]:
        """All logged values of one metric (``history["test_loss"]``)."""
        return [row[key] for row in self.rows if key in row]

    def summary(self) -> dict[str, Any]:
        """The scalar results as a JSON-ready dict."""
        keys = ("kind", "engine", "steps", "seconds", "swap_seconds", "swaps", "train_loss",
                "connection_cost", "test_loss", "test_accuracy", "status", "resumed_from")
        return {k: getattr(self, k) for k in keys}

    @classmethod
    def of(cls, hist: traincore.History, run: RunState, data: TrainingData,
           engine: str) -> TrainingHistory:
        """The history of a :func:`traincore.fit` run of :func:`train`."""
        has_test = data.test is not None
        return cls(
            kind=data.loss.kind, engine=engine, steps=hist.steps, seconds=hist.seconds,
            swap_seconds=run.swap_seconds, swaps=run.swaps,
            train_loss=float(hist.last("train_loss", math.nan)),
            connection_cost=float(hist.last("connection_cost", math.nan)),
            test_loss=hist.last("test_loss") if has_test else None,
            test_accuracy=hist.last("test_accuracy") if has_test else None,
            rows=hist.rows, snapshots=run.snapshots, status=hist.status,
            resumed_from=hist.resumed_from)

    def to_json(self) -> str:
        """Scalar results and the metric rows as JSON."""
        return json.dumps({**self.summary(), "rows": self.rows}, indent=2)


class RunState:
    """Run state beyond model and optimizer that a checkpoint must carry."""

    def __init__(self) -> None:
        self.snapshots: list[dict[str, Any]] = []
        self.swap_seconds = 0.0
        self.swaps = 0

    def state_dict(self) -> dict[str, Any]:
        return {"snapshots": self.snapshots, "swap_seconds": self.swap_seconds,
                "swaps": self.swaps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.snapshots = list(state["snapshots"])
        self.swap_seconds = float(state["swap_seconds"])
        self.swaps = int(state["swaps"])

    def snapshot(self, model: nn.Module, step: int) -> None:
        """Keep a CPU copy of the weights (coordinates and distances never change)."""
        if self.snapshots and self.snapshots[-1]["step"] == step:
            return
        state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()
                 if not k.endswith(("distance", "coordinates"))}
        self.snapshots.append({"step": step, "state": state})


def _settings(config: BIMTConfig | None, steps: int | None, overrides: dict[str, Any]
              ) -> BIMTConfig:
    cfg = config if config is not None else BIMTConfig()
    if not isinstance(cfg, BIMTConfig):
        raise TypeError(f"The 'config' must be a BIMTConfig; got {type(cfg).__name__}.")
    if steps is not None:
        overrides["steps"] = steps
    unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(BIMTConfig)})
    if unknown:
        raise TypeError(f"train() got unknown setting(s) {unknown}; valid ones are the "
                        "fields of BIMTConfig.")
    return dataclasses.replace(cfg, **overrides) if overrides else cfg


def _engine_name(cfg: BIMTConfig, model: nn.Module) -> str:
    if cfg.engine == "auto":
        return "analytic" if isinstance(model, BioMLP) else "autograd"
    if cfg.engine == "analytic" and not isinstance(model, BioMLP):
        raise ValueError(f"The 'analytic' engine trains a bimt.BioMLP only; got "
                         f"{type(model).__name__}. Use engine='autograd' or 'auto'.")
    return cfg.engine


def _threads(cfg: BIMTConfig, model: nn.Module, data: TrainingData, dev: torch.device) -> int:
    # one thread: these matmuls are tiny, and extra threads only add synchronisation (and
    # thrash on a shared machine); big problems on the CPU may ask for more via config.threads
    n_params = sum(p.numel() for p in model.parameters())
    small = dev.type == "cpu" and n_params * data.batches.rows < 50_000_000
    return cfg.threads or (1 if small else torch.get_num_threads())


def _callbacks(model: nn.Module, cfg: BIMTConfig, engine: Any, swapper: Swapper,
               run: RunState, data: TrainingData) -> list[traincore.Callback]:
    def swap(loop: traincore.Loop) -> None:
        t0 = time.perf_counter()
        report = swapper.relocate()
        if report.swaps:
            run.swaps += report.swaps
            engine.resync()  # inputs/outputs may have moved
        run.swap_seconds += time.perf_counter() - t0

    def evaluate(loop: traincore.Loop) -> None:
        if data.test is None:
            return
        x, y = data.test
        with torch.no_grad():
            out = model(x)
            accuracy = data.loss.accuracy(out, y)
            loop.log(test_loss=data.loss(out, y),
                     **({} if accuracy is None else {"test_accuracy": accuracy}))

    class Start(traincore.Callback):
        def on_start(self, loop: traincore.Loop) -> None:
            engine.resync()  # also after a resume restored permuted weights
            if loop.step == 0 and cfg.snapshot_every:
                run.snapshot(model, 0)

    cbs = [Start(), traincore.Every(cfg.swap_every, swap),
           traincore.Every(cfg.eval_every, evaluate, at_end=True),
           traincore.Every(cfg.analysis_every, lambda loop: loop.log(
               **summarize(model, cfg.prune_threshold)), at_end=True)]
    if cfg.snapshot_every:
        cbs.append(traincore.Every(cfg.snapshot_every, lambda loop: run.snapshot(model, loop.step),
                                   at_end=True))
    return cbs


def _schedules(cfg: BIMTConfig) -> dict[str, Callable[[int], float]]:
    """Per-step values for :func:`traincore.fit`: lambda, the bias cost, and the learning
    rate when it decays (left out when constant: such runs stay bit for bit as before)."""
    out = {"lam": lambda_schedule(cfg), "bias_cost": bias_schedule(cfg)}
    if cfg.lr_decay != "none":
        out["lr"] = lr_schedule(cfg)
    return out


def _check_training_memory(model: nn.Module, cfg: BIMTConfig) -> BIMTConfig:
    """Refuse a run whose parameters and their training state would not fit the budget;
    returns ``cfg``."""
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    # the flat parameter vector, its gradient, Adam's two moments, the cost weights (two)
    # and the model's own copy, plus one copy per snapshot kept for the animation
    snapshots = cfg.steps // cfg.snapshot_every + 2 if cfg.snapshot_every else 0
    traincore.check_memory((7 + snapshots) * params, f"Training this network ({params} bytes "
                           f"of parameters, {snapshots} snapshots)",
                           "use smaller widths, or fewer snapshots (snapshot_every)")
    return cfg


def train(model: nn.Module, x_train: Any, y_train: Any = None, *, steps: int | None = None,
          seed: int = 0, x_test: Any = None, y_test: Any = None,
          config: BIMTConfig | None = None, device: str | torch.device = "auto",
          checkpoint_dir: str | os.PathLike[str] | None = None,
          log_path: str | os.PathLike[str] | None = None, resume: bool = True,
          callbacks: Sequence[traincore.Callback] = (), loss: LossFn | None = None,
          **overrides: Any) -> TrainingHistory:
    """Train a spatial network with brain-inspired modular training.

    Parameters
    ----------
    model : spatial network
        :class:`bimt.BioMLP` or any module with a ``spatial()`` description; trained in
        place (moved to ``device``).
    x_train : array, shape (n, ...), or an iterable of ``(x, y)`` batches
        A ``DataLoader`` or list of pairs (then ``y_train`` is None): iterated once per
        epoch, resumable mid-epoch.
    y_train : array
        Float targets shaped like the output, or integer class labels.
    steps, seed : int
        ``steps`` overrides ``config.steps``; ``seed`` seeds every RNG and the batch order.
    x_test, y_test : arrays, optional
        Evaluated every ``config.eval_every`` steps and at the end.
    config : BIMTConfig, optional
        Paper defaults when omitted; keyword ``overrides`` replace single fields
        (``batch_size=64``, ``lam=1e-2``, ``engine="autograd"``, ...).
    device : "auto", "cpu", "cuda" or torch.device
    checkpoint_dir, log_path, resume, callbacks
        As :func:`traincore.fit`: ``checkpoint.pt`` in ``checkpoint_dir`` is written at the
        end (and every ``checkpoint_every`` steps) and resumed from unless ``resume`` is
        False (another configuration's checkpoint is refused); ``log_path`` gets the JSONL
        metric rows; ``callbacks`` run between steps.
    loss : callable ``loss(pred, y) -> scalar tensor``, optional
        Replaces the default MSE (float targets) / cross-entropy (integer labels).

    Returns
    -------
    TrainingHistory

    Examples
    --------
    >>> x = torch.rand(64, 2) * 2 - 1
    >>> y = x[:, :1] ** 2
    >>> model = BioMLP([2, 8, 1], seed=0)
    >>> train(model, x, y, steps=300, x_test=x, y_test=y, progress=False).test_loss < 0.1
    True
    """
    describe(model)  # a clear error for a network without positions, before anything runs
    cfg = _check_training_memory(model, _settings(config, steps, overrides))
    dev = traincore.resolve_device(device)
    traincore.seed_everything(seed)
    data = training_data(model, x_train, y_train, x_test, y_test, task=cfg.task, loss=loss,
                         batch_size=cfg.batch_size, seed=seed, device=dev)
    engine_name = _engine_name(cfg, model)
    model.to(dev)
    opt = FlatAdamW(model, cfg.lr, cfg.betas, cfg.eps, cfg.weight_decay)
    cost = dict(weight_factor=cfg.weight_factor, l0=cfg.l0, last_layer=cfg.last_layer_cost)
    engine = ENGINE_CLASSES[engine_name](model, opt, data.loss, Penalty(model, opt, **cost))
    swapper = Swapper(model, opt if cfg.swap_moments else None, cfg.swap_every,
                      top_k=cfg.swap_top_k, io=cfg.swap_io, **cost)
    run = RunState()

    def step(i: int, values: dict[str, float]) -> dict[str, Any]:
        x, y = data.batches.batch(i)
        wanted = (i + 1) % cfg.log_every == 0 or i + 1 == cfg.steps  # floats only when logged
        opt.lr = values.get("lr", cfg.lr)  # scheduled when it decays
        return engine.step(x, y, values["lam"], values["bias_cost"], wanted)

    run_config = {"bimt": cfg.to_dict(), "model": model_config(model), "seed": seed,
                  "engine": engine_name, "n_train": data.n_train, "loss": data.loss.name}
    with traincore.cpu_threads(_threads(cfg, model, data, dev)):
        hist = traincore.fit(
            step, cfg.steps, state={"model": model, "optimizer": opt, "bimt": run,
                                    "batches": data.batches},
            schedules=_schedules(cfg),
            callbacks=[*_callbacks(model, cfg, engine, swapper, run, data), *callbacks],
            log_every=cfg.log_every, log_path=log_path, checkpoint_dir=checkpoint_dir,
            checkpoint_every=cfg.checkpoint_every, resume=resume, config=run_config,
            progress=cfg.progress, desc="bimt")
    return TrainingHistory.of(hist, run, data, engine_name)


def model_config(model: nn.Module) -> dict[str, Any]:
    """The model's class name and ``config()`` (its constructor arguments), as plain data."""
    config = getattr(model, "config", None)
    return {"class": type(model).__name__, **(config() if callable(config) else {})}


#: Model classes that :func:`model_from_config` rebuilds, by the name ``model_config`` stores.
MODEL_CLASSES: dict[str, type[nn.Module]] = {
    "BioMLP": BioMLP, "BioRNN": BioRNN, "BioTransformer": BioTransformer}


def model_from_config(config: dict[str, Any]) -> nn.Module:
    """An untrained model of the structure ``model_config`` recorded (the inverse).

    Raises
    ------
    ValueError
        When the class is not one of :data:`MODEL_CLASSES` or the arguments do not fit it.
    """
    args = dict(config)
    name = args.pop("class", "BioMLP")
    if name not in MODEL_CLASSES:
        raise ValueError(f"The model class {name!r} cannot be rebuilt; expected one of "
                         f"{sorted(MODEL_CLASSES)}.")
    try:
        return MODEL_CLASSES[name](**args)
    except TypeError as exc:
        raise ValueError(f"The recorded {name} arguments do not fit it ({exc}).") from None
