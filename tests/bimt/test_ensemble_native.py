"""The native gradient (bimt/native_step.c) against the batched PyTorch path."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
import torch

import bimt
import traincore.native as native
from bimt.config import BIMTConfig
from bimt.ensemble import Ensemble
from bimt.ensemble_native import NativeGradient, native_library
from bimt.ensemble_train import _Slots, _step, _Work, fit_ensemble

# skips without a compiler (the PyTorch path is tested anyway), except in CI, which installs one
pytestmark = pytest.mark.skipif(
    (native.compiler() is None and not os.environ.get("CI")) or not native.enabled(),
    reason="needs a C compiler (the PyTorch path is tested anyway)")


def _ensemble(widths, bias, dtype, members=3, lam=2e-3, settings=None):
    models = [bimt.BioMLP(widths, bias=bias, seed=s).to(dtype) for s in range(members)]
    if settings is None:
        return Ensemble(models, BIMTConfig(steps=10, lam=lam))
    return Ensemble(models, [BIMTConfig(steps=10, lam=lam, **settings[i % len(settings)])
                             for i in range(members)])


def _data(widths, kind, dtype, members=3, points=37, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(members, points, widths[0], generator=g, dtype=torch.float64) * 4 - 2)
    if kind == "regression":
        y = torch.randn(members, points, widths[-1], generator=g, dtype=torch.float64)
        return x.to(dtype), y.to(dtype)
    return x.to(dtype), torch.randint(0, widths[-1], (members, points), generator=g)


# per-member learning rates and weight decays: the update's general form
SETTINGS = [dict(lr=2e-3, weight_decay=0.1), dict(lr=5e-3), dict(lr=1e-3, weight_decay=0.3)]


def _gradients(widths, bias, kind, dtype, steps=3):
    """``(grad, flat, m1, m2)`` after ``steps`` steps of each path (the gradient with the
    penalty, the parameters and Adam's moments)."""
    found = []
    for use_native in (False, True):
        ens = _ensemble(widths, bias, dtype, settings=SETTINGS)
        x, y = _data(widths, kind, dtype)
        slots, work = _Slots(ens, x, y, kind), _Work(ens, x.shape[1])
        nat = NativeGradient.create(ens, kind) if use_native else None
        if use_native:
            assert nat is not None
            nat.bind(slots.x, slots.grad if kind == "regression" else slots.value, slots.scale)
        with torch.no_grad():
            for i in range(steps):
                _step(ens, slots, work, kind, 1.0 + i, i > 0, False, nat)
        assert ens.t == steps
        found.append([t.clone() for t in (ens.grad, ens.flat, ens.m1, ens.m2)])
    return found


CASES = [([4, 20, 20, 2], True, "regression"), ([3, 7, 5, 2], False, "regression"),
         ([2, 9, 13, 6, 3], True, "classification"), ([5, 1, 4], True, "classification"),
         ([6, 17, 1], False, "regression")]


@pytest.mark.parametrize("widths, bias, kind", CASES)
def test_step_equals_the_pytorch_path_float64(widths, bias, kind):
    torch_path, native_path = _gradients(widths, bias, kind, torch.float64)
    for name, a, b in zip(("grad", "flat", "m1", "m2"), native_path, torch_path, strict=True):
        assert float(b.abs().max()) > 0, name
        assert torch.allclose(a, b, rtol=1e-12, atol=1e-13 * float(b.abs().max())), name


@pytest.mark.parametrize("widths, bias, kind", CASES[:3])
def test_step_equals_the_pytorch_path_float32(widths, bias, kind):
    torch_path, native_path = _gradients(widths, bias, kind, torch.float32)
    for name, a, b in zip(("grad", "flat", "m1", "m2"), native_path, torch_path, strict=True):
        assert float((a - b).abs().max()) < 2e-5 * float(b.abs().max()), name


def test_nan_weights_give_nan_gradients():
    ens = _ensemble([3, 6, 2], True, torch.float32, members=2)
    x, y = _data([3, 6, 2], "regression", torch.float32, members=2)
    with torch.no_grad():
        ens.weights[0][1, 2, 0] = math.nan  # member 1 only
    slots = _Slots(ens, x, y, "regression")
    nat = NativeGradient.create(ens, "regression")
    nat.bind(slots.x, slots.grad, slots.scale)
    nat()
    g1 = torch.cat([w[1].reshape(-1) for w in ens.gw])
    g0 = torch.cat([w[0].reshape(-1) for w in ens.gw])
    assert torch.isnan(g1).any() and torch.isfinite(g0).all()


def test_vectorised_exp_is_within_two_ulp():
    _, exp, _ = native_library(torch.float32)
    x = np.concatenate([np.linspace(-87, 88, 200_001), [0.0, -1e-30, 1e-30]]).astype(np.float32)
    y = np.empty_like(x)
    exp(x.size, x.ctypes.data, y.ctypes.data)
    ref = np.exp(x.astype(np.float64))
    assert float(np.max(np.abs(y - ref) / ref)) < 2.5e-7
    special = np.array([np.nan, 100.0, -100.0], dtype=np.float32)
    out = np.empty_like(special)
    exp(special.size, special.ctypes.data, out.ctypes.data)
    assert np.isnan(out[0]) and np.isfinite(out[1]) and 0 <= out[2] < 1e-37  # clamped


def test_fit_uses_it_and_matches_the_pytorch_path(monkeypatch):
    # classification without folded inputs: the kernel's softmax path, trained end to end
    widths, kind = [4, 11, 3], "classification"
    x, y = _data(widths, kind, torch.float64, points=50, seed=3)
    results = {}
    for flag in ("1", "0"):
        monkeypatch.setenv(native.NATIVE_ENV, flag)
        ens = Ensemble([bimt.BioMLP(widths, seed=s).double() for s in range(3)],
                       BIMTConfig(steps=300, swap_every=50, lam=1e-3))
        assert (NativeGradient.create(ens, kind) is not None) == (flag == "1")
        res = fit_ensemble(ens, x, y, x, y, kind=kind)
        results[flag] = (ens.flat.clone(), res)
    (a, ra), (b, rb) = results["1"], results["0"]
    assert float((a - b).abs().max() / b.abs().max()) < 1e-9
    assert ra.swaps == rb.swaps and sum(ra.swaps) > 0
    assert ra.test_loss == pytest.approx(rb.test_loss, rel=1e-9)


def test_what_it_does_not_take_falls_back():
    tanh = Ensemble([bimt.BioMLP([3, 5, 2], activation="tanh", seed=s) for s in range(2)],
                    BIMTConfig(steps=5))
    assert NativeGradient.create(tanh, "regression") is None
    folded = Ensemble([bimt.BioMLP([6, 5, 2], in_fold=2, seed=s) for s in range(2)],
                      BIMTConfig(steps=5))
    assert NativeGradient.create(folded, "regression") is None
    half = _ensemble([3, 5, 2], True, torch.float32, members=2)
    assert NativeGradient.create(half, "regression") is not None
    with pytest.raises(RuntimeError, match="bind"):
        NativeGradient.create(half, "regression")()
    nat = NativeGradient.create(half, "classification")
    x = torch.zeros(2, 3, 4)
    with pytest.raises(ValueError, match="outside"):
        nat.bind(x, torch.full((2, 4), 2), 1.0)
    with pytest.raises(ValueError, match="targets must have shape"):
        nat.bind(x, torch.zeros(2, 5, dtype=torch.long), 1.0)  # 5 points for 4 inputs
    reg = NativeGradient.create(half, "regression")
    with pytest.raises(ValueError, match=r"targets must have shape \(2, 2, 4\)"):
        reg.bind(x, torch.zeros(2, 4, 2), 1.0)  # points and outputs the wrong way round
    with pytest.raises(ValueError, match="inputs must have shape"):
        reg.bind(torch.zeros(2, 4, 3), torch.zeros(2, 2, 3), 1.0)


def test_threads_at_once_give_what_one_thread_gives():
    # the kernel keeps no state of its own: two chunks computed at the same time on two
    # threads (as a sweep's worker threads do) equal the same chunks one after the other
    import threading

    def chunk(seed):
        ens = _ensemble([4, 12, 9, 2], True, torch.float32, members=4)
        x, y = _data([4, 12, 9, 2], "regression", torch.float32, members=4, seed=seed)
        slots = _Slots(ens, x, y, "regression")
        nat = NativeGradient.create(ens, "regression")
        nat.bind(slots.x, slots.grad, slots.scale)
        return ens, nat

    alone = []
    for seed in (1, 2):
        ens, nat = chunk(seed)
        nat()
        alone.append(ens.grad.clone())
    pairs = [chunk(seed) for seed in (1, 2)]

    def run(nat):
        for _ in range(200):
            nat()

    threads = [threading.Thread(target=run, args=(nat,)) for _, nat in pairs]
    [t.start() for t in threads]
    [t.join() for t in threads]
    for (ens, _), ref in zip(pairs, alone, strict=True):
        assert torch.equal(ens.grad, ref)
