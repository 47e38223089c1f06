"""Families of systems: the parameter basis, the generic count, invariants polynomial in the
parameters (aipoincare.parametric), and vectors over Z[k] (aipoincare.polyvec)."""

from __future__ import annotations

import numpy as np
import pytest
import sympy

import aipoincare
from aipoincare.basis import PolynomialBasis
from aipoincare.evaluate import eval_mod_p
from aipoincare.parametric import (
    ParameterBasis,
    generic_nullity,
    nullity_mod_p,
    polynomial_invariants,
)
from aipoincare.polyvec import (
    canonical_basis,
    dependence_locus,
    factors,
    from_sympy,
    grouped_expr,
    ring,
    to_sympy,
    vanishing_set,
)

P = 1_000_003


@pytest.fixture(scope="module")
def oscillator() -> aipoincare.System:
    """x' = w*y, y' = -w*x + c*x**2: energy with a coefficient in c, for every w, c."""
    return aipoincare.System("x y", {"x": "w*y", "y": "-w*x + c*x**2"},
                             parameters={"w": "symbolic", "c": "symbolic"})


def test_parameter_basis_lie_derivative_mod_p(oscillator) -> None:
    inner = PolynomialBasis(oscillator.variables, 2)
    basis = ParameterBasis(inner, oscillator.symbolic, 1)
    assert basis.size == 5 * 3 and basis.labels[5] == "w*x"
    assert basis.split(5) == (0, (1, 0)) and basis.exponents.shape == (15, 4)
    ext = oscillator.extended()
    rng = np.random.default_rng(0)
    pts = rng.integers(0, P, size=(6, 4))
    f, _ = eval_mod_p(ext.equations, ext.variables, pts, P)
    got, ok = basis.lie_mod_p(pts, f, P)
    grads = [sum(sympy.diff(e, v) * fv for v, fv in zip(ext.variables, ext.equations,
                                                          strict=True)) for e in basis.exprs]
    want, _ = eval_mod_p(grads, ext.variables, pts, P)
    assert ok.all() and (got == want).all()


def test_generic_count_and_polynomial_invariants(oscillator) -> None:
    inner = PolynomialBasis(oscillator.variables, 3)
    rng = np.random.default_rng(1)
    assert generic_nullity(oscillator, inner, rng) == 1
    fam = polynomial_invariants(oscillator, inner, rng)
    assert (fam.generic, fam.degree) == (1, 1)  # coefficients w and c: degree 1
    (vec,) = canonical_basis(fam.vectors)
    w, c, x, y = sympy.symbols("w c x y")
    h = grouped_expr(vec, inner.exprs, oscillator.symbolic)
    energy = w * (x ** 2 + y ** 2) - sympy.Rational(2, 3) * c * x ** 3
    assert sympy.simplify(h / energy).is_number
    # at a special value (c = 0, w = 1) the count is higher: x**2 + y**2 and its square...
    member = oscillator.specialise({"w": 1, "c": 0})
    assert nullity_mod_p(member, PolynomialBasis(member.variables, 4), P, rng) == 2


def test_fixed_parameter_degree(oscillator) -> None:
    inner = PolynomialBasis(oscillator.variables, 3)
    rng = np.random.default_rng(2)
    assert polynomial_invariants(oscillator, inner, rng, degree=1).generic == 1
    with pytest.raises(ValueError, match=r"1 independent invariants, but only 0 have "
                                         r"coefficients polynomial of degree <= 0"):
        polynomial_invariants(oscillator, inner, rng, degree=0)


def test_canonical_basis_depends_only_on_the_span() -> None:
    r = ring(["k", "m"])
    k, m = r.gens()
    one = r.from_dict({(0, 0): 1})
    v1 = {0: one, 2: k}
    v2 = {1: m, 2: k + m}
    mixed = [{c: 3 * k * v1.get(c, r.from_dict({})) + (m + 1) * v2.get(c, r.from_dict({}))
              for c in (0, 1, 2)}, {c: 2 * v1[c] for c in v1}]
    mixed = [{c: v for c, v in vec.items() if not v.is_zero()} for vec in mixed]
    a, b = canonical_basis([v1, v2]), canonical_basis(mixed)
    assert [{c: str(v) for c, v in vec.items()} for vec in a] == \
        [{c: str(v) for c, v in vec.items()} for vec in b]
    for vec in a:  # primitive: no common factor
        g = None
        for v in vec.values():
            g = v if g is None else g.gcd(v)
        assert g.is_one()
    assert canonical_basis([v1, {c: k * v for c, v in v1.items()}]) == canonical_basis([v1])


def test_vanishing_set_and_dependence_locus() -> None:
    r = ring(["k4", "k5"])
    k4, k5 = r.gens()
    s4, s5 = sympy.symbols("k4 k5")
    vec = {0: 2 * (2 * k4 - k5), 1: 3 * k5, 2: -k5}
    assert vanishing_set(vec, (s4, s5)) == [s4, s5]
    assert vanishing_set({0: k4, 1: r.from_dict({(0, 0): 2})}, (s4, s5)) is None
    assert vanishing_set({0: k4 * k4 + k5, 1: k5}, (s4, s5)) == [s4 ** 2 + s5, s5]
    # two invariants that coincide at k4 = 0: (k4, 0, 1) and (0, k4, 1)
    one = r.from_dict({(0, 0): 1})
    pair = [{0: k4, 2: one}, {1: k4, 2: one}]
    locus = dependence_locus(pair, r, np.random.default_rng(0))
    assert [str(f) for f in factors(locus)] == ["k4"]
    mat = sympy.Matrix([[to_sympy(v.get(c, r.from_dict({})), (s4, s5)) for c in range(3)]
                        for v in pair])
    assert mat.xreplace({s4: 0}).rank() == 1 and mat.xreplace({s4: 2, s5: 1}).rank() == 2
    assert dependence_locus([{0: k4, 2: one}, {1: one}], r, np.random.default_rng(0)).is_one()


def test_sympy_conversions_round_trip() -> None:
    syms = sympy.symbols("a b")
    r = ring(["a", "b"])
    poly, den = from_sympy(sympy.Rational(1, 2) * syms[0] ** 2 - syms[1] / 3, syms, r)
    assert den == 6 and str(poly) == "3*a^2 - 2*b"
    assert to_sympy(poly, syms) == 3 * syms[0] ** 2 - 2 * syms[1]
