"""How much a discovery draws and needs, decided before the work: points, spectrum, memory.

:func:`plan_points` prints the plan line (basis size, blocks, points, how the counts are
made, whether the float spectrum is computed, the estimated memory) before any heavy work.
``run`` and ``problem`` are :class:`aipoincare.stages.Run` and :class:`~aipoincare.stages.Problem`.
"""

from __future__ import annotations

import math
from typing import Any

from traincore import check_memory, format_bytes, row_chunk_size

from .basis import Basis
from .exact import exact_plan

__all__ = ["INDEPENDENCE_POINTS", "default_points", "wants_spectrum", "plan_points"]

#: Float states drawn for the independence spectrum when the float spectrum is skipped.
INDEPENDENCE_POINTS = 48


def default_points(basis: Basis) -> int:
    """Sample points when none are asked for: 1.2x the basis size + 10 (at least 20)."""
    return max(20, math.ceil(1.2 * basis.size) + 10)


def wants_spectrum(run: Any, problem: Any) -> bool:
    """Whether the float spectrum is computed (see ``DiscoveryConfig.spectrum``)."""
    if problem.solver is None or run.config.spectrum is True:
        return True  # without exact counts the float spectrum decides them
    if run.config.spectrum is False:
        return False
    return problem.basis.size <= run.config.spectrum_max


def plan_points(run: Any, problem: Any, spectrum: bool = True) -> int:
    """The float sample points to draw, estimated in memory first (refused over budget).

    With exact counts the float spectrum is evidence only (the picture, the confidence),
    and more rows than the default add nothing to it: a larger request is capped, with a
    note, instead of spending minutes and gigabytes (``points = 10**8`` once took 262 s
    and 3.7 GB, where the exact count needed 16 points). Without the spectrum, only the
    float independence spectrum needs states: :data:`INDEPENDENCE_POINTS` of them.
    """
    system, bas = run.system, problem.basis
    asked = run.config.points or system.sampling.points or default_points(bas)
    n_points = asked
    exact = problem.solver is not None
    if exact and not spectrum:
        n_points = min(asked, INDEPENDENCE_POINTS)
        run.notes.append(f"The counts are exact (modular arithmetic) and the float spectrum "
                         f"was not asked for (spectrum=True, --spectrum or --plot compute "
                         f"it): {n_points} float sample points for the independence "
                         "spectrum only.")
    elif exact and system.sampling.data is None and asked > default_points(bas):
        n_points = default_points(bas)
        run.notes.append(f"The counts are exact (modular arithmetic); the float spectrum, "
                         f"evidence only, uses {n_points} of the {asked} sample points asked "
                         "for (more rows would not change it).")
    n_vars = len(system.variables)
    # candidates, kept states, their tensor copy and f at them (float64), a few at a time
    states = 8 * n_points * n_vars * 5
    chunk = 8 * min(n_points, row_chunk_size(bas.size * 4)) * bas.size * 4
    check_memory(states + chunk, f"Sampling {n_points} points of {n_vars} variables for "
                 f"{bas.size} basis functions", f"ask for fewer points (about "
                 f"{default_points(bas)} are enough for the float spectrum)")
    blocks = problem.blocks
    peak, counts = states + chunk, "numerical"
    if exact:
        cfg = run.config
        exact_peak, _ = exact_plan(bas, blocks, cfg.margin, cfg.workers)
        peak = max(peak, exact_peak)
        where = f"Dask scheduler {cfg.scheduler}" if cfg.scheduler else \
            f"{cfg.workers} local worker(s)"
        counts = f"exact (modular, per block and prime, {where})"
    spec = "per block" if spectrum and exact else ("yes" if spectrum else "skipped")
    run.announce(f"Plan: {bas.size} basis functions in {len(blocks)} block(s) (largest "
                 f"{max(map(len, blocks))}), {n_points} sample points, counts {counts}, "
                 f"float spectrum {spec}; estimated memory {format_bytes(peak)}.")
    return n_points
