"""Scaling symmetries and the blocks of basis functions they separate."""

from __future__ import annotations

import numpy as np
import sympy
import torch

from aipoincare import ExpressionBasis, PolynomialBasis
from aipoincare.evaluate import compile_torch
from aipoincare.scaling import scaling_blocks, scaling_weights, weight_blocks


def test_scaling_weights_and_blocks(lv, rossler, fluid2d):
    w = scaling_weights(lv.equations, lv.variables)
    assert w.T.tolist() == [[1, 1, 1]]
    assert scaling_weights(rossler.equations, rossler.variables).shape[1] == 0
    w2 = scaling_weights(fluid2d.equations, fluid2d.variables, fluid2d.constraints)
    assert w2.shape == (12, 2)
    b = PolynomialBasis(fluid2d.variables, 4)
    blocks = weight_blocks(b.exponents, w2)
    assert sorted(np.concatenate(blocks).tolist()) == list(range(b.size))
    assert max(map(len, blocks)) == 441  # bidegree (2, 2) in positions and velocities
    # every equation is weighted-homogeneous: f_k(2^w x) = 2^(w_k + c) f_k(x), one c
    f = compile_torch(fluid2d.equations, fluid2d.variables)
    pt = torch.tensor(np.random.default_rng(0).normal(size=(1, 12)))
    for wv in w2.T:
        ratio = f(pt * 2.0 ** torch.tensor(wv, dtype=torch.float64)) / f(pt)
        c = torch.log2(ratio[0]) - torch.tensor(wv, dtype=torch.float64)
        np.testing.assert_allclose(c.numpy(), np.full(12, float(c[0])), atol=1e-9)


def test_scaling_blocks_of_a_system(lv, fluid2d):
    weights, blocks = scaling_blocks(lv, PolynomialBasis(lv.variables, 3))
    assert weights.T.tolist() == [[1, 1, 1]] and [len(b) for b in blocks] == [3, 6, 10]
    # a non-polynomial basis is one block, whatever the symmetries
    log_basis = ExpressionBasis(lv.variables, [sympy.log(lv.variables[0])])
    weights, blocks = scaling_blocks(lv, log_basis)
    assert weights.shape == (3, 0) and [b.tolist() for b in blocks] == [[0]]


def test_a_symmetry_hidden_by_a_function_is_not_claimed():
    x, y = sympy.symbols("x y")
    # sin(x) forces the weight of x to 0; y -> s y with t fixed still maps the system to itself
    assert scaling_weights([sympy.sin(x), y], [x, y]).T.tolist() == [[0, 1]]
    assert scaling_weights([x ** sympy.pi, y], [x, y]).T.tolist() == [[0, 1]]
