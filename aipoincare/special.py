"""Special parameter values: where a family has more invariants in the basis than generically.

At a parameter value ``k`` the conserved subspace of the basis is the null space of the
Lie-derivative matrix ``A(k)`` (rows: states, columns: basis functions). Its rank is
``r = size - generic`` for generic ``k`` and drops exactly where every ``r x r`` minor
vanishes. The codimension-one part of that set is the zero set of the gcd of the minors,
which this module computes along one parameter direction:

1. the states are fixed random points modulo a prime ``p`` (``size + margin`` of them);
2. along a line ``k(t)`` the determinants ``det(U A(k(t)) V)`` of two random compressions
   (``U`` of shape (r, rows), ``V`` of shape (size, r)) are polynomials in ``t`` of degree
   at most ``r * delta`` (``delta``: the degree of the equations in the parameters); they
   are interpolated from that many values plus one, and their gcd taken (modulo ``p``);
3. the monic gcd is lifted to Q by Chinese remaindering and rational reconstruction over
   several primes (until two agree), and factored over Q;
4. every factor is confirmed by the exact count on its zero set (a factor whose zero set
   carries no extra invariant, from unlucky states, is dropped), and for a linear factor
   the invariants there are computed as a family of the remaining parameters.

Supported: one symbolic parameter (the line is the parameter itself), or two related by a
scaling symmetry of the system (the special set is then a union of lines through 0: the
line ``(1, t)`` meets each once, and ``k1 = 0`` is checked apart). Other families are not
searched (the result says so).
"""

from __future__ import annotations

from collections.abc import Sequence

import flint
import numpy as np
import sympy

from traincore import check_time

from .constraints import constraint_solver
from .evaluate import eval_mod_p
from .exact import crt_pair, exact_null_space, random_prime, rational_reconstruct
from .parametric import nullity_mod_p, polynomial_invariants
from .polyvec import canonical_basis, grouped_expr
from .result import SpecialValue
from .scaling import scaling_blocks, scaling_weights
from .sparsify import reduce_sparse
from .system import System

__all__ = ["special_values", "rank_drop_polynomial", "MAX_EVALUATIONS"]

#: Largest number of parameter values (determinants per compression and prime) tried.
MAX_EVALUATIONS = 2000


def _homogeneous(system) -> bool:
    """True when a scaling symmetry multiplies every symbolic parameter by the same power."""
    ext = system.extended()
    w = scaling_weights(ext.equations, ext.variables, ext.constraints)
    if w.shape[1] == 0:
        return False
    wk = sympy.Matrix(w[len(system.variables):, :].tolist())
    try:
        wk.gauss_jordan_solve(sympy.ones(wk.rows, 1))
    except ValueError:
        return False
    return True


def _newton(nodes: Sequence[int], values: Sequence[int], p: int) -> flint.nmod_poly:
    """The polynomial of degree < len(nodes) through the points, modulo p."""
    c = [int(v) % p for v in values]
    n = len(nodes)
    for j in range(1, n):
        for i in range(n - 1, j - 1, -1):
            c[i] = (c[i] - c[i - 1]) * pow(nodes[i] - nodes[i - j], -1, p) % p
    poly = flint.nmod_poly([c[-1]], p)
    for j in range(n - 2, -1, -1):
        poly = poly * flint.nmod_poly([-nodes[j] % p, 1], p) + c[j]
    return poly


def _gcd_mod_p(system, basis, line, rank: int, degree: int, margin: int, p: int,
               rng: np.random.Generator) -> flint.nmod_poly | None:
    """Monic gcd of two compressed determinants along ``line(t)`` modulo ``p`` (None when
    they vanish identically: unlucky states)."""
    n = len(system.variables)
    ext = system.extended()
    solver = constraint_solver(tuple(system.variables), tuple(system.constraints))
    rows = basis.size + margin
    x, ok = solver.sample_mod_p(rows + 8, p, rng)
    x = x[ok][:rows]
    comp = [(flint.nmod_mat(rng.integers(0, p, (rank, x.shape[0])).tolist(), p),
             flint.nmod_mat(rng.integers(0, p, (basis.size, rank)).tolist(), p))
            for _ in range(2)]
    nodes = list(range(1, degree + 2))
    dets: list[list[int]] = [[], []]
    for t in nodes:
        k = np.tile(np.array(line(t), dtype=np.int64) % p, (x.shape[0], 1))
        f, ok_f = eval_mod_p(ext.equations[:n], ext.variables, np.hstack([x, k]), p)
        a, ok_a = basis.lie_mod_p(x, f, p)
        a[~(ok_f & ok_a)] = 0  # the same rows at every t: the rank is unaffected
        mat = flint.nmod_mat(a.tolist(), p)
        for j, (u, v) in enumerate(comp):
            dets[j].append(int((u * mat * v).det()))
    polys = [_newton(nodes, d, p) for d in dets]
    if any(q.is_zero() for q in polys):
        return None
    g = polys[0].gcd(polys[1])
    return g * pow(int(g.leading_coefficient()), -1, p)


def rank_drop_polynomial(system, basis, generic: int, line, degree: int,
                         rng: np.random.Generator, margin: int = 12,
                         max_primes: int = 6) -> sympy.Poly | None:
    """The monic polynomial in ``t`` whose roots are where the rank drops along ``line``.

    Parameters
    ----------
    system : aipoincare.System
        With symbolic parameters.
    basis : Basis
    generic : int
        The generic nullity (the rank is ``basis.size - generic``).
    line : callable
        ``line(t)`` -> integer parameter values (in the order of ``system.symbolic``).
    degree : int
        Bound on the degree in ``t`` of the determinants.

    Returns
    -------
    sympy.Poly in a dummy symbol over QQ, or None when the primes never agreed.
    """
    rank = basis.size - generic
    if rank <= 0:
        return None
    residues, modulus, shape, previous = None, 1, None, None
    for _ in range(max_primes):
        check_time("the special values")
        p = random_prime(rng)
        g = _gcd_mod_p(system, basis, line, rank, degree, margin, p, rng)
        if g is None:
            continue
        coeffs = [int(c) for c in g.coeffs()]
        if shape is None or len(coeffs) < shape:  # a larger gcd is an unlucky prime
            residues, modulus, shape = np.array(coeffs, dtype=object), p, len(coeffs)
        elif len(coeffs) == shape:
            residues, modulus = crt_pair(residues, modulus, coeffs, p), modulus * p
        else:
            continue
        lifted = [rational_reconstruct(int(c), modulus) for c in residues]
        if any(r is None for r in lifted):
            continue
        current = [sympy.Rational(*r) for r in lifted]
        if current == previous:
            return sympy.Poly(list(reversed(current)), sympy.Dummy("t"), domain="QQ")
        previous = current
    return None


def _restrict(system, values: dict[str, sympy.Expr]) -> System:
    """The family with some parameters replaced by expressions in the others."""
    repl = {sympy.Symbol(k): v for k, v in values.items()}
    params = {k: v for k, v in system.parameters.items() if k not in values}
    return System(system.variables, tuple(e.xreplace(repl) for e in system.equations),
                  name=system.name, constraints=system.constraints, parameters=params,
                  sampling=system.sampling, source=system.source)


def _at(system, basis, values: dict[str, sympy.Expr], generic: int,
        rng: np.random.Generator, margin: int) -> tuple[int, tuple[sympy.Expr, ...]]:
    """Nullity and a basis of the conserved subspace on the set ``values`` (the count alone
    when the invariants there cannot be found: coefficients of too high a degree, or a
    null space that does not lift)."""
    sub = _restrict(system, values)
    try:
        return _invariants_at(sub, basis, generic, rng, margin)
    except ValueError:  # ExactNotApplicable included
        p = random_prime(rng)
        member = sub.specialise({s.name: int(rng.integers(1, p)) for s in sub.symbolic})
        return nullity_mod_p(member, basis, p, rng, margin), ()


def _invariants_at(sub, basis, generic: int, rng: np.random.Generator, margin: int
                   ) -> tuple[int, tuple[sympy.Expr, ...]]:
    if sub.symbolic:
        fam = polynomial_invariants(sub, basis, rng, margin=margin)
        if fam.generic <= generic:
            return fam.generic, ()
        exprs = tuple(grouped_expr(v, basis.exprs, sub.symbolic)
                      for v in canonical_basis(fam.vectors))
        return fam.generic, exprs
    _, blocks = scaling_blocks(sub, basis)
    ns = exact_null_space(sub, basis, blocks, rng, margin=margin)
    if ns.nullity <= generic:
        return ns.nullity, ()
    return ns.nullity, tuple(sympy.Add(*[c * basis.exprs[i] for i, c in v.items()])
                             for v in reduce_sparse(ns.vectors))


def special_values(system, basis, generic: int, rng: np.random.Generator, margin: int = 12
                   ) -> tuple[list[SpecialValue] | None, str]:
    """The special parameter values of a family within its basis (see the module).

    Returns
    -------
    values : list of SpecialValue or None
        None when the family is not of a supported kind.
    note : str
        How they were searched, or why not.
    """
    params = system.symbolic
    names = [s.name for s in params]
    if any(c.free_symbols & set(params) for c in system.constraints) or not all(
            f.is_polynomial(*params) for f in system.equations):
        return None, ("not searched: the search needs equations polynomial in the "
                      "parameters and constraints free of them")
    homogeneous = _homogeneous(system)
    if len(params) - homogeneous > 1:
        return None, (f"not searched: the search handles one parameter, or two related by a "
                      f"scaling symmetry; this family has {len(params)}"
                      + (" (with a common scaling)" if homogeneous else ""))
    out: list[SpecialValue] = []
    if homogeneous:  # special set = lines through 0: k1 = 0, and (1, t) meets the others
        nullity, exprs = _at(system, basis, {names[0]: sympy.Integer(0)}, generic, rng, margin)
        if nullity > generic:
            out.append(SpecialValue(params[0], nullity, exprs))
    if len(params) == 1 and homogeneous:
        return out, f"searched: {names[0]} = 0 (the only candidate of a scaling-invariant family)"
    delta = max(sympy.Poly(f, *params).total_degree() for f in system.equations)
    degree = (basis.size - generic) * max(delta, 1)
    if degree + 1 > MAX_EVALUATIONS:
        return (out or None), (f"not searched: {degree + 1} parameter values would be needed "
                               f"(more than {MAX_EVALUATIONS})")

    def line(v: int) -> list[int]:
        return [1, v] if homogeneous else [v]

    poly = rank_drop_polynomial(system, basis, generic, line, degree, rng, margin=margin)
    if poly is None:
        return (out or None), "not searched: the modular determinants did not agree"
    t = poly.gen
    for fac, _ in sympy.factor_list(poly.as_expr(), t)[1]:
        if not fac.has(t):
            continue
        fac = sympy.Poly(fac, t)
        if homogeneous:  # homogenise: t = k2/k1
            cond = sympy.expand(sympy.Poly(fac, t).homogenize(params[0])
                                .as_expr().xreplace({t: params[1]}))
        else:
            cond = fac.as_expr().xreplace({t: params[0]})
        cond = sympy.Poly(cond, *params).primitive()[1].as_expr()
        if fac.degree() == 1:
            root = sympy.solve(fac.as_expr(), t)[0]
            values = {names[-1]: root * params[0]} if homogeneous else {names[0]: root}
            nullity, exprs = _at(system, basis, values, generic, rng, margin)
        else:
            nullity, exprs = _count_on(system, basis, fac, homogeneous, rng, margin), ()
        if nullity > generic:
            out.append(SpecialValue(cond, nullity, exprs))
    how = (f"{names[0]} = 0 and the line ({names[0]}, {names[1]}) = (1, t)" if homogeneous
           else f"the {names[0]} axis")
    return out, (f"searched along {how}: the gcd of maximal minors of the Lie-derivative "
                 f"matrix, a polynomial of degree <= {degree} interpolated modulo primes and "
                 "factored over Q; every factor confirmed by the exact count on its zero set")


def _count_on(system, basis, fac: sympy.Poly, homogeneous: bool, rng: np.random.Generator,
              margin: int) -> int:
    """The exact count at a root modulo p of an irreducible factor of degree > 1."""
    names = [s.name for s in system.symbolic]
    coeffs = [int(c) for c in fac.clear_denoms()[1].all_coeffs()]
    for _ in range(20):
        p = random_prime(rng)
        roots = flint.nmod_poly(list(reversed(coeffs)), p).roots()
        if roots:
            r = int(roots[0][0])
            point = dict(zip(names, [1, r] if homogeneous else [r], strict=True))
            return nullity_mod_p(system.specialise(point), basis, p, rng, margin)
    return 0

