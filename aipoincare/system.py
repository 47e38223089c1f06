"""Systems of ODEs: :class:`System`, validated in one place.

A :class:`System` is validated in one place, its ``__post_init__``: whether it comes from a
system file (:func:`aipoincare.load_system`), from expression strings or from SymPy objects,
every entry passes the same checks with the same messages. Strings are parsed by the safe
parser (:mod:`aipoincare.parser`); SymPy objects are checked to use only the declared names.
The file format is documented in ``docs/system-files.md``.
"""

from __future__ import annotations

import keyword
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import sympy

from traincore import check_int, check_type

from .errors import SYSTEM_ERRORS, ExpressionError, SystemFileError, SystemFileTypeError
from .parser import CONSTANT_PLACEHOLDERS, CONSTANTS, RESERVED, parse_expression
from .specs import BasisSpec, SamplingSpec, from_table

__all__ = ["System"]

_EXPECTED_KEYS = ("nullity", "independent", "invariants")
_BASIS_KEYS = ("kind", "degree", "expressions")
_SAMPLING_KEYS = ("distribution", "scale", "low", "high", "points", "data")
_IDENT = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
# a plain number written as text (parameters): 3, -0.5, 1e-3, 2/3
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?(/\d+)?$")
#: The value of a parameter that stays a symbol (``k4 = "symbolic"``).
SYMBOLIC = "symbolic"


# ----------------------------------------------------------------------------------------
# Names and values
# ----------------------------------------------------------------------------------------

def _check_name(name: Any, what: str) -> str:
    if isinstance(name, sympy.Symbol):
        name = name.name
    if not isinstance(name, str):
        raise SystemFileTypeError(f"{what} must be a name (string); got "
                                  f"{type(name).__name__} {name!r}.")
    if not _IDENT.match(name) or keyword.iskeyword(name):
        raise SystemFileError(
            f"{what} {name!r} is not a valid name; use letters, digits and '_', starting "
            "with a letter (e.g. x1, NO2), and no Python keyword.")
    if name in RESERVED:
        raise SystemFileError(
            f"{what} {name!r} clashes with the built-in function {name!r} (function names "
            "stay reserved; the constants E and pi may be reused); rename it.")
    return name


def _parameter_value(name: str, value: Any, where: str) -> sympy.Rational | sympy.Symbol:
    if isinstance(value, str) and value.strip() == SYMBOLIC:
        return sympy.Symbol(name)  # stays a symbol: invariants for all its values
    if isinstance(value, sympy.Symbol) and value.name == name:
        return value  # a symbolic parameter passed on (System.specialise)
    if isinstance(value, sympy.Basic):
        if value.is_Rational:
            return sympy.Rational(value)
        if value.is_Number and value.is_finite:
            return sympy.Rational(repr(float(value)))
        raise SystemFileError(f"{where} {name!r} must be a number; got {value!r}.")
    if isinstance(value, Fraction) or (isinstance(value, int) and not isinstance(value, bool)):
        return sympy.Rational(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise SystemFileError(f"{where} {name!r} must be a finite number; got {value!r}.")
        return sympy.Rational(repr(value))  # the exact value of its decimal text
    if isinstance(value, str) and _NUMBER.match(value.strip()):
        try:
            return sympy.Rational(value.strip())  # "0.5", "1e-3", "2/3": exact
        except ZeroDivisionError:
            raise SystemFileError(f"{where} {name!r} divides by zero: {value!r}.") from None
    raise SystemFileError(
        f"{where} {name!r} must be a number (e.g. {name} = 0.5) or \"{SYMBOLIC}\"; got "
        f"{type(value).__name__} {value!r}; write a number without quotes, \"{SYMBOLIC}\" "
        "for a parameter that stays a symbol, or move an expression to [definitions].")


def _split_names(value: Any, src: str) -> list[Any]:
    if isinstance(value, str):
        return [v for v in re.split(r"[\s,]+", value.strip()) if v]
    if isinstance(value, sympy.Symbol):
        return [value]
    if isinstance(value, Iterable) and not isinstance(value, Mapping):
        return list(value)
    raise SystemFileTypeError(
        f"'variables'{src} must be a list of names such as [\"x\", \"y\"]; got "
        f"{type(value).__name__} {value!r}.")


def _expr(value: Any, where: str, names: Mapping[str, sympy.Expr],
          var_names: Sequence[str]) -> sympy.Expr:
    """Parse a string, or check a SymPy object: only variables may remain free."""
    if not isinstance(value, sympy.Basic):
        return parse_expression(value, names, where=where)
    if not isinstance(value, sympy.Expr):
        raise SystemFileTypeError(f"{where} must be a SymPy expression; got "
                                  f"{type(value).__name__} {value!r}.")
    # map symbols by name, so Symbol('x', real=True) and 'x' are the same variable, and a
    # parameter or definition written as a symbol is substituted; a constant's placeholder
    # (a basis parsed on its own) becomes the user's name if declared, else the constant
    repl = {s: names[s.name] for s in value.free_symbols
            if s.name in names and names[s.name] != s}
    repl.update({s: CONSTANTS[s.name] for s in value.free_symbols
                 if s.name not in names and CONSTANT_PLACEHOLDERS.get(s.name) == s})
    expr = value.xreplace(repl) if repl else value
    unknown = sorted(s.name for s in expr.free_symbols if s.name not in var_names)
    if unknown:
        raise ExpressionError(
            f"Unknown name(s) {', '.join(map(repr, unknown))} in {where}; allowed names are "
            f"{', '.join(sorted(names))}; declare them as variables or [parameters].")
    if expr.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo):
        raise ExpressionError(f"{where} is undefined or infinite ({expr}).")
    return expr


def _items(value: Any, what: str, src: str) -> list[tuple[str, Any]]:
    """(label, entry) pairs of a list or a table of expressions."""
    if isinstance(value, Mapping):
        return [(str(k.name if isinstance(k, sympy.Symbol) else k), v)
                for k, v in value.items()]
    if isinstance(value, (str, sympy.Basic)):
        return [("0", value)]
    if isinstance(value, Iterable):
        return [(str(i), v) for i, v in enumerate(value)]
    raise SystemFileTypeError(f"'{what}'{src} must be a list or a table of expressions; got "
                              f"{type(value).__name__}.")


# ----------------------------------------------------------------------------------------
# System
# ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class System:
    """dx/dt = f(x), optionally restricted to states where the constraints vanish.

    Can be built directly: variables as names or symbols (or one string ``"x y z"``),
    equations as a sequence in variable order or a mapping variable -> expression (strings
    are parsed safely, SymPy expressions taken as they are), constraints as a sequence or a
    mapping name -> expression, parameters as a mapping name -> number (substituted as exact
    rationals), definitions as a mapping name -> expression (in order; later ones may use
    earlier ones; substituted everywhere). :func:`load_system` reads the same from a file.

    Attributes
    ----------
    variables : tuple of sympy.Symbol
        State variables, in order.
    equations : tuple of sympy.Expr
        ``equations[i]`` is d(variables[i])/dt with parameters and definitions substituted
        (parameters become exact Rationals of their decimal value).
    name : str
    constraints : tuple of sympy.Expr
        Expressions g_k with g_k(x) = 0 on admissible states.
    parameters : mapping of str to sympy.Number
    basis : BasisSpec or None
        Default basis from the file (command-line options override it).
    sampling : SamplingSpec
    expected : mapping of str
        Informative known results: the counts ``nullity`` and ``independent`` (int) and the
        known ``invariants`` (tuple of sympy.Expr, in the variables).
    source : str or None
        The file the system came from.
    definitions : mapping of str to sympy.Expr
        The helper expressions, each in the variables.

    Examples
    --------
    >>> s = System(["x", "y"], {"x": "k*y", "y": "-k*x"}, parameters={"k": 0.5})
    >>> s.equations
    (y/2, -x/2)
    >>> s.n_vars
    2
    """

    variables: tuple[sympy.Symbol, ...]
    equations: tuple[sympy.Expr, ...]
    name: str = "system"
    constraints: tuple[sympy.Expr, ...] = ()
    parameters: Mapping[str, sympy.Expr] = field(default_factory=dict)
    basis: BasisSpec | None = None
    sampling: SamplingSpec = field(default_factory=SamplingSpec)
    expected: Mapping[str, Any] = field(default_factory=dict)
    source: str | None = None
    definitions: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        src = f" ({self.source})" if self.source else ""
        check_type(self.name, "name", str, "a string", where=src.strip(),
                   errors=SYSTEM_ERRORS)
        symbols = self._variables(src)
        var_names = [s.name for s in symbols]
        names: dict[str, sympy.Expr] = {s.name: s for s in symbols}
        params = self._parameters(set(names), src)
        names.update(params)
        # what may stay free in an expression: the variables and the symbolic parameters
        free = var_names + [p for p, v in params.items() if isinstance(v, sympy.Symbol)]
        defs = self._definitions(names, var_names, src, free)
        names.update(defs)
        equations = self._equations(var_names, names, src, free)
        constraints = []
        for key, value in _items(self.constraints, "constraints", src):
            c = _expr(value, f"[constraints] {key}{src}", names, free)
            if c.is_number:
                raise SystemFileError(
                    f"[constraints] {key}{src} is the constant {c}, not an expression in the "
                    "variables; remove it or write an expression that vanishes on admissible "
                    "states.")
            constraints.append(c)
        basis = None if self.basis is None else self._resolve(self.basis, names, var_names, src)
        sampling = self.sampling if self.sampling is not None else SamplingSpec()
        if isinstance(sampling, Mapping):
            sampling = from_table(SamplingSpec, sampling, _SAMPLING_KEYS, "[sampling]", src)
        check_type(sampling, "sampling", SamplingSpec, "a SamplingSpec or a table",
                   where=src.strip(), errors=SYSTEM_ERRORS)
        for key, value in (("variables", tuple(symbols)), ("parameters", params),
                           ("definitions", defs), ("equations", equations),
                           ("constraints", tuple(constraints)), ("basis", basis),
                           ("sampling", sampling),
                           ("expected", self._expected(names, free, src))):
            object.__setattr__(self, key, value)

    # -- the parts, in the order they may refer to each other -----------------------------
    def _variables(self, src: str) -> list[sympy.Symbol]:
        raw = _split_names(self.variables, src)
        if not raw:
            raise SystemFileError(f"'variables'{src} must list at least one state variable, "
                                  "e.g. variables = [\"x\", \"y\"].")
        symbols: list[sympy.Symbol] = []
        for v in raw:
            vname = _check_name(v, f"The variable{src}")
            if any(s.name == vname for s in symbols):
                raise SystemFileError(f"The variable {vname!r}{src} is declared twice in "
                                      "'variables'; list each variable once.")
            symbols.append(v if isinstance(v, sympy.Symbol) else sympy.Symbol(vname))
        return symbols

    def _parameters(self, taken: set[str], src: str) -> dict[str, sympy.Rational]:
        if not isinstance(self.parameters, Mapping):
            raise SystemFileTypeError(f"[parameters]{src} must be a table name -> number; got "
                                      f"{type(self.parameters).__name__}.")
        params: dict[str, sympy.Rational | sympy.Symbol] = {}
        for key, value in self.parameters.items():
            pname = _check_name(key, f"The parameter{src}")
            if pname in taken:
                raise SystemFileError(f"The parameter {pname!r}{src} has the name of a "
                                      "variable; rename one of them.")
            params[pname] = _parameter_value(pname, value, f"The parameter{src}")
        return params

    def _definitions(self, names: Mapping[str, sympy.Expr], var_names: Sequence[str],
                     src: str, free: Sequence[str]) -> dict[str, sympy.Expr]:
        if not isinstance(self.definitions, Mapping):
            raise SystemFileTypeError(f"[definitions]{src} must be a table name -> expression; "
                                      f"got {type(self.definitions).__name__}.")
        known = dict(names)
        defs: dict[str, sympy.Expr] = {}
        for key, text in self.definitions.items():
            dname = _check_name(key, f"The definition{src}")
            if dname in known:
                kind = ("variable" if dname in var_names
                        else "parameter or earlier definition")
                raise SystemFileError(f"The definition {dname!r}{src} has the name of a "
                                      f"{kind}; rename it.")
            defs[dname] = known[dname] = _expr(text, f"[definitions] {dname}{src}", known,
                                               free)
        return defs

    def _equations(self, var_names: list[str], names: Mapping[str, sympy.Expr],
                   src: str, free: Sequence[str]) -> tuple[sympy.Expr, ...]:
        eqs = self.equations
        if isinstance(eqs, Mapping):
            by_name: dict[str, Any] = {}
            for key, value in eqs.items():
                kname = key.name if isinstance(key, sympy.Symbol) else key
                if not isinstance(kname, str):
                    raise SystemFileTypeError(f"[equations]{src} keys must be variable names; "
                                              f"got {type(key).__name__} {key!r}.")
                if kname not in var_names:
                    raise SystemFileError(
                        f"[equations]{src} has an equation for {kname!r}, which is not a "
                        f"declared variable ({', '.join(var_names)}); add it to 'variables' "
                        "or remove the equation.")
                by_name[kname] = value
            missing = [v for v in var_names if v not in by_name]
            if missing:
                raise SystemFileError(
                    f"The variable(s) {', '.join(map(repr, missing))}{src} have no equation; "
                    f"add e.g. {missing[0]} = \"...\" under [equations].")
            eq_list = [by_name[v] for v in var_names]
        else:
            if isinstance(eqs, (str, sympy.Basic)) or not isinstance(eqs, Iterable):
                raise SystemFileTypeError(
                    f"'equations'{src} must be a list (in variable order) or a mapping "
                    f"variable -> expression; got {type(eqs).__name__}.")
            eq_list = list(eqs)
            if len(eq_list) != len(var_names):
                raise SystemFileError(
                    f"'equations'{src} must have one entry per variable "
                    f"({len(var_names)}: {', '.join(var_names)}); got {len(eq_list)}.")
        return tuple(_expr(e, f"[equations] {v}{src}", names, free)
                     for v, e in zip(var_names, eq_list, strict=True))

    @staticmethod
    def _resolve(basis: Any, names: Mapping[str, sympy.Expr], var_names: Sequence[str],
                 src: str) -> BasisSpec:
        if isinstance(basis, Mapping):
            basis = from_table(BasisSpec, basis, _BASIS_KEYS, "[basis]", src)
        check_type(basis, "basis", BasisSpec, "a BasisSpec or a table", where=src.strip(),
                   errors=SYSTEM_ERRORS)
        exprs = []
        for i, e in enumerate(basis.expressions):
            where = f"[basis] expressions[{i}]{src}"
            expr = _expr(e, where, names, list(var_names) + [
                n for n, v in names.items() if isinstance(v, sympy.Symbol) and n not in var_names])
            used = sorted(s.name for s in expr.free_symbols if s.name not in var_names)
            if used:
                raise ExpressionError(
                    f"{where} uses the symbolic parameter(s) {', '.join(map(repr, used))}; "
                    "basis functions are functions of the variables only (the parameters "
                    "enter through the invariants' coefficients); remove them from the basis.")
            exprs.append(expr)
        return BasisSpec(basis.kind, basis.degree, tuple(exprs))

    def _expected(self, names: Mapping[str, sympy.Expr], free: Sequence[str],
                  src: str) -> dict[str, Any]:
        if not isinstance(self.expected, Mapping):
            raise SystemFileTypeError(f"[expected]{src} must be a table; got "
                                      f"{type(self.expected).__name__}.")
        out: dict[str, Any] = {}
        for key, value in self.expected.items():
            if key not in _EXPECTED_KEYS:
                raise SystemFileError(f"Unknown key {key!r} in [expected]{src}; the allowed "
                                      f"keys are {', '.join(_EXPECTED_KEYS)}.")
            if key == "invariants":
                items = _items(value, "invariants", src)
                out[key] = tuple(_expr(v, f"[expected] invariants[{i}]{src}", names, free)
                                 for i, v in items)
            else:
                out[key] = check_int(value, key, ge=0, where=f"of [expected]{src}",
                                     errors=SYSTEM_ERRORS)
        return out

    # ------------------------------------------------------------------------------------
    @classmethod
    def from_strings(cls, variables: str | Sequence[str], equations: Sequence[str] |
                     Mapping[str, str], *, parameters: Mapping[str, Any] | None = None,
                     definitions: Mapping[str, str] | None = None,
                     constraints: Sequence[str] | Mapping[str, str] = (),
                     name: str = "system", basis: BasisSpec | Mapping[str, Any] | None = None,
                     sampling: SamplingSpec | Mapping[str, Any] | None = None,
                     expected: Mapping[str, Any] | None = None,
                     source: str | None = None) -> System:
        """The constructor with keyword-only options (the same checks as :class:`System`).

        Examples
        --------
        >>> s = System.from_strings("x y", {"x": "lam*y", "y": "-lam*x"},
        ...                         definitions={"lam": "1 + x**2"})
        >>> s.equations[0]
        y*(x**2 + 1)
        """
        return cls(variables, equations, name=name, constraints=constraints,
                   parameters=parameters or {}, basis=basis, sampling=sampling,
                   expected=expected or {}, source=source, definitions=definitions or {})

    def resolve_basis(self, basis: BasisSpec | Mapping[str, Any]) -> BasisSpec:
        """Check a basis given apart from the system against its names.

        Expression strings of a :class:`BasisSpec` are parsed before the variables are
        known; this substitutes the system's parameters and definitions and raises
        :class:`~aipoincare.errors.ExpressionError` for any other unknown name (as for a
        basis in the system file).

        Examples
        --------
        >>> s = System("x y", ["k*y", "-k*x"], parameters={"k": 2})
        >>> s.resolve_basis(BasisSpec("expressions", expressions=["k*x", "y**2"])).expressions
        (2*x, y**2)
        """
        names: dict[str, sympy.Expr] = {v.name: v for v in self.variables}
        names.update(self.parameters)
        names.update(self.definitions)
        src = f" ({self.source})" if self.source else ""
        return self._resolve(basis, names, self.variable_names, src)

    @property
    def n_vars(self) -> int:
        """Number of state variables."""
        return len(self.variables)

    @property
    def variable_names(self) -> list[str]:
        """The variable names, in order."""
        return [v.name for v in self.variables]

    @property
    def symbolic(self) -> tuple[sympy.Symbol, ...]:
        """The symbolic parameters (declared ``"symbolic"``), in declaration order."""
        return tuple(v for v in self.parameters.values() if isinstance(v, sympy.Symbol))

    @property
    def shadowed(self) -> list[str]:
        """Names of this system that are also built-in constants (``E``, ``pi``): here they
        mean the user's variable, parameter or definition."""
        mine = [*self.variable_names, *self.parameters, *self.definitions]
        return [n for n in mine if n in CONSTANTS]

    def specialise(self, values: Mapping[str, Any]) -> System:
        """The same system with some symbolic parameters given numbers.

        Parameters
        ----------
        values : mapping of str to number
            Symbolic parameter name -> value (exact: ``0.5`` is ``1/2``).

        Examples
        --------
        >>> s = System("x y", ["k*y", "-k*x"], parameters={"k": "symbolic"})
        >>> s.specialise({"k": 2}).equations, s.specialise({"k": 2}).symbolic
        ((2*y, -2*x), ())
        """
        symbolic = {s.name for s in self.symbolic}
        for key in values:
            if key not in symbolic:
                have = ", ".join(sorted(symbolic)) or "none"
                raise ValueError(f"specialise() got {key!r}, which is not a symbolic parameter "
                                 f"of {self.name!r} (symbolic: {have}); give values of symbolic "
                                 "parameters only.")
        params = {k: (values[k] if k in values else v) for k, v in self.parameters.items()}
        repl = {sympy.Symbol(k): _parameter_value(k, values[k], "The value of the parameter")
                for k in values}

        def sub(e: sympy.Expr) -> sympy.Expr:
            return e.xreplace(repl) if repl else e

        expected = dict(self.expected)
        if "invariants" in expected:
            expected["invariants"] = tuple(sub(e) for e in expected["invariants"])
        return System(self.variables, tuple(sub(e) for e in self.equations), name=self.name,
                      constraints=tuple(sub(e) for e in self.constraints), parameters=params,
                      basis=self.basis, sampling=self.sampling, expected=expected,
                      source=self.source,
                      definitions={k: sub(v) for k, v in self.definitions.items()})

    def extended(self) -> System:
        """The system in the variables and the symbolic parameters, each parameter a
        variable with zero derivative (``dk/dt = 0``); ``self`` when none is symbolic.

        An invariant of this system is conserved for every value of the parameters, so its
        certificates are identities in the variables and the parameters.

        Examples
        --------
        >>> s = System("x y", ["k*y", "-k*x"], parameters={"k": "symbolic"})
        >>> s.extended().variables, s.extended().equations
        ((x, y, k), (k*y, -k*x, 0))
        """
        params = self.symbolic
        if not params:
            return self
        zeros = [sympy.Integer(0)] * len(params)
        return System((*self.variables, *params), (*self.equations, *zeros),
                      name=self.name, constraints=self.constraints, sampling=self.sampling,
                      source=self.source)

    @property
    def is_rational(self) -> bool:
        """True when every equation and constraint is a rational function of the variables."""
        return all(e.is_rational_function(*self.variables)
                   for e in (*self.equations, *self.constraints))

    def __repr__(self) -> str:
        eqs = ", ".join(f"d{v}/dt = {_short(e)}"
                        for v, e in zip(self.variables, self.equations, strict=True))
        extra = f", {len(self.constraints)} constraint(s)" if self.constraints else ""
        return f"System({self.name!r}: {eqs}{extra})"


def _short(expr: sympy.Expr, width: int = 40) -> str:
    text = str(expr)
    return text if len(text) <= width else text[:width - 3] + "..."
