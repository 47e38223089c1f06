"""The stages of a discovery with symbolic parameters (:func:`aipoincare.discover` runs
them when :attr:`System.symbolic` is not empty).

=====================  ==============================================================
stage                  does
=====================  ==============================================================
:func:`setup`          the basis in the variables, a generic member for the float evidence
:func:`stages.sample`  float states of the generic member (spectrum and plots)
:func:`count`          the generic count, then invariants polynomial in the parameters
                       (:func:`aipoincare.parametric.polynomial_invariants`)
:func:`sparsify`       one canonical primitive representative each
                       (:func:`aipoincare.polyvec.canonical_basis`)
:func:`choose`         functional independence at a random parameter point
:func:`stages.certificates`  identities in the variables and the parameters
:func:`exceptional`    where the result may not hold
:func:`special_values` parameter values with more invariants (:mod:`aipoincare.special`)
=====================  ==============================================================

The counts are generic: those over the field Q(k) of rational functions of the parameters,
equal to the counts at every parameter value outside a proper algebraic subset.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import sympy

from . import polyvec, special, stages
from .constraints import constraint_solver
from .errors import ExactNotApplicable
from .exact import random_prime
from .independence import exact_independence, independence_spectrum
from .nullspace import numerical_null_space
from .parametric import FamilyNullSpace, check_family, generic_point, polynomial_invariants
from .result import Discovery, Exceptional, Family
from .scaling import scaling_blocks
from .stages import Chosen, Conserved, Counts, FloatStates, Problem, Run

__all__ = ["discover_family", "setup", "count", "sparsify", "choose", "exceptional"]


def setup(run: Run, basis: Any) -> tuple[Problem, Any, dict[str, sympy.Rational]]:
    """The basis in the variables, and a generic member of the family for float evidence.

    Returns
    -------
    problem : Problem
        Basis, scaling blocks and constraint solver of the generic member.
    member : System
        The system at the generic point.
    point : dict of str to sympy.Rational
    """
    system, cfg = run.system, run.config
    names = ", ".join(s.name for s in system.symbolic)
    if cfg.exact is False:
        raise ValueError(f"Symbolic parameters ({names}) need the exact path, but exact=False "
                         "was given; use exact='auto' or give the parameters numbers.")
    bas = stages.build_basis(system, basis, cfg.degree)
    check_family(system, bas)
    point = generic_point(system, run.rng)
    member = system.specialise(point)
    weights, blocks = scaling_blocks(member, bas)
    try:
        solver = constraint_solver(tuple(member.variables), tuple(member.constraints))
    except ExactNotApplicable as err:
        raise ValueError(f"Symbolic parameters ({names}) need the exact path, which does "
                         f"not apply: {err}; give the parameters numbers.") from None
    if len(blocks) > 1:
        run.notes.append(f"Scaling symmetries ({weights.shape[1]}) split the {bas.size} basis "
                         f"functions into {len(blocks)} independent blocks (largest "
                         f"{max(map(len, blocks))}).")
    return Problem(bas, blocks, solver, ""), member, point


def count(run: Run, problem: Problem, states: FloatStates, member: Any
          ) -> tuple[Counts, FamilyNullSpace]:
    """The generic count and polynomial invariants; the float spectrum of the member."""
    cfg = run.config
    with run.stage("exact"):
        fam = polynomial_invariants(run.system, problem.basis, run.rng, margin=cfg.margin,
                                    degree=cfg.parameter_degree)
    with run.stage("numerical"):
        num = numerical_null_space(problem.basis, states.f_fn, states.x, problem.blocks,
                                   rtol=cfg.tol, vectors=False, threads=cfg.threads or None)
    ev = fam.exact
    if ev is not None:
        run.notes.append(
            f"Exact counts: the generic count {fam.generic} from ranks over GF(p) at random "
            f"parameter points; the invariants from the exact null space over Q of the basis "
            f"times every parameter monomial of degree <= {fam.degree} (parameters as "
            f"variables with zero derivative; {ev.rows} random points of (variables, "
            f"parameters) per prime, lifted vectors checked at {ev.check_points} fresh points "
            f"mod {ev.check_prime}).")
    if num.nullity != fam.generic:
        run.notes.append(f"The float spectrum at the generic point alone would give nullity "
                         f"{num.nullity} (gap {num.gap:.1f} decades); the exact generic count "
                         f"is {fam.generic}.")
    return Counts(num, ev), fam


def sparsify(run: Run, problem: Problem, fam: FamilyNullSpace,
             point: dict[str, sympy.Rational]) -> tuple[Conserved, list[polyvec.Vector]]:
    """The canonical primitive basis over Q(k), as SymPy coefficients and expressions."""
    symbols = run.system.symbolic
    canon = polyvec.canonical_basis(fam.vectors)
    vectors = [{i: polyvec.to_sympy(c, symbols) for i, c in sorted(v.items())} for v in canon]
    exprs = [polyvec.grouped_expr(v, problem.basis.exprs, symbols) for v in canon]
    at = {sympy.Symbol(k): v for k, v in point.items()}
    coef = np.zeros((len(vectors), problem.basis.size))  # shape (nullity, size), at the point
    for k, vec in enumerate(vectors):
        for i, c in vec.items():
            coef[k, i] = float(c.xreplace(at))
    return Conserved(vectors, exprs, coef), canon


def choose(run: Run, problem: Problem, states: FloatStates, conserved: Conserved,
           canon: list[polyvec.Vector], member: Any) -> Chosen:
    """Functional independence in the variables at a random parameter point (mod p)."""
    if not canon:
        return Chosen([], np.zeros(0), {})
    system, rng = run.system, run.rng
    tangent = run.config.independence == "tangent"
    p = random_prime(rng)
    values = [int(rng.integers(1, p)) for _ in system.symbolic]
    at = system.specialise(dict(zip((s.name for s in system.symbolic), values, strict=True)))
    vectors = [{i: sympy.Integer(v) for i, v in polyvec.evaluate_mod_p(c, values, p).items()}
               for c in canon]
    solver = constraint_solver(tuple(at.variables), tuple(at.constraints))
    ind = exact_independence(vectors, problem.basis, at, solver, rng, p, tangent=tangent)
    if not ind.confirmed:
        run.notes.append("The Jacobian rank at a second random point differs: independence "
                         "count is uncertain.")
    x = states.x[: min(48, states.x.shape[0])]
    spectrum = independence_spectrum(conserved.coefficients[ind.kept], problem.basis, member,
                                     x, tangent=tangent)
    return Chosen(ind.kept, spectrum, {"ambient": ind.ambient_rank, "tangent": ind.rank})


def _denominator_factors(system) -> list[sympy.Expr]:
    """Factors in the parameters alone of the denominators of the equations/constraints."""
    params = set(system.symbolic)
    out: list[sympy.Expr] = []
    for e in (*system.equations, *system.constraints):
        den = sympy.denom(sympy.together(e))
        for fac, _ in sympy.factor_list(den)[1]:
            if fac.free_symbols and fac.free_symbols <= params and fac not in out:
                out.append(fac)
    return out


def exceptional(run: Run, canon: list[polyvec.Vector], ring: Any,
                labels: list[str]) -> list[Exceptional]:
    """Where the equations are undefined, where an invariant vanishes identically, and
    where the conserved basis becomes linearly dependent (codimension one)."""
    symbols = run.system.symbolic
    out = [Exceptional((f,), "the equations are undefined (a denominator vanishes)")
           for f in _denominator_factors(run.system)]
    for vec, label in zip(canon, labels, strict=True):
        zeros = polyvec.vanishing_set(vec, symbols)
        if zeros:
            out.append(Exceptional(tuple(zeros), f"{label} vanishes identically"))
    locus = polyvec.dependence_locus(canon, ring, run.rng)
    for fac in polyvec.factors(locus):
        out.append(Exceptional((polyvec.to_sympy(fac, symbols),),
                               "the conserved basis becomes linearly dependent"))
    return out


def _labels(conserved: Conserved, chosen: Chosen) -> list[str]:
    """'H2' for the independent invariants (report order), 'conserved[j]' otherwise."""
    names = {k: f"H{n}" for n, k in enumerate(chosen.kept, 1)}
    return [names.get(j, f"conserved[{j}]") for j in range(len(conserved.vectors))]


def discover_family(run: Run, basis: Any) -> Discovery:
    """A discovery with symbolic parameters: the stages above, then the Discovery with its
    :class:`~aipoincare.result.Family`."""
    system, cfg = run.system, run.config
    if run.bar is not None:  # two more stages: the exceptional set and the special values
        run.bar.total = len(stages.STAGES) + 2
    with run.stage("basis"):
        problem, member, point = setup(run, basis)
    float_run = dataclasses.replace(run, system=member)  # shares notes and timings
    with run.stage("sample"):
        states = stages.sample(float_run, problem)
    counts, fam = count(run, problem, states, member)
    with run.stage("sparsify"):
        conserved, canon = sparsify(run, problem, fam, point)
    with run.stage("independence"):
        chosen = choose(run, problem, states, conserved, canon, member)
    with run.stage("certify"):
        invariants = stages.certificates(run, problem, conserved, chosen)
    with run.stage("exceptional"):
        excluded = exceptional(run, canon, fam.ring, _labels(conserved, chosen))
    found, note = None, "not searched (special_values=False)"
    if cfg.special_values:
        with run.stage("special"):
            found, note = special.special_values(system, problem.basis, fam.generic, run.rng,
                                                 margin=cfg.margin)
    names = ", ".join(s.name for s in system.symbolic)
    shown = ", ".join(f"{k} = {v}" for k, v in point.items())
    run.notes.append(
        f"Symbolic parameters {names}: the counts are generic (over the rational functions "
        f"of the parameters: the same for every parameter value outside a proper algebraic "
        f"subset); each invariant is conserved for every parameter value where the "
        f"equations are defined; outside the exceptional set the invariants are also "
        f"nonzero and linearly independent. Float spectrum, plots and float coefficients "
        f"are at the generic point {shown}.")
    d = stages.assemble(run, problem, states, counts, conserved, chosen, invariants)
    d.family = Family(tuple(s.name for s in system.symbolic), dict(point), fam.degree,
                      tuple(excluded), None if found is None else tuple(found), note)
    return d
