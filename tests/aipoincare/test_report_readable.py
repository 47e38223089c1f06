"""The report people read: canonical integer forms, certificate tags, --verbose, the decimal
view, the LaTeX table and the notebook display (issue 14 item 5, issue 12 item 3)."""

from __future__ import annotations

import base64
import json
import math
import re
from fractions import Fraction
from functools import reduce

import numpy as np
import pytest
import sympy
from sympy.parsing.sympy_parser import parse_expr

import aipoincare
from aipoincare.canonical import canonical_form
from aipoincare.certify import certify_many
from aipoincare.cli import main
from aipoincare.display import certificate_tag, to_html
from aipoincare.result import Discovery, Exceptional, Family, Invariant, SpecialValue

from .conftest import EXAMPLES, example

x, y, z = sympy.symbols("x y z")
k1, k2 = sympy.symbols("k1 k2")


def _integer_coefficients(text: str, names: list[str]) -> list[int]:
    poly = sympy.Poly(parse_expr(text, local_dict={n: sympy.Symbol(n) for n in names}),
                      *[sympy.Symbol(n) for n in names])
    return [int(c) for c in poly.coeffs()]


# ------------------------------------------------------------------------ canonical form

@pytest.mark.parametrize("seed", range(6))
def test_canonical_form_is_the_same_for_any_scaling_and_term_order(seed: int) -> None:
    rng = np.random.default_rng(seed)
    base = [(6, x**2), (-4, x * y), (10, z**3), (2, y)]
    reference = canonical_form(sympy.Add(*[c * m for c, m in base]), ["x", "y", "z"]).text
    assert reference == "5*z**3 + 3*x**2 - 2*x*y + y"  # degree first, then x before y before z
    for _ in range(5):
        factor = sympy.Rational(int(rng.integers(-50, 50)) or 7, int(rng.integers(1, 90)))
        order = rng.permutation(len(base))
        expr = sympy.Add(*[factor * base[i][0] * base[i][1] for i in order], evaluate=False)
        form = canonical_form(expr, ["x", "y", "z"])
        assert form.text == reference and form.exact
        # canonical = scale * original, exactly
        assert sympy.expand(parse_expr(form.text) - form.scale * expr) == 0


def test_canonical_integers_are_primitive_with_positive_leading_term() -> None:
    rng = np.random.default_rng(1)
    for _ in range(20):
        coefs = [Fraction(int(rng.integers(-30, 30)), int(rng.integers(1, 12))) for _ in range(4)]
        if not any(coefs):
            continue
        expr = sum(sympy.Rational(c.numerator, c.denominator) * m
                   for c, m in zip(coefs, [x * y, x, y, z], strict=True))
        form = canonical_form(expr, ["x", "y", "z"])
        ints = [int(c) for c, _ in form.terms]
        assert all(isinstance(c, sympy.Integer) for c, _ in form.terms)
        assert reduce(math.gcd, ints) == 1 and ints[0] > 0
        assert form.integers == ints
        assert form.max_coefficient == max(abs(v) for v in ints)


def test_canonical_form_with_symbolic_parameters_is_primitive_over_the_parameters() -> None:
    expr = k1 * x / 2 - k2 * y / (k1 + 1) + k1 * z / (2 * k1 + 2)
    form = canonical_form(expr, ["x", "y", "z"])
    assert form.exact
    coefs = [c for c, _ in form.terms]
    assert all(sympy.fraction(sympy.together(c))[1] == 1 for c in coefs)  # no denominators
    assert sympy.gcd_list(coefs) == 1  # primitive in Z[k1, k2]
    assert sympy.simplify(parse_expr(form.text) - form.scale * expr) == 0
    assert form.text == "(k1**2 + k1)*x - 2*k2*y + k1*z"  # coefficient before the function
    assert canonical_form(-3 * expr, ["x", "y", "z"]).text == form.text


def test_canonical_form_of_float_and_irrational_coefficients() -> None:
    f = canonical_form(sympy.sqrt(2) * x**2 / 2 + y**2, ["x", "y"])
    assert not f.exact and f.text == "x**2 + sqrt(2)*y**2"
    g = canonical_form(-0.5 * x + 0.25 * y, ["x", "y"])
    assert g.text == "x - 0.5*y" and g.max_coefficient == pytest.approx(2.0)
    assert canonical_form(sympy.Integer(0), ["x"]).text == "0"


def test_non_polynomial_functions_come_after_the_monomials() -> None:
    a, b = sympy.symbols("alpha beta")
    form = canonical_form(-a * sympy.log(y) + b * y - sympy.log(x) * 2 + x, ["x", "y"])
    assert form.text == "x + beta*y - 2*log(x) - alpha*log(y)"
    assert form.latex.startswith("x + \\beta y - 2 \\log{\\left(x \\right)}")


def test_decimal_view_only_beside_huge_integers() -> None:
    huge = canonical_form(x - sympy.Rational(2749999999999999, 1000000000000010) * y, ["x", "y"])
    assert huge.huge and max(len(str(abs(v))) for v in huge.integers) > 10
    assert huge.decimal() == "x - 2.75*y"
    assert huge.decimal_latex() == "x - 2.75 y"
    value = parse_expr(huge.decimal()).subs({x: 0, y: 1})
    assert float(value) == pytest.approx(-2749999999999999 / 1000000000000010, rel=1e-5)
    small = canonical_form(x - sympy.Rational(3, 7) * y, ["x", "y"])
    assert not small.huge and small.decimal() is None and small.text == "7*x - 3*y"


# ------------------------------------------------------------------------ tags

def test_tags_of_the_real_certificates(lv: aipoincare.System) -> None:
    exprs = [x + y + z, x * y * z, x + y]
    sym = certify_many(exprs, lv, method="symbolic")
    ident = certify_many(exprs, lv, method="identity-test")
    mp = certify_many(exprs[:2], lv, method="mpmath-50-digits")
    tags = [certificate_tag(Invariant(e, c.verified, c.method, c.residual, c.detail))
            for e, c in zip(exprs * 2 + exprs[:2], sym + ident + mp, strict=True)]
    assert tags[0] == tags[1] == "symbolic"
    assert tags[2].startswith("NOT verified: symbolic")
    # the bound is the certificate's own P^N, rounded to a power of ten that is not smaller
    bound = re.search(r"<= ([0-9.e+-]+)\^([0-9]+) per prime", ident[0].detail)
    p = float(bound.group(1)) ** int(bound.group(2))
    k = int(re.fullmatch(r"identity test p<=1e-(\d+)", tags[3]).group(1))
    assert p <= 10.0 ** -k < 10 * p
    assert tags[5].startswith("NOT verified: identity test")  # x + y is not conserved
    worst = float(re.search(r"<= ([0-9.e+-]+) at", mp[0].detail).group(1))
    k = re.fullmatch(r"mpmath residual (0|<=1e-(\d+)) at \d+ points, not a proof", tags[6])
    assert k and (worst == 0 if k.group(1) == "0" else worst <= 10.0 ** -int(k.group(2)))


def test_tags_never_claim_more_than_the_certificate() -> None:
    h = sympy.Symbol("x")
    assert certificate_tag(Invariant(h, True, "identity-test", 0.0, "no bound stated")) == \
        "identity test"
    assert certificate_tag(Invariant(h, False, "numerical", 3e-9)) == \
        "NOT verified: numerical only, residual 3.0e-09"
    assert certificate_tag(Invariant(h, False, "undecided", float("nan"))) == \
        "NOT verified: undecided"
    assert certificate_tag(Invariant(h, True, "symbolic-modulo-constraints")) == \
        "symbolic mod constraints"

    data = {"heldout_ratio": 2.5e-7, "heldout_noise": 0.83, "fit_ratio": 1e-7,
            "heldout_trajectories": 12}
    assert certificate_tag(Invariant(h, False, "data", 2.5e-7, evidence=data)) == \
        "data evidence: held-out ratio 2.5e-07, 0.83x noise, not a proof"
    # equations given too: the certificate first, the data evidence beside it
    assert certificate_tag(Invariant(h, True, "symbolic", evidence=data)) == \
        "symbolic; data evidence: held-out ratio 2.5e-07, 0.83x noise"
    assert certificate_tag(Invariant(h, False, "identity-test", 1.0, evidence=data)) == \
        "NOT verified: identity test, residual 1.0e+00; data evidence: held-out ratio " \
        "2.5e-07, 0.83x noise"
    assert certificate_tag(Invariant(h, False, "data", evidence={"spread": 3e-5})) == \
        "data evidence: spread 3.0e-05, not a proof"


# ------------------------------------------------------------------------ text and CLI

def _invariant_lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if re.match(r"\s+H\d+\s*= ", line)]


def test_text_one_line_per_invariant_and_verbose(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["discover", str(EXAMPLES / "rigid_body.toml"), "--seed", "0"]) == 0
    out = capsys.readouterr().out
    lines = _invariant_lines(out)
    assert lines == ["  H1 = 4*m1**2 + m2**2  [symbolic]", "  H2 = 3*m1**2 - m3**2  [symbolic]"]
    assert "certificate:" not in out
    assert main(["discover", str(EXAMPLES / "rigid_body.toml"), "--verbose"]) == 0
    verbose = capsys.readouterr().out
    assert _invariant_lines(verbose) == lines
    assert verbose.count("certificate: verified: symbolic") == 2


def test_same_invariants_print_identically_with_another_seed(
        capsys: pytest.CaptureFixture[str]) -> None:
    printed = []
    for seed in ("0", "5"):
        assert main(["discover", str(EXAMPLES / "atmospheric_chemistry.toml"), "--seed",
                     seed]) == 0
        printed.append(_invariant_lines(capsys.readouterr().out))
    assert printed[0] == printed[1] and len(printed[0]) == 3


def test_a_rescaled_discovery_prints_the_same_report() -> None:
    """What a different seed may change (the scale and sign of each vector, the order of
    terms) does not change the printed invariants."""
    d = aipoincare.discover(example("rigid_body"), seed=0, device="cpu")
    lines = _invariant_lines(aipoincare.to_text(d))
    d.invariants = [Invariant(sympy.Rational(-3, 11) * inv.expr, inv.verified, inv.method,
                              inv.residual, inv.detail) for inv in d.invariants]
    assert _invariant_lines(aipoincare.to_text(d)) == lines


def test_atmospheric_chemistry_shows_a_decimal_view(chem: aipoincare.System) -> None:
    d = aipoincare.discover(chem, seed=0, device="cpu")
    text = aipoincare.to_text(d)
    h3 = text.splitlines()[text.splitlines().index(_invariant_lines(text)[2]) + 1]
    assert h3.strip().startswith("~= ") and h3.endswith("(decimal view)")
    assert "0.363636*H2" in h3
    doc = json.loads(d.to_json())
    third = doc["invariants"][2]
    assert third["decimal"] == h3.strip()[3:-len("  (decimal view)")]
    ints = _integer_coefficients(third["canonical"], doc["variables"])
    assert reduce(math.gcd, ints) == 1 and any(len(str(abs(v))) > 10 for v in ints)
    assert doc["invariants"][0]["decimal"] is None


def test_json_tag_and_canonical_fields(lv: aipoincare.System) -> None:
    d = aipoincare.discover(lv, seed=0, device="cpu")
    doc = json.loads(d.to_json())
    names = {v: sympy.Symbol(v) for v in doc["variables"]}
    for inv, item in zip(d.invariants, doc["invariants"], strict=True):
        assert item["tag"] == certificate_tag(inv) == "symbolic"
        assert item["detail"] == inv.detail  # the long text stays in the JSON
        ratio = sympy.simplify(parse_expr(item["canonical"], local_dict=names) / inv.expr)
        assert ratio.is_Rational and ratio != 0


# ------------------------------------------------------------------------ LaTeX table

def test_latex_table_and_cli_flag(tmp_path, chem: aipoincare.System,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    d = aipoincare.discover(chem, seed=0, device="cpu")
    table = d.to_latex_table()
    lines = table.splitlines()
    assert lines[0].startswith("\\begin{tabular}") and lines[-1] == "\\end{tabular}"
    rows = [line for line in lines if line.startswith("$H_")]
    assert len(rows) == 3 and all(line.endswith("& symbolic \\\\") for line in rows)
    assert "$HCHO + CO$" in rows[0]
    assert "\\newline $\\approx " in rows[2]  # the decimal view of the huge integers
    path = tmp_path / "report.tex"
    assert main(["discover", str(EXAMPLES / "atmospheric_chemistry.toml"), "--latex",
                 str(path), "--quiet"]) == 0
    tex = path.read_text()
    assert tex.startswith("\\documentclass{article}") and table in tex


# ------------------------------------------------------------------------ HTML display

def test_html_display_with_spectrum(lv: aipoincare.System) -> None:
    d = aipoincare.discover(lv, seed=0, device="cpu")
    page = d._repr_html_()
    assert "nullity <b>4</b>, independent <b>2</b> (exact)" in page
    assert "<td>$H_{1}$</td>" in page and "$x y z$" in page and ">symbolic</td>" in page
    d.spectrum = np.logspace(0, -17, 19)
    png = re.search(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', to_html(d))
    assert png and base64.b64decode(png.group(1)).startswith(b"\x89PNG")
    d.spectrum = np.zeros(0)  # exact counts without a float spectrum: no figure
    assert "<img" not in to_html(d)


def test_html_escapes_and_shows_the_exceptional_set() -> None:
    family = Family(("k1", "k2"), {"k1": 1, "k2": 2}, 1,
                    (Exceptional((k1, k2), "H1 vanishes identically"),),
                    special=(SpecialValue(k1 - k2, 2, (x + y,)),))
    d = Discovery(name="a <b> & c", variables=["x", "y"], basis_labels=["x", "y"], points=5,
                  nullity=1, independent=1, spectrum=np.zeros(0), exact=True,
                  invariants=[Invariant(k1 * x - k2 * y, True, "symbolic")], family=family)
    page = to_html(d)
    assert "a &lt;b&gt; &amp; c" in page and "<b> &" not in page
    assert "Exceptional set" in page and "$k_{1} = 0, k_{2} = 0$" in page
    assert "H1 vanishes identically" in page
    assert "$k_{1} x - k_{2} y$" in page
    assert "$k_{1} - k_{2} = 0$: nullity 2" in page  # the special values
