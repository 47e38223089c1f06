"""Safe evaluation of SymPy expressions: float64 tensors on any device, or exactly mod p.

No ``lambdify``, ``eval`` or ``exec``: an expression is walked once into a small program
(a list of operations on numbered slots) with shared subexpressions memoised, so a helper
such as the 3D fluid's ``lam`` that appears in 12 equations is computed once per point.

* :func:`compile_torch` -- ``f(X)`` for ``X`` of shape ``(n, n_vars)`` in float64.
* :func:`compile_jacobian_torch` -- the Jacobian from symbolic derivatives, same evaluator.
* :func:`is_rational_function` -- whether exact modular evaluation applies.
* :func:`eval_mod_p` -- exact values of rational functions modulo a prime ``p < 2**31``,
  vectorised with numpy ``int64`` (products of two residues stay below ``2**62``).

Supported nodes: ``Add``, ``Mul``, ``Pow``, symbols, integers, rationals, floats, ``pi``,
``E``, and the functions ``sqrt`` (a power 1/2), ``exp``, ``log``, ``sin``, ``cos``, ``tan``,
``sinh``, ``cosh``, ``tanh``, ``atan``, ``Abs`` (and ``sign``, which derivatives of ``Abs``
produce). Anything else raises ``TypeError`` naming the node.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import sympy
import torch

from traincore import check_int

__all__ = ["compile_torch", "compile_jacobian_torch", "is_rational_function", "eval_mod_p",
           "SUPPORTED_FUNCTIONS", "mod_inverse_array", "as_expr"]

_UNARY_TORCH: dict[type, Callable[[torch.Tensor], torch.Tensor]] = {
    sympy.exp: torch.exp,
    sympy.log: torch.log,
    sympy.sin: torch.sin,
    sympy.cos: torch.cos,
    sympy.tan: torch.tan,
    sympy.sinh: torch.sinh,
    sympy.cosh: torch.cosh,
    sympy.tanh: torch.tanh,
    sympy.atan: torch.atan,
    sympy.Abs: torch.abs,
    sympy.sign: torch.sign,
}

#: Names of the functions the evaluator understands (``sqrt`` is ``Pow(x, 1/2)`` in SymPy).
SUPPORTED_FUNCTIONS: tuple[str, ...] = ("sqrt",) + tuple(sorted(f.__name__ for f in _UNARY_TORCH))


@dataclass(frozen=True)
class _Op:
    kind: str            # "var", "const", "add", "mul", "pow_int", "pow", "fn"
    args: tuple[int, ...] = ()
    value: object = None  # const value / integer exponent / function class / column index


class _Program:
    """A straight-line program for a list of expressions, shared subexpressions merged."""

    def __init__(self, exprs: Sequence[sympy.Expr], variables: Sequence[sympy.Symbol]) -> None:
        self.columns = {v: i for i, v in enumerate(variables)}
        if len(self.columns) != len(variables):
            raise ValueError(f"The 'variables' must be distinct symbols; got {list(variables)}.")
        for v in variables:
            if not isinstance(v, sympy.Symbol):
                raise TypeError(f"Each of 'variables' must be a sympy.Symbol; got "
                                f"{type(v).__name__} {v!r}.")
        self.ops: list[_Op] = []
        self._memo: dict[sympy.Basic, int] = {}
        self._const_memo: dict[object, int] = {}
        self.outputs = [self._visit(as_expr(e)) for e in exprs]
        # last_use[i]: index of the last op reading slot i (outputs live to the end)
        self.last_use = [-1] * len(self.ops)
        for k, op in enumerate(self.ops):
            for a in op.args:
                self.last_use[a] = k
        for o in self.outputs:
            self.last_use[o] = len(self.ops)

    def _emit(self, op: _Op) -> int:
        self.ops.append(op)
        return len(self.ops) - 1

    def _const(self, value: sympy.Expr) -> int:
        key = ("c", value)
        if key not in self._const_memo:
            self._const_memo[key] = self._emit(_Op("const", value=value))
        return self._const_memo[key]

    def _visit(self, e: sympy.Basic) -> int:
        hit = self._memo.get(e)
        if hit is not None:
            return hit
        idx = self._build(e)
        self._memo[e] = idx
        return idx

    def _build(self, e: sympy.Basic) -> int:
        if isinstance(e, sympy.Symbol):
            if e not in self.columns:
                raise ValueError(f"The expression uses the symbol {e} that is not among the "
                                 f"variables {list(self.columns)}; declare it or substitute it.")
            return self._emit(_Op("var", value=self.columns[e]))
        if isinstance(e, (sympy.Rational, sympy.Float)) or e in (sympy.pi, sympy.E):
            return self._const(e)
        if isinstance(e, sympy.NumberSymbol):
            return self._const(e)
        if isinstance(e, sympy.Add):
            return self._emit(_Op("add", tuple(self._visit(a) for a in e.args)))
        if isinstance(e, sympy.Mul):
            return self._emit(_Op("mul", tuple(self._visit(a) for a in e.args)))
        if isinstance(e, sympy.Pow):
            base, ex = e.args
            if isinstance(ex, sympy.Integer):
                return self._emit(_Op("pow_int", (self._visit(base),), int(ex)))
            return self._emit(_Op("pow", (self._visit(base), self._visit(ex))))
        if isinstance(e, sympy.Function) and type(e) in _UNARY_TORCH and len(e.args) == 1:
            return self._emit(_Op("fn", (self._visit(e.args[0]),), type(e)))
        name = type(e).__name__
        raise TypeError(f"Cannot evaluate the expression node {name} ({e}); supported are "
                        f"+, *, **, numbers, pi, E and {', '.join(SUPPORTED_FUNCTIONS)}.")

    # ------------------------------------------------------------------ float64 (torch)
    def run_torch(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 2 or x.shape[1] != len(self.columns):
            raise ValueError(f"The points must have shape (n, {len(self.columns)}); got "
                             f"{tuple(x.shape)}.")
        x = x.to(torch.float64)
        n = x.shape[0]
        vals: list[torch.Tensor | float | None] = [None] * len(self.ops)
        for k, op in enumerate(self.ops):
            if op.kind == "var":
                v: torch.Tensor | float = x[:, op.value]
            elif op.kind == "const":
                v = float(op.value)  # python scalar: broadcasts on any device
            elif op.kind == "add":
                v = _sum([vals[a] for a in op.args])
            elif op.kind == "mul":
                v = _prod([vals[a] for a in op.args])
            elif op.kind == "pow_int":
                b = vals[op.args[0]]
                ex = op.value
                if isinstance(b, float):
                    v = b ** ex
                elif ex == 2:
                    v = b * b
                elif ex == -1:
                    v = 1.0 / b
                else:
                    v = torch.pow(b, ex)
            elif op.kind == "pow":
                b, ex = vals[op.args[0]], vals[op.args[1]]
                if isinstance(b, float) and isinstance(ex, float):
                    v = b ** ex
                elif isinstance(ex, float) and ex == 0.5:
                    v = torch.sqrt(b)
                elif isinstance(b, float):
                    v = torch.pow(torch.tensor(b, dtype=torch.float64, device=x.device), ex)
                else:
                    v = torch.pow(b, ex)
            else:  # "fn"
                a = vals[op.args[0]]
                if isinstance(a, float):
                    a = torch.tensor(a, dtype=torch.float64, device=x.device)
                v = _UNARY_TORCH[op.value](a)
            vals[k] = v
            for a in op.args:  # free slots nobody reads any more
                if self.last_use[a] == k:
                    vals[a] = None
        out = torch.empty((n, len(self.outputs)), dtype=torch.float64, device=x.device)
        for j, o in enumerate(self.outputs):
            out[:, j] = vals[o]  # broadcasts constants
        return out

    # ------------------------------------------------------------------ exact mod p
    def run_mod_p(self, pts: np.ndarray, p: int) -> tuple[np.ndarray, np.ndarray]:
        n = pts.shape[0]
        ok = np.ones(n, dtype=bool)
        vals: list[np.ndarray | int | None] = [None] * len(self.ops)
        for k, op in enumerate(self.ops):
            if op.kind == "var":
                v: np.ndarray | int = pts[:, op.value] % p
            elif op.kind == "const":
                v = _rational_mod_p(op.value, p)
            elif op.kind == "add":
                acc: np.ndarray | int = 0
                for a in op.args:
                    acc = (acc + vals[a]) % p
                v = acc
            elif op.kind == "mul":
                acc = 1
                for a in op.args:
                    acc = (acc * vals[a]) % p
                v = acc
            elif op.kind == "pow_int":
                b = vals[op.args[0]]
                ex = op.value
                if ex < 0:
                    b, good = _inverse_mod_p(b, p)
                    ok &= good
                    ex = -ex
                v = _pow_mod_p(b, ex, p)
            else:
                raise TypeError("eval_mod_p needs rational functions of the variables; "
                                "check is_rational_function first.")
            vals[k] = v
            for a in op.args:
                if self.last_use[a] == k:
                    vals[a] = None
        out = np.empty((n, len(self.outputs)), dtype=np.int64)
        for j, o in enumerate(self.outputs):
            out[:, j] = vals[o]
        out[~ok] = 0
        return out, ok


def as_expr(e: object) -> sympy.Expr:
    """A SymPy expression from an expression or a Python number (strings are refused).

    >>> as_expr(3)
    3
    """
    if isinstance(e, sympy.Basic):
        return e
    if isinstance(e, bool) or not isinstance(e, (int, float, np.integer, np.floating)):
        raise TypeError(f"Expected a sympy expression or a number; got {type(e).__name__} "
                        f"{e!r}. Parse strings with aipoincare.System / load_system.")
    return sympy.Integer(int(e)) if isinstance(e, (int, np.integer)) else sympy.Float(float(e))


def _sum(items: list) -> torch.Tensor | float:
    acc = items[0]
    for t in items[1:]:
        acc = acc + t
    return acc


def _prod(items: list) -> torch.Tensor | float:
    # constants first so the scalar multiplies one tensor, not a chain of them
    const = 1.0
    acc: torch.Tensor | None = None
    for t in items:
        if isinstance(t, float):
            const *= t
        else:
            acc = t if acc is None else acc * t
    if acc is None:
        return const
    return acc if const == 1.0 else acc * const


def _rational_mod_p(value: sympy.Expr, p: int) -> int:
    if not isinstance(value, sympy.Rational):
        raise TypeError(f"eval_mod_p needs exact rational constants; got {value} "
                        f"({type(value).__name__}). Use sympy.Rational or nsimplify first.")
    num, den = int(value.p), int(value.q)
    if den % p == 0:
        raise ZeroDivisionError(f"The constant {value} has a denominator divisible by the "
                                f"prime {p}; use another prime.")
    return num % p * pow(den, -1, p) % p


def _pow_mod_p(b: np.ndarray | int, ex: int, p: int) -> np.ndarray | int:
    if isinstance(b, int):
        return pow(b, ex, p)
    result: np.ndarray | int = 1
    base = b
    while ex:
        if ex & 1:
            result = (result * base) % p
        ex >>= 1
        if ex:
            base = (base * base) % p
    return result


def mod_inverse_array(b: np.ndarray, p: int) -> tuple[np.ndarray, np.ndarray]:
    """Elementwise inverse modulo a prime (0 where ``b % p == 0``) and the mask of invertible.

    Parameters
    ----------
    b : ndarray of int64
    p : int
        A prime below ``2**31``.

    Returns
    -------
    inv : ndarray of int64, same shape as ``b``
    ok : ndarray of bool, same shape as ``b``

    Examples
    --------
    >>> inv, ok = mod_inverse_array(np.array([0, 1, 2, 3]), 7)
    >>> inv.tolist(), ok.tolist()
    ([0, 1, 4, 5], [False, True, True, True])
    """
    b = np.asarray(b, dtype=np.int64) % p
    ok = b != 0
    return np.asarray(_pow_mod_p(b, p - 2, p), dtype=np.int64) * ok, ok


def _inverse_mod_p(b: np.ndarray | int, p: int) -> tuple[np.ndarray | int, np.ndarray | bool]:
    if isinstance(b, int):
        if b % p == 0:
            return 0, False
        return pow(b, -1, p), True
    return mod_inverse_array(b, p)


# ---------------------------------------------------------------------- public functions


def compile_torch(exprs: Sequence[sympy.Expr],
                  variables: Sequence[sympy.Symbol]) -> Callable[[torch.Tensor], torch.Tensor]:
    """Compile expressions into a float64 function of a batch of points.

    Parameters
    ----------
    exprs : sequence of sympy.Expr, length m
        Expressions in ``variables`` (numbers, pi and E allowed; no other symbols).
    variables : sequence of sympy.Symbol, length n_vars
        Column order of the input.

    Returns
    -------
    callable
        ``fn(x)`` with ``x`` a Tensor of shape ``(n, n_vars)`` (any device; cast to float64)
        returning a Tensor of shape ``(n, m)`` in float64 on the same device.

    Raises
    ------
    TypeError
        For an unsupported node (e.g. an unknown function).
    ValueError
        For a symbol that is not a variable.

    Examples
    --------
    >>> x, y = sympy.symbols("x y")
    >>> fn = compile_torch([x * y + 1, sympy.sin(x) ** 2], [x, y])
    >>> fn(torch.tensor([[2.0, 3.0]])).tolist()[0][0]
    7.0
    """
    program = _Program(exprs, variables)
    return program.run_torch


def compile_jacobian_torch(exprs: Sequence[sympy.Expr],
                           variables: Sequence[sympy.Symbol]
                           ) -> Callable[[torch.Tensor], torch.Tensor]:
    """Compile the Jacobian ``d exprs_i / d variables_k`` (symbolic derivatives, taken once).

    Variables are treated as real (so ``d|x|/dx = sign(x)``).

    Returns
    -------
    callable
        ``jac(x)`` with ``x`` of shape ``(n, n_vars)`` returning a Tensor of shape
        ``(n, m, n_vars)`` in float64 on ``x``'s device.

    Examples
    --------
    >>> x, y = sympy.symbols("x y")
    >>> jac = compile_jacobian_torch([x ** 2 * y], [x, y])
    >>> jac(torch.tensor([[2.0, 3.0]])).tolist()
    [[[12.0, 4.0]]]
    """
    variables = list(variables)
    real = [sympy.Dummy(v.name, real=True) for v in variables]
    to_real = dict(zip(variables, real, strict=True))
    exprs = [as_expr(e).xreplace(to_real) for e in exprs]
    derivs = [sympy.diff(e, v) for e in exprs for v in real]
    program = _Program(derivs, real)
    m, k = len(exprs), len(variables)

    def jac(x: torch.Tensor) -> torch.Tensor:
        return program.run_torch(x).reshape(x.shape[0], m, k)

    return jac


def is_rational_function(expr: sympy.Expr, variables: Sequence[sympy.Symbol]) -> bool:
    """True when ``expr`` is a rational function of ``variables`` with exact rational numbers.

    Floats, pi, E, other symbols and non-integer powers make it False (exact modular
    arithmetic does not apply to them).

    Examples
    --------
    >>> x, y = sympy.symbols("x y")
    >>> is_rational_function((x * y - 1) / (1 + x ** 2), [x, y])
    True
    >>> is_rational_function(sympy.sqrt(x), [x]), is_rational_function(0.5 * x, [x])
    (False, False)
    """
    allowed = set(variables)
    seen: set[sympy.Basic] = set()
    stack = [as_expr(expr)]
    while stack:
        e = stack.pop()
        if e in seen:
            continue
        seen.add(e)
        if isinstance(e, sympy.Symbol):
            if e not in allowed:
                return False
        elif isinstance(e, sympy.Rational):
            continue
        elif isinstance(e, (sympy.Add, sympy.Mul)):
            stack.extend(e.args)
        elif isinstance(e, sympy.Pow) and isinstance(e.args[1], sympy.Integer):
            stack.append(e.args[0])
        else:
            return False
    return True


def eval_mod_p(exprs: Sequence[sympy.Expr], variables: Sequence[sympy.Symbol],
               points: np.ndarray, p: int) -> tuple[np.ndarray, np.ndarray]:
    """Evaluate rational functions exactly modulo a prime at many points.

    Parameters
    ----------
    exprs : sequence of sympy.Expr, length m
        Rational functions of ``variables`` with exact rational coefficients.
    variables : sequence of sympy.Symbol, length n_vars
    points : ndarray of int64, shape (n, n_vars)
        Residues (any integers; reduced mod ``p``).
    p : int
        A prime with ``p < 2**31`` so that products of residues fit in int64.

    Returns
    -------
    values : ndarray of int64, shape (n, m)
        Residues in ``[0, p)``; rows where ``ok`` is False are 0.
    ok : ndarray of bool, shape (n,)
        False where some denominator vanishes mod ``p`` (the value is undefined there).

    Examples
    --------
    >>> x, y = sympy.symbols("x y")
    >>> vals, ok = eval_mod_p([x / y], [x, y], np.array([[3, 2], [1, 0]]), 7)
    >>> vals.tolist(), ok.tolist()
    ([[5], [0]], [True, False])
    """
    p = check_int(p, "p", ge=3, le=2**31 - 1, fix="a prime, e.g. from random_prime")
    for e in exprs:
        if not is_rational_function(e, variables):
            raise TypeError(f"eval_mod_p needs rational functions of {list(variables)} with "
                            f"exact rational coefficients; got {e}.")
    pts = np.asarray(points)
    if pts.ndim != 2 or pts.shape[1] != len(variables):
        raise ValueError(f"The 'points' must have shape (n, {len(variables)}); got "
                         f"{pts.shape}.")
    pts = pts.astype(np.int64) % p
    program = _Program(exprs, variables)
    return program.run_mod_p(pts, p)
