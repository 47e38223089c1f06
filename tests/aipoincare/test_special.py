"""Special parameter values (aipoincare.special): the rank-drop polynomial along a line and
the families the search handles or declines (with the reason)."""

from __future__ import annotations

import numpy as np
import sympy

import aipoincare
from aipoincare.basis import PolynomialBasis
from aipoincare.special import rank_drop_polynomial, special_values

from .conftest import example


def test_rank_drop_polynomial_of_a_damped_oscillator() -> None:
    """x' = y, y' = -x - (k - 1)*(k - 3)*y: energy only where the damping vanishes."""
    s = aipoincare.System("x y", {"x": "y", "y": "-x - (k - 1)*(k - 3)*y"},
                          parameters={"k": "symbolic"})
    basis = PolynomialBasis(s.variables, 2)
    poly = rank_drop_polynomial(s, basis, 0, lambda t: [t], 2 * basis.size,
                                np.random.default_rng(0))
    t = poly.gen
    assert poly == sympy.Poly((t - 1) * (t - 3), t, domain="QQ")
    found, note = special_values(s, basis, 0, np.random.default_rng(1))
    k = sympy.Symbol("k")
    assert {v.condition for v in found} == {k - 1, k - 3}
    assert all(v.nullity == 1 for v in found) and note.startswith("searched along the k axis")


def test_an_irreducible_quadratic_condition() -> None:
    """Damping k**2 - 2 vanishes at irrational k: reported as the factor, counted mod p."""
    s = aipoincare.System("x y", {"x": "y", "y": "-x - (k**2 - 2)*y"},
                          parameters={"k": "symbolic"})
    found, _ = special_values(s, PolynomialBasis(s.variables, 2), 0, np.random.default_rng(2))
    (sv,) = found
    k = sympy.Symbol("k")
    assert sv.condition == k ** 2 - 2 and sv.nullity == 1 and sv.invariants == ()


def test_unsupported_families_say_why() -> None:
    mm = example("michaelis_menten")
    basis = PolynomialBasis(mm.variables, 1)
    found, note = special_values(mm, basis, 2, np.random.default_rng(0))
    assert found is None and "this family has 3 (with a common scaling)" in note
    s = aipoincare.System("x y", {"x": "y/k", "y": "-x/k"}, parameters={"k": "symbolic"})
    found, note = special_values(s, PolynomialBasis(s.variables, 2), 1,
                                 np.random.default_rng(0))
    assert found is None and "polynomial in the parameters" in note


def test_the_count_remains_when_the_invariants_there_cannot_be_found(monkeypatch) -> None:
    from aipoincare import special
    from aipoincare.errors import ExactNotApplicable

    def fail(*args, **kwargs):
        raise ExactNotApplicable("no lift")

    monkeypatch.setattr(special, "exact_null_space", fail)
    s = aipoincare.System("x y", {"x": "y", "y": "-x - (k - 1)*y"},
                          parameters={"k": "symbolic"})
    found, _ = special_values(s, PolynomialBasis(s.variables, 2), 0, np.random.default_rng(4))
    (sv,) = found
    assert sv.condition == sympy.Symbol("k") - 1 and sv.nullity == 1 and sv.invariants == ()
