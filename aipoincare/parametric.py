"""Invariants of a family of systems: exact for every value of the symbolic parameters.

The method (parameters as variables, coefficients polynomial in them):

1. *Generic count.* The nullity over the field Q(k) of rational functions of the
   parameters equals the nullity at a random parameter point (it can only grow on a proper
   algebraic subset), so :func:`generic_nullity` takes the exact rank modulo a prime at a
   random parameter point (the smaller of two draws).
2. *Coefficients.* An invariant whose coefficients are polynomials of degree at most ``d``
   in the parameters is a null vector of the basis ``{m(k) b_i(x)}`` (``m`` every
   parameter monomial of degree ``0..d``) for the system in which the parameters are
   variables with zero derivative (:meth:`System.extended`): the ordinary exact null space
   (:func:`aipoincare.exact.exact_null_space`, identity test at fresh points of ``(x, k)``)
   applied to :class:`ParameterBasis`. Every conserved vector over Q(k) becomes polynomial
   after clearing denominators, so raising ``d`` from 0 finds them all; it stops when they
   span the generic count (:func:`polynomial_invariants`).
3. *One representative each.* A multiple of an invariant by a function of ``k`` is an
   invariant too; :func:`aipoincare.polyvec.canonical_basis` keeps the reduced echelon form
   over Q(k), made primitive (polynomial, no common factor).

Pure-parameter functions never enter: every column is a basis function of the variables
times a parameter monomial, so a null vector always has a part in the variables.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy

from traincore import check_memory, check_time

from .basis import Basis, PolynomialBasis, monomial_exponents
from .constraints import constraint_solver
from .evaluate import is_rational_function
from .exact import ExactNullSpace, exact_null_space, modular_matrix, random_prime, rref_mod_p
from .polyvec import Vector, from_rational_terms, independent_over_fractions, ring
from .scaling import scaling_blocks, scaling_weights, weight_blocks

__all__ = ["ParameterBasis", "FamilyNullSpace", "generic_point", "generic_nullity", "nullity_mod_p",
           "polynomial_invariants", "check_family", "MAX_PARAMETER_DEGREE"]

#: Highest parameter degree tried when none is given.
MAX_PARAMETER_DEGREE = 6


class ParameterBasis(Basis):
    """Every basis function of the variables times every parameter monomial of degree 0..d.

    Columns are ordered monomial-major: column ``j * inner.size + i`` is
    ``monomials[j] * inner.exprs[i]``; monomials by degree, as in
    :func:`aipoincare.basis.monomial_exponents`. Only the exact path is implemented
    (``lie_mod_p``): the parameters have zero derivative, so
    ``L(m(k) b(x)) = m(k) L b(x)``.

    Parameters
    ----------
    inner : Basis
        The basis in the variables.
    parameters : sequence of sympy.Symbol
    degree : int
        Highest total degree of the parameter monomials (0: the inner basis alone).

    Examples
    --------
    >>> x, k = sympy.symbols("x k")
    >>> ParameterBasis(PolynomialBasis([x], 2), [k], 1).labels
    ['x', 'x**2', 'k*x', 'k*x**2']
    """

    def __init__(self, inner: Basis, parameters: Any, degree: int) -> None:
        self.inner = inner
        self.parameters = tuple(parameters)
        self.degree = int(degree)
        self.variables = (*inner.variables, *self.parameters)
        self.monomials = monomial_exponents(len(self.parameters), self.degree, min_degree=0)
        monos = [sympy.Mul(*[s ** int(e) for s, e in zip(self.parameters, row, strict=True)])
                 for row in self.monomials.tolist()]
        self.exprs = [m * b for m in monos for b in inner.exprs]
        self.labels = [str(e) for e in self.exprs]
        self.rational = inner.rational
        if isinstance(inner, PolynomialBasis):
            # a monomial in (x, k) each: the scaling blocks of the extended system apply
            self.exponents = np.hstack([np.tile(inner.exponents, (len(monos), 1)),
                                        np.repeat(self.monomials, inner.size, axis=0)])

    def split(self, col: int) -> tuple[int, tuple[int, ...]]:
        """(inner column, parameter exponents) of a column."""
        j, i = divmod(int(col), self.inner.size)
        return i, tuple(int(e) for e in self.monomials[j])

    def lie_mod_p(self, pts: np.ndarray, f: np.ndarray, p: int) -> tuple[np.ndarray, np.ndarray]:
        n_x = len(self.inner.variables)
        a, ok = self.inner.lie_mod_p(pts[:, :n_x], f[:, :n_x], p)  # shape (n, inner.size)
        k = pts[:, n_x:] % p
        mono = np.ones((pts.shape[0], len(self.monomials)), dtype=np.int64)
        for j, row in enumerate(self.monomials.tolist()):
            for v, e in enumerate(row):
                for _ in range(e):
                    mono[:, j] = mono[:, j] * k[:, v] % p
        out = (mono[:, :, None] * a[:, None, :]) % p  # shape (n, monomials, inner.size)
        return out.reshape(pts.shape[0], -1), ok


def check_family(system, basis: Basis) -> None:
    """Raise ``ValueError`` unless the exact path applies to the family in (x, k).

    Symbolic parameters need equations rational in the variables and the parameters with
    exact coefficients, and basis functions whose gradients are rational (polynomials,
    rational functions, logarithms of them).
    """
    ext = system.extended()
    names = ", ".join(s.name for s in system.symbolic)
    for v, f in zip(system.variables, system.equations, strict=True):
        if not is_rational_function(f, ext.variables):
            raise ValueError(f"With symbolic parameters ({names}) the equations must be "
                             f"rational in the variables and parameters with exact numbers; "
                             f"d{v}/dt = {f} is not; give the parameters numbers instead.")
    if isinstance(basis, PolynomialBasis):
        return  # monomials: polynomial gradients
    for e in basis.exprs:
        for v in system.variables:
            g = sympy.diff(e, v)
            if not is_rational_function(g, system.variables):
                raise ValueError(f"With symbolic parameters ({names}) the basis functions "
                                 f"must have rational gradients (polynomials, rational "
                                 f"functions, logs); d({e})/d{v} = {g} is not; choose such a "
                                 "basis or give the parameters numbers.")


def generic_point(system, rng: np.random.Generator) -> dict[str, sympy.Rational]:
    """Random moderate rational parameter values (multiples of 1/8 in [1, 3]) for the float
    evidence (spectrum, plots), where a generic member of the family is sampled."""
    return {s.name: sympy.Rational(int(rng.integers(8, 25)), 8) for s in system.symbolic}


def nullity_mod_p(member, basis: Basis, p: int, rng: np.random.Generator,
                  margin: int = 12) -> int:
    """Nullity of a member of the family (numbers for its parameters) modulo ``p``, at
    random states: at least the true nullity, equal to it except with probability about
    degree/p (a rank can only drop by bad luck)."""
    _, blocks = scaling_blocks(member, basis)
    solver = constraint_solver(tuple(member.variables), tuple(member.constraints))
    a = modular_matrix(member, basis, solver, max(map(len, blocks)) + margin, p, rng)
    return sum(rref_mod_p(a[:, b], p).nullity for b in blocks)


def _count_at(system, basis: Basis, rng: np.random.Generator, margin: int) -> int:
    """Nullity modulo a random prime at a random parameter point (integers below it)."""
    p = random_prime(rng)
    point = {s.name: int(rng.integers(1, p)) for s in system.symbolic}
    return nullity_mod_p(system.specialise(point), basis, p, rng, margin)


def generic_nullity(system, basis: Basis, rng: np.random.Generator, margin: int = 12,
                    draws: int = 2) -> int:
    """The nullity over Q(k): the smallest of exact counts at random parameter points.

    A count at one point modulo p exceeds the generic one only when the point or the sample
    rows are unlucky (probability about degree/p each); the smallest of ``draws`` counts is
    used. :func:`polynomial_invariants` then finds that many certified invariants, which
    proves the count from below.
    """
    return min(_count_at(system, basis, rng, margin) for _ in range(draws))


@dataclass(frozen=True)
class FamilyNullSpace:
    """Invariants of a family, polynomial in the parameters, spanning the generic space.

    Attributes
    ----------
    vectors : list of dict of int to flint.fmpz_mpoly
        Inner basis column -> coefficient polynomial; linearly independent over Q(k),
        ``generic`` of them (not yet canonical: :func:`aipoincare.polyvec.canonical_basis`).
    generic : int
        The nullity over Q(k).
    degree : int
        The parameter degree at which they were found.
    exact : ExactNullSpace
        The evidence of the last (degree ``degree``) null space over Q.
    ring : flint.fmpz_mpoly_ctx
        Z[k] in the symbolic parameters, in order.
    """

    vectors: list[Vector]
    generic: int
    degree: int
    exact: ExactNullSpace | None
    ring: Any


def _ext_blocks(ext_system, basis: ParameterBasis) -> list[np.ndarray]:
    if not hasattr(basis, "exponents"):
        return [np.arange(basis.size)]
    weights = scaling_weights(ext_system.equations, ext_system.variables,
                              ext_system.constraints)
    return weight_blocks(basis.exponents, weights)


def polynomial_invariants(system, basis: Basis, rng: np.random.Generator, *,
                          margin: int = 12, degree: int | None = None,
                          max_degree: int = MAX_PARAMETER_DEGREE,
                          generic: int | None = None) -> FamilyNullSpace:
    """Invariants with coefficients polynomial in the symbolic parameters, ``generic`` of
    them (independent over Q(k)), by raising the parameter degree from 0.

    Parameters
    ----------
    system : aipoincare.System
        With symbolic parameters (:attr:`System.symbolic`).
    basis : Basis
        The basis in the variables.
    rng : numpy.random.Generator
    margin : int
        Extra rows of the modular matrices.
    degree : int, optional
        Use exactly this parameter degree (no search).
    max_degree : int
        Highest parameter degree tried in the search.
    generic : int, optional
        The generic count, when already known (:func:`generic_nullity`).

    Raises
    ------
    ValueError
        When fewer than ``generic`` invariants have coefficients of degree ``<= max_degree``.
    """
    params = system.symbolic
    ctx = ring([s.name for s in params])
    target = generic_nullity(system, basis, rng, margin) if generic is None else generic
    if target == 0:
        return FamilyNullSpace([], 0, 0, None, ctx)
    ext_system = system.extended()
    degrees = [degree] if degree is not None else list(range(max_degree + 1))
    p = random_prime(rng)
    point = [int(rng.integers(1, p)) for _ in params]
    found: list[Vector] = []
    for d in degrees:
        check_time(f"the parameter degree {d} null space")
        ext = ParameterBasis(basis, params, d)
        check_memory(40 * ext.size * max(1, ext.size // 4),
                     f"the parameter basis of degree {d} ({ext.size} functions)",
                     "give a lower parameter_degree or fewer symbolic parameters")
        ns = exact_null_space(ext_system, ext, _ext_blocks(ext_system, ext), rng, margin=margin)
        vectors = []
        for vec in ns.vectors:
            terms: dict[int, dict[tuple[int, ...], sympy.Rational]] = {}
            for col, c in vec.items():
                i, e = ext.split(col)
                terms.setdefault(i, {})[e] = c
            vectors.append(from_rational_terms(terms, ctx))
        # lowest parameter degree first, then fewest terms: the simplest representatives
        order = sorted(range(len(vectors)), key=lambda k: (
            max(v.total_degree() for v in vectors[k].values()), len(vectors[k]), k))
        kept = independent_over_fractions(vectors, order, point, p)
        found = [vectors[k] for k in kept]
        if len(found) >= target:
            return FamilyNullSpace(found, len(found), d, ns, ctx)
    raise ValueError(
        f"For generic parameter values the basis holds {target} independent invariants, but "
        f"only {len(found)} have coefficients polynomial of degree <= {degrees[-1]} in the "
        f"parameters {', '.join(s.name for s in params)}; raise parameter_degree "
        "(--parameter-degree) or give some parameters numbers.")

