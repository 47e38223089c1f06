"""Scaling symmetries of a system and the blocks of basis functions they separate.

A scaling symmetry ``x_k -> s^(w_k) x_k, t -> s^(-c) t`` maps the system to itself. The
Lie derivative then maps a monomial of weight ``w . e`` to a function of weight ``w . e + c``;
functions of different weights are linearly independent, so the conserved subspace of a
polynomial basis is the direct sum of the conserved subspaces of its blocks of monomials
with equal weights, each solved on its own (the 3D fluid's 2924 columns fall into blocks of
a few hundred). This is a property of the system, found once per run by
:func:`scaling_blocks`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import sympy

from .basis import Basis, PolynomialBasis
from .evaluate import as_expr

__all__ = ["scaling_weights", "weight_blocks", "scaling_blocks"]



def scaling_weights(equations: Sequence[sympy.Expr], variables: Sequence[sympy.Symbol],
                    constraints: Sequence[sympy.Expr] = ()) -> np.ndarray:
    """Integer weights of the scaling symmetries x_k -> s^(w_k) x_k, t -> s^(-c) t.

    A weight vector ``w`` (one entry per variable) is a symmetry when every equation f_k is
    weighted-homogeneous of weight ``w_k + c`` for one ``c``, and every constraint is
    weighted-homogeneous. The Lie derivative then maps a monomial of weight ``w . e`` to a
    function of weight ``w . e + c``; functions of different weights are linearly
    independent, so the conserved subspace of a polynomial basis splits into blocks of
    monomials with equal weights (:func:`weight_blocks`), each solvable on its own.

    The test walks the expression trees (homogeneity of every sum is required as written),
    so it may miss a symmetry hidden by cancellation but never reports a false one.

    Returns
    -------
    ndarray of int64, shape (n_vars, r)
        A basis of the symmetry lattice (r = 0 when there is none).

    Examples
    --------
    >>> x, y, z = sympy.symbols("x y z")
    >>> scaling_weights([x * (y - z), y * (z - x), z * (x - y)], [x, y, z]).T.tolist()
    [[1, 1, 1]]
    """
    n = len(variables)
    walker = _WeightForms(variables)
    for k, f in enumerate(equations):
        if f == 0:
            continue
        w = walker.form(as_expr(f))
        if w is None:
            return np.zeros((n, 0), dtype=np.int64)
        target = np.zeros(n + 1, dtype=object)
        target[k] = 1
        target[n] = 1
        walker.rows.append(tuple(w - target))
    for g in constraints:
        if walker.form(as_expr(g)) is None:
            return np.zeros((n, 0), dtype=np.int64)
    unique = sorted({r for r in walker.rows if any(v != 0 for v in r)}, key=str)
    mat = (sympy.Matrix([[sympy.Rational(v) for v in r] for r in unique]) if unique
           else sympy.zeros(1, n + 1))
    ws = []
    for vec in mat.nullspace():
        w = list(vec[:n])
        den = sympy.ilcm(1, 1, *[sympy.Rational(v).q for v in w])  # ilcm needs two or more
        w = [int(v * den) for v in w]
        if any(w):
            ws.append(w)
    if not ws:
        return np.zeros((n, 0), dtype=np.int64)
    return np.array(ws, dtype=np.int64).T


class _WeightForms:
    """Weights of expressions as linear forms in the unknowns ``w_1..w_n, c``.

    ``form(e)`` is the weight of ``e`` (a vector of length n + 1), or None when ``e`` has
    no weight (a non-rational power of a weighted base); every sum whose terms must share a
    weight, and every function argument (weight 0), adds its conditions to ``rows``.
    """

    def __init__(self, variables: Sequence[sympy.Symbol]) -> None:
        self.n = len(variables)
        self.col = {v: i for i, v in enumerate(variables)}
        self.rows: list[tuple] = []
        self.memo: dict[sympy.Basic, np.ndarray | None] = {}

    def zero(self) -> np.ndarray:
        return np.zeros(self.n + 1, dtype=object)

    def form(self, e: sympy.Basic) -> np.ndarray | None:
        if e not in self.memo:
            self.memo[e] = self._form(e)
        return self.memo[e]

    def _form(self, e: sympy.Basic) -> np.ndarray | None:
        if isinstance(e, sympy.Symbol):
            out = self.zero()
            if e in self.col:
                out[self.col[e]] = 1
            return out
        if isinstance(e, (sympy.Number, sympy.NumberSymbol)):
            return self.zero()
        if isinstance(e, sympy.Pow) and isinstance(e.args[1], sympy.Rational):
            w = self.form(e.args[0])
            return None if w is None else w * sympy.Rational(e.args[1])
        ws = [self.form(a) for a in e.args]
        if any(w is None for w in ws):
            return None
        if isinstance(e, sympy.Add):
            self.rows.extend(tuple(w - ws[0]) for w in ws[1:])
            return ws[0]
        if isinstance(e, sympy.Mul):
            return sum(ws[1:], ws[0])
        self.rows.extend(tuple(w) for w in ws)  # a function: its argument has weight 0
        return self.zero()


def weight_blocks(exponents: np.ndarray, weights: np.ndarray) -> list[np.ndarray]:
    """Group basis columns (monomials) by their weight vector ``exponents @ weights``.

    Returns
    -------
    list of ndarray of int64
        Column indices of each block, blocks in order of first appearance.

    Examples
    --------
    >>> from aipoincare.basis import monomial_exponents
    >>> e = monomial_exponents(2, 2)
    >>> [b.tolist() for b in weight_blocks(e, np.array([[1], [1]]))]
    [[0, 1], [2, 3, 4]]
    """
    if weights.shape[1] == 0:
        return [np.arange(len(exponents))]
    keys = exponents @ weights  # shape (size, r)
    groups: dict[tuple, list[int]] = {}
    for i, k in enumerate(map(tuple, keys.tolist())):
        groups.setdefault(k, []).append(i)
    return [np.array(g, dtype=np.int64) for g in groups.values()]


def scaling_blocks(system, basis: Basis) -> tuple[np.ndarray, list[np.ndarray]]:
    """The scaling weights of ``system`` and the column blocks of ``basis`` they separate.

    Only a polynomial basis splits (its columns are monomials with a weight each); any other
    basis is one block.

    Parameters
    ----------
    system : aipoincare.System
    basis : Basis

    Returns
    -------
    weights : ndarray of int64, shape (n_vars, r)
    blocks : list of ndarray of int64
        Column indices of each block; together every column exactly once.

    Examples
    --------
    >>> from aipoincare import System
    >>> lv = System("x y z", ["x*(y - z)", "y*(z - x)", "z*(x - y)"])
    >>> _, blocks = scaling_blocks(lv, PolynomialBasis(lv.variables, 3))
    >>> [len(b) for b in blocks]
    [3, 6, 10]
    """
    if not isinstance(basis, PolynomialBasis):
        return np.zeros((len(system.variables), 0), dtype=np.int64), [np.arange(basis.size)]
    weights = scaling_weights(system.equations, system.variables, system.constraints)
    return weights, weight_blocks(basis.exponents, weights)
