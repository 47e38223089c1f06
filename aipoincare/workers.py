"""Units of exact work, one per (scaling block, prime), and where they run.

A :class:`BlockTask` holds everything one exact rank needs: the prime, the block's columns
and, for a polynomial basis, only the residues of the sample points and of ``f`` there plus
the block's exponents (the modular matrix is built where the task runs, so a worker never
needs the system, SymPy or the whole basis). :func:`solve` turns it into the canonical null
basis mod p (:class:`aipoincare.exact.NullBasisModP`):

* blocks of at most :data:`FLINT_MAX` columns: FLINT's ``nmod_mat`` with a 31-bit prime;
* larger blocks: the float64-BLAS elimination of :mod:`aipoincare.gfp` with a 21-bit prime
  (several times faster, and no million-entry Python lists).

:func:`run_tasks` runs a list of tasks in this process, on local worker threads (NumPy
releases the interpreter lock in BLAS and in its elementwise loops, so two threads keep two
cores busy; BLAS is held to one thread each with threadpoolctl), or on a Dask cluster
(:func:`traincore.distributed.map_ordered`). Tasks are deterministic: the same counts and
vectors come back wherever they ran.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import gfp

__all__ = ["FLINT_MAX", "BlockTask", "engine_for", "task_bytes", "build_matrix", "solve",
           "run_tasks"]

#: Blocks up to this many columns are eliminated by FLINT (31-bit primes, fewer primes for
#: large rational coefficients); larger ones by float64 BLAS (:mod:`aipoincare.gfp`).
FLINT_MAX = 100
#: Rows of the modular matrix built at once (bounds the int64 temporaries).
_BUILD_ROWS = 1024


def engine_for(n_cols: int) -> str:
    """``"flint"`` for small blocks, ``"blas"`` for large ones."""
    return "flint" if n_cols <= FLINT_MAX else "blas"


@dataclass(frozen=True)
class BlockTask:
    """One exact rank: a block of basis columns at the points of one prime.

    Attributes
    ----------
    block : int
        Index of the block (for the caller's bookkeeping).
    p : int
        The prime (31-bit for ``"flint"``, in ``gfp``'s range for ``"blas"``).
    engine : str
        ``"flint"`` or ``"blas"``.
    matrix : ndarray of int64, shape (rows, cols), optional
        ``A mod p`` for the block, when built by the caller (non-polynomial bases).
    exponents : ndarray of int64, shape (cols, n_vars), optional
        The block's monomials (polynomial basis): the matrix is built from them.
    points, f : ndarray of int64, shape (rows, n_vars), optional
        Residues of the points and of ``f`` there.
    """

    block: int
    p: int
    engine: str
    matrix: np.ndarray | None = None
    exponents: np.ndarray | None = None
    points: np.ndarray | None = None
    f: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int]:
        if self.matrix is not None:
            return self.matrix.shape
        return self.points.shape[0], self.exponents.shape[0]


def task_bytes(rows: int, cols: int, engine: str) -> int:
    """Memory one task needs while it runs (estimate, bytes).

    BLAS: the float64 matrix, the echelon's copy of its pivot rows and the slices of the
    products; FLINT: the int64 matrix, FLINT's copy and the Python integers of the
    conversion (about 40 bytes each).
    """
    if engine == "flint":
        return 56 * rows * cols
    return 8 * (2 * rows * cols + 3 * min(rows, 2048) * cols + 4 * _BUILD_ROWS * cols)


def _lower_table(exponents: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                 np.ndarray, np.ndarray]:
    """The lower monomials ``x^(e - 1_k)`` of the block and, per column and slot, which.

    Returns
    -------
    lower : ndarray of int64, shape (n_lower, n_vars)
    var, coef, idx : ndarray of int64, shape (n_slots, cols)
        Slot ``s`` of column ``c``: variable ``var``, exponent ``coef`` (0 for an empty
        slot) and the row of ``lower`` holding ``x^(e - 1_var)``.
    """
    cols, n_vars = exponents.shape
    n_slots = max(1, int((exponents > 0).sum(1).max())) if cols else 1
    var = np.zeros((n_slots, cols), dtype=np.int64)
    coef = np.zeros((n_slots, cols), dtype=np.int64)
    idx = np.zeros((n_slots, cols), dtype=np.int64)
    index: dict[tuple, int] = {}
    for c, e in enumerate(exponents.tolist()):
        for s, k in enumerate(k for k in range(n_vars) if e[k]):
            low = list(e)
            low[k] -= 1
            var[s, c], coef[s, c] = k, e[k]
            idx[s, c] = index.setdefault(tuple(low), len(index))
    lower = np.array(list(index), dtype=np.int64).reshape(-1, n_vars)
    return lower, var, coef, idx


def _monomials_mod_p(points: np.ndarray, lower: np.ndarray, p: int) -> np.ndarray:
    """Values of the monomials ``lower`` at the points mod p, shape (rows, n_lower)."""
    out = np.ones((points.shape[0], len(lower)), dtype=np.int64)
    for k in range(lower.shape[1]):
        col = lower[:, k]
        for power in range(1, int(col.max(initial=0)) + 1):
            hit = np.nonzero(col >= power)[0]
            if hit.size:
                out[:, hit] = out[:, hit] * points[:, k:k + 1] % p
    return out


def build_matrix(task: BlockTask) -> np.ndarray:
    """``A mod p`` of the task's block: int64 residues (FLINT) or centred float64 (BLAS).

    A polynomial block is built in slices of rows from the lower monomials it needs
    (``grad x^e . f = sum_k e_k x^(e - 1_k) f_k``), never from the whole basis.
    """
    p = task.p
    if task.matrix is not None:
        a = task.matrix
        return a if task.engine == "flint" else gfp.centre(a.astype(np.float64), p)
    lower, var, coef, idx = _lower_table(task.exponents)
    rows, cols = task.shape
    out = np.empty((rows, cols), dtype=np.int64 if task.engine == "flint" else np.float64)
    for r0 in range(0, rows, _BUILD_ROWS):
        pts = task.points[r0:r0 + _BUILD_ROWS]
        f = task.f[r0:r0 + _BUILD_ROWS]
        mono = _monomials_mod_p(pts, lower, p)
        acc = np.zeros((pts.shape[0], cols), dtype=np.int64)
        for s in range(var.shape[0]):
            acc += mono[:, idx[s]] * f[:, var[s]] % p * coef[s] % p
        acc %= p
        if task.engine == "flint":
            out[r0:r0 + _BUILD_ROWS] = acc
        else:
            out[r0:r0 + _BUILD_ROWS] = gfp.centre(acc.astype(np.float64), p)
    return out


def solve(task: BlockTask) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The canonical null basis of the task's block mod p: ``(pivots, free, values)``.

    As in :func:`aipoincare.gfp.null_basis` (the fields of ``NullBasisModP``).
    """
    a = build_matrix(task)
    if task.engine == "flint":
        return gfp.flint_null_basis(a, task.p)
    return gfp.null_basis(a, task.p)


@contextlib.contextmanager
def _one_blas_thread() -> Any:
    """BLAS (and FLINT) at one thread while worker threads share the cores."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


def run_tasks(tasks: Sequence[BlockTask], workers: int = 1, client: Any = None,
              done: Callable[[BlockTask], None] | None = None) -> list[Any]:
    """:func:`solve` every task: here, on ``workers`` local threads, or on a Dask cluster.

    Parameters
    ----------
    tasks : sequence of BlockTask
    workers : int
        Local worker threads (1: in this thread, in order).
    client : distributed.Client, optional
        A Dask client: the tasks go to the cluster's workers (``workers`` is ignored).
    done : callable, optional
        Called with each task as it finishes (progress).

    Returns
    -------
    list
        The null bases, in the order of ``tasks``.
    """
    if client is not None:
        from traincore.distributed import map_ordered

        return map_ordered(solve, tasks, client=client, show_progress=False,
                           progress=(lambda i, n: None) if done is None else
                           _progress_by_count(tasks, done))
    if workers <= 1 or len(tasks) <= 1:
        out = []
        for t in tasks:
            out.append(solve(t))
            if done is not None:
                done(t)
        return out
    # largest first: the longest task starts at once and the small ones fill in around it
    order = sorted(range(len(tasks)), key=lambda i: -np.prod(tasks[i].shape))
    results: list[Any] = [None] * len(tasks)
    with _one_blas_thread(), ThreadPoolExecutor(max_workers=workers) as pool:
        # each task in a copy of this context: the time limit (a context variable) holds there
        futures = {pool.submit(contextvars.copy_context().run, solve, tasks[i]): i
                   for i in order}
        try:
            for fut in as_completed(futures):
                i = futures[fut]
                results[i] = fut.result()
                if done is not None:
                    done(tasks[i])
        except BaseException:
            for fut in futures:
                fut.cancel()
            raise
    return results


def _progress_by_count(tasks: Sequence[BlockTask],
                       done: Callable[[BlockTask], None]) -> Callable[[int, int], None]:
    seen = [0]

    def progress(count: int, total: int) -> None:
        while seen[0] < count:  # map_ordered reports counts, not which task
            done(tasks[seen[0]])
            seen[0] += 1

    return progress
