"""Sample states of a system: random (normal/uniform), projected onto constraints, or from data.

Random states come from a numpy ``Generator`` seeded by the caller (``traincore.numpy_rng``).
With constraints g_k(x) = 0, each state is moved onto the constraint set by Gauss-Newton
steps with the minimum-norm update ``dx = -pinv(J(x)) g(x)`` (batched over points on the
device; ``J`` from symbolic derivatives via :func:`aipoincare.evaluate.compile_jacobian_torch`).
States where the projection does not converge, or where f (or any extra expression the
caller needs finite, e.g. basis functions) is not finite, are dropped and counted; more
states are drawn until the requested number survive (a few rounds at most).
"""

from __future__ import annotations

import csv
import functools
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import sympy
import torch

from traincore import check_int, check_type, numpy_rng, resolve_device

from .datafile import as_numbers, load_array, read_lines
from .errors import DataFileError, NoSamplesError
from .evaluate import compile_jacobian_torch, compile_torch
from .specs import SamplingSpec
from .system import System

__all__ = ["Samples", "draw_states", "load_states", "project_onto_constraints",
           "sample_states"]


@dataclass
class Samples:
    """Sample states and how they were obtained.

    Attributes
    ----------
    states : ndarray, shape (n_points, n_vars), float64
        The usable states, columns in the system's variable order.
    requested : int
        How many states were asked for.
    dropped : int
        Candidate states discarded (projection failed, or f / an extra expression not finite).
    source : str
        ``"normal"``, ``"uniform"`` or ``"data:<path>"``.
    projected : bool
        Whether the states were projected onto the constraint set.
    notes : list of str
        Sentences for the report (drops, rounds, shortfall).
    """

    states: np.ndarray
    requested: int
    dropped: int = 0
    source: str = "normal"
    projected: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def n_points(self) -> int:
        """Number of usable states."""
        return int(self.states.shape[0])

    def __repr__(self) -> str:
        return (f"Samples({self.n_points} x {self.states.shape[1]} from {self.source}, "
                f"requested {self.requested}, dropped {self.dropped})")


# ----------------------------------------------------------------------------------------
# Projection onto the constraint set
# ----------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=16)
def _constraint_functions(constraints: tuple[sympy.Expr, ...],
                          variables: tuple[sympy.Symbol, ...]) -> tuple[Any, Any]:
    """Compiled g and its Jacobian, cached: projection runs once per round and per call.

    Polynomial constraints are differentiated as ``sympy.Poly`` (3x faster than
    ``sympy.diff`` on the 3D fluid's 72-term volume constraint).
    """
    g_fn = compile_torch(list(constraints), list(variables))
    if all(c.is_polynomial(*variables) for c in constraints):
        derivs = [sympy.Poly(c, *variables).diff(v).as_expr()
                  for c in constraints for v in variables]
        flat = compile_torch(derivs, list(variables))
        k, m = len(constraints), len(variables)

        def j_fn(x: torch.Tensor) -> torch.Tensor:
            return flat(x).reshape(x.shape[0], k, m)  # (n, k, n_vars)
    else:
        j_fn = compile_jacobian_torch(list(constraints), list(variables))
    return g_fn, j_fn


def _min_norm_step(jac: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """The minimum-norm solution dx of J dx = g, batched: (a, k, n) x (a, k) -> (a, n)."""
    if jac.shape[1] == 1:  # one constraint: dx = J^T g / |J|^2, no SVD needed
        jv = jac[:, 0, :]
        return jv * (g[:, :1] / (jv * jv).sum(1, keepdim=True))  # |J| = 0 gives inf: dropped
    return (torch.linalg.pinv(jac) @ g.unsqueeze(-1)).squeeze(-1)


def project_onto_constraints(x: torch.Tensor, constraints: Sequence[sympy.Expr],
                             variables: Sequence[sympy.Symbol], *, tol: float = 1e-12,
                             max_iter: int = 50) -> tuple[torch.Tensor, torch.Tensor]:
    """Move each point onto {g(x) = 0} by Gauss-Newton with minimum-norm steps.

    Parameters
    ----------
    x : Tensor, shape (n, n_vars), float64
        Starting points (any device).
    constraints : sequence of sympy.Expr, length k
    variables : sequence of sympy.Symbol, length n_vars
    tol : float
        Convergence test per point: ``max_k |g_k(x)| <= tol * (1 + ||J(x)||_F * ||x||)``
        (the scale of g's terms: for a homogeneous g of degree d, ``J x = d g``).
    max_iter : int
        Gauss-Newton iterations at most.

    Returns
    -------
    x : Tensor, shape (n, n_vars)
        Projected points.
    ok : Tensor of bool, shape (n,)
        Which points converged to finite values.

    Examples
    --------
    >>> a, b = sympy.symbols("a b")
    >>> p, ok = project_onto_constraints(torch.tensor([[3.0, 4.0]], dtype=torch.float64),
    ...                                  [a**2 + b**2 - 1], [a, b])
    >>> [round(v, 12) for v in p[0].tolist()], bool(ok[0])
    ([0.6, 0.8], True)
    """
    g_fn, j_fn = _constraint_functions(tuple(constraints), tuple(variables))
    x = x.to(torch.float64).clone()
    n = x.shape[0]
    ok = torch.zeros(n, dtype=torch.bool, device=x.device)
    active = torch.ones(n, dtype=torch.bool, device=x.device)
    for _ in range(max_iter + 1):
        idx = active.nonzero().squeeze(1)
        if idx.numel() == 0:
            break
        xa = x[idx]
        g = g_fn(xa)                                   # (a, k)
        jac = j_fn(xa)                                 # (a, k, n_vars)
        finite = torch.isfinite(g).all(1) & torch.isfinite(jac).flatten(1).all(1)
        scale = 1.0 + jac.flatten(1).norm(dim=1) * xa.norm(dim=1)
        done = finite & (g.abs().amax(1) <= tol * scale)
        ok[idx[done]] = True
        # bad (non-finite) points stop here, unconverged
        keep = finite & ~done
        active[idx[~keep]] = False
        if not bool(keep.any()):  # note: a device sync point, once per iteration
            break
        idx, g, jac = idx[keep], g[keep], jac[keep]
        x[idx] = x[idx] - _min_norm_step(jac, g)
    ok &= torch.isfinite(x).all(1)
    # Polish: Newton converges quadratically, so two more steps from a converged point reach
    # rounding level (the 3D fluid's smallest non-null singular values are ~1e-9: constraint
    # residuals of 1e-11 would blur them). A step is kept only where it lowers |g|.
    idx = ok.nonzero().squeeze(1)
    for _ in range(2):
        if idx.numel() == 0:
            break
        xa = x[idx]
        g = g_fn(xa)
        x_new = xa - _min_norm_step(j_fn(xa), g)
        better = torch.isfinite(x_new).all(1) & (g_fn(x_new).abs().amax(1) < g.abs().amax(1))
        x[idx[better]] = x_new[better]
    return x, ok


# ----------------------------------------------------------------------------------------
# Data files
# ----------------------------------------------------------------------------------------

def _resolve_data_path(data: str, system: System) -> Path:
    path = Path(data).expanduser()
    if not path.is_absolute() and system.source:
        path = Path(system.source).resolve().parent / path
    return path


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _load_npy(path: Path, names: Sequence[str]) -> np.ndarray:
    """States from a ``.npy`` array, shape (n_rows, n_vars), float64."""
    n_vars, shown = len(names), str(path)
    arr = load_array(path, "data file", ".npy array", "numpy.save")
    if arr.ndim == 1 and n_vars == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise DataFileError(f"The data file {shown!r} must hold a 2-D array (rows = states, "
                            f"{n_vars} columns); got shape {arr.shape}.")
    arr = as_numbers(arr, f"The data file {shown!r}")
    if arr.shape[1] != n_vars:
        raise DataFileError(
            f"The data file {shown!r} has {arr.shape[1]} columns; expected {n_vars} "
            f"({', '.join(names)}), one per variable in order.")
    if arr.shape[0] == 0:
        raise DataFileError(f"The data file {shown!r} has no rows; add one state per row.")
    return arr


def load_states(path: str | os.PathLike[str], variables: Sequence[str]) -> np.ndarray:
    """Read states from a CSV (with or without a header row) or ``.npy`` file.

    Parameters
    ----------
    path : str or path-like
    variables : sequence of str, length n_vars
        The variable names: a CSV header must name exactly these (in any order; columns
        are reordered to match).

    Returns
    -------
    ndarray, shape (n_rows, n_vars), float64

    Raises
    ------
    DataFileError
        Missing/unreadable file, wrong number of columns, non-numeric cells (with the row
        and column), a header that does not match the variables, no rows.
    """
    path = Path(path)
    names = list(variables)
    n_vars = len(names)
    shown = str(path)
    if not path.is_file():
        raise DataFileError(f"The data file {shown!r} from [sampling] data does not exist; "
                            "check the path (relative paths are taken from the system file's "
                            "folder).")
    if path.suffix.lower() == ".npy":
        return _load_npy(path, names)
    lines = [ln for _, ln in read_lines(path, "data file", "CSV or .npy")]
    if not lines:
        raise DataFileError(f"The data file {shown!r} is empty; write one state per row, "
                            f"columns {', '.join(names)}.")
    delimiter = "," if "," in lines[0] else ("\t" if "\t" in lines[0] else None)
    if delimiter is None:
        rows = [ln.split() for ln in lines]
    else:
        rows = [[c.strip() for c in r] for r in csv.reader(lines, delimiter=delimiter)]
    order = list(range(n_vars))
    first = 0
    if rows and not all(_is_float(c) for c in rows[0]):
        header = rows[0]
        if sorted(header) != sorted(names) or len(set(header)) != len(header):
            raise DataFileError(
                f"The header row of the data file {shown!r} names {', '.join(header)}; "
                f"expected the variables {', '.join(names)} (or no header).")
        order = [header.index(v) for v in names]
        first = 1
    if len(rows) <= first:
        raise DataFileError(f"The data file {shown!r} has a header but no rows; add one state "
                            "per row.")
    out = np.empty((len(rows) - first, n_vars), dtype=np.float64)
    for r, row in enumerate(rows[first:]):
        if len(row) != n_vars:
            raise DataFileError(
                f"Row {r + 1} of the data file {shown!r} has {len(row)} columns; expected "
                f"{n_vars} ({', '.join(names)}), one per variable.")
        for c, pos in enumerate(order):
            cell = row[pos]
            try:
                out[r, c] = float(cell)
            except ValueError:
                raise DataFileError(
                    f"Row {r + 1}, column {pos + 1} of the data file {shown!r} is not a "
                    f"number: {cell!r}; write plain decimal numbers.") from None
    return out


# ----------------------------------------------------------------------------------------
# Sampling
# ----------------------------------------------------------------------------------------

def _draw(rng: np.random.Generator, spec: SamplingSpec, n: int, n_vars: int) -> np.ndarray:
    if spec.distribution == "normal":
        return rng.normal(0.0, spec.scale, size=(n, n_vars))
    return rng.uniform(spec.low, spec.high, size=(n, n_vars))


def _usable(x: torch.Tensor, f_fn: Callable[[torch.Tensor], torch.Tensor],
            extra_fn: Callable[[torch.Tensor], torch.Tensor] | None) -> torch.Tensor:
    """Bool mask of points where the state, f and the extra expressions are all finite."""
    ok = torch.isfinite(x).all(1) & torch.isfinite(f_fn(x)).all(1)
    if extra_fn is not None:
        ok &= torch.isfinite(extra_fn(x)).all(1)
    return ok


def sample_states(system: System, n_points: int | None = None, seed: int = 0, *,
                  spec: SamplingSpec | None = None, device: str | torch.device = "auto",
                  finite: Sequence[sympy.Expr] = (), min_points: int = 1,
                  max_rounds: int = 8, tol: float = 1e-12) -> Samples:
    """Draw (or read) states of ``system`` where f is finite, on its constraint set.

    Parameters
    ----------
    system : System
    n_points : int, optional
        States wanted. Default: ``spec.points``; for a data file, all its rows.
    seed : int
        Seed of the numpy Generator (the same seed gives the same states).
    spec : SamplingSpec, optional
        Default: ``system.sampling``.
    device : str or torch.device
        Where f and the projection are evaluated ("auto", "cpu", "cuda").
    finite : sequence of sympy.Expr
        Extra expressions (e.g. non-polynomial basis functions) that must be finite at
        every kept state.
    min_points : int
        Fewest states the caller can work with: a data file with fewer usable rows is an
        error.
    max_rounds : int
        Rounds of drawing at most; each round oversamples by the survival rate seen so far.
    tol : float
        Constraint tolerance (see :func:`project_onto_constraints`).

    Returns
    -------
    Samples
        ``states`` has exactly ``n_points`` rows unless too many candidates were dropped
        (then fewer, with a note).

    Raises
    ------
    NoSamplesError
        If no candidate state is usable.
    DataFileError
        For a data file that cannot be used (see :func:`load_states`).

    Examples
    --------
    >>> s = System("x y", ["y", "-x"])
    >>> sample_states(s, 5, seed=0, device="cpu").states.shape
    (5, 2)
    """
    spec = system.sampling if spec is None else spec
    check_type(spec, "spec", SamplingSpec, "a SamplingSpec")
    n_points = spec.points if n_points is None else n_points
    if n_points is not None:
        check_int(n_points, "n_points", ge=1, fix="or None for [sampling] points")
    dev = resolve_device(device)
    f_fn = compile_torch(system.equations, system.variables)
    return draw_states(system, n_points, seed, spec=spec, device=dev, f_fn=f_fn, finite=finite,
                       min_points=min_points, max_rounds=max_rounds, tol=tol)


def draw_states(system: System, n_points: int | None, seed: int, *, spec: SamplingSpec,
                device: torch.device, f_fn: Callable[[torch.Tensor], torch.Tensor],
                finite: Sequence[sympy.Expr] = (), min_points: int = 1, max_rounds: int = 8,
                tol: float = 1e-12) -> Samples:
    """:func:`sample_states` for callers that have resolved the device and compiled f.

    Parameters
    ----------
    f_fn : callable, Tensor (n, n_vars) -> Tensor (n, n_vars)
        The compiled right-hand side (compiled once per discovery).

    Other parameters as in :func:`sample_states` (already checked).
    """
    extra_fn = compile_torch(list(finite), system.variables) if finite else None
    names = system.variable_names
    if spec.data is not None:
        return _from_data(system, spec.data, n_points, min_points, device, f_fn, extra_fn)
    if n_points is None:
        raise ValueError("The number of points is not set: pass n_points (--points) or set "
                         "[sampling] points.")
    dev = device
    rng = numpy_rng(seed)
    kept: list[np.ndarray] = []
    n_kept = drawn = 0
    rate = 1.0 if not system.constraints else 0.8  # guess of the survival rate, then measured
    rounds = 0
    while n_kept < n_points and rounds < max_rounds:
        rounds += 1
        need = n_points - n_kept
        if rounds == 1 and not system.constraints:
            batch = need  # the usual case: every state survives, draw exactly what is asked
        else:
            batch = math.ceil(need / max(rate, 0.02) * 1.2) + 8  # oversample by survival rate
        cand = torch.from_numpy(_draw(rng, spec, batch, len(names))).to(dev)
        if system.constraints:
            cand, ok = project_onto_constraints(cand, system.constraints, system.variables,
                                                tol=tol)
        else:
            ok = torch.ones(batch, dtype=torch.bool, device=dev)
        ok &= _usable(cand, f_fn, extra_fn)
        good = cand[ok].cpu().numpy()
        drawn += batch
        kept.append(good)
        n_kept += good.shape[0]
        rate = max(n_kept / drawn, 1e-3)
    states = np.concatenate(kept, axis=0) if kept else np.empty((0, len(names)))
    # Take the first n_points in draw order; extra survivors of the last round are not
    # "dropped" (they were never needed), so dropped counts only failures.
    failures = drawn - n_kept
    states = states[:n_points]
    notes: list[str] = []
    if n_kept == 0:
        why = ("the constraint projection did not converge or f was not finite"
               if system.constraints else "f (or a basis function) was not finite")
        raise NoSamplesError(
            f"No usable sample points: all {drawn} drawn states were dropped ({why}); change "
            f"[sampling] (distribution, scale, low/high) so that states lie where f is defined.")
    if failures:
        notes.append(f"{failures} of {drawn} drawn states were dropped "
                     + ("(constraint projection failed or " if system.constraints else "(")
                     + "f or a basis function not finite).")
    if states.shape[0] < n_points:
        notes.append(f"Only {states.shape[0]} of the {n_points} requested states are usable "
                     f"after {rounds} rounds of sampling.")
    if system.constraints:
        notes.append(f"States were projected onto {len(system.constraints)} constraint(s) by "
                     "Gauss-Newton (minimum-norm steps).")
    return Samples(states=np.ascontiguousarray(states, dtype=np.float64), requested=n_points,
                   dropped=failures, source=spec.distribution,
                   projected=bool(system.constraints), notes=notes)


def _from_data(system: System, data: str, n_points: int | None, min_points: int,
               dev: torch.device, f_fn: Callable[[torch.Tensor], torch.Tensor],
               extra_fn: Callable[[torch.Tensor], torch.Tensor] | None) -> Samples:
    path = _resolve_data_path(data, system)
    states = load_states(path, system.variable_names)
    rows = states.shape[0]
    x = torch.from_numpy(states).to(dev)
    ok = _usable(x, f_fn, extra_fn)
    notes: list[str] = []
    if system.constraints:
        g_fn, j_fn = _constraint_functions(tuple(system.constraints), tuple(system.variables))
        g, jac = g_fn(x), j_fn(x)
        scale = 1.0 + jac.flatten(1).norm(dim=1) * x.norm(dim=1)
        off = ok & ~(g.abs().amax(1) <= 1e-8 * scale)
        if bool(off.any()):
            notes.append(f"{int(off.sum())} of {rows} data states violate the constraints by "
                         "more than 1e-8 (relative); they were used as given.")
    good = states[ok.cpu().numpy()]
    dropped = rows - good.shape[0]
    if good.shape[0] == 0:
        raise NoSamplesError(f"No usable sample points: f (or a basis function) is not finite "
                             f"at any of the {rows} states in {str(path)!r}; check the data.")
    need = max(min_points, n_points or 0)
    if good.shape[0] < need:
        raise DataFileError(
            f"The data file {str(path)!r} has {good.shape[0]} usable rows but {need} are needed; "
            f"add rows, or ask for fewer points (--points {good.shape[0]}).")
    if dropped:
        notes.insert(0, f"{dropped} of {rows} data states were dropped (f or a basis function "
                     "not finite).")
    if n_points is not None:
        good = good[:n_points]
    return Samples(states=np.ascontiguousarray(good, dtype=np.float64),
                   requested=n_points if n_points is not None else rows, dropped=dropped,
                   source=f"data:{path}", projected=False, notes=notes)
