"""BIMT training on :func:`traincore.fit`: connection cost, lambda schedule and swaps.

The step is either *analytic* (hand-written forward/backward of the MLP on one flat
parameter vector, token embeddings included; checked against autograd in the tests)
or *autograd* (any model). Both share the flat AdamW below, whose moments are permuted with
every swap, and the connection-cost gradient ``lam * C * sign(w)`` on the flat vector, with
``C`` the per-connection cost matrices computed once (swaps move weights between fixed
positions, so ``C`` never changes).

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
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

import traincore

from .cost import cost_matrices
from .model import ACTIVATIONS, BioMLP
from .swap import relocate

__all__ = ["BIMTConfig", "TrainingHistory", "FlatAdamW", "train", "lambda_schedule",
           "prepare_data"]

_TASKS = ("auto", "regression", "classification")
_ENGINES = ("auto", "analytic", "autograd")


@dataclass(frozen=True)
class BIMTConfig:
    """Settings of a BIMT run; defaults are the paper's.

    Validated on construction; ``dataclasses.replace(cfg, lam=1e-2)`` makes a variant.
    """

    steps: int = 20000            # paper: 20000 full-batch steps for the symbolic formulas
    lr: float = 2e-3              # paper: AdamW, learning rate 2e-3
    weight_decay: float = 0.0     # the L1 connection cost is the regulariser; no extra decay
    betas: tuple[float, float] = (0.9, 0.999)  # torch's AdamW defaults
    eps: float = 1e-8             # torch's AdamW default
    lam: float = 1e-3             # base strength of the connection cost (symbolic formulas)
    lam_phases: tuple[float, float] = (0.25, 0.75)  # lam until 1/4, 10 lam until 3/4, then lam
    lam_factors: tuple[float, float, float] = (1.0, 10.0, 1.0)  # the paper's x10 then x0.1
    weight_factor: float = 1.0    # cost per unit of wiring length
    l0: float = 0.1               # paper: cost of a connection independent of its length
    bias_cost_from: float = 0.75  # biases pay l0|b| in the last quarter (paper: late in training)
    last_layer_cost: bool = True  # charge the last layer's weights too
    swap_every: int = 200         # paper: swaps every 200 steps
    swap_top_k: int = 5           # paper: the 5 most connected neurons per layer try swapping
    swap_io: bool = True          # inputs and outputs move too (permutations are tracked)
    swap_moments: bool = True     # swaps permute the Adam moments too (False: research code)
    task: str = "auto"            # "regression" (MSE), "classification" (cross-entropy), or auto
    eval_every: int = 200         # test loss every few hundred steps, never every step
    log_every: int = 200          # metrics become floats only at logging steps
    analysis_every: int = 2000    # modules / modularity / active neurons logged this often
    prune_threshold: float = 0.05  # edges below this fraction of max |w| are ignored in analysis
    snapshot_every: int = 200     # weights copied for the animation this often (0: never)
    engine: str = "auto"          # "analytic" when the model allows it, else "autograd"
    threads: int = 0              # torch CPU threads during training (0: 1 for small problems)
    checkpoint_every: int = 0     # extra checkpoints (one is always written at the end)
    progress: bool | None = None  # tqdm bar; None: only on a terminal

    def __post_init__(self) -> None:
        def positive_int(name: str, allow_zero: bool = False) -> None:
            v = getattr(self, name)
            lo = 0 if allow_zero else 1
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                kind = "non-negative" if allow_zero else "positive"
                raise ValueError(f"The BIMTConfig '{name}' must be a {kind} integer; got {v!r}.")

        def number(name: str, lo: float = 0.0, strict: bool = False, hi: float = math.inf) -> None:
            v = getattr(self, name)
            ok = (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                  and (v > lo if strict else v >= lo) and v <= hi)
            if not ok:
                rel = ">" if strict else ">="
                raise ValueError(f"The BIMTConfig '{name}' must be a finite number {rel} {lo}"
                                 f"{'' if hi == math.inf else f' and <= {hi}'}; got {v!r}.")

        positive_int("steps", allow_zero=True)
        for name in ("swap_every", "eval_every", "log_every", "analysis_every", "swap_top_k"):
            positive_int(name)
        for name in ("snapshot_every", "threads", "checkpoint_every"):
            positive_int(name, allow_zero=True)
        number("lr", strict=True)
        number("eps", strict=True)
        for name in ("weight_decay", "lam", "weight_factor", "l0"):
            number(name)
        number("bias_cost_from", hi=1.0)
        for name in ("last_layer_cost", "swap_io", "swap_moments"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"The BIMTConfig '{name}' must be True or False; "
                                f"got {getattr(self, name)!r}.")
        number("prune_threshold", hi=1.0)
        if (len(self.betas) != 2 or not all(isinstance(b, (int, float)) and 0 <= b < 1
                                            for b in self.betas)):
            raise ValueError(f"The BIMTConfig 'betas' must be two numbers in [0, 1); "
                             f"got {self.betas!r}.")
        a, b = self.lam_phases
        if not 0 <= a <= b <= 1:
            raise ValueError(f"The BIMTConfig 'lam_phases' must be two fractions 0 <= a <= b <= 1; "
                             f"got {self.lam_phases!r}.")
        if len(self.lam_factors) != 3 or any(f < 0 for f in self.lam_factors):
            raise ValueError(f"The BIMTConfig 'lam_factors' must be three non-negative numbers; "
                             f"got {self.lam_factors!r}.")
        if self.task not in _TASKS:
            raise ValueError(f"The BIMTConfig 'task' must be one of {list(_TASKS)}; "
                             f"got {self.task!r}.")
        if self.engine not in _ENGINES:
            raise ValueError(f"The BIMTConfig 'engine' must be one of {list(_ENGINES)}; "
                             f"got {self.engine!r}.")

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (saved in checkpoints; a resume with another config is refused)."""
        d = dataclasses.asdict(self)
        d.pop("progress")  # how a run is displayed does not change its result
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


def lambda_schedule(config: BIMTConfig) -> Any:
    """``step -> lam`` with the paper's three phases (lam, 10 lam, lam by default).

    Examples
    --------
    >>> f = lambda_schedule(BIMTConfig(steps=100, lam=1e-3))
    >>> [round(f(s), 6) for s in (0, 24, 25, 74, 75, 99)]
    [0.001, 0.001, 0.01, 0.01, 0.001, 0.001]
    """
    a, b = (int(round(p * config.steps)) for p in config.lam_phases)
    f0, f1, f2 = (config.lam * f for f in config.lam_factors)

    def lam(step: int) -> float:
        return f0 if step < a else f1 if step < b else f2

    return lam


@dataclass
class TrainingHistory:
    """What :func:`train` produced.

    Attributes
    ----------
    kind : str
        ``"regression"`` or ``"classification"``.
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

    def to_json(self) -> str:
        """Scalar results and the metric rows as JSON."""
        return json.dumps({**self.summary(), "rows": self.rows}, indent=2)


class FlatAdamW:
    """AdamW on one flat vector that holds every parameter of a model.

    The model's parameters become views into ``self.flat``, so the update is a handful of
    vector operations regardless of the number of layers, and swaps permute the moments
    through the same views (:meth:`moments`). Same arithmetic as ``torch.optim.AdamW``.

    Parameters
    ----------
    model : torch.nn.Module
        All parameters must share dtype and device.
    """

    def __init__(self, model: torch.nn.Module, lr: float = 2e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0) -> None:
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        if not named:
            raise ValueError("The model has no trainable parameters.")
        ref = named[0][1]
        self.lr, self.betas, self.eps, self.weight_decay = lr, betas, eps, weight_decay
        self.names = [n for n, _ in named]
        self.shapes = [p.shape for _, p in named]
        sizes = [p.numel() for _, p in named]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).tolist()
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

    def flat_like(self, per_param: dict[str, torch.Tensor]) -> torch.Tensor:
        """Concatenate parameter-shaped tensors (missing names: zeros) in flat order."""
        out = torch.zeros_like(self.flat)
        for name, t in per_param.items():
            a = self.offsets[self.names.index(name)]
            out[a:a + t.numel()] = t.reshape(-1)
        return out

    def moments(self) -> list[dict[str, torch.Tensor]]:
        """First and second moments as parameter-shaped views (for swaps)."""
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
        return {"m": self.m.clone(), "v": self.v.clone(), "t": self.t}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.m.copy_(state["m"])
        self.v.copy_(state["v"])
        self.t = int(state["t"])


def _as_tensor(name: str, value: Any) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach()
    if isinstance(value, np.ndarray) or isinstance(value, (list, tuple)):
        try:
            return torch.as_tensor(np.asarray(value))
        except (TypeError, ValueError):
            pass
    raise TypeError(f"The '{name}' must be a torch tensor or numpy array; "
                    f"got {type(value).__name__}.")


def prepare_data(model: BioMLP, x: Any, y: Any, task: str = "auto", name: str = "train"
                 ) -> tuple[torch.Tensor, torch.Tensor, str]:
    """Validate and convert one data set.

    Returns
    -------
    x : Tensor, shape (n, widths[0]) float32 (or (n, in_fold) int64 tokens)
    y : Tensor, shape (n, widths[-1]) float32 (regression) or (n,) int64 (classification)
    task : str
        ``"regression"`` or ``"classification"`` (auto: integer labels mean classification).
    """
    x, y = _as_tensor(f"x_{name}", x), _as_tensor(f"y_{name}", y)
    n_in, n_out = model.widths[0], model.widths[-1]
    if x.ndim != 2:
        raise ValueError(f"The 'x_{name}' must be a 2D array (points, features); "
                         f"got shape {tuple(x.shape)}.")
    if model.embedding is not None:
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
    else:
        if x.shape[1] != n_in:
            raise ValueError(f"The model's input width {n_in} does not match 'x_{name}' with "
                             f"{x.shape[1]} columns; build BioMLP([{x.shape[1]}, ...]) or fix "
                             "the data.")
        x = x.float()
        if not torch.isfinite(x).all():
            raise ValueError(f"The 'x_{name}' contains NaN or Inf values; clean the data first.")
    if y.shape[0] != x.shape[0]:
        raise ValueError(f"The 'y_{name}' must have one row per row of 'x_{name}' "
                         f"({x.shape[0]}); got {y.shape[0]}.")
    if task == "auto":
        task = "regression" if y.dtype.is_floating_point else "classification"
    if task == "classification":
        if y.ndim != 1:
            raise ValueError(f"Classification labels 'y_{name}' must be 1D integers; "
                             f"got shape {tuple(y.shape)}.")
        if y.dtype.is_floating_point and not torch.equal(y, y.round()):
            raise ValueError(f"Classification labels 'y_{name}' must be integers.")
        y = y.long()
        if y.numel() and (int(y.min()) < 0 or int(y.max()) >= n_out):
            raise ValueError(f"The labels in 'y_{name}' must be in [0, {n_out}) for a model with "
                             f"{n_out} outputs; got {int(y.min())} to {int(y.max())}.")
    else:
        y = y.float()
        if y.ndim == 1:
            y = y[:, None]
        if y.ndim != 2 or y.shape[1] != n_out:
            raise ValueError(f"The model's output width {n_out} does not match 'y_{name}' with "
                             f"shape {tuple(y.shape)}; build BioMLP([..., {y.shape[-1]}]) or "
                             "fix the data.")
        if not torch.isfinite(y).all():
            raise ValueError(f"The 'y_{name}' contains NaN or Inf values; clean the data first.")
    return x, y, task


class _Extras:
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


def train(model: BioMLP, x_train: Any, y_train: Any, *, steps: int | None = None,
          seed: int = 0, x_test: Any = None, y_test: Any = None,
          config: BIMTConfig | None = None, device: str | torch.device = "auto",
          checkpoint_dir: str | os.PathLike[str] | None = None,
          log_path: str | os.PathLike[str] | None = None, resume: bool = True,
          callbacks: Sequence[traincore.Callback] = (), **overrides: Any) -> TrainingHistory:
    """Train ``model`` with brain-inspired modular training (full batch).

    Parameters
    ----------
    model : BioMLP
        Trained in place (moved to ``device``).
    x_train : array, shape (n, widths[0]) (or (n, in_fold) tokens)
    y_train : array, shape (n, widths[-1]) floats, or (n,) integer class labels
    steps : int, optional
        Overrides ``config.steps``.
    seed : int
        Seeds every RNG (training itself is deterministic full-batch).
    x_test, y_test : arrays, optional
        Evaluated every ``config.eval_every`` steps and at the end.
    config : BIMTConfig, optional
        Paper defaults when omitted; keyword ``overrides`` replace single fields.
    device : "auto", "cpu", "cuda" or torch.device
    checkpoint_dir : path, optional
        ``checkpoint.pt`` is written there at the end (and every ``checkpoint_every`` steps)
        and resumed from when present.
    log_path : path, optional
        JSONL log of the metric rows.
    resume : bool
        Continue from ``checkpoint_dir``'s checkpoint when there is one (a checkpoint of a
        different configuration is refused with :class:`traincore.CheckpointError`).
    callbacks : sequence of traincore.Callback
        Extra callbacks for :func:`traincore.fit`.

    Returns
    -------
    TrainingHistory

    Examples
    --------
    >>> x = torch.rand(64, 2) * 2 - 1
    >>> y = x[:, :1] ** 2
    >>> model = BioMLP([2, 8, 1], seed=0)
    >>> h = train(model, x, y, steps=300, x_test=x, y_test=y, progress=False)
    >>> h.test_loss < 0.1, h.swaps >= 0
    (True, True)
    """
    if not isinstance(model, BioMLP):
        raise TypeError(f"The 'model' must be a bimt.BioMLP; got {type(model).__name__}.")
    cfg = config if config is not None else BIMTConfig()
    if not isinstance(cfg, BIMTConfig):
        raise TypeError(f"The 'config' must be a BIMTConfig; got {type(cfg).__name__}.")
    if steps is not None:
        overrides["steps"] = steps
    if overrides:
        unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(BIMTConfig)})
        if unknown:
            raise TypeError(f"train() got unknown setting(s) {unknown}; valid ones are the "
                            "fields of BIMTConfig.")
        cfg = dataclasses.replace(cfg, **overrides)
    dev = traincore.resolve_device(device)
    traincore.seed_everything(seed)

    xtr, ytr, task = prepare_data(model, x_train, y_train, cfg.task, "train")
    has_test = x_test is not None or y_test is not None
    if has_test:
        if x_test is None or y_test is None:
            raise ValueError("Pass both 'x_test' and 'y_test', or neither.")
        xte, yte, _ = prepare_data(model, x_test, y_test, task, "test")
        xte, yte = xte.to(dev), yte.to(dev)
    model.to(dev)
    xtr, ytr = xtr.to(dev), ytr.to(dev)
    classification = task == "classification"

    engine = cfg.engine
    if engine == "auto":
        engine = "analytic"
    n_params = sum(p.numel() for p in model.parameters())
    # one thread: these matmuls are tiny, and extra threads only add synchronisation (and
    # thrash on a shared machine); big problems on the CPU may ask for more via config.threads
    threads = cfg.threads or (1 if dev.type == "cpu" and n_params * len(xtr) < 50_000_000
                              else torch.get_num_threads())

    opt = FlatAdamW(model, cfg.lr, cfg.betas, cfg.eps, cfg.weight_decay)
    mats = cost_matrices(model, cfg.weight_factor, cfg.l0, cfg.last_layer_cost)
    weight_cost = {f"layers.{k}.weight": m for k, m in enumerate(mats)}
    bias_cost = {f"layers.{k}.bias": torch.full_like(layer.bias, cfg.l0)
                 for k, layer in enumerate(model.layers)
                 if layer.bias is not None and (cfg.last_layer_cost or k < model.depth - 1)}
    c_flat = opt.flat_like(weight_cost)                      # (n_params,)
    c_flat_bias = opt.flat_like({**weight_cost, **bias_cost})
    bias_from = int(round(cfg.bias_cost_from * cfg.steps))
    lam_of = lambda_schedule(cfg)
    extras = _Extras()
    n_out = model.widths[-1]
    weights = [layer.weight for layer in model.layers]
    weights_t = [w.t() for w in weights]  # views: stay current through updates and swaps
    depth = model.depth
    last = depth - 1
    biases = [layer.bias for layer in model.layers]
    gviews = opt.views(opt.grad)
    gw = [gviews[f"layers.{k}.weight"] for k in range(model.depth)]
    gb = [gviews.get(f"layers.{k}.bias") for k in range(model.depth)]
    act, act_bwd = ACTIVATIONS[model.activation]
    params = [p for p in model.parameters() if p.requires_grad]
    pgrads = [gviews[n] for n, p in model.named_parameters() if p.requires_grad]
    onehot = F.one_hot(ytr, n_out).float() if classification else None
    inv_n = 1.0 / len(xtr)
    scale = 2.0 / ytr.numel() if not classification else inv_n
    slot: dict[str, torch.Tensor] = {}
    emb = model.embedding
    g_emb = gviews["embedding.weight"] if emb is not None else None

    def resync() -> None:
        """Data in slot order for the analytic step (after swaps moved inputs/outputs)."""
        if engine != "analytic":
            return
        with torch.no_grad():
            if model.embedding is None:
                slot["x"] = model.embed(xtr).contiguous()
            else:  # tokens: embedded every step, gradient scattered back to the table
                index = model.input_index()
                slot["index"], slot["inverse"] = index, torch.argsort(index)
            if classification:
                slot["target"] = onehot[:, model.out_perm].contiguous()
                slot["labels"] = model.output_index()[ytr]
            else:
                slot["target"] = ytr[:, model.out_perm].contiguous()

    def want_metrics(step: int) -> bool:
        done = step + 1
        return done % cfg.log_every == 0 or done == cfg.steps

    def finish(step: int, out: torch.Tensor, target_labels: torch.Tensor,
               target: torch.Tensor) -> dict[str, Any]:
        if classification:
            loss = F.cross_entropy(out, target_labels)
        else:
            loss = (out - target).pow(2).mean()
        return {"train_loss": loss, "connection_cost": (opt.flat.abs() * c_flat).sum()}

    def step_analytic(step: int, values: dict[str, float]) -> dict[str, Any]:
        with torch.no_grad():
            if emb is None:
                h = slot["x"]
            else:
                h = emb.weight[xtr].reshape(len(xtr), -1)[:, slot["index"]]  # (n, widths[0])
            hs, zs = [h], []
            for k in range(depth):  # forward, keeping what the backward needs
                b = biases[k]
                z = torch.addmm(b, h, weights_t[k]) if b is not None else h @ weights_t[k]
                if k < last:
                    zs.append(z)
                    h = act(z)
                    hs.append(h)
            out = z  # (n, n_out), slot order
            metrics = (finish(step, out, slot.get("labels"), slot["target"])
                       if want_metrics(step) else {})
            if classification:
                g = torch.softmax(out, 1).sub_(slot["target"]).mul_(scale)
            else:
                g = out.sub_(slot["target"]).mul_(scale)  # d loss / d out
            for k in range(last, -1, -1):  # backward
                torch.mm(g.t(), hs[k], out=gw[k])
                if gb[k] is not None:
                    torch.sum(g, 0, out=gb[k])
                if k:
                    g = act_bwd(g.mm(weights[k]), zs[k - 1])
            if emb is not None:  # d loss / d table: input slots -> token columns -> rows
                g_in = g.mm(weights[0])[:, slot["inverse"]].reshape(-1, emb.embedding_dim)
                g_emb.zero_().index_add_(0, xtr.reshape(-1), g_in)
            _cost_and_step(values)
        return metrics

    def step_autograd(step: int, values: dict[str, float]) -> dict[str, Any]:
        out = model(xtr)
        loss = F.cross_entropy(out, ytr) if classification else (out - ytr).pow(2).mean()
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            torch._foreach_copy_(pgrads, grads)
            metrics = ({"train_loss": loss.detach(),
                        "connection_cost": (opt.flat.abs() * c_flat).sum()}
                       if want_metrics(step) else {})
            _cost_and_step(values)
        return metrics

    def _cost_and_step(values: dict[str, float]) -> None:
        c = c_flat_bias if values["bias_cost"] else c_flat
        opt.grad.addcmul_(opt.flat.sign(), c, value=values["lam"])  # d(lam * cost)/d theta
        opt.step()

    def do_swaps(loop: traincore.Loop) -> None:
        t0 = time.perf_counter()
        layers = None if cfg.swap_io else range(1, model.depth)
        moments = opt.moments() if cfg.swap_moments else ()  # False: stale moments stay put
        report = relocate(model, mats, cfg.swap_top_k, layers, moments)
        if report.swaps:
            extras.swaps += report.swaps
            resync()
        extras.swap_seconds += time.perf_counter() - t0

    def evaluate(loop: traincore.Loop) -> None:
        if not has_test:
            return
        with torch.no_grad():
            out = model(xte)
            if classification:
                loop.log(test_loss=F.cross_entropy(out, yte),
                         test_accuracy=(out.argmax(1) == yte).float().mean())
            else:
                loop.log(test_loss=(out - yte).pow(2).mean())

    def analyse(loop: traincore.Loop) -> None:
        from .modularity import summarize

        loop.log(**summarize(model, cfg.prune_threshold))

    def snapshot(loop: traincore.Loop) -> None:
        if extras.snapshots and extras.snapshots[-1]["step"] == loop.step:
            return
        state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()
                 if not k.endswith(("distance", "coordinates"))}
        extras.snapshots.append({"step": loop.step, "state": state})

    class _Sync(traincore.Callback):
        def on_start(self, loop: traincore.Loop) -> None:
            resync()  # also after a resume restored permuted weights
            if loop.step == 0 and cfg.snapshot_every:
                snapshot(loop)

    cbs: list[traincore.Callback] = [_Sync(), traincore.Every(cfg.swap_every, do_swaps),
                                     traincore.Every(cfg.eval_every, evaluate, at_end=True),
                                     traincore.Every(cfg.analysis_every, analyse, at_end=True)]
    if cfg.snapshot_every:
        cbs.append(traincore.Every(cfg.snapshot_every, snapshot, at_end=True))
    cbs.extend(callbacks)
    run_config = {"bimt": cfg.to_dict(), "model": model.config(), "seed": seed,
                  "engine": engine, "n_train": len(xtr)}
    with traincore.cpu_threads(threads):
        hist = traincore.fit(
            step_analytic if engine == "analytic" else step_autograd, cfg.steps,
            state={"model": model, "optimizer": opt, "bimt": extras},
            schedules={"lam": lam_of, "bias_cost": lambda s: float(s >= bias_from)},
            callbacks=cbs, log_every=cfg.log_every, log_path=log_path,
            checkpoint_dir=checkpoint_dir, checkpoint_every=cfg.checkpoint_every, resume=resume,
            config=run_config, progress=cfg.progress, desc="bimt")
    return TrainingHistory(
        kind=task, engine=engine, steps=hist.steps, seconds=hist.seconds,
        swap_seconds=extras.swap_seconds, swaps=extras.swaps,
        train_loss=float(hist.last("train_loss", math.nan)),
        connection_cost=float(hist.last("connection_cost", math.nan)),
        test_loss=hist.last("test_loss") if has_test else None,
        test_accuracy=hist.last("test_accuracy") if has_test and classification else None,
        rows=hist.rows, snapshots=extras.snapshots, status=hist.status,
        resumed_from=hist.resumed_from)
