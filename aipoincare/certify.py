"""Certificates that a candidate H is conserved: evidence, never a bare claim.

``certify(H, system)`` checks that the Lie derivative ``grad H . f`` vanishes (on the
constraint set when there is one) and returns a :class:`Certificate` saying how:

* ``"symbolic"``: the numerator of ``grad H . f`` (a polynomial) expands to 0. This
  needs ``grad H . f`` rational, not ``H`` (``log(x)`` in ``H`` is fine).
* ``"symbolic-modulo-constraints"``: the same after substituting each solved variable
  ``v = -b/a`` of a constraint linear in ``v`` (so the numerator vanishes on the set).
* ``"identity-test"``: exact evaluation of ``grad H . f`` at random points of the
  constraint set modulo large random primes (Schwartz-Zippel: a nonzero numerator of
  degree ``D`` vanishes at a uniformly random point with probability at most ``D/p``); used
  where symbolic expansion is too expensive. ``detail`` states the bound.
* ``"mpmath-50-digits"``: for non-rational systems, ``|grad H . f|`` relative to the sum of
  the absolute values of its terms stays below 1e-40 at random points, evaluated with 60
  significant digits. Strong evidence, not a proof (``detail`` says so).

``verified`` is True only when one of these checks ran and passed; a check that fails gives
False with the residual; one that cannot decide says so in ``detail``.

With symbolic parameters (:attr:`System.symbolic`) every check runs on
:meth:`System.extended`, the parameters being variables with zero derivative: a passed
check is an identity in the variables *and* the parameters (the identity test draws random
parameter values too), so the invariant is conserved for every parameter value where the
equations are defined.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import sympy

from traincore import check_choice, check_time

from .constraints import ConstraintSolver, constraint_solver
from .errors import ExactNotApplicable
from .evaluate import as_expr, eval_mod_p, is_rational_function
from .exact import random_prime
from .independence import gradient_exprs

__all__ = ["Certificate", "certify", "certify_many", "lie_derivative", "degree_bound",
           "degree_pair"]

#: Symbolic expansion is attempted only below this size estimate (terms of H x tree size
#: of f); above it the randomised identity test is used (seconds instead of minutes).
SYMBOLIC_BUDGET = 6000


@dataclass(frozen=True)
class Certificate:
    """Evidence that ``grad H . f = 0`` (on the constraint set).

    Attributes
    ----------
    verified : bool
    residual : float
        0 for passed exact checks; otherwise the largest relative residual seen (1.0 for a
        failed exact check).
    method : str
        "symbolic", "symbolic-modulo-constraints", "identity-test", "mpmath-50-digits".
    detail : str
    """

    verified: bool
    residual: float
    method: str
    detail: str


def lie_derivative(h: sympy.Expr, system) -> sympy.Expr:
    """``sum_k dH/dx_k f_k`` (unsimplified).

    >>> x, y = sympy.symbols("x y")
    >>> from aipoincare import System
    >>> lie_derivative(x**2 + y**2, System(variables=(x, y), equations=(y, -x)))
    0
    """
    return sympy.Add(*[sympy.diff(h, v) * f for v, f in
                       zip(system.variables, system.equations, strict=True)])


def degree_bound(expr: sympy.Expr, degrees: dict[sympy.Symbol, tuple[int, int]]) -> int:
    """Upper bound on the total degree of the numerator of a rational function.

    Parameters
    ----------
    expr : sympy.Expr
        A rational function.
    degrees : dict of sympy.Symbol to (int, int)
        (numerator, denominator) degree bounds of each symbol (free variables (1, 0);
        solved variables the bounds of ``-b/a``).

    Examples
    --------
    >>> x, y = sympy.symbols("x y")
    >>> degree_bound(x / (1 + y) + x ** 2, {x: (1, 0), y: (1, 0)})
    3
    """
    return degree_pair(expr, degrees)[0]


def degree_pair(expr: sympy.Expr, degrees: dict[sympy.Symbol, tuple[int, int]],
                memo: dict | None = None) -> tuple[int, int]:
    """(numerator, denominator) degree bounds of a rational function, as in
    :func:`degree_bound`; ``memo`` may be shared between calls with the same ``degrees``."""
    memo = {} if memo is None else memo

    def walk(e: sympy.Basic) -> tuple[int, int]:
        if e in memo:
            return memo[e]
        if isinstance(e, sympy.Symbol):
            out = degrees.get(e, (1, 0))
        elif isinstance(e, sympy.Number):
            out = (0, 0)
        elif isinstance(e, sympy.Add):
            parts = [walk(a) for a in e.args]
            den = sum(d for _, d in parts)
            out = (max(n + den - d for n, d in parts), den)
        elif isinstance(e, sympy.Mul):
            parts = [walk(a) for a in e.args]
            out = (sum(n for n, _ in parts), sum(d for _, d in parts))
        elif isinstance(e, sympy.Pow) and isinstance(e.args[1], sympy.Integer):
            n, d = walk(e.args[0])
            k = int(e.args[1])
            out = (n * k, d * k) if k >= 0 else (d * -k, n * -k)
        else:
            raise TypeError(f"degree_bound needs a rational function; got {e}.")
        memo[e] = out
        return out

    return walk(as_expr(expr))


def _terms(h: sympy.Expr) -> int:
    return len(sympy.Add.make_args(sympy.expand(h)))


def certify(h: sympy.Expr, system, seed: int = 0, points: int = 4, primes: int = 2,
            method: str = "auto") -> Certificate:
    """Certify that ``h`` is conserved by ``system`` (on its constraint set).

    Parameters
    ----------
    h : sympy.Expr
        The candidate, in the system's variables.
    system : aipoincare.System
    seed : int
        Seed of the random points and primes.
    points : int
        Random points per prime (identity test) or in total (mpmath).
    primes : int
        Primes in the identity test.
    method : str
        "auto" (symbolic when cheap, else identity test; mpmath for non-rational systems),
        or force "symbolic", "identity-test", "mpmath-50-digits".

    Returns
    -------
    Certificate

    Examples
    --------
    >>> x, y, z = sympy.symbols("x y z")
    >>> from aipoincare import System
    >>> lv = System(variables=(x, y, z), equations=(x*(y - z), y*(z - x), z*(x - y)))
    >>> certify(x*y*z, lv).verified, certify(x, lv).verified
    (True, False)
    """
    return certify_many([h], system, seed=seed, points=points, primes=primes,
                        method=method)[0]


@lru_cache(maxsize=16)
def _system_facts(variables: tuple, equations: tuple) -> tuple[bool, int]:
    """(f rational with exact coefficients, tree size of f): computed once per system.

    The tree size (shared subexpressions counted at each use) is what symbolic expansion
    pays, unlike evaluation, which memoises them.
    """
    rational = all(is_rational_function(f, variables) for f in equations)
    sizes: dict[sympy.Basic, int] = {}

    def size(e: sympy.Basic) -> int:
        if e not in sizes:
            sizes[e] = 1 + sum(size(a) for a in e.args)
        return sizes[e]

    return rational, sum(size(f) for f in equations)


def certify_many(exprs: Sequence[sympy.Expr], system, seed: int = 0, points: int = 4,
                 primes: int = 2, method: str = "auto") -> list[Certificate]:
    """:func:`certify` for several candidates, sharing the work.

    The identity tests of all candidates run at the same random points in one evaluation
    (shared subexpressions of f are computed once); each candidate's test is as strong as
    on its own, since the points do not depend on the candidate.

    Returns
    -------
    list of Certificate, one per expression
    """
    check_choice(method, "method", ("auto", "symbolic", "identity-test", "mpmath-50-digits"),
                 where="of the certificate")
    hs = [as_expr(h) for h in exprs]
    system = system.extended()  # symbolic parameters: identities in them too
    variables = tuple(system.variables)
    rng = np.random.default_rng(seed)
    f_rational, f_size = _system_facts(variables, tuple(system.equations))
    why = ""
    solver: ConstraintSolver | None
    try:
        solver = constraint_solver(variables, tuple(system.constraints))
    except ExactNotApplicable as err:
        solver, why = None, str(err)
    out: list[Certificate | None] = [None] * len(hs)
    batch: list[int] = []
    for k, h in enumerate(hs):
        check_time("the certificates")  # a symbolic check can be long: stop between them
        # exact checks need grad H . f rational: H itself may hold logs of rational functions
        rational = f_rational and (is_rational_function(h, variables) or
                                   is_rational_function(lie_derivative(h, system), variables))
        if method == "mpmath-50-digits" or (method == "auto" and not rational):
            out[k] = _mpmath_check(h, lie_derivative(h, system), system, solver, rng, points)
        elif not rational:
            out[k] = Certificate(False, float("nan"), "undecided",
                                 "The system or H is not rational with exact coefficients, so "
                                 f"the {method} check does not apply; use mpmath-50-digits.")
        elif solver is None:
            out[k] = _ideal_check(lie_derivative(h, system), system, why)
        elif method == "symbolic" or (method == "auto"
                                      and _terms(h) * f_size <= SYMBOLIC_BUDGET):
            out[k] = _symbolic_check(lie_derivative(h, system), solver)
        else:
            batch.append(k)
    if batch:
        tests = _identity_test([hs[k] for k in batch], system, solver, rng, points, primes)
        for k, cert in zip(batch, tests, strict=True):
            out[k] = cert
    return out  # type: ignore[return-value]


def _symbolic_check(lie: sympy.Expr, solver: ConstraintSolver) -> Certificate:
    expr = lie
    subs = {s.var: -s.rest / s.coef for s in solver.solved}
    if subs:
        for s in solver.solved:  # earlier solutions may use later solved variables
            expr = expr.xreplace({s.var: -s.rest / s.coef})
    num, _ = sympy.fraction(sympy.together(expr))
    num = sympy.expand(num)
    method = "symbolic-modulo-constraints" if subs else "symbolic"
    if num == 0:
        how = ("after substituting " + ", ".join(f"{s.var} = -({s.rest})/({s.coef})"
                                                 for s in solver.solved)) if subs else ""
        return Certificate(True, 0.0, method,
                           f"The numerator of grad H . f expands to 0 {how}".strip() + ".")
    return Certificate(False, 1.0, method,
                       f"The numerator of grad H . f is the nonzero polynomial "
                       f"{sympy.sstr(num)[:200]}.")


#: Largest total number of terms (numerator of grad H . f plus constraints) for which the
#: ideal-membership check by polynomial division is attempted.
IDEAL_BUDGET = 2000


def _ideal_check(lie: sympy.Expr, system, why: str) -> Certificate:
    """grad H . f in the ideal of the constraints (reduced Groebner basis, then division).

    Used when no constraint can be solved linearly (e.g. a sphere). The numerator reducing
    to 0 proves that grad H . f vanishes on the constraint set; a nonzero remainder proves
    it is not in the ideal, which for a radical ideal (squarefree constraints without
    common components, as usual) means H is not conserved.
    """
    variables = list(system.variables)
    num, _ = sympy.fraction(sympy.together(lie))
    num = sympy.expand(num)
    cons = [sympy.expand(sympy.fraction(sympy.together(g))[0]) for g in system.constraints]
    size = sum(len(sympy.Add.make_args(e)) for e in [num, *cons])
    if size > IDEAL_BUDGET:
        return Certificate(False, float("nan"), "undecided",
                           f"No exact check applies ({why}) and the ideal-membership test is "
                           f"too large ({size} terms).")
    if num == 0:
        return Certificate(True, 0.0, "symbolic", "The numerator of grad H . f expands to 0.")
    gb = sympy.groebner(cons, *variables, order="grevlex")
    _, rem = gb.reduce(num)
    if rem == 0:
        return Certificate(True, 0.0, "symbolic-modulo-constraints",
                           "The numerator of grad H . f reduces to 0 modulo a Groebner basis "
                           "of the constraints (it lies in their ideal).")
    return Certificate(False, 1.0, "symbolic-modulo-constraints",
                       "The numerator of grad H . f does not reduce to 0 modulo a Groebner "
                       f"basis of the constraints (remainder {sympy.sstr(rem)[:120]}).")


def _lie_degrees(grads: Sequence[Sequence[sympy.Expr]], system, solver: ConstraintSolver
                 ) -> list[int]:
    """Degree bounds of the numerators of ``sum_k dH/dx_k f_k``, one per H, from the
    bounds of the pieces (never building the product: f can be a large expression)."""
    degrees: dict[sympy.Symbol, tuple[int, int]] = {v: (1, 0) for v in solver.free}
    for s in reversed(solver.solved):  # later solved variables first: earlier ones use them
        degrees[s.var] = (degree_bound(s.rest, degrees), degree_bound(s.coef, degrees))
    memo: dict = {}
    f_pairs = [degree_pair(f, degrees, memo) for f in system.equations]
    bounds = []
    for row in grads:
        terms = [(n + fn, d + fd) for g, (fn, fd) in zip(row, f_pairs, strict=True) if g != 0
                 for n, d in [degree_pair(g, degrees, memo)]]
        den = sum(d for _, d in terms)
        bounds.append(max((n + den - d for n, d in terms), default=0))
    return bounds


def _lie_values(grads: Sequence[Sequence[sympy.Expr]], system, pts: np.ndarray, p: int
                ) -> tuple[np.ndarray, np.ndarray]:
    """``grad H . f`` mod p at the points, shape (n_points, n_H), and where it is defined:
    the gradients and f evaluated apart, then their dot product."""
    n_vars = len(system.variables)
    flat = [g for row in grads for g in row]
    g, ok_g = eval_mod_p(flat, list(system.variables), pts, p)
    f, ok_f = eval_mod_p(list(system.equations), list(system.variables), pts, p)
    g = g.reshape(len(pts), len(grads), n_vars)
    vals = np.zeros((len(pts), len(grads)), dtype=np.int64)
    for k in range(n_vars):  # residues below 2**31: one product at a time fits in int64
        vals = (vals + g[:, :, k] * f[:, k:k + 1] % p) % p
    return vals, ok_g & ok_f


def _identity_test(hs: Sequence[sympy.Expr], system, solver: ConstraintSolver,
                   rng: np.random.Generator, points: int, primes: int) -> list[Certificate]:
    grads = [gradient_exprs(h, system.variables) for h in hs]
    bounds = _lie_degrees(grads, system, solver)
    lies = hs  # one certificate per H
    failed: dict[int, int] = {}
    used: list[int] = []
    for _ in range(primes):
        p = random_prime(rng, exclude=used)
        used.append(p)
        got = tries = 0
        while got < points:
            tries += 1
            if tries > 50:
                return [Certificate(False, float("nan"), "undecided",
                                    f"grad H . f is undefined (mod {p}) at almost every random "
                                    "point of the constraint set.") for _ in lies]
            pts, ok = solver.sample_mod_p(points - got, p, rng)
            vals, ok2 = _lie_values(grads, system, pts, p)
            keep = ok & ok2
            for k in np.nonzero((vals[keep] != 0).any(0))[0]:
                failed.setdefault(int(k), p)
            got += int(keep.sum())
    on = " of the constraint set" if system.constraints else ""
    certs = []
    for k, bound in enumerate(bounds):
        if k in failed:
            certs.append(Certificate(False, 1.0, "identity-test",
                                     f"grad H . f is nonzero at a random point mod {failed[k]}:"
                                     " H is not conserved."))
            continue
        prob = float(bound) / min(used)
        certs.append(Certificate(
            True, 0.0, "identity-test",
            f"grad H . f evaluated exactly at {points} random points{on} modulo each of "
            f"{primes} random 31-bit primes ({', '.join(map(str, used))}) is 0; its numerator "
            f"has degree <= {bound} in the free variables, so a nonzero one would vanish at "
            f"one such point with probability <= {prob:.1e}: error probability <= "
            f"{prob:.1e}^{points} per prime (unless a prime divides all its coefficients)."))
    return certs


def _mpmath_check(h: sympy.Expr, lie: sympy.Expr, system, solver: ConstraintSolver | None,
                  rng: np.random.Generator, points: int) -> Certificate:
    variables = list(system.variables)
    if system.constraints and solver is None:
        return Certificate(False, float("nan"), "undecided",
                           "The constraints cannot be solved for a variable, so no points of "
                           "the constraint set are available for the mpmath check.")
    terms = [sympy.diff(h, v) * f for v, f in zip(variables, system.equations, strict=True)]
    worst = 0.0
    tried = 0
    attempts = 0
    while tried < max(points, 5) and attempts < 50:
        attempts += 1
        row = {v: sympy.Rational(int(rng.integers(-10**6, 10**6)), 10**6) for v in
               (solver.free if solver is not None else variables)}
        ok = True
        if solver is not None:
            for s in reversed(solver.solved):
                a = s.coef.xreplace(row)
                if a == 0:
                    ok = False
                    break
                row[s.var] = -s.rest.xreplace(row) / a
        if not ok:
            continue
        vals = {v: sympy.Float(row[v], 70) for v in variables}
        lv = lie.evalf(60, subs=vals)
        scale = sum(abs(t.evalf(60, subs=vals)) for t in terms)
        if not (lv.is_number and scale.is_number) or not sympy.Abs(lv).is_finite:
            continue
        tried += 1
        rel = float(abs(lv) / scale) if scale != 0 else float(abs(lv))
        worst = max(worst, rel)
    if tried == 0:
        return Certificate(False, float("nan"), "undecided",
                           "grad H . f could not be evaluated at any random point.")
    if worst < 1e-40:
        return Certificate(True, worst, "mpmath-50-digits",
                           f"|grad H . f| / sum |terms| <= {worst:.1e} at {tried} random "
                           "points with 60-digit arithmetic (numerical evidence, not a proof).")
    if worst < 1e-12 and any(isinstance(a, sympy.Float) for a in h.atoms(sympy.Number)):
        return Certificate(False, worst, "mpmath-50-digits",
                           f"|grad H . f| / sum |terms| reaches {worst:.1e} at {tried} random "
                           "points (60 digits): at the rounding level of H's float "
                           "coefficients, so H is conserved to float precision but not "
                           "certified (exact coefficients are needed for 50 digits).")
    return Certificate(False, worst, "mpmath-50-digits",
                       f"|grad H . f| / sum |terms| reaches {worst:.1e} at {tried} random "
                       "points (60 digits): H is not conserved.")
