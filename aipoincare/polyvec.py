"""Vectors whose entries are polynomials in the symbolic parameters, exactly (python-flint).

An invariant of a family of systems is a vector of coefficients ``c_i(k)`` of the basis
functions. Over the field Q(k) of rational functions, any multiple of a conserved vector by
a function of ``k`` is conserved too; this module picks one representative per invariant
and says where it degenerates:

* :func:`canonical_basis` -- the reduced echelon form over Q(k) (pivot = last nonzero
  column, zeros at the other vectors' pivots: unique for a given space), each vector then
  scaled to polynomial entries with no common factor (*primitive*, integer coefficients)
  and a positive leading coefficient at its pivot;
* :func:`vanishing_set` -- where all coefficients of one vector vanish (the invariant
  becomes 0 there);
* :func:`dependence_locus` -- the polynomial whose zeros are where the vectors become
  linearly dependent in codimension one (gcd of their maximal minors);
* conversion to and from SymPy, and :func:`grouped_expr`, the invariant written with the
  basis functions grouped by common coefficient (``k5*(3*NO + NO2 - ...)``).

The arithmetic is FLINT's multivariate integer polynomials (``fmpz_mpoly``: exact gcd,
exact division, factorisation), far faster than SymPy's on the same operations.
"""

from __future__ import annotations

from collections.abc import Sequence
from math import lcm

import flint
import numpy as np
import sympy

__all__ = ["ring", "from_rational_terms", "to_sympy", "from_sympy", "evaluate_mod_p",
           "independent_over_fractions", "canonical_basis", "primitive", "grouped_expr",
           "vanishing_set", "dependence_locus", "factors"]

Vector = dict  # basis column -> flint.fmpz_mpoly (zero entries absent)


def ring(names: Sequence[str]) -> flint.fmpz_mpoly_ctx:
    """The polynomial ring Z[k_1, ..., k_m] in the parameters (lexicographic order)."""
    return flint.fmpz_mpoly_ctx.get(tuple(names), "lex")


def from_rational_terms(terms: dict[int, dict[tuple[int, ...], sympy.Rational]],
                        ctx: flint.fmpz_mpoly_ctx) -> Vector:
    """A primitive integer polynomial vector from column -> {parameter exponents: rational}.

    The rationals are scaled by the common denominator (a constant factor: the invariant is
    the same up to scale).
    """
    den = 1
    for coeffs in terms.values():
        for c in coeffs.values():
            den = lcm(den, int(sympy.Rational(c).q))
    vec: Vector = {}
    for col, coeffs in terms.items():
        poly = ctx.from_dict({e: int(sympy.Rational(c) * den) for e, c in coeffs.items()
                              if c != 0})
        if not poly.is_zero():
            vec[col] = poly
    return primitive(vec)


def to_sympy(poly: flint.fmpz_mpoly, symbols: Sequence[sympy.Symbol]) -> sympy.Expr:
    """A polynomial as a SymPy expression in ``symbols`` (the ring's generators in order)."""
    return sympy.Add(*[sympy.Integer(int(c)) * sympy.Mul(*[s ** e for s, e in
                                                              zip(symbols, m, strict=True)])
                       for m, c in zip(poly.monoms(), poly.coeffs(), strict=True)])


def from_sympy(expr: sympy.Expr, symbols: Sequence[sympy.Symbol],
               ctx: flint.fmpz_mpoly_ctx) -> tuple[flint.fmpz_mpoly, int]:
    """A polynomial with rational coefficients as (integer polynomial, denominator)."""
    poly = sympy.Poly(sympy.expand(expr), *symbols, domain="QQ")
    terms = poly.as_dict()
    den = 1
    for c in terms.values():
        den = lcm(den, int(sympy.Rational(c).q))
    return ctx.from_dict({m: int(sympy.Rational(c) * den) for m, c in terms.items()}), den


def evaluate_mod_p(vec: Vector, point: Sequence[int], p: int) -> dict[int, int]:
    """The vector's entries at a parameter point, modulo ``p`` (nonzero entries only)."""
    out = {}
    for col, poly in vec.items():
        v = int(poly(*point)) % p
        if v:
            out[col] = v
    return out


def _rank_mod_p(rows: list[dict[int, int]], p: int) -> int:
    cols = sorted({c for r in rows for c in r})
    if not rows or not cols:
        return 0
    index = {c: j for j, c in enumerate(cols)}
    mat = [[0] * len(cols) for _ in rows]
    for i, r in enumerate(rows):
        for c, v in r.items():
            mat[i][index[c]] = v
    return int(flint.nmod_mat(mat, p).rank())


def independent_over_fractions(vectors: Sequence[Vector], order: Sequence[int],
                               point: Sequence[int], p: int) -> list[int]:
    """Greedy: the indices (in ``order``) of vectors independent over Q(k).

    Linear independence over the rational functions is decided at one random parameter point
    modulo ``p``: a rank there is the generic rank unless the point lies on a proper
    algebraic set (probability at most degree/p; a rank can only drop there, so a vector
    is never kept wrongly, only possibly missed).
    """
    kept: list[int] = []
    rows: list[dict[int, int]] = []
    for k in order:
        trial = rows + [evaluate_mod_p(vectors[k], point, p)]
        if _rank_mod_p(trial, p) > len(rows):
            kept.append(k)
            rows = trial
    return kept


def primitive(vec: Vector) -> Vector:
    """``vec`` divided by the gcd of its entries (integer content included)."""
    g = None
    for poly in vec.values():
        g = poly if g is None else g.gcd(poly)
        if g.is_one():
            return dict(vec)
    if g is None:
        return {}
    _, g = g.primitive() if g.leading_coefficient() < 0 else (1, g)
    return {c: poly / g for c, poly in vec.items()}


def _eliminate(row: Vector, other: Vector, col: int) -> Vector:
    """``row`` with its entry at ``col`` cancelled by a multiple of ``other`` (fraction-free)."""
    a, b = row[col], other[col]
    g = a.gcd(b)
    fa, fb = b / g, a / g  # row*fa - other*fb cancels col
    out: Vector = {}
    for c in set(row) | set(other):
        v = row.get(c, 0) * fa - other.get(c, 0) * fb
        if not (v == 0 or (hasattr(v, "is_zero") and v.is_zero())):
            out[c] = v
    out.pop(col, None)
    return primitive(out)


def canonical_basis(vectors: Sequence[Vector]) -> list[Vector]:
    """The reduced echelon basis over Q(k), primitive, pivot last, first entry positive.

    Each returned vector has a pivot column (its last nonzero column) where the others are
    zero; entries are integer polynomials without a common factor, and the entry of the
    first (simplest) nonzero column has a positive leading coefficient. The result depends
    only on the space the vectors span over Q(k) (linearly dependent input is dropped), and
    is ordered by pivot column.

    Examples
    --------
    >>> R = ring(["k"]); k, = R.gens()
    >>> basis = canonical_basis([{0: k, 1: k * k}, {0: R.from_dict({(0,): 1}), 2: k}])
    >>> [{c: str(v) for c, v in sorted(b.items())} for b in basis]
    [{0: '1', 1: 'k'}, {0: '1', 2: 'k'}]
    """
    rows: list[tuple[int, Vector]] = []
    for vec in vectors:
        row = primitive(vec)
        for col, other in rows:
            if col in row:
                row = _eliminate(row, other, col)
        if not row:
            continue
        pivot = max(row)
        rows = [(c, _eliminate(o, row, pivot) if pivot in o else o) for c, o in rows]
        rows.append((pivot, row))
    out = []
    for _, row in sorted(rows, key=lambda t: t[0]):
        if row[min(row)].leading_coefficient() < 0:
            row = {c: -v for c, v in row.items()}
        out.append(row)
    return out


def grouped_expr(vec: Vector, exprs: Sequence[sympy.Expr],
                 symbols: Sequence[sympy.Symbol]) -> sympy.Expr:
    """``sum_i c_i(k) b_i`` with the basis functions grouped by common coefficient.

    Each coefficient is split into an integer times a primitive polynomial (positive
    leading coefficient); basis functions sharing the polynomial are summed inside one
    bracket, e.g. ``2*H2*(2*k4 - k5) + k5*(3*NO + NO2 - 2*O3)``.
    """
    groups: dict[str, tuple[flint.fmpz_mpoly, list[sympy.Expr]]] = {}
    for col in sorted(vec):
        content, prim = vec[col].primitive()
        if prim.leading_coefficient() < 0:
            content, prim = -content, -prim
        key = str(prim)
        groups.setdefault(key, (prim, []))[1].append(sympy.Integer(int(content)) * exprs[col])
    terms = []
    for prim, parts in groups.values():
        inner = sympy.Add(*parts)
        factor = to_sympy(prim, symbols)
        terms.append(inner if factor == 1 else sympy.Mul(factor, inner))
    return sympy.Add(*terms)


def vanishing_set(vec: Vector, symbols: Sequence[sympy.Symbol]) -> list[sympy.Expr] | None:
    """Equations of the parameter values where every entry of ``vec`` vanishes.

    None when some entry is a nonzero constant (it never vanishes). Linear entries are
    reduced to an echelon set of independent linear equations (``k4 = k5 = 0`` rather than
    ``2*(2*k4 - k5) = 3*k5 = ... = 0``); otherwise the distinct entries up to scale are
    listed (their common zeros).
    """
    polys: dict[str, flint.fmpz_mpoly] = {}
    for poly in vec.values():
        if poly.is_constant():
            return None
        prim = poly.primitive()[1]
        polys.setdefault(str(prim if prim.leading_coefficient() > 0 else -prim), prim)
    if all(p.total_degree() <= 1 for p in polys.values()):
        rows = []
        for poly in polys.values():
            coeffs = dict(zip(poly.monoms(), poly.coeffs(), strict=True))
            rows.append([int(coeffs.get(tuple(int(i == j) for i in range(len(symbols))), 0))
                         for j in range(len(symbols))])
        rref, pivots = sympy.Matrix(rows).rref()
        return [sympy.Add(*[rref[r, j] * symbols[j] for j in range(len(symbols))])
                for r in range(len(pivots))]
    return [to_sympy(p, symbols) for p in polys.values()]


def _det(mat: list[list[flint.fmpz_mpoly]]) -> flint.fmpz_mpoly:
    """Determinant by fraction-free (Bareiss) elimination: exact divisions only."""
    a = [row[:] for row in mat]
    n = len(a)
    sign, prev = 1, None
    for k in range(n - 1):
        if a[k][k].is_zero():
            swap = next((i for i in range(k + 1, n) if not a[i][k].is_zero()), None)
            if swap is None:
                return a[k][k]  # the zero polynomial
            a[k], a[swap] = a[swap], a[k]
            sign = -sign
        for i in range(k + 1, n):
            for j in range(k + 1, n):
                num = a[i][j] * a[k][k] - a[i][k] * a[k][j]
                a[i][j] = num if prev is None else num / prev
        prev = a[k][k]
    return a[n - 1][n - 1] * sign


def dependence_locus(vectors: Sequence[Vector], ctx: flint.fmpz_mpoly_ctx,
                     rng: np.random.Generator, trials: int = 2) -> flint.fmpz_mpoly:
    """The gcd of the maximal minors of the vectors (up to a constant), via random minors.

    Its zero set is where the vectors become linearly dependent, in codimension one (common
    zeros of higher codimension, where one vector vanishes, are :func:`vanishing_set`'s).
    Each trial is ``det(C R)`` for the coefficient matrix ``C`` (vectors as rows) and a
    random integer matrix ``R``: a combination of all maximal minors, so the gcd of a few
    trials is the gcd of all minors except with probability about (degree / range)."""
    one = ctx.from_dict({(0,) * ctx.nvars(): 1})
    n = len(vectors)
    if n <= 1:
        return one
    cols = sorted({c for v in vectors for c in v})
    g = None
    for _ in range(trials):
        r = rng.integers(-1000, 1001, size=(len(cols), n))
        mat = [[sum((v[c] * int(r[j, i]) for j, c in enumerate(cols) if c in v),
                    ctx.from_dict({})) for i in range(n)] for v in vectors]
        d = _det(mat)
        g = d if g is None else g.gcd(d)
        if g.is_constant():
            return one
    return g.primitive()[1]


def factors(poly: flint.fmpz_mpoly) -> list[flint.fmpz_mpoly]:
    """The distinct irreducible factors of a polynomial that involve a parameter."""
    _, facs = poly.factor()
    out = []
    for f, _ in facs:
        if not f.is_constant():
            out.append(f if f.leading_coefficient() > 0 else -f)
    return out
