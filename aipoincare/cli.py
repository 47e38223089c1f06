"""The ``aipoincare`` command line.

::

    aipoincare discover FILE [FILE ...] [--degree N] [--points N] [--seed N]
                             [--device auto|cpu|cuda] [--json PATH] [--plot PATH]
                             [--latex PATH] [--tol X] [--time-limit SECONDS] [--quiet]
                             [--symbolic NAME,NAME] [--parameter-degree N]
                             [--spectrum | --no-spectrum] [--workers N]
                             [--scheduler ADDRESS] [--verbose]

    aipoincare simulate FILE --trajectories N --duration T [--noise S] [--seed N]
                             [--samples N] -o OUT.csv
    aipoincare examples [--copy DIR]

Several FILEs run as one batch (one Dask connection with ``--scheduler``): each report is
printed under a ``== FILE ==`` header, and ``--json``, ``--plot`` and ``--latex`` then name
folders, where one file per system is written (``<file stem>.json``, ``.png``, ``.tex``).

Bad input (a wrong file, option, data file, a basis over the memory budget, an unavailable
device) ends with exactly one line ``error: ...`` on stderr and exit status 2, no traceback.
Output files are written only after the whole computation succeeded, all or nothing and
each atomically (a reader sees the old file or the new one, never half of one). Ctrl-C
ends with status 130, ``SIGTERM`` with 143, ``--time-limit`` with 2, without output files.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Sequence
from importlib.resources import files
from pathlib import Path

from traincore import atomic_write_many
from traincore.cli import EXIT_OK, ArgumentParser, UsageError, int_arg, number_arg, run_cli

__all__ = ["main", "example_paths"]

#: Set to 1 to see the traceback of an unexpected (internal) error.
DEBUG_ENV = "AIPOINCARE_DEBUG"
PLOT_FORMATS = (".png", ".svg", ".pdf")


def example_paths() -> dict[str, Path]:
    """The shipped example systems: stem -> path of the ``.toml`` file."""
    folder = files("aipoincare") / "examples"
    return {Path(str(p)).stem: Path(str(p)) for p in sorted(folder.iterdir(), key=str)
            if str(p).endswith(".toml")}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (subcommands ``discover`` and ``examples``)."""
    parser = ArgumentParser(prog="aipoincare",
                     description="Find every conserved quantity of dx/dt = f(x) in a basis of "
                                 "functions, with exact counts and certificates (Sparse "
                                 "Invariant Detector, AI Poincare 3.0).")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=ArgumentParser)
    sub.required = True
    d = sub.add_parser("discover", help="discover the conserved quantities of a system file",
                       description="Discover the conserved quantities of a system file (TOML; "
                                   "format in the documentation page 'System files' "
                                   "(docs/system-files.md)). FILE may also be the name of a "
                                   "shipped example (see `aipoincare examples`).")
    d.add_argument("files", metavar="FILE", nargs="+",
                   help="system file (.toml) or shipped example name; several run as one "
                        "batch (then --json, --plot and --latex name folders)")
    d.add_argument("--degree", type=int_arg(1, 8),
                   help="polynomial degree of the basis (1..8; default: the file's [basis], "
                        "else 3)")
    d.add_argument("--points", type=int_arg(1),
                   help="sample points (default: from the basis size, at least 1.2x)")
    d.add_argument("--seed", type=int_arg(0), default=0,
                   help="random seed (default 0)")
    d.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    d.add_argument("--tol", type=number_arg(0, 1, example="1e-9"),
                   help="relative singular-value cut instead of the largest gap (numerical "
                        "counts only)")
    d.add_argument("--symbolic", metavar="NAME,NAME", type=_names,
                   help="parameters of the file that stay symbols (as \"symbolic\" in the "
                        "file): invariants for all their values")
    d.add_argument("--parameter-degree", type=int_arg(0, 8), metavar="N",
                   help="with symbolic parameters: degree of the coefficients in them "
                        "(default: the lowest that finds every invariant)")
    d.add_argument("--json", metavar="PATH", help="write the result as JSON")
    d.add_argument("--plot", metavar="PATH",
                   help="write the figures (.png, .svg or .pdf)")
    d.add_argument("--latex", metavar="PATH",
                   help="write the report as a LaTeX document (the invariants as a table)")
    d.add_argument("--verbose", action="store_true",
                   help="print each invariant's certificate in full under its line")
    d.add_argument("--time-limit", type=number_arg(0, example="600"), metavar="SECONDS",
                   help="stop with an error after this many seconds (default: no limit)")
    d.add_argument("--quiet", action="store_true",
                   help="do not print the report (nor the plan and the progress bar)")
    d.add_argument("--spectrum", action=argparse.BooleanOptionalAction, default=None,
                   help="compute the float spectrum (JSON 'spectrum', the gap) beside exact "
                        "counts (default: only for small bases, when the counts are not "
                        "exact, or with --plot)")
    d.add_argument("--workers", type=int_arg(1, 256), default=1, metavar="N",
                   help="local worker threads for the exact ranks of the scaling blocks "
                        "(default 1)")
    d.add_argument("--scheduler", metavar="ADDRESS",
                   help="a Dask scheduler (tcp://host:8786) whose workers run the exact "
                        "ranks per block and prime (default: DASK_SCHEDULER_ADDRESS if set, "
                        "else this machine)")
    _simulate_parser(sub)
    e = sub.add_parser("examples", help="list the shipped example systems",
                       description="List the shipped example systems with their expected "
                                   "counts and paths.")
    e.add_argument("--copy", metavar="DIR", help="copy the example files into DIR")
    return parser


def _simulate_parser(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("simulate", help="write simulated trajectories of a system file",
                       description="Integrate the equations of a system file from initial "
                                   "states drawn from its [sampling] (seeded; constraints "
                                   "respected) and write the trajectories in the data layout "
                                   "(header trajectory,t,<variables>; .csv, .npy or .npz).")
    s.add_argument("file", metavar="FILE", help="system file (.toml) or shipped example name")
    s.add_argument("--trajectories", type=int_arg(4), required=True, metavar="N",
                   help="number of trajectories (at least 4)")
    s.add_argument("--duration", type=number_arg(0, example="10"), required=True, metavar="T",
                   help="time span of each trajectory")
    s.add_argument("--samples", type=int_arg(2), default=200, metavar="N",
                   help="samples per trajectory, equally spaced (default 200)")
    s.add_argument("--noise", type=number_arg(example="0.01"), default=0.0, metavar="S",
                   help="Gaussian noise, std relative to each variable's spread (default 0)")
    s.add_argument("--seed", type=int_arg(0), default=0, help="random seed (default 0)")
    s.add_argument("-o", "--output", required=True, metavar="OUT",
                   help="output file: .csv, .npy or .npz")


def _simulate(args: argparse.Namespace) -> int:
    from .simulate import simulate as run_simulation
    from .simulate import write_trajectories
    from .systemfile import load_system
    from .trajectories import SUFFIXES

    out = _check_output(args.output, "--output", SUFFIXES)
    if args.noise < 0:
        raise UsageError(f"--noise must be 0 or more; got {args.noise:g}; e.g. --noise 0.01.")
    system = load_system(_resolve_file(args.file), data=False)
    data = run_simulation(system, args.trajectories, args.duration, samples=args.samples,
                          noise=args.noise, seed=args.seed)
    path = write_trajectories(data, out)
    print(f"wrote {path} ({data.n_trajectories} trajectories x {args.samples} samples of "
          f"{', '.join(data.variables)}; noise {args.noise:g})")
    return EXIT_OK


def _names(text: str) -> list[str]:
    """``--symbolic k1,k2``: a comma-separated list of names (each checked by load_system)."""
    names = [n.strip() for n in text.split(",")]
    if not text.strip() or any(not n for n in names):
        raise argparse.ArgumentTypeError(f"expected parameter names separated by commas, "
                                         f"e.g. k1,k2; got {text!r}")
    return names


def _check_output(path: str, option: str, suffixes: Sequence[str] | None = None) -> Path:
    p = Path(path).expanduser()
    if p.is_dir():
        raise UsageError(f"{option} {path!r} is a directory; give a file name.")
    if suffixes is not None and p.suffix.lower() not in suffixes:
        raise UsageError(f"{option} {path!r} must end in {', '.join(suffixes)}; got "
                          f"{p.suffix or 'no extension'!r}.")
    parent = p.parent if str(p.parent) else Path(".")
    probe = parent
    while not probe.exists():  # the first existing ancestor must be writable
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {path!r}: the folder {str(probe)!r} is not writable; "
                          "choose another path.")
    return p


def _resolve_file(text: str) -> Path:
    p = Path(text).expanduser()
    if p.exists():
        return p
    examples = example_paths()
    stem = p.stem if p.suffix == ".toml" else p.name
    if str(p.parent) in ("", ".", "examples") and stem in examples:
        return examples[stem]
    return p  # load_system reports the missing file


def _outputs(args: argparse.Namespace, paths: Sequence[Path]) -> list[dict[str, Path]]:
    """Per system file, its output paths: the options' paths with one file, else one file
    per system (named after the system file) in the folders the options name."""
    if args.plot and args.spectrum is False:
        raise UsageError("--plot draws the float spectrum, which --no-spectrum switches off; "
                         "drop one of them.")
    wanted = {"json": (args.json, ".json"), "latex": (args.latex, ".tex"),
              "plot": (args.plot, ".png")}
    if len(paths) == 1:
        out = {}
        for key, (path, _) in wanted.items():
            if path:
                out[key] = _check_output(path, f"--{key}",
                                         PLOT_FORMATS if key == "plot" else None)
        return [out]
    stems = [p.stem for p in paths]
    twice = sorted({s for s in stems if stems.count(s) > 1})
    if twice and any(path for path, _ in wanted.values()):
        raise UsageError(f"Several system files are named {twice[0]!r}: their outputs would "
                         "share a name in the output folder; rename one or run them apart.")
    outs: list[dict[str, Path]] = [{} for _ in paths]
    for key, (path, suffix) in wanted.items():
        if not path:
            continue
        folder = Path(path).expanduser()
        if folder.exists() and not folder.is_dir():
            raise UsageError(f"--{key} {path!r} is a file; with several system files give a "
                             "folder: one file per system is written there.")
        for out, stem in zip(outs, stems, strict=True):
            out[key] = _check_output(str(folder / f"{stem}{suffix}"), f"--{key}")
    return outs


def _render(result, outputs: dict[str, Path]) -> dict[str, tuple[Path, str | bytes]]:
    """The output files of one result, rendered in memory (nothing written yet)."""
    from .report import to_latex
    from .result import to_json

    rendered: dict[str, tuple[Path, str | bytes]] = {}
    if "json" in outputs:
        rendered["json"] = (outputs["json"], to_json(result) + "\n")
    if "latex" in outputs:
        rendered["latex"] = (outputs["latex"], to_latex(result, standalone=True))
    if "plot" in outputs:
        from .plotting import render_discovery
        path = outputs["plot"]
        rendered["plot"] = (path, render_discovery(result, path.suffix.lower().lstrip(".")))
    return rendered


def _discover(args: argparse.Namespace) -> int:
    from .report import to_text
    from .systemfile import load_system

    paths = [_resolve_file(f) for f in args.files]
    outputs = _outputs(args, paths)
    # every file is read and checked before any work: bad input fails fast
    systems = [load_system(p, symbolic=args.symbolic or ()) for p in paths]
    if args.parameter_degree is not None and not any(s.symbolic for s in systems):
        raise UsageError("--parameter-degree applies to symbolic parameters, and this system "
                         "has none; declare some with --symbolic NAME,NAME or drop the option.")
    from traincore.distributed import cluster, resolve_scheduler

    scheduler = resolve_scheduler(args.scheduler)  # a malformed address fails before work
    from .config import JSON_SPECTRUM, SMALL_SPECTRUM
    from .discover import discover

    rendered: dict[Path, str | bytes] = {}
    spectrum = True if args.plot else args.spectrum
    # one cluster connection for the whole batch (none without an address)
    with cluster(scheduler, local=False) as client:
        for k, (system, out) in enumerate(zip(systems, outputs, strict=True)):
            # discover resolves the device first: a bad one fails before any work
            result = discover(system, degree=args.degree, points=args.points, seed=args.seed,
                              device=args.device, tol=args.tol, time_limit=args.time_limit,
                              progress=False if args.quiet else None,
                              parameter_degree=args.parameter_degree, spectrum=spectrum,
                              spectrum_max=JSON_SPECTRUM if args.json else SMALL_SPECTRUM,
                              workers=args.workers, client=client)
            # render in memory first: no output file is touched unless all succeeded
            rendered.update(dict(_render(result, out).values()))
            if not args.quiet:
                if len(systems) > 1:
                    print(f"{chr(10) if k else ''}== {paths[k]} ==")
                sys.stdout.write(to_text(result, expected=system.expected,
                                         verbose=args.verbose))
    # all or nothing: every file is written and flushed before the first is renamed
    for path in atomic_write_many(rendered):
        if not args.quiet:
            print(f"wrote {path}")
    sys.stdout.flush()
    return EXIT_OK


def _examples(args: argparse.Namespace) -> int:
    from .systemfile import load_system

    paths = example_paths()
    rows = []
    for stem, path in paths.items():
        s = load_system(path)
        basis = s.basis.kind + (f" degree {s.basis.degree}" if s.basis and s.basis.degree
                                else "") if s.basis else "polynomial degree 3"
        rows.append((stem, s.n_vars, basis, s.expected.get("nullity", "?"),
                     s.expected.get("independent", "?"), str(path), s.name))
    copied: list[Path] = []
    if args.copy:
        target = Path(args.copy).expanduser()
        if target.exists() and not target.is_dir():
            raise UsageError(f"--copy {args.copy!r} is a file; give a folder.")
        target.mkdir(parents=True, exist_ok=True)
        for stem, path in paths.items():
            dest = target / f"{stem}.toml"
            shutil.copyfile(path, dest)
            copied.append(dest)
    w = max(len(r[0]) for r in rows) if rows else 4
    print(f"{'example':<{w}}  vars  {'basis':<20}  nullity  independent  path")
    for stem, n, basis, nul, ind, path, _ in rows:
        print(f"{stem:<{w}}  {n:>4}  {basis:<20}  {nul!s:>7}  {ind!s:>11}  {path}")
    print()
    for stem, *_, name in rows:
        print(f"{stem}: {name}")
    if copied:
        print()
        for dest in copied:
            print(f"copied {dest}")
    print("\nrun one with: aipoincare discover <path or example name> [--json out.json] "
          "[--plot out.png]")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 2 bad input).

    Exit statuses follow :mod:`traincore.cli`: 1 for an internal error, 130 on Ctrl-C.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name (default ``sys.argv[1:]``).

    Returns
    -------
    int
    """
    # Bad input (usage errors, SystemFileError, DataFileError, NoSamplesError,
    # MemoryBudgetError, DeviceError: all ValueErrors; OSError for unreadable/unwritable
    # files) exits 2.
    return run_cli(build_parser(), {"discover": _discover, "simulate": _simulate,
                                         "examples": _examples}, argv,
                   interrupted="interrupted; no output files were written.",
                   debug_env=DEBUG_ENV)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
