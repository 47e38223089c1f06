"""Basis functions b_i and their Lie derivatives grad b_i . f, in float64 and exactly mod p.

Three kinds, in the registry :data:`BASES`:

* ``"polynomial"``: all monomials of total degree 1..d (no constant), ordered by degree,
  then lexicographically in the variable order (``x, y, z`` at degree 2 gives
  ``x**2, x*y, x*z, y**2, y*z, z**2``). Gradients need no symbolic differentiation:
  ``d/dx_k x^e = e_k x^(e - 1_k)`` is a lower monomial of the same family, so all monomial
  values (degree 0..d) are computed once per point and gathered. A monomial has at most
  ``d`` distinct variables, so ``grad b . f`` is a sum of ``d`` gathered products.
* ``"expressions"``: explicit functions; derivatives are taken symbolically once and
  evaluated with :mod:`aipoincare.evaluate`.
* ``"product"``: every monomial of degree 0..d times every expression (product rule).

Never autograd per basis function: the research code needs >24 GiB that way on the 3D fluid.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import sympy
import torch

from traincore import check_choice, check_int

from .evaluate import as_expr, compile_torch, eval_mod_p, is_rational_function

__all__ = ["Basis", "PolynomialBasis", "ExpressionBasis", "ProductBasis", "BASES", "make_basis",
           "monomial_exponents", "monomial_labels"]


class Basis:
    """Common interface of the bases (see the subclasses).

    Attributes
    ----------
    variables : tuple of sympy.Symbol
    exprs : list of sympy.Expr
        The basis functions, in order.
    labels : list of str
        ``str`` of each function (for reports and heat maps).
    rational : bool
        True when every basis function is a rational function with exact coefficients.
    """

    variables: tuple[sympy.Symbol, ...]
    exprs: list[sympy.Expr]
    labels: list[str]
    rational: bool

    @property
    def size(self) -> int:
        return len(self.exprs)

    def lie_torch(self, x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        """``A[j, i] = grad b_i(x_j) . f_j``; x, f of shape (n, n_vars) -> (n, size)."""
        raise NotImplementedError

    def gradients_torch(self, x: torch.Tensor) -> torch.Tensor:
        """Gradients of all basis functions, shape (n, size, n_vars). Small n only."""
        raise NotImplementedError

    def gradient_norms_torch(self, x: torch.Tensor) -> torch.Tensor:
        """``|grad b_i(x_j)|``, shape (n, size)."""
        return torch.linalg.vector_norm(self.gradients_torch(x), dim=2)

    def lie_mod_p(self, pts: np.ndarray, f: np.ndarray, p: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact ``A mod p`` (n, size) and the mask of rows where it is defined.

        The default contracts :meth:`gradients_mod_p` with ``f`` (shape (n, n_vars));
        the polynomial basis overrides it with a cheaper gather.
        """
        g, ok = self.gradients_mod_p(pts, p)  # shape (n, size, n_vars)
        out = np.zeros(g.shape[:2], dtype=np.int64)
        for k in range(g.shape[2]):
            out = (out + g[:, :, k] * f[:, k:k + 1]) % p  # stays below 2**62: p < 2**31
        return out, ok

    def gradients_mod_p(self, pts: np.ndarray, p: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact gradients mod p, shape (n, size, n_vars), and the mask of defined rows."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(size={self.size}, variables={list(self.variables)})"


def monomial_exponents(n_vars: int, degree: int, min_degree: int = 1) -> np.ndarray:
    """Exponents of all monomials of total degree ``min_degree..degree``, in basis order.

    Returns
    -------
    ndarray of int64, shape (n_monomials, n_vars)

    Examples
    --------
    >>> monomial_exponents(2, 2).tolist()
    [[1, 0], [0, 1], [2, 0], [1, 1], [0, 2]]
    """
    rows = []
    for d in range(min_degree, degree + 1):
        for combo in itertools.combinations_with_replacement(range(n_vars), d):
            e = [0] * n_vars
            for k in combo:
                e[k] += 1
            rows.append(e)
    return np.array(rows, dtype=np.int64).reshape(-1, n_vars)


def _monomial_expr(variables: Sequence[sympy.Symbol], e: Sequence[int]) -> sympy.Expr:
    return sympy.Mul(*[v ** int(k) for v, k in zip(variables, e, strict=True) if k])


class _Monomials(Sequence):
    """The monomials of an exponent table as SymPy expressions, each built on first use."""

    def __init__(self, variables: Sequence[sympy.Symbol], exponents: np.ndarray) -> None:
        self._variables = tuple(variables)
        self._exponents = exponents
        self._cache: dict[int, sympy.Expr] = {}

    def __len__(self) -> int:
        return len(self._exponents)

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        i = range(len(self))[i]  # negative indices, IndexError
        if i not in self._cache:
            self._cache[i] = _monomial_expr(self._variables, self._exponents[i].tolist())
        return self._cache[i]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]


def monomial_labels(names: Sequence[str], exponents: np.ndarray) -> list[str]:
    """``str`` of each monomial as SymPy prints it, without building it.

    SymPy orders the factors of a product of powers of distinct symbols by the symbols'
    names (their sort key) and writes ``x**k`` for powers.

    >>> monomial_labels(["y", "x"], np.array([[1, 2], [0, 1]]))
    ['x**2*y', 'x']
    """
    order = sorted(range(len(names)), key=lambda k: names[k])
    out = []
    for e in exponents.tolist():
        out.append("*".join(names[k] if e[k] == 1 else f"{names[k]}**{e[k]}"
                            for k in order if e[k]) or "1")
    return out


class _MonomialTable:
    """All monomials of degree 0..d and how to compute and differentiate them."""

    def __init__(self, n_vars: int, degree: int) -> None:
        self.exponents = monomial_exponents(n_vars, degree, min_degree=0)  # row 0: constant
        index = {tuple(e): i for i, e in enumerate(self.exponents.tolist())}
        self.index = index
        degs = self.exponents.sum(1)
        # value of monomial i = value of parent[i] * x[var[i]] (var = its first variable)
        self.levels: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        for d in range(1, degree + 1):
            rows = np.nonzero(degs == d)[0]
            var = np.argmax(self.exponents[rows] > 0, axis=1)
            parent_e = self.exponents[rows].copy()
            parent_e[np.arange(len(rows)), var] -= 1
            parent = np.array([index[tuple(e)] for e in parent_e.tolist()], dtype=np.int64)
            self.levels.append((rows, parent, var))
        self.n_vars = n_vars

    def values_torch(self, x: torch.Tensor) -> torch.Tensor:
        v = torch.empty((x.shape[0], len(self.exponents)), dtype=torch.float64, device=x.device)
        v[:, 0] = 1.0
        for rows, parent, var in self.levels:
            r = torch.as_tensor(rows, device=x.device)
            v[:, r] = v[:, torch.as_tensor(parent, device=x.device)] * \
                x[:, torch.as_tensor(var, device=x.device)]
        return v

    def values_mod_p(self, pts: np.ndarray, p: int) -> np.ndarray:
        v = np.empty((pts.shape[0], len(self.exponents)), dtype=np.int64)
        v[:, 0] = 1
        for rows, parent, var in self.levels:
            v[:, rows] = v[:, parent] * pts[:, var] % p
        return v

    def gradient_slots(self, exps: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For each row of ``exps``: up to s slots (variable, exponent, index of x^(e-1_k))."""
        n_slots = max(1, int((exps > 0).sum(1).max())) if len(exps) else 1
        var = np.zeros((n_slots, len(exps)), dtype=np.int64)
        coef = np.zeros((n_slots, len(exps)), dtype=np.int64)
        idx = np.zeros((n_slots, len(exps)), dtype=np.int64)
        for i, e in enumerate(exps.tolist()):
            for s, k in enumerate(k for k in range(len(e)) if e[k]):
                lower = list(e)
                lower[k] -= 1
                var[s, i], coef[s, i], idx[s, i] = k, e[k], self.index[tuple(lower)]
        return var, coef, idx


class PolynomialBasis(Basis):
    """All monomials of total degree 1..``degree`` in ``variables`` (no constant).

    Parameters
    ----------
    variables : sequence of sympy.Symbol
    degree : int
        From 1 to 8.

    Examples
    --------
    >>> x, y = sympy.symbols("x y")
    >>> b = PolynomialBasis([x, y], 2)
    >>> b.labels
    ['x', 'y', 'x**2', 'x*y', 'y**2']
    >>> A = b.lie_torch(torch.tensor([[1.0, 2.0]]), torch.tensor([[1.0, 0.0]]))
    >>> A.tolist()  # d/dt along f = (1, 0): derivative in x
    [[1.0, 0.0, 2.0, 2.0, 0.0]]
    """

    rational = True

    def __init__(self, variables: Sequence[sympy.Symbol], degree: int) -> None:
        _check_degree(degree)
        self.variables = tuple(variables)
        self.degree = int(degree)
        self.table = _MonomialTable(len(self.variables), self.degree)
        self.exponents = self.table.exponents[1:]  # shape (size, n_vars)
        # built on first use of each (20,474 SymPy products at degree 4 on 24 variables
        # cost seconds, and a discovery needs only the conserved ones)
        self.exprs = _Monomials(self.variables, self.exponents)
        self.labels = monomial_labels([str(v) for v in self.variables], self.exponents)
        self._var, self._coef, self._idx = self.table.gradient_slots(self.exponents)

    def _slots(self, device: torch.device, cols: np.ndarray | None = None):
        var, coef, idx = self._var, self._coef, self._idx
        if cols is not None:
            var, coef, idx = var[:, cols], coef[:, cols], idx[:, cols]
        return (torch.as_tensor(var, device=device), torch.as_tensor(coef, device=device,
                                                                     dtype=torch.float64),
                torch.as_tensor(idx, device=device))

    def lie_torch(self, x: torch.Tensor, f: torch.Tensor,
                  cols: np.ndarray | None = None) -> torch.Tensor:
        mono = self.table.values_torch(x)  # shape (n, n_monomials_0..d)
        var, coef, idx = self._slots(x.device, cols)
        out = None
        for s in range(var.shape[0]):
            term = mono[:, idx[s]] * f[:, var[s]] * coef[s]  # shape (n, n_cols)
            out = term if out is None else out.add_(term)
        return out

    def gradient_norms_torch(self, x: torch.Tensor) -> torch.Tensor:
        mono = self.table.values_torch(x)
        var, coef, idx = self._slots(x.device)
        sq = None
        for s in range(var.shape[0]):  # slots hold distinct variables: orthogonal components
            term = (mono[:, idx[s]] * coef[s]) ** 2
            sq = term if sq is None else sq.add_(term)
        return sq.sqrt()

    def lie_and_gradient_norms_torch(self, x: torch.Tensor, f: torch.Tensor,
                                     cols: np.ndarray | None = None
                                     ) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`lie_torch` and :meth:`gradient_norms_torch` from one monomial table
        (for the columns ``cols`` only, when given)."""
        mono = self.table.values_torch(x)
        var, coef, idx = self._slots(x.device, cols)
        lie = sq = None
        for s in range(var.shape[0]):
            g = mono[:, idx[s]] * coef[s]  # shape (n, size): component along var[s]
            term = g * f[:, var[s]]
            lie = term if lie is None else lie.add_(term)
            g = g * g
            sq = g if sq is None else sq.add_(g)
        return lie, sq.sqrt()

    def gradients_torch(self, x: torch.Tensor) -> torch.Tensor:
        mono = self.table.values_torch(x)
        var, coef, idx = self._slots(x.device)
        g = torch.zeros((x.shape[0], self.size, len(self.variables)), dtype=torch.float64,
                        device=x.device)
        cols = torch.arange(self.size, device=x.device)
        for s in range(var.shape[0]):
            g[:, cols, var[s]] += mono[:, idx[s]] * coef[s]
        return g

    def lie_mod_p(self, pts: np.ndarray, f: np.ndarray, p: int,
                  cols: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        mono = self.table.values_mod_p(pts, p)
        var, coef, idx = self._var, self._coef, self._idx
        if cols is not None:
            var, coef, idx = var[:, cols], coef[:, cols], idx[:, cols]
        out = np.zeros((pts.shape[0], var.shape[1]), dtype=np.int64)
        for s in range(var.shape[0]):
            out += mono[:, idx[s]] * f[:, var[s]] % p * coef[s] % p
        return out % p, np.ones(pts.shape[0], dtype=bool)

    def gradients_mod_p(self, pts: np.ndarray, p: int) -> tuple[np.ndarray, np.ndarray]:
        mono = self.table.values_mod_p(pts, p)
        g = np.zeros((pts.shape[0], self.size, len(self.variables)), dtype=np.int64)
        cols = np.arange(self.size)
        for s in range(self._var.shape[0]):
            g[:, cols, self._var[s]] += mono[:, self._idx[s]] * self._coef[s] % p
        return g % p, np.ones(pts.shape[0], dtype=bool)


class ExpressionBasis(Basis):
    """An explicit list of basis functions; gradients by symbolic differentiation, once.

    Examples
    --------
    >>> q, p = sympy.symbols("q p")
    >>> b = ExpressionBasis([q, p], [sympy.cos(q), p ** 2])
    >>> b.lie_torch(torch.tensor([[0.0, 1.0]]), torch.tensor([[1.0, 0.5]])).tolist()
    [[-0.0, 1.0]]
    """

    def __init__(self, variables: Sequence[sympy.Symbol], exprs: Sequence[sympy.Expr]) -> None:
        self.variables = tuple(variables)
        self.exprs = [as_expr(e) for e in exprs]
        if not self.exprs:
            raise ValueError("The 'expressions' of an expression basis must not be empty; "
                             "list at least one function.")
        self.labels = [str(e) for e in self.exprs]
        self._grads = [[sympy.diff(e, v) for v in self.variables] for e in self.exprs]
        flat = [g for row in self._grads for g in row]
        self._grad_fn: Callable[[torch.Tensor], torch.Tensor] = compile_torch(flat,
                                                                              self.variables)
        self._value_fn = compile_torch(self.exprs, self.variables)
        self.rational = all(is_rational_function(e, self.variables) for e in self.exprs)

    def values_torch(self, x: torch.Tensor) -> torch.Tensor:
        return self._value_fn(x)

    def gradients_torch(self, x: torch.Tensor) -> torch.Tensor:
        return self._grad_fn(x).reshape(x.shape[0], self.size, len(self.variables))

    def lie_torch(self, x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        return torch.einsum("nik,nk->ni", self.gradients_torch(x), f.to(torch.float64))

    def values_mod_p(self, pts: np.ndarray, p: int) -> tuple[np.ndarray, np.ndarray]:
        return eval_mod_p(self.exprs, self.variables, pts, p)

    def gradients_mod_p(self, pts: np.ndarray, p: int) -> tuple[np.ndarray, np.ndarray]:
        flat = [g for row in self._grads for g in row]
        vals, ok = eval_mod_p(flat, self.variables, pts, p)
        return vals.reshape(pts.shape[0], self.size, len(self.variables)), ok


class ProductBasis(Basis):
    """Every monomial of degree 0..``degree`` times every expression (product rule).

    Order: expression-major within each monomial, monomials in :class:`PolynomialBasis`
    order starting from the constant 1.
    """

    def __init__(self, variables: Sequence[sympy.Symbol], degree: int,
                 exprs: Sequence[sympy.Expr]) -> None:
        _check_degree(degree, low=0)
        self.variables = tuple(variables)
        self.expr_basis = ExpressionBasis(variables, exprs)
        self.table = _MonomialTable(len(self.variables), int(degree))
        self.mono_exps = self.table.exponents  # includes the constant
        monos = [_monomial_expr(self.variables, e) for e in self.mono_exps.tolist()]
        self.exprs = [m * e for m in monos for e in self.expr_basis.exprs]
        self.labels = [str(e) for e in self.exprs]
        self.rational = self.expr_basis.rational
        self._var, self._coef, self._idx = self.table.gradient_slots(self.mono_exps)

    def _mono_grads_torch(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mono = self.table.values_torch(x)
        g = torch.zeros((x.shape[0], len(self.mono_exps), len(self.variables)),
                        dtype=torch.float64, device=x.device)
        cols = torch.arange(len(self.mono_exps), device=x.device)
        var = torch.as_tensor(self._var, device=x.device)
        idx = torch.as_tensor(self._idx, device=x.device)
        coef = torch.as_tensor(self._coef, dtype=torch.float64, device=x.device)
        for s in range(var.shape[0]):
            g[:, cols, var[s]] += mono[:, idx[s]] * coef[s]
        return mono, g

    def gradients_torch(self, x: torch.Tensor) -> torch.Tensor:
        mono, gm = self._mono_grads_torch(x)          # (n, M), (n, M, k)
        e = self.expr_basis.values_torch(x)            # (n, E)
        ge = self.expr_basis.gradients_torch(x)        # (n, E, k)
        g = e[:, None, :, None] * gm[:, :, None, :] + mono[:, :, None, None] * ge[:, None]
        return g.reshape(x.shape[0], -1, len(self.variables))

    def lie_torch(self, x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        return torch.einsum("nik,nk->ni", self.gradients_torch(x), f.to(torch.float64))

    def gradients_mod_p(self, pts: np.ndarray, p: int) -> tuple[np.ndarray, np.ndarray]:
        mono = self.table.values_mod_p(pts, p)
        n, k = pts.shape[0], len(self.variables)
        gm = np.zeros((n, len(self.mono_exps), k), dtype=np.int64)
        cols = np.arange(len(self.mono_exps))
        for s in range(self._var.shape[0]):
            gm[:, cols, self._var[s]] += mono[:, self._idx[s]] * self._coef[s] % p
        gm %= p
        e, ok1 = self.expr_basis.values_mod_p(pts, p)
        ge, ok2 = self.expr_basis.gradients_mod_p(pts, p)
        g = (e[:, None, :, None] * gm[:, :, None, :] % p
             + mono[:, :, None, None] * ge[:, None] % p) % p
        return g.reshape(n, -1, k), ok1 & ok2


def _check_degree(degree: Any, low: int = 1) -> None:
    check_int(degree, "degree", ge=low, le=8, where="of the basis")


#: Registry of basis kinds: name -> factory(variables, degree, expressions).
BASES: dict[str, Callable[..., Basis]] = {
    "polynomial": lambda variables, degree, exprs: PolynomialBasis(variables, degree),
    "expressions": lambda variables, degree, exprs: ExpressionBasis(variables, exprs),
    "product": lambda variables, degree, exprs: ProductBasis(variables, degree, exprs),
}


def make_basis(kind: str, variables: Sequence[sympy.Symbol], degree: int = 3,
               exprs: Sequence[sympy.Expr] = ()) -> Basis:
    """Build a basis from the registry :data:`BASES`.

    Examples
    --------
    >>> make_basis("polynomial", sympy.symbols("x y z"), 3).size
    19
    >>> make_basis("fourier", sympy.symbols("x"))
    Traceback (most recent call last):
    ...
    ValueError: The 'kind' of the basis must be one of 'polynomial', ...; got 'fourier'.
    """
    check_choice(kind, "kind", BASES, where="of the basis")
    return BASES[kind](variables, degree, exprs)
