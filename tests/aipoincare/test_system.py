"""The System object built from Python: strings, SymPy objects, definitions, one validation path."""

from __future__ import annotations

import pytest
import sympy

from aipoincare.errors import ExpressionError, SystemFileError, SystemFileTypeError
from aipoincare.specs import BasisSpec, SamplingSpec
from aipoincare.system import System

x, y, z = sympy.symbols("x y z")


# ---------------------------------------------------------------- the Python constructor


def test_system_from_sympy_and_strings_agree() -> None:
    a = System([x, y, z], [x * (y - z), y * (z - x), z * (x - y)], name="LV")
    b = System("x y z", {"z": "z*(x - y)", "x": "x*(y - z)", "y": "y*(z - x)"}, name="LV")
    c = System.from_strings(["x", "y", "z"], ["x*(y - z)", "y*(z - x)", "z*(x - y)"], name="LV")
    assert a.equations == b.equations == c.equations
    assert a.variables == b.variables == c.variables == (x, y, z)


def test_system_parameters_substituted_in_sympy_input() -> None:
    k = sympy.Symbol("k")
    s = System([x, y], {x: k * y, y: -k * x}, parameters={"k": 0.1})
    assert s.equations == (y / 10, -x / 10)
    assert s.parameters == {"k": sympy.Rational(1, 10)}


def test_symbols_with_assumptions_are_matched_by_name() -> None:
    xr = sympy.Symbol("x", positive=True)
    s = System(["x", "y"], [xr * y, -y])
    assert s.equations[0].free_symbols == {x, y}


def test_system_basis_strings_resolved_against_definitions() -> None:
    s = System.from_strings("x y", ["y", "-x"], definitions={"r2": "x**2 + y**2"},
                            basis={"kind": "expressions", "expressions": ["r2", "sqrt(r2)"]})
    assert s.basis is not None
    assert s.basis.expressions == (x**2 + y**2, sympy.sqrt(x**2 + y**2))


def test_basis_spec_unknown_name_checked_by_system() -> None:
    with pytest.raises(ExpressionError,
                       match=r"Unknown name\(s\) 'w' in \[basis\] expressions\[1\]"):
        System("x y", ["y", "-x"], basis=BasisSpec("expressions", None, ("x", "w*x")))


def test_repr_and_properties() -> None:
    s = System("x y", ["y", "-x"], name="osc")
    assert repr(s) == "System('osc': dx/dt = y, dy/dt = -x)"
    assert s.variable_names == ["x", "y"] and s.n_vars == 2


# ---------------------------------------------------------------- API-level validation


def test_api_errors() -> None:
    with pytest.raises(SystemFileError, match=r"'equations' must have one entry per variable"):
        System("x y", ["y"])
    with pytest.raises(SystemFileTypeError, match=r"'equations' must be a list"):
        System("x y", "y")  # type: ignore[arg-type]
    with pytest.raises(SystemFileError, match=r"declared twice"):
        System.from_strings(["x", "x"], ["1", "2"])
    with pytest.raises(ExpressionError, match=r"Unknown name\(s\) 'w' in \[equations\] x"):
        System([x], [sympy.Symbol("w") * x])
    with pytest.raises(SystemFileTypeError, match=r"must be a name \(string\); got int"):
        System([1], ["1"])  # type: ignore[list-item]
    with pytest.raises(SystemFileError, match=r"The 'degree' of \[basis\] must be an integer"):
        BasisSpec("polynomial", 11)
    with pytest.raises(SystemFileError, match=r"The 'kind' of \[basis\] must be one of"):
        BasisSpec("fourier")
    with pytest.raises(SystemFileError, match=r"'distribution' of \[sampling\] must be one of"):
        SamplingSpec("cauchy")
    with pytest.raises(SystemFileTypeError, match=r"'constraints' must be a list or a table"):
        System("x", ["1"], constraints=3)  # type: ignore[arg-type]


def test_resolve_basis_given_apart() -> None:
    s = System("x y", ["k*y", "-k*x"], parameters={"k": 0.5})
    spec = BasisSpec("product", 2, ("k*log(x)", "sqrt(y)"))
    assert s.resolve_basis(spec).expressions == (sympy.log(x) / 2, sympy.sqrt(y))
    assert s.resolve_basis({"kind": "polynomial", "degree": 2}) == BasisSpec("polynomial", 2)
    with pytest.raises(ExpressionError, match=r"Unknown name\(s\) 'w' in \[basis\] "
                                              r"expressions\[1\]"):
        s.resolve_basis(BasisSpec("expressions", None, ("x", "w*y")))
    with pytest.raises(SystemFileTypeError, match="must be a BasisSpec or a table; got int"):
        s.resolve_basis(3)  # type: ignore[arg-type]


def test_one_validation_path_for_every_way_in() -> None:
    """The constructor, from_strings and a basis table give the same message for a fault."""
    def message(make):
        with pytest.raises(SystemFileError) as info:
            make()
        return str(info.value)

    assert message(lambda: System(["x", "x"], ["1", "2"])) == \
        message(lambda: System.from_strings(["x", "x"], ["1", "2"]))
    assert message(lambda: System("x", ["x"], basis={"kind": "fourier"})) == \
        message(lambda: System("x", ["x"], basis=BasisSpec("fourier")))
    assert message(lambda: System("x", ["x"], sampling={"scale": 0})) == \
        message(lambda: System("x", ["x"], sampling=SamplingSpec(scale=0)))


def test_definitions_are_kept_and_substituted() -> None:
    lam = sympy.Symbol("lam")
    s = System("x y", [lam * y, "-lam*x"], definitions={"lam": "1 + x**2"},
               expected={"invariants": ["lam"]})
    assert s.definitions == {"lam": 1 + x**2}
    assert [sympy.expand(e) for e in s.equations] == [x**2 * y + y, -x**3 - x]
    assert s.expected == {"invariants": (x**2 + 1,)}
    with pytest.raises(SystemFileError, match=r"The definition 'x' has the name of a variable"):
        System("x", ["x"], definitions={"x": "1"})


# ---------------------------------------------------------------- names of constants


def test_variables_and_parameters_may_be_named_e_pi_i() -> None:
    s = System("E S C I", {"E": "-E*S + C", "S": "-E*S + C", "C": "E*S - C", "I": "pi*C"},
               parameters={"pi": 3})
    e, c, i = sympy.symbols("E C I")
    assert s.equations[0] == -e * sympy.Symbol("S") + c and not s.equations[0].has(sympy.E)
    assert s.equations[3] == 3 * c  # the parameter pi = 3, not 3.14159...
    assert s.shadowed == ["E", "pi"]  # I is not one of the parser's constants
    assert System("x", ["-x*E"], parameters={"E": 0.5}).equations == (-x / 2,)
    assert System("x", ["-x*E"]).equations == (-sympy.E * x,)  # undeclared: the constant


def test_basis_expressions_resolve_constant_names_to_the_users() -> None:
    spec = BasisSpec("expressions", expressions=["E", "log(E)", "pi*E"])
    mine = System("E S", ["-E*S", "E*S"], basis=spec)
    e = sympy.Symbol("E")
    assert mine.basis.expressions == (e, sympy.log(e), sympy.pi * e)
    theirs = System("x", ["-x"]).resolve_basis(BasisSpec("expressions", expressions=["E*x"]))
    assert theirs.expressions == (sympy.E * x,)


def test_symbolic_parameters_in_python() -> None:
    s = System("x y", {"x": "k*y", "y": "-k*x"}, parameters={"k": "symbolic", "c": 2})
    k = sympy.Symbol("k")
    assert s.symbolic == (k,) and s.parameters == {"k": k, "c": 2}
    assert s.specialise({"k": 0.5}).equations == (y / 2, -x / 2)
    assert s.specialise({"k": 0.5}).symbolic == ()
    assert s.extended().variables == (x, y, k) and s.extended().equations[2] == 0
    with pytest.raises(ValueError, match=r"specialise\(\) got 'c', which is not a symbolic "
                                         r"parameter of 'system' \(symbolic: k\)"):
        s.specialise({"c": 1})
    with pytest.raises(SystemFileError, match=r"'k' must be a number \(e\.g\. k = 0\.5\) or "
                                              r"\"symbolic\"; got str 'symbol'"):
        System("x", ["k*x"], parameters={"k": "symbol"})
    with pytest.raises(ExpressionError, match=r"Unknown name\(s\) 'q'"):
        System([x], [sympy.Symbol("q") * x], parameters={"k": "symbolic"})
