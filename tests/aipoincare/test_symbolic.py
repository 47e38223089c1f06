"""Discoveries with symbolic parameters: the shipped families, certificates re-checked as
identities with random parameter values (independently of aipoincare.certify), the
exceptional set and the special values checked against ordinary discoveries."""

from __future__ import annotations

import json

import numpy as np
import pytest
import sympy
from sympy.parsing.sympy_parser import parse_expr

import aipoincare

from .conftest import example


def lie(h: sympy.Expr, system: aipoincare.System) -> sympy.Expr:
    """grad H . f by plain SymPy (not aipoincare.certify)."""
    return sympy.Add(*[sympy.diff(h, v) * f
                       for v, f in zip(system.variables, system.equations, strict=True)])


def random_values(params, rng: np.random.Generator) -> dict[sympy.Symbol, sympy.Rational]:
    return {p: sympy.Rational(int(rng.integers(-60, 61)), int(rng.integers(1, 17)))
            for p in params}


def conserved_at_random_parameters(h: sympy.Expr, system: aipoincare.System, seed: int,
                                   draws: int = 3) -> bool:
    """H conserved at ``draws`` random rational parameter points, as exact identities in x."""
    rng = np.random.default_rng(seed)
    for _ in range(draws):
        values = random_values(system.symbolic, rng)
        member = system.specialise({p.name: v for p, v in values.items()})
        if sympy.cancel(sympy.together(lie(h.xreplace(values), member))) != 0:
            return False
    return True


@pytest.fixture(scope="module")
def chem_family() -> tuple[aipoincare.System, aipoincare.Discovery]:
    system = example("atmospheric_chemistry_symbolic")
    return system, aipoincare.discover(system, seed=0, device="cpu")


@pytest.fixture(scope="module")
def hh_family() -> tuple[aipoincare.System, aipoincare.Discovery]:
    system = example("henon_heiles_family")
    return system, aipoincare.discover(system, degree=3, seed=0, device="cpu")


def test_chemistry_with_symbolic_rate_constants(chem_family) -> None:
    system, d = chem_family
    assert (d.nullity, d.independent) == (3, 3) and d.exact
    assert d.symbolic == [f"k{i}" for i in range(1, 11)]
    assert all(inv.verified and inv.method == "symbolic" for inv in d.invariants)
    k4, k5 = sympy.symbols("k4 k5")
    third = [inv.expr for inv in d.invariants if inv.expr.has(k4)]
    assert len(third) == 1
    known = system.expected["invariants"][2]  # the formula in k4, k5 of the example file
    assert sympy.simplify(third[0] / known) in (1, -1)
    assert d.family.parameter_degree == 1
    assert any("generic" in n for n in d.notes)


def test_every_certificate_holds_at_random_parameter_values(chem_family, hh_family) -> None:
    lv = example("lotka_volterra_2")
    lv_d = aipoincare.discover(lv, seed=0, device="cpu")
    for seed, (system, d) in enumerate([chem_family, hh_family, (lv, lv_d)]):
        assert d.invariants
        for inv in d.invariants:
            assert inv.verified
            assert conserved_at_random_parameters(inv.expr, system, seed)
        for e in d.conserved:
            assert conserved_at_random_parameters(e, system, seed + 10, draws=1)


def test_the_family_at_the_files_numbers_is_the_numeric_result(chem_family) -> None:
    """Substituting the numeric example's rate constants into the family's invariants gives
    the numeric discovery's conserved subspace (the same span)."""
    _, d = chem_family
    numeric = example("atmospheric_chemistry")
    values = {sympy.Symbol(k): v for k, v in numeric.parameters.items()}
    num = aipoincare.discover(numeric, seed=0, device="cpu")
    at = [e.xreplace(values) for e in d.conserved]
    poly = [sympy.Poly(e, *numeric.variables) for e in [*num.conserved, *at]]
    monos = sorted({m for p in poly for m in p.monoms()})
    rows = sympy.Matrix([[p.coeff_monomial(m) for m in monos] for p in poly])
    assert rows.rank() == num.nullity == d.nullity


def test_an_unused_symbolic_parameter() -> None:
    s = aipoincare.System("x y", {"x": "y", "y": "-x"}, parameters={"k": "symbolic"})
    d = aipoincare.discover(s, degree=2, device="cpu")
    assert d.nullity == 1 and d.family.parameter_degree == 0
    assert not d.invariants[0].expr.free_symbols & set(s.symbolic)


def test_the_recheck_can_fail(chem_family) -> None:
    system, d = chem_family
    k4, k5, k6 = sympy.symbols("k4 k5 k6")
    wrong = [inv.expr.xreplace({k4: k6}) for inv in d.invariants if inv.expr.has(k4)][0]
    assert not conserved_at_random_parameters(wrong, system, 0)
    assert not aipoincare.certify(wrong, system).verified


def test_identity_test_certificates_draw_the_parameters_too(chem_family) -> None:
    system, d = chem_family
    k4, k6 = sympy.symbols("k4 k6")
    good = [inv.expr for inv in d.invariants if inv.expr.has(k4)][0]
    cert = aipoincare.certify(good, system, method="identity-test")
    assert cert.verified and cert.method == "identity-test" and "random 31-bit primes" in \
        cert.detail
    wrong = aipoincare.certify(good.xreplace({k4: k6}), system, method="identity-test")
    assert not wrong.verified and "H is not conserved" in wrong.detail


def test_figures_of_a_family(hh_family, tmp_path) -> None:
    _, d = hh_family
    png = aipoincare.render_discovery(d, "png")
    assert png[:4] == b"\x89PNG"  # float evidence at the generic point


def test_lotka_volterra_log_basis() -> None:
    system = example("lotka_volterra_2")
    d = aipoincare.discover(system, seed=1, device="cpu")
    assert (d.nullity, d.independent) == (1, 1)
    alpha, beta, gamma, delta, x, y = sympy.symbols("alpha beta gamma delta x y")
    target = delta * x - gamma * sympy.log(x) + beta * y - alpha * sympy.log(y)
    assert sympy.expand(d.invariants[0].expr - target) == 0
    assert d.invariants[0].method == "symbolic"  # grad H . f is rational: a proof
    assert [x_.equations for x_ in d.family.exceptional] == [(alpha, beta, gamma, delta)]


def test_exceptional_set_is_right(chem_family) -> None:
    system, d = chem_family
    k4, k5 = sympy.symbols("k4 k5")
    (entry,) = d.family.exceptional
    assert set(entry.equations) == {k4, k5} and "vanishes identically" in entry.reason
    h3 = [inv.expr for inv in d.invariants if inv.expr.has(k4)][0]
    assert h3.xreplace({k4: 0, k5: 0}) == 0  # inside the set: the invariant is lost
    for off in ({k4: 0, k5: 1}, {k4: 1, k5: 0}, {k4: 1, k5: 2}):  # outside: still there
        assert sympy.expand(h3.xreplace(off)) != 0


def test_a_denominator_in_the_parameters_is_exceptional() -> None:
    s = aipoincare.System("x y", {"x": "y/(k - 1)", "y": "-x/(k - 1)"},
                          parameters={"k": "symbolic"})
    d = aipoincare.discover(s, degree=2, device="cpu", special_values=False)
    k = sympy.Symbol("k")
    assert d.nullity == 1 and d.invariants[0].verified
    assert [(x.equations, x.reason) for x in d.family.exceptional] == [
        ((k - 1,), "the equations are undefined (a denominator vanishes)")]
    with pytest.raises(aipoincare.ExpressionError, match="undefined or infinite"):
        s.specialise({"k": 1})
    assert d.family.special is None and "special_values=False" in d.family.special_note


def test_special_values_of_henon_heiles(hh_family) -> None:
    system, d = hh_family
    a, b = sympy.symbols("a b")
    assert (d.nullity, d.independent) == (1, 1)
    energy = system.expected["invariants"][0]
    assert sympy.simplify(d.invariants[0].expr / energy) == 6
    found = {sv.condition: sv for sv in d.family.special}
    assert set(found) == {a, a + b}  # degree 3: uncoupled (a = 0), separable (b = -a)
    for cond, (av, bv) in ((a, (0, sympy.Rational(3, 2))),
                           (a + b, (sympy.Rational(5, 3), -sympy.Rational(5, 3)))):
        sv = found[cond]
        assert cond.xreplace({a: av, b: bv}) == 0
        member = system.specialise({"a": av, "b": bv})
        ordinary = aipoincare.discover(member, degree=3, device="cpu")
        assert ordinary.nullity == sv.nullity == 2
        for h in sv.invariants:
            assert sympy.cancel(lie(h.xreplace({a: av, b: bv}), member)) == 0
    off = aipoincare.discover(system.specialise({"a": 1, "b": 2}), degree=3, device="cpu")
    assert off.nullity == 1


@pytest.mark.slow
def test_the_quartic_integral_at_b_equals_minus_6a() -> None:
    system = example("henon_heiles_family")
    d = aipoincare.discover(system, seed=0, device="cpu")  # degree 4 from the file
    a, b = sympy.symbols("a b")
    found = {sv.condition: sv for sv in d.family.special}
    assert set(found) == {a, a + b, 6 * a + b}
    quartic = [h for h in found[6 * a + b].invariants if sympy.Poly(h, *system.variables)
               .total_degree() == 4]
    assert quartic
    member = system.specialise({"a": 1, "b": -6})
    assert sympy.expand(lie(quartic[0].xreplace({a: 1, b: -6}), member)) == 0


def test_one_parameter_special_value() -> None:
    """A damped oscillator: no invariant, except the energy when the damping k - 1 is 0."""
    s = aipoincare.System("x y", {"x": "y", "y": "-x - (k - 1)*y"},
                          parameters={"k": "symbolic"})
    d = aipoincare.discover(s, degree=2, device="cpu")
    k, x, y = sympy.symbols("k x y")
    assert (d.nullity, d.independent) == (0, 0)
    (sv,) = d.family.special
    assert sv.condition == k - 1 and sv.nullity == 1
    assert sympy.simplify(sv.invariants[0] / (x ** 2 + y ** 2)).is_number


def test_json_round_trip_with_declared_names(chem_family) -> None:
    _, d = chem_family
    doc = json.loads(d.to_json())
    names = {n: sympy.Symbol(n) for n in doc["variables"] + doc["symbolic"]}
    assert "O" in names  # also one of SymPy's names (Order): local_dict is needed
    for inv, parsed in zip(d.invariants, doc["invariants"], strict=True):
        assert sympy.expand(parse_expr(parsed["expr"], local_dict=names) - inv.expr) == 0
    family = doc["family"]
    assert family["parameters"] == doc["symbolic"] and family["parameter_degree"] == 1
    assert family["exceptional"][0]["equations"] == ["k4", "k5"]
    assert family["special_values"] is None and family["special_note"].startswith("not")


def test_text_report_states_the_family(hh_family) -> None:
    _, d = hh_family
    text = aipoincare.to_text(d)
    assert "Symbolic parameters a, b" in text and "Exceptional set" in text
    assert "where a + b = 0: nullity 2" in text
    assert "Symbolic parameters $a, b$" in aipoincare.to_latex(d)


def test_bad_families() -> None:
    s = aipoincare.System("q p", {"q": "p", "p": "-k*sin(q)"}, parameters={"k": "symbolic"})
    with pytest.raises(ValueError, match=r"must be rational in the variables and parameters"):
        aipoincare.discover(s, basis="polynomial", degree=2, device="cpu")
    lv = example("lotka_volterra_2")
    spec = aipoincare.BasisSpec("expressions", expressions=["x", "sqrt(y)"])
    with pytest.raises(ValueError, match=r"rational gradients .* d\(sqrt\(y\)\)/dy"):
        aipoincare.discover(lv, basis=spec, device="cpu")
    with pytest.raises(ValueError, match=r"need the exact path, but exact=False"):
        aipoincare.discover(lv, exact=False, device="cpu")
    chem = example("atmospheric_chemistry_symbolic")
    with pytest.raises(ValueError, match=r"only 2 have coefficients polynomial of degree <= 0 .*"
                                         r"raise parameter_degree"):
        aipoincare.discover(chem, parameter_degree=0, device="cpu")

