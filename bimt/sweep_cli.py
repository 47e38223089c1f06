"""``bimt sweep TASK --seeds A:B [--lam L1,L2,...] --out DIR [--scheduler ADDRESS]``.

The arguments are checked before anything is written: a bad seed range, lambda list or
task name is one ``error: ...`` line and exit status 2.
"""

from __future__ import annotations

import argparse
import os
import statistics
from pathlib import Path
from typing import Any

from traincore.cli import int_arg

__all__ = ["add_sweep_parser", "sweep_command", "PICTURE_NAME"]

PICTURE_NAME = "phase_diagram.png"


def add_sweep_parser(sub: Any) -> argparse.ArgumentParser:
    """Add the ``sweep`` subcommand to ``bimt``'s subparsers."""
    sw = sub.add_parser("sweep", help="train one network per (seed, lambda) as batched "
                        "ensembles, locally or on Dask; rows into DIR/results.jsonl")
    sw.add_argument("task", help="task name (see 'bimt tasks')")
    sw.add_argument("--seeds", required=True, help="seed range A:B (seeds A to B-1), e.g. 0:64")
    sw.add_argument("--lam", default=None,
                    help="comma-separated base penalty strengths (default: the task's)")
    sw.add_argument("--steps", type=int_arg(1), default=None,
                    help="training steps (default: the task's)")
    sw.add_argument("--out", required=True, help="output directory (results.jsonl, "
                    "results.csv, phase_diagram.png); a rerun skips finished members")
    sw.add_argument("--scheduler", default=None, help="Dask scheduler address "
                    "tcp://HOST:PORT (default: DASK_SCHEDULER_ADDRESS, else this machine)")
    sw.add_argument("--workers", type=int_arg(0), default=None,
                    help="with no scheduler: local workers (default: one per core for "
                    f"{SPLIT} networks or more; 0 runs in this process)")
    sw.add_argument("--in-process", action="store_true",
                    help="local workers as threads of this process: nothing to start, and "
                    "the fastest on one machine where the native gradient is built (it "
                    "releases Python's lock); worker processes isolate crashes")
    sw.add_argument("--chunk", type=int_arg(1), default=None,
                    help="networks per batched chunk, one Dask task each (default: split "
                    "evenly over the workers, at most 64)")
    sw.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                    help="float type of the training (float32)")
    sw.add_argument("--device", default="cpu", help="where each chunk trains (cpu)")
    sw.add_argument("--progress", action="store_true", help="show a progress bar")
    return sw


#: Networks from which the command line shares a sweep out over the cores by default (fewer
#: train in well under the seconds a local cluster's worker processes take to start).
SPLIT = 16


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _summary(rows: list[dict[str, Any]]) -> list[str]:
    lines = [f"{'lambda':>10s} {'networks':>8s} {'median test loss':>17s} "
             f"{'median Q':>9s} {'median modules':>15s}"]
    for lam in sorted({r["lam"] for r in rows}):
        group = [r for r in rows if r["lam"] == lam]
        losses = [r["test_loss"] for r in group if r.get("test_loss") is not None]
        q = [r["modularity"] for r in group if r.get("modularity") is not None]
        mods = [r["n_modules"] for r in group if r.get("n_modules") is not None]
        med = lambda v: f"{statistics.median(v):.3g}" if v else "-"  # noqa: E731
        lines.append(f"{lam:>10.3g} {len(group):>8d} {med(losses):>17s} {med(q):>9s} "
                     f"{med(mods):>15s}")
    return lines


def sweep_command(args: argparse.Namespace) -> int:
    """Run ``bimt sweep`` from parsed arguments; returns the exit status."""
    import traincore

    from .sweep_plot import plot_sweep
    from .sweeps import CSV_NAME, RESULTS_NAME, parse_lams, parse_seeds, sweep, sweep_grid
    from .tasks import get_task

    task = get_task(args.task)  # every check before anything is written
    seeds = parse_seeds(args.seeds)
    lams = parse_lams(args.lam) if args.lam is not None else None
    traincore.resolve_scheduler(args.scheduler)
    members = sweep_grid(task, seeds, lams, args.steps)
    out = traincore.ensure_writable_dir(Path(args.out))
    workers = args.workers if args.workers is not None else \
        (_cores() if len(members) >= SPLIT and _cores() > 1 else 0)
    kind = "threads" if args.in_process else "worker processes"
    where = args.scheduler or os.environ.get(traincore.SCHEDULER_ENV) or \
        (f"a local cluster of {workers} {kind}" if workers else "this process")
    print(f"bimt: sweep of {task.name}: {len(members)} networks ({len(seeds)} seeds x "
          f"{len(members) // len(seeds)} lambdas, {members[0]['steps']} steps) on {where} "
          f"-> {out}", flush=True)
    rows = sweep(task, seeds, lams, args.steps, out=out, scheduler=args.scheduler,
                 workers=workers, processes=not args.in_process, chunk=args.chunk,
                 dtype=args.dtype, device=args.device,
                 progress=True if args.progress else None,
                 on_chunk=lambda done, total: print(f"  {done}/{total} networks done",
                                                    flush=True))
    plot_sweep(rows, out / PICTURE_NAME)
    print("\n".join(_summary(rows)))
    print(f"wrote {out / RESULTS_NAME}, {CSV_NAME}, {PICTURE_NAME}")
    return 0

