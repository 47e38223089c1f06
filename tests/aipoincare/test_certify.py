"""Certificates: the examples' known invariants are verified independently of discovery."""

from __future__ import annotations

import pytest
import sympy

from aipoincare.certify import certify, certify_many, degree_bound, lie_derivative


def _v(system):
    return {str(s): s for s in system.variables}


def test_lotka_volterra_known_invariants(lv):
    x, y, z = lv.variables
    for h in (x + y + z, x * y * z):
        cert = certify(h, lv)
        assert cert.verified and cert.method == "symbolic" and cert.residual == 0.0
    bad = certify(x, lv)  # H = x is not conserved
    assert not bad.verified and "nonzero" in bad.detail
    forced = certify(x, lv, method="identity-test")
    assert not forced.verified and forced.method == "identity-test"
    good = certify(x * y * z, lv, method="identity-test")
    assert good.verified and "probability" in good.detail


def test_chemistry_known_invariants(chem):
    v = _v(chem)
    for h in (v["HCHO"] + v["CO"], v["NO"] + v["NO2"] + v["HNO3"]):
        assert certify(h, chem).verified
    assert not certify(v["NO"] + v["NO2"], chem).verified


def test_fluid_2d_known_invariants(fluid2d):
    v = _v(fluid2d)
    momentum = v["u1"] + v["u2"] + v["u3"]
    area = sum(v[f"x{i}"] * (v[f"y{j}"] - v[f"y{k}"]) for i, j, k in ((1, 2, 3), (2, 3, 1),
                                                                    (3, 1, 2)))
    angular = sum(v[f"x{i}"] * v[f"v{i}"] - v[f"y{i}"] * v[f"u{i}"] for i in (1, 2, 3))
    certs = certify_many([momentum, area, angular, fluid2d.constraints[0], v["u1"]], fluid2d)
    assert [c.verified for c in certs] == [True, True, True, True, False]
    assert certs[0].method == "symbolic-modulo-constraints"
    assert "u" in certs[1].detail or "v" in certs[1].detail  # names the substitution


def test_fluid_3d_known_invariants_by_identity_test(fluid3d):
    v = _v(fluid3d)
    momentum = [sum(v[f"{c}{i}"] for i in range(1, 5)) for c in "uvw"]
    angular = sum(v[f"x{i}"] * v[f"v{i}"] - v[f"y{i}"] * v[f"u{i}"] for i in range(1, 5))
    certs = certify_many(momentum + [angular, v["x1"] * v["u2"]], fluid3d)
    assert [c.verified for c in certs] == [True, True, True, True, False]
    assert all(c.method == "identity-test" for c in certs)
    assert "error probability" in certs[0].detail


def test_pendulum_energy_by_mpmath(pendulum):
    q, p = pendulum.variables
    cert = certify(p ** 2 / 2 - sympy.cos(q), pendulum)
    assert cert.verified and cert.method == "mpmath-50-digits" and cert.residual < 1e-40
    assert "not a proof" in cert.detail
    bad = certify(p ** 2 / 2 + sympy.cos(q), pendulum)
    assert not bad.verified and bad.residual > 1e-3


def test_helpers_and_errors(lv):
    x, y, z = lv.variables
    assert sympy.expand(lie_derivative(x * y * z, lv)) == 0
    assert degree_bound((x * y - z) / (1 + x ** 2) + z, {}) == 3
    with pytest.raises(ValueError, match="The 'method' of the certificate must be one of 'auto', "
                                         "'symbolic'"):
        certify(x, lv, method="guess")
    undecided = certify(sympy.sin(x), lv, method="symbolic")
    assert not undecided.verified and undecided.method == "undecided"


def test_nonlinear_constraint_by_ideal_membership():
    from aipoincare import System

    x, y, z = sympy.symbols("x y z")
    sphere = System(variables=(x, y, z), equations=(y - z, z - x, x - y),
                    constraints=(x ** 2 + y ** 2 + z ** 2 - 1,))
    good = certify(x + y + z, sphere)
    assert good.verified and good.method == "symbolic"
    # a flow that leaves the sphere off it: grad H . f = (x + y + z) g, zero only on g = 0
    g = x ** 2 + y ** 2 + z ** 2 - 1
    leaky = System(variables=(x, y, z), equations=(y - z + x * g, z - x + y * g, x - y + z * g),
                   constraints=(g,))
    mod = certify(x + y + z, leaky)
    assert mod.verified and mod.method == "symbolic-modulo-constraints"
    assert not certify(x + y + z, System(variables=(x, y, z), equations=leaky.equations)).verified
    bad = certify(x, sphere)
    assert not bad.verified and "does not reduce to 0" in bad.detail
