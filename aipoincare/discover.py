"""``discover``: every conserved quantity of a system in a basis, with counts and certificates.

Pipeline (Sparse Invariant Detector, AI Poincare 3.0, with exact arithmetic on top):

1. basis (:mod:`aipoincare.basis`), split into blocks of equal scaling weight when the
   system has scaling symmetries (the conserved subspace is the direct sum of the blocks');
2. float samples (:func:`aipoincare.sampling.sample_states`) and the normalised matrix
   ``grad b_i . f`` per block, its singular values and the largest gap
   (:mod:`aipoincare.nullspace`);
3. for rational systems and bases, the exact conserved subspace over Q from modular
   arithmetic (:mod:`aipoincare.exact`): the counts are exact, the basis is the sparse
   rational RREF null basis; otherwise the float RREF-style basis (or the L1 rotation of
   the paper when that is sparser), rationalised where the residual allows; rational bases
   are then reduced further by exact eliminations (:mod:`aipoincare.sparsify`);
4. independent invariants, greedy by simplicity with Jacobian ranks
   (:mod:`aipoincare.independence`);
5. certificates (:mod:`aipoincare.certify`).

Functional independence on a constrained system is decided with ambient gradients by
default (``independence="ambient"``): the fluids' constraint functions are conserved by
the flow everywhere (not only on the constraint set), so they are genuine invariants of the
ODE and count, which reproduces the published counts (8 and 14). With
``independence="tangent"`` only gradients along the constraint set count (7 and 13 there);
both ranks are always reported in ``Discovery.notes``.

References
----------
Liu, Sturm, Bharadwaj, Silva & Tegmark, "Discovering new interpretable conservation laws as
sparse invariants", arXiv:2305.19525.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from math import comb
from typing import Any

import numpy as np
import sympy
import torch

from traincore import check_memory, resolve_device

from .basis import (
    Basis,
    PolynomialBasis,
    make_basis,
    scaling_weights,
    weight_blocks,
)
from .certify import certify_many
from .evaluate import compile_torch, is_rational_function
from .exact import ExactNotApplicable, constraint_solver, exact_null_space, random_prime
from .independence import exact_independence, numerical_independence, simplicity_order
from .nullspace import numerical_null_space, scaled_matrix
from .result import Discovery, Invariant
from .sparsify import (
    L1_MAX_DIM,
    float_rref,
    l1_rotation,
    rationalize,
    reduce_sparse,
    sparsest,
)
from .system import BasisSpec, System

__all__ = ["DiscoveryConfig", "discover", "DEFAULT_DEGREE"]

#: Degree of the polynomial basis when neither the call nor the system file gives one.
DEFAULT_DEGREE = 3

#: A rationalised float null vector is kept when its residual in the scaled matrix (unit
#: rows, unit-size gradients) stays below this: true null vectors sit at 1e-15..1e-14, a
#: wrong fraction such as 10/81 for 0.123456789 is caught at 1e-9.
RATIONAL_RESIDUAL = 1e-12


@dataclass(frozen=True)
class DiscoveryConfig:
    """Settings of :func:`discover` (validated on construction).

    Attributes
    ----------
    degree : int or None
        Polynomial degree 1..8; None: the system file's, else 3 (the paper's examples).
    points : int or None
        Float sample points; None: 1.2x the basis size + 10, so the matrix has at least
        1.2x as many rows as columns (each scaling block needs only its own size, but the
        margin makes the float cut robust).
    seed : int
        Seeds sampling, primes, random points and restarts (same seed, same result).
    device : str
        "auto", "cpu", "cuda" or "cuda:N" for the float matrix.
    tol : float or None
        Fixed relative cut of the singular values instead of the largest gap.
    exact : "auto", True or False
        Exact modular counts when the system and basis are rational ("auto"); True fails
        when they are not; False forces the numerical path.
    certify : bool
        Certify the independent invariants (seconds on the fluids).
    independence : "ambient" or "tangent"
        Gradients used for functional independence on constrained systems (see module doc).
    margin : int
        Extra rows beyond a block's size in the modular matrices.
    restarts : int
        Random restarts of the L1 rotation (numerical path).
    sparsify_steps : int
        L-BFGS steps per restart.
    max_denominator : int
        Largest denominator when rationalising float coefficients.
    """

    degree: int | None = None          # None: from the system file, else DEFAULT_DEGREE
    points: int | None = None          # None: 1.2x the basis size + 10
    seed: int = 0                      # one seed for everything random
    device: str = "auto"               # float matrix on the GPU when there is one
    tol: float | None = None           # None: largest gap in the spectrum
    exact: bool | str = "auto"         # exact counts whenever rational
    certify: bool = True               # certificates are the point of the tool
    independence: str = "ambient"      # reproduces the published counts (see module doc)
    margin: int = 12                   # rank deficiency by bad luck ~ rows*deg/p per prime
    restarts: int = 4                  # the paper uses a few random restarts
    sparsify_steps: int = 30           # L-BFGS converges in tens of steps on these sizes
    max_denominator: int = 100         # "nice" rationals only; else keep the float

    def __post_init__(self) -> None:
        if self.degree is not None:
            if isinstance(self.degree, bool) or not isinstance(self.degree, int):
                raise TypeError(f"The 'degree' must be an integer from 1 to 8; got "
                                f"{type(self.degree).__name__} {self.degree!r}.")
            if not 1 <= self.degree <= 8:
                raise ValueError(f"The 'degree' must be an integer from 1 to 8; got "
                                 f"{self.degree}.")
        if self.points is not None and (isinstance(self.points, bool)
                                        or not isinstance(self.points, int)
                                        or self.points < 1):
            raise ValueError(f"The number of 'points' must be a positive integer; got "
                             f"{self.points!r}.")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"The 'seed' must be a non-negative integer; got {self.seed!r}.")
        if not isinstance(self.device, (str, torch.device)):
            raise TypeError(f"The 'device' must be 'auto', 'cpu', 'cuda' or 'cuda:N'; got "
                            f"{type(self.device).__name__} {self.device!r}.")
        if self.tol is not None and (isinstance(self.tol, bool)
                                     or not isinstance(self.tol, (int, float))
                                     or not 0 < self.tol < 1):
            raise ValueError(f"The tolerance 'tol' must be a number in (0, 1), e.g. 1e-9; got "
                             f"{self.tol!r}.")
        if self.exact not in ("auto", True, False):
            raise ValueError(f"The option 'exact' must be 'auto', True or False; got "
                             f"{self.exact!r}.")
        if self.independence not in ("ambient", "tangent"):
            raise ValueError(f"The option 'independence' must be 'ambient' or 'tangent'; got "
                             f"{self.independence!r}.")
        for name in ("margin", "restarts", "sparsify_steps", "max_denominator"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"The option '{name}' must be a positive integer; got "
                                 f"{value!r}.")


def _build_basis(system: System, basis: Any, degree: int | None) -> Basis:
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
    if not isinstance(spec, BasisSpec):
        raise TypeError(f"The 'basis' must be a kind ('polynomial', 'expressions', 'product'), "
                        f"a BasisSpec or a Basis; got {type(basis).__name__}.")
    deg = degree if degree is not None else (spec.degree or DEFAULT_DEGREE)
    if spec.kind in ("polynomial", "product"):
        n_vars = len(system.variables)
        size = comb(n_vars + deg, deg) * max(1, len(spec.expressions))
        # exponent table, gradient slots and, at the least, a square float matrix
        check_memory(8 * size * (n_vars + 3 * deg) + 8 * 1.2 * size ** 2 / max(1, deg),
                     f"the {spec.kind} basis of degree {deg} in {n_vars} variables "
                     f"({size} functions)", "lower --degree")
    return make_basis(spec.kind, system.variables, deg, spec.expressions)


def _expr(vec: dict[int, Any], basis: Basis) -> sympy.Expr:
    return sympy.Add(*[c * basis.exprs[i] for i, c in sorted(vec.items())])


def discover(system: System, degree: int | None = None, basis: Any = None,
             points: int | None = None, seed: int = 0, device: str = "auto",
             tol: float | None = None, exact: bool | str = "auto",
             config: DiscoveryConfig | None = None, **options: Any) -> Discovery:
    """Find the conserved subspace of a basis and the independent invariants, certified.

    Parameters
    ----------
    system : System
    degree : int, optional
        Polynomial degree (1..8); default the system file's, else 3.
    basis : str, BasisSpec or Basis, optional
        Default: the system file's ``[basis]``, else polynomial.
    points : int, optional
        Float sample points (default: from the basis size).
    seed : int
    device : str
        "auto", "cpu", "cuda".
    tol : float, optional
        Fixed cut of the normalised singular values instead of the largest gap.
    exact : "auto", True or False
    config : DiscoveryConfig, optional
        All settings at once (the keyword arguments above then must be left at defaults).
    **options
        Other :class:`DiscoveryConfig` fields (``certify``, ``independence``, ...).

    Returns
    -------
    Discovery

    Examples
    --------
    >>> x, y, z = sympy.symbols("x y z")
    >>> lv = System(variables=(x, y, z), equations=(x*(y - z), y*(z - x), z*(x - y)))
    >>> d = discover(lv, degree=3, seed=0, device="cpu")
    >>> d.nullity, d.independent, [str(i.expr) for i in d.invariants]
    (4, 2, ['x*y*z', 'x + y + z'])
    """
    t_start = time.perf_counter()
    if not isinstance(system, System):
        raise TypeError(f"The 'system' must be an aipoincare.System (see load_system); got "
                        f"{type(system).__name__}.")
    if config is None:
        config = DiscoveryConfig(degree=degree, points=points, seed=seed, device=device,
                                 tol=tol, exact=exact, **options)
    cfg = config
    timings: dict[str, float] = {}
    notes: list[str] = []
    rng = np.random.default_rng(cfg.seed)
    dev = resolve_device(cfg.device)

    t = time.perf_counter()
    bas = _build_basis(system, basis, cfg.degree)
    variables = list(system.variables)
    if isinstance(bas, PolynomialBasis):
        weights = scaling_weights(system.equations, variables, system.constraints)
        blocks = weight_blocks(bas.exponents, weights)
    else:
        weights = np.zeros((len(variables), 0), dtype=np.int64)
        blocks = [np.arange(bas.size)]
    if len(blocks) > 1:
        notes.append(f"Scaling symmetries ({weights.shape[1]}) split the {bas.size} basis "
                     f"functions into {len(blocks)} independent blocks (largest "
                     f"{max(map(len, blocks))}).")
    rational = bas.rational and all(is_rational_function(f, variables)
                                    for f in system.equations)
    why_not = "" if rational else "f or the basis is not rational with exact coefficients"
    solver = None
    if rational and cfg.exact is not False:
        try:
            solver = constraint_solver(tuple(variables), tuple(system.constraints))
        except ExactNotApplicable as err:
            why_not = str(err)
    use_exact = solver is not None and cfg.exact is not False
    if cfg.exact is True and not use_exact:
        raise ValueError(f"Exact counts were requested (exact=True) but do not apply: "
                         f"{why_not}; use exact='auto'.")
    timings["basis"] = time.perf_counter() - t

    # ---- float samples and spectrum
    t = time.perf_counter()
    from .sampling import sample_states

    n_points = cfg.points or system.sampling.points or \
        max(20, math.ceil(1.2 * bas.size) + 10)
    finite = () if isinstance(bas, PolynomialBasis) else tuple(bas.exprs)
    samples = sample_states(system, n_points, seed=cfg.seed, device=dev, finite=finite,
                            min_points=1)
    notes.extend(samples.notes)
    x = torch.as_tensor(samples.states, dtype=torch.float64, device=dev)
    if x.shape[0] < max(map(len, blocks)):
        notes.append(f"Only {x.shape[0]} sample points for a block of "
                     f"{max(map(len, blocks))} basis functions: the float spectrum has "
                     "structural zeros.")
    f_fn = compile_torch(system.equations, variables)
    timings["sample"] = time.perf_counter() - t
    t = time.perf_counter()
    num = numerical_null_space(bas, f_fn, x, blocks, rtol=cfg.tol, vectors=not use_exact)
    timings["numerical"] = time.perf_counter() - t

    vectors: list[dict[int, Any]] = []
    count_method = "numerical-tol" if cfg.tol is not None else "numerical-gap"
    is_exact = False
    if use_exact:
        t = time.perf_counter()
        try:
            ens = exact_null_space(system, bas, blocks, rng, margin=cfg.margin)
            vectors = ens.vectors
            is_exact = True
            count_method = "exact-modular"
            if system.sampling.data is not None:
                notes.append("The exact counts use random points of the admissible set, not "
                             "the states of the data file (those feed the float spectrum).")
            notes.append(f"Exact counts: ranks over GF(p) at {ens.rows} random points of the "
                         f"admissible set per prime (primes {', '.join(map(str, ens.primes))})"
                         f"; all {ens.nullity} conserved basis vectors lifted to rationals and "
                         f"checked at {ens.check_points} fresh points mod {ens.check_prime}.")
            if num.nullity != ens.nullity:
                notes.append(f"The float spectrum alone would give nullity {num.nullity} "
                             f"(gap {num.gap:.1f} decades); the exact count is {ens.nullity}.")
        except ExactNotApplicable as err:
            notes.append(f"Exact path abandoned ({err}); counts are numerical.")
            num = numerical_null_space(bas, f_fn, x, blocks, rtol=cfg.tol, vectors=True)
        timings["exact"] = time.perf_counter() - t
    elif cfg.exact is not False:
        notes.append(f"Counts are numerical: exact arithmetic does not apply ({why_not}).")

    t = time.perf_counter()
    if not is_exact:
        vectors, _ = _numerical_vectors(num, bas, blocks, f_fn, x, cfg)
    if all(isinstance(c, sympy.Rational) for v in vectors for c in v.values()):
        vectors = reduce_sparse(vectors)  # exact, invertible: still a (certified) basis
    coef_float = np.zeros((len(vectors), bas.size))  # shape (nullity, size)
    for k, vec in enumerate(vectors):
        for i, c in vec.items():
            coef_float[k, i] = float(c)
    nullity = len(vectors)
    conserved = [_expr(v, bas) for v in vectors]
    timings["sparsify"] = time.perf_counter() - t

    # ---- independence
    t = time.perf_counter()
    tangent = cfg.independence == "tangent"
    ranks: dict[str, int] = {}
    order = simplicity_order(vectors, bas)
    m = min(48, x.shape[0])
    if is_exact and nullity:
        ind = exact_independence(vectors, bas, system, solver, rng,
                                 random_prime(rng), tangent=tangent)
        kept = ind.kept
        ranks = {"ambient": ind.ambient_rank, "tangent": ind.rank}
        if system.constraints:
            notes.append(f"Functional independence ({cfg.independence} gradients): Jacobian "
                         f"rank {ind.ambient_rank} with ambient gradients, {ind.rank} along "
                         "the constraint set (exact, over GF(p)).")
        if not ind.confirmed:
            notes.append("The Jacobian rank at a second random point differs: independence "
                         "count is uncertain.")
        _, ind_spec = numerical_independence(coef_float[kept], bas, system, x[:m],
                                             tangent=tangent)
    elif nullity:
        kept, _ = numerical_independence(coef_float, bas, system, x[:m], order=order,
                                         tangent=tangent)
        _, ind_spec = numerical_independence(coef_float[kept], bas, system, x[:m],
                                             tangent=tangent)
    else:
        kept, ind_spec = [], np.zeros(0)
    timings["independence"] = time.perf_counter() - t

    # ---- certificates
    t = time.perf_counter()
    invariants = []
    certs = certify_many([conserved[k] for k in kept], system, seed=cfg.seed) \
        if cfg.certify else [None] * len(kept)
    for k, cert in zip(kept, certs, strict=True):
        if cert is not None and not cert.verified and _has_floats(vectors[k]):
            # float coefficients can never pass a 50-digit check: try closed forms
            guess = _closed_form(vectors[k])
            if guess is not None:
                better = certify_many([_expr(guess, bas)], system, seed=cfg.seed)[0]
                if better.verified:
                    vectors[k], conserved[k], cert = guess, _expr(guess, bas), better
        coeffs = {bas.labels[i]: c for i, c in vectors[k].items()}
        if cert is not None:
            invariants.append(Invariant(expr=conserved[k], verified=cert.verified,
                                        method=cert.method, residual=cert.residual,
                                        detail=cert.detail, coefficients=coeffs))
        else:
            invariants.append(Invariant(expr=conserved[k], verified=False, method="numerical",
                                        detail="certificates were switched off",
                                        coefficients=coeffs))
    timings["certify"] = time.perf_counter() - t

    return Discovery(
        name=system.name, variables=[str(v) for v in variables], basis_labels=bas.labels,
        points=int(x.shape[0]), nullity=nullity, independent=len(invariants),
        invariants=invariants, spectrum=num.spectrum, dropped=samples.dropped,
        conserved=conserved, coefficients=coef_float, gap=float(num.gap),
        confidence=1.0 if is_exact else float(num.confidence), exact=is_exact,
        count_method=count_method, independence_spectrum=np.asarray(ind_spec),
        seconds=time.perf_counter() - t_start, timings=timings, notes=notes,
        independence=cfg.independence, jacobian_ranks=ranks)


def _has_floats(vec: dict[int, Any]) -> bool:
    return any(isinstance(c, sympy.Float) for c in vec.values())


def _closed_form(vec: dict[int, Any], max_terms: int = 40) -> dict[int, Any] | None:
    """Coefficients identified as closed forms (rationals, square roots, pi, E) or None.

    Uses :func:`sympy.nsimplify` on numbers (no text is parsed); the result is only kept
    by the caller when it then passes a certificate.
    """
    if len(vec) > max_terms:
        return None
    out = {}
    for i, c in vec.items():
        options = [sympy.nsimplify(float(c), consts, tolerance=1e-10)
                   for consts in ([], [sympy.pi], [sympy.E])]
        guess = min(options, key=sympy.count_ops)
        if not guess.is_number or sympy.count_ops(guess) > 6:
            return None
        out[i] = guess
    return out


def _rationalise_block(w: np.ndarray, block: np.ndarray, size: int, a_s: np.ndarray,
                       scale: np.ndarray, cfg: DiscoveryConfig) -> list:
    """Per column of ``w`` (block coordinates): (sparse rational vector, dense theta) when
    the rationalised vector keeps the scaled residual below RATIONAL_RESIDUAL, else None."""
    full = np.zeros((size, w.shape[1]))
    full[block] = w
    out = []
    for rat in rationalize(full, cfg.max_denominator):
        theta = np.zeros(size)
        for i, c in rat.items():
            theta[i] = float(c)
        ts = theta * scale
        res = float(np.abs(a_s @ ts).max()) / max(float(np.linalg.norm(ts)), 1e-300)
        out.append((rat, theta) if rat and res < RATIONAL_RESIDUAL else None)
    return out


def _numerical_vectors(num, bas: Basis, blocks, f_fn, x: torch.Tensor, cfg: DiscoveryConfig
                       ) -> tuple[list[dict[int, Any]], np.ndarray]:
    """Sparse (L1-rotated) float null vectors, rationalised where the residual stays tiny."""
    check = x[: min(64, x.shape[0])]
    # residuals in the scaled matrix (unit rows, columns by gradient size): a conserved basis
    # function's zero column must not make its own residual look large
    a_s, scale = scaled_matrix(bas, f_fn, check)
    row = torch.linalg.vector_norm(a_s, dim=1, keepdim=True)
    a_s = (a_s / torch.where(row > 0, row, torch.ones_like(row))).cpu().numpy()
    scale = scale.cpu().numpy()
    vectors: list[dict[int, Any]] = []
    rows: list[np.ndarray] = []
    col = 0
    for block, k in zip(blocks, num.block_nullities, strict=True):
        if k == 0:
            continue
        v = num.vectors[:, col:col + k]
        col += k
        sub = v[block]  # shape (block size, k)
        q, _ = np.linalg.qr(sub)
        w = float_rref(q)
        accepted = _rationalise_block(w, block, bas.size, a_s, scale, cfg)
        if any(r is None for r in accepted) and k <= L1_MAX_DIM:
            # the RREF basis is not clean: try the paper's L1 rotation too, keep the sparser
            w = sparsest([w, l1_rotation(q, restarts=cfg.restarts, steps=cfg.sparsify_steps,
                                         seed=cfg.seed)])
            accepted = _rationalise_block(w, block, bas.size, a_s, scale, cfg)
        for j, rat in enumerate(accepted):
            if rat is not None:
                vec, theta = rat
            else:  # keep the float vector (certification will say what it is worth)
                wj = np.zeros(bas.size)
                wj[block] = w[:, j] / w[np.argmax(np.abs(w[:, j])), j]
                wj[np.abs(wj) < 1e-9] = 0.0
                vec = {int(i): sympy.Float(wj[i], 15) for i in np.nonzero(wj)[0]}
                theta = wj
            vectors.append(vec)
            rows.append(theta)
    coef = np.array(rows).reshape(len(rows), bas.size)
    return vectors, coef
