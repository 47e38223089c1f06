"""Functional independence of conserved quantities: greedy by simplicity, Jacobian rank.

Candidates are ordered by simplicity (fewest terms, then lowest degree, then basis order);
one is kept only if it raises the rank of the Jacobian of the kept set.

On a constrained system the invariants are functions on the constraint set, so their
gradients count only along the set: the rank used is that of the Jacobian restricted to the
tangent space, ``rank([J; dg]) - rank(dg)`` with ``dg`` the constraint gradients. (With
ambient gradients, the constraint function itself and its multiples, which vanish on the
set and are trivially "conserved" there, would count as extra invariants.) Both ranks are
reported by :func:`exact_independence`.

* Exact: ranks over GF(p) at random points of the constraint set (a rank at a random point
  equals the generic rank except with probability about degree/p).
* Numerical: normalised singular values of the (tangent) Jacobian at many float points.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import flint
import numpy as np
import sympy
import torch

from .basis import Basis
from .evaluate import compile_torch, eval_mod_p

__all__ = ["simplicity_order", "gradient_exprs", "ExactIndependence", "exact_independence",
           "numerical_independence", "independence_spectrum"]


def simplicity_order(vectors: Sequence[dict[int, object]], basis: Basis) -> list[int]:
    """Indices of ``vectors`` (sparse column -> coefficient) from simplest to most complex.

    Key: number of terms, then highest total degree, then the vector's last basis column.
    """
    exps = getattr(basis, "exponents", None)
    cache: dict[int, int] = {}

    def degree(i: int) -> int:
        if exps is not None:
            return int(exps[i].sum())
        if i not in cache:
            e = basis.exprs[i]
            cache[i] = (sympy.Poly(e, *basis.variables).total_degree()
                        if e.is_polynomial(*basis.variables) else 99)
        return cache[i]

    def key(k: int) -> tuple:
        v = vectors[k]
        return (len(v), max((degree(i) for i in v), default=0), max(v, default=0), k)

    return sorted(range(len(vectors)), key=key)


@dataclass
class ExactIndependence:
    """Greedy exact independence result.

    Attributes
    ----------
    kept : list of int
        Indices (into the candidate list) of the independent invariants, in greedy order.
    rank : int
        Tangent Jacobian rank of all candidates (the plain rank without constraints).
    ambient_rank : int
        Rank with ambient gradients (ignoring the constraints).
    prime : int
    confirmed : bool
        The rank (of the chosen kind) at a second independent random point agrees.
    """

    kept: list[int]
    rank: int
    ambient_rank: int
    prime: int
    confirmed: bool


def gradient_exprs(g: sympy.Expr, variables: Sequence[sympy.Symbol]) -> list[sympy.Expr]:
    """``[dg/dx for x in variables]``; a polynomial through ``Poly`` (many times faster than
    ``sympy.diff`` on the 3D fluid's 72-term constraint).

    >>> x, y = sympy.symbols("x y")
    >>> gradient_exprs(x**2*y + y, [x, y])
    [2*x*y, x**2 + 1]
    """
    if g.is_polynomial(*variables):
        poly = sympy.Poly(g, *variables)
        return [poly.diff(v).as_expr() for v in variables]
    return [sympy.diff(g, v) for v in variables]


def _rank_mod_p(rows: np.ndarray, p: int) -> int:
    if rows.shape[0] == 0:
        return 0
    return int(flint.nmod_mat(rows.tolist(), p).rank())


def _jacobians_mod_p(vectors: Sequence[dict[int, sympy.Rational]], basis: Basis,
                     grads: np.ndarray, p: int) -> np.ndarray:
    """J[c] = sum_i theta_ci grad b_i at one point; grads shape (size, n_vars) -> (m, n_vars)."""
    out = np.zeros((len(vectors), grads.shape[1]), dtype=np.int64)
    for c, vec in enumerate(vectors):
        acc = np.zeros(grads.shape[1], dtype=np.int64)
        for i, coef in vec.items():
            r = sympy.Rational(coef)
            cm = int(r.p) % p * pow(int(r.q), -1, p) % p
            acc = (acc + grads[i] * cm) % p
        out[c] = acc
    return out


def exact_independence(vectors: Sequence[dict[int, sympy.Rational]], basis: Basis,
                       system, solver, rng: np.random.Generator, p: int,
                       tangent: bool = False) -> ExactIndependence:
    """Greedy functional independence by exact ranks over GF(p).

    Parameters
    ----------
    vectors : sequence of dict of int to sympy.Rational
        Candidates, sparse (basis column -> coefficient).
    basis : Basis
        A rational basis.
    system : aipoincare.System
    solver : aipoincare.exact.ConstraintSolver
        Draws points of the constraint set mod p.
    rng : numpy.random.Generator
    p : int
        A prime below 2**31.
    tangent : bool
        Greedy selection with gradients restricted to the tangent space of the constraint
        set (True) or ambient gradients (False). Both final ranks are reported.
    """
    order = simplicity_order(vectors, basis)
    dg_exprs = [d for g in system.constraints for d in gradient_exprs(g, system.variables)]
    jac, cons = [], []
    tries = 0
    while len(jac) < 2:  # two independent random points (the second confirms the first)
        tries += 1
        if tries > 50:
            raise ValueError(f"The basis gradients or constraint gradients are undefined "
                             f"(mod {p}) at almost every random point; no Jacobian rank.")
        pts, ok = solver.sample_mod_p(4, p, rng)
        g, ok_g = basis.gradients_mod_p(pts, p)
        keep = ok & ok_g
        if dg_exprs:
            dg, ok_c = eval_mod_p(dg_exprs, system.variables, pts, p)
            keep &= ok_c
        for j in np.nonzero(keep)[0][: 2 - len(jac)]:
            jac.append(_jacobians_mod_p(vectors, basis, g[j], p))
            cons.append(dg[j].reshape(len(system.constraints), -1) if dg_exprs
                        else np.zeros((0, len(system.variables)), dtype=np.int64))
    base = [_rank_mod_p(c, p) for c in cons]
    extra = cons[0] if tangent else cons[0][:0]
    offset = base[0] if tangent else 0
    kept: list[int] = []
    rank = 0
    for k in order:
        trial = kept + [k]
        r = _rank_mod_p(np.vstack([jac[0][trial], extra]), p) - offset
        if r > rank:
            kept.append(k)
            rank = r
    tangent_rank = _rank_mod_p(np.vstack([jac[0], cons[0]]), p) - base[0]
    ambient = _rank_mod_p(jac[0], p)
    second = (_rank_mod_p(np.vstack([jac[1], cons[1]]), p) - base[1] if tangent
              else _rank_mod_p(jac[1], p))
    return ExactIndependence(kept=kept, rank=tangent_rank, ambient_rank=ambient, prime=p,
                             confirmed=second == rank)


def _unit_jacobians(coefficients: np.ndarray, basis: Basis, system, x: torch.Tensor,
                    tangent: bool) -> torch.Tensor:
    """Gradients of the candidates at the points, unit length, projected onto the tangent
    space of the constraint set when ``tangent``: shape (n_points, m, n_vars)."""
    g = basis.gradients_torch(x)  # shape (n, size, n_vars)
    theta = torch.as_tensor(coefficients, dtype=torch.float64, device=x.device)
    jac = torch.einsum("ci,nik->nck", theta, g)  # shape (n, m, n_vars)
    jac = jac / torch.linalg.vector_norm(jac, dim=2, keepdim=True).clamp_min(1e-300)
    if system.constraints and tangent:
        dg = compile_torch([sympy.diff(c, v) for c in system.constraints
                            for v in system.variables], system.variables)(x)
        dg = dg.reshape(x.shape[0], len(system.constraints), -1)
        q, _ = torch.linalg.qr(dg.transpose(1, 2))  # orthonormal normal directions
        jac = jac - torch.einsum("nck,nkl,njl->ncj", jac, q, q)  # project onto tangent space
    return jac


def _median_spectrum(jac: torch.Tensor) -> np.ndarray:
    if jac.shape[1] == 0:
        return np.zeros(0)
    return torch.linalg.svdvals(jac).median(0).values.cpu().numpy()


def independence_spectrum(coefficients: np.ndarray, basis: Basis, system, x: torch.Tensor,
                          tangent: bool = False) -> np.ndarray:
    """Median over the points of the singular values of the invariants' (tangent) Jacobian.

    Parameters
    ----------
    coefficients : ndarray, shape (m, size)
        Invariants as rows of basis coefficients.
    basis, system, x, tangent
        As in :func:`numerical_independence`.

    Returns
    -------
    ndarray, shape (m,)
        Unit gradients: values near 1 are well independent, near 0 nearly dependent.
    """
    return _median_spectrum(_unit_jacobians(coefficients, basis, system, x, tangent))


def numerical_independence(coefficients: np.ndarray, basis: Basis, system, x: torch.Tensor,
                           order: Sequence[int] | None = None, rtol: float = 1e-6,
                           tangent: bool = False) -> tuple[list[int], np.ndarray]:
    """Greedy independence from float Jacobians at many points, and the spectrum.

    Parameters
    ----------
    coefficients : ndarray, shape (m, size)
        Candidate invariants as rows of basis coefficients.
    basis : Basis
    system : aipoincare.System
    x : Tensor, shape (n, n_vars)
        Points (on the constraint set); a few dozen are plenty.
    order : sequence of int, optional
        Greedy order (default: as given).
    rtol : float
        A candidate is kept when the median over points of the smallest singular value of
        the (tangent) Jacobian with it added stays above ``rtol`` (gradients are normalised
        to unit length before the projection onto the tangent space).
    tangent : bool
        Project the gradients onto the tangent space of the constraint set first.

    Returns
    -------
    kept : list of int
    spectrum : ndarray, shape (len(kept),)
        :func:`independence_spectrum` of the kept invariants.
    """
    order = list(range(coefficients.shape[0])) if order is None else list(order)
    jac = _unit_jacobians(coefficients, basis, system, x, tangent)
    kept: list[int] = []
    for k in order:
        # rows had unit norm before the projection: absolute singular values are comparable
        s = torch.linalg.svdvals(jac[:, kept + [k]])
        if float(s[:, -1].median()) > rtol:
            kept.append(k)
    return kept, _median_spectrum(jac[:, kept])
