"""The numerical matrix ``A_ji = grad b_i(x_j) . f(x_j)`` and its null space in float64.

Rows are normalised (the null space is unchanged and points near singularities stop
dominating); columns are scaled by the RMS size of each basis function's gradient over the
points, never by A's own column norm (a basis function that is itself conserved, like
``x*y*z`` in the Lotka-Volterra example, has a zero column and must still be found).

Columns are processed in blocks of equal scaling weight (:func:`aipoincare.basis.weight_blocks`):
the conserved subspace is the direct sum of the blocks' null spaces, and each block needs
only about its own size in points, which makes the 3D fluid's 2924 columns cheap.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from traincore import check_memory, choose_cut, cpu_is_busy, cpu_threads, row_chunk_size

from .basis import Basis

__all__ = ["NumericalNullSpace", "scaled_matrix", "numerical_null_space", "LAPACK_THREADS"]

#: CPU threads for building the matrix and the blocks' QR/SVD; None: all of torch's threads
#: on an idle machine, one when the load average shows the cores are busy. On a shared
#: machine OpenMP threads spin-wait for each other, and the same SVD was measured 5-50x
#: slower with two threads than with one (0.25 s -> 6-20 s on the 3D fluid's largest block).
LAPACK_THREADS: int | None = None


def _threads() -> int:
    if LAPACK_THREADS is not None:
        return LAPACK_THREADS
    return 1 if cpu_is_busy() else torch.get_num_threads()


@dataclass
class NumericalNullSpace:
    """Float64 null space with the evidence for its dimension.

    Attributes
    ----------
    vectors : ndarray, shape (size, nullity)
        Null vectors in the original (unscaled) basis coordinates, unit norm per vector;
        empty when only the spectrum was asked for.
    spectrum : ndarray, shape (size,)
        Per-block normalised singular values, merged and sorted descending.
    nullity : int
    gap : float
        Decades between the smallest kept and largest dropped singular value.
    confidence : float
    block_nullities : list of int
    """

    vectors: np.ndarray
    spectrum: np.ndarray
    nullity: int
    gap: float
    confidence: float
    block_nullities: list[int]


def scaled_matrix(basis: Basis, f_fn: Callable[[torch.Tensor], torch.Tensor],
                  x: torch.Tensor, cols: np.ndarray | None = None,
                  chunk_rows: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Row-normalised, gradient-scaled ``A`` for the columns ``cols``.

    Parameters
    ----------
    basis : Basis
    f_fn : callable, Tensor (n, n_vars) -> Tensor (n, n_vars)
        The compiled right-hand side.
    x : Tensor, shape (n, n_vars), float64
    cols : ndarray of int64, optional
        Column subset (default all).
    chunk_rows : int, optional
        Rows evaluated at once (default: a 256 MiB block).

    Returns
    -------
    a : Tensor, shape (n, n_cols)
        Rows of unit norm (all-zero rows stay zero) when ``cols`` is given (one block);
        for all columns the rows are left for the caller to normalise per block.
    scale : Tensor, shape (n_cols,)
        RMS over the points of ``|grad b_i|`` (1 where it is 0).
    """
    n = x.shape[0]
    chunk = chunk_rows or row_chunk_size(basis.size * 4)
    pieces, sq = [], None
    for start in range(0, n, chunk):
        xc = x[start:start + chunk]
        if hasattr(basis, "lie_and_gradient_norms_torch"):  # one pass over the monomials
            a, norms = basis.lie_and_gradient_norms_torch(xc, f_fn(xc))
        else:
            a = basis.lie_torch(xc, f_fn(xc))  # shape (rows, size)
            norms = basis.gradient_norms_torch(xc)
        if cols is not None:
            idx = torch.as_tensor(cols, device=x.device)
            a, norms = a[:, idx], norms[:, idx]
        part = (norms * norms).sum(0)
        sq = part if sq is None else sq + part
        pieces.append(a)
    a = torch.cat(pieces, 0)
    scale = (sq / max(n, 1)).sqrt()
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    a = a / scale
    if cols is not None:
        a = _normalise_rows(a)
    return a, scale


def _streamed_r(basis: Basis, f_fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                blocks: Sequence[np.ndarray], chunk: int
                ) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per block, ``R`` of the scaled, row-normalised matrix without holding the matrix.

    Two passes over the points: the column scales (RMS gradient sizes) first, then each row
    chunk is scaled, normalised per block and folded into that block's ``R`` (TSQR).
    """
    sq = None
    for start in range(0, x.shape[0], chunk):
        norms = basis.gradient_norms_torch(x[start:start + chunk])
        part = (norms * norms).sum(0)
        sq = part if sq is None else sq + part
    scale = (sq / x.shape[0]).sqrt()
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    idxs = [torch.as_tensor(b, device=x.device) for b in blocks]
    rs: list[torch.Tensor | None] = [None] * len(blocks)
    for start in range(0, x.shape[0], chunk):
        xc = x[start:start + chunk]
        a = basis.lie_torch(xc, f_fn(xc)) / scale  # shape (rows, size)
        for k, idx in enumerate(idxs):
            part = _normalise_rows(a[:, idx])
            stacked = part if rs[k] is None else torch.cat([rs[k], part], 0)
            rs[k] = torch.linalg.qr(stacked, mode="r").R
        del a
    return [(r, scale[idx]) for r, idx in zip(rs, idxs, strict=True)]


def _normalise_rows(a: torch.Tensor) -> torch.Tensor:
    row = torch.linalg.vector_norm(a, dim=1, keepdim=True)
    return a / torch.where(row > 0, row, torch.ones_like(row))


def numerical_null_space(basis: Basis, f_fn: Callable[[torch.Tensor], torch.Tensor],
                         x: torch.Tensor, blocks: Sequence[np.ndarray],
                         rtol: float | None = None, vectors: bool = True,
                         chunk_rows: int | None = None) -> NumericalNullSpace:
    """Null space of the scaled matrix, block by block, with one global cut.

    Parameters
    ----------
    basis, f_fn, x
        As in :func:`scaled_matrix`.
    blocks : sequence of ndarray of int64
        Column blocks (each needs at least as many points as columns).
    rtol : float, optional
        Fixed cut instead of the largest gap.
    vectors : bool
        False: singular values only (cheaper; used when exact arithmetic decides the count).
    chunk_rows : int, optional
        Rows per chunk (default: a 256 MiB block of the whole basis). With more points than
        that, each block is reduced to its ``R`` factor chunk by chunk (TSQR), so the
        matrix is never held whole (the 3D fluid at 20000 points stays under 1 GB).

    Returns
    -------
    NumericalNullSpace
    """
    n = x.shape[0]
    biggest = max(len(b) for b in blocks)
    chunk = chunk_rows or row_chunk_size(basis.size * 4)
    streamed = n > chunk  # too tall to hold: reduce each block to R chunk by chunk (TSQR)
    rows = min(n, chunk + biggest) if streamed else n
    check_memory(8 * (2 * rows * basis.size + 3 * rows * biggest + 3 * biggest ** 2),
                 f"the {rows} x {biggest} float64 matrix block and its SVD",
                 "lower the degree or the number of points")
    spectra, svs = [], []
    with cpu_threads(_threads(), x.device):
        if streamed:
            reduced = _streamed_r(basis, f_fn, x, blocks, chunk)
        else:
            full, full_scale = scaled_matrix(basis, f_fn, x)  # shape (n, size): built once
            reduced = []
            for block in blocks:
                idx = torch.as_tensor(block, device=x.device)
                a = _normalise_rows(full[:, idx])
                # tall: the SVD of R (square) has the same spectrum, cheaper and steadier
                m = torch.linalg.qr(a, mode="r").R if a.shape[0] > a.shape[1] else a
                reduced.append((m, full_scale[idx]))
            del full
        for block, (m, scale) in zip(blocks, reduced, strict=True):
            if vectors:
                _, s, vh = torch.linalg.svd(m, full_matrices=True)
                svs.append((vh, scale))
            else:
                s = torch.linalg.svdvals(m)
            s = s / s[0] if s.numel() and float(s[0]) > 0 else s
            if s.numel() < len(block):  # fewer rows than columns: the rest are exact zeros
                s = torch.cat([s, s.new_zeros(len(block) - s.numel())])
            spectra.append(s.detach().cpu().double())
    merged = torch.sort(torch.cat(spectra), descending=True).values
    nullity, gap, confidence = choose_cut(merged, rtol)
    size = merged.numel()
    if nullity == 0:
        threshold = 0.0
    elif nullity == size:
        threshold = math.inf
    else:
        hi, lo = float(merged[size - nullity - 1]), float(merged[size - nullity])
        threshold = math.sqrt(max(hi, 1e-300) * max(lo, 1e-300))
    block_nullities = [int((s < threshold).sum()) for s in spectra]
    vecs = np.zeros((basis.size, 0))
    if vectors:
        cols = []
        for block, (vh, scale), k in zip(blocks, svs, block_nullities, strict=True):
            if k == 0:
                continue
            v = vh[-k:].T / scale[:, None]  # smallest right singular vectors, unscaled
            v = v / torch.linalg.vector_norm(v, dim=0, keepdim=True)
            full = np.zeros((basis.size, k))
            full[block] = v.cpu().numpy()
            cols.append(full)
        if cols:
            vecs = np.concatenate(cols, axis=1)
    return NumericalNullSpace(vectors=vecs, spectrum=merged.numpy(), nullity=nullity, gap=gap,
                              confidence=confidence, block_nullities=block_nullities)

