"""The stages of :func:`aipoincare.discover`, each run once per discovery.

=================  ==================================================  ====================
stage              does                                                returns
=================  ==================================================  ====================
:func:`setup`      basis, scaling blocks, whether exact counts apply    :class:`Problem`
:func:`sample`     float states, f compiled once                        :class:`FloatStates`
:func:`count`      exact counts first (GF(p)); the float null space     :class:`Counts`
                   (spectrum only when the counts are exact)
:func:`sparsify`   a sparse basis of the conserved subspace             :class:`Conserved`
:func:`choose`     functionally independent invariants, greedy          :class:`Chosen`
:func:`certificates`  a certificate per independent invariant           list of Invariant
:func:`assemble`   the :class:`~aipoincare.result.Discovery`            Discovery
=================  ==================================================  ====================

Each stage reads what the earlier ones returned and the :class:`Run` (settings, device,
random generator, timings, notes), so a stage can be replaced on its own: counts from
another matrix (trajectory data), a float spectrum computed only when asked, exact ranks per
(block, prime) on other workers.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from math import comb
from typing import Any

import numpy as np
import sympy
import torch

from traincore import (
    check_memory,
    check_time,
    check_type,
    resolve_device,
)

from .basis import Basis, PolynomialBasis, make_basis
from .certify import Certificate, certify_many
from .config import DEFAULT_DEGREE, DiscoveryConfig
from .constraints import ConstraintSolver, constraint_solver
from .errors import ExactNotApplicable
from .evaluate import compile_torch, is_rational_function
from .exact import ExactNullSpace, exact_null_space, random_prime
from .independence import (
    exact_independence,
    independence_spectrum,
    numerical_independence,
    simplicity_order,
)
from .nullspace import NumericalNullSpace, numerical_null_space
from .plan import INDEPENDENCE_POINTS, default_points, plan_points, wants_spectrum
from .result import Discovery, Invariant
from .sampling import Samples, draw_states
from .scaling import scaling_blocks
from .sparsify import closed_form, float_null_vectors, has_floats, reduce_sparse
from .specs import BasisSpec
from .system import System

#: The stages a discovery goes through (the progress bar counts them).
STAGES = ("basis", "sample", "exact", "numerical", "sparsify", "independence", "certify")

__all__ = ["STAGES", "INDEPENDENCE_POINTS", "Run", "Problem", "FloatStates", "Counts",
           "Conserved", "Chosen", "setup", "default_points", "plan_points", "wants_spectrum",
           "sample", "count", "sparsify", "choose", "certificates", "assemble"]


@dataclass
class Run:
    """One discovery: its system and settings, and what it records on the way.

    The device is resolved and the random generator seeded once, here.
    """

    system: System
    config: DiscoveryConfig
    device: torch.device
    rng: np.random.Generator
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)
    bar: Any = None  # tqdm bar over the stages, when progress is shown

    @classmethod
    def start(cls, system: System, config: DiscoveryConfig) -> Run:
        run = cls(system, config, resolve_device(config.device),
                  np.random.default_rng(config.seed))
        shown = sys.stderr.isatty() if config.progress is None else config.progress
        if shown:
            from tqdm.auto import tqdm

            run.bar = tqdm(total=len(STAGES), desc="aipoincare", unit="stage", leave=False,
                           file=sys.stderr, dynamic_ncols=True)
        return run

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time a stage (its seconds are added to ``timings[name]``), show it on the
        progress bar, and stop at the time limit before and after it."""
        check_time(f"the {name} stage")
        if self.bar is not None:
            self.bar.set_postfix_str(name)
        t = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - t
        if self.bar is not None:
            self.bar.update(1)
        check_time(f"the {name} stage")

    def announce(self, text: str) -> None:
        """A note for the result, and a line on stderr now when progress is shown."""
        self.notes.append(text)
        if self.bar is not None:
            self.bar.write(text, file=sys.stderr)

    def close(self) -> None:
        """Remove the progress bar (idempotent)."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None


@dataclass(frozen=True)
class Problem:
    """The basis and its scaling blocks; ``solver`` is set when exact counts apply."""

    basis: Basis
    blocks: list[np.ndarray]
    solver: ConstraintSolver | None
    why_not_exact: str


@dataclass(frozen=True)
class FloatStates:
    """Sample states, as drawn and as a float64 tensor on the device, and the compiled f."""

    samples: Samples
    x: torch.Tensor  # shape (n_points, n_vars)
    f_fn: Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Counts:
    """The conserved subspace as counted: exactly (``exact`` vectors) or in floats.

    ``states``: the float states drawn again when the exact path was abandoned after a
    sample sized for the exact path only (None: the sample stage's states stand).
    """

    numerical: NumericalNullSpace  # the spectrum when computed; vectors only when not exact
    exact: ExactNullSpace | None
    states: FloatStates | None = None


@dataclass(frozen=True)
class Conserved:
    """A sparse basis of the conserved subspace."""

    vectors: list[dict[int, Any]]  # basis column -> coefficient, one per element
    exprs: list[sympy.Expr]
    coefficients: np.ndarray       # shape (nullity, basis size)


@dataclass(frozen=True)
class Chosen:
    """The functionally independent elements of the conserved basis."""

    kept: list[int]                # indices into Conserved.vectors, simplest first
    spectrum: np.ndarray           # shape (len(kept),): independence spectrum
    ranks: dict[str, int]          # exact Jacobian ranks, "ambient" and "tangent"


# ----------------------------------------------------------------------------------------
# basis and blocks
# ----------------------------------------------------------------------------------------

def build_basis(system: System, basis: Any, degree: int | None) -> Basis:
    """The basis to search: a :class:`Basis` as given, else built from a kind or a spec."""
    if isinstance(basis, Basis):
        if tuple(basis.variables) != tuple(system.variables):
            raise ValueError(f"The 'basis' is built on the variables {list(basis.variables)} "
                             f"but the system has {list(system.variables)}; build it on "
                             "system.variables.")
        return basis
    spec = system.basis if basis is None else basis
    if isinstance(spec, str):
        spec = BasisSpec(kind=spec)
    if spec is None:
        spec = BasisSpec()
    check_type(spec, "basis", BasisSpec, "a kind ('polynomial', 'expressions', 'product'), "
               "a BasisSpec or a Basis")
    if basis is not None:
        spec = system.resolve_basis(spec)  # its names checked against the system's
    deg = degree if degree is not None else (spec.degree or DEFAULT_DEGREE)
    if spec.kind in ("polynomial", "product"):
        n_vars = len(system.variables)
        size = comb(n_vars + deg, deg) * max(1, len(spec.expressions))
        # exponent table, gradient slots and, at the least, a square float matrix
        check_memory(8 * size * (n_vars + 3 * deg) + 8 * 1.2 * size ** 2 / max(1, deg),
                     f"the {spec.kind} basis of degree {deg} in {n_vars} variables "
                     f"({size} functions)", "lower --degree")
    return make_basis(spec.kind, system.variables, deg, spec.expressions)


def setup(run: Run, basis: Any) -> Problem:
    """The basis, its scaling blocks, and whether the counts can be exact (and why not)."""
    system, cfg = run.system, run.config
    bas = build_basis(system, basis, cfg.degree)
    weights, blocks = scaling_blocks(system, bas)
    if len(blocks) > 1:
        run.notes.append(f"Scaling symmetries ({weights.shape[1]}) split the {bas.size} basis "
                         f"functions into {len(blocks)} independent blocks (largest "
                         f"{max(map(len, blocks))}).")
    solver, why_not = None, "f or the basis is not rational with exact coefficients"
    if cfg.exact is not False and bas.rational and all(
            is_rational_function(f, system.variables) for f in system.equations):
        try:
            solver = constraint_solver(tuple(system.variables), tuple(system.constraints))
        except ExactNotApplicable as err:
            why_not = str(err)
    if cfg.exact is True and solver is None:
        raise ValueError(f"Exact counts were requested (exact=True) but do not apply: "
                         f"{why_not}; use exact='auto'.")
    return Problem(bas, blocks, solver, "" if solver is not None else why_not)


# ----------------------------------------------------------------------------------------
# states and counts
# ----------------------------------------------------------------------------------------

def _drop_overflow(run: Run, bas: Basis, samples: Samples,
                   f_fn: Callable[[torch.Tensor], torch.Tensor]) -> Samples:
    """Drop the states where ``grad b . f`` of a polynomial basis would overflow float64.

    The sampler keeps states where f is finite; a monomial of degree d at |x| = 1e150 is
    1e450 all the same, and one such row turns the float matrix into inf/NaN.
    """
    if not isinstance(bas, PolynomialBasis) or not len(samples.states):
        return samples
    x = torch.as_tensor(samples.states, dtype=torch.float64)
    size = x.abs().amax(1).clamp_min(1).log10() * bas.degree  # |x|**d, log10
    size += f_fn(x).abs().amax(1).clamp_min(1).log10()      # times |f|
    ok = (size < 290).numpy()  # float64 ends near 1e308: keep a margin for the sums
    if ok.all():
        return samples
    if not ok.any():
        raise ValueError(f"No usable sample points: the polynomial basis of degree "
                         f"{bas.degree} overflows float64 at every state drawn (|x| up to "
                         f"{float(x.abs().max()):.3g}); lower the [sampling] scale (or "
                         "low/high), or the degree.")
    run.notes.append(f"{int((~ok).sum())} of {len(ok)} sample states dropped: the degree-"
                     f"{bas.degree} basis overflows float64 there.")
    return dataclasses.replace(samples, states=samples.states[ok],
                               dropped=samples.dropped + int((~ok).sum()))


def sample(run: Run, problem: Problem, spectrum: bool = True) -> FloatStates:
    """Float states where f (and a non-polynomial basis) is finite, on the constraint set
    (enough for the float spectrum, or, with ``spectrum=False`` and exact counts, for the
    independence spectrum only)."""
    system, bas = run.system, problem.basis
    n_points = plan_points(run, problem, spectrum)
    f_fn = compile_torch(system.equations, system.variables)
    finite = () if isinstance(bas, PolynomialBasis) else tuple(bas.exprs)
    samples = draw_states(system, n_points, run.config.seed, spec=system.sampling,
                          device=run.device, f_fn=f_fn, finite=finite, min_points=1)
    run.notes.extend(samples.notes)
    samples = _drop_overflow(run, bas, samples, f_fn)
    x = torch.as_tensor(samples.states, dtype=torch.float64, device=run.device)
    biggest = max(map(len, problem.blocks))
    if x.shape[0] < biggest and (spectrum or problem.solver is None):
        run.notes.append(f"Only {x.shape[0]} sample points for a block of {biggest} basis "
                         "functions: the float spectrum has structural zeros.")
    return FloatStates(samples, x, f_fn)


def _float_null_space(run: Run, problem: Problem, states: FloatStates,
                      vectors: bool) -> NumericalNullSpace:
    return numerical_null_space(problem.basis, states.f_fn, states.x, problem.blocks,
                                rtol=run.config.tol, vectors=vectors,
                                threads=run.config.threads or None, per_block=not vectors)


def _no_spectrum(nullity: int) -> NumericalNullSpace:
    """The float null space when it was not computed (exact counts, no spectrum asked)."""
    return NumericalNullSpace(vectors=np.zeros((0, 0)), spectrum=np.zeros(0),
                              nullity=nullity, gap=float("nan"), confidence=1.0,
                              block_nullities=[])


def _exact(run: Run, problem: Problem, client: Any) -> ExactNullSpace | None:
    """The exact null space, with the blocks on the progress bar; None when abandoned."""
    cfg = run.config

    def done(size: int) -> None:
        if run.bar is not None:
            if run.bar.n + 1 > run.bar.total - (len(STAGES) - STAGES.index("exact")):
                run.bar.total += 1  # a block at a further prime: one more step
            run.bar.update(1)
            run.bar.set_postfix_str(f"exact: block of {size} done")

    if run.bar is not None:
        run.bar.total += len(problem.blocks)  # one more step per block (and prime)
        run.bar.refresh()
    try:
        return exact_null_space(run.system, problem.basis, problem.blocks, run.rng,
                                margin=cfg.margin, workers=cfg.workers, client=client,
                                done=done)
    except ExactNotApplicable as err:
        run.notes.append(f"Exact path abandoned ({err}); counts are numerical.")
        return None


def count(run: Run, problem: Problem, states: FloatStates, spectrum: bool = True,
          client: Any = None) -> Counts:
    """Exact counts first where they apply; the float null space otherwise.

    With exact counts the float spectrum is evidence only (plot, JSON, the note when it
    disagrees): computed per block at fewer points and without vectors when ``spectrum``,
    else not at all; without exact counts it decides them (drawing the full sample first
    if the states were sized for the exact path only). ``client``: a Dask client for the
    exact ranks.
    """
    system, exact, redrawn = run.system, None, None
    if problem.solver is not None:
        with run.stage("exact"):
            exact = _exact(run, problem, client)
    elif run.config.exact is not False:
        run.notes.append(f"Counts are numerical: exact arithmetic does not apply "
                         f"({problem.why_not_exact}).")
    with run.stage("numerical"):
        if exact is None and not spectrum and problem.solver is not None:
            states = redrawn = sample(run, problem, spectrum=True)  # the float path decides
        if exact is None or spectrum:
            num = _float_null_space(run, problem, states, vectors=exact is None)
        else:
            num = _no_spectrum(exact.nullity)
    if exact is not None:
        if system.sampling.data is not None:
            run.notes.append("The exact counts use random points of the admissible set, not "
                             "the states of the data file (those feed the float spectrum).")
        run.notes.append(
            f"Exact counts: ranks over GF(p) at {exact.rows} random points of the admissible "
            f"set per prime (primes {', '.join(map(str, exact.primes))}); all "
            f"{exact.nullity} conserved basis vectors lifted to rationals and checked at "
            f"{exact.check_points} fresh points mod {exact.check_prime}.")
        if num.nullity != exact.nullity:
            run.notes.append(f"The float spectrum alone would give nullity {num.nullity} "
                             f"(gap {num.gap:.1f} decades); the exact count is "
                             f"{exact.nullity}.")
    return Counts(num, exact, redrawn)


# ----------------------------------------------------------------------------------------
# sparse basis, independence, certificates
# ----------------------------------------------------------------------------------------

def _expr(vec: dict[int, Any], basis: Basis) -> sympy.Expr:
    return sympy.Add(*[c * basis.exprs[i] for i, c in sorted(vec.items())])


def sparsify(run: Run, problem: Problem, states: FloatStates, counts: Counts) -> Conserved:
    """A sparse basis of the conserved subspace, reduced exactly when it is rational."""
    bas, cfg = problem.basis, run.config
    if counts.exact is not None:
        vectors = list(counts.exact.vectors)
    else:
        vectors = float_null_vectors(counts.numerical, bas, problem.blocks, states.f_fn,
                                     states.x, restarts=cfg.restarts,
                                     steps=cfg.sparsify_steps, seed=cfg.seed,
                                     max_denominator=cfg.max_denominator)
    if all(isinstance(c, sympy.Rational) for v in vectors for c in v.values()):
        vectors = reduce_sparse(vectors)  # exact, invertible: still a (certified) basis
    coef = np.zeros((len(vectors), bas.size))  # shape (nullity, size)
    for k, vec in enumerate(vectors):
        for i, c in vec.items():
            coef[k, i] = float(c)
    return Conserved(vectors, [_expr(v, bas) for v in vectors], coef)


def choose(run: Run, problem: Problem, states: FloatStates, counts: Counts,
           conserved: Conserved) -> Chosen:
    """Functionally independent invariants, greedy by simplicity (exact ranks when exact)."""
    system, bas, vectors = run.system, problem.basis, conserved.vectors
    tangent = run.config.independence == "tangent"
    x = states.x[: min(INDEPENDENCE_POINTS, states.x.shape[0])]
    if not vectors:
        return Chosen([], np.zeros(0), {})
    if counts.exact is None:
        kept, spectrum = numerical_independence(conserved.coefficients, bas, system, x,
                                                order=simplicity_order(vectors, bas),
                                                tangent=tangent)
        return Chosen(kept, spectrum, {})
    ind = exact_independence(vectors, bas, system, problem.solver, run.rng,
                             random_prime(run.rng), tangent=tangent)
    if system.constraints:
        run.notes.append(f"Functional independence ({run.config.independence} gradients): "
                         f"Jacobian rank {ind.ambient_rank} with ambient gradients, {ind.rank} "
                         f"along the constraint set (exact, over GF(p), p = {ind.prime}).")
    if not ind.confirmed:
        run.notes.append("The Jacobian rank at a second random point differs: independence "
                         "count is uncertain.")
    spectrum = independence_spectrum(conserved.coefficients[ind.kept], bas, system, x,
                                     tangent=tangent)
    return Chosen(ind.kept, spectrum, {"ambient": ind.ambient_rank, "tangent": ind.rank})


def certificates(run: Run, problem: Problem, conserved: Conserved,
                 chosen: Chosen) -> list[Invariant]:
    """One :class:`Invariant` per independent element, certified unless switched off."""
    system, bas, seed = run.system, problem.basis, run.config.seed
    exprs = [conserved.exprs[k] for k in chosen.kept]
    certs: list[Certificate | None] = (certify_many(exprs, system, seed=seed)
                                       if run.config.certify else [None] * len(exprs))
    invariants = []
    for k, expr, cert in zip(chosen.kept, exprs, certs, strict=True):
        vec = conserved.vectors[k]
        if cert is not None and not cert.verified and has_floats(vec):
            # float coefficients can never pass a 50-digit check: try closed forms
            guess = closed_form(vec)
            if guess is not None:
                better = certify_many([_expr(guess, bas)], system, seed=seed)[0]
                if better.verified:
                    vec, expr, cert = guess, _expr(guess, bas), better
        coeffs = {bas.labels[i]: c for i, c in vec.items()}
        if cert is None:
            invariants.append(Invariant(expr=expr, verified=False, method="numerical",
                                        detail="certificates were switched off",
                                        coefficients=coeffs))
        else:
            invariants.append(Invariant(expr=expr, verified=cert.verified, method=cert.method,
                                        residual=cert.residual, detail=cert.detail,
                                        coefficients=coeffs))
    return invariants


def assemble(run: Run, problem: Problem, states: FloatStates, counts: Counts,
             conserved: Conserved, chosen: Chosen, invariants: list[Invariant]) -> Discovery:
    """The :class:`~aipoincare.result.Discovery` of the run."""
    num, exact = counts.numerical, counts.exact is not None
    method = "exact-modular" if exact else \
        ("numerical-tol" if run.config.tol is not None else "numerical-gap")
    return Discovery(
        name=run.system.name, variables=run.system.variable_names,
        basis_labels=problem.basis.labels, points=int(states.x.shape[0]),
        nullity=len(conserved.vectors), independent=len(invariants), invariants=invariants,
        spectrum=num.spectrum, dropped=states.samples.dropped, conserved=conserved.exprs,
        coefficients=conserved.coefficients, gap=float(num.gap),
        confidence=1.0 if exact else float(num.confidence), exact=exact, count_method=method,
        independence_spectrum=np.asarray(chosen.spectrum),
        seconds=time.perf_counter() - run.started, timings=run.timings, notes=run.notes,
        independence=run.config.independence, jacobian_ranks=chosen.ranks)
