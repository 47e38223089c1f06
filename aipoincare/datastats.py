"""The statistics of the data mode: basis values along trajectories, the noise floor, tests.

H = theta . b(x) is conserved exactly when it is constant along every trajectory. For a
set of trajectories, with every basis column scaled to unit spread:

* ``W`` (within): the covariance of the basis values centred per trajectory; theta' W theta
  is the mean squared along-trajectory variation of H (0 for an invariant of clean data);
* ``T`` (total): the covariance of the basis values over all samples; theta' T theta is
  H's whole variance, mostly across trajectories for an invariant;
* ``N`` (noise): theta' N theta is the along-trajectory variance that measurement noise of
  the estimated level alone would give H (first order: sum_j sigma_j^2 (dH/dx_j)^2, times
  (L - 1)/L for the centring on a trajectory of L samples);
* ``R`` (rough): theta' R theta is the part of H's along-trajectory variance that is not
  smooth in time: the residuals of least-squares cubics over every window of
  :data:`WINDOW` consecutive samples, per degree of freedom (``WINDOW - 4``), times
  (L - 1)/L. It measures the noise's share directly on H, nonlinear propagation and
  heteroscedastic noise included; a drift, smooth over a window, leaves it alone. Windows
  where the cubics do not fit the states themselves to within the estimated noise (their
  chi-squared residual beyond the 1 - :data:`SCREEN` quantile: a spike, a pericentre) are
  left out, so that the cubic's own error is not taken for noise; without noise R is 0.

A direction passes the *noise test* when w <= :data:`NOISE_FACTOR` x (n + floor) (its
variation along trajectories is what the noise explains), the *signal test* when
w <= :data:`SIGNAL` x t (its variation across trajectories stands out from its noise), and
the *ratio test* when the smooth part of its along-trajectory variation is small against
the variation across trajectories: x / t <= :data:`RATIO`, with x = theta' X theta,
``X = W - min(R, W)`` (:func:`excess`; the minimum taken in the modes that diagonalise W
and R together, so 0 <= x <= w, and x >= w - r where W has full rank, as it has for noisy
data). For an invariant x is about 0 at any noise level (w and r are the same noise); for a
drift x is the drift's own along-trajectory variance. The ratio test therefore bounds
exactly what it is meant to: a drift passes only when its variance along trajectories is at
most RATIO of H's variance across them (and, by the noise test, at most NOISE_FACTOR - 1
times the noise's), at every noise level; what it no longer does is reject an invariant
because the noise's own variance exceeds RATIO of t (combinations of Kepler's correlated
invariants at 1% noise, any invariant at 10%: the previous rule, w / t <= RATIO, did).
Nothing is credited that R did not measure on H itself (never more than w, never the noise
model N), so an overestimated noise model cannot hide a drift. Where the noise is so large
that H's smooth part is poorly measured, the signal test rejects: on the five systems
without invariants of the benchmark (three simulation seeds, noise up to 10%) no direction
passes the noise and signal tests together, whatever its ratio.

The tests are decided by generalised symmetric eigenproblems (the Rayleigh quotients'
minima over subspaces; every direction of a span kept by one of them passes that test, and
each later one keeps a subspace of it, so every direction of the result passes every test).
The fit trajectories only preselect, by the noise test loosened :data:`PRESELECT` times:
their estimate of the directions is what limits the count (a large basis, correlated
invariants), so the span they hand on must contain the true directions, not be their best
guess at them. The held-out trajectories choose within that span, the ratio test first (a
looser test first would commit to its own maximal subspace, which need not hold the one the
ratio test wants), then the noise and signal tests; what they keep must pass all three tests
at full strength on the fit trajectories, which did not choose it. Every direction therefore
passes every test on both halves, and on each half it was tested on data that did not pick
it: the held-out half did not pick the span, the fit half did not pick the direction. On the
benchmark's Kepler orbits at 1% noise (five noise draws) this finds three directions in each
draw where preselecting by the fit half's ratio test (at 30 times the bound) found 3, 2, 2,
2, 2; on the five systems without invariants (three simulation seeds, four noise levels,
either half fitting) it keeps none.

The noise level of each variable is estimated from the data alone: the residuals of local
cubic fits in time over windows of :data:`WINDOW` consecutive samples (for smooth
trajectories the fit error is O(dt^4), far below the noise levels that matter).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.stats
import torch

from traincore import check_memory, row_chunk_size

from .basis import Basis, ExpressionBasis, PolynomialBasis, ProductBasis
from .evaluate import compile_torch
from .trajectories import Trajectories

__all__ = ["RATIO", "NOISE_FACTOR", "SIGNAL", "PRESELECT", "PRECISION", "WINDOW", "SCREEN",
           "basis_values", "noise_level", "Moments", "moments", "Cut", "cut", "excess",
           "evidence", "no_worse", "passes"]

#: Largest ratio of the smooth along-trajectory variance (:func:`excess`) to the variance
#: across trajectories of a reported invariant, on both halves: a drift whose rms is more
#: than a tenth of the across-trajectory spread is rejected, at any noise level.
RATIO = 1e-2
#: Along-trajectory variance allowed, in units of what the estimated noise explains: the
#: noise estimate and the first-order propagation are good to a factor of about 2.
NOISE_FACTOR = 4.0
#: Largest along/across variance ratio with the noise counted (the signal test): a direction
#: whose variation across trajectories does not stand out from its noise by sqrt(1/0.3),
#: about 1.8 in rms, is too poorly measured for its smooth part to be told from a drift.
SIGNAL = 0.3
#: The fit half only preselects, by the noise test loosened PRESELECT times (:func:`cut`);
#: every kept direction passes the noise test at full strength on both halves.
PRESELECT = 2.0
#: Relative precision floor of the data (a noise-free file still has rounding and
#: integration errors): along-trajectory variation below it counts as none.
PRECISION = 1e-7
#: Samples per window of the local cubic fits that estimate the noise.
WINDOW = 7
#: Chance that a window of pure noise is left out of the rough moment (its states'
#: residuals above the chi-squared quantile): windows where a cubic does not fit the
#: trajectory (a spike, a pericentre) are left out, and hardly any others.
SCREEN = 1e-3
#: Median of the chi-squared distribution with WINDOW - 4 = 3 degrees of freedom.
_CHI2_MEDIAN = 2.365973884375338
_TOTAL_RANK = 1e-11  # directions with less total variance are constant on all the data


def basis_values(basis: Basis, x: torch.Tensor) -> torch.Tensor:
    """The basis functions at the states, shape (n, size), float64."""
    if isinstance(basis, PolynomialBasis):
        return basis.table.values_torch(x)[:, 1:]  # column 0 is the constant
    if isinstance(basis, ProductBasis):
        mono = basis.table.values_torch(x)          # (n, M), the constant first
        ex = basis.expr_basis.values_torch(x)       # (n, E)
        return (mono[:, :, None] * ex[:, None, :]).reshape(x.shape[0], -1)
    if isinstance(basis, ExpressionBasis):
        return basis.values_torch(x)
    return compile_torch(basis.exprs, basis.variables)(x)


def _windows(data: Trajectories) -> np.ndarray:
    """Row indices of every window of :data:`WINDOW` consecutive samples of a trajectory,
    shape (n_windows, WINDOW) (trajectories shorter than a window have none)."""
    starts = [np.arange(a, b - WINDOW + 1) for a, b in zip(data.offsets[:-1], data.offsets[1:],
                                                          strict=True) if b - a >= WINDOW]
    if not starts:
        return np.zeros((0, WINDOW), dtype=np.int64)
    return np.concatenate(starts)[:, None] + np.arange(WINDOW)


def _cubic_residual(t: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Residuals of least-squares cubics in time, window by window.

    ``t`` (w, WINDOW) and ``values`` (w, WINDOW, k) -> residuals (w, WINDOW, k)."""
    tw = (t - t.mean(1, keepdims=True)) / np.ptp(t, axis=1, keepdims=True)
    q, _ = np.linalg.qr(tw[:, :, None] ** np.arange(4))       # (w, WINDOW, 4)
    return values - q @ (q.transpose(0, 2, 1) @ values)


def noise_level(data: Trajectories) -> tuple[np.ndarray, int]:
    """Estimated noise standard deviation of each variable, and the windows used.

    Least-squares cubics in time over every window of :data:`WINDOW` consecutive samples
    of a trajectory; for white noise the residual sum of squares is ``sigma^2`` times a
    chi-squared variable with ``WINDOW - 4`` degrees of freedom, whose median gives sigma
    (robust to the few windows where the trajectory turns too fast for a cubic).
    Trajectories shorter than a window contribute nothing.

    Returns
    -------
    sigma : ndarray, shape (n_vars,)
        Zeros when no trajectory is long enough (then ``windows`` is 0).
    windows : int
    """
    idx = _windows(data)
    if not len(idx):
        return np.zeros(len(data.variables)), 0
    rss = []
    step = max(1, 2 ** 22 // (WINDOW * (4 + len(data.variables))))
    for s in range(0, len(idx), step):
        rows = idx[s:s + step]
        res = _cubic_residual(data.t[rows], data.states[rows])
        rss.append((res ** 2).sum(axis=1))                     # (w, n_vars)
    # the median, not the mean: where the trajectory turns fast (a pericentre) the cubic's
    # own error dominates a few windows, and must not inflate the noise of all the others
    return np.sqrt(np.median(np.concatenate(rss), axis=0) / _CHI2_MEDIAN), len(idx)


def _rough(basis: Basis, data: Trajectories, sigma: np.ndarray, inv_scale: torch.Tensor,
           device: torch.device) -> np.ndarray:
    """The rough moment ``R`` (module docstring): residuals of the basis values from local
    cubics in time, per degree of freedom, times (L - 1)/L as for ``N``, over the windows
    where the cubics fit the states themselves to within the noise (zero without noise)."""
    idx, size, noisy = _windows(data), basis.size, sigma > 0
    rough = np.zeros((size, size))
    if not len(idx) or not noisy.any():
        return rough
    # a window whose states' residuals exceed the noise (chi-squared, 1 - SCREEN) is one
    # where the trajectory turns too fast for a cubic: its residuals are not noise
    dof = (WINDOW - 4) * int(noisy.sum())
    limit = float(scipy.stats.chi2.isf(SCREEN, dof))
    step = max(1, row_chunk_size(size * (WINDOW + 2) * 3) // WINDOW)
    x = torch.as_tensor(data.states, dtype=torch.float64, device=device)
    weight = 1.0 - 1.0 / data.lengths[data.trajectory_index[idx[:, 0]]]
    kept = 0
    for s in range(0, len(idx), step):
        rows = idx[s:s + step]
        own = _cubic_residual(data.t[rows], data.states[rows])[:, :, noisy]
        ok = ((own / sigma[noisy]) ** 2).sum(axis=(1, 2)) <= limit
        rows = rows[ok]
        kept += len(rows)
        if not len(rows):
            continue
        b = (basis_values(basis, x[rows.ravel()]) * inv_scale).cpu().numpy()
        res = _cubic_residual(data.t[rows], b.reshape(len(rows), WINDOW, size))
        flat = (res * np.sqrt(weight[s:s + step][ok])[:, None, None]).reshape(-1, size)
        rough += flat.T @ flat
    return rough / ((WINDOW - 4) * max(kept, 1))


@dataclass(frozen=True)
class Moments:
    """Second moments of the scaled basis values of some trajectories (module docstring).

    Attributes
    ----------
    within, total, noise, rough : ndarray, shape (size, size)
    samples, trajectories : int
    """

    within: np.ndarray
    total: np.ndarray
    noise: np.ndarray
    rough: np.ndarray
    samples: int
    trajectories: int


def moments(basis: Basis, data: Trajectories, sigma: np.ndarray, scale: np.ndarray,
            device: torch.device) -> Moments:
    """:class:`Moments` of ``data``, chunk by chunk (never the whole gradient array).

    Parameters
    ----------
    basis : Basis
    data : Trajectories
    sigma : ndarray, shape (n_vars,)
        Noise standard deviations.
    scale : ndarray, shape (size,)
        Column scales (the basis values are divided by them).
    device : torch.device
    """
    size, n_vars, n = basis.size, len(data.variables), data.n_samples
    chunk = min(n, row_chunk_size(size * (n_vars + 2) * 2))
    check_memory(8 * (chunk * size * (n_vars + 3) + 4 * size ** 2 + n * (n_vars + 2)),
                 f"the basis values and gradients of {size} functions in chunks of {chunk} "
                 "samples", "lower --degree")
    x = torch.as_tensor(data.states, dtype=torch.float64, device=device)
    labels = torch.as_tensor(data.trajectory_index, device=device)
    lengths = torch.as_tensor(data.lengths, dtype=torch.float64, device=device)
    inv_scale = torch.as_tensor(1.0 / scale, dtype=torch.float64, device=device)
    sig = torch.as_tensor(sigma, dtype=torch.float64, device=device)
    sums = torch.zeros((data.n_trajectories, size), dtype=torch.float64, device=device)
    for s in range(0, n, chunk):
        sums.index_add_(0, labels[s:s + chunk], basis_values(basis, x[s:s + chunk]) * inv_scale)
    means = sums / lengths[:, None]
    grand = sums.sum(0) / n
    within = torch.zeros((size, size), dtype=torch.float64, device=device)
    total, noise = torch.zeros_like(within), torch.zeros_like(within)
    for s in range(0, n, chunk):
        lab = labels[s:s + chunk]
        b = basis_values(basis, x[s:s + chunk]) * inv_scale       # (c, size)
        c = b - means[lab]
        within += c.T @ c
        d = b - grand
        total += d.T @ d
        if bool((sig > 0).any()):
            g = basis.gradients_torch(x[s:s + chunk]) * inv_scale[None, :, None]  # (c, size, k)
            g = g * sig * torch.sqrt(1.0 - 1.0 / lengths[lab])[:, None, None]
            g = g.transpose(1, 2).reshape(-1, size)                # (c * k, size)
            noise += g.T @ g
    to_np = [(m / n).cpu().numpy() for m in (within, total, noise)]
    to_np.append(_rough(basis, data, sigma, inv_scale, device))
    return Moments(*[(m + m.T) / 2 for m in to_np], samples=n,
                   trajectories=data.n_trajectories)


def _generalised(a: np.ndarray, b: np.ndarray, rel: float = _TOTAL_RANK
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (ascending) and vectors of ``a v = lam b v`` on the range of ``b``
    (directions where b is below ``rel`` of its largest eigenvalue are left out)."""
    ev, u = np.linalg.eigh(b)
    keep = ev > rel * max(float(ev.max(initial=0.0)), 1e-300)
    z = u[:, keep] / np.sqrt(ev[keep])                  # b-orthonormal basis of its range
    lam, phi = np.linalg.eigh(z.T @ a @ z)
    return lam, z @ phi


def _floor(m: Moments) -> np.ndarray:
    return m.noise + PRECISION ** 2 * m.total


@dataclass(frozen=True)
class Cut:
    """The conserved directions that passed every test, in the scaled basis.

    Attributes
    ----------
    vectors : ndarray, shape (size, k)
        A basis of the directions that passed, scaled coordinates.
    spectrum : ndarray
        sqrt(along/across ratio) of the fit directions, descending (for the plots).
    gap : float
        Decades between the largest kept and the smallest rejected ratio on the fit set.
    constant : int
        Combinations constant on all the data (identities or constraints; not counted).
    candidates : int
        Directions preselected on the fit trajectories (before the held-out test).
    """

    vectors: np.ndarray
    spectrum: np.ndarray
    gap: float
    constant: int
    candidates: int


def excess(m: Moments) -> np.ndarray:
    """The smooth part of the along-trajectory moment: the ratio test's numerator.

    ``W - C`` with ``C = min(R, W)`` in the modes that diagonalise ``W`` and ``R``
    together: for every direction theta' C theta is at most theta' W theta (the result is
    positive semidefinite) and, where ``W`` has full rank, at most theta' R theta.
    """
    nu, psi = _generalised(m.rough, m.within)     # R psi = nu W psi, psi' W psi = 1
    wp = m.within @ psi
    return m.within - (wp * np.minimum(np.clip(nu, 0.0, None), 1.0)) @ wp.T


def _keep(v: np.ndarray, a: np.ndarray, b: np.ndarray, bound: float) -> np.ndarray:
    """The directions of the span of ``v`` where theta' a theta <= bound theta' b theta."""
    if not v.shape[1]:
        return v
    lam, w = _generalised(v.T @ a @ v, v.T @ b @ v)
    return v @ w[:, lam <= bound]


def cut(fit: Moments, held: Moments, ratio: float = RATIO,
        factor: float = NOISE_FACTOR) -> Cut:
    """Directions conserved in the fit trajectories and again in the held-out ones.

    The noise test compares ``W`` with ``factor`` x (``N`` + floor), the signal test with
    :data:`SIGNAL` x ``T``, the ratio test the smooth part :func:`excess` of ``W`` with
    ``ratio`` x ``T`` (module docstring).
    """
    size = fit.total.shape[0]
    lam, v = _generalised(fit.within, fit.total)           # along/across ratio per direction
    constant = size - v.shape[1]
    spectrum = np.sqrt(np.clip(lam[::-1], 0.0, None))
    # fit: the noise test only, loosened PRESELECT times: the fit half's estimate of the
    # directions is what limits the count (a large basis, correlated invariants), so the
    # span it hands on must contain the true directions well, not be its best guess at them
    v1 = _keep(v, fit.within, _floor(fit), PRESELECT * factor)
    candidates = v1.shape[1]
    # held out: the ratio test first (the most selective: a looser test first would commit
    # to its own maximal subspace, which need not hold the one the ratio test wants), then
    # the noise and signal tests, restricted to the fit's span
    v1 = _keep(v1, excess(held), held.total, ratio)
    v1 = _keep(_keep(v1, held.within, _floor(held), factor), held.within, held.total, SIGNAL)
    # what the held-out half chose passes every test at full strength on the fit half, which
    # did not choose it (it only bounded the span by its noise)
    v1 = _keep(_keep(v1, excess(fit), fit.total, ratio), fit.within, fit.total, SIGNAL)
    v1 = _keep(v1, fit.within, _floor(fit), factor)
    k = v1.shape[1]
    kept = np.sort(lam)[:k]
    gap = 0.0
    if 0 < k < len(lam):
        gap = 0.5 * float(np.log10(max(np.sort(lam)[k], 1e-300) / max(kept[-1], 1e-300)))
    return Cut(v1, spectrum, gap, constant, candidates)


def evidence(theta: np.ndarray, fit: Moments, held: Moments) -> dict[str, float]:
    """The data evidence of one direction (scaled coordinates): ratios and noise multiples.

    Returns
    -------
    dict
        ``heldout_ratio`` and ``fit_ratio`` (along/across variance), ``heldout_excess`` and
        ``fit_excess`` (the smooth part of the along-trajectory variance over the across
        variance: the ratio test's statistic), ``heldout_noise`` and ``fit_noise``
        (along-trajectory variance over what the noise explains), ``heldout_rough`` and
        ``fit_rough`` (over the rough moment's: about 1 when all of it is noise).
    """
    out = {}
    for tag, m in (("heldout", held), ("fit", fit)):
        w = max(float(theta @ m.within @ theta), 0.0)  # >= 0: rounding can dip below
        t = max(float(theta @ m.total @ theta), 1e-300)
        out[f"{tag}_ratio"] = w / t
        out[f"{tag}_excess"] = max(float(theta @ excess(m) @ theta), 0.0) / t
        out[f"{tag}_noise"] = w / max(float(theta @ _floor(m) @ theta), 1e-300)
        rough = float(theta @ (m.rough + PRECISION ** 2 * m.total) @ theta)
        out[f"{tag}_rough"] = w / max(rough, 1e-300)
    return out


def no_worse(theta: np.ndarray, reference: np.ndarray, fit: Moments, held: Moments,
             factor: float = 2.0, ratio: float = RATIO) -> bool:
    """True when ``theta`` (e.g. rationalised) varies along the trajectories at most
    ``factor`` times as much as ``reference`` (the float vector it approximates), both
    normalised by their total variance, on all the trajectories (plus the precision floor),
    and so does the smooth part of that variation (:func:`excess`; plus ``ratio / 10``).

    On clean data this rejects a rational approximation that the noise floor alone would let
    through (the floor of a noise-free file is its precision, not a noise); on noisy data,
    where the whole variation is mostly noise, one that adds a drift (a coefficient rounded
    to a fraction that is off by more than the noise): it may add at most a tenth of the
    ratio bound to the smooth part.
    """
    def along(v: np.ndarray, smooth: bool) -> float:
        w = sum(float(v @ (excess(m) if smooth else m.within) @ v) * m.samples
                for m in (fit, held))
        t = sum(float(v @ m.total @ v) * m.samples for m in (fit, held))
        return w / max(t, 1e-300)
    return along(theta, False) <= factor * along(reference, False) + PRECISION ** 2 and \
        along(theta, True) <= factor * along(reference, True) + ratio / 10


def passes(ev: dict[str, float], ratio: float = RATIO, factor: float = NOISE_FACTOR) -> bool:
    """True when the evidence passes both tests on both sets of trajectories."""
    return all(ev[f"{t}_excess"] <= ratio and ev[f"{t}_noise"] <= factor and
               ev[f"{t}_ratio"] <= SIGNAL for t in ("heldout", "fit"))
