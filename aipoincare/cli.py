"""The ``aipoincare`` command line.

::

    aipoincare discover FILE [--degree N] [--points N] [--seed N] [--device auto|cpu|cuda]
                             [--json PATH] [--plot PATH] [--latex PATH] [--tol X]
                             [--time-limit SECONDS] [--quiet] [--symbolic NAME,NAME]
                             [--parameter-degree N] [--verbose]
    aipoincare examples [--copy DIR]

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
                                   "format in the documentation page 'System files', "
                                   "docs/system-files.md). FILE may also be the name of a "
                                   "shipped example (see `aipoincare examples`).")
    d.add_argument("file", metavar="FILE", help="system file (.toml) or shipped example name")
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
    e = sub.add_parser("examples", help="list the shipped example systems",
                       description="List the shipped example systems with their expected "
                                   "counts and paths.")
    e.add_argument("--copy", metavar="DIR", help="copy the example files into DIR")
    return parser


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


def _discover(args: argparse.Namespace) -> int:
    from .report import to_latex, to_text
    from .result import to_json
    from .systemfile import load_system

    outputs = {}
    if args.json:
        outputs["json"] = _check_output(args.json, "--json")
    if args.latex:
        outputs["latex"] = _check_output(args.latex, "--latex")
    if args.plot:
        outputs["plot"] = _check_output(args.plot, "--plot", PLOT_FORMATS)
    system = load_system(_resolve_file(args.file), symbolic=args.symbolic or ())
    if args.parameter_degree is not None and not system.symbolic:
        raise UsageError("--parameter-degree applies to symbolic parameters, and this system "
                         "has none; declare some with --symbolic NAME,NAME or drop the option.")
    from .discover import discover

    # discover resolves the device first: a bad or unavailable one fails before any work
    result = discover(system, degree=args.degree, points=args.points, seed=args.seed,
                      device=args.device, tol=args.tol, time_limit=args.time_limit,
                      progress=False if args.quiet else None,
                      parameter_degree=args.parameter_degree)
    # Render everything in memory first: no output file is touched unless all succeeded.
    rendered: dict[str, tuple[Path, str | bytes]] = {}
    if "json" in outputs:
        rendered["json"] = (outputs["json"], to_json(result) + "\n")
    if "latex" in outputs:
        rendered["latex"] = (outputs["latex"], to_latex(result, standalone=True))
    if "plot" in outputs:
        from .plotting import render_discovery
        path = outputs["plot"]
        rendered["plot"] = (path, render_discovery(result, path.suffix.lower().lstrip(".")))
    if not args.quiet:
        sys.stdout.write(to_text(result, expected=system.expected, verbose=args.verbose))
    # all or nothing: every file is written and flushed before the first is renamed
    for path in atomic_write_many(dict(rendered.values())):
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
    return run_cli(build_parser(), {"discover": _discover, "examples": _examples}, argv,
                   interrupted="interrupted; no output files were written.",
                   debug_env=DEBUG_ENV)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
