"""Command line: ``bimt train TASK``, ``bimt tasks`` and ``bimt sweep TASK``.

Bad input gives one line ``error: ...`` on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from traincore.cli import ArgumentParser, int_arg, run_cli

from .sweep_cli import add_sweep_parser, sweep_command

__all__ = ["main", "build_parser"]

#: Set to 1 to see the traceback of an unexpected (internal) error.
DEBUG_ENV = "BIMT_DEBUG"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (subcommands ``train``, ``tasks`` and ``sweep``)."""
    parser = ArgumentParser(prog="bimt", description="Brain-inspired modular training "
                     "(Liu, Gan & Tegmark, arXiv:2305.08746).")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=ArgumentParser)
    tr = sub.add_parser("train", help="train a task and write metrics.json, network.png, "
                        "training.gif and checkpoint.pt")
    tr.add_argument("task", help="task name (see 'bimt tasks')")
    tr.add_argument("--steps", type=int_arg(1), default=None,
                    help="training steps (default: the task's)")
    tr.add_argument("--seed", type=int_arg(0, 2**63 - 1), default=0,
                    help="seed of data and weights (0)")
    tr.add_argument("--out", default=None, help="output directory (runs/bimt-TASK)")
    tr.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (auto)")
    tr.add_argument("--fresh", action="store_true",
                    help="start over even if the output directory holds a checkpoint")
    tr.add_argument("--progress", action="store_true", help="show a progress bar")
    tr.add_argument("--html", action="store_true",
                    help="also write network.html, the interactive explorer (needs plotly)")
    sub.add_parser("tasks", help="list the task names")
    add_sweep_parser(sub)
    return parser


def _train(args: argparse.Namespace) -> int:
    import traincore

    from .runs import run_task
    from .tasks import get_task

    if args.html:  # before training: a missing extra must not cost a run
        from .explore import require_plotly

        try:
            require_plotly()
        except ImportError as exc:
            raise ValueError(str(exc)) from None
    task = get_task(args.task)  # bad input is refused before anything is written
    device = traincore.resolve_device(args.device)
    out = traincore.ensure_writable_dir(Path(args.out or f"runs/bimt-{task.name}"))
    steps = args.steps or task.steps
    print(f"bimt: training {task.name} for {steps} steps on {device} -> {out}", flush=True)
    run = run_task(task, out, steps=steps, seed=args.seed, device=device,
                   resume=not args.fresh, progress=True if args.progress else None,
                   html=args.html)
    history, found = run.history, run.analysis.modules
    acc = (f", test accuracy {history.test_accuracy:.4f}"
           if history.test_accuracy is not None else "")
    print(f"test loss {history.test_loss:.3g}{acc}, connection cost "
          f"{history.connection_cost:.3g}, {history.swaps} swaps")
    for m in found[:10]:
        print(f"  {m!r}")
    if len(found) > 10:
        print(f"  ... {len(found) - 10} more modules")
    print(f"paper: {task.paper}")
    print(f"trained in {history.seconds:.1f} s (swaps {history.swap_seconds:.2f} s), "
          f"{run.metrics['total_seconds']:.1f} s with pictures; wrote {out}/metrics.json, "
          f"network.png, training.gif{', network.html' if args.html else ''}, snapshots.pt, "
          "checkpoint.pt")
    return 0


def _tasks(args: argparse.Namespace) -> int:
    from .tasks import TASKS

    for task in TASKS.values():
        print(f"{task.name:18s} {task.description}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``bimt`` console script; returns the exit status."""
    return run_cli(build_parser(), {"train": _train, "tasks": _tasks,
                                         "sweep": sweep_command}, argv,
                   interrupted="interrupted; what was finished is kept (train: the checkpoint "
                               "of the last completed step; sweep: the rows of finished "
                               "chunks); run the same command again to resume",
                   debug_env=DEBUG_ENV)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
