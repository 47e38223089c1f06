"""``discover``: every conserved quantity of a system in a basis, with counts and certificates.

Pipeline (Sparse Invariant Detector, AI Poincare 3.0, with exact arithmetic on top), one
stage function each in :mod:`aipoincare.stages`:

1. basis (:mod:`aipoincare.basis`), split into blocks of equal scaling weight when the
   system has scaling symmetries (:mod:`aipoincare.scaling`: the conserved subspace is the
   direct sum of the blocks');
2. float samples (:mod:`aipoincare.sampling`);
3. counts: for rational systems and bases, the exact conserved subspace over Q from modular
   arithmetic (:mod:`aipoincare.exact`: one rank per scaling block and prime, on worker
   threads or a Dask cluster, :mod:`aipoincare.workers`); the float spectrum of the
   normalised matrix ``grad b_i . f`` beside it only when asked (``spectrum``; per block,
   at about 1.2x the block's size in points, :mod:`aipoincare.nullspace`); otherwise the
   float null space with its largest gap decides;
4. a sparse basis: the rational RREF null basis, or the float RREF-style basis (or the L1
   rotation of the paper when that is sparser) rationalised where the residual allows;
   rational bases are then reduced further by exact eliminations (:mod:`aipoincare.sparsify`);
5. independent invariants, greedy by simplicity with Jacobian ranks
   (:mod:`aipoincare.independence`);
6. certificates (:mod:`aipoincare.certify`).

With symbolic parameters (:attr:`System.symbolic`), steps 3 to 5 are those of
:mod:`aipoincare.symbolic`: generic counts, invariants polynomial in the parameters in a
canonical primitive form, certificates that are identities in the variables and the
parameters, then the exceptional set and the special values (``Discovery.family``).

Functional independence on a constrained system is decided with ambient gradients by
default (``independence="ambient"``): the fluids' constraint functions are conserved by
the flow everywhere (not only on the constraint set), so they are genuine invariants of the
ODE and count, which reproduces the published counts (8 and 14). With
``independence="tangent"`` only gradients along the constraint set count (7 and 13 there);
both ranks are always reported in ``Discovery.notes``.

References
----------
Liu, Sturm, Bharadwaj, Silva & Tegmark, "Discovering new interpretable conservation laws as
sparse invariants", arXiv:2305.19525.
"""

from __future__ import annotations

import contextlib
from typing import Any

from traincore import check_type, replace_fields, time_limit

from . import stages, symbolic
from .config import DEFAULT_DEGREE, DiscoveryConfig
from .datamode import discover_data
from .datasystem import DataSystem
from .result import Discovery
from .system import System

__all__ = ["DiscoveryConfig", "discover", "DEFAULT_DEGREE"]


def _client(cfg: DiscoveryConfig, client: Any, problem: Any
            ) -> contextlib.AbstractContextManager[Any]:
    """The Dask client of the exact ranks: the caller's, one to ``cfg.scheduler`` (or
    ``DASK_SCHEDULER_ADDRESS``) for this discovery, or None (this machine)."""
    if client is not None or problem.solver is None:
        return contextlib.nullcontext(client)
    from traincore.distributed import cluster, resolve_scheduler

    if resolve_scheduler(cfg.scheduler) is None:
        return contextlib.nullcontext(None)
    return cluster(cfg.scheduler, local=False)


def discover(system: System | DataSystem, basis: Any = None, *,
             config: DiscoveryConfig | None = None, client: Any = None,
             **settings: Any) -> Discovery:
    """Find the conserved subspace of a basis and the independent invariants, certified.

    Parameters
    ----------
    system : System or DataSystem
        A :class:`DataSystem` (a system file with ``[data]``) runs the data mode:
        :func:`aipoincare.discover_from_trajectories`.
    basis : str, BasisSpec or Basis, optional
        Default: the system file's ``[basis]``, else polynomial.
    config : DiscoveryConfig, optional
        All settings at once (default: ``DiscoveryConfig()``).
    client : distributed.Client, optional
        A Dask client (:func:`traincore.distributed.cluster`) that runs the exact ranks per
        (scaling block, prime), e.g. one client for a batch of systems. Without it,
        ``scheduler`` (or ``DASK_SCHEDULER_ADDRESS``) connects for this call, else the
        ranks run here on ``workers`` threads.
    **settings
        Fields of :class:`DiscoveryConfig` that replace the config's: ``degree``,
        ``points``, ``seed``, ``device``, ``tol``, ``exact``, ``certify``,
        ``independence``, ``time_limit``, ``progress``, ``spectrum``, ``workers``,
        ``scheduler``, ... An unknown name is a ``TypeError``.

    Returns
    -------
    Discovery

    Examples
    --------
    >>> import sympy
    >>> x, y, z = sympy.symbols("x y z")
    >>> lv = System(variables=(x, y, z), equations=(x*(y - z), y*(z - x), z*(x - y)))
    >>> d = discover(lv, degree=3, seed=0, device="cpu")
    >>> d.nullity, d.independent, [str(i.expr) for i in d.invariants]
    (4, 2, ['x*y*z', 'x + y + z'])
    """
    if isinstance(system, DataSystem):
        return discover_data(system, basis, config=config, **settings)
    check_type(system, "system", System, "an aipoincare.System",
               fix="read one with aipoincare.load_system or build one with System(...)")
    if config is not None:
        check_type(config, "config", DiscoveryConfig, "a DiscoveryConfig")
    cfg = replace_fields(config or DiscoveryConfig(), settings, "discover()")
    run = stages.Run.start(system, cfg)
    with time_limit(cfg.time_limit, what="the discovery", hint="raise the time limit "
                    "(--time-limit), or lower --degree or --points"), contextlib.closing(run):
        for name in system.shadowed:
            run.notes.append(f"The name {name!r} of this system shadows the built-in constant "
                             f"{name}: in its expressions {name} is the user's, not the "
                             "constant.")
        if system.symbolic:
            return symbolic.discover_family(run, basis)
        with run.stage("basis"):
            problem = stages.setup(run, basis)
        spectrum = stages.wants_spectrum(run, problem)
        with run.stage("sample"):
            states = stages.sample(run, problem, spectrum)
        with _client(cfg, client, problem) as dask_client:  # times "exact" and "numerical"
            counts = stages.count(run, problem, states, spectrum, dask_client)
        states = counts.states or states
        with run.stage("sparsify"):
            conserved = stages.sparsify(run, problem, states, counts)
        with run.stage("independence"):
            chosen = stages.choose(run, problem, states, counts, conserved)
        with run.stage("certify"):
            invariants = stages.certificates(run, problem, conserved, chosen)
        return stages.assemble(run, problem, states, counts, conserved, chosen, invariants)
