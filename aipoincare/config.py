"""The settings of :func:`aipoincare.discover`: :class:`DiscoveryConfig`."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from traincore import check_bool, check_choice, check_int, check_number, check_type

from .specs import MAX_DEGREE

__all__ = ["DiscoveryConfig", "DEFAULT_DEGREE", "SMALL_SPECTRUM", "JSON_SPECTRUM"]

#: Degree of the polynomial basis when neither the call nor the system file gives one.
DEFAULT_DEGREE = 3
#: With exact counts and ``spectrum=None``, the float spectrum is computed for bases up to
#: this size only (it costs milliseconds there).
SMALL_SPECTRUM = 500
#: What ``aipoincare discover --json`` passes as ``spectrum_max``: the JSON document's
#: ``spectrum`` is then filled for every published system at its published degree (the 3D
#: fluid at degree 3 has 2,924 functions: 1.7 s of CPU per block-wise spectrum), and left
#: empty beyond, where it would cost more than the exact counts (``--spectrum`` forces it).
JSON_SPECTRUM = 5000


@dataclass(frozen=True)
class DiscoveryConfig:
    """Settings of :func:`~aipoincare.discover` (validated on construction).

    Attributes
    ----------
    degree : int or None
        Polynomial degree 1..8; None: the system file's, else 3 (the paper's examples).
    points : int or None
        Float sample points; None: the system file's, else 1.2x the basis size + 10, so
        the matrix has at least 1.2x as many rows as columns (each scaling block needs only
        its own size, but the margin makes the float cut robust).
    seed : int
        Seeds sampling, primes, random points and restarts (same seed, same result).
    device : str
        "auto", "cpu", "cuda" or "cuda:N" for the float matrix.
    tol : float or None
        Fixed relative cut of the singular values instead of the largest gap.
    exact : "auto", True or False
        Exact modular counts when the system and basis are rational ("auto"); True fails
        when they are not; False forces the numerical path.
    certify : bool
        Certify the independent invariants (seconds on the fluids).
    independence : "ambient" or "tangent"
        Gradients used for functional independence on constrained systems (see
        :mod:`aipoincare.discover`).
    margin : int
        Extra rows beyond a block's size in the modular matrices.
    restarts : int
        Random restarts of the L1 rotation (numerical path).
    sparsify_steps : int
        L-BFGS steps per restart.
    max_denominator : int
        Largest denominator when rationalising float coefficients.
    threads : int
        CPU threads of the float matrix and its QR/SVD; 0: torch's setting (all cores, or
        ``OMP_NUM_THREADS``). Fixed, never read from the machine's load, so a run's float
        results and timings do not depend on what else the machine is doing.
    time_limit : float or None
        Seconds the discovery may take; past them it stops with
        :class:`traincore.TimeLimitError` (an ``OSError``: exit status 2 on the command
        line) naming the stage it was in. None: no limit.
    progress : bool or None
        Before the work, one line with the basis size, blocks, points and estimated memory,
        then a progress bar over the stages, on stderr; None: only when stderr is a terminal.
    parameter_degree : int or None
        With symbolic parameters: the degree of the invariants' coefficients in them; None
        raises it from 0 until every generic invariant is found (up to 6).
    special_values : bool
        With symbolic parameters: search the parameter values where the basis holds more
        invariants (one effective parameter; see :mod:`aipoincare.special`).
    spectrum : bool or None
        The float spectrum of the normalised matrix (the spectrum plot, the JSON
        ``spectrum``, the gap). With exact counts it is evidence only, so None (auto)
        computes it only when the counts are not exact or the basis is small (at most
        ``spectrum_max`` functions); True always (per scaling block, at
        about 1.2x each block's size in points); False never when the counts are exact.
    workers : int
        Local worker threads for the exact ranks of the scaling blocks (largest first).
    scheduler : str or None
        Address of a Dask scheduler (``tcp://host:8786``): the exact ranks per (block,
        prime) run on its workers. None: on this machine.
    """

    degree: int | None = None          # None: from the system file, else DEFAULT_DEGREE
    points: int | None = None          # None: 1.2x the basis size + 10
    seed: int = 0                      # one seed for everything random
    device: str = "auto"               # float matrix on the GPU when there is one
    tol: float | None = None           # None: largest gap in the spectrum
    exact: bool | str = "auto"         # exact counts whenever rational
    certify: bool = True               # certificates are the point of the tool
    independence: str = "ambient"      # reproduces the published counts (see discover)
    margin: int = 12                   # rank deficiency by bad luck ~ rows*deg/p per prime
    restarts: int = 4                  # the paper uses a few random restarts
    sparsify_steps: int = 30           # L-BFGS converges in tens of steps on these sizes
    max_denominator: int = 100         # "nice" rationals only; else keep the float
    threads: int = 1                   # blocks are small: extra threads mostly wait (below)
    time_limit: float | None = None    # None: as long as it takes (the CLI's --time-limit)
    progress: bool | None = None       # None: on a terminal only (never in logs or pipes)
    parameter_degree: int | None = None  # None: the lowest degree that finds them all
    special_values: bool = True        # seconds on small families; skipped when unsupported
    spectrum: bool | None = None       # None: only without exact counts, or a small basis
    spectrum_max: int = SMALL_SPECTRUM  # "small" for spectrum=None: milliseconds up to 500
    workers: int = 1                   # threads for the exact ranks of the blocks
    scheduler: str | None = None       # a Dask scheduler for the exact ranks

    # Why one thread: the float blocks have a few hundred columns, where LAPACK's OpenMP
    # threads spend their time waiting for each other as soon as another process shares the
    # cores: on the shared 2-core machine (load 5-6) the 3D fluid's float stage took a median
    # 10.6 s with one thread and 20.7 s with two (single SVDs were seen 5-50x slower). On an
    # idle many-core machine threads=0 may be faster; a GPU run is unaffected.

    def __post_init__(self) -> None:
        if self.degree is not None:
            check_int(self.degree, "degree", ge=1, le=MAX_DEGREE,
                      fix="or None for the system file's")
        if self.points is not None:
            check_int(self.points, "points", ge=1, fix="or None for 1.2x the basis size")
        check_int(self.seed, "seed", ge=0)
        check_type(self.device, "device", (str, torch.device),
                   "'auto', 'cpu', 'cuda' or 'cuda:N'")
        if self.tol is not None:
            check_number(self.tol, "tol", gt=0, lt=1, fix="e.g. 1e-9, or None for the gap")
        check_choice(self.exact, "exact", ("auto", True, False))
        check_bool(self.certify, "certify")
        check_choice(self.independence, "independence", ("ambient", "tangent"))
        for name in ("margin", "restarts", "sparsify_steps", "max_denominator"):
            check_int(getattr(self, name), name, ge=1)
        check_int(self.threads, "threads", ge=0, fix="0 for torch's setting")
        if self.time_limit is not None:
            check_number(self.time_limit, "time_limit", gt=0, fix="in seconds, or None")
        if self.progress is not None:
            check_bool(self.progress, "progress", fix="or None for a terminal only")
        if self.parameter_degree is not None:
            check_int(self.parameter_degree, "parameter_degree", ge=0, le=MAX_DEGREE,
                      fix="or None to search from 0")
        check_bool(self.special_values, "special_values")
        if self.spectrum is not None:
            check_bool(self.spectrum, "spectrum", fix="or None for auto")
        check_int(self.spectrum_max, "spectrum_max", ge=0,
                  fix="the largest basis whose spectrum spectrum=None computes")
        check_int(self.workers, "workers", ge=1, le=256)
        if self.scheduler is not None:
            check_type(self.scheduler, "scheduler", str, "an address such as "
                       "tcp://host:8786", fix="or None to run on this machine")
