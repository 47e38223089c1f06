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

import numpy as np
import sympy

from traincore import check_memory, check_time

from . import gfp
from . import workers as workers_mod
from .constraints import ConstraintSolver, constraint_solver
from .errors import ExactNotApplicable
from .evaluate import eval_mod_p

__all__ = ["random_prime", "random_gfp_prime", "rref_mod_p", "rational_reconstruct",
           "crt_pair", "NullBasisModP", "ExactNullSpace", "exact_null_space", "exact_plan",
           "lift_null_basis", "lift_rows", "modular_matrix"]


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
    pivots, free, values = gfp.flint_null_basis(a, p)
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


def lift_rows(values: np.ndarray, modulus: int) -> list[dict[int, tuple[int, int]]] | None:
    """Rational reconstruction of the nonzero entries, row by row, or None if one fails.

    Returns
    -------
    list of dict of int to (int, int)
        Per row: column -> (numerator, denominator), nonzero entries only.
    """
    out = []
    for row in np.asarray(values):
        lifted = {}
        for r in np.nonzero(row)[0].tolist():
            rs = rational_reconstruct(int(row[r]), modulus)
            if rs is None:
                return None
            lifted[r] = rs
        out.append(lifted)
    return out


def lift_null_basis(values: np.ndarray, modulus: int) -> list[list[sympy.Rational]] | None:
    """Rational reconstruction of every entry, or None if any entry fails."""
    rows = lift_rows(values, modulus)
    if rows is None:
        return None
    width = np.asarray(values).shape[1]
    return [[sympy.Rational(*row[r]) if r in row else sympy.Integer(0) for r in range(width)]
            for row in rows]


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


def _points_mod_p(system, solver: ConstraintSolver, n: int, p: int,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random points of the constraint set mod p where f is defined, and f there."""
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
    return np.concatenate(pts_all), np.concatenate(f_all)


def modular_matrix(system, basis, solver: ConstraintSolver, n: int, p: int,
                   rng: np.random.Generator) -> np.ndarray:
    """``A mod p`` at ``n`` random points of the constraint set (rows where it is defined).

    Returns
    -------
    ndarray of int64, shape (n_ok, basis.size), n_ok <= n
    """
    pts, f = _points_mod_p(system, solver, n, p, rng)
    a, ok = basis.lie_mod_p(pts, f, p)
    return a[ok]


def exact_plan(basis, blocks: Sequence[np.ndarray], margin: int = 12,
               workers: int = 1) -> tuple[int, str]:
    """Estimated peak memory of the exact ranks (bytes) and a one-line description.

    ``workers`` blocks run at once: the largest ones together in the worst case.
    """
    sizes = sorted((len(b) for b in blocks), reverse=True)
    each = [workers_mod.task_bytes(n + margin, n, workers_mod.engine_for(n)) for n in sizes]
    peak = sum(sorted(each, reverse=True)[:max(1, workers)])
    engines = sorted({workers_mod.engine_for(n) for n in sizes})
    return peak, (f"exact ranks of {len(sizes)} block(s) (largest {sizes[0]} x {sizes[0]}, "
                  f"{' and '.join(engines)}) on {workers} worker(s)")


class _BlockState:
    """One block's way to its rational null basis: RREFs mod primes, CRT, lift, verify."""

    def __init__(self, block: np.ndarray) -> None:
        self.block = block
        self.base: NullBasisModP | None = None
        self.residues: np.ndarray | None = None
        self.modulus = 1
        self.vectors: list[dict[int, sympy.Rational]] | None = None  # set when verified
        self.tries = 0

    def add(self, nb: NullBasisModP, checks: np.ndarray, check_prime: int) -> bool:
        """Take one RREF mod p; True when the block is solved (lifted and verified)."""
        self.tries += 1
        p = nb.p
        if self.base is None or nb.rank > self.base.rank:
            self.base, self.residues, self.modulus = nb, nb.values.astype(object), p
        elif nb.rank == self.base.rank and np.array_equal(nb.pivots, self.base.pivots):
            self.residues = crt_pair(self.residues, self.modulus, nb.values, p)
            self.modulus *= p
        else:
            return False  # an unlucky prime (smaller rank): ignore it
        if self.base.nullity == 0:
            self.vectors = []
            return True
        lifted = lift_rows(np.asarray(self.residues), self.modulus)
        if lifted is not None and _check(lifted, self.base, self.block, checks, check_prime):
            self.vectors = [_sparse(row, self.base, self.block, k)
                            for k, row in enumerate(lifted)]
            return True
        return False


def _tasks(system, basis, solver, states: list[_BlockState], margin: int, used: list[int],
           rng: np.random.Generator) -> list[workers_mod.BlockTask]:
    """One task per unsolved block at a fresh prime per engine (one point set per prime)."""
    from .basis import PolynomialBasis

    tasks = []
    pending = [k for k, st in enumerate(states) if st.vectors is None]
    for engine in ("flint", "blas"):
        mine = [k for k in pending if workers_mod.engine_for(len(states[k].block)) == engine]
        if not mine:
            continue
        p = random_prime(rng, exclude=used) if engine == "flint" else \
            random_gfp_prime(rng, exclude=used)
        used.append(p)
        n_rows = max(len(states[k].block) for k in mine) + margin
        pts, f = _points_mod_p(system, solver, n_rows, p, rng)
        full = None
        if not isinstance(basis, PolynomialBasis):
            full, ok = basis.lie_mod_p(pts, f, p)
            full = full[ok]
        for k in mine:
            block = states[k].block
            rows = len(block) + margin
            if full is not None:
                tasks.append(workers_mod.BlockTask(k, p, engine,
                                                   matrix=np.ascontiguousarray(
                                                       full[:rows][:, block])))
            else:
                tasks.append(workers_mod.BlockTask(k, p, engine,
                                                   exponents=basis.exponents[block],
                                                   points=pts[:rows], f=f[:rows]))
    return tasks


def random_gfp_prime(rng: np.random.Generator, exclude: Sequence[int] = ()) -> int:
    """A random prime for the float64 elimination of :mod:`aipoincare.gfp` (21 bits).

    >>> p = random_gfp_prime(np.random.default_rng(0)); 2**20 <= p < 2**21
    True
    """
    while True:
        p = int(sympy.prevprime(int(rng.integers(gfp.PRIME_LOW + 2**16, gfp.PRIME_HIGH))))
        if p not in exclude:
            return p


def exact_null_space(system, basis, blocks: Sequence[np.ndarray], rng: np.random.Generator,
                     margin: int = 12, max_primes: int = 16, check_points: int = 4,
                     workers: int = 1, client=None, done=None) -> ExactNullSpace:
    """Exact conserved subspace of ``basis`` for a rational ``system``, block by block.

    Each round sends one task per unsolved block (:class:`aipoincare.workers.BlockTask`:
    the block's RREF mod a fresh prime) to the workers; the results are combined here
    (CRT over the primes of a block), lifted to rationals and verified at fresh points.

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
        Rounds (primes per block) before giving up on a block.
    check_points : int
        Fresh points of the identity test per vector.
    workers : int
        Local worker threads for the blocks.
    client : distributed.Client, optional
        Run the blocks on a Dask cluster instead.
    done : callable, optional
        ``done(size)`` after each block's rank (progress), with the block's column count.

    Raises
    ------
    ExactNotApplicable
        When lifting or verification fails after ``max_primes`` primes.
    MemoryBudgetError
        The estimated memory of the largest blocks running at once is over the budget.
    """
    peak, what = exact_plan(basis, blocks, margin, workers if client is None else 1)
    check_memory(peak, what, "lower the degree or --workers, or pass exact=False for "
                 "numerical counts")
    solver = constraint_solver(tuple(system.variables), tuple(system.constraints))
    check_prime = random_prime(rng)
    used: list[int] = [check_prime]
    checks = modular_matrix(system, basis, solver, check_points, check_prime, rng)
    states = [_BlockState(np.asarray(b)) for b in blocks]
    report = None if done is None else (lambda t: done(t.shape[1]))
    for _ in range(max_primes):
        check_time("the exact counts")
        tasks = _tasks(system, basis, solver, states, margin, used, rng)
        if not tasks:
            break
        for task, nb in zip(tasks, workers_mod.run_tasks(tasks, workers, client, report),
                            strict=True):
            states[task.block].add(NullBasisModP(task.p, *nb), checks, check_prime)
    for st in states:
        if st.vectors is None:
            raise ExactNotApplicable(f"the null space of a block of {len(st.block)} basis "
                                     f"functions could not be lifted to rationals and verified "
                                     f"with {st.tries} primes")
    vectors = [v for st in states for v in st.vectors]
    return ExactNullSpace(vectors=vectors, primes=used[1:], check_points=check_points,
                          check_prime=check_prime, rows=max(map(len, blocks)) + margin)


def _sparse(row: dict[int, tuple[int, int]], nb: NullBasisModP, block: np.ndarray, k: int
            ) -> dict[int, sympy.Rational]:
    """Null vector ``k`` of a block as basis column -> coefficient, in column order."""
    vec = {int(block[nb.free[k]]): sympy.Integer(1)}
    for r, (num, den) in row.items():
        vec[int(block[nb.pivots[r]])] = sympy.Rational(num, den)
    return dict(sorted(vec.items()))


def _check(lifted: list[dict[int, tuple[int, int]]], nb: NullBasisModP, block: np.ndarray,
           checks: np.ndarray, q: int) -> bool:
    """Identity test: A(fresh points) @ theta == 0 mod q for every lifted vector."""
    sub = checks[:, block]  # shape (k, block)
    theta = np.zeros((len(block), len(lifted)), dtype=np.int64)
    for k, row in enumerate(lifted):
        theta[nb.free[k], k] = 1
        for r, (num, den) in row.items():
            theta[nb.pivots[r], k] = num % q * pow(den, -1, q) % q
    acc = np.zeros((sub.shape[0], len(lifted)), dtype=np.int64)
    for i in np.nonzero(theta.any(1))[0]:  # row-by-column products kept below 2**62
        nz = theta[i] != 0
        acc[:, nz] = (acc[:, nz] + sub[:, i:i + 1] * theta[i, nz][None, :]) % q
    return not acc.any()
