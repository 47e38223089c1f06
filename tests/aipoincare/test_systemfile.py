"""System files: loading the shipped examples, every section, and pinned messages of bad files."""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path

import pytest
import sympy

from aipoincare.errors import ExpressionError, SystemFileError, SystemFileTypeError
from aipoincare.specs import BasisSpec, SamplingSpec
from aipoincare.system import System
from aipoincare.systemfile import load_system

x, y, z = sympy.symbols("x y z")
XYZ = {"x": x, "y": y, "z": z}

LV = """
name = "LV"
variables = ["x", "y", "z"]

[equations]
x = "x*(y - z)"
y = "y*(z - x)"
z = "z*(x - y)"
"""


def write(tmp_path: Path, text: str, name: str = "sys.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def lv_with(**sections: str) -> str:
    """The LV file with extra sections appended (key = TOML body)."""
    return LV + "".join(f"\n[{k}]\n{v}\n" for k, v in sections.items())


# ---------------------------------------------------------------- shipped examples


@pytest.mark.parametrize("stem, n_vars, n_cons, degree",
                         [("lotka_volterra_3", 3, 0, 3), ("atmospheric_chemistry", 11, 0, 1),
                          ("fluid_2d", 12, 1, 4), ("fluid_3d", 24, 1, 3)])
def test_shipped_examples_load(stem: str, n_vars: int, n_cons: int, degree: int) -> None:
    s = load_system(files("aipoincare") / "examples" / f"{stem}.toml")
    assert s.n_vars == n_vars and len(s.equations) == n_vars
    assert len(s.constraints) == n_cons
    assert s.basis is not None and s.basis.degree == degree
    assert s.is_rational
    assert set(s.expected) >= {"nullity", "independent"}
    for e in (*s.equations, *s.constraints):  # only variables remain after substitution
        assert e.free_symbols <= set(s.variables)


@pytest.mark.parametrize("path", sorted((files("aipoincare") / "examples").iterdir(), key=str),
                         ids=lambda p: Path(str(p)).stem)
def test_every_shipped_example_loads_with_expected_counts(path: Path) -> None:
    s = load_system(path)
    assert s.basis is not None
    assert isinstance(s.expected["nullity"], int) and isinstance(s.expected["independent"], int)
    assert s.expected["independent"] <= s.expected["nullity"]


def test_pendulum_expression_basis() -> None:
    s = load_system(files("aipoincare") / "examples" / "pendulum.toml")
    q, p = s.variables
    assert s.equations == (p, -sympy.sin(q))
    assert s.basis is not None and s.basis.kind == "expressions"
    assert sympy.cos(q) in s.basis.expressions and p**2 in s.basis.expressions


def test_lv_equations_exact() -> None:
    s = load_system(files("aipoincare") / "examples" / "lotka_volterra_3.toml")
    assert s.variables == (x, y, z)
    assert s.equations == (x * (y - z), y * (z - x), z * (x - y))
    # oracle: x + y + z and x*y*z are conserved by the parsed equations
    for h in (x + y + z, x * y * z):
        lie = sum(sympy.diff(h, v) * f for v, f in zip(s.variables, s.equations, strict=True))
        assert sympy.expand(lie) == 0


def test_parameters_exact_and_substituted() -> None:
    s = load_system(files("aipoincare") / "examples" / "atmospheric_chemistry.toml")
    assert s.parameters["k1"] == sympy.Rational(1, 2)
    assert s.parameters["k4"] == sympy.Rational("0.015000000000000036")
    o, o3 = sympy.Symbol("O"), sympy.Symbol("O3")
    no = sympy.Symbol("NO")
    k2, k3 = s.parameters["k2"], s.parameters["k3"]
    assert sympy.expand(s.equations[0] - (k2 * o - k3 * o3 * no)) == 0
    assert all(not (e.free_symbols & {sympy.Symbol(f"k{i}") for i in range(1, 11)})
               for e in s.equations)


def test_numeric_text_parameters_are_exact() -> None:
    s = System("x", ["k*x + m + n"], parameters={"k": "0.1", "m": "2/3", "n": "-1e-2"})
    assert s.parameters == {"k": sympy.Rational(1, 10), "m": sympy.Rational(2, 3),
                            "n": sympy.Rational(-1, 100)}
    with pytest.raises(SystemFileError, match=r"'k' must be a number .*got str '1/0x'"):
        System("x", ["k*x"], parameters={"k": "1/0x"})
    with pytest.raises(SystemFileError, match=r"'k' divides by zero: '2/0'"):
        System("x", ["k*x"], parameters={"k": "2/0"})


def test_definitions_in_order(tmp_path: Path) -> None:
    text = LV.replace('x = "x*(y - z)"', 'x = "mu*x"') + """
[definitions]
lam = "y - z"
mu = "2*lam"
"""
    s = load_system(write(tmp_path, text))
    assert sympy.expand(s.equations[0] - 2 * x * (y - z)) == 0


def test_later_definition_cannot_be_used_earlier(tmp_path: Path) -> None:
    text = LV + '\n[definitions]\nmu = "2*lam"\nlam = "y - z"\n'
    with pytest.raises(ExpressionError, match=r"Unknown name 'lam' in \[definitions\] mu"):
        load_system(write(tmp_path, text))


def test_constraints_table_and_list(tmp_path: Path) -> None:
    s = load_system(write(tmp_path, lv_with(constraints='sphere = "x**2 + y**2 + z**2 - 1"')))
    assert s.constraints == (x**2 + y**2 + z**2 - 1,)
    s2 = load_system(write(tmp_path, LV.replace('name = "LV"',
                                                'name = "LV"\nconstraints = ["x + y + z - 3"]')))
    assert s2.constraints == (x + y + z - 3,)


def test_basis_and_sampling_sections(tmp_path: Path) -> None:
    text = lv_with(basis='kind = "product"\ndegree = 2\nexpressions = ["log(x)", "k*y"]',
                   parameters="k = 0.25",
                   sampling='distribution = "uniform"\nlow = 0.5\nhigh = 2\npoints = 77')
    s = load_system(write(tmp_path, text))
    assert s.basis == BasisSpec("product", 2, (sympy.log(x), y / 4))
    assert s.sampling == SamplingSpec("uniform", low=0.5, high=2.0, points=77)


def test_data_path_relative_to_file(tmp_path: Path) -> None:
    sub = tmp_path / "sub"
    sub.mkdir()
    s = load_system(write(sub, lv_with(sampling='data = "states.csv"')))
    assert s.sampling.data == str((sub / "states.csv").resolve())


def test_name_defaults_to_stem(tmp_path: Path) -> None:
    s = load_system(write(tmp_path, LV.replace('name = "LV"\n', ""), "my_system.toml"))
    assert s.name == "my_system"
    assert s.source == str(tmp_path / "my_system.toml")


# ---------------------------------------------------------------- bad files: pinned messages


BAD_FILES = [
    # (file text, error class, message regex)
    (LV.replace('z = "z*(x - y)"\n', ""), SystemFileError,
     r"The variable\(s\) 'z' \(.*sys\.toml\) have no equation; add e\.g\. z = "),
    (LV + 'w = "x"\n', SystemFileError,
     r"\[equations\] \(.*sys\.toml\) has an equation for 'w', which is not a declared variable "
     r"\(x, y, z\)"),
    (LV.replace('x = "x*(y - z)"', 'x = "x*(y - q)"'), ExpressionError,
     r"Unknown name 'q' in \[equations\] x \(.*sys\.toml\) = 'x\*\(y - q\)' at column 8; "
     r"allowed names are x, y, z"),
    (LV.replace('x = "x*(y - z)"', 'x = "x*(y - z"'), ExpressionError,
     r"Syntax error in \[equations\] x \(.*\) = 'x\*\(y - z' at column 3"),
    (lv_with(parameters='k = "fast"'), SystemFileError,
     r"The parameter \(.*sys\.toml\) 'k' must be a number \(e\.g\. k = 0\.5\) or \"symbolic\"; "
     r"got str 'fast'"),
    (lv_with(parameters='k = "Symbolic"'), SystemFileError,
     r"'k' must be a number \(e\.g\. k = 0\.5\) or \"symbolic\"; got str 'Symbolic'; write a "
     r"number without quotes, \"symbolic\" for a parameter that stays a symbol"),
    (lv_with(parameters="k = true"), SystemFileError, r"The parameter .* 'k' must be a number"),
    (lv_with(parameters="k = nan"), SystemFileError, r"'k' must be a finite number; got nan"),
    (lv_with(parameters="x = 1"), SystemFileError,
     r"The parameter 'x' .* has the name of a variable"),
    (lv_with(parameters="sin = 1"), SystemFileError,
     r"The parameter .* 'sin' clashes with the built-in function 'sin' \(function names stay "
     r"reserved; the constants E and pi may be reused\); rename it\."),
    (LV.replace('["x", "y", "z"]', '["x", "y", "exp"]'), SystemFileError,
     r"The variable .* 'exp' clashes with the built-in function 'exp'"),
    (lv_with(parameters='k = "symbolic"', basis='kind = "expressions"\nexpressions = ["k*x"]'),
     ExpressionError, r"\[basis\] expressions\[0\] .* uses the symbolic parameter\(s\) 'k'; basis "
     r"functions are functions of the variables only"),
    (lv_with(parameters="k = 1", definitions='k = "x"'), SystemFileError,
     r"The definition 'k' .* has the name of a parameter or earlier definition"),
    (LV.replace('["x", "y", "z"]', '["x", "y", "z", "x"]'), SystemFileError,
     r"The variable 'x' .* is declared twice in 'variables'"),
    (LV.replace('["x", "y", "z"]', '["x", "y", "2z"]'), SystemFileError,
     r"The variable .* '2z' is not a valid name"),
    (LV.replace('["x", "y", "z"]', '"x y z"'), SystemFileTypeError,
     r"'variables' \(.*\) must be a list of names such as \[\"x\", \"y\"\]; got str"),
    (LV.replace('variables = ["x", "y", "z"]\n', ""), SystemFileError,
     r"has no 'variables'; add e\.g\. variables ="),
    (LV.split("[equations]")[0], SystemFileError, r"has no \[equations\] section"),
    ('variables = []\n[equations]\n', SystemFileError, r"must list at least one state variable"),
    (lv_with(basis='kind = "fourier"'), SystemFileError,
     r"The 'kind' of \[basis\] must be one of 'polynomial', 'expressions', 'product'; "
     r"got 'fourier' \(in .*sys\.toml\)\.$"),
    (lv_with(basis='degree = "three"'), SystemFileError,
     r"The 'degree' of \[basis\] must be an integer from 1 to 8; got str 'three' \(in "),
    (lv_with(basis="degree = 9"), SystemFileError, r"must be an integer from 1 to 8; got 9"),
    (lv_with(basis="degree = 0"), SystemFileError, r"must be an integer from 1 to 8; got 0"),
    (lv_with(basis='kind = "expressions"'), SystemFileError,
     r"kind = 'expressions' needs a non-empty 'expressions' list"),
    (lv_with(basis='kind = "expressions"\nexpressions = "x"'), SystemFileTypeError,
     r"The 'expressions' of \[basis\] must be a list of strings .* \(in .*sys\.toml\)"),
    (lv_with(basis="degre = 2"), SystemFileError,
     r"Unknown key 'degre' in \[basis\] .*; the allowed keys are kind, degree, expressions"),
    (lv_with(sampling='distribution = "cauchy"'), SystemFileError,
     r"The 'distribution' of \[sampling\] must be one of 'normal', 'uniform'; got 'cauchy' "
     r"\(in .*sys\.toml\)"),
    (lv_with(sampling="scale = -1"), SystemFileError,
     r"The 'scale' of \[sampling\] must be a positive number; got -1"),
    (lv_with(sampling='scale = "big"'), SystemFileError,
     r"The 'scale' of \[sampling\] must be a positive number; got str 'big'"),
    (lv_with(sampling="low = 2\nhigh = 1"), SystemFileError, r"needs low < high; got low = 2\.0"),
    (lv_with(sampling="points = 0"), SystemFileError,
     r"The 'points' of \[sampling\] must be a positive integer; got 0"),
    (lv_with(sampling="points = 2.5"), SystemFileTypeError,
     r"must be a positive integer; got float 2\.5; leave it out for the default"),
    (lv_with(sampling="data = 3"), SystemFileError,
     r"The 'data' of \[sampling\] must be a file name"),
    (lv_with(sampling="seed = 3"), SystemFileError, r"Unknown key 'seed' in \[sampling\]"),
    (lv_with(expected="nullity = -1"), SystemFileError,
     r"The 'nullity' of \[expected\] .* must be a non-negative integer; got -1"),
    (lv_with(expected="nulity = 1"), SystemFileError,
     r"Unknown key 'nulity' in \[expected\] .*; the allowed keys are nullity, independent, "
     r"invariants"),
    (lv_with(expected='invariants = ["x + w"]'), ExpressionError,
     r"Unknown name 'w' in \[expected\] invariants\[0\] \(.*sys\.toml\)"),
    (lv_with(constraints='g = "3"'), SystemFileError,
     r"\[constraints\] g .* is the constant 3, not an expression in the variables"),
    (LV + "\n[equation]\n", SystemFileError,
     r"Unknown key or section 'equation' .*; the allowed ones are name, variables"),
    ("samplng = 3\n" + LV, SystemFileError, r"Unknown key or section 'samplng'"),
    (LV.replace("[equations]", "equations = 3\n[eqs]"), SystemFileError, r"equations"),
    (LV.replace('name = "LV"', "name = 3"), SystemFileTypeError, r"'name' .* must be a string"),
    (LV.replace('x = "x*(y - z)"', "x = [1]"), SystemFileTypeError,
     r"\[equations\] x .* must be an expression string; got list"),
]


@pytest.mark.parametrize("text, error, message", BAD_FILES)
def test_bad_files(tmp_path: Path, text: str, error: type, message: str) -> None:
    with pytest.raises(error, match=message) as info:
        load_system(write(tmp_path, text))
    assert "\n" not in str(info.value), "messages are one line"
    assert isinstance(info.value, ValueError)


def test_numeric_equation_allowed(tmp_path: Path) -> None:
    s = load_system(write(tmp_path, LV.replace('x = "x*(y - z)"', "x = 0")))
    assert s.equations[0] == 0


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SystemFileError, match=r"The system file '.*nope\.toml' does not exist"):
        load_system(tmp_path / "nope.toml")


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(SystemFileError, match="is a directory"):
        load_system(tmp_path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read anything")
def test_unreadable_file(tmp_path: Path) -> None:
    path = write(tmp_path, LV)
    path.chmod(0)
    try:
        with pytest.raises(SystemFileError, match=r"cannot be read: Permission denied"):
            load_system(path)
    finally:
        path.chmod(0o644)


def test_toml_syntax_error_has_line(tmp_path: Path) -> None:
    text = LV.replace('y = "y*(z - x)"', 'y = "y*(z - x)')
    with pytest.raises(SystemFileError, match=r"is not valid TOML: .*line 7"):
        load_system(write(tmp_path, text))


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_bytes(b'name = "\xff"\n')
    with pytest.raises(SystemFileError, match="is not UTF-8 text"):
        load_system(path)


def test_wrong_path_type() -> None:
    with pytest.raises(SystemFileTypeError, match="The 'path' of the system file must be a "
                                                  "string or path to a .toml file; got int"):
        load_system(3)  # type: ignore[arg-type]


def test_unrelated_extra_keys_are_tolerated(tmp_path):
    path = tmp_path / "lv.toml"
    path.write_text('description = "from another tool"\n' + LV + "\n[metadata]\nauthor = 'me'\n")
    assert [str(v) for v in load_system(path).variables] == ["x", "y", "z"]


def test_load_system_with_symbolic_parameters(tmp_path: Path) -> None:
    path = tmp_path / "sys.toml"
    path.write_text(lv_with(parameters="k = 0.5\nc = 2"))
    s = load_system(path, symbolic=["k"])
    assert [p.name for p in s.symbolic] == ["k"] and s.parameters["c"] == 2
    assert load_system(path).symbolic == ()
    with pytest.raises(SystemFileTypeError, match=r"The 'symbolic' parameters .* must be a list "
                                                  r"of parameter names .*; got str 'k'"):
        load_system(path, symbolic="k")
    with pytest.raises(SystemFileError, match=r"The symbolic parameter 'x' .* is a variable"):
        load_system(path, symbolic=["x"])
