"""Bases: order, gradients against sympy.diff, exact values mod p, registry, symmetry blocks."""

from __future__ import annotations

from math import comb

import numpy as np
import pytest
import sympy
import torch

from aipoincare.basis import (
    BASES,
    ExpressionBasis,
    PolynomialBasis,
    ProductBasis,
    make_basis,
    monomial_exponents,
)

x, y, z = sympy.symbols("x y z")
P = 2147483629


def _sympy_grads(exprs, variables, point):
    subs = dict(zip(variables, point, strict=True))
    return np.array([[float(sympy.diff(e, v).subs(subs)) for v in variables] for e in exprs])


def test_polynomial_order_and_size():
    b = PolynomialBasis([x, y, z], 3)
    assert b.size == comb(3 + 3, 3) - 1 == 19
    assert b.labels[:9] == ["x", "y", "z", "x**2", "x*y", "x*z", "y**2", "y*z", "z**2"]
    assert b.labels[-1] == "z**3"
    degs = b.exponents.sum(1)
    assert (np.diff(degs) >= 0).all()  # by degree
    assert len(set(map(tuple, b.exponents.tolist()))) == b.size
    assert monomial_exponents(4, 2).shape == (comb(6, 2) - 1, 4)


def test_monomial_gradients_match_sympy_diff():
    b = PolynomialBasis([x, y, z], 4)
    pts = np.random.default_rng(0).normal(size=(3, 3))
    got = b.gradients_torch(torch.tensor(pts)).numpy()
    for j, pt in enumerate(pts):
        np.testing.assert_allclose(got[j], _sympy_grads(b.exprs, [x, y, z], pt), rtol=1e-12,
                                   atol=1e-12)
    norms = b.gradient_norms_torch(torch.tensor(pts)).numpy()
    np.testing.assert_allclose(norms, np.linalg.norm(got, axis=2), rtol=1e-12)


def test_lie_matrix_equals_gradient_dot_f_float_and_mod_p():
    b = PolynomialBasis([x, y, z], 3)
    f = [x * (y - z), y * (z - x), z * (x - y) + 3]
    pts = np.random.default_rng(1).normal(size=(5, 3))
    xt = torch.tensor(pts)
    ft = torch.tensor([[float(e.subs(dict(zip((x, y, z), p, strict=True)))) for e in f]
                       for p in pts], dtype=torch.float64)
    a = b.lie_torch(xt, ft)
    np.testing.assert_allclose(a.numpy(), torch.einsum("nik,nk->ni", b.gradients_torch(xt),
                                                       ft).numpy(), rtol=1e-12, atol=1e-12)
    ipts = np.random.default_rng(2).integers(0, P, size=(4, 3))
    fm = np.array([[int(e.subs(dict(zip((x, y, z), map(int, p), strict=True)))) % P for e in f]
                   for p in ipts], dtype=np.int64)
    am, ok = b.lie_mod_p(ipts, fm, P)
    assert ok.all()
    for j, p in enumerate(ipts):
        subs = dict(zip((x, y, z), map(int, p), strict=True))
        want = [int(sum(sympy.diff(e, v) * fk for v, fk in zip((x, y, z), f, strict=True))
                    .subs(subs)) % P for e in b.exprs]
        assert am[j].tolist() == want


def test_expression_and_product_bases_match_sympy():
    exprs = [sympy.cos(x), y ** 2 / (1 + x ** 2)]
    eb = ExpressionBasis([x, y], exprs)
    pb = ProductBasis([x, y], 1, exprs)
    assert pb.size == 3 * 2 and pb.labels[2] == "x*cos(x)"
    pt = np.array([[0.3, -1.2]])
    for basis in (eb, pb):
        got = basis.gradients_torch(torch.tensor(pt)).numpy()[0]
        np.testing.assert_allclose(got, _sympy_grads(basis.exprs, [x, y], pt[0]), rtol=1e-12)
    assert not eb.rational and not pb.rational
    rb = ProductBasis([x, y], 2, [1 / (1 + x ** 2)])
    assert rb.rational
    ipt = np.array([[5, 7]])
    g, ok = rb.gradients_mod_p(ipt, P)
    for i, e in enumerate(rb.exprs):
        for k, v in enumerate((x, y)):
            r = sympy.Rational(sympy.diff(e, v).subs({x: 5, y: 7}))
            assert g[0, i, k] == int(r.p) % P * pow(int(r.q), -1, P) % P


def test_registry_and_errors():
    assert set(BASES) == {"polynomial", "expressions", "product"}
    with pytest.raises(ValueError, match="The 'kind' of the basis must be one of 'polynomial', "
                                         "'expressions', 'product'; got 'fourier'"):
        make_basis("fourier", [x])
    with pytest.raises(ValueError, match="integer from 1 to 8; got 9"):
        PolynomialBasis([x], 9)
    with pytest.raises(TypeError, match="integer from 1 to 8; got str"):
        PolynomialBasis([x], "three")
    with pytest.raises(ValueError, match="must not be empty"):
        ExpressionBasis([x], [])


def test_lie_mod_p_of_rational_expression_and_product_bases():
    # A_ji = grad b_i . f mod p, against exact sympy rationals reduced mod p
    f = [y, -x / (1 + y ** 2)]
    fm_point = {x: 5, y: 7}
    ipt = np.array([[5, 7]])
    fm = np.array([[int(sympy.Rational(fk.subs(fm_point)).p) % P
                    * pow(int(sympy.Rational(fk.subs(fm_point)).q), -1, P) % P for fk in f]],
                  dtype=np.int64)
    for basis in (ExpressionBasis([x, y], [x ** 2 / (1 + y), y / (2 + x ** 2)]),
                  ProductBasis([x, y], 1, [1 / (1 + x ** 2)])):
        a, ok = basis.lie_mod_p(ipt, fm, P)
        assert ok.tolist() == [True] and a.shape == (1, basis.size)
        for i, e in enumerate(basis.exprs):
            r = sympy.Rational(sum(sympy.diff(e, v) * fk for v, fk in zip((x, y), f, strict=True))
                               .subs(fm_point))
            assert a[0, i] == int(r.p) % P * pow(int(r.q), -1, P) % P
