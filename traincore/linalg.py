"""Linear algebra on the device, in float64, for matrices too tall to hold at once.

The toolkit's one implementation of the chunked null space (aipoincare's float matrix goes
through it; a distributed reduction would hook in at :meth:`TSQR.merge`):

* :class:`TSQR` reduces a tall matrix fed in row chunks to its ``R`` factor in one pass:
  ``R^T R = A^T A``, but ``R`` keeps the singular values that the Gram matrix squares away
  (1e-9 becomes 1e-18, below float64 resolution), so null-space decisions never use the Gram.
* :func:`normalised_spectrum` gives the singular values divided by the largest (and the
  right singular vectors), :func:`choose_cut` the nullity, gap and confidence from them.
* :func:`null_space` puts these together for one matrix (whole or in row blocks), so a
  count always comes with its confidence.
* :func:`accumulate_gram` sums ``A^T A`` over row blocks, for uses that need the Gram itself.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch

from .memory import check_memory
from .validate import check_number

__all__ = ["TSQR", "accumulate_gram", "accumulate_r", "NullSpace", "null_space", "choose_cut",
           "normalised_spectrum", "batched_gradient", "row_chunk_size"]

#: A normalised singular value above this is never taken as "zero" by the gap rule:
#: float64 null directions sit near 1e-13..1e-16, genuine ones rarely below 1e-7.
NULL_CEILING = 1e-7
#: Normalised singular values below this are all rounding (float64 resolves about 1e-16 of
#: the largest): they are floored here, so a structural 0 beside a rounding-level 1e-17 does
#: not look like a gap of 280 decades.
RESOLUTION = 1e-18


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


class TSQR:
    """The ``R`` factor of a tall matrix fed in row chunks, in one pass (tall-skinny QR).

    Rows wait in a buffer until at least ``min_rows`` of them have arrived; then the ``R``
    so far and the waiting rows are reduced by one QR, ``[R; rows] = Q R'``. Every row
    enters exactly one QR and every QR takes in at least ``min_rows`` new rows, so feeding
    ``m`` rows costs about ``2 m n^2`` flops however small the chunks are (a QR of ``[R;
    chunk]`` for every small chunk would cost ``n^3`` per chunk instead).

    Parameters
    ----------
    n_cols : int
    device : device, optional
        Where to reduce (default: the first chunk's device).
    min_rows : int, optional
        Rows per reduction (default ``n_cols``: each QR at least doubles the rows it sees).

    Examples
    --------
    >>> a = torch.randn(100, 4, dtype=torch.float64)
    >>> t = TSQR(4)
    >>> for chunk in torch.split(a, 7):
    ...     t.add(chunk)
    >>> bool(torch.allclose(t.r.T @ t.r, a.T @ a))
    True
    """

    def __init__(self, n_cols: int, *, device: torch.device | str | None = None,
                 min_rows: int | None = None) -> None:
        self.n_cols = n_cols
        self.device = device
        self.min_rows = max(1, min_rows if min_rows is not None else n_cols)
        self._r: torch.Tensor | None = None
        self._waiting: list[torch.Tensor] = []
        self._n_waiting = 0
        self.rows = 0

    def add(self, rows: torch.Tensor) -> None:
        """Take in a chunk of rows, shape (k, n_cols), any float dtype."""
        if rows.ndim != 2 or rows.shape[1] != self.n_cols:
            raise ValueError(f"TSQR.add needs rows of shape (k, {self.n_cols}); got "
                             f"{tuple(rows.shape)}.")
        dev = self.device if self.device is not None else rows.device
        self._waiting.append(rows.to(device=dev, dtype=torch.float64))
        self._n_waiting += rows.shape[0]
        self.rows += rows.shape[0]
        if self._n_waiting >= self.min_rows:
            self._reduce()

    def merge(self, other: TSQR) -> None:
        """Take in another accumulator's rows (the reduction step of a distributed TSQR:
        ``R`` of the stacked ``R`` factors of row partitions is ``R`` of the whole)."""
        if other.rows:
            r = other.r
            self._waiting.append(r.to(self.device if self.device is not None else r.device))
            self._n_waiting += r.shape[0]
            self.rows += other.rows
            self._reduce()

    def _reduce(self) -> None:
        parts = ([self._r] if self._r is not None else []) + self._waiting
        if not parts:
            return
        stacked = parts[0] if len(parts) == 1 else torch.cat(parts, 0)
        self._r = torch.linalg.qr(stacked, mode="r").R  # shape (min(rows, n_cols), n_cols)
        self._waiting, self._n_waiting = [], 0

    @property
    def r(self) -> torch.Tensor:
        """``R`` of all rows so far: shape (min(rows, n_cols), n_cols), float64."""
        if self._waiting:
            self._reduce()
        if self._r is None:
            raise ValueError("TSQR has no rows yet; add at least one chunk.")
        return self._r


def accumulate_r(blocks: torch.Tensor | Iterable[torch.Tensor],
                 device: torch.device | str | None = None) -> torch.Tensor:
    """The ``R`` factor of ``A = QR`` from row blocks (one :class:`TSQR` pass), in float64.

    ``A`` and ``R`` share singular values and right singular vectors, so the null space of
    ``A`` is that of ``R`` (shape at most ``(n_cols, n_cols)``), found stably.

    Returns
    -------
    Tensor, shape (min(n_rows, n_cols), n_cols)
    """
    acc: TSQR | None = None
    for block in _as_blocks(blocks):
        if acc is None:
            acc = TSQR(block.shape[1], device=device)
        acc.add(block)
    if acc is None:
        raise ValueError("accumulate_r needs at least one block; got none.")
    return acc.r


def normalised_spectrum(m: torch.Tensor, n_cols: int | None = None, *, vectors: bool = False
                        ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Singular values of ``m`` divided by the largest, and optionally its right vectors.

    Parameters
    ----------
    m : Tensor, shape (rows, n)
        Usually a :class:`TSQR` ``R`` factor (same spectrum as the tall matrix).
    n_cols : int, optional
        Length of the spectrum (default ``n``): zeros are appended for the directions a
        matrix with fewer rows than columns cannot see.
    vectors : bool
        Also return ``Vh`` (full, shape (n, n)): its last rows span the null space.

    Returns
    -------
    spectrum : Tensor, shape (n_cols,), float64, descending, on ``m``'s device
    vh : Tensor, shape (n, n), or None

    Examples
    --------
    >>> normalised_spectrum(torch.tensor([[2.0, 0.0], [0.0, 1.0]]), 3)[0].tolist()
    [1.0, 0.5, 0.0]
    """
    n_cols = m.shape[1] if n_cols is None else n_cols
    m = m.to(torch.float64)
    if vectors:
        _, s, vh = torch.linalg.svd(m, full_matrices=True)
    else:
        s, vh = torch.linalg.svdvals(m), None
    if s.numel() and float(s[0]) > 0:  # note: a CPU-GPU sync point, once per matrix
        s = s / s[0]
    if s.numel() < n_cols:  # fewer rows than columns: the rest are exact zeros
        s = torch.cat([s, s.new_zeros(n_cols - s.numel())])
    return s, vh


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
    raw = spectrum.detach().double().cpu()
    n = raw.numel()
    if n and float(raw.max()) <= 0:  # the zero matrix: everything is null
        return n, math.inf, 1.0
    s = raw.clamp_min(RESOLUTION)
    logs = torch.log10(s)
    if rtol is not None:
        check_number(rtol, "rtol", gt=0, lt=1, fix="e.g. 1e-9")
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
        check_memory(8 * 3 * a.shape[0] * a.shape[1] + 8 * 2 * a.shape[1] ** 2,
                     f"the SVD of a {a.shape[0]} x {a.shape[1]} matrix",
                     "pass row blocks instead, or use fewer columns")
    m = accumulate_r(a if a is not None else blocks, device=device)
    n_cols = m.shape[1]
    spectrum, vh = normalised_spectrum(m, vectors=True)
    nullity, gap, confidence = choose_cut(spectrum, rtol)
    basis = vh[n_cols - nullity:].T.contiguous()  # shape (n_cols, nullity)
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
