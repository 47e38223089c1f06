"""Functional independence: greedy by simplicity, exact and numerical Jacobian ranks."""

from __future__ import annotations

import numpy as np
import sympy
import torch

from aipoincare.basis import PolynomialBasis
from aipoincare.constraints import ConstraintSolver
from aipoincare.exact import random_prime
from aipoincare.independence import exact_independence, numerical_independence, simplicity_order

x, y, z = sympy.symbols("x y z")


def _vec(expr, basis):
    poly = sympy.Poly(sympy.expand(expr), *basis.variables)
    return {basis.exprs.index(sympy.Mul(*[v ** k for v, k in zip(basis.variables, m,
                                                                  strict=True)])): c
            for m, c in poly.terms()}


def test_lotka_volterra_candidates(lv):
    b = PolynomialBasis(lv.variables, 3)
    cands = [(x + y + z) ** 3, x + y + z, (x + y + z) ** 2, x * y * z, x * y * z + x + y + z]
    vectors = [_vec(c, b) for c in cands]
    order = simplicity_order(vectors, b)
    assert order[0] == 3  # x*y*z: one term
    rng = np.random.default_rng(0)
    ind = exact_independence(vectors, b, lv, ConstraintSolver(lv.variables, ()), rng,
                             random_prime(rng))
    assert sorted(ind.kept) == [1, 3] and ind.rank == ind.ambient_rank == 2 and ind.confirmed
    coef = np.zeros((len(vectors), b.size))
    for k, v in enumerate(vectors):
        for i, c in v.items():
            coef[k, i] = float(c)
    pts = torch.tensor(np.random.default_rng(1).normal(size=(30, 3)))
    kept, spectrum = numerical_independence(coef, b, lv, pts, order=order)
    assert sorted(kept) == [1, 3] and spectrum.shape == (2,) and spectrum.min() > 1e-3


def test_constraint_function_counts_only_with_ambient_gradients(fluid2d):
    # the area rate g is conserved by the flow everywhere; on g = 0 it is constant (zero)
    b = PolynomialBasis(fluid2d.variables, 2)
    v = {str(s): s for s in fluid2d.variables}
    cands = [fluid2d.constraints[0], v["u1"] + v["u2"] + v["u3"]]
    vectors = [_vec(c, b) for c in cands]
    rng = np.random.default_rng(0)
    solver = ConstraintSolver(fluid2d.variables, fluid2d.constraints)
    amb = exact_independence(vectors, b, fluid2d, solver, rng, random_prime(rng))
    tan = exact_independence(vectors, b, fluid2d, solver, rng, random_prime(rng), tangent=True)
    assert len(amb.kept) == 2 and amb.ambient_rank == 2 and amb.rank == 1
    assert tan.kept == [1]
