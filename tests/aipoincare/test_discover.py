"""End to end: exact and numerical discovery on the examples, oracles, config validation."""

from __future__ import annotations

import json

import numpy as np
import pytest
import sympy

import aipoincare
from aipoincare.discover import DiscoveryConfig, discover


def test_lotka_volterra_exact(lv):
    x, y, z = lv.variables
    d = aipoincare.discover(lv, degree=3, seed=0, device="cpu")
    assert (d.nullity, d.independent, d.exact, d.confidence) == (4, 2, True, 1.0)
    assert d.count_method == "exact-modular"
    assert {i.expr for i in d.invariants} == {x * y * z, x + y + z}
    assert all(i.verified and i.method == "symbolic" for i in d.invariants)
    assert x * y * z in d.conserved  # a conserved basis function is found
    assert d.coefficients.shape == (4, 19) and d.spectrum.shape == (19,)
    assert d.invariants[0].coefficients == {"x*y*z": 1}
    doc = json.loads(d.to_json())
    assert doc["nullity"] == 4 and doc["invariants"][0]["verified"] is True
    assert set(d.timings) >= {"sample", "numerical", "exact", "independence", "certify"}


def test_lotka_volterra_numerical_path(lv):
    x, y, z = lv.variables
    d = discover(lv, degree=3, seed=1, device="cpu", exact=False)
    assert (d.nullity, d.independent, d.exact) == (4, 2, False)
    assert d.count_method == "numerical-gap" and d.gap > 8 and d.confidence > 0.5
    # L1 rotation + rationalisation recovers exact invariants, then certified
    assert {sympy.expand(i.expr) for i in d.invariants} == {x * y * z, x + y + z}
    assert all(i.verified for i in d.invariants)


def test_same_seed_same_result(lv):
    a = discover(lv, seed=3, device="cpu")
    b = discover(lv, seed=3, device="cpu")
    assert [str(i.expr) for i in a.invariants] == [str(i.expr) for i in b.invariants]
    np.testing.assert_array_equal(a.spectrum, b.spectrum)


def test_chemistry(chem):
    d = discover(chem, seed=0, device="cpu")
    assert (d.nullity, d.independent) == (chem.expected["nullity"], chem.expected["independent"])
    assert d.exact and all(i.verified for i in d.invariants)
    v = {str(s): s for s in chem.variables}
    assert v["HCHO"] + v["CO"] in [i.expr for i in d.invariants]


@pytest.mark.parametrize("degree", [2, 3])
def test_rossler_has_nothing(rossler, degree):
    d = discover(rossler, degree=degree, seed=0, device="cpu")
    assert (d.nullity, d.independent, d.invariants) == (0, 0, [])
    assert d.exact


def test_pendulum_expression_basis(pendulum):
    q, p = pendulum.variables
    spec = aipoincare.BasisSpec(kind="expressions",
                                expressions=(sympy.cos(q), p ** 2, q ** 2, sympy.sin(q), p))
    d = discover(pendulum, basis=spec, seed=0, device="cpu")
    assert not d.exact and d.nullity == 1 and d.independent == 1
    inv = d.invariants[0]
    assert sympy.simplify(inv.expr / (p ** 2 / 2 - sympy.cos(q))).is_number
    assert inv.verified and inv.method == "mpmath-50-digits"
    assert any("numerical" in n for n in d.notes)
    with pytest.raises(ValueError, match="exact=True.*do not apply"):
        discover(pendulum, basis=spec, exact=True, device="cpu")


def test_config_validation():
    with pytest.raises(ValueError, match="'degree' must be an integer from 1 to 8; got 9"):
        DiscoveryConfig(degree=9)
    with pytest.raises(TypeError, match="'degree' must be an integer from 1 to 8; got str"):
        DiscoveryConfig(degree="three")
    with pytest.raises(ValueError, match="'tol' must be a number in \\(0, 1\\)"):
        DiscoveryConfig(tol=2.0)
    with pytest.raises(ValueError, match="'independence' must be one of 'ambient', 'tangent'; "
                                         "got 'both'"):
        DiscoveryConfig(independence="both")
    with pytest.raises(ValueError, match="'exact' must be one of 'auto', True, False; got 'yes'"):
        DiscoveryConfig(exact="yes")
    with pytest.raises(TypeError, match="'threads' must be a non-negative integer; got float"):
        DiscoveryConfig(threads=1.5)
    with pytest.raises(TypeError, match="The 'system' must be an aipoincare.System; got str "
                                        "'lv.toml'; read one with aipoincare.load_system"):
        discover("lv.toml")


def test_keyword_settings_override_the_config(lv):
    """discover(system, config=cfg, degree=2) uses degree 2: keywords win, none is ignored."""
    cfg = DiscoveryConfig(degree=3, device="cpu", certify=False)
    d = discover(lv, config=cfg, degree=2)
    assert d.basis_size == 9 and (d.nullity, d.independent) == (2, 1)  # x+y+z, its square
    assert not d.invariants[0].verified and d.invariants[0].method == "numerical"
    assert discover(lv, config=cfg).basis_size == 19  # the config itself is unchanged
    with pytest.raises(TypeError, match=r"discover\(\) got the unknown setting\(s\) 'degre'; "
                                        r"the settings are the fields of DiscoveryConfig"):
        discover(lv, config=cfg, degre=2)
    with pytest.raises(ValueError, match="'degree' must be an integer from 1 to 8; got 0"):
        discover(lv, config=cfg, degree=0)
    with pytest.raises(TypeError, match="The 'config' must be a DiscoveryConfig; got dict"):
        discover(lv, config={"degree": 2})


@pytest.mark.slow
def test_fluid_2d_exact_counts(fluid2d):
    d = discover(fluid2d, seed=0, device="cpu")
    assert (d.nullity, d.independent) == (150, 8) and d.exact
    assert all(i.verified for i in d.invariants)
    assert any("7 along the constraint set" in n for n in d.notes)


@pytest.mark.slow
def test_fluid_3d_exact_counts(fluid3d):
    d = discover(fluid3d, seed=0, device="cpu")
    assert (d.nullity, d.independent) == (60, 14) and d.exact
    assert all(i.verified and i.method == "identity-test" for i in d.invariants)
    v = {str(s): s for s in fluid3d.variables}
    energy = sum(v[f"{c}{i}"] ** 2 for c in "uvw" for i in range(1, 5))
    assert energy in [i.expr for i in d.invariants]  # reduced from the RREF basis


def test_basis_too_large_is_refused_before_any_work(fluid3d):
    from traincore import MemoryBudgetError

    with pytest.raises(MemoryBudgetError, match="polynomial basis of degree 8 in 24 variables "
                                                "\\(10518300 functions\\).*lower --degree"):
        discover(fluid3d, degree=8, device="cpu")


def test_independence_modes_on_a_constrained_system(fluid2d):
    amb = discover(fluid2d, degree=2, seed=0, device="cpu")
    tan = discover(fluid2d, degree=2, seed=0, device="cpu", independence="tangent")
    assert amb.jacobian_ranks == tan.jacobian_ranks
    assert amb.independent == amb.jacobian_ranks["ambient"] == tan.independent + 1
    g = fluid2d.constraints[0]
    # the extra ambient invariant is the (conserved) constraint function in disguise: with
    # the tangent invariants it spans g, which vanishes on the constraint set
    exprs = [i.expr for i in amb.invariants]
    assert any(sympy.expand(a + b + sign * g) == 0 for a in exprs for b in exprs + [0]
               for sign in (1, -1))


def test_irrational_coefficients_are_identified_or_left_uncertified():
    x, y = sympy.symbols("x y")
    s = aipoincare.System(variables=(x, y), equations=(sympy.sqrt(2) * y, -x), name="ellipse")
    d = discover(s, degree=2, device="cpu")
    assert not d.exact and (d.nullity, d.independent) == (1, 1)
    inv = d.invariants[0]
    # the float coefficient 0.7071... is recognised as sqrt(2)/2, then certified to 50 digits
    assert sympy.simplify(inv.expr - (sympy.sqrt(2) * x ** 2 / 2 + y ** 2)) == 0
    assert inv.verified and inv.method == "mpmath-50-digits"
    # a coefficient with no closed form stays a float: conserved to float precision only
    odd = aipoincare.System(variables=(x, y), equations=(sympy.Float("0.123456789") * y, -x))
    inv = discover(odd, degree=2, device="cpu").invariants[0]
    assert set(inv.coefficients) == {"x**2", "y**2"}
    assert abs(float(inv.coefficients["y**2"]) / float(inv.coefficients["x**2"])
               - 0.123456789) < 1e-9
    assert not inv.verified and inv.method == "mpmath-50-digits" and 0 < inv.residual < 1e-12
    assert "rounding level" in inv.detail


def test_basis_objects_and_kinds(lv):
    x, y, z = lv.variables
    d = discover(lv, basis=aipoincare.PolynomialBasis(lv.variables, 2), device="cpu")
    assert d.basis_size == 9 and d.nullity == 2  # x + y + z and its square
    with pytest.raises(ValueError, match="built on the variables \\[x, y\\]"):
        discover(lv, basis=aipoincare.PolynomialBasis([x, y], 2), device="cpu")
    with pytest.raises(ValueError, match="must be one of 'polynomial', 'expressions'"):
        discover(lv, basis="fourier", device="cpu")
    prod = discover(lv, basis=aipoincare.BasisSpec(kind="product", degree=1,
                                                   expressions=(x * y * z,)), device="cpu")
    assert prod.exact and x * y * z in prod.conserved


def _count_calls(monkeypatch, module, names):
    calls = {n: 0 for n in names}
    for name in names:
        original = getattr(module, name)

        def counted(*args, _name=name, _original=original, **kwargs):
            calls[_name] += 1
            return _original(*args, **kwargs)

        monkeypatch.setattr(module, name, counted)
    return calls


@pytest.mark.parametrize("exact", ["auto", False, "abandoned"])
def test_every_stage_runs_once(lv, monkeypatch, exact):
    """Device resolved once, f compiled once, one float null space, one independence pass,
    whether the counts are exact, numerical, or exact abandoned half-way."""
    from aipoincare import stages
    from aipoincare.errors import ExactNotApplicable

    calls = _count_calls(monkeypatch, stages, ["resolve_device", "numerical_null_space",
                                               "exact_null_space", "exact_independence",
                                               "numerical_independence",
                                               "independence_spectrum", "certify_many"])
    compiled = []
    original_compile = stages.compile_torch
    monkeypatch.setattr(stages, "compile_torch",
                        lambda exprs, variables: compiled.append(tuple(exprs))
                        or original_compile(exprs, variables))
    if exact == "abandoned":
        def give_up(*args, **kwargs):
            calls["exact_null_space"] += 1
            raise ExactNotApplicable("a test gives up")

        monkeypatch.setattr(stages, "exact_null_space", give_up)
    d = discover(lv, degree=3, seed=0, device="cpu", exact=exact is not False)
    assert (d.nullity, d.independent) == (4, 2)
    assert d.exact == (exact == "auto")
    assert calls["resolve_device"] == 1 and calls["numerical_null_space"] == 1
    assert compiled.count(tuple(lv.equations)) == 1
    assert calls["exact_null_space"] == (0 if exact is False else 1)
    if d.exact:
        assert calls["exact_independence"] == calls["independence_spectrum"] == 1
        assert calls["numerical_independence"] == 0
    else:
        assert calls["numerical_independence"] == 1
        assert calls["exact_independence"] == calls["independence_spectrum"] == 0
    assert calls["certify_many"] == 1
    if exact == "abandoned":
        assert any("Exact path abandoned (a test gives up)" in n for n in d.notes)
