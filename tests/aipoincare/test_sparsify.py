"""Sparsification: Cayley rotations are orthogonal; L1 rotation recovers a sparse basis."""

from __future__ import annotations

import numpy as np
import sympy
import torch

from aipoincare.sparsify import cayley, l1_rotation, rationalize


def test_cayley_is_orthogonal():
    s = torch.randn(5, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    q = cayley(s)
    assert torch.allclose(q @ q.T, torch.eye(5, dtype=torch.float64), atol=1e-12)


def test_l1_rotation_recovers_sparse_vectors():
    sparse = np.zeros((12, 3))
    sparse[[0, 1], 0] = [1.0, 1.0]
    sparse[[4], 1] = [1.0]
    sparse[[7, 8, 9], 2] = [1.0, -2.0, 1.0]
    sparse /= np.linalg.norm(sparse, axis=0)
    rot = np.linalg.qr(np.random.default_rng(0).normal(size=(3, 3)))[0]
    dense = sparse @ rot  # a rotated, dense basis of the same space
    w = l1_rotation(dense, restarts=4, steps=40, seed=0)
    assert np.abs(w).sum() < np.abs(dense).sum()
    assert np.abs(w).sum() <= np.abs(sparse).sum() + 1e-6
    support = {tuple(np.nonzero(np.abs(c) > 1e-6)[0]) for c in w.T}
    assert support == {(0, 1), (4,), (7, 8, 9)}


def test_rationalize():
    vec = rationalize(np.array([[2.0], [-1.0], [1e-9], [0.6666666666666]]))
    assert vec == [{0: 1, 1: sympy.Rational(-1, 2), 3: sympy.Rational(1, 3)}]
