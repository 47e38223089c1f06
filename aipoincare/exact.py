"""Exact linear algebra over GF(p) for rational systems: points, null spaces, lifting to Q.

Why it is exact. Let ``A_p`` be the matrix ``grad b_i . f`` evaluated at random points of
the constraint set modulo a prime ``p``. Every true conserved combination ``theta`` (a
rational vector) reduces to a null vector of ``A_p``, so ``nullity(A_p) >= nullity``.
Each null vector of ``A_p`` is lifted to a rational vector (rational reconstruction, more
primes and CRT when needed) and certified as conserved by a randomised identity test at
fresh points modulo a fresh prime. When every lifted vector
passes, ``nullity >= nullity(A_p)`` as well, so the count is exact up to the stated error
probability of the identity test (about ``(D/p)^k`` for ``k`` points, ``D`` the degree).

The points of the constraint set come from :mod:`aipoincare.constraints`; each block of
columns (:mod:`aipoincare.scaling`) is solved on its own by :func:`_block_null_space`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from math import gcd, isqrt

import flint
import numpy as np
import sympy

from traincore import check_memory, check_time

from .constraints import ConstraintSolver, constraint_solver
from .errors import ExactNotApplicable
from .evaluate import eval_mod_p

__all__ = ["random_prime", "rref_mod_p", "rational_reconstruct", "crt_pair", "NullBasisModP",
           "ExactNullSpace", "exact_null_space", "lift_null_basis", "modular_matrix"]


def random_prime(rng: np.random.Generator, exclude: Sequence[int] = ()) -> int:
    """A random prime in ``[2**30, 2**31)`` (products of two residues fit in int64).

    >>> p = random_prime(np.random.default_rng(0)); 2**30 <= p < 2**31 and sympy.isprime(p)
    True
    """
    while True:
        p = int(sympy.prevprime(int(rng.integers(2**30 + 2**20, 2**31))))
        if p not in exclude:
            return p


# ------------------------------------------------------------------ RREF and lifting


@dataclass(frozen=True)
class NullBasisModP:
    """The canonical (RREF) null basis of a matrix over GF(p).

    Attributes
    ----------
    p : int
    pivots : ndarray of int64, shape (rank,)
        Pivot columns of the RREF.
    free : ndarray of int64, shape (nullity,)
        Free columns; null vector ``k`` has a 1 at ``free[k]`` and 0 at the other free columns.
    values : ndarray of int64, shape (nullity, rank)
        Entry of null vector ``k`` at pivot column ``pivots[r]`` (residues in [0, p)).
    """

    p: int
    pivots: np.ndarray
    free: np.ndarray
    values: np.ndarray

    @property
    def rank(self) -> int:
        return len(self.pivots)

    @property
    def nullity(self) -> int:
        return len(self.free)


def rref_mod_p(a: np.ndarray, p: int) -> NullBasisModP:
    """Rank and canonical null basis of ``a`` over GF(p) with FLINT's ``nmod_mat``.

    Parameters
    ----------
    a : ndarray of int64, shape (n_rows, n_cols)
        Residues in [0, p).
    p : int

    Examples
    --------
    >>> nb = rref_mod_p(np.array([[1, 1, 0], [2, 2, 0]]), 7)
    >>> nb.pivots.tolist(), nb.free.tolist(), nb.values.tolist()
    ([0], [1, 2], [[6], [0]])
    """
    n_rows, n_cols = a.shape
    if n_rows == 0:
        return NullBasisModP(p, np.zeros(0, np.int64), np.arange(n_cols),
                             np.zeros((n_cols, 0), np.int64))
    mat = flint.nmod_mat(a.tolist(), p)
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
    return NullBasisModP(p, pivots, free, values)


def rational_reconstruct(a: int, m: int) -> tuple[int, int] | None:
    """The fraction ``r/s`` with ``r = a s (mod m)``, ``|r|, s <= sqrt(m/2)``, or None.

    >>> m = 1000003; rational_reconstruct(-3 * pow(7, -1, m) % m, m)
    (-3, 7)
    """
    a %= m
    bound = isqrt(m // 2)
    r0, r1 = m, a
    s0, s1 = 0, 1
    while r1 > bound:
        q = r0 // r1
        r0, r1 = r1, r0 - q * r1
        s0, s1 = s1, s0 - q * s1
    if s1 == 0 or abs(s1) > bound:
        return None
    if s1 < 0:
        r1, s1 = -r1, -s1
    if gcd(r1, s1) != 1:
        return None
    return r1, s1


def crt_pair(a1: np.ndarray | int, m1: int, a2: np.ndarray | int, m2: int) -> object:
    """Chinese remaindering of residues (object arrays of Python ints for big moduli)."""
    inv = pow(m1, -1, m2)
    a1 = np.asarray(a1, dtype=object)
    a2 = np.asarray(a2, dtype=object)
    return (a1 + m1 * (((a2 - a1) % m2) * inv % m2)) % (m1 * m2)


def lift_null_basis(values: np.ndarray, modulus: int) -> list[list[sympy.Rational]] | None:
    """Rational reconstruction of every entry, or None if any entry fails."""
    out = []
    for row in values.tolist():
        lifted = []
        for v in row:
            v = int(v)
            if v == 0:
                lifted.append(sympy.Integer(0))
                continue
            rs = rational_reconstruct(v, modulus)
            if rs is None:
                return None
            lifted.append(sympy.Rational(*rs))
        out.append(lifted)
    return out


# ------------------------------------------------------------------ the exact driver


@dataclass(frozen=True)
class ExactNullSpace:
    """Rational null basis of ``A`` (columns = basis functions), from modular arithmetic.

    Every vector passed the identity test at fresh points mod a fresh prime (otherwise
    :func:`exact_null_space` raises), so the fields are the evidence of that test.

    Attributes
    ----------
    vectors : list of dict of int to sympy.Rational
        One sparse vector per conserved combination: column index -> coefficient.
    primes : list of int
        Primes used (for the RREF, then CRT).
    check_points : int
        Fresh points of the identity test.
    check_prime : int
        The prime of the identity test.
    rows : int
        Rows (points) used per prime, for the largest block.
    """

    vectors: list[dict[int, sympy.Rational]]
    primes: list[int]
    check_points: int
    check_prime: int
    rows: int

    @property
    def nullity(self) -> int:
        """Dimension of the conserved subspace."""
        return len(self.vectors)


def modular_matrix(system, basis, solver: ConstraintSolver, n: int, p: int,
                   rng: np.random.Generator) -> np.ndarray:
    """``A mod p`` at ``n`` random points of the constraint set (rows where it is defined).

    Returns
    -------
    ndarray of int64, shape (n_ok, basis.size), n_ok <= n
    """
    pts_all, f_all = [], []
    need, rounds = n, 0
    while need > 0:
        rounds += 1
        if rounds > 50:
            raise ExactNotApplicable(f"f or the constraints are undefined (mod {p}) at "
                                     "almost every random point of the admissible set")
        pts, ok = solver.sample_mod_p(need + 4, p, rng)
        f, ok_f = eval_mod_p(system.equations, system.variables, pts, p)
        keep = ok & ok_f
        pts_all.append(pts[keep][:need])
        f_all.append(f[keep][:need])
        need -= int(min(keep.sum(), need))
    a, ok = basis.lie_mod_p(np.concatenate(pts_all), np.concatenate(f_all), p)
    return a[ok]


def exact_null_space(system, basis, blocks: Sequence[np.ndarray], rng: np.random.Generator,
                     margin: int = 12, max_primes: int = 10, check_points: int = 4
                     ) -> ExactNullSpace:
    """Exact conserved subspace of ``basis`` for a rational ``system``, block by block.

    Parameters
    ----------
    system : aipoincare.System
        Rational equations and constraints with exact coefficients.
    basis : aipoincare.basis.Basis
        A rational basis.
    blocks : sequence of ndarray of int64
        Column blocks that can be solved independently (:func:`aipoincare.scaling.scaling_blocks`).
    rng : numpy.random.Generator
    margin : int
        Extra rows beyond the block size (rank deficiency by bad luck has probability about
        ``rows * degree / p`` per prime and is caught by the verification anyway).
    max_primes : int
        Primes tried before giving up on a block (CRT between primes with equal pivots).
    check_points : int
        Fresh points of the identity test per vector.

    Raises
    ------
    ExactNotApplicable
        When lifting or verification fails after ``max_primes`` primes.
    """
    biggest = max(len(b) for b in blocks)
    # int64 matrix, FLINT's copy and the Python ints of the conversion (~40 bytes each)
    check_memory(56 * (biggest + margin) * max(biggest, basis.size // 8 + 1),
                 f"the exact rank of a {biggest + margin} x {biggest} matrix mod p",
                 "lower the degree, or pass exact=False for numerical counts")
    solver = constraint_solver(tuple(system.variables), tuple(system.constraints))
    n_rows = biggest + margin
    primes: list[int] = []
    matrices: dict[int, np.ndarray] = {}  # one point set per prime, shared by all blocks

    def matrix(attempt: int) -> tuple[int, np.ndarray]:
        """The prime of this attempt and ``A mod p`` (drawn on first use)."""
        if attempt >= len(primes):
            primes.append(random_prime(rng, exclude=primes + [check_prime]))
        p = primes[attempt]
        if p not in matrices:
            matrices[p] = modular_matrix(system, basis, solver, n_rows, p, rng)
        return p, matrices[p]

    check_prime = random_prime(rng)
    checks = modular_matrix(system, basis, solver, check_points, check_prime, rng)
    vectors: list[dict[int, sympy.Rational]] = []
    for block in blocks:
        vectors += _block_null_space(block, len(block) + margin, matrix, checks, check_prime,
                                     max_primes)
    return ExactNullSpace(vectors=vectors, primes=primes, check_points=check_points,
                          check_prime=check_prime, rows=n_rows)


def _block_null_space(block: np.ndarray, rows: int, matrix, checks: np.ndarray,
                      check_prime: int, max_primes: int) -> list[dict[int, sympy.Rational]]:
    """The rational null basis of one block: RREF mod successive primes, CRT, lift, verify.

    ``matrix(attempt)`` gives the prime of each attempt and ``A mod p``; the rows of the
    block are the first ``rows`` of it. This is the unit of work per block (and prime).
    """
    base: NullBasisModP | None = None
    residues: np.ndarray | None = None
    modulus = 1
    for attempt in range(max_primes):
        check_time("the exact counts")  # per block and prime: the unit of exact work
        p, a = matrix(attempt)
        nb = rref_mod_p(a[:rows, block], p)
        if base is None or nb.rank > base.rank:
            base, residues, modulus = nb, nb.values.astype(object), p
        elif nb.rank == base.rank and np.array_equal(nb.pivots, base.pivots):
            residues = crt_pair(residues, modulus, nb.values, p)
            modulus *= p
        else:
            continue  # an unlucky prime (smaller rank): ignore it
        if base.nullity == 0:
            return []
        lifted = lift_null_basis(np.asarray(residues), modulus)
        if lifted is not None and _check(lifted, base, block, checks, check_prime):
            return [_sparse(row, base, block, k) for k, row in enumerate(lifted)]
    raise ExactNotApplicable(f"the null space of a block of {len(block)} basis functions "
                             f"could not be lifted to rationals and verified with {max_primes} "
                             "primes")


def _sparse(row: list[sympy.Rational], nb: NullBasisModP, block: np.ndarray, k: int
            ) -> dict[int, sympy.Rational]:
    """Null vector ``k`` of a block as basis column -> coefficient, in column order."""
    vec = {int(block[nb.free[k]]): sympy.Integer(1)}
    for r, c in enumerate(row):
        if c != 0:
            vec[int(block[nb.pivots[r]])] = c
    return dict(sorted(vec.items()))


def _check(lifted: list[list[sympy.Rational]], nb: NullBasisModP, block: np.ndarray,
           checks: np.ndarray, q: int) -> bool:
    """Identity test: A(fresh points) @ theta == 0 mod q for every lifted vector."""
    sub = checks[:, block]  # shape (k, block)
    theta = np.zeros((len(block), len(lifted)), dtype=np.int64)
    for k, row in enumerate(lifted):
        theta[nb.free[k], k] = 1
        for r, c in enumerate(row):
            if c != 0:
                theta[nb.pivots[r], k] = int(c.p) % q * pow(int(c.q), -1, q) % q
    acc = np.zeros((sub.shape[0], len(lifted)), dtype=np.int64)
    for i in range(len(block)):  # row-by-column products kept below 2**62
        nz = theta[i] != 0
        if nz.any():
            acc[:, nz] = (acc[:, nz] + sub[:, i:i + 1] * theta[i, nz][None, :]) % q
    return not acc.any()
