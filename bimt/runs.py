"""A complete run of a task: train, analyse once, write the pictures, snapshots and metrics.

``bimt train TASK`` and the example scripts call :func:`run_task`. A run directory holds:

========================  =====================================================================
``metrics.json``          results: ``test_loss`` (and ``test_accuracy``), ``connection_cost``,
                          ``modules``, ``modularity``, ``active_neurons``, ``seconds``, ...
``network.png``           the trained network, neurons coloured by module
``training.gif``          the network through training
``snapshots.pt``          the weights at every snapshot step (see :func:`load_snapshots`)
``network.html``          with ``html=True`` (``bimt train --html``): the interactive explorer
``checkpoint.pt``         to resume the run (``traincore`` checkpoint)
``log.jsonl``             the metric rows logged during training
``.lock``                 while a run writes there: the lock that keeps a second run out
                          (removed at the end; see :func:`traincore.lock_directory`)
========================  =====================================================================

``snapshots.pt`` is plain data, readable with ``torch.load(path, weights_only=True)``::

    {"format": "bimt-snapshots", "version": 1,
     "model": {"class": "BioMLP", "widths": [...], ...},    # the model's config()
     "snapshots": [{"step": 0, "state": {name: tensor}}, ...]}

Each ``state`` is a ``state_dict`` without the fixed coordinate and distance buffers; load
it into a model built from ``"model"`` with ``load_state_dict(state, strict=False)``.
"""

from __future__ import annotations

import io
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

import traincore

from .config import BIMTConfig
from .modularity import Analysis, analyse, prune
from .plotting import animate, draw
from .tasks import Task, build_model, get_task
from .training import TrainingHistory, model_config, train

__all__ = ["RunResult", "run_task", "save_snapshots", "load_snapshots", "SNAPSHOTS_NAME"]

SNAPSHOTS_NAME = "snapshots.pt"
_FORMAT, _VERSION = "bimt-snapshots", 1


@dataclass
class RunResult:
    """What :func:`run_task` did: the trained model, its history, analysis and metrics."""

    out: Path
    model: nn.Module
    history: TrainingHistory
    analysis: Analysis
    metrics: dict[str, Any]


def save_snapshots(path: str | os.PathLike[str], model: nn.Module,
                   snapshots: list[dict[str, Any]]) -> Path:
    """Write the training snapshots atomically (format in the module docstring)."""
    doc = {"format": _FORMAT, "version": _VERSION, "model": model_config(model),
           "snapshots": [{"step": int(s["step"]), "state": s["state"]} for s in snapshots]}
    buffer = io.BytesIO()
    torch.save(doc, buffer)
    with traincore.atomic_write(path, "wb") as fh:
        fh.write(buffer.getbuffer())
    return Path(path)


def load_snapshots(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a run's ``snapshots.pt`` (plain data only: ``weights_only=True``).

    Returns
    -------
    dict
        ``{"format", "version", "model", "snapshots"}`` as in the module docstring.

    Raises
    ------
    ValueError
        When the file is missing, unreadable or not a bimt snapshots file.
    """
    path = Path(path)
    if path.is_dir():
        path = path / SNAPSHOTS_NAME
    if not path.is_file():
        raise ValueError(f"The snapshots file {str(path)!r} does not exist; run 'bimt train' "
                         "with --out pointing there first.")
    try:
        doc = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds for a damaged file
        raise ValueError(f"The snapshots file {str(path)!r} is unreadable "
                         f"({type(exc).__name__}); train the run again.") from None
    if not isinstance(doc, dict) or doc.get("format") != _FORMAT:
        raise ValueError(f"The file {str(path)!r} is not a bimt snapshots file.")
    return doc


def _metrics(task: Task, model: nn.Module, history: TrainingHistory, analysis: Analysis,
             pruned_loss: float | None, seed: int, device: torch.device) -> dict[str, Any]:
    config = model_config(model)
    return {"task": task.name, **history.summary(),
            "modules": [m.to_dict() for m in analysis.modules],
            "modularity": analysis.modularity,
            "active_neurons": analysis.active_neurons,
            "pruned_test_loss": pruned_loss,
            "paper": task.paper,
            **({"widths": config["widths"]} if "widths" in config else {}),
            "model": config, "seed": seed, "device": str(device)}


def run_task(task: Task | str, out: str | os.PathLike[str] | None = None, *,
             steps: int | None = None, seed: int = 0, device: str | torch.device = "auto",
             resume: bool = True, progress: bool | None = None, html: bool = False
             ) -> RunResult:
    """Train ``task`` and write its run directory (see the module docstring).

    Parameters
    ----------
    task : Task or str
        A registered task (``bimt.TASKS``).
    out : path, optional
        Run directory (default ``runs/bimt-TASK``); a checkpoint there is resumed from.
    steps : int, optional
        Default: the task's.
    seed : int
        Seed of the data and the initial weights.
    device : "auto", "cpu", "cuda" or torch.device
    resume : bool
        False starts over even when ``out`` holds a checkpoint.
    progress : bool, optional
        Progress bar (None: only on a terminal).
    html : bool
        Also write ``network.html``, the interactive explorer (:func:`bimt.explore`; needs
        the ``explore`` extra, plotly).

    Returns
    -------
    RunResult
    """
    start = time.perf_counter()
    task = get_task(task) if isinstance(task, str) else task
    dev = traincore.resolve_device(device)
    out = traincore.ensure_writable_dir(Path(out if out is not None else f"runs/bimt-{task.name}"))
    # one run per directory: a second one would interleave the log and overwrite checkpoints
    with traincore.lock_directory(out, fix="wait for it to finish or stop it, or give this "
                                           "run another output directory (--out)"):
        data = task.make(seed)
        model = build_model(task, seed)
        history = train(model, data.x_train, data.y_train, steps=steps or task.steps,
                        seed=seed, x_test=data.x_test, y_test=data.y_test, device=dev,
                        checkpoint_dir=out, log_path=out / "log.jsonl", resume=resume,
                        progress=progress, loss=task.loss, **task.overrides)
        # the task's pruning threshold (BIMTConfig.prune_threshold) defines its modules
        cut = task.overrides.get("prune_threshold", BIMTConfig.prune_threshold)
        analysis = analyse(model, cut)  # the one graph: modules, modularity, active, colours
        pruned = prune(model, cut, data.x_test, data.y_test, loss=task.loss)
        metrics = _metrics(task, model, history, analysis, pruned.loss_after, seed, dev)
        metrics["prune_threshold"] = cut
        model.cpu()
        draw(model, out / "network.png", color_modules=True, analysis=analysis,
             title=f"{task.name}, step {history.steps}")
        animate(model, history.snapshots, out / "training.gif")
        save_snapshots(out / SNAPSHOTS_NAME, model, history.snapshots)
        if html:
            from .explore import explore  # plotly is optional: imported only when asked for

            explore(model, out / "network.html", snapshots=history.snapshots, title=task.name,
                    module_threshold=cut)
        metrics["total_seconds"] = time.perf_counter() - start
        traincore.atomic_write_json(out / "metrics.json", metrics)
    return RunResult(out, model, history, analysis, metrics)
