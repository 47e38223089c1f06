"""Exact modular arithmetic: constraint points, RREF, rational reconstruction, exact nullity."""

from __future__ import annotations

import numpy as np
import pytest
import sympy

import aipoincare
from aipoincare.basis import PolynomialBasis
from aipoincare.errors import ExactNotApplicable
from aipoincare.exact import (
    crt_pair,
    exact_null_space,
    random_prime,
    rational_reconstruct,
    rref_mod_p,
)
from aipoincare.scaling import scaling_blocks

x, y, z = sympy.symbols("x y z")
P = 2147483629


def test_rref_mod_p_against_sympy():
    rng = np.random.default_rng(3)
    a = rng.integers(-3, 4, size=(6, 3)) @ rng.integers(-3, 4, size=(3, 8))  # rank <= 3
    nb = rref_mod_p(a % P, P)
    assert nb.rank == sympy.Matrix(a).rank()
    assert nb.nullity == 8 - nb.rank
    theta = np.zeros((8, nb.nullity), dtype=object)
    for k in range(nb.nullity):
        theta[nb.free[k], k] = 1
        theta[nb.pivots, k] = nb.values[k]
    assert not ((a.astype(object) @ theta) % P).any()


def test_rational_reconstruction_and_crt():
    rng = np.random.default_rng(4)
    for _ in range(50):
        r, s = int(rng.integers(-10**4, 10**4)), int(rng.integers(1, 10**4))
        g = sympy.gcd(r, s)
        r, s = r // g, s // g
        assert rational_reconstruct(r * pow(s, -1, P) % P, P) == (r, s)
    big = sympy.Rational(10**8 + 7, 3 * 10**8 + 1)
    p2 = random_prime(rng, exclude=[P])
    res = [int(big.p) * pow(int(big.q), -1, q) % q for q in (P, p2)]
    assert rational_reconstruct(res[0], P) != (int(big.p), int(big.q))  # needs more bits
    combined = int(crt_pair(res[0], P, res[1], p2))
    assert rational_reconstruct(combined, P * p2) == (int(big.p), int(big.q))


def _exact_nullity(system, degree, blocked=True):
    b = PolynomialBasis(system.variables, degree)
    blocks = scaling_blocks(system, b)[1] if blocked else [np.arange(b.size)]
    return b, exact_null_space(system, b, blocks, np.random.default_rng(0))


def test_lotka_volterra_exact_null_space(lv):
    b, ens = _exact_nullity(lv, 3)
    assert ens.nullity == 4
    exprs = {sympy.expand(sum(c * b.exprs[i] for i, c in v.items())) for v in ens.vectors}
    assert x * y * z in exprs and x + y + z in exprs  # the conserved basis function itself
    assert (x + y + z) ** 2 in {sympy.factor(e) for e in exprs}


def test_blocks_do_not_change_the_null_space(fluid2d, lv):
    for system, degree in ((fluid2d, 2), (lv, 3)):
        _, blocked = _exact_nullity(system, degree)
        _, whole = _exact_nullity(system, degree, blocked=False)
        assert blocked.nullity == whole.nullity
        assert {tuple(sorted(v.items())) for v in blocked.vectors} == \
            {tuple(sorted(v.items())) for v in whole.vectors}  # RREF bases are canonical


def test_rational_parameters_need_crt(chem):
    b, ens = _exact_nullity(chem, 1)
    assert ens.nullity == 3 and len(ens.primes) >= 2  # 16-digit rate constants
    big = [c for v in ens.vectors for c in v.values() if abs(sympy.Rational(c).q) > 10**9]
    assert big  # coefficients beyond one prime's reconstruction bound


def test_exact_nullity_of_the_fluids(fluid2d):
    b, ens = _exact_nullity(fluid2d, 4)
    assert ens.nullity == fluid2d.expected["nullity"] == 150


@pytest.mark.slow
def test_exact_nullity_fluid_3d(fluid3d):
    b, ens = _exact_nullity(fluid3d, 3)
    assert ens.nullity == fluid3d.expected["nullity"] == 60


def test_examples_ship_expected_counts():
    for name in ("lotka_volterra_3", "atmospheric_chemistry", "fluid_2d", "fluid_3d"):
        s = aipoincare.load_system(str(__import__("pathlib").Path(aipoincare.__file__).parent
                                       / "examples" / f"{name}.toml"))
        assert {"nullity", "independent"} <= set(s.expected)


def test_f_undefined_on_the_whole_constraint_set_is_refused():
    s = aipoincare.System(variables=(x, y), equations=(1 / (x - y), x), constraints=(x - y,))
    b = PolynomialBasis([x, y], 1)
    with pytest.raises(ExactNotApplicable, match="undefined .* at almost every random point"):
        exact_null_space(s, b, [np.arange(b.size)], np.random.default_rng(0))
