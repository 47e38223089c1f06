"""The safe expression parser, the security boundary: what it builds and what it refuses."""

from __future__ import annotations

from pathlib import Path

import pytest
import sympy

from aipoincare import System, load_system
from aipoincare.errors import ExpressionError, SystemFileTypeError
from aipoincare.parser import parse_expression

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


def test_parser_numbers_are_exact() -> None:
    assert parse_expression("0.1*x + 3/4", XYZ) == x / 10 + sympy.Rational(3, 4)
    assert parse_expression("1e-3", {}) == sympy.Rational(1, 1000)
    assert parse_expression(2, {}) == 2


def test_parser_functions_and_constants() -> None:
    e = parse_expression("sqrt(x) + exp(y) - log(z) + sin(x)*cos(y)/tan(z) + sinh(x) + cosh(y)"
                         " + tanh(z) + atan(x) + Abs(y) + pi + E", XYZ)
    expected = (sympy.sqrt(x) + sympy.exp(y) - sympy.log(z) + sympy.sin(x) * sympy.cos(y)
                / sympy.tan(z) + sympy.sinh(x) + sympy.cosh(y) + sympy.tanh(z) + sympy.atan(x)
                + sympy.Abs(y) + sympy.pi + sympy.E)
    assert e == expected


def test_parser_long_sum_is_fast() -> None:
    text = " + ".join(f"{i}*x**{i % 5}*y" for i in range(2000))
    e = parse_expression(text, XYZ)
    assert e == sympy.expand(sum(i * x ** (i % 5) * y for i in range(2000)))


def test_parser_multiline_string() -> None:
    assert parse_expression("x +\n  y", XYZ) == x + y


@pytest.mark.parametrize("text, message", [
    ("x^2", r"'\^' is not a power .* at column 2; use \*\* for powers"),
    ("x*(y - ", r"Syntax error in .* at column \d+"),
    ("x +* y", r"Syntax error in .*'x \+\* y' at column 4"),
    ("x + w", r"Unknown name 'w' in .* at column 5; allowed names are x, y, z and the functions"),
    ("x.real", r"Attribute access \('\.'\) is not allowed"),
    ("x[0]", r"A subscript \('\[\.\.\.\]'\) is not allowed"),
    ("lambda: 1", r"A lambda is not allowed"),
    ("[i for i in (x, y)]", r"A comprehension is not allowed"),
    ("'abc'", r"A string is not allowed"),
    ("sin(x, y)", r"sin\(\) takes 1 argument\(s\), got 2"),
    ("log(x, base=2)", r"Keyword or '\*' arguments to log\(\) are not allowed"),
    ("foo(x)", r"Unknown function 'foo' .*; the allowed functions are sqrt, exp, log"),
    ("sqrt", r"The function 'sqrt' is used without arguments"),
    ("x // 2", r"The operator '//' is not allowed .* at column 3"),
    ("x if y else z", r"'if'/'else' is not allowed"),
    ("x < y", r"A comparison is not allowed"),
    ("1/0", r"undefined or infinite .* division by zero"),
    ("10**10**10", r"numeric power .* is too large"),
    ("", r"empty expression"),
    ("True", r"The constant True is not allowed"),
    ("1j*x", r"The constant 1j is not allowed"),
    ("getattr(x, 'y')", r"Unknown function 'getattr'"),
    ("(lambda: 0)()", r"A lambda is not allowed"),
    ("__builtins__", r"Unknown name '__builtins__'"),
])
def test_parser_rejects(text: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=message):
        parse_expression(text, XYZ, where="[equations] x")


def test_parser_deep_nesting_is_an_error_not_a_crash() -> None:
    with pytest.raises(ExpressionError, match="too many nested parentheses"):
        parse_expression("(" * 5000 + "x" + ")" * 5000, XYZ)
    with pytest.raises(ExpressionError, match="nested too deeply"):
        parse_expression("-" * 100000 + "x", XYZ)


def test_parser_rejects_sympy_objects_and_wrong_types() -> None:
    with pytest.raises(SystemFileTypeError, match="must be an expression string; got list"):
        parse_expression(["x"], XYZ)  # type: ignore[arg-type]


def test_injection_file_rejected_without_running(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    for payload in (f"__import__('os').system('touch {marker}')",
                    f"x + __import__('os').system('touch {marker}')",
                    f"().__class__.__bases__[0].__subclasses__() and open('{marker}', 'w')",
                    f"open('{marker}', 'w')", f"exec(\\\"open('{marker}', 'w')\\\")"):
        text = LV.replace('x = "x*(y - z)"', f'x = "{payload}"')
        with pytest.raises(ExpressionError) as info:
            load_system(write(tmp_path, text))
        assert "\n" not in str(info.value)
        assert not marker.exists()
    # also in every other place an expression can appear
    bad = f"__import__('os').system('touch {marker}')"
    for section in (f'lam = "{bad}"', ):
        with pytest.raises(ExpressionError):
            load_system(write(tmp_path, lv_with(definitions=section)))
    with pytest.raises(ExpressionError):
        load_system(write(tmp_path, lv_with(constraints=f'g = "{bad}"')))
    with pytest.raises(ExpressionError):
        load_system(write(tmp_path,
                          lv_with(basis=f'kind = "expressions"\nexpressions = ["{bad}"]')))
    with pytest.raises(ExpressionError):
        System("x", [bad])
    assert not marker.exists()
