"""Exact linear algebra over GF(p) for rational systems: points, null spaces, lifting to Q.

Why it is exact. Let ``A_p`` be the matrix ``grad b_i . f`` evaluated at random points of
the constraint set modulo a prime ``p``. Every true conserved combination ``theta`` (a
rational vector) reduces to a null vector of ``A_p``, so ``nullity(A_p) >= nullity``.
Each null vector of ``A_p`` is lifted to a rational vector (rational reconstruction, more
primes and CRT when needed) and certified as conserved by a randomised identity test at
fresh points modulo a fresh prime (:func:`verify_null_vectors`). When every lifted vector
passes, ``nullity >= nullity(A_p)`` as well, so the count is exact up to the stated error
probability of the identity test (about ``(D/p)^k`` for ``k`` points, ``D`` the degree).

Points on the constraint set: for each constraint, a variable in which it is linear with a
coefficient that is not identically zero is solved for (``v = -b/a``); the other variables
are drawn uniformly from GF(p) and the solved ones computed (skipping points where ``a``
vanishes). A constraint that is linear in no remaining variable makes the exact path
inapplicable (:class:`ExactNotApplicable`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from math import isqrt

import flint
import numpy as np
import sympy
import torch

from traincore import check_memory

from .evaluate import as_expr, compile_torch, eval_mod_p, is_rational_function, mod_inverse_array

__all__ = ["ExactNotApplicable", "ConstraintSolver", "constraint_solver", "random_prime",
           "rref_mod_p", "rational_reconstruct", "crt_pair", "NullBasisModP", "ExactNullSpace",
           "exact_null_space", "lift_null_basis", "pow_mod"]


class ExactNotApplicable(ValueError):
    """The exact modular path does not apply to this system (the message says why)."""


def random_prime(rng: np.random.Generator, exclude: Sequence[int] = ()) -> int:
    """A random prime in ``[2**30, 2**31)`` (products of two residues fit in int64).

    >>> p = random_prime(np.random.default_rng(0)); 2**30 <= p < 2**31 and sympy.isprime(p)
    True
    """
    while True:
        p = int(sympy.prevprime(int(rng.integers(2**30 + 2**20, 2**31))))
        if p not in exclude:
            return p


@dataclass(frozen=True)
class _Solved:
    var: sympy.Symbol
    coef: sympy.Expr   # a: the constraint is a*var + b (numerator), var = -b/a
    rest: sympy.Expr   # b


class ConstraintSolver:
    """Solve linear-in-one-variable constraints to draw points of the constraint set.

    Parameters
    ----------
    variables : sequence of sympy.Symbol
    constraints : sequence of sympy.Expr
        Rational functions that vanish on admissible states.

    Attributes
    ----------
    solved : list
        ``(variable, a, b)`` per constraint: the constraint's numerator is ``a*v + b``.
    free : list of sympy.Symbol
        Variables drawn at random.

    Raises
    ------
    ExactNotApplicable
        When a constraint is not rational, or not linear in any remaining variable.

    Examples
    --------
    >>> x, y = sympy.symbols("x y")
    >>> s = ConstraintSolver([x, y], [x * y - 1])
    >>> s.solved[0].var, s.free
    (y, [x])
    """

    def __init__(self, variables: Sequence[sympy.Symbol],
                 constraints: Sequence[sympy.Expr]) -> None:
        self.variables = list(variables)
        self.solved: list[_Solved] = []
        remaining = list(self.variables)
        subs: dict[sympy.Symbol, sympy.Expr] = {}
        for g in constraints:
            g = as_expr(g)
            if not is_rational_function(g, self.variables):
                raise ExactNotApplicable(f"the constraint {g} is not a rational function "
                                         "with exact coefficients")
            if subs:
                g = g.xreplace(subs)
            num, _ = sympy.fraction(sympy.together(g))
            poly = sympy.Poly(num, *self.variables)  # one multivariate pass: fast
            terms = poly.terms()
            best = None
            for v in reversed(remaining):  # prefer later variables: velocities in the fluids
                k = self.variables.index(v)
                if max((m[k] for m, _ in terms), default=0) != 1:
                    continue
                a_terms = [m for m, _ in terms if m[k] == 1]
                if best is None or len(a_terms) < best[0]:
                    best = (len(a_terms), v, k)
            if best is None:
                raise ExactNotApplicable(f"the constraint {g} is linear in none of the "
                                         "remaining variables, so its points cannot be drawn "
                                         "exactly")
            _, v, k = best
            a = sympy.Add(*[c * _mono(self.variables, m, k) for m, c in terms if m[k] == 1])
            b = sympy.Add(*[c * _mono(self.variables, m, k) for m, c in terms if m[k] == 0])
            best = (0, v, a, b)
            _, v, a, b = best
            self.solved.append(_Solved(v, a, b))
            remaining.remove(v)
            subs[v] = -b / a
        self.free = remaining
        self._cols = {v: i for i, v in enumerate(self.variables)}

    def sample_mod_p(self, n: int, p: int, rng: np.random.Generator
                     ) -> tuple[np.ndarray, np.ndarray]:
        """``n`` random points of the constraint set over GF(p).

        Returns
        -------
        points : ndarray of int64, shape (n, n_vars)
        ok : ndarray of bool, shape (n,)
            False where a solved variable's coefficient vanished (drop those rows).
        """
        pts = rng.integers(0, p, size=(n, len(self.variables)), dtype=np.int64)
        ok = np.ones(n, dtype=bool)
        for s in reversed(self.solved):  # later constraints do not involve earlier solved vars
            vals, good = eval_mod_p([s.coef, s.rest], self.variables, pts, p)
            ainv, invertible = mod_inverse_array(vals[:, 0], p)
            pts[:, self._cols[s.var]] = (p - vals[:, 1]) % p * ainv % p
            ok &= good & invertible
        return pts, ok

    def sample_float(self, n: int, rng: np.random.Generator, scale: float = 1.0
                     ) -> np.ndarray:
        """``n`` float points of the constraint set (free variables normal, solved ones exact).

        Returns
        -------
        ndarray of float64, shape (m, n_vars), m <= n (rows with tiny ``a`` dropped)
        """
        pts = rng.normal(scale=scale, size=(n, len(self.variables)))
        keep = np.ones(n, dtype=bool)
        for s in reversed(self.solved):
            ab = compile_torch([s.coef, s.rest], self.variables)(torch.tensor(pts)).numpy()
            a, b = ab[:, 0], ab[:, 1]
            keep &= np.abs(a) > 1e-6 * (np.abs(b) + 1)
            with np.errstate(divide="ignore", invalid="ignore"):
                pts[:, self._cols[s.var]] = -b / a
        return pts[keep & np.isfinite(pts).all(1)]


def _mono(variables: Sequence[sympy.Symbol], m: Sequence[int], skip: int) -> sympy.Expr:
    return sympy.Mul(*[v ** e for i, (v, e) in enumerate(zip(variables, m, strict=True))
                       if e and i != skip])


@lru_cache(maxsize=32)
def constraint_solver(variables: tuple[sympy.Symbol, ...],
                      constraints: tuple[sympy.Expr, ...]) -> ConstraintSolver:
    """A cached :class:`ConstraintSolver` (building one expands the constraints)."""
    return ConstraintSolver(variables, constraints)


def pow_mod(b: np.ndarray, e: int, p: int) -> np.ndarray:
    """Elementwise ``b**e mod p`` for int64 residues ``b`` (``p < 2**31``)."""
    b = np.asarray(b, dtype=np.int64) % p
    out = np.ones_like(b)
    while e:
        if e & 1:
            out = out * b % p
        e >>= 1
        if e:
            b = b * b % p
    return out


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
    from math import gcd

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


@dataclass
class ExactNullSpace:
    """Rational null basis of ``A`` (columns = basis functions), from modular arithmetic.

    Attributes
    ----------
    vectors : list of dict of int to sympy.Rational
        One sparse vector per conserved combination: column index -> coefficient.
    nullity : int
    primes : list of int
        Primes used (for the RREF, then CRT).
    verified : bool
        True when every vector passed the identity test at fresh points mod a fresh prime.
    check_points : int
        Points per vector in that test.
    check_prime : int
    rows : int
        Rows (points) used per prime, for the largest block.
    notes : list of str
    """

    vectors: list[dict[int, sympy.Rational]]
    nullity: int
    primes: list[int]
    verified: bool
    check_points: int
    check_prime: int
    rows: int
    notes: list[str]


class ModularSystem:
    """A rational system and basis reduced mod primes: points, f values and ``A mod p``."""

    def __init__(self, system, basis, solver: ConstraintSolver) -> None:
        self.system = system
        self.basis = basis
        self.solver = solver

    def matrix(self, n: int, p: int, rng: np.random.Generator,
               cols: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``A mod p`` at ``n`` random points of the constraint set (rows where defined).

        Returns
        -------
        a : ndarray of int64, shape (n_ok, n_cols)
        pts : ndarray of int64, shape (n_ok, n_vars)
        """
        pts_all, f_all = [], []
        need, rounds = n, 0
        while need > 0:
            rounds += 1
            if rounds > 50:
                raise ExactNotApplicable(f"f or the constraints are undefined (mod {p}) at "
                                         "almost every random point of the admissible set")
            pts, ok = self.solver.sample_mod_p(need + 4, p, rng)
            f, ok_f = eval_mod_p(self.system.equations, self.system.variables, pts, p)
            keep = ok & ok_f
            pts_all.append(pts[keep][:need])
            f_all.append(f[keep][:need])
            need -= int(min(keep.sum(), need))
        pts = np.concatenate(pts_all)
        f = np.concatenate(f_all)
        if cols is None or not hasattr(self.basis, "exponents"):
            a, ok = self.basis.lie_mod_p(pts, f, p)
            if cols is not None:
                a = a[:, cols]
        else:
            a, ok = self.basis.lie_mod_p(pts, f, p, cols=cols)
        return a[ok], pts[ok]


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
        Column blocks that can be solved independently (:func:`aipoincare.basis.weight_blocks`).
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
    mod = ModularSystem(system, basis, constraint_solver(tuple(system.variables),
                                                        tuple(system.constraints)))
    primes: list[int] = []
    notes: list[str] = []
    n_rows = max(len(b) for b in blocks) + margin
    vectors: list[dict[int, sympy.Rational]] = []
    # one point set per prime, shared by all blocks (a block uses a prefix of the rows)
    cache: dict[int, np.ndarray] = {}

    def full_matrix(p: int) -> np.ndarray:
        if p not in cache:
            cache[p] = mod.matrix(n_rows, p, rng)[0]
        return cache[p]

    check_prime = random_prime(rng)
    checks, _ = mod.matrix(check_points, check_prime, rng)  # shape (check_points, size)
    all_ok = True
    for block in blocks:
        rows = len(block) + margin
        base: NullBasisModP | None = None
        residues: np.ndarray | None = None
        modulus = 1
        lifted = None
        for attempt in range(max_primes):
            if attempt >= len(primes):
                primes.append(random_prime(rng, exclude=primes + [check_prime]))
            p = primes[attempt]
            a = full_matrix(p)[:rows, block]
            nb = rref_mod_p(a, p)
            if base is None or nb.rank > base.rank:
                base, residues, modulus = nb, nb.values.astype(object), p
            elif nb.rank == base.rank and np.array_equal(nb.pivots, base.pivots):
                residues = crt_pair(residues, modulus, nb.values, p)
                modulus *= p
            else:
                continue  # an unlucky prime (smaller rank): ignore it
            if base.nullity == 0:
                lifted = []
                break
            lifted = lift_null_basis(np.asarray(residues), modulus)
            if lifted is None:
                continue
            if _check(lifted, base, block, checks, check_prime):
                break
            lifted = None
        if lifted is None:
            raise ExactNotApplicable(f"the null space of a block of {len(block)} basis "
                                     f"functions could not be lifted to rationals and verified "
                                     f"with {max_primes} primes")
        for k, row in enumerate(lifted):
            vec = {int(block[base.free[k]]): sympy.Integer(1)}
            for r, c in enumerate(row):
                if c != 0:
                    vec[int(block[base.pivots[r]])] = c
            vectors.append(dict(sorted(vec.items())))
    return ExactNullSpace(vectors=vectors, nullity=len(vectors), primes=primes,
                          verified=all_ok, check_points=check_points,
                          check_prime=check_prime, rows=n_rows, notes=notes)


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
