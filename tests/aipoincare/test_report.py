"""Reports: the JSON document (contract fields, strict JSON, parseable expressions), text, LaTeX."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest
import sympy
from sympy.parsing.sympy_parser import parse_expr

from aipoincare.parser import parse_expression
from aipoincare.report import to_latex, to_text
from aipoincare.result import Discovery, Invariant, expr_to_str, to_dict, to_json

_spec = importlib.util.spec_from_file_location(
    "fake_discovery", Path(__file__).parent / "data" / "fake_discovery.py")
fake = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fake)  # type: ignore[union-attr]

CONTRACT_FIELDS = {"name", "variables", "basis_size", "points", "nullity", "independent",
                   "invariants", "spectrum", "seconds"}


def test_contract_fields_and_types() -> None:
    d = fake.lotka_volterra()
    doc = json.loads(to_json(d))
    assert CONTRACT_FIELDS <= set(doc)
    assert doc["name"] == "Cyclic Lotka-Volterra"
    assert doc["variables"] == ["x", "y", "z"]
    assert doc["basis_size"] == 19 and doc["points"] == 100
    assert doc["nullity"] == 4 and doc["independent"] == 2
    assert len(doc["invariants"]) == doc["independent"]
    first = doc["invariants"][0]
    assert first == {"expr": "x + y + z", "latex": "x + y + z", "verified": True,
                     "method": "symbolic", "residual": 0.0, "detail": "grad H . f expands to 0",
                     "coefficients": {"x": 1, "y": 1, "z": 1}, "tag": "symbolic",
                     "canonical": "x + y + z", "canonical_latex": "x + y + z",
                     "decimal": None}
    assert len(doc["spectrum"]) == 19 and doc["spectrum"][0] == 1.0
    assert doc["seconds"] == pytest.approx(0.42)
    # evidence beyond the contract
    assert doc["exact"] is True and doc["count_method"] == "exact-modular"
    assert doc["gap"] == pytest.approx(14.2) and doc["confidence"] == 1.0
    assert doc["dropped"] == 0 and doc["timings"]["certify"] == pytest.approx(0.3)
    assert doc["conserved"][1] == "x*y*z"
    assert doc["independence_spectrum"][:2] == [1.0, 0.41]


def test_discovery_to_json_uses_report() -> None:
    d = fake.lotka_volterra()
    assert json.loads(d.to_json()) == to_dict(d)


def test_expressions_parse_back_with_declared_names() -> None:
    d = fake.large()
    doc = to_dict(d)
    names = {v: sympy.Symbol(v) for v in doc["variables"]}
    for inv, item in zip(d.invariants, doc["invariants"], strict=True):
        assert sympy.expand(parse_expr(item["expr"], local_dict=names) - inv.expr) == 0
        # and our own safe parser reads it too (only whitelisted syntax is printed)
        assert sympy.expand(parse_expression(item["expr"], names) - inv.expr) == 0


@pytest.mark.parametrize("expr", [
    "x**2/2 - cos(y) + 3/7*z", "sqrt(x**2 + y**2) + log(z)", "exp(-x)*Abs(y) + pi*E",
    "atan(x/y) + tanh(z) - sinh(x)*cosh(y)", "-2.5e-20*x + 1.0e+30*y",
])
def test_expr_round_trip(expr: str) -> None:
    names = {v: sympy.Symbol(v) for v in "xyz"}
    e = parse_expression(expr, names)
    assert parse_expr(expr_to_str(e), local_dict=names) == e
    assert parse_expression(expr_to_str(e), names) == e


def test_awkward_variable_names_round_trip() -> None:
    # names that mean something else to SymPy without local_dict (O is Order, I imaginary)
    names = {v: sympy.Symbol(v) for v in ("O", "I", "N", "S", "Q", "beta", "gamma")}
    e = parse_expression("O*I + N**2 - S*Q + beta*gamma", names)
    assert parse_expr(expr_to_str(e), local_dict=names) == e


def test_non_finite_numbers_become_null() -> None:
    d = fake.lotka_volterra()
    d.spectrum = np.array([1.0, np.nan, np.inf, -np.inf, 1e-300])
    d.gap = float("inf")
    d.confidence = float("nan")
    d.seconds = float("nan")
    d.invariants = [Invariant(sympy.Symbol("x"), False, "numerical", float("nan"))]
    d.independent = 1
    text = to_json(d)  # allow_nan=False inside: would raise on NaN
    doc = json.loads(text)
    assert doc["spectrum"] == [1.0, None, None, None, 1e-300]
    assert doc["gap"] is None and doc["confidence"] is None and doc["seconds"] is None
    assert doc["invariants"][0]["residual"] is None
    assert "NaN" not in text and "Infinity" not in text


def test_numpy_and_sympy_values_are_plain() -> None:
    d = fake.lotka_volterra()
    d.points = np.int64(100)  # type: ignore[assignment]
    d.timings = {"a": np.float32(0.5)}
    d.invariants = [Invariant(sympy.Symbol("x"), np.bool_(True), "symbolic", 0.0, "",  # type: ignore[arg-type]
                              {"x": sympy.Rational(3, 7), "y": 0.25, "z": sympy.Float(2.0)})]
    d.independent = 1
    doc = json.loads(to_json(d))
    assert doc["points"] == 100 and doc["timings"] == {"a": 0.5}
    assert doc["invariants"][0]["verified"] is True
    assert doc["invariants"][0]["coefficients"] == {"x": "3/7", "y": 0.25, "z": 2.0}


def test_empty_discovery() -> None:
    d = Discovery(name="Rossler", variables=["x", "y", "z"], basis_labels=["x", "y", "z"],
                  points=10, nullity=0, independent=0, invariants=[],
                  spectrum=np.array([1.0, 0.5, 0.2]))
    doc = json.loads(to_json(d))
    assert doc["invariants"] == [] and doc["independence_spectrum"] == []
    text = to_text(d)
    assert "No conserved quantity in this basis." in text
    assert "nullity      0" in text
    assert "No conserved quantity" in to_latex(d)


def test_text_report() -> None:
    d = fake.lotka_volterra()
    text = to_text(d, expected={"nullity": 4, "independent": 3})
    assert text.startswith("Cyclic Lotka-Volterra\n=====")
    assert "basis        19 functions, 100 sample points" in text
    assert "nullity      4  [exact: rank over GF(p)" in text
    assert "(expected 4: matches)" in text and "(expected 3: DIFFERS)" in text
    assert "verified     2 of 2 invariants certified" in text
    assert "  H1 = x + y + z  [symbolic]\n" in text and "  H2 = x*y*z  [symbolic]\n" in text
    assert "grad H . f simplifies to 0 symbolically" not in text  # the long text: --verbose
    verbose = to_text(d, verbose=True)
    assert "certificate: verified: symbolic (grad H . f simplifies to 0 symbolically)" in verbose
    assert "Sparse basis of the conserved subspace (4 elements" in text
    assert "x**3 + 3*x**2*y" in text
    assert "  - Counts are exact" in text
    assert "time         0.42 s (sampling 0.01 s" in text
    assert text.endswith("\n")


def test_text_report_numerical_and_unverified() -> None:
    d = fake.large()
    d.invariants[0] = Invariant(d.invariants[0].expr, False, "numerical", 3e-9, "too big")
    d.conserved = [inv.expr for inv in d.invariants]
    text = to_text(d)
    assert "Sparse basis" not in text  # nothing beyond the invariants to list
    d.conserved = [sympy.Symbol("x1")**k for k in range(1, 21)]
    text = to_text(d)
    assert "numerical: largest gap in the normalised singular values, gap 6.0 decades, " \
           "confidence 0.94" in text
    assert "  H1  = " in text and "[NOT verified: numerical only, residual 3.0e-09]" in text
    assert "NOT verified (numerical); residual 3.0e-09; too big" in to_text(d, verbose=True)
    assert "... and 8 more (see --json)" in text  # 20 conserved, 12 shown
    assert all(len(line) < 200 for line in text.splitlines())


def test_latex() -> None:
    d = fake.lotka_volterra()
    d.name = "LV_3 & friends 100%"
    tex = to_latex(d)
    assert tex.startswith("\\section*{LV\\_3 \\& friends 100\\%}")
    assert "$H_{1}$ & $x + y + z$ & symbolic \\\\" in tex
    assert "$H_{2}$ & $x y z$ & symbolic \\\\" in tex
    assert "\\begin{tabular}" in tex and "\\end{tabular}" in tex
    full = to_latex(d, standalone=True)
    assert full.startswith("\\documentclass{article}") and full.endswith("\\end{document}\n")
    assert math.isclose(float(tex.count("$H_{")), 2.0)
