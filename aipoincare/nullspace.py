"""The numerical matrix ``A_ji = grad b_i(x_j) . f(x_j)`` and its null space in float64.

Rows are normalised (the null space is unchanged and points near singularities stop
dominating); columns are scaled by the RMS size of each basis function's gradient over the
points, never by A's own column norm (a basis function that is itself conserved, like
``x*y*z`` in the Lotka-Volterra example, has a zero column and must still be found).

Columns are processed in blocks of equal scaling weight (:mod:`aipoincare.scaling`): the
conserved subspace is the direct sum of the blocks' null spaces, and each block needs only
about its own size in points, which makes the 3D fluid's 2924 columns cheap. The matrix is
built in row chunks and each block is reduced to its ``R`` factor by traincore's one-pass
:class:`traincore.TSQR`, so it is never held whole; the singular values and the cut come
from :func:`traincore.normalised_spectrum` and :func:`traincore.choose_cut`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from traincore import (
    TSQR,
    check_memory,
    check_time,
    choose_cut,
    cpu_threads,
    normalised_spectrum,
    row_chunk_size,
)

from .basis import Basis

__all__ = ["NumericalNullSpace", "scaled_matrix", "numerical_null_space", "block_rows"]

FFn = Callable[[torch.Tensor], torch.Tensor]


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


def _lie_and_norms(basis: Basis, f_fn: FFn, x: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    if hasattr(basis, "lie_and_gradient_norms_torch"):  # one pass over the monomials
        return basis.lie_and_gradient_norms_torch(x, f_fn(x))
    return basis.lie_torch(x, f_fn(x)), basis.gradient_norms_torch(x)


def _scale(sq: torch.Tensor, n: int) -> torch.Tensor:
    """RMS gradient size per column from the summed squares (1 where it is 0)."""
    scale = (sq / max(n, 1)).sqrt()
    return torch.where(scale > 0, scale, torch.ones_like(scale))


def _scaled_chunks(basis: Basis, f_fn: FFn, x: torch.Tensor, chunk: int
                   ) -> tuple[torch.Tensor, Iterator[torch.Tensor]]:
    """The column scales and the row chunks of ``A / scale``, shape (rows, size) each.

    One pass when the points fit in one chunk (matrix and gradient sizes together); two
    otherwise (the scales need every point before the first chunk can be scaled).
    """
    n = x.shape[0]
    if n <= chunk:
        a, norms = _lie_and_norms(basis, f_fn, x)
        scale = _scale((norms * norms).sum(0), n)
        return scale, iter([a / scale])
    sq = None
    for start in range(0, n, chunk):
        norms = basis.gradient_norms_torch(x[start:start + chunk])
        sq = (norms * norms).sum(0) if sq is None else sq + (norms * norms).sum(0)
    scale = _scale(sq, n)

    def chunks() -> Iterator[torch.Tensor]:
        for start in range(0, n, chunk):
            xc = x[start:start + chunk]
            yield basis.lie_torch(xc, f_fn(xc)) / scale

    return scale, chunks()


def scaled_matrix(basis: Basis, f_fn: FFn, x: torch.Tensor, cols: np.ndarray | None = None,
                  chunk_rows: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradient-scaled ``A`` (whole) for the columns ``cols``; for small point sets.

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
    chunk = chunk_rows or row_chunk_size(basis.size * 4)
    scale, chunks = _scaled_chunks(basis, f_fn, x, chunk)
    a = torch.cat(list(chunks), 0)  # shape (n, size)
    if cols is None:
        return a, scale
    idx = torch.as_tensor(cols, device=x.device)
    return normalise_rows(a[:, idx]), scale[idx]


def normalise_rows(a: torch.Tensor) -> torch.Tensor:
    """Rows of unit norm; all-zero rows stay zero."""
    row = torch.linalg.vector_norm(a, dim=1, keepdim=True)
    return a / torch.where(row > 0, row, torch.ones_like(row))


def _block_factors(basis: Basis, f_fn: FFn, x: torch.Tensor, blocks: Sequence[np.ndarray],
                   chunk: int) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Per block, ``R`` of the scaled, row-normalised matrix, in one pass over the chunks."""
    idxs = [torch.as_tensor(b, device=x.device) for b in blocks]
    accs = [TSQR(len(b), device=x.device) for b in blocks]
    scale, chunks = _scaled_chunks(basis, f_fn, x, chunk)
    for a in chunks:  # a: shape (rows, size)
        for acc, idx in zip(accs, idxs, strict=True):
            acc.add(normalise_rows(a[:, idx]))
        del a  # before the next chunk is built: one chunk in memory at a time
        check_time("the float null space")  # a long pass stops at the time limit
    return [acc.r for acc in accs], scale


def _cut_between(merged: torch.Tensor, nullity: int) -> float:
    """A threshold between the smallest kept and the largest dropped singular value."""
    size = merged.numel()
    if nullity == 0:
        return 0.0
    if nullity == size:
        return math.inf
    hi, lo = float(merged[size - nullity - 1]), float(merged[size - nullity])
    return math.sqrt(max(hi, 1e-300) * max(lo, 1e-300))


def block_rows(n_points: int, block_size: int) -> int:
    """Points a block's spectrum uses in :func:`numerical_null_space` with ``per_block``:
    1.2x its size + 10 (the default margin of the whole basis), at most all of them."""
    return min(n_points, math.ceil(1.2 * block_size) + 10)


def _per_block_factors(basis: Basis, f_fn: FFn, x: torch.Tensor,
                       blocks: Sequence[np.ndarray], chunk: int
                       ) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Per block, ``R`` of its own scaled matrix at its first :func:`block_rows` points,
    built for its columns only (a polynomial basis), in row chunks of ``chunk``."""
    scale = torch.ones(basis.size, dtype=torch.float64, device=x.device)
    n_max = max(block_rows(x.shape[0], len(b)) for b in blocks)
    f = f_fn(x[:n_max])
    factors = []
    for block in blocks:
        n = block_rows(x.shape[0], len(block))
        idx = torch.as_tensor(block, device=x.device)
        parts, sq = [], None
        for start in range(0, n, chunk):
            stop = min(n, start + chunk)
            a, norms = basis.lie_and_gradient_norms_torch(x[start:stop], f[start:stop],
                                                          cols=block)
            parts.append(a)
            sq = (norms * norms).sum(0) if sq is None else sq + (norms * norms).sum(0)
        s = _scale(sq, n)
        scale[idx] = s
        acc = TSQR(len(block), device=x.device)
        for a in parts:
            acc.add(normalise_rows(a / s))
        del parts
        factors.append(acc.r)
        check_time("the float spectrum")
    return factors, scale


def numerical_null_space(basis: Basis, f_fn: FFn, x: torch.Tensor,
                         blocks: Sequence[np.ndarray], rtol: float | None = None,
                         vectors: bool = True, chunk_rows: int | None = None,
                         threads: int | None = None,
                         per_block: bool = False) -> NumericalNullSpace:
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
        that, the matrix is built chunk by chunk and never held whole (the 3D fluid at
        20000 points stays under 1 GB).
    threads : int, optional
        CPU threads for the matrix and the QR/SVD (None: torch's setting).
    per_block : bool
        Each block at its own first :func:`block_rows` points and its own columns only
        (a polynomial basis with several blocks): the cheap spectrum that goes beside exact
        counts. Otherwise every block at every point.

    Returns
    -------
    NumericalNullSpace
    """
    n = x.shape[0]
    biggest = max(len(b) for b in blocks)
    chunk = chunk_rows or row_chunk_size(basis.size * 4)
    rows = min(n, chunk)
    per_block = per_block and len(blocks) > 1 and hasattr(basis, "exponents")
    if per_block:  # one block's matrix (its own rows) and the monomial table of a chunk
        big_rows = block_rows(n, biggest)
        need = 8 * (2 * big_rows * biggest + min(big_rows, chunk) * basis.size
                    + 3 * biggest ** 2)
    else:
        need = 8 * (2 * rows * basis.size + 2 * biggest * basis.size
                    + (rows + 2 * biggest) * biggest + 3 * biggest ** 2)
    check_memory(need, f"the float64 matrix of a block of {biggest} (at {rows} points) and "
                 "its SVD", "lower the degree or the number of points, or skip the float "
                 "spectrum (spectrum=False, --no-spectrum)")
    spectra, vhs = [], []
    with cpu_threads(threads, x.device):
        factors, scale = (_per_block_factors(basis, f_fn, x, blocks, chunk) if per_block
                          else _block_factors(basis, f_fn, x, blocks, chunk))
        for block, r in zip(blocks, factors, strict=True):
            s, vh = normalised_spectrum(r, len(block), vectors=vectors)
            spectra.append(s.detach().cpu())
            vhs.append(vh)
    merged = torch.sort(torch.cat(spectra), descending=True).values
    nullity, gap, confidence = choose_cut(merged, rtol)
    threshold = _cut_between(merged, nullity)
    block_nullities = [int((s < threshold).sum()) for s in spectra]
    cols = []
    for block, vh, k in zip(blocks, vhs, block_nullities, strict=True):
        if not vectors or k == 0:
            continue
        v = vh[-k:].T / scale[torch.as_tensor(block, device=x.device)][:, None]  # unscaled
        v = v / torch.linalg.vector_norm(v, dim=0, keepdim=True)
        full = np.zeros((basis.size, k))
        full[block] = v.cpu().numpy()
        cols.append(full)
    vecs = np.concatenate(cols, axis=1) if cols else np.zeros((basis.size, 0))
    return NumericalNullSpace(vectors=vecs, spectrum=merged.numpy(), nullity=nullity, gap=gap,
                              confidence=confidence, block_nullities=block_nullities)
