"""Simulated trajectories of a system with equations, in the data layout of the data mode.

:func:`simulate` integrates ``dx/dt = f(x)`` with SciPy's ``solve_ivp`` (DOP853, tight
tolerances) from initial states drawn as ``aipoincare discover`` draws its samples
(:func:`aipoincare.sample_states`: the ``[sampling]`` distribution, projected onto the
constraints, f finite), seeded; optional Gaussian noise relative to each variable's spread.
:func:`write_trajectories` writes them as CSV, NPY or NPZ, atomically.
"""

from __future__ import annotations

import dataclasses
import io
import os
from pathlib import Path

import numpy as np
import torch
from scipy.integrate import solve_ivp

from traincore import atomic_write, check_int, check_number, check_type, numpy_rng

from .errors import DataFileError
from .evaluate import compile_torch
from .sampling import sample_states
from .system import System
from .trajectories import MIN_TRAJECTORIES, SUFFIXES, Trajectories

__all__ = ["simulate", "add_noise", "write_trajectories", "DEFAULT_SAMPLES"]

#: Samples per trajectory when not given: enough for the noise estimate (windows of 7).
DEFAULT_SAMPLES = 200
_RTOL, _ATOL = 1e-11, 1e-13  # integration error far below any noise level studied (1e-3)


def _integrate(f_np, y0: np.ndarray, duration: float, t_eval: np.ndarray) -> np.ndarray | None:
    """All trajectories as one system (one adaptive step for all); None when it failed."""
    n, d = y0.shape
    with np.errstate(all="ignore"):
        sol = solve_ivp(lambda _t, y: f_np(y.reshape(n, d)).ravel(), (0.0, duration),
                        y0.ravel(), method="DOP853", t_eval=t_eval, rtol=_RTOL, atol=_ATOL)
    if sol.status != 0 or sol.y.shape[1] != len(t_eval) or not np.isfinite(sol.y).all():
        return None
    return sol.y.reshape(n, d, len(t_eval)).transpose(0, 2, 1)  # (n, samples, d)


def simulate(system: System, trajectories: int, duration: float, *,
             samples: int = DEFAULT_SAMPLES, noise: float = 0.0, seed: int = 0) -> Trajectories:
    """Trajectories of ``system`` from seeded initial states, optionally with noise.

    Parameters
    ----------
    system : System
        With equations (the file's ``[sampling]`` gives the initial states).
    trajectories : int
        How many (at least 4).
    duration : float
        Time span of each, from t = 0.
    samples : int
        Samples per trajectory, equally spaced in [0, duration] (at least 2).
    noise : float
        Standard deviation of the added Gaussian noise relative to each variable's spread
        (its standard deviation over all clean samples); 0 for none.
    seed : int
        Seeds the initial states and the noise.

    Returns
    -------
    Trajectories
        Ids ``0..trajectories-1`` (a trajectory that left the domain of f is dropped, with
        the ids renumbered; fewer than 4 left is an error).

    Raises
    ------
    ValueError
        Bad arguments; every trajectory failing.

    Examples
    --------
    >>> s = System("x v", ["v", "-x"])
    >>> d = simulate(s, 4, 3.0, samples=5, seed=0)
    >>> d.n_trajectories, d.states.shape
    (4, (20, 2))
    """
    check_type(system, "system", System, "an aipoincare.System with equations")
    check_int(trajectories, "trajectories", ge=MIN_TRAJECTORIES,
              fix="the data mode holds out half of them")
    duration = check_number(duration, "duration", gt=0, fix="e.g. --duration 10")
    check_int(samples, "samples", ge=2)
    noise = check_number(noise, "noise", ge=0, fix="e.g. --noise 0.01 (1% of each spread)")
    check_int(seed, "seed", ge=0)
    if system.symbolic:
        raise ValueError(f"The system has symbolic parameters "
                         f"({', '.join(map(str, system.symbolic))}); give them numbers to "
                         "simulate it.")
    f_fn = compile_torch(system.equations, system.variables)

    def f_np(y: np.ndarray) -> np.ndarray:
        return f_fn(torch.from_numpy(np.ascontiguousarray(y))).numpy()

    y0 = sample_states(system, trajectories, seed=seed, device="cpu").states
    t_eval = np.linspace(0.0, duration, samples)
    runs = _integrate(f_np, y0, duration, t_eval)
    if runs is None:  # one trajectory blew up or left the domain: integrate one by one
        parts = [_integrate(f_np, y[None], duration, t_eval) for y in y0]
        runs = np.concatenate([p for p in parts if p is not None] or [np.empty((0, samples,
                                                                                y0.shape[1]))])
    if runs.shape[0] < MIN_TRAJECTORIES:
        raise ValueError(f"Only {runs.shape[0]} of {trajectories} trajectories of "
                         f"{system.name!r} could be integrated over {duration:g} time units "
                         "(the others blew up or left the domain of f); shorten --duration or "
                         "change [sampling].")
    n = runs.shape[0]
    clean = Trajectories.from_arrays(np.repeat(np.arange(n), samples), np.tile(t_eval, n),
                                     runs.reshape(n * samples, -1), system.variable_names,
                                     source=f"simulate({system.name!r})")
    return add_noise(clean, noise, seed) if noise > 0 else clean


def add_noise(data: Trajectories, noise: float, seed: int = 0) -> Trajectories:
    """``data`` with Gaussian noise of standard deviation ``noise`` times each variable's
    spread (its standard deviation over all samples), seeded.

    :func:`simulate` with ``noise`` and ``seed`` equals :func:`add_noise` of its clean
    result with the same values.
    """
    noise = check_number(noise, "noise", ge=0, fix="e.g. 0.01 (1% of each spread)")
    rng = numpy_rng(seed + 1)  # its own stream: the same states with or without noise
    states = data.states + rng.normal(size=data.states.shape) * (noise * data.states.std(0))
    return dataclasses.replace(data, states=states)


def write_trajectories(data: Trajectories, path: str | os.PathLike[str]) -> Path:
    """Write trajectories in the data layout, atomically (CSV, ``.npy`` or ``.npz``).

    Parameters
    ----------
    data : Trajectories
    path : str or path-like
        Its suffix chooses the format (``.csv``/``.txt``, ``.npy``, ``.npz``).

    Returns
    -------
    Path
    """
    p = Path(path).expanduser()
    suffix = p.suffix.lower()
    if suffix not in SUFFIXES:
        raise DataFileError(f"The output {str(p)!r} must end in {', '.join(SUFFIXES)}; got "
                            f"{suffix or 'no extension'!r}.")
    ids = np.array(data.ids)[data.trajectory_index]
    if suffix == ".npz":
        buf = io.BytesIO()
        np.savez(buf, trajectory=ids.astype(np.int64) if _integral(ids) else ids.astype(str),
                 t=data.t, states=data.states)
        payload = buf.getvalue()
    elif suffix == ".npy":
        if not _integral(ids):
            raise DataFileError(f"A .npy file holds numbers only, and the trajectory ids are "
                                f"not integers (e.g. {ids[0]!r}); write .csv or .npz.")
        buf = io.BytesIO()
        np.save(buf, np.column_stack([ids.astype(np.float64), data.t, data.states]))
        payload = buf.getvalue()
    else:
        lines = [",".join(["trajectory", "t", *data.variables])]
        body = np.column_stack([data.t, data.states])
        lines.extend(f"{i}," + ",".join(f"{v:.17g}" for v in row)
                     for i, row in zip(ids.tolist(), body.tolist(), strict=True))
        payload = ("\n".join(lines) + "\n").encode("utf-8")
    with atomic_write(p, "wb") as fh:
        fh.write(payload)
    return p


def _integral(ids: np.ndarray) -> bool:
    try:
        return all(float(i) == int(i) for i in ids.tolist())
    except ValueError:
        return False
