"""Systems of ODEs: the ``System`` object, and parsing of system files (TOML) and strings.

Expressions are parsed by :func:`parse_expression`, a whitelist parser: the text is turned
into a Python syntax tree with :func:`ast.parse` (which only parses, never runs anything),
every node is checked against a short list of allowed kinds (numbers, names, ``+ - * / **``,
unary signs, calls of a few math functions), and the SymPy expression is built from the
tree by this module. ``sympy.sympify``/``parse_expr`` are never called on user text, since
they evaluate it as Python.

The file format is described in CONTRACT.md; :func:`load_system` reads it and
:class:`System` can also be built directly from SymPy objects or strings.
"""

from __future__ import annotations

import ast
import difflib
import keyword
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import sympy
import tomllib

__all__ = [
    "BASIS_KINDS",
    "DISTRIBUTIONS",
    "FUNCTIONS",
    "CONSTANTS",
    "MAX_DEGREE",
    "BasisSpec",
    "ExpressionError",
    "SamplingSpec",
    "System",
    "SystemFileError",
    "SystemFileTypeError",
    "load_system",
    "parse_expression",
]


class SystemFileError(ValueError):
    """A system (file or Python input) with a wrong value: the message says where and the fix."""


class SystemFileTypeError(SystemFileError, TypeError):
    """A system entry of the wrong kind (e.g. a number where a list of names is expected)."""


class ExpressionError(SystemFileError):
    """An expression that cannot be parsed or uses a name that is not allowed."""


#: Math functions allowed in expressions, with their number of arguments.
FUNCTIONS: dict[str, tuple[Callable[..., sympy.Expr], int]] = {
    "sqrt": (sympy.sqrt, 1),
    "exp": (sympy.exp, 1),
    "log": (sympy.log, 1),
    "sin": (sympy.sin, 1),
    "cos": (sympy.cos, 1),
    "tan": (sympy.tan, 1),
    "sinh": (sympy.sinh, 1),
    "cosh": (sympy.cosh, 1),
    "tanh": (sympy.tanh, 1),
    "atan": (sympy.atan, 1),
    "Abs": (sympy.Abs, 1),
}
#: Named constants allowed in expressions.
CONSTANTS: dict[str, sympy.Expr] = {"pi": sympy.pi, "E": sympy.E}
#: Registry of basis kinds (the maths side builds them; here they are validated).
BASIS_KINDS: dict[str, str] = {
    "polynomial": "all monomials of total degree 1..degree (no constant)",
    "expressions": "the explicit list `expressions`",
    "product": "every monomial of degree 0..degree times every expression",
}
#: Registry of sampling distributions.
DISTRIBUTIONS: dict[str, str] = {
    "normal": "mean 0, standard deviation `scale`",
    "uniform": "uniform in [low, high]",
}
#: Largest polynomial degree accepted (degree 8 in 24 variables is already ~10^7 functions).
MAX_DEGREE = 8
_RESERVED = set(FUNCTIONS) | set(CONSTANTS)
_TOP_KEYS = ("name", "variables", "parameters", "definitions", "equations", "constraints",
             "basis", "sampling", "expected")
_BASIS_KEYS = ("kind", "degree", "expressions")
_SAMPLING_KEYS = ("distribution", "scale", "low", "high", "points", "data")
# An exponent this large on a number would make SymPy compute a gigantic integer.
_MAX_NUMERIC_EXPONENT = 1000


# ----------------------------------------------------------------------------------------
# Safe expression parser
# ----------------------------------------------------------------------------------------

def _where_text(where: str, text: str) -> str:
    shown = text if len(text) <= 60 else text[:57] + "..."
    return f"{where} = {shown!r}"


def _describe(node: ast.AST) -> str:
    return {
        ast.Attribute: "Attribute access ('.')",
        ast.Subscript: "A subscript ('[...]')",
        ast.Lambda: "A lambda",
        ast.ListComp: "A comprehension",
        ast.SetComp: "A comprehension",
        ast.DictComp: "A comprehension",
        ast.GeneratorExp: "A comprehension",
        ast.Compare: "A comparison",
        ast.BoolOp: "'and'/'or'",
        ast.IfExp: "'if'/'else'",
        ast.List: "A list",
        ast.Tuple: "A tuple (comma)",
        ast.Dict: "A dict",
        ast.Set: "A set",
        ast.JoinedStr: "A string",
        ast.NamedExpr: "':='",
        ast.Starred: "'*' unpacking",
        ast.Await: "'await'",
        ast.Call: "A call of a call",
    }.get(type(node), f"The construct {type(node).__name__}")


class _Builder:
    """Walks a checked syntax tree and builds the SymPy expression (nothing is executed)."""

    def __init__(self, text: str, where: str, names: Mapping[str, sympy.Expr],
                 free_names: bool, allowed_hint: str) -> None:
        self.text = text
        self.where = where
        self.names = names
        self.free_names = free_names
        self.allowed_hint = allowed_hint

    def fail(self, node: ast.AST | None, what: str, fix: str) -> ExpressionError:
        col = getattr(node, "col_offset", None)
        at = f" at column {col + 1}" if col is not None else ""
        return ExpressionError(f"{what} in {_where_text(self.where, self.text)}{at}; {fix}")

    def build(self, node: ast.AST) -> sympy.Expr:
        if isinstance(node, ast.Constant):
            value = node.value
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                kind = "strings" if isinstance(value, (str, bytes)) else repr(value)
                raise self.fail(node, "A string is not allowed" if kind == "strings"
                                else f"The constant {kind} is not allowed",
                                "write numbers, names and + - * / ** only.")
            if isinstance(value, float):
                if not math.isfinite(value):
                    raise self.fail(node, "A non-finite number", "write a finite number.")
                return sympy.Rational(repr(value))  # exact value of the decimal text
            return sympy.Integer(value)
        if isinstance(node, ast.Name):
            return self.name(node)
        if isinstance(node, ast.UnaryOp):
            operand = self.build(node.operand)
            if isinstance(node.op, ast.USub):
                return -operand
            if isinstance(node.op, ast.UAdd):
                return operand
            raise self.fail(node, f"The operator {type(node.op).__name__} is not allowed",
                            "use + - * / ** only.")
        if isinstance(node, ast.BinOp):
            return self.binop(node)
        if isinstance(node, ast.Call):
            return self.call(node)
        raise self.fail(node, f"{_describe(node)} is not allowed",
                        "expressions may contain only numbers, names, + - * / **, "
                        "parentheses and calls such as sqrt(x).")

    def name(self, node: ast.Name) -> sympy.Expr:
        ident = node.id
        if ident in self.names:
            return self.names[ident]
        if ident in CONSTANTS:
            return CONSTANTS[ident]
        if ident in FUNCTIONS:
            raise self.fail(node, f"The function {ident!r} is used without arguments",
                            f"call it, e.g. {ident}(x).")
        if self.free_names and not ident.startswith("_"):
            return sympy.Symbol(ident)
        raise self.fail(node, f"Unknown name {ident!r}", self.allowed_hint)

    def operator_column(self, node: ast.BinOp) -> ast.AST:
        """A stand-in node whose column is the operator's, for error messages."""
        start = getattr(node.left, "end_col_offset", None)
        stop = getattr(node.right, "col_offset", None)
        marker = ast.Pass()
        marker.col_offset = node.col_offset
        if start is not None and stop is not None and node.lineno == node.end_lineno:
            gap = self.text[start:stop]
            offset = len(gap) - len(gap.lstrip(" ()"))
            marker.col_offset = start + offset
        return marker

    def binop(self, node: ast.BinOp) -> sympy.Expr:
        op = node.op
        if isinstance(op, ast.BitXor):
            raise self.fail(self.operator_column(node), "'^' is not a power",
                            "use ** for powers (x**2), as in Python and SymPy.")
        if isinstance(op, (ast.Add, ast.Sub)):
            # flatten long sums once instead of re-flattening at every '+'
            terms: list[sympy.Expr] = []
            cur: ast.AST = node
            signs: list[tuple[int, ast.AST]] = []
            while isinstance(cur, ast.BinOp) and isinstance(cur.op, (ast.Add, ast.Sub)):
                signs.append((-1 if isinstance(cur.op, ast.Sub) else 1, cur.right))
                cur = cur.left
            terms.append(self.build(cur))
            for sign, right in reversed(signs):
                value = self.build(right)
                terms.append(-value if sign < 0 else value)
            return sympy.Add(*terms)
        left = self.build(node.left)
        right = self.build(node.right)
        if isinstance(op, ast.Mult):
            return left * right
        if isinstance(op, ast.Div):
            return left / right
        if isinstance(op, ast.Pow):
            if (right.is_Number and left.is_Number
                    and abs(right) > _MAX_NUMERIC_EXPONENT):
                raise self.fail(node, f"The numeric power {left}**{right} is too large",
                                f"use exponents up to {_MAX_NUMERIC_EXPONENT} on numbers.")
            return left ** right
        symbol = {ast.FloorDiv: "//", ast.Mod: "%", ast.MatMult: "@", ast.BitAnd: "&",
                  ast.BitOr: "|", ast.LShift: "<<", ast.RShift: ">>"}.get(type(op), "?")
        raise self.fail(self.operator_column(node), f"The operator {symbol!r} is not allowed",
                        "use + - * / ** only.")

    def call(self, node: ast.Call) -> sympy.Expr:
        func = node.func
        if not isinstance(func, ast.Name):
            raise self.fail(func, f"{_describe(func)} is not allowed",
                            "call only the functions " + ", ".join(FUNCTIONS) + ".")
        if func.id not in FUNCTIONS:
            raise self.fail(func, f"Unknown function {func.id!r}",
                            "the allowed functions are " + ", ".join(FUNCTIONS) + ".")
        if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
            raise self.fail(node, f"Keyword or '*' arguments to {func.id}() are not allowed",
                            f"write {func.id}(expression).")
        fn, arity = FUNCTIONS[func.id]
        if len(node.args) != arity:
            raise self.fail(node, f"{func.id}() takes {arity} argument(s), got {len(node.args)}",
                            f"write {func.id}(expression).")
        return fn(*(self.build(a) for a in node.args))


def parse_expression(text: str | int | float, names: Mapping[str, sympy.Expr] | None = None, *,
                     where: str = "expression", free_names: bool = False) -> sympy.Expr:
    """Parse ``text`` into a SymPy expression without executing it.

    Parameters
    ----------
    text : str or number
        SymPy syntax (``**`` for powers). Numbers become exact (``0.1`` is ``1/10``).
    names : mapping of str to sympy.Expr, optional
        The names an expression may use (variables, parameter values, definitions) and what
        each stands for. The functions in :data:`FUNCTIONS` and constants ``pi``, ``E`` are
        always allowed.
    where : str
        Where the text came from, for error messages (e.g. ``"[equations] x of lv.toml"``).
    free_names : bool
        If True, unknown names become plain symbols instead of errors (used for basis
        expressions before the variables are known; :class:`System` checks them later).

    Returns
    -------
    sympy.Expr

    Raises
    ------
    ExpressionError
        Syntax errors (with the column), unknown names (with the allowed ones), and any
        construct other than numbers, names, ``+ - * / **``, unary signs and calls of
        whitelisted functions: attribute access, subscripts, keywords, strings, lambdas,
        comprehensions are rejected before anything runs.

    Examples
    --------
    >>> x, y = sympy.symbols("x y")
    >>> parse_expression("x*(y - 0.5)**2 + sqrt(x)", {"x": x, "y": y})
    sqrt(x) + x*(y - 1/2)**2
    >>> parse_expression("__import__('os').system('true')", {"x": x})
    Traceback (most recent call last):
    ...
    aipoincare.system.ExpressionError: Attribute access ('.') is not allowed in ...
    """
    names = dict(names or {})
    allowed = sorted(names)
    hint = ("allowed names are " + (", ".join(allowed) if allowed else "(none)")
            + " and the functions " + ", ".join(FUNCTIONS) + " and constants pi, E"
            + "; declare new names under variables, [parameters] or [definitions].")
    if isinstance(text, bool) or not isinstance(text, (str, int, float, Fraction)):
        if isinstance(text, sympy.Basic):
            raise SystemFileTypeError(f"{where} must be a string here; got a SymPy object "
                                      f"{text!r}; pass it to System(...) instead.")
        raise SystemFileTypeError(f"{where} must be an expression string; got "
                                  f"{type(text).__name__} {text!r}.")
    if isinstance(text, (int, Fraction)):
        return sympy.Rational(text)
    if isinstance(text, float):
        if not math.isfinite(text):
            raise ExpressionError(f"{where} must be finite; got {text!r}.")
        return sympy.Rational(repr(text))
    stripped = text.strip()
    if not stripped:
        raise ExpressionError(f"{where} is an empty expression; write e.g. \"x*(y - z)\".")
    if "\n" in stripped or "\r" in stripped:
        stripped = " ".join(stripped.split())  # TOML multi-line strings: one expression
    try:
        tree = ast.parse(stripped, mode="eval")
    except SyntaxError as exc:
        col = exc.offset if exc.offset is not None else 0
        near = stripped[max(col - 1, 0):max(col - 1, 0) + 10]
        near_text = f" near {near!r}" if near else " at the end"
        raise ExpressionError(
            f"Syntax error in {_where_text(where, stripped)} at column {col}{near_text}: "
            f"{exc.msg}; check brackets and operators (** for powers).") from None
    except (RecursionError, MemoryError, ValueError) as exc:
        raise ExpressionError(f"{where} cannot be parsed ({type(exc).__name__}); "
                              "the expression is nested too deeply, simplify it.") from None
    builder = _Builder(stripped, where, names, free_names, hint)
    try:
        expr = builder.build(tree.body)
    except RecursionError:
        raise ExpressionError(f"{where} is nested too deeply to build; simplify it.") from None
    if expr.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo):
        raise ExpressionError(f"{_where_text(where, stripped)} is undefined or infinite "
                              f"(it simplifies to {expr}); check for a division by zero.")
    return expr


# ----------------------------------------------------------------------------------------
# Specs
# ----------------------------------------------------------------------------------------

def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class BasisSpec:
    """Which basis functions to search over.

    kind : "polynomial" (all monomials of total degree 1..degree, no constant),
           "expressions" (the explicit ``expressions``), or "product" (every monomial of
           degree 0..degree times every expression).

    ``expressions`` may be given as strings; they are parsed safely (names are resolved
    against the variables, parameters and definitions by :class:`System`).

    Examples
    --------
    >>> BasisSpec("expressions", expressions=["x", "log(x)"]).expressions
    (x, log(x))
    """

    kind: str = "polynomial"
    degree: int | None = None                     # None: the caller's default (3)
    expressions: tuple[sympy.Expr, ...] = ()      # for "expressions" and "product"

    def __post_init__(self) -> None:
        if not isinstance(self.kind, str) or self.kind not in BASIS_KINDS:
            raise SystemFileError(
                f"The 'kind' of [basis] must be one of {', '.join(map(repr, BASIS_KINDS))}; "
                f"got {self.kind!r}.")
        if self.degree is not None:
            if isinstance(self.degree, float) and self.degree.is_integer():
                object.__setattr__(self, "degree", int(self.degree))
            if not _is_int(self.degree) or not 1 <= self.degree <= MAX_DEGREE:
                raise SystemFileError(
                    f"The 'degree' of [basis] must be an integer from 1 to {MAX_DEGREE}; "
                    f"got {self.degree!r}.")
        exprs = self.expressions
        if isinstance(exprs, (str, sympy.Basic)):
            exprs = (exprs,)
        if not isinstance(exprs, Iterable):
            raise SystemFileTypeError(
                f"The 'expressions' of [basis] must be a list of expression strings; "
                f"got {type(exprs).__name__} {exprs!r}.")
        parsed = []
        for i, e in enumerate(exprs):
            if isinstance(e, sympy.Basic):
                parsed.append(e)
            else:
                parsed.append(parse_expression(e, {}, where=f"[basis] expressions[{i}]",
                                               free_names=True))
        object.__setattr__(self, "expressions", tuple(parsed))
        if self.kind in ("expressions", "product") and not self.expressions:
            raise SystemFileError(
                f"[basis] kind = {self.kind!r} needs a non-empty 'expressions' list, e.g. "
                "expressions = [\"x\", \"log(x)\"]; got none.")


@dataclass(frozen=True)
class SamplingSpec:
    """How random states are drawn (or where they are read from).

    Examples
    --------
    >>> SamplingSpec("uniform", low=-1, high=2).high
    2.0
    """

    distribution: str = "normal"   # "normal" (mean 0, std scale) or "uniform" [low, high]
    scale: float = 1.0             # std of the normal distribution: the paper's choice
    low: float = 0.0               # uniform lower bound
    high: float = 1.0              # uniform upper bound
    points: int | None = None      # None: chosen from the basis size (>= 1.2x)
    data: str | None = None        # CSV/NPY file of states, one row per state

    def __post_init__(self) -> None:
        if not isinstance(self.distribution, str) or self.distribution not in DISTRIBUTIONS:
            raise SystemFileError(
                "The 'distribution' of [sampling] must be one of "
                f"{', '.join(map(repr, DISTRIBUTIONS))}; got {self.distribution!r}.")
        for key in ("scale", "low", "high"):
            value = getattr(self, key)
            if not _is_number(value) or not math.isfinite(value):
                raise SystemFileError(
                    f"The '{key}' of [sampling] must be a finite number; got {value!r}.")
            object.__setattr__(self, key, float(value))
        if self.scale <= 0:
            raise SystemFileError(
                f"The 'scale' of [sampling] must be positive; got {self.scale!r}.")
        if not self.low < self.high:
            raise SystemFileError(
                f"[sampling] needs low < high; got low = {self.low!r}, high = {self.high!r}.")
        if self.points is not None and (not _is_int(self.points) or self.points < 1):
            raise SystemFileError(
                f"The 'points' of [sampling] must be a positive integer; got {self.points!r}.")
        if self.data is not None:
            if isinstance(self.data, os.PathLike):
                object.__setattr__(self, "data", os.fspath(self.data))
            if not isinstance(self.data, str) or not self.data.strip():
                raise SystemFileError(
                    "The 'data' of [sampling] must be a file name (CSV or .npy); "
                    f"got {self.data!r}.")


# ----------------------------------------------------------------------------------------
# System
# ----------------------------------------------------------------------------------------

_IDENT = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
# a plain number written as text (parameters): 3, -0.5, 1e-3, 2/3
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?(/\d+)?$")


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
    if name in _RESERVED:
        raise SystemFileError(
            f"{what} {name!r} clashes with the built-in function or constant {name!r}; "
            "rename it.")
    return name


def _parameter_value(name: str, value: Any, where: str) -> sympy.Rational:
    if isinstance(value, sympy.Basic):
        if value.is_Rational:
            return sympy.Rational(value)
        if value.is_Number and value.is_finite:
            return sympy.Rational(repr(float(value)))
        raise SystemFileError(f"{where} {name!r} must be a number; got {value!r}.")
    if isinstance(value, Fraction) or _is_int(value):
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
        f"{where} {name!r} must be a number (e.g. {name} = 0.5); got "
        f"{type(value).__name__} {value!r}; write it without quotes, or move an "
        "expression to [definitions].")


def _split_names(value: Any) -> list[Any]:
    if isinstance(value, str):
        return [v for v in re.split(r"[\s,]+", value.strip()) if v]
    if isinstance(value, sympy.Symbol):
        return [value]
    if isinstance(value, Iterable) and not isinstance(value, Mapping):
        return list(value)
    raise SystemFileTypeError(
        f"'variables' must be a list of names such as [\"x\", \"y\"]; got "
        f"{type(value).__name__} {value!r}.")


@dataclass(frozen=True)
class System:
    """dx/dt = f(x), optionally restricted to states where the constraints vanish.

    Can be built directly: variables as names or symbols (or one string ``"x y z"``),
    equations as a sequence in variable order or a mapping variable -> expression (strings
    are parsed safely, SymPy expressions taken as they are), constraints as a sequence or a
    mapping name -> expression, parameters as a mapping name -> number (substituted as exact
    rationals). Use :meth:`from_strings` for definitions, or :func:`load_system` for files.

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
    expected : mapping of str to int
        Informative known counts (``nullity``, ``independent``).
    source : str or None
        The file the system came from.

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
    expected: Mapping[str, int] = field(default_factory=dict)
    source: str | None = None

    def __post_init__(self) -> None:
        src = f" ({self.source})" if self.source else ""
        if not isinstance(self.name, str):
            raise SystemFileTypeError(f"'name'{src} must be a string; got "
                                      f"{type(self.name).__name__} {self.name!r}.")
        # variables ------------------------------------------------------------------
        raw_vars = _split_names(self.variables)
        if not raw_vars:
            raise SystemFileError(f"'variables'{src} must list at least one state variable, "
                                  "e.g. variables = [\"x\", \"y\"].")
        symbols: list[sympy.Symbol] = []
        seen: set[str] = set()
        for v in raw_vars:
            vname = _check_name(v, f"The variable{src}")
            if vname in seen:
                raise SystemFileError(f"The variable {vname!r}{src} is declared twice in "
                                      "'variables'; list each variable once.")
            seen.add(vname)
            symbols.append(v if isinstance(v, sympy.Symbol) else sympy.Symbol(vname))
        var_names = [s.name for s in symbols]
        object.__setattr__(self, "variables", tuple(symbols))
        # parameters -----------------------------------------------------------------
        if not isinstance(self.parameters, Mapping):
            raise SystemFileTypeError(f"[parameters]{src} must be a table name -> number; got "
                                      f"{type(self.parameters).__name__}.")
        params: dict[str, sympy.Rational] = {}
        for key, value in self.parameters.items():
            pname = _check_name(key, f"The parameter{src}")
            if pname in seen:
                raise SystemFileError(f"The parameter {pname!r}{src} has the name of a "
                                      "variable; rename one of them.")
            params[pname] = _parameter_value(pname, value, f"The parameter{src}")
        object.__setattr__(self, "parameters", params)
        names: dict[str, sympy.Expr] = {s.name: s for s in symbols}
        names.update(params)
        # equations ------------------------------------------------------------------
        eqs = self.equations
        if isinstance(eqs, Mapping):
            by_name: dict[str, Any] = {}
            for key, value in eqs.items():
                kname = key.name if isinstance(key, sympy.Symbol) else key
                if not isinstance(kname, str):
                    raise SystemFileTypeError(f"[equations]{src} keys must be variable names; "
                                              f"got {type(key).__name__} {key!r}.")
                if kname not in seen:
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
        out = [self._expr(e, f"[equations] {v}{src}", names, var_names)
               for v, e in zip(var_names, eq_list, strict=True)]
        object.__setattr__(self, "equations", tuple(out))
        # constraints ----------------------------------------------------------------
        cons = self.constraints
        if isinstance(cons, Mapping):
            items = [(str(k), v) for k, v in cons.items()]
        elif isinstance(cons, (str, sympy.Basic)):
            items = [("0", cons)]
        elif isinstance(cons, Iterable):
            items = [(str(i), v) for i, v in enumerate(cons)]
        else:
            raise SystemFileTypeError(f"'constraints'{src} must be a list or a table of "
                                      f"expressions; got {type(cons).__name__}.")
        cexprs = []
        for key, value in items:
            c = self._expr(value, f"[constraints] {key}{src}", names, var_names)
            if c.is_number:
                raise SystemFileError(
                    f"[constraints] {key}{src} is the constant {c}, not an expression in the "
                    "variables; remove it or write an expression that vanishes on admissible "
                    "states.")
            cexprs.append(c)
        object.__setattr__(self, "constraints", tuple(cexprs))
        # basis, sampling, expected ----------------------------------------------------
        basis = self.basis
        if isinstance(basis, Mapping):
            basis = _basis_from_table(basis, src)
        if basis is not None:
            if not isinstance(basis, BasisSpec):
                raise SystemFileTypeError(f"'basis'{src} must be a BasisSpec, a table or None; "
                                          f"got {type(basis).__name__}.")
            if basis.expressions:
                bexprs = tuple(self._expr(e, f"[basis] expressions[{i}]{src}", names, var_names)
                               for i, e in enumerate(basis.expressions))
                basis = BasisSpec(basis.kind, basis.degree, bexprs)
        object.__setattr__(self, "basis", basis)
        sampling = self.sampling
        if sampling is None:
            sampling = SamplingSpec()
        if isinstance(sampling, Mapping):
            sampling = _sampling_from_table(sampling, src)
        if not isinstance(sampling, SamplingSpec):
            raise SystemFileTypeError(f"'sampling'{src} must be a SamplingSpec or a table; got "
                                      f"{type(sampling).__name__}.")
        object.__setattr__(self, "sampling", sampling)
        if not isinstance(self.expected, Mapping):
            raise SystemFileTypeError(f"[expected]{src} must be a table; got "
                                      f"{type(self.expected).__name__}.")
        expected: dict[str, int] = {}
        for key, value in self.expected.items():
            if key in ("nullity", "independent"):
                if not _is_int(value) or value < 0:
                    raise SystemFileError(f"The {key!r} of [expected]{src} must be a "
                                          f"non-negative integer; got {value!r}.")
            if _is_int(value):
                expected[str(key)] = int(value)
        object.__setattr__(self, "expected", expected)

    def _expr(self, value: Any, where: str, names: Mapping[str, sympy.Expr],
              var_names: Sequence[str]) -> sympy.Expr:
        """Parse a string, or check a SymPy object: only variables may remain free."""
        if isinstance(value, sympy.Basic):
            if not isinstance(value, sympy.Expr):
                raise SystemFileTypeError(f"{where} must be a SymPy expression; got "
                                          f"{type(value).__name__} {value!r}.")
            # map symbols by name, so Symbol('x', real=True) and 'x' are the same variable
            repl = {s: names[s.name] for s in value.free_symbols
                    if s.name in names and names[s.name] != s}
            expr = value.xreplace(repl) if repl else value
            unknown = sorted(s.name for s in expr.free_symbols if s.name not in var_names)
            if unknown:
                allowed = ", ".join(sorted(names))
                raise ExpressionError(
                    f"Unknown name(s) {', '.join(map(repr, unknown))} in {where}; allowed "
                    f"names are {allowed}; declare them as variables or [parameters].")
            if expr.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo):
                raise ExpressionError(f"{where} is undefined or infinite ({expr}).")
            return expr
        return parse_expression(value, names, where=where)

    # ------------------------------------------------------------------------------------
    @classmethod
    def from_strings(cls, variables: str | Sequence[str], equations: Sequence[str] |
                     Mapping[str, str], *, parameters: Mapping[str, Any] | None = None,
                     definitions: Mapping[str, str] | None = None,
                     constraints: Sequence[str] | Mapping[str, str] = (),
                     name: str = "system", basis: BasisSpec | Mapping[str, Any] | None = None,
                     sampling: SamplingSpec | Mapping[str, Any] | None = None,
                     expected: Mapping[str, int] | None = None,
                     source: str | None = None) -> System:
        """Build a system from expression strings, with helper ``definitions``.

        Definitions are parsed in order (later ones may use earlier ones, the variables and
        the parameters) and substituted into the equations, constraints and basis.

        Examples
        --------
        >>> s = System.from_strings("x y", {"x": "lam*y", "y": "-lam*x"},
        ...                         definitions={"lam": "1 + x**2"})
        >>> s.equations[0]
        y*(x**2 + 1)
        """
        src = f" ({source})" if source else ""
        var_list = _split_names(variables)
        var_names = [_check_name(v, f"The variable{src}") for v in var_list]
        for i, vname in enumerate(var_names):
            if vname in var_names[:i]:
                raise SystemFileError(f"The variable {vname!r}{src} is declared twice in "
                                      "'variables'; list each variable once.")
        symbols = {n: (v if isinstance(v, sympy.Symbol) else sympy.Symbol(n))
                   for n, v in zip(var_names, var_list, strict=True)}
        params = dict(parameters or {})
        names: dict[str, sympy.Expr] = dict(symbols)
        for key, value in params.items():
            pname = _check_name(key, f"The parameter{src}")
            if pname in symbols:
                raise SystemFileError(f"The parameter {pname!r}{src} has the name of a "
                                      "variable; rename one of them.")
            names[pname] = _parameter_value(pname, value, f"The parameter{src}")
        defs = definitions or {}
        if not isinstance(defs, Mapping):
            raise SystemFileTypeError(f"[definitions]{src} must be a table name -> expression; "
                                      f"got {type(defs).__name__}.")
        for key, text in defs.items():
            dname = _check_name(key, f"The definition{src}")
            if dname in names:
                kind = "variable" if dname in symbols else "parameter or earlier definition"
                raise SystemFileError(f"The definition {dname!r}{src} has the name of a "
                                      f"{kind}; rename it.")
            names[dname] = parse_expression(text, names, where=f"[definitions] {dname}{src}")

        def parse_one(value: Any, where: str) -> Any:
            if isinstance(value, sympy.Basic):
                return value  # System checks and substitutes it
            return parse_expression(value, names, where=where)

        def parse_all(items: Any, section: str) -> Any:
            if isinstance(items, Mapping):
                if section == "equations":
                    for key in items:
                        kname = key.name if isinstance(key, sympy.Symbol) else key
                        if kname not in symbols:
                            raise SystemFileError(
                                f"[equations]{src} has an equation for {kname!r}, which is "
                                f"not a declared variable ({', '.join(var_names)}); add it "
                                "to 'variables' or remove the equation.")
                return {k: parse_one(v, f"[{section}] {k}{src}") for k, v in items.items()}
            if isinstance(items, (str, sympy.Basic)):
                items = [items]
            if not isinstance(items, Iterable):
                return items  # System raises the type error
            items = list(items)
            labels = (var_names if section == "equations" and len(items) == len(var_names)
                      else [str(i) for i in range(len(items))])
            return [parse_one(v, f"[{section}] {lab}{src}")
                    for lab, v in zip(labels, items, strict=True)]

        eqs = parse_all(equations, "equations")
        cons = parse_all(constraints, "constraints")
        if isinstance(basis, Mapping):
            basis = _basis_from_table(basis, src, names)
        elif isinstance(basis, BasisSpec) and basis.expressions:
            subs = {sympy.Symbol(k): v for k, v in names.items() if k not in symbols}
            basis = BasisSpec(basis.kind, basis.degree,
                              tuple(e.xreplace(subs) for e in basis.expressions))
        return cls(tuple(symbols.values()), eqs, name=name, constraints=cons,
                   parameters=params, basis=basis,
                   sampling=sampling if sampling is not None else SamplingSpec(),
                   expected=dict(expected or {}), source=source)

    def resolve_basis(self, basis: BasisSpec | Mapping[str, Any]) -> BasisSpec:
        """Check a basis given apart from the system against its variables and parameters.

        Expression strings of a :class:`BasisSpec` are parsed before the variables are
        known; this substitutes the system's parameters and raises :class:`ExpressionError`
        for any other unknown name (as for a basis in the system file).

        Examples
        --------
        >>> s = System("x y", ["k*y", "-k*x"], parameters={"k": 2})
        >>> s.resolve_basis(BasisSpec("expressions", expressions=["k*x", "y**2"])).expressions
        (2*x, y**2)
        """
        src = f" ({self.source})" if self.source else ""
        if isinstance(basis, Mapping):
            basis = _basis_from_table(basis, src)
        if not isinstance(basis, BasisSpec):
            raise SystemFileTypeError(f"The basis must be a BasisSpec or a table; got "
                                      f"{type(basis).__name__}.")
        names: dict[str, sympy.Expr] = {v.name: v for v in self.variables}
        names.update(self.parameters)
        var_names = self.variable_names
        exprs = tuple(self._expr(e, f"[basis] expressions[{i}]{src}", names, var_names)
                      for i, e in enumerate(basis.expressions))
        return BasisSpec(basis.kind, basis.degree, exprs)

    @property
    def n_vars(self) -> int:
        """Number of state variables."""
        return len(self.variables)

    @property
    def variable_names(self) -> list[str]:
        """The variable names, in order."""
        return [v.name for v in self.variables]

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


def _unknown_keys(table: Mapping[str, Any], allowed: Sequence[str], section: str,
                  src: str) -> None:
    extra = [k for k in table if k not in allowed]
    if extra:
        raise SystemFileError(
            f"Unknown key {extra[0]!r} in {section}{src}; the allowed keys are "
            f"{', '.join(allowed)}.")


def _basis_from_table(table: Mapping[str, Any], src: str,
                      names: Mapping[str, sympy.Expr] | None = None) -> BasisSpec:
    _unknown_keys(table, _BASIS_KEYS, "[basis]", src)
    kind = table.get("kind", "polynomial")
    if not isinstance(kind, str) or kind not in BASIS_KINDS:
        raise SystemFileError(
            f"The 'kind' of [basis]{src} must be one of {', '.join(map(repr, BASIS_KINDS))}; "
            f"got {kind!r}.")
    degree = table.get("degree")
    if degree is not None and (not _is_int(degree) or not 1 <= degree <= MAX_DEGREE):
        raise SystemFileError(
            f"The 'degree' of [basis]{src} must be an integer from 1 to {MAX_DEGREE}; "
            f"got {degree!r}.")
    raw = table.get("expressions", [])
    if isinstance(raw, str) or not isinstance(raw, (list, tuple)):
        raise SystemFileTypeError(
            f"The 'expressions' of [basis]{src} must be a list of strings such as "
            f"[\"x\", \"log(x)\"]; got {type(raw).__name__} {raw!r}.")
    if names is not None:
        exprs = tuple(parse_expression(e, names, where=f"[basis] expressions[{i}]{src}")
                      for i, e in enumerate(raw))
    else:
        exprs = tuple(parse_expression(e, {}, where=f"[basis] expressions[{i}]{src}",
                                       free_names=True) for i, e in enumerate(raw))
    if kind in ("expressions", "product") and not exprs:
        raise SystemFileError(
            f"[basis]{src} kind = {kind!r} needs a non-empty 'expressions' list, e.g. "
            "expressions = [\"x\", \"log(x)\"].")
    return BasisSpec(kind, degree, exprs)


def _sampling_from_table(table: Mapping[str, Any], src: str,
                         base_dir: Path | None = None) -> SamplingSpec:
    _unknown_keys(table, _SAMPLING_KEYS, "[sampling]", src)
    kwargs = dict(table)
    data = kwargs.get("data")
    if isinstance(data, str) and data.strip() and base_dir is not None:
        path = Path(data).expanduser()
        kwargs["data"] = str(path if path.is_absolute() else base_dir / path)
    try:
        return SamplingSpec(**kwargs)
    except SystemFileError as exc:
        if src:
            raise type(exc)(f"{exc}".rstrip(".") + f" (in {src.strip(' ()')}).") from None
        raise


# ----------------------------------------------------------------------------------------
# Files
# ----------------------------------------------------------------------------------------

def _toml_error_line(exc: tomllib.TOMLDecodeError) -> str:
    # Python 3.11's message already ends with "(at line L, column C)"
    return str(exc)


def load_system(path: str | os.PathLike[str]) -> System:
    """Read a system file (TOML, format in CONTRACT.md).

    Parameters
    ----------
    path : str or path-like
        The ``.toml`` file. A relative ``[sampling] data`` path is taken relative to it.

    Returns
    -------
    System

    Raises
    ------
    SystemFileError
        (a ``ValueError``) for a missing/unreadable file, TOML syntax errors (with the line),
        and every invalid entry; the message names the file, section and key, and the fix.
    SystemFileTypeError
        (also a ``TypeError``) for entries of the wrong kind.

    Examples
    --------
    >>> from importlib.resources import files
    >>> s = load_system(files("aipoincare") / "examples" / "lotka_volterra_3.toml")
    >>> s.variable_names, s.expected["independent"]
    (['x', 'y', 'z'], 2)
    """
    if not isinstance(path, (str, os.PathLike)):
        raise SystemFileTypeError(f"The system file path must be a string or path; got "
                                  f"{type(path).__name__} {path!r}.")
    p = Path(path)
    if not p.exists():
        raise SystemFileError(f"The system file {str(p)!r} does not exist; check the path "
                              "(`aipoincare examples` lists the shipped ones).")
    if p.is_dir():
        raise SystemFileError(f"The system file {str(p)!r} is a directory; give a .toml file.")
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise SystemFileError(f"The system file {str(p)!r} cannot be read: "
                              f"{exc.strerror or exc}; check its permissions.") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SystemFileError(f"The system file {str(p)!r} is not UTF-8 text (byte "
                              f"{exc.start}); save it as a UTF-8 TOML file.") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SystemFileError(f"The system file {str(p)!r} is not valid TOML: "
                              f"{_toml_error_line(exc)}; see the format in CONTRACT.md.") from None
    return system_from_dict(data, source=str(p))


def system_from_dict(data: Mapping[str, Any], source: str | None = None) -> System:
    """Build a :class:`System` from the parsed TOML table (the file layout as a dict)."""
    src = f" ({source})" if source else ""
    if not isinstance(data, Mapping):
        raise SystemFileTypeError(f"A system must be a table; got {type(data).__name__}.")
    # Unrelated extra keys (a description, a [metadata] table) are tolerated so that files
    # written for other tools still load; a near-miss of a known key is a typo and an error.
    for key in data:
        if key not in _TOP_KEYS and difflib.get_close_matches(key, _TOP_KEYS, n=1, cutoff=0.75):
            raise SystemFileError(
                f"Unknown key or section {key!r}{src}; the allowed ones are "
                f"{', '.join(_TOP_KEYS)}.")
    if "variables" not in data:
        raise SystemFileError(f"The system{src} has no 'variables'; add e.g. "
                              "variables = [\"x\", \"y\"] at the top of the file.")
    variables = data["variables"]
    if not isinstance(variables, list):
        raise SystemFileTypeError(f"'variables'{src} must be a list of names such as "
                                  f"[\"x\", \"y\"]; got {type(variables).__name__} "
                                  f"{variables!r}.")
    if "equations" not in data:
        raise SystemFileError(f"The system{src} has no [equations] section; add one line "
                              "per variable, e.g. x = \"x*(y - z)\".")
    tables: dict[str, Mapping[str, Any]] = {}
    for key in ("parameters", "definitions", "equations", "constraints", "basis",
                "sampling", "expected"):
        value = data.get(key, {})
        if key == "constraints" and isinstance(value, list):
            value = {str(i): v for i, v in enumerate(value)}
        if not isinstance(value, Mapping):
            raise SystemFileTypeError(f"[{key}]{src} must be a table (a [{key}] section); got "
                                      f"{type(value).__name__} {value!r}.")
        tables[key] = value
    name = data.get("name", Path(source).stem if source else "system")
    base_dir = Path(source).resolve().parent if source else None
    basis = tables["basis"] or None  # parsed by from_strings, with the names known
    sampling = _sampling_from_table(tables["sampling"], src, base_dir)
    return System.from_strings(variables, tables["equations"],
                               parameters=tables["parameters"],
                               definitions=tables["definitions"],
                               constraints=tables["constraints"], name=name,
                               basis=basis, sampling=sampling, expected=tables["expected"],
                               source=source)
