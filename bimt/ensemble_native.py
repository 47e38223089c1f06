"""The native gradient of a batched ensemble: ``native_step.c`` through :mod:`traincore.native`.

:func:`bimt.ensemble_train.fit_ensemble` computes its members' gradients with
:class:`NativeGradient` where it applies (a CPU ensemble of SiLU networks in float32 or
float64, regression or classification, without token embedding) and the C compiler is
there; otherwise, or with ``TRAINCORE_NATIVE=0``, with the batched tensor operations of
``_step``. Both give the same gradient, penalty and AdamW update up to rounding (the
tests hold float64 to 1e-12).

Why a compiled loop: the step of one member is a few hundred kFLOP, and the batched tensor
operations stream every member's activations through memory once per operation (about 27
operations a step). Member by member, the forward pass's activations are still in cache
for the backward pass, there is no per-operation dispatch, and the call releases Python's
interpreter lock, so a sweep's worker threads run side by side.
"""

from __future__ import annotations

import ctypes
from pathlib import Path
from typing import Any

import numpy as np
import torch

import traincore.native as native

from .ensemble import Ensemble

__all__ = ["NativeGradient", "native_library", "MAX_LAYERS"]

SOURCE = Path(__file__).with_name("native_step.c")
MAX_LAYERS = 64  # the kernel's per-layer pointer tables
_TYPES = {torch.float32: ("float", "0", "f32"), torch.float64: ("double", "1", "f64")}


_FUNCS: dict[torch.dtype, tuple[Any, Any, Any] | None] = {}


def native_library(dtype: torch.dtype) -> tuple[Any, Any, Any] | None:
    """``(gradient, exp, update)`` functions of the kernel for ``dtype`` (None: not
    available)."""
    if dtype not in _TYPES or not native.enabled():
        return None
    if dtype not in _FUNCS:  # configured once: threads then only call them
        _FUNCS[dtype] = _functions(dtype)
    return _FUNCS[dtype]


def _functions(dtype: torch.dtype) -> tuple[Any, Any, Any] | None:
    real, is_double, tag = _TYPES[dtype]
    lib = native.load(SOURCE, [f"REAL={real}", f"REAL_IS_DOUBLE={is_double}",
                               f"NAME(x)=x##_{tag}"])
    if lib is None:
        return None
    grad = getattr(lib, f"bimt_silu_grad_{tag}")
    grad.restype = ctypes.c_int64
    grad.argtypes = [ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p, ctypes.c_int64,
                     ctypes.c_int64, ctypes.c_double, ctypes.c_void_p, ctypes.c_void_p]
    exp = getattr(lib, f"bimt_exp_{tag}")
    exp.restype = None
    exp.argtypes = [ctypes.c_int64, ctypes.c_void_p, ctypes.c_void_p]
    update = getattr(lib, f"bimt_penalty_adamw_{tag}")
    update.restype = None
    update.argtypes = [ctypes.c_int64] + [ctypes.c_void_p] * 7 + [ctypes.c_double] * 5
    return grad, exp, update


def _applies(ens: Ensemble, kind: str) -> bool:
    return (ens.activation == "silu" and ens.in_fold == 1 and ens.flat.device.type == "cpu"
            and ens.flat.dtype in _TYPES and kind in ("regression", "classification")
            and len(ens.weights) < MAX_LAYERS)


class NativeGradient:
    """Writes every member's loss gradient into ``ens.gw`` / ``ens.gb`` in one C call;
    :meth:`update` then adds the penalty and takes the AdamW step in another.

    Build with :meth:`create` (None where the kernel does not apply or cannot be built),
    then :meth:`bind` the step's data (again after each swap pass), then call.
    """

    def __init__(self, ens: Ensemble, kind: str, fns: tuple[Any, Any, Any]) -> None:
        self.ens, self.fn, self.update_fn = ens, fns[0], fns[2]
        self.kind = 0 if kind == "regression" else 1
        widths = [ens.weights[0].shape[2]] + [w.shape[1] for w in ens.weights]
        self.widths = np.array(widths, dtype=np.int64)
        self.layer_ptrs: list[int] = []
        for k in range(len(ens.weights)):
            for t in (ens.weights[k], ens.biases[k], ens.gw[k], ens.gb[k]):
                self.layer_ptrs.append(0 if t is None else _address(t))
        self.ptrs = np.zeros(len(self.layer_ptrs) + 2, dtype=np.int64)
        self.work: torch.Tensor | None = None
        self.n = 0
        self.scale = 0.0
        self._bound: tuple[torch.Tensor, torch.Tensor] | None = None

    @classmethod
    def create(cls, ens: Ensemble, kind: str) -> NativeGradient | None:
        if not _applies(ens, kind):
            return None
        lib = native_library(ens.flat.dtype)
        return None if lib is None else cls(ens, kind, lib)

    def bind(self, x: torch.Tensor, target: torch.Tensor, scale: float) -> None:
        """The inputs (M, widths[0], n) and targets: (M, n_out, n) values for regression,
        (M, n) output slots for classification; ``scale``: d loss / d z per unit error."""
        x = x.contiguous()
        target = target.contiguous()
        m, n = self.ens.size, x.shape[2]
        if tuple(x.shape) != (m, int(self.widths[0]), n):
            raise ValueError(f"The inputs must have shape ({m}, {self.widths[0]}, points); "
                             f"got {tuple(x.shape)}.")
        want = (m, n) if self.kind else (m, int(self.widths[-1]), n)
        if tuple(target.shape) != want:  # the kernel reads exactly this much
            raise ValueError(f"The targets must have shape {want}; got {tuple(target.shape)}.")
        if self.kind == 1 and target.numel() and not (
                0 <= int(target.min()) and int(target.max()) < int(self.widths[-1])):
            raise ValueError("A class label is outside the network's outputs.")
        self._bound = (x, target.to(torch.int64) if self.kind else target)
        self.ptrs[:-2] = self.layer_ptrs
        self.ptrs[-2:] = [_address(t) for t in self._bound]
        if self.n != n or self.work is None:
            size = 2 * int(self.widths[1:-1].sum()) * n + 2 * int(self.widths.max()) * n
            self.work = torch.empty(size, dtype=self.ens.flat.dtype)
        self.n, self.scale = n, float(scale)

    def __call__(self) -> None:
        if self._bound is None or self.work is None:
            raise RuntimeError("bind() the step's data before computing a gradient")
        self.fn(self.ens.size, len(self.widths) - 1, self.widths.ctypes.data, self.n,
                self.kind, self.scale, self.ptrs.ctypes.data, _address(self.work))


    def update(self, factor: float, bias_on: bool) -> None:
        """The penalty (lambda x ``factor``, bias costs when ``bias_on``) added to the
        gradient, then the AdamW update of every member: one pass over the parameters, as
        ``ensemble_train._update`` does it in PyTorch operations."""
        ens, cfg = self.ens, self.ens.config
        ens.t += 1
        b1, b2 = cfg.betas
        pen = ens.penalty_weights(factor, bias_on)
        self.update_fn(ens.flat.numel(), *(_address(t) for t in (
            ens.flat, ens.grad, ens.m1, ens.m2, pen, ens.lr)),
            0 if ens.decay is None else _address(ens.decay),
            b1, b2, cfg.eps, 1 - b1 ** ens.t, 1 - b2 ** ens.t)


def _address(t: torch.Tensor) -> int:
    """The address of a tensor whose members' blocks are contiguous one after another."""
    if not t.is_contiguous():
        raise ValueError("The native gradient needs contiguous tensors.")
    return t.data_ptr()
