"""Linear algebra on the device, in float64, for matrices too tall to hold at once.

* :func:`accumulate_gram` sums ``A^T A`` over row blocks (never holding all of ``A``).
* :func:`accumulate_r` does the same with a stable chunked QR (TSQR): ``R^T R = A^T A`` but
  ``R`` keeps singular values that the Gram matrix squares away (1e-9 becomes 1e-18, below
  float64 resolution).
* :func:`null_space` returns the null space with the full normalised spectrum and the gap
  that decides the nullity, so a count always comes with its confidence.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch

from .memory import check_memory

__all__ = ["accumulate_gram", "accumulate_r", "NullSpace", "null_space", "choose_cut",
           "batched_gradient", "row_chunk_size"]

#: A normalised singular value above this is never taken as "zero" by the gap rule:
#: float64 null directions sit near 1e-13..1e-16, genuine ones rarely below 1e-7.
NULL_CEILING = 1e-7


def row_chunk_size(n_cols: int, itemsize: int = 8, budget_bytes: int = 256 * 2**20) -> int:
    """Rows per block so that one ``(rows, n_cols)`` block fits in ``budget_bytes``.

    >>> row_chunk_size(1000, budget_bytes=8 * 1000 * 64)
    64
    """
    return max(1, budget_bytes // max(1, n_cols * itemsize))


def _as_blocks(blocks: torch.Tensor | Iterable[torch.Tensor]) -> Iterable[torch.Tensor]:
    if isinstance(blocks, torch.Tensor):
        return (blocks,)
    return blocks


def accumulate_gram(blocks: torch.Tensor | Iterable[torch.Tensor],
                    device: torch.device | str | None = None) -> torch.Tensor:
    """``A^T A`` for ``A`` given as row blocks, accumulated in float64.

    Parameters
    ----------
    blocks : Tensor or iterable of Tensor, each shape (rows_k, n_cols)
    device : device, optional
        Where to accumulate (default: the first block's device).

    Returns
    -------
    Tensor, shape (n_cols, n_cols)

    Examples
    --------
    >>> A = torch.arange(12.0).reshape(4, 3)
    >>> bool(torch.allclose(accumulate_gram([A[:3], A[3:]]), (A.T @ A).double()))
    True
    """
    gram = None
    for block in _as_blocks(blocks):
        dev = device if device is not None else block.device
        block = block.to(device=dev, dtype=torch.float64)
        part = block.T @ block  # shape (n_cols, n_cols)
        gram = part if gram is None else gram.add_(part)
    if gram is None:
        raise ValueError("accumulate_gram needs at least one block; got none.")
    return gram


def accumulate_r(blocks: torch.Tensor | Iterable[torch.Tensor],
                 device: torch.device | str | None = None) -> torch.Tensor:
    """The ``R`` factor of ``A = QR`` from row blocks (TSQR), in float64.

    ``A`` and ``R`` share singular values and right singular vectors, so the null space of
    ``A`` is that of ``R`` (shape at most ``(n_cols, n_cols)``), found stably.

    Returns
    -------
    Tensor, shape (min(n_rows, n_cols), n_cols)
    """
    r = None
    for block in _as_blocks(blocks):
        dev = device if device is not None else block.device
        block = block.to(device=dev, dtype=torch.float64)
        stacked = block if r is None else torch.cat([r, block], dim=0)
        r = torch.linalg.qr(stacked, mode="r").R  # shape (min(rows, n_cols), n_cols)
    if r is None:
        raise ValueError("accumulate_r needs at least one block; got none.")
    return r


@dataclass(frozen=True)
class NullSpace:
    """Null space of a matrix with the evidence for its dimension.

    Attributes
    ----------
    basis : Tensor, shape (n_cols, nullity)
        Orthonormal basis of the (numerical) null space.
    spectrum : Tensor, shape (n_cols,)
        Singular values divided by the largest, descending; zeros appended when the
        matrix has fewer rows than columns.
    nullity : int
    gap : float
        Decades between the smallest kept and the largest dropped singular value.
    confidence : float
        ``gap / -log10(largest dropped value)``, in [0, 1]: 1 is a perfect cut.
    """

    basis: torch.Tensor
    spectrum: torch.Tensor
    nullity: int
    gap: float
    confidence: float


def choose_cut(spectrum: torch.Tensor, rtol: float | None = None) -> tuple[int, float, float]:
    """Nullity, gap (decades) and confidence from a normalised descending spectrum.

    Without ``rtol`` the cut is the largest gap (in log scale) whose lower side is below
    ``NULL_CEILING``; with it, values below ``rtol`` count as zero.

    >>> choose_cut(torch.tensor([1.0, 0.3, 1e-15, 1e-16]))
    (2, 14.47..., 0.96...)
    """
    s = spectrum.detach().double().cpu().clamp_min(1e-300)
    n = s.numel()
    logs = torch.log10(s)
    if n and float(s.max()) <= 1e-300:  # the zero matrix: everything is null
        return n, math.inf, 1.0
    if rtol is not None:
        if not 0 < rtol < 1:
            raise ValueError(f"The tolerance 'rtol' must be in (0, 1); got {rtol!r}.")
        nullity = int((s < rtol).sum())
    else:
        gaps = logs[:-1] - logs[1:]  # gaps[i]: between s[i] and s[i + 1]
        eligible = s[1:] < NULL_CEILING
        if n < 2 or not bool(eligible.any()):
            nullity = 0
        else:
            masked = torch.where(eligible, gaps, torch.full_like(gaps, -math.inf))
            nullity = n - 1 - int(torch.argmax(masked))
    if nullity == 0:
        below = max(float(torch.finfo(torch.float64).eps), 1e-16)
        gap = float(logs[-1] - math.log10(below)) if n else 0.0
        return 0, gap, max(0.0, min(1.0, gap / -math.log10(below)))
    if nullity == n:
        return n, math.inf, 1.0
    above, below = float(logs[n - nullity - 1]), float(logs[n - nullity])
    gap = above - below
    return nullity, gap, max(0.0, min(1.0, gap / max(-below, 1e-12)))


def null_space(a: torch.Tensor | None = None, *,
               blocks: Iterable[torch.Tensor] | None = None,
               rtol: float | None = None,
               device: torch.device | str | None = None) -> NullSpace:
    """Null space of ``A`` (given whole or as row blocks) by SVD in float64.

    Parameters
    ----------
    a : Tensor, shape (n_rows, n_cols), optional
    blocks : iterable of Tensor, optional
        Row blocks of ``A``, reduced by TSQR so ``A`` is never held at once.
    rtol : float, optional
        Fixed relative tolerance instead of the largest-gap rule.

    Examples
    --------
    >>> A = torch.tensor([[1.0, 1.0, 0.0], [2.0, 2.0, 0.0]])
    >>> ns = null_space(A)
    >>> ns.nullity
    2
    """
    if (a is None) == (blocks is None):
        raise ValueError("null_space needs exactly one of 'a' or 'blocks'.")
    if a is not None:
        if a.ndim != 2:
            raise ValueError(f"null_space needs a 2D matrix; got shape {tuple(a.shape)}.")
        dev = device if device is not None else a.device
        check_memory(8 * 3 * a.shape[0] * a.shape[1] + 8 * 2 * a.shape[1] ** 2,
                     f"the SVD of a {a.shape[0]} x {a.shape[1]} matrix",
                     "pass row blocks instead, or use fewer columns")
        m = a.to(device=dev, dtype=torch.float64)
        if m.shape[0] > 2 * m.shape[1]:
            m = torch.linalg.qr(m, mode="r").R  # tall: SVD of R is cheaper, same spectrum
    else:
        m = accumulate_r(blocks, device=device)
    n_cols = m.shape[1]
    _, s, vh = torch.linalg.svd(m, full_matrices=True)
    spectrum = torch.zeros(n_cols, dtype=torch.float64, device=s.device)
    top = s[0] if s.numel() and float(s[0]) > 0 else torch.tensor(1.0, dtype=torch.float64)
    spectrum[: s.numel()] = s / top
    nullity, gap, confidence = choose_cut(spectrum, rtol)
    basis = vh[n_cols - nullity:].T.contiguous() if nullity else vh[:0].T.contiguous()
    return NullSpace(basis=basis, spectrum=spectrum, nullity=nullity, gap=gap,
                     confidence=confidence)


def batched_gradient(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                     chunk_size: int = 4096) -> torch.Tensor:
    """Gradients of a row-wise scalar function at many points, in chunks.

    Parameters
    ----------
    fn : callable, Tensor (b, n) -> Tensor (b,)
        Must treat rows independently (row ``j`` of the output depends on row ``j`` only).
    x : Tensor, shape (n_points, n)
    chunk_size : int
        Rows per autograd pass (bounds the memory of the graph).

    Returns
    -------
    Tensor, shape (n_points, n)

    Examples
    --------
    >>> g = batched_gradient(lambda x: (x ** 2).sum(1), torch.tensor([[1.0, 2.0]]))
    >>> g.tolist()
    [[2.0, 4.0]]
    """
    out = torch.empty_like(x)
    for start in range(0, x.shape[0], chunk_size):
        chunk = x[start:start + chunk_size].detach().requires_grad_(True)
        with torch.enable_grad():
            y = fn(chunk)
            if y.shape != chunk.shape[:1]:
                raise ValueError(f"batched_gradient needs fn to return shape (b,); got "
                                 f"{tuple(y.shape)} for input {tuple(chunk.shape)}.")
            (grad,) = torch.autograd.grad(y.sum(), chunk)
        out[start:start + chunk_size] = grad
    return out
