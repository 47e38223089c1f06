"""Batched ensembles: M BioMLPs of one structure trained as one stacked model.

Every weight is stored as ``[M, out, in]`` (biases ``[M, out]``), so one training step of
all M members is one batched matrix product per layer instead of M small ones. Each member
keeps its own everything: initial weights (those of ``BioMLP(widths, seed=its seed)``, as
:func:`bimt.train` would start from), data, penalty strength ``lam`` (and learning rate and
weight decay), Adam moments, swap decisions and input/output permutations. Only settings
that shape the computation (steps, schedule phases, swap interval, loss kind) are shared.

The arithmetic is that of :class:`bimt.AnalyticEngine` on :class:`traincore.FlatAdamW`
done member-wise, so every member ends where its own :func:`bimt.train` run ends, up to
float rounding (tested in float64 to 1e-6 relative, weights and test loss).

Storage: one flat vector holds, parameter after parameter, the block ``[M, *shape]`` of
every parameter (so each block is contiguous and a batched product writes its gradient in
place); the Adam moments and the gradient use the same layout.

References
----------
Liu, Gan & Tegmark, "Seeing is believing: brain-inspired modular training for mechanistic
interpretability", arXiv:2305.08746.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

import traincore

from .config import BIMTConfig
from .cost import bias_costs, cost_matrices
from .layers import ACTIVATIONS
from .model import BioMLP
from .spatial import describe
from .training import model_from_config

__all__ = ["Ensemble", "PER_MEMBER"]

#: BIMTConfig fields that may differ between the members of one ensemble.
PER_MEMBER = ("lam", "lr", "weight_decay")
#: Fields that only change what is logged or shown, never the trained weights.
_IGNORED = ("eval_every", "log_every", "analysis_every", "snapshot_every", "checkpoint_every",
            "progress", "threads", "engine", "prune_threshold")


def _shared_config(configs: Sequence[BIMTConfig]) -> BIMTConfig:
    ref = configs[0]
    for i, cfg in enumerate(configs):
        if not isinstance(cfg, BIMTConfig):
            raise TypeError(f"Member {i}'s config must be a BIMTConfig; got "
                            f"{type(cfg).__name__}.")
        if cfg.lr_decay != "none":
            raise ValueError(f"A batched ensemble trains at a constant learning rate; member "
                             f"{i} has lr_decay={cfg.lr_decay!r}. Use lr_decay='none', or train "
                             "it alone with bimt.train.")
        for name, value in cfg.to_dict().items():
            if name not in PER_MEMBER and name not in _IGNORED and value != ref.to_dict()[name]:
                raise ValueError(f"The members of one ensemble may differ only in "
                                 f"{list(PER_MEMBER)}; member {i} has {name}={value!r}, member "
                                 f"0 {ref.to_dict()[name]!r}. Put them in separate chunks.")
    if ref.batch_size is not None:
        raise ValueError("A batched ensemble trains on full batches (batch_size=None, the "
                         f"paper's setting); got batch_size={ref.batch_size}. Train minibatch "
                         "runs one by one with bimt.train.")
    return ref


def _check_models(models: Sequence[BioMLP]) -> list[BioMLP]:
    models = list(models)
    if not models:
        raise ValueError("An ensemble needs at least one member model; got none.")
    ref = models[0]
    for i, m in enumerate(models):
        if not isinstance(m, BioMLP):
            raise TypeError(f"Ensemble members must be bimt.BioMLP; member {i} is "
                            f"{type(m).__name__}.")
        if m.embedding is not None:
            raise ValueError("A batched ensemble does not take token embeddings yet (tasks "
                             "modular-addition, permutation-s4); train those with bimt.train.")
        if m.config() != ref.config():
            raise ValueError(f"Ensemble members must share one structure; member {i} is "
                             f"{m.config()}, member 0 {ref.config()}.")
        p, q = next(m.parameters()), next(ref.parameters())
        if (p.dtype, p.device) != (q.dtype, q.device):
            raise ValueError(f"Ensemble members must share dtype and device; member {i} is "
                             f"{p.dtype} on {p.device}, member 0 {q.dtype} on {q.device}.")
    return models


class Ensemble:
    """M :class:`bimt.BioMLP` networks of one structure, stacked for batched training.

    Parameters
    ----------
    models : sequence of BioMLP
        The members at their initial weights (copied; the models are not changed). All
        share widths, activation and dtype; no token embedding.
    configs : BIMTConfig or sequence of BIMTConfig
        One for all, or one per member; members may differ in :data:`PER_MEMBER` fields.

    Attributes
    ----------
    size : int
        Number of members M.
    weights, biases : list of Tensor, shapes (M, out, in) and (M, out)
        Views into :attr:`flat`, in slot order (as swaps left them).
    in_perm, out_perm : Tensor, shapes (M, n_in) and (M, n_out)
        Each member's input/output permutation (as ``BioMLP.in_perm`` / ``out_perm``).

    Examples
    --------
    >>> models = [BioMLP([2, 6, 1], seed=s) for s in range(3)]
    >>> ens = Ensemble(models, BIMTConfig(steps=20, swap_every=10))
    >>> ens.size, ens.weights[0].shape, ens.member(1).widths
    (3, torch.Size([3, 6, 2]), [2, 6, 1])
    """

    def __init__(self, models: Sequence[BioMLP], configs: BIMTConfig | Sequence[BIMTConfig]
                 ) -> None:
        models = _check_models(models)
        configs = [configs] * len(models) if isinstance(configs, BIMTConfig) else list(configs)
        if len(configs) != len(models):
            raise ValueError(f"Give one config for all members or one per member; got "
                             f"{len(configs)} configs for {len(models)} models.")
        self.config = _shared_config(configs)
        ref = models[0]
        self.size = m = len(models)
        self.model_config = ref.config()
        self.activation = ref.activation
        self.in_fold = ref.in_fold
        self.spec = describe(ref)
        named = [(n, p) for n, p in ref.named_parameters() if p.requires_grad]
        self.names = [n for n, _ in named]
        self.shapes = [tuple(p.shape) for _, p in named]
        params = torch.tensor(0, dtype=named[0][1].dtype).element_size() * m * \
            sum(p.numel() for _, p in named)
        traincore.check_memory(8 * params, f"An ensemble of {m} networks ({params} bytes of "
                               "parameters)", "train fewer members per chunk")
        blocks = [torch.stack([dict(mod.named_parameters())[n].detach() for mod in models])
                  for n in self.names]
        self.flat = torch.cat([b.reshape(-1) for b in blocks])
        self.offsets = [0]
        for b in blocks:
            self.offsets.append(self.offsets[-1] + b.numel())
        self.grad = torch.zeros_like(self.flat)
        self.m1 = torch.zeros_like(self.flat)
        self.m2 = torch.zeros_like(self.flat)
        self.t = 0
        self.in_perm = torch.stack([mod.in_perm for mod in models])
        self.out_perm = torch.stack([mod.out_perm for mod in models])
        self._setup_views()
        self._setup_vectors(ref, configs)
        self.swaps = torch.zeros(m, dtype=torch.long, device=self.flat.device)
        self._slots: tuple[Any, ...] | None = None

    # -- storage ----------------------------------------------------------------------------
    def views(self, vec: torch.Tensor) -> dict[str, torch.Tensor]:
        """Views ``[M, *shape]`` of a flat vector, keyed by parameter name."""
        return {n: vec[a:b].view(self.size, *s) for n, s, a, b in
                zip(self.names, self.shapes, self.offsets[:-1], self.offsets[1:], strict=True)}

    def _per_member(self, values: Sequence[float] | torch.Tensor) -> torch.Tensor:
        """A value per member spread over the flat layout (each parameter block)."""
        v = torch.as_tensor(values, dtype=self.flat.dtype, device=self.flat.device)
        return torch.cat([v[:, None].expand(self.size, math.prod(s)).reshape(-1)
                          for s in self.shapes])

    def _setup_views(self) -> None:
        depth = len(self.model_config["widths"]) - 1
        p, g = self.views(self.flat), self.views(self.grad)
        self.weights = [p[f"layers.{k}.weight"] for k in range(depth)]
        self.weights_t = [w.transpose(1, 2) for w in self.weights]
        self.biases = [p.get(f"layers.{k}.bias") for k in range(depth)]
        self.biases_row = [None if b is None else b[:, None, :] for b in self.biases]
        self.gw = [g[f"layers.{k}.weight"] for k in range(depth)]
        self.gb = [g.get(f"layers.{k}.bias") for k in range(depth)]
        self.act, self.act_bwd = ACTIVATIONS[self.activation]

    def _setup_vectors(self, ref: BioMLP, configs: Sequence[BIMTConfig]) -> None:
        cfg = self.config
        cost = (cfg.weight_factor, cfg.l0, cfg.last_layer_cost)
        self.mats = cost_matrices(ref, *cost, spec=self.spec)
        with_bias = {**self.mats, **bias_costs(ref, cfg.l0, cfg.last_layer_cost, self.spec)}
        zeros = {n: torch.zeros(s, dtype=self.flat.dtype) for n, s in zip(self.names,
                                                                          self.shapes, strict=True)}
        self.c = self._stacked({**zeros, **self.mats})
        self.c_bias = self._stacked({**zeros, **with_bias})
        self.lam = [c.lam for c in configs]
        lrs = [c.lr for c in configs]
        self.lr_scalar = lrs[0] if len(set(lrs)) == 1 else None  # the common case: a scalar
        self.lr = self._per_member(lrs)
        wd = [c.weight_decay for c in configs]
        self.decay = None if not any(wd) else 1 - self.lr * self._per_member(wd)
        #: the one weight decay of all members (None when they differ)
        self.wd_scalar = wd[0] if len(set(wd)) == 1 else None
        self._penalty: dict[tuple[float, bool], torch.Tensor] = {}

    def _stacked(self, per_param: dict[str, torch.Tensor]) -> torch.Tensor:
        """A parameter-shaped tensor per name, the same for every member, in flat layout."""
        dev, dt = self.flat.device, self.flat.dtype
        return torch.cat([per_param[n].to(dev, dt).expand(self.size, *s).reshape(-1)
                          for n, s in zip(self.names, self.shapes, strict=True)])

    def penalty_weights(self, factor: float, bias_on: bool) -> torch.Tensor:
        """``lam_m * factor * C`` per element (computed once per lambda phase)."""
        key = (factor, bias_on)
        if key not in self._penalty:
            lam = self._per_member([lam * factor for lam in self.lam])  # as lambda_schedule
            self._penalty[key] = lam * (self.c_bias if bias_on else self.c)
        return self._penalty[key]

    # -- one member ---------------------------------------------------------------------------
    def member(self, i: int) -> BioMLP:
        """Member ``i`` as a standalone :class:`BioMLP` (a copy of its current state)."""
        if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < self.size:
            raise ValueError(f"The member index must be an integer from 0 to {self.size - 1}; "
                             f"got {i!r}.")
        model = model_from_config({"class": "BioMLP", **self.model_config})
        model.to(self.flat.device, self.flat.dtype)
        views = self.views(self.flat)
        with torch.no_grad():
            for name, p in model.named_parameters():
                p.copy_(views[name][i])
            model.in_perm.copy_(self.in_perm[i])
            model.out_perm.copy_(self.out_perm[i])
        return model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Every member's outputs in the original order.

        Parameters
        ----------
        x : Tensor
            Inputs in the original order, one batch per member, shape
            ``(M, n, widths[0])``.

        Returns
        -------
        Tensor
            Shape ``(M, n, widths[-1])``.
        """
        with torch.no_grad():
            h = self._gather_inputs(x)
            last = len(self.weights) - 1
            for k in range(last + 1):
                h = self._linear(h, k)
                if k < last:
                    h = self.act(h)
            return h.gather(2, self._output_index()[:, None, :].expand_as(h))

    def _linear(self, h: torch.Tensor, k: int) -> torch.Tensor:
        b = self.biases_row[k]
        return torch.baddbmm(b, h, self.weights_t[k]) if b is not None else \
            torch.bmm(h, self.weights_t[k])

    def _input_index(self) -> torch.Tensor:
        """(M, widths[0]): the column of the input feeding each input slot (all folds)."""
        n = self.in_perm.shape[1]
        folds = torch.arange(self.in_fold, device=self.in_perm.device)[:, None] * n
        return (folds[None] + self.in_perm[:, None, :]).reshape(self.size, -1)

    def _output_index(self) -> torch.Tensor:
        """(M, n_out): the slot holding each original output."""
        return torch.argsort(self.out_perm, dim=1)

    def _gather_inputs(self, x: torch.Tensor) -> torch.Tensor:
        idx = self._input_index()
        return x.gather(2, idx[:, None, :].expand(-1, x.shape[1], -1)).contiguous()
