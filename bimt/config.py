"""Settings of a BIMT run: :class:`BIMTConfig` and the lambda schedule.

References
----------
Liu, Gan & Tegmark, "Seeing is believing: brain-inspired modular training for mechanistic
interpretability", arXiv:2305.08746 (the defaults are the paper's).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from traincore import check_bool, check_choice, check_int, check_number

__all__ = ["BIMTConfig", "lambda_schedule", "bias_schedule", "lr_schedule", "TASK_KINDS",
           "ENGINES", "LR_DECAYS"]

#: How the loss is chosen: from the labels' dtype (auto), MSE, or cross-entropy.
TASK_KINDS = ("auto", "regression", "classification")
#: Training steps: "analytic" (BioMLP only, hand-written backward) or "autograd" (any model).
ENGINES = ("auto", "analytic", "autograd")
#: Learning-rate schedules: constant (the paper's), or a cosine from ``lr`` down to 0.
LR_DECAYS = ("none", "cosine")


@dataclass(frozen=True)
class BIMTConfig:
    """Settings of a BIMT run; defaults are the paper's.

    Validated on construction; ``dataclasses.replace(cfg, lam=1e-2)`` makes a variant.
    """

    steps: int = 20000            # paper: 20000 full-batch steps for the symbolic formulas
    lr: float = 2e-3              # paper: AdamW, learning rate 2e-3
    lr_decay: str = "none"        # "none": constant lr (paper); "cosine": lr -> 0 at the end
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
    batch_size: int | None = None  # None: full batch, as in the paper; else seeded minibatches

    def __post_init__(self) -> None:
        for name in ("steps", "snapshot_every", "threads", "checkpoint_every"):
            check_int(getattr(self, name), name, ge=0, where=_WHERE)
        for name in ("swap_every", "eval_every", "log_every", "analysis_every", "swap_top_k"):
            check_int(getattr(self, name), name, ge=1, where=_WHERE)
        if self.batch_size is not None:
            check_int(self.batch_size, "batch_size", ge=1, where=_WHERE,
                      fix="or None for full batches")
        check_number(self.lr, "lr", gt=0, where=_WHERE)
        check_number(self.eps, "eps", gt=0, where=_WHERE)
        for name in ("weight_decay", "lam", "weight_factor", "l0"):
            check_number(getattr(self, name), name, ge=0, where=_WHERE)
        for name in ("bias_cost_from", "prune_threshold"):
            check_number(getattr(self, name), name, ge=0, le=1, where=_WHERE)
        for name in ("last_layer_cost", "swap_io", "swap_moments"):
            check_bool(getattr(self, name), name, where=_WHERE)
        _fractions(self.betas, "betas", 2, "two numbers in [0, 1)",
                   lambda v: 0 <= v < 1)
        _fractions(self.lam_phases, "lam_phases", 2, "two fractions 0 <= a <= b <= 1",
                   lambda v: 0 <= v <= 1)
        if self.lam_phases[0] > self.lam_phases[1]:
            raise ValueError(f"The 'lam_phases' {_WHERE} must be two fractions 0 <= a <= b <= 1; "
                             f"got {self.lam_phases!r}; put the earlier phase first.")
        _fractions(self.lam_factors, "lam_factors", 3, "three non-negative numbers",
                   lambda v: v >= 0)
        check_choice(self.task, "task", TASK_KINDS, where=_WHERE)
        check_choice(self.engine, "engine", ENGINES, where=_WHERE)
        check_choice(self.lr_decay, "lr_decay", LR_DECAYS, where=_WHERE)

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (saved in checkpoints; a resume with another config is refused)."""
        d = dataclasses.asdict(self)
        d.pop("progress")  # how a run is displayed does not change its result
        if d["lr_decay"] == "none":  # the default stays out: older checkpoints still resume
            d.pop("lr_decay")
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


#: Where a BIMTConfig field sits, for the shared message format of traincore.validate.
_WHERE = "of BIMTConfig"


def _fractions(values: Any, name: str, n: int, expected: str,
               ok: Callable[[float], bool]) -> None:
    """A tuple of ``n`` finite numbers each passing ``ok`` (one message for all faults)."""
    good = (isinstance(values, (tuple, list)) and len(values) == n
            and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                    and math.isfinite(v) and ok(v) for v in values))
    if not good:
        raise ValueError(f"The '{name}' {_WHERE} must be {expected}; got {values!r}.")


def lambda_schedule(config: BIMTConfig) -> Callable[[int], float]:
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


def lr_schedule(config: BIMTConfig) -> Callable[[int], float]:
    """``step -> learning rate``: ``lr`` throughout (``lr_decay="none"``), or a half cosine
    from ``lr`` at step 0 down to 0 after the last step (``"cosine"``).

    Examples
    --------
    >>> f = lr_schedule(BIMTConfig(steps=100, lr=1e-3, lr_decay="cosine"))
    >>> [round(f(s), 6) for s in (0, 50, 99)]
    [0.001, 0.0005, 0.0]
    >>> lr_schedule(BIMTConfig(steps=100, lr=1e-3))(99)
    0.001
    """
    lr, steps = config.lr, config.steps
    if config.lr_decay == "none":
        return lambda step: lr
    return lambda step: 0.5 * lr * (1 + math.cos(math.pi * min(step, steps) / max(steps, 1)))


def bias_schedule(config: BIMTConfig) -> Callable[[int], float]:
    """``step -> 1.0`` once biases pay the connection cost (from ``bias_cost_from``), else 0.

    Examples
    --------
    >>> f = bias_schedule(BIMTConfig(steps=8))
    >>> [f(s) for s in range(8)]
    [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0]
    """
    start = int(round(config.bias_cost_from * config.steps))
    return lambda step: float(step >= start)


