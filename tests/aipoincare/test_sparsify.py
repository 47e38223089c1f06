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


def test_reduce_sparse_keeps_the_span_and_never_adds_terms():
    from aipoincare.sparsify import reduce_sparse

    rng = np.random.default_rng(5)
    sparse = [{int(k): sympy.Integer(int(rng.integers(1, 4))) for k in
               rng.choice(20, 3, replace=False)} for _ in range(6)]
    mix = rng.integers(-2, 3, size=(6, 6))
    while round(abs(np.linalg.det(mix))) == 0:
        mix = rng.integers(-2, 3, size=(6, 6))
    dense = [{} for _ in range(6)]
    for i in range(6):
        for j in range(6):
            for k, c in sparse[j].items():
                dense[i][k] = dense[i].get(k, 0) + int(mix[i, j]) * c
        dense[i] = {k: c for k, c in dense[i].items() if c != 0}
    out = reduce_sparse(dense)

    def mat(vs):
        return sympy.Matrix([[v.get(k, 0) for k in range(20)] for v in vs])

    assert mat(out).rank() == 6 == mat(out + dense).rank()  # same span, still a basis
    assert sum(map(len, out)) < sum(map(len, dense))
    assert all(len(o) <= len(d) for o, d in zip(out, dense, strict=True))
