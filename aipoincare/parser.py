"""The safe expression parser: text to SymPy without executing anything (the security boundary).

:func:`parse_expression` turns the text into a Python syntax tree with :func:`ast.parse`
(which only parses, never runs anything), checks every node against a short list of allowed
kinds (numbers, names, ``+ - * / **``, unary signs, calls of the functions in
:data:`FUNCTIONS`) and builds the SymPy expression from the tree itself.
``sympy.sympify``/``parse_expr`` are never called on user text, since they evaluate it as
Python. Every expression of a system file and every string given to :class:`System` passes
through here.
"""

from __future__ import annotations

import ast
import math
import sys
from collections.abc import Callable, Mapping
from fractions import Fraction
from typing import Any

import sympy

from .errors import ExpressionError, SystemFileTypeError

__all__ = ["CONSTANTS", "CONSTANT_PLACEHOLDERS", "FUNCTIONS", "RESERVED", "parse_expression"]

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
#: Named constants allowed in expressions. A variable, parameter or definition may take one
#: of these names (``E`` for an enzyme): in that system the user's name wins.
CONSTANTS: dict[str, sympy.Expr] = {"pi": sympy.pi, "E": sympy.E}
#: What a constant's name stands for in an expression parsed before the system's names are
#: known (``free_names=True``, e.g. a basis given on its own): :class:`System` replaces it by
#: the user's variable or parameter of that name, else by the constant.
CONSTANT_PLACEHOLDERS: dict[str, sympy.Dummy] = {name: sympy.Dummy(name) for name in CONSTANTS}
#: Names a variable, parameter or definition may not take: the functions (a call must stay
#: a call). Constants are not reserved (see :data:`CONSTANTS`).
RESERVED = frozenset(FUNCTIONS)
# An exponent this large on a number would make SymPy compute a gigantic integer.
_MAX_NUMERIC_EXPONENT = 1000
# The largest power of a number computed while parsing, in bits (about 30,000 digits: every
# physical constant fits, a tower such as ((2**1000)**1000)**1000 does not).
_MAX_NUMERIC_BITS = 100_000
# Python refuses to read integers longer than this many digits (sys.get_int_max_str_digits).
_INT_DIGITS = "Exceeds the limit"


def _short_number(x: sympy.Expr) -> str:
    text = str(x)
    return text if len(text) <= 24 else f"{text[:12]}...({len(text)} characters)"


def _power_too_large(base: sympy.Expr, exponent: sympy.Expr) -> bool:
    """Whether ``base**exponent`` (two numbers) would be an unreasonably large number."""
    if abs(exponent) > _MAX_NUMERIC_EXPONENT:
        return True
    if not base.is_Rational:  # a float-like number: its power cannot grow in size
        return False
    bits = int(abs(base.p)).bit_length() + int(base.q).bit_length()
    return float(abs(exponent)) * bits > _MAX_NUMERIC_BITS


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
        if ident in self.names:  # a user's name wins over a constant's (E for an enzyme)
            return self.names[ident]
        if ident in CONSTANTS:
            return CONSTANT_PLACEHOLDERS[ident] if self.free_names else CONSTANTS[ident]
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
            if right.is_Number and left.is_Number and _power_too_large(left, right):
                raise self.fail(node, f"The numeric power {_short_number(left)}**"
                                f"{_short_number(right)} is too large",
                                f"use exponents up to {_MAX_NUMERIC_EXPONENT} on numbers, with "
                                f"results under {_MAX_NUMERIC_BITS} bits.")
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


def _number(value: Any, where: str) -> sympy.Rational:
    """A number given instead of a string, as an exact rational (``0.1`` is ``1/10``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, Fraction)):
        if isinstance(value, sympy.Basic):
            raise SystemFileTypeError(f"{where} must be a string here; got a SymPy object "
                                      f"{value!r}; pass it to System(...) instead.")
        raise SystemFileTypeError(f"{where} must be an expression string; got "
                                  f"{type(value).__name__} {value!r}.")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ExpressionError(f"{where} must be finite; got {value!r}.")
        return sympy.Rational(repr(value))  # the exact value of its decimal text
    return sympy.Rational(value)


def parse_expression(text: str | int | float, names: Mapping[str, sympy.Expr] | None = None, *,
                     where: str = "expression", free_names: bool = False) -> sympy.Expr:
    """Parse ``text`` into a SymPy expression without executing it.

    Parameters
    ----------
    text : str or number
        SymPy syntax (``**`` for powers). Numbers become exact (``0.1`` is ``1/10``).
    names : mapping of str to sympy.Expr, optional
        The names an expression may use (variables, parameter values, definitions) and what
        each stands for. The functions in :data:`FUNCTIONS` are always allowed, and so are the
        constants ``pi``, ``E`` unless ``names`` has a name of theirs (then the name wins).
    where : str
        Where the text came from, for error messages (e.g. ``"[equations] x of lv.toml"``).
    free_names : bool
        If True, unknown names become plain symbols instead of errors (used for basis
        expressions before the variables are known; :class:`System` checks them later), and
        ``pi``, ``E`` become the placeholders :data:`CONSTANT_PLACEHOLDERS` (the system
        decides whether they are its own names or the constants).

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
    aipoincare.errors.ExpressionError: Attribute access ('.') is not allowed in ...
    """
    if not isinstance(text, str):
        return _number(text, where)
    stripped = text.strip()
    if not stripped:
        raise ExpressionError(f"{where} is an empty expression; write e.g. \"x*(y - z)\".")
    if "\n" in stripped or "\r" in stripped:
        stripped = " ".join(stripped.split())  # TOML multi-line strings: one expression
    names = dict(names or {})
    hint = ("allowed names are " + (", ".join(sorted(names)) if names else "(none)")
            + " and the functions " + ", ".join(FUNCTIONS) + " and constants pi, E"
            + "; declare new names under variables, [parameters] or [definitions].")
    try:
        tree = ast.parse(stripped, mode="eval")
    except SyntaxError as exc:
        if _INT_DIGITS in str(exc.msg):
            raise ExpressionError(
                f"{_where_text(where, stripped)} has an integer of more than "
                f"{sys.get_int_max_str_digits()} digits; write it in scientific notation "
                "(e.g. 1.5e300) or as a product of powers (10**300).") from None
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
