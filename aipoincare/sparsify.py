"""Sparse bases of the conserved subspace.

* Exact path: the RREF null basis is already sparse and rational (each vector has a 1 at its
  own free column and involves only earlier columns, i.e. simpler basis functions), then
  reduced further by :func:`reduce_sparse` (exact pairwise eliminations that lower the
  number of terms; on the 3D fluid this turns an RREF vector into the kinetic energy).
* Numerical path: the float analogue of the RREF basis (:func:`float_rref`: free columns
  chosen greedily from the last basis function backwards, ``W = V V[free]^-1``), and, for
  small null spaces, the paper's method: an orthogonal rotation ``Q`` of the null basis ``V``
  minimising ``|V Q|_1``, with the Cayley parametrisation ``Q = (I - S)(I + S)^-1`` of a
  skew-symmetric ``S``, by L-BFGS with random restarts, run through :func:`traincore.fit`.
  :func:`sparsest` keeps whichever has fewer nonzeros. Small coefficients are then
  dropped and the rest rationalised when the residual of the matrix stays tiny.

References
----------
Liu, Sturm, Bharadwaj, Silva & Tegmark, "Discovering new interpretable conservation laws as
sparse invariants", arXiv:2305.19525.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import Any

import numpy as np
import sympy
import torch

from traincore import fit, torch_generator

from .basis import Basis
from .nullspace import NumericalNullSpace, normalise_rows, scaled_matrix

__all__ = ["cayley", "l1_rotation", "float_rref", "sparsest", "rationalize", "reduce_sparse",
           "float_null_vectors", "closed_form", "has_floats", "L1_MAX_DIM",
           "RATIONAL_RESIDUAL"]

#: The L1 rotation is tried only for null spaces up to this dimension: it has k(k-1)/2
#: parameters and, in our tests, stalls far from the sparse optimum beyond a few dozen,
#: where the float RREF basis is both sparser and far cheaper.
L1_MAX_DIM = 12

#: A rationalised float null vector is kept when its residual in the scaled matrix (unit
#: rows, unit-size gradients) stays below this: true null vectors sit at 1e-15..1e-14, a
#: wrong fraction such as 10/81 for 0.123456789 is caught at 1e-9.
RATIONAL_RESIDUAL = 1e-12


def cayley(s: torch.Tensor) -> torch.Tensor:
    """Orthogonal ``(I - S)(I + S)^-1`` for the skew part of ``s`` (shape (k, k)).

    >>> q = cayley(torch.tensor([[0.0, 0.3], [-0.3, 0.0]], dtype=torch.float64))
    >>> bool(torch.allclose(q @ q.T, torch.eye(2, dtype=torch.float64)))
    True
    """
    skew = s - s.T
    eye = torch.eye(s.shape[0], dtype=s.dtype, device=s.device)
    return torch.linalg.solve((eye + skew).T, (eye - skew).T).T


def l1_rotation(v: np.ndarray, restarts: int = 4, steps: int = 30, seed: int = 0,
                eps: float = 1e-8) -> np.ndarray:
    """Rotate the columns of ``v`` to minimise their L1 norm (sparsest orthonormal basis).

    Parameters
    ----------
    v : ndarray, shape (size, k)
        Orthonormal columns spanning the null space.
    restarts : int
        Random initial rotations (the first starts at the identity).
    steps : int
        L-BFGS steps per restart.
    seed : int
    eps : float
        Smoothing of ``|x|`` as ``sqrt(x**2 + eps**2)`` for the gradient.

    Returns
    -------
    ndarray, shape (size, k)
        Columns ``V Q`` for the best rotation found.

    Examples
    --------
    >>> v = np.linalg.qr(np.array([[1.0, 1.0], [1.0, -1.0], [0.0, 0.0]]))[0]
    >>> w = l1_rotation(v, restarts=2, steps=30)
    >>> np.round(np.sort(np.abs(w), axis=0), 6).tolist()
    [[0.0, 0.0], [0.0, 0.0], [1.0, 1.0]]
    """
    k = v.shape[1]
    if k <= 1:
        return v.copy()
    vt = torch.as_tensor(v, dtype=torch.float64)
    gen = torch_generator(seed)
    best, best_l1 = v.copy(), float(np.abs(v).sum())
    for r in range(restarts):
        init = torch.zeros(k, k, dtype=torch.float64) if r == 0 else \
            torch.randn(k, k, generator=gen, dtype=torch.float64)
        w = _descend(vt, init, steps, eps)
        l1 = float(np.abs(w).sum())
        if np.isfinite(l1) and l1 < best_l1:
            best, best_l1 = w, l1
    return best


def _descend(vt: torch.Tensor, init: torch.Tensor, steps: int, eps: float) -> np.ndarray:
    s = init.clone().requires_grad_(True)
    opt = torch.optim.LBFGS([s], lr=1, max_iter=10, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.sqrt((vt @ cayley(s)) ** 2 + eps ** 2).sum()  # smooth L1
        loss.backward()
        return loss

    def step_fn(step: int, values: dict[str, float]) -> dict[str, torch.Tensor]:
        return {"l1": opt.step(closure).detach()}

    fit(step_fn, steps, log_every=max(steps, 1), progress=False, desc="sparsify")
    with torch.no_grad():
        return (vt @ cayley(s)).numpy()


def float_rref(v: np.ndarray, rtol: float = 1e-8) -> np.ndarray:
    """The RREF-style basis of the column span of ``v``, in floats.

    Free rows (basis functions) are chosen greedily from the last one backwards, keeping a
    row when it is independent of those kept (relative residual above ``rtol``); then
    ``W = V V[free]^-1`` has the identity on the free rows. With exact arithmetic this is
    the canonical RREF null basis: each vector has a 1 at its own (latest possible) basis
    function and involves only earlier, simpler ones.

    Parameters
    ----------
    v : ndarray, shape (size, k)
        Columns spanning the space (any basis).

    Returns
    -------
    ndarray, shape (size, k)

    Examples
    --------
    >>> v = np.array([[1.0, 1.0], [1.0, -1.0], [2.0, 0.0]])
    >>> np.round(float_rref(v), 12).tolist()
    [[-1.0, 1.0], [1.0, 0.0], [0.0, 1.0]]
    """
    size, k = v.shape
    if k == 0:
        return v.copy()
    basis: list[np.ndarray] = []  # orthonormal span of the kept rows
    free: list[int] = []
    scale = np.abs(v).max()
    for i in range(size - 1, -1, -1):
        r = v[i].copy()
        for q in basis:
            r -= (q @ r) * q
        if np.linalg.norm(r) > rtol * max(scale, 1e-300):
            basis.append(r / np.linalg.norm(r))
            free.append(i)
            if len(free) == k:
                break
    free = free[::-1]
    w = v @ np.linalg.inv(v[free])
    w[np.abs(w) < rtol * np.abs(w).max()] = 0.0
    return w


def sparsest(candidates: list[np.ndarray], tol: float = 1e-6) -> np.ndarray:
    """The candidate basis with the fewest nonzeros (then the smallest max-normalised L1).

    >>> a, b = np.eye(2), np.ones((2, 2))
    >>> sparsest([b, a]).tolist()
    [[1.0, 0.0], [0.0, 1.0]]
    """
    def key(w: np.ndarray) -> tuple[int, float]:
        top = np.abs(w).max(axis=0, keepdims=True)
        u = np.abs(w) / np.where(top > 0, top, 1.0)
        return int((u > tol).sum()), float(u.sum())

    return min(candidates, key=key)


def reduce_sparse(vectors: list[dict[int, object]], max_rounds: int = 8
                  ) -> list[dict[int, object]]:
    """Greedy exact sparsification of a basis of sparse rational vectors.

    Repeatedly replaces ``v_i`` by ``v_i + c v_j`` (``j != i``, ``c`` cancelling one shared
    entry) when that lowers the number of terms of ``v_i``. Every step is invertible, so the
    result spans the same space and stays a basis; the arithmetic is exact (fractions).

    Parameters
    ----------
    vectors : list of dict of int to rational
        Column index -> coefficient (sympy Rational, int or Fraction).
    max_rounds : int
        Passes over all pairs (stops early when a pass changes nothing).

    Returns
    -------
    list of dict of int to sympy.Rational

    Examples
    --------
    >>> reduce_sparse([{0: 1, 1: 1, 2: 1}, {1: 1, 2: 1}])
    [{0: 1}, {1: 1, 2: 1}]
    """
    vecs = [{int(k): Fraction(int(sympy.Rational(c).p), int(sympy.Rational(c).q))
             for k, c in v.items()} for v in vectors]
    for _ in range(max_rounds):
        improved = False
        holders: dict[int, set[int]] = {}  # column -> vectors using it (who can interact)
        for j, v in enumerate(vecs):
            for k in v:
                holders.setdefault(k, set()).add(j)
        for i in range(len(vecs)):
            vi = vecs[i]
            partners = set().union(*(holders[k] for k in vi)) - {i} if vi else set()
            best_len, best = len(vi), None
            for j in sorted(partners):
                vj = vecs[j]
                common = vi.keys() & vj.keys()
                # v_i + f v_j cancels exactly the common entries with ratio v_i/v_j == -f
                ratios = Counter(vi[k] / vj[k] for k in common)
                ratio, hits = ratios.most_common(1)[0]
                new_len = len(vi) + len(vj) - len(common) - hits
                if new_len < best_len:
                    best_len, best = new_len, (j, -ratio)
            if best is not None:
                j, f = best
                new = dict(vi)
                for k, a in vecs[j].items():
                    val = new.get(k, 0) + f * a
                    if val:
                        new[k] = val
                    else:
                        new.pop(k, None)
                vecs[i] = new
                for k in vi.keys() - new.keys():
                    holders[k].discard(i)
                for k in new.keys() - vi.keys():
                    holders.setdefault(k, set()).add(i)
                improved = True
        if not improved:
            break
    return [{k: sympy.Rational(v.numerator, v.denominator) for k, v in sorted(vec.items())}
            for vec in vecs]


def rationalize(w: np.ndarray, max_denominator: int = 100, drop: float = 1e-6
                ) -> list[dict[int, sympy.Rational]]:
    """Scale each column so its largest entry is 1, drop tiny entries, approximate by fractions.

    Returns
    -------
    list of dict of int to sympy.Rational
        One sparse vector per column (column index -> coefficient).

    Examples
    --------
    >>> rationalize(np.array([[0.5], [1e-12], [-0.25]]))
    [{0: 1, 2: -1/2}]
    """
    out = []
    for col in w.T:
        top = col[np.argmax(np.abs(col))]
        if top == 0:
            out.append({})
            continue
        c = col / top
        vec = {}
        for i in np.nonzero(np.abs(c) > drop)[0]:
            fr = Fraction(float(c[i])).limit_denominator(max_denominator)
            if fr != 0:
                vec[int(i)] = sympy.Rational(fr.numerator, fr.denominator)
        out.append(vec)
    return out


def has_floats(vec: dict[int, Any]) -> bool:
    """True when a coefficient of ``vec`` is a float (it cannot pass an exact certificate)."""
    return any(isinstance(c, sympy.Float) for c in vec.values())


def closed_form(vec: dict[int, Any], max_terms: int = 40) -> dict[int, Any] | None:
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
                       scale: np.ndarray, max_denominator: int) -> list:
    """Per column of ``w`` (block coordinates): the sparse rational vector when it keeps the
    scaled residual below RATIONAL_RESIDUAL, else None."""
    full = np.zeros((size, w.shape[1]))
    full[block] = w
    out = []
    for rat in rationalize(full, max_denominator):
        theta = np.zeros(size)
        for i, c in rat.items():
            theta[i] = float(c)
        ts = theta * scale
        res = float(np.abs(a_s @ ts).max()) / max(float(np.linalg.norm(ts)), 1e-300)
        out.append(rat if rat and res < RATIONAL_RESIDUAL else None)
    return out


def float_null_vectors(num: NumericalNullSpace, bas: Basis, blocks: Sequence[np.ndarray],
                       f_fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, *,
                       restarts: int = 4, steps: int = 30, seed: int = 0,
                       max_denominator: int = 100) -> list[dict[int, Any]]:
    """A sparse basis of a float null space, rationalised where the residual stays tiny.

    Per block: the float RREF basis, and (for small null spaces whose RREF basis does not
    rationalise cleanly) the paper's L1 rotation with ``restarts`` x ``steps``, whichever is
    sparser; each vector is rationalised (denominators up to ``max_denominator``) when its
    residual in the scaled matrix stays below :data:`RATIONAL_RESIDUAL`, else kept in floats.

    Parameters
    ----------
    num : NumericalNullSpace
        With vectors.
    bas, blocks, f_fn
        The basis, its column blocks and the compiled right-hand side.
    x : Tensor, shape (n, n_vars)
        Sample points (the first 64 check the residuals).

    Returns
    -------
    list of dict of int to sympy.Rational or sympy.Float
        One sparse vector per null direction: basis column -> coefficient.
    """
    check = x[: min(64, x.shape[0])]
    # residuals in the scaled matrix (unit rows, columns by gradient size): a conserved basis
    # function's zero column must not make its own residual look large
    a_s, scale = scaled_matrix(bas, f_fn, check)
    a_s, scale = normalise_rows(a_s).cpu().numpy(), scale.cpu().numpy()
    vectors: list[dict[int, Any]] = []
    col = 0
    for block, k in zip(blocks, num.block_nullities, strict=True):
        if k == 0:
            continue
        v = num.vectors[:, col:col + k]
        col += k
        sub = v[block]  # shape (block size, k)
        q, _ = np.linalg.qr(sub)
        w = float_rref(q)
        accepted = _rationalise_block(w, block, bas.size, a_s, scale, max_denominator)
        if any(r is None for r in accepted) and k <= L1_MAX_DIM:
            # the RREF basis is not clean: try the paper's L1 rotation too, keep the sparser
            w = sparsest([w, l1_rotation(q, restarts=restarts, steps=steps, seed=seed)])
            accepted = _rationalise_block(w, block, bas.size, a_s, scale, max_denominator)
        for j, rat in enumerate(accepted):
            if rat is not None:
                vec = rat
            else:  # keep the float vector (certification will say what it is worth)
                wj = np.zeros(bas.size)
                wj[block] = w[:, j] / w[np.argmax(np.abs(w[:, j])), j]
                wj[np.abs(wj) < 1e-9] = 0.0
                vec = {int(i): sympy.Float(wj[i], 15) for i in np.nonzero(wj)[0]}
            vectors.append(vec)
    return vectors
