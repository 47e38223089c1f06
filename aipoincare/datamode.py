"""Conserved quantities from trajectory data, without equations (the data mode).

:func:`discover_from_trajectories` (and :func:`aipoincare.discover` given a
:class:`~aipoincare.datasystem.DataSystem`) finds every H = theta . b(x) of a basis that is
constant along each trajectory of the data, with no derivatives:

1. the trajectories are split at random (seeded) into a fit half and a held-out half;
2. the noise level of each variable is estimated from the data (:mod:`aipoincare.datastats`);
3. on the fit half, the directions theta whose along-trajectory variation is explained by
   that noise (a loose preselection: a span, not a choice); on the held-out half, within
   that span, the directions whose along-trajectory variation is also small against the
   variation across trajectories (generalised eigenproblems of the centred basis values;
   only the smooth part of the variation counts against the ratio, the noise's own share
   measured on each function by local cubic fits); then every test again, at full
   strength, on the fit half: only what passes all of them on both halves counts
   (``nullity``);
4. a sparse basis (the float RREF, or the paper's L1 rotation), each vector rationalised
   when the rational one passes the same tests (:mod:`aipoincare.sparsify`);
5. functional independence at the data states, as for equations
   (:mod:`aipoincare.independence`);
6. with equations given too, the certificates of the equation mode; otherwise each
   invariant carries its data evidence (``Invariant.evidence``: the held-out along/across
   variance ratios, with and without the noise's share, and the along-trajectory variance
   in units of the noise): evidence, not a
   proof, and ``verified`` stays false.

References
----------
Liu & Tegmark, "Machine learning conservation laws from trajectories", Phys. Rev. Lett. 126,
180604 (2021) (AI Poincare 1.0: conserved quantities from trajectory data).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import sympy
import torch

from traincore import check_type, replace_fields, time_limit

from . import datastats, stages
from .config import DiscoveryConfig
from .datasystem import DataSystem
from .errors import DataFileError
from .independence import numerical_independence, simplicity_order
from .result import Discovery, Invariant
from .sparsify import L1_MAX_DIM, float_rref, l1_rotation, rationalize, reduce_sparse
from .system import System
from .trajectories import Trajectories, load_trajectories

__all__ = ["discover_data", "discover_from_trajectories", "split_trajectories"]

#: What the text report says about invariants found in data without equations.
NOT_A_PROOF = "evidence, not a proof"
#: Relative sizes of the coefficients dropped before rationalising, tried in turn.
_DROPS = (1e-6, 1e-4, 1e-3, 1e-2, 3e-2)
#: Relative pivot sizes of the float RREF, tried in turn (clean data pass at the first).
_RREF_RTOLS = (1e-8, 1e-4, 1e-3, 1e-2, 3e-2)


def split_trajectories(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded random split of ``n`` trajectories into fit and held-out halves."""
    perm = np.random.default_rng([seed, 10]).permutation(n)
    half = (n + 1) // 2
    return np.sort(perm[:half]), np.sort(perm[half:])


def _usable(data: Trajectories, basis: Any, device: torch.device,
            notes: list[str]) -> Trajectories:
    """The samples where every basis function is finite (a log at x <= 0 is not)."""
    x = torch.as_tensor(data.states, dtype=torch.float64, device=device)
    ok = torch.isfinite(datastats.basis_values(basis, x)).all(1).cpu().numpy()
    if ok.all():
        return data
    notes.append(f"{int((~ok).sum())} of {data.n_samples} samples dropped: a basis function "
                 "is not finite there.")
    labels = data.trajectory_index[ok]
    if not ok.any():
        raise DataFileError(f"No sample of {data.source!r} is usable: a basis function is not "
                            "finite at any of them (e.g. log at x <= 0); choose another basis.")
    short = np.bincount(labels, minlength=data.n_trajectories) < 2
    keep = ok & ~short[data.trajectory_index]
    ids = np.array(data.ids, dtype=object)[data.trajectory_index[keep]]
    return Trajectories.from_arrays(ids, data.t[keep], data.states[keep], data.variables,
                                    data.source)


def _vectors(cutv: np.ndarray, scale: np.ndarray, bas: Any, fit: datastats.Moments,
             held: datastats.Moments, cfg: DiscoveryConfig,
             ratio: float = datastats.RATIO) -> list[dict[int, Any]]:
    """A sparse basis of the conserved directions, rational where the rational one passes."""
    theta = cutv / scale[:, None]                          # unscaled basis coordinates
    q, _ = np.linalg.qr(theta / np.linalg.norm(theta, axis=0))

    def first_passing(col: np.ndarray) -> dict[int, Any] | None:
        # noisy data leave noise-sized entries where the exact vector has zeros: drop ever
        # larger ones, and keep the first rational vector that passes the data tests
        for den, drop in ((d, p) for d in sorted({12, cfg.max_denominator}) for p in _DROPS):
            rat = rationalize(col[:, None], den, drop=drop)[0]
            th = np.zeros(bas.size)
            for i, c in rat.items():
                th[i] = float(c)
            if rat and datastats.passes(datastats.evidence(th * scale, fit, held), ratio) and \
                    datastats.no_worse(th * scale, col * scale, fit, held, ratio=ratio):
                return rat
        return None

    def accepted(w: np.ndarray) -> list[dict[int, Any] | None]:
        return [first_passing(w[:, j]) for j in range(w.shape[1])]

    # noise leaves noise-sized entries where the exact basis vectors have zeros: a pivot
    # must stand out from them (rtol), else the RREF divides by noise
    best: tuple[int, np.ndarray, list[dict[int, Any] | None]] | None = None
    for rtol in _RREF_RTOLS:
        try:
            w = float_rref(q, rtol=rtol)
        except np.linalg.LinAlgError:  # fewer pivots than vectors at this rtol
            continue
        if not np.isfinite(w).all() or np.linalg.matrix_rank(w) < q.shape[1]:
            continue
        rats = accepted(w)
        good = sum(r is not None for r in rats)
        if best is None or good > best[0]:
            best = (good, w, rats)
        if good == len(rats):
            break
    _, w, rats = best if best is not None else (0, q, [None] * q.shape[1])
    if any(r is None for r in rats) and q.shape[1] <= L1_MAX_DIM:
        w1 = l1_rotation(q, restarts=cfg.restarts, steps=cfg.sparsify_steps, seed=cfg.seed)
        rats1 = accepted(w1)
        if sum(r is not None for r in rats1) > sum(r is not None for r in rats):
            w, rats = w1, rats1
    vectors: list[dict[int, Any]] = []
    rows: list[np.ndarray] = []
    for j, rat in enumerate(rats):
        if rat is not None:  # rationalised vectors can coincide: keep independent ones only
            row = np.zeros(bas.size)
            for i, c in rat.items():
                row[i] = float(c)
            if np.linalg.matrix_rank(np.array(rows + [row]), tol=1e-9) < len(rows) + 1:
                rat = None
        if rat is None:  # keep the float vector
            wj = w[:, j]
            if not datastats.passes(datastats.evidence(wj * scale, fit, held), ratio):
                # the RREF's pivot tolerance zeroed entries that mattered: its projection
                # onto the span that passed the tests passes them (every direction there does)
                wj = q @ (q.T @ wj)
            wj = wj / np.abs(wj).max()
            wj[np.abs(wj) < 1e-9] = 0.0
            rat = {int(i): sympy.Float(wj[i], 15) for i in np.nonzero(wj)[0]}
        rows.append(np.array([float(rat.get(i, 0)) for i in range(bas.size)]))
        vectors.append(rat)
    if vectors and all(isinstance(c, sympy.Rational) for v in vectors for c in v.values()):
        reduced = reduce_sparse(vectors)  # kept when every reduced vector passes too

        def ok(v: dict[int, Any]) -> bool:
            th = np.zeros(bas.size)
            for i, c in v.items():
                th[i] = float(c)
            return datastats.passes(datastats.evidence(th * scale, fit, held), ratio)
        if len(reduced) == len(vectors) and all(v and ok(v) for v in reduced):
            vectors = reduced
    # the last (most complex) term gets the coefficient 1, as in the RREF
    return [{i: c / v[max(v)] for i, c in v.items()} for v in vectors if v]


def _evidence(vec: dict[int, Any], scale: np.ndarray, size: int, fit: datastats.Moments,
              held: datastats.Moments, ratio: float = datastats.RATIO) -> dict[str, Any]:
    th = np.zeros(size)
    for i, c in vec.items():
        th[i] = float(c)
    ev: dict[str, Any] = datastats.evidence(th * scale, fit, held)
    ev.update(fit_trajectories=fit.trajectories, heldout_trajectories=held.trajectories,
              max_ratio=ratio, max_noise=datastats.NOISE_FACTOR)
    return ev


def _choose(run: stages.Run, system: DataSystem, data: Trajectories, bas: Any,
            conserved: stages.Conserved, evidences: list[dict[str, Any]]) -> stages.Chosen:
    """Functionally independent elements, greedy by simplicity, at 48 data states.

    The Jacobian rank cut follows the data: coefficients fitted to noisy data are off by
    about the square root of their along/across variance ratio, and so are the smallest
    singular values of functions that are dependent in truth.
    """
    if not conserved.vectors:
        return stages.Chosen([], np.zeros(0), {})
    cfg = run.config
    rng = np.random.default_rng([cfg.seed, 11])
    pick = rng.choice(data.n_samples, size=min(48, data.n_samples), replace=False)
    x = torch.as_tensor(data.states[np.sort(pick)], device=run.device)
    worst = max(ev["fit_ratio"] for ev in evidences)
    rtol = float(np.clip(30 * np.sqrt(max(worst, 0.0)), 1e-6, 0.05))
    kept, spectrum = numerical_independence(
        conserved.coefficients, bas, system.frame, x,
        order=simplicity_order(conserved.vectors, bas), rtol=rtol,
        tangent=cfg.independence == "tangent")
    if rtol > 1e-6:
        run.notes.append(f"Functional independence at {len(x)} data states with the rank cut "
                         f"{rtol:.1g} (the coefficients' uncertainty from the noise).")
    return stages.Chosen(kept, spectrum, {})


def _invariants(run: stages.Run, ds: DataSystem, problem: stages.Problem,
                conserved: stages.Conserved, chosen: stages.Chosen,
                evidences: list[dict[str, Any]]) -> list[Invariant]:
    """Certified as in the equation mode when there are equations; data evidence always."""
    if ds.system is not None:
        certified = stages.certificates(run, problem, conserved, chosen)
        return [dataclasses.replace(inv, evidence=evidences[k])
                for k, inv in zip(chosen.kept, certified, strict=True)]
    out = []
    for k in chosen.kept:
        ev, vec = evidences[k], conserved.vectors[k]
        out.append(Invariant(
            expr=conserved.exprs[k], verified=False, method="data", residual=ev["heldout_ratio"],
            detail=(f"{NOT_A_PROOF}: smooth along/across-trajectory variance ratio "
                    f"{ev['heldout_excess']:.1e} on {ev['heldout_trajectories']} held-out "
                    f"trajectories (at most {ev['max_ratio']:g}; {ev['heldout_ratio']:.1e} "
                    f"with the noise), variation {ev['heldout_noise']:.2g} x the noise's"),
            coefficients={problem.basis.labels[i]: c for i, c in vec.items()}, evidence=ev))
    return out


def discover_data(system: DataSystem, basis: Any = None, *,
                  config: DiscoveryConfig | None = None, **settings: Any) -> Discovery:
    """:func:`aipoincare.discover` for a :class:`DataSystem` (see the module docstring).

    The settings are those of :class:`DiscoveryConfig`; ``points`` and ``exact`` do not
    apply (every sample is used; counts are statistical), ``tol`` replaces the largest
    ratio of the smooth along-trajectory variance to the across-trajectory variance
    (:data:`aipoincare.datastats.RATIO`).
    """
    check_type(system, "system", DataSystem, "an aipoincare DataSystem")
    cfg = replace_fields(config or DiscoveryConfig(), settings, "discover()")
    run = stages.Run.start(system.system or system.frame, cfg)
    ratio = datastats.RATIO if cfg.tol is None else cfg.tol
    with time_limit(cfg.time_limit, what="the discovery", hint="raise the time limit "
                    "(--time-limit), or lower --degree"), contextlib.closing(run):
        with run.stage("basis"):
            bas = stages.build_basis(system.frame, basis, cfg.degree)
            problem = stages.Problem(bas, [np.arange(bas.size)], None, "trajectory data")
        with run.stage("sample"):
            data = _usable(system.data, bas, run.device, run.notes)
            fit_idx, held_idx = split_trajectories(data.n_trajectories, cfg.seed)
            sigma, windows = datastats.noise_level(data)
            x = torch.as_tensor(data.subset(fit_idx).states, device=run.device)
            scale = datastats.basis_values(bas, x).std(0).cpu().numpy()
            scale = np.where(scale > 0, scale, 1.0)
        with run.stage("numerical"):
            fit = datastats.moments(bas, data.subset(fit_idx), sigma, scale, run.device)
            held = datastats.moments(bas, data.subset(held_idx), sigma, scale, run.device)
            found = datastats.cut(fit, held, ratio=ratio)
        _notes(run, system, data, sigma, windows, found, ratio)
        with run.stage("sparsify"):
            vectors = _vectors(found.vectors, scale, bas, fit, held, cfg, ratio) \
                if found.vectors.shape[1] else []
            coef = np.zeros((len(vectors), bas.size))
            for k, vec in enumerate(vectors):
                for i, c in vec.items():
                    coef[k, i] = float(c)
            exprs = [sympy.Add(*[c * bas.exprs[i] for i, c in sorted(v.items())])
                     for v in vectors]
            conserved = stages.Conserved(vectors, exprs, coef)
            evidences = [_evidence(v, scale, bas.size, fit, held, ratio) for v in vectors]
        with run.stage("independence"):
            chosen = _choose(run, system, data, bas, conserved, evidences)
            spectrum = chosen.spectrum
        with run.stage("certify"):
            invariants = _invariants(run, system, problem, conserved, chosen, evidences)
        return Discovery(
            name=system.name, variables=system.variable_names, basis_labels=bas.labels,
            points=data.n_samples, nullity=len(vectors), independent=len(invariants),
            invariants=invariants, spectrum=found.spectrum, conserved=exprs, coefficients=coef,
            gap=found.gap, confidence=0.0, exact=False, count_method="data-heldout",
            independence_spectrum=np.asarray(spectrum), seconds=time.perf_counter() - run.started,
            timings=run.timings, notes=run.notes, independence=cfg.independence,
            data={"trajectories": data.n_trajectories, "samples": data.n_samples,
                  "fit_trajectories": len(fit_idx), "heldout_trajectories": len(held_idx),
                  "noise": dict(zip(data.variables, sigma.tolist(), strict=True)),
                  "noise_windows": windows, "max_ratio": ratio,
                  "max_noise": datastats.NOISE_FACTOR, "candidates": found.candidates,
                  "constant_on_data": found.constant, "equations": system.has_equations,
                  "source": data.source})


def _notes(run: stages.Run, system: DataSystem, data: Trajectories, sigma: np.ndarray,
           windows: int, found: datastats.Cut, ratio: float) -> None:
    cfg = run.config
    run.notes.append(
        f"Trajectory data: {data.n_trajectories} trajectories, {data.n_samples} samples; "
        f"fit on {(data.n_trajectories + 1) // 2}, tested on the other "
        f"{data.n_trajectories // 2} (held out). Counts are statistical: an invariant is "
        f"reported when its along-trajectory variation is explained by the noise and its "
        f"smooth part (a drift) is below {ratio:g} of its variation across trajectories, on "
        "both halves.")
    level = ", ".join(f"{v} {s:.2g}" for v, s in zip(data.variables, sigma, strict=True))
    run.notes.append(f"Estimated noise (std, local cubic fits in {windows} windows): {level}."
                     if windows else "Noise not estimated (no trajectory has "
                     f"{datastats.WINDOW} samples): the data are taken as noise-free.")
    if found.candidates > found.vectors.shape[1]:
        run.notes.append(f"{found.candidates - found.vectors.shape[1]} direction(s) preselected "
                         "on the fit trajectories (by the noise test) failed on the held-out "
                         "ones or in the fit half's full tests: not reported.")
    if found.constant:
        run.notes.append(f"{found.constant} combination(s) of the basis are constant on all "
                         "the data (identities of the basis or constraints): not counted.")
    if cfg.points is not None:
        run.notes.append("--points does not apply to trajectory data: every sample is used.")
    if system.has_equations:
        run.notes.append("The equations were given too: each invariant found in the data is "
                         "certified against them as in the equation mode.")
    else:
        run.notes.append(f"No equations: the invariants are {NOT_A_PROOF} (never verified).")


def discover_from_trajectories(trajectories: Trajectories | str | os.PathLike[str] |
                               Mapping[str, Any], variables: Sequence[str] | None = None,
                               basis: Any = None, *, system: System | None = None,
                               constraints: Any = (), name: str = "trajectories",
                               config: DiscoveryConfig | None = None,
                               **settings: Any) -> Discovery:
    """Conserved quantities of trajectory data, without (or with) the equations.

    Parameters
    ----------
    trajectories : Trajectories, path, or mapping
        Loaded data, a CSV/NPY/NPZ file (layout in :mod:`aipoincare.trajectories`), or a
        mapping with ``trajectory`` (n_samples,), ``t`` (n_samples,) and ``states``
        (n_samples, n_vars).
    variables : sequence of str, optional
        The variables in column order (default: the ``system``'s, or the data's).
    basis : str, BasisSpec or Basis, optional
        As in :func:`aipoincare.discover` (default polynomial).
    system : System, optional
        The equations, when known: each invariant is then certified against them.
    constraints : sequence or mapping of expressions, optional
        Constraints of the states (without ``system``).
    name : str
    config : DiscoveryConfig, optional
    **settings
        Fields of :class:`DiscoveryConfig` (``degree``, ``seed``, ``tol`` ...).

    Returns
    -------
    Discovery
        ``count_method == "data-heldout"``; each invariant's ``evidence`` holds the held-out
        along/across variance ratio and the noise multiple.

    Examples
    --------
    >>> from aipoincare.simulate import simulate
    >>> osc = System("x v", ["v", "-x"])
    >>> d = discover_from_trajectories(simulate(osc, 20, 6.0, seed=0), degree=2, device="cpu")
    >>> [str(i.expr) for i in d.invariants], d.invariants[0].verified
    (['v**2 + x**2'], False)
    """
    if system is not None:
        check_type(system, "system", System, "an aipoincare.System with equations")
        variables = system.variable_names if variables is None else variables
    if isinstance(trajectories, Trajectories):
        variables = list(trajectories.variables) if variables is None else variables
        data = trajectories
    elif variables is None:
        raise TypeError("The 'variables' must be given with a file or arrays of trajectories; "
                        "got None; pass variables=[\"x\", \"y\"] in column order.")
    elif isinstance(trajectories, Mapping):
        data = Trajectories.from_arrays(trajectories.get("trajectory"), trajectories.get("t"),
                                        trajectories.get("states"), variables)
    else:
        check_type(trajectories, "trajectories", (str, os.PathLike),
                   "Trajectories, a file path or a mapping of arrays")
        data = load_trajectories(trajectories, variables)
    if list(data.variables) != [str(v) for v in variables]:
        raise ValueError(f"The trajectories have the variables {list(data.variables)} but "
                         f"{list(variables)} were given; pass them in the data's column order.")
    frame = system if system is not None else System(
        list(variables), {str(v): 0 for v in variables}, name=name, constraints=constraints)
    return discover_data(DataSystem(frame, data, system), basis, config=config, **settings)
