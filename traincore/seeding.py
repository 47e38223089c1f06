"""One seed for python, numpy and torch; RNG state capture for bit-identical resume."""

from __future__ import annotations

import os
import random
from typing import Any

import numpy as np
import torch

from .validate import check_int

__all__ = ["seed_everything", "numpy_rng", "torch_generator", "get_rng_state", "set_rng_state"]


def _check_seed(seed: int) -> int:
    return check_int(seed, "seed", ge=0, le=2**63 - 1)


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed python's ``random``, numpy's global generator and torch (CPU and CUDA).

    Parameters
    ----------
    seed : int
        Any integer in ``[0, 2**63)``.
    deterministic : bool
        Also ask torch for deterministic kernels (slower on GPU; CPU kernels already are).

    Examples
    --------
    >>> seed_everything(0); a = torch.rand(2)
    >>> seed_everything(0); bool(torch.equal(a, torch.rand(2)))
    True
    """
    seed = _check_seed(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)  # numpy's legacy seeding takes 32 bits
    torch.manual_seed(seed)
    if deterministic:
        # cuBLAS needs this workspace setting for reproducible matmuls on CUDA >= 10.2
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True


def numpy_rng(seed: int) -> np.random.Generator:
    """A fresh numpy ``Generator`` (PCG64) for code that takes randomness explicitly."""
    return np.random.default_rng(_check_seed(seed))


def torch_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A fresh seeded ``torch.Generator`` on ``device``."""
    gen = torch.Generator(device=device)
    gen.manual_seed(_check_seed(seed))
    return gen


def get_rng_state() -> dict[str, Any]:
    """Every global RNG state, in a form ``torch.load(weights_only=True)`` accepts."""
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "python": _tuples_to_lists(random.getstate()),
        "numpy": {
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`get_rng_state` captured."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np_s = state["numpy"]
    np.random.set_state(
        (
            "MT19937",
            np_s["keys"].numpy().astype(np.uint32),
            np_s["pos"],
            np_s["has_gauss"],
            np_s["cached_gaussian"],
        )
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _tuples_to_lists(obj: Any) -> Any:
    if isinstance(obj, tuple):
        return [_tuples_to_lists(o) for o in obj]
    return obj
