"""Exact elimination over GF(p) on float64 BLAS: rank and canonical null basis of a block.

Why float64 is exact here. Residues are kept centred, ``|a| <= p/2``, with ``p < 2**21``:
a product of two is below ``2**40`` and a sum of :data:`INNER` (4096) of them below
``2**52``, so every matrix product of at most 4096 terms is computed exactly by BLAS in
double precision and reduced mod p afterwards (delayed reduction, as in FFLAS-FFPACK).
Longer products are split into slices of 4096 and reduced after each. This runs the exact
rank at the speed of floating-point matrix multiplication, several times faster than
integer elimination and without converting millions of entries to Python integers.

The elimination is a recursive column-wise LU with row pivoting (Toledo's recursion): left
half, triangular solve and one matrix product for the right half, right half. It finds the
same pivot columns as a reduced row echelon form (the lexicographically first independent
columns), so :func:`null_basis` returns the canonical RREF null basis of
:class:`aipoincare.exact.NullBasisModP`: the same vectors as FLINT's ``nmod_mat.rref``.
"""

from __future__ import annotations

import flint
import numpy as np

from traincore import check_time

__all__ = ["PRIME_LOW", "PRIME_HIGH", "INNER", "centre", "matmul_mod", "echelon",
           "null_basis", "flint_null_basis"]

#: Primes for float64 elimination lie in [PRIME_LOW, PRIME_HIGH): ``INNER * (p/2)**2`` plus
#: one residue stays below ``2**53``.
PRIME_LOW, PRIME_HIGH = 2**20, 2**21
#: Longest exact float64 dot product of centred residues mod a prime below ``PRIME_HIGH``.
INNER = 4096
#: Columns eliminated one by one at the leaves of the recursion (then matrix products).
_LEAF = 16
#: Rows of one slice of a product, so the temporaries stay small.
_ROWS = 2048


def centre(x: np.ndarray, p: int) -> np.ndarray:
    """Residues of exact float64 integers ``|x| < 2**53``, centred in [-p/2, p/2], in place.

    >>> centre(np.array([5.0, -4.0, 10.0]), 7).tolist()
    [-2.0, 3.0, 3.0]
    """
    q = np.rint(x / p)
    q *= p
    x -= q
    return x


def _check_prime(p: int) -> None:
    if not PRIME_LOW <= p < PRIME_HIGH:
        raise ValueError(f"float64 elimination needs a prime in [2**20, 2**21); got {p}.")


def matmul_mod(a: np.ndarray, b: np.ndarray, p: int) -> np.ndarray:
    """``a @ b`` mod p, centred, for centred float64 residues (exact).

    >>> p = 2096147
    >>> a = np.array([[2.0**19, 3.0]]); b = np.array([[2.0**19], [5.0]])
    >>> int(matmul_mod(a, b, p)[0, 0]) % p == (2**38 + 15) % p
    True
    """
    out = np.zeros((a.shape[0], b.shape[1]))
    _sub_matmul(out, a, b, p, sign=-1.0)
    return out


def _sub_matmul(c: np.ndarray, a: np.ndarray, b: np.ndarray, p: int,
                sign: float = 1.0) -> None:
    """``c -= sign * a @ b`` mod p in place (centred), in slices of rows and of INNER terms."""
    k = a.shape[1]
    if k == 0 or c.size == 0:
        return
    for r0 in range(0, c.shape[0], _ROWS):
        rows = slice(r0, r0 + _ROWS)
        for s in range(0, k, INNER):
            prod = a[rows, s:s + INNER] @ b[s:s + INNER]
            if sign == 1.0:
                c[rows] -= prod
            else:
                c[rows] += prod
            centre(c[rows], p)


def _inv(v: float, p: int) -> int:
    return pow(int(v) % p, -1, p)


def _leaf(a: np.ndarray, r0: int, c0: int, c1: int, p: int, pivots: list[int]) -> int:
    """Eliminate columns c0..c1 one by one below row r0; returns the next pivot row.

    Reduction is delayed: each rank-one update adds less than ``2**40`` to an entry, so
    the at most :data:`_LEAF` updates of a leaf stay exact; a column is reduced just
    before its pivot search, the whole leaf once at the end.
    """
    r = r0
    m = a.shape[0]
    for j in range(c0, c1):
        if r == m:
            break
        col = a[r:, j]
        centre(col, p)
        nz = np.flatnonzero(col)
        if nz.size == 0:
            continue  # a free column
        i = r + int(nz[0])
        if i != r:
            a[[r, i]] = a[[i, r]]  # whole rows: multipliers stored left move along
        centre(a[r, j + 1:c1], p)  # the pivot row: its factors must be residues
        inv = _inv(a[r, j], p)
        low = a[r + 1:, j]
        low *= inv
        centre(low, p)  # the multipliers, stored in place (|a| inv < 2**41)
        if j + 1 < c1 and r + 1 < m:
            a[r + 1:, j + 1:c1] -= np.multiply.outer(low, a[r, j + 1:c1])
        pivots.append(j)
        r += 1
    centre(a[r0:, c0:c1], p)
    return r


def _solve_unit_lower(low: np.ndarray, b: np.ndarray, p: int) -> None:
    """``b <- L^-1 b`` in place, ``L`` unit lower triangular from the strict part of ``low``."""
    n = low.shape[0]
    if n <= _LEAF:
        for i in range(1, n):
            b[i] -= low[i, :i] @ b[:i]  # at most _LEAF terms: exact
            centre(b[i], p)
        return
    h = n // 2
    _solve_unit_lower(low[:h, :h], b[:h], p)
    _sub_matmul(b[h:], low[h:, :h], b[:h], p)
    _solve_unit_lower(low[h:, h:], b[h:], p)


def _solve_upper(up: np.ndarray, b: np.ndarray, p: int) -> None:
    """``b <- U^-1 b`` in place, ``U`` upper triangular (the upper part of ``up``)."""
    n = up.shape[0]
    if n <= _LEAF:
        for i in range(n - 1, -1, -1):
            if i + 1 < n:
                b[i] -= up[i, i + 1:] @ b[i + 1:]
                centre(b[i], p)
            b[i] *= _inv(up[i, i], p)
            centre(b[i], p)
        return
    h = n // 2
    _solve_upper(up[h:, h:], b[h:], p)
    _sub_matmul(b[:h], up[:h, h:], b[h:], p)
    _solve_upper(up[:h, :h], b[:h], p)


def _echelon(a: np.ndarray, r0: int, c0: int, c1: int, p: int, pivots: list[int]) -> int:
    """Recursive column LU of ``a[r0:, c0:c1]`` (rows swapped whole); next pivot row."""
    if c1 - c0 <= _LEAF:
        return _leaf(a, r0, c0, c1, p, pivots)
    h = c0 + (c1 - c0) // 2
    first = len(pivots)
    r1 = _echelon(a, r0, c0, h, p, pivots)
    left = pivots[first:]
    if left and r1 < a.shape[0]:
        cols = np.asarray(left)
        low = a[r0:r1][:, cols]  # its strict lower part: the unit lower factor L11
        right = a[r0:r1, h:c1]
        _solve_unit_lower(low, right, p)  # U12 = L11^-1 A12
        _sub_matmul(a[r1:, h:c1], a[r1:][:, cols], right, p)  # A22 -= L21 U12
    elif left:
        cols = np.asarray(left)
        _solve_unit_lower(a[r0:r1][:, cols], a[r0:r1, h:c1], p)
    check_time("the exact ranks")
    return _echelon(a, r1, h, c1, p, pivots)


def echelon(a: np.ndarray, p: int) -> tuple[np.ndarray, list[int]]:
    """Row echelon form of ``a`` mod p (in place) and its pivot columns.

    Parameters
    ----------
    a : ndarray of float64, shape (m, n)
        Centred residues (exact integers); overwritten: its first ``rank`` rows become the
        echelon rows (entries left of each pivot hold multipliers), the rest is scratch.
    p : int
        A prime in [PRIME_LOW, PRIME_HIGH).

    Returns
    -------
    a : ndarray
        The same array.
    pivots : list of int
        Pivot columns, increasing (the lexicographically first independent columns).
    """
    _check_prime(p)
    pivots: list[int] = []
    _echelon(a, 0, 0, a.shape[1], p, pivots)
    return a, pivots


def null_basis(a: np.ndarray, p: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Canonical null basis of ``a`` mod p: the free columns set to unit vectors.

    Parameters
    ----------
    a : ndarray of float64, shape (m, n)
        Centred residues; overwritten.
    p : int
        A prime in [PRIME_LOW, PRIME_HIGH).

    Returns
    -------
    pivots : ndarray of int64, shape (rank,)
    free : ndarray of int64, shape (n - rank,)
    values : ndarray of int64, shape (n - rank, rank)
        Entry of null vector ``k`` at column ``pivots[r]`` (residues in [0, p)); the vector
        is 1 at ``free[k]`` and 0 at the other free columns.

    Examples
    --------
    >>> piv, free, val = null_basis(np.array([[1.0, 1.0, 0.0], [2.0, 2.0, 0.0]]), 2096147)
    >>> piv.tolist(), free.tolist(), val.tolist()
    ([0], [1, 2], [[2096146], [0]])
    """
    n = a.shape[1]
    a, piv = echelon(a, p)
    rank = len(piv)
    pivots = np.asarray(piv, dtype=np.int64)
    free = np.setdiff1d(np.arange(n), pivots)
    if rank == 0 or free.size == 0:
        return pivots, free, np.zeros((free.size, rank), dtype=np.int64)
    top = a[:rank]
    cols = np.arange(n)
    # U entries are those at or right of each row's pivot; left of it: multipliers or 0
    upper = np.where(cols[None, :] >= pivots[:, None], top, 0.0)
    x = -upper[:, free]  # shape (rank, nullity): solve U_piv x = -U_free
    _solve_upper(upper[:, pivots], x, p)
    values = np.mod(x.T, p).astype(np.int64)
    return pivots, free, values


def flint_null_basis(a: np.ndarray, p: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`null_basis` with FLINT's ``nmod_mat.rref``: any prime below ``2**63``.

    Parameters
    ----------
    a : ndarray of int64, shape (m, n)
        Residues in [0, p).
    p : int

    Returns
    -------
    pivots, free, values
        As in :func:`null_basis`.
    """
    n_rows, n_cols = a.shape
    if n_rows == 0:
        return (np.zeros(0, np.int64), np.arange(n_cols), np.zeros((n_cols, 0), np.int64))
    mat = flint.nmod_mat(n_rows, n_cols, np.asarray(a, dtype=np.int64).ravel().tolist(), p)
    r, rank = mat.rref()
    if rank:
        top = np.array([int(v) for v in r.entries()[: rank * n_cols]],
                       dtype=np.int64).reshape(rank, n_cols)
    else:
        top = np.zeros((0, n_cols), dtype=np.int64)
    pivots = np.argmax(top != 0, axis=1).astype(np.int64)
    free = np.setdiff1d(np.arange(n_cols), pivots)
    # null vector for free column j: x_j = 1, x_pivot(r) = -R[r, j]
    values = (-top[:, free].T) % p  # shape (nullity, rank)
    return pivots, free, values
