"""Sweeps: many BIMT networks over seeds x lambda, as batched ensembles, locally or on Dask.

:func:`sweep` lays out the grid (one member per ``(seed, lam)``), cuts it into chunks of
members that share a task and step count, trains each chunk as one batched
:class:`~bimt.ensemble.Ensemble` (on this process, a local Dask cluster, or the workers
of a Dask scheduler; see :func:`traincore.cluster`), and appends one row per member to a
:class:`traincore.ResultTable` as each chunk finishes. A rerun with the same output
directory skips the members that have a row; a chunk whose worker died is rerun by the
scheduler and its rows are written once, by this process.

A row holds the member's settings (``task``, ``steps``, ``seed``, ``lam``), its results
(``test_loss``, ``test_accuracy`` for classification, ``train_loss``, ``connection_cost``,
``swaps``) and the analysis of the trained network (``modularity`` Q, ``modules``,
``n_modules``, ``active_neurons``), plus the chunk's wall time.

References
----------
Liu, Gan & Tegmark, "Seeing is believing: brain-inspired modular training for mechanistic
interpretability", arXiv:2305.08746.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import functools
import io
import json
import math
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

import traincore

from .config import BIMTConfig
from .ensemble import Ensemble
from .ensemble_train import fit_ensemble
from .modularity import analyse
from .tasks import Task, build_model, get_task

if TYPE_CHECKING:  # pragma: no cover
    import pandas
    from distributed import Client

__all__ = ["sweep", "train_chunk", "chunk_size", "sweep_grid", "parse_seeds", "parse_lams",
           "load_sweep", "sweep_frame", "write_csv", "KEY_FIELDS", "RESULTS_NAME", "CSV_NAME",
           "MAX_CHUNK"]

#: The fields that identify a member's row in ``results.jsonl``.
KEY_FIELDS = ("task", "steps", "seed", "lam")
RESULTS_NAME = "results.jsonl"
CSV_NAME = "results.csv"
DTYPES = ("float32", "float64")
#: Most networks in one chunk by default: from about 32 members on, a CPU step costs the same
#: per network (arithmetic, not dispatch, bounds it; docs/benchmarks.md), so larger chunks
#: only coarsen what the cluster shares out and what a lost worker takes with it.
MAX_CHUNK = 64
#: Settings that the grid itself sets, so they cannot be keyword overrides of a sweep.
_GRID_FIELDS = ("lam", "steps", "progress", "batch_size")


# -- the grid ---------------------------------------------------------------------------------
def parse_seeds(text: str) -> range:
    """``"A:B"`` -> ``range(A, B)`` (seeds A, A+1, ..., B-1).

    Examples
    --------
    >>> parse_seeds("0:4")
    range(0, 4)
    """
    parts = text.split(":") if isinstance(text, str) else []
    try:
        a, b = (int(p) for p in parts) if len(parts) == 2 else (None, None)
    except ValueError:
        a = b = None
    if a is None or b is None or a < 0 or b <= a:
        raise ValueError(f"The seeds must be a range A:B of integers with 0 <= A < B (e.g. "
                         f"0:64 for seeds 0 to 63); got {text!r}.")
    return range(a, b)


def parse_lams(text: str) -> list[float]:
    """``"1e-4,1e-3"`` -> ``[0.0001, 0.001]``: non-negative finite numbers, at least one.

    Examples
    --------
    >>> parse_lams("1e-4, 1e-3")
    [0.0001, 0.001]
    """
    values = []
    for part in (text.split(",") if isinstance(text, str) else [None]):
        try:
            v = float(part)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            v = math.nan
        if not math.isfinite(v) or v < 0:
            raise ValueError(f"The lambdas must be a comma-separated list of non-negative "
                             f"numbers (e.g. 1e-4,1e-3,1e-2); got {text!r}.")
        values.append(v)
    return values


def _seeds(seeds: Iterable[int] | int) -> list[int]:
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        seeds = [seeds]
    if isinstance(seeds, str) or not isinstance(seeds, Iterable):
        raise TypeError(f"The 'seeds' must be integers (e.g. range(8)); got "
                        f"{type(seeds).__name__}.")
    out = [traincore.check_int(s, "seeds", ge=0, fix="seeds are integers >= 0") for s in seeds]
    if not out or len(set(out)) != len(out):
        raise ValueError(f"The 'seeds' must be distinct integers, at least one; got {out}.")
    return out


def _lams(lam: Iterable[float] | float | None, task: Task) -> list[float]:
    if lam is None:
        return [float(task.overrides.get("lam", BIMTConfig().lam))]
    if isinstance(lam, int | float) and not isinstance(lam, bool):
        lam = [lam]
    if isinstance(lam, str) or not isinstance(lam, Iterable):
        raise TypeError(f"The 'lam' must be a number or a list of numbers; got "
                        f"{type(lam).__name__}.")
    out = [traincore.check_number(v, "lam", ge=0, fix="give penalty strengths >= 0")
           for v in lam]
    if not out or len(set(out)) != len(out):
        raise ValueError(f"The 'lam' values must be distinct numbers, at least one; got {out}.")
    return out


def sweep_grid(task: str | Task, seeds: Iterable[int] | int,
               lam: Iterable[float] | float | None = None, steps: int | None = None
               ) -> list[dict[str, Any]]:
    """The members of a sweep: one dict ``{task, steps, seed, lam}`` per (lam, seed).

    Examples
    --------
    >>> [(m["seed"], m["lam"]) for m in sweep_grid("independence", range(2), [0.1, 0.2], 10)]
    [(0, 0.1), (1, 0.1), (0, 0.2), (1, 0.2)]
    """
    task = get_task(task) if isinstance(task, str) else task
    if not isinstance(task, Task):
        raise TypeError(f"The 'task' must be a task name or a bimt.Task; got "
                        f"{type(task).__name__}.")
    if task.model_kwargs.get("embedding") is not None:
        raise ValueError(f"The task {task.name!r} embeds tokens, which batched ensembles do "
                         "not take yet; sweep another task or train its runs one by one with "
                         "`bimt train`.")
    n = task.steps if steps is None else traincore.check_int(steps, "steps", ge=1)
    return [{"task": task.name, "steps": n, "seed": s, "lam": v}
            for v in _lams(lam, task) for s in _seeds(seeds)]


def _config(task: Task, settings: Mapping[str, Any], steps: int) -> BIMTConfig:
    fields = {f.name for f in dataclasses.fields(BIMTConfig)}
    unknown = sorted(set(settings) - fields)
    if unknown:
        raise TypeError(f"sweep() got unknown setting(s) {unknown}; valid ones are the "
                        "fields of BIMTConfig.")
    fixed = sorted(set(settings) & set(_GRID_FIELDS))
    if fixed:
        raise TypeError(f"The setting(s) {fixed} are set by the sweep itself (use seeds=, "
                        "lam=, steps=); remove them from the keyword arguments.")
    return BIMTConfig(**{**task.overrides, **settings, "steps": steps, "progress": False})


# -- one chunk (runs on a worker) -------------------------------------------------------------
def _row(member: Mapping[str, Any], i: int, ens: Ensemble, result: Any, threshold: float,
         seconds: float, kind: str) -> dict[str, Any]:
    model = ens.member(i).cpu()
    row = {**member, "test_loss": result.test_loss[i]}
    if kind == "classification":
        row["test_accuracy"] = result.test_accuracy[i]
    row.update(train_loss=result.train_loss[i], connection_cost=result.connection_cost[i])
    if all(bool(torch.isfinite(p).all()) for p in model.parameters()):
        analysis = analyse(model, threshold)
        row.update(modularity=analysis.modularity, n_modules=len(analysis.modules),
                   modules=[m.to_dict() for m in analysis.modules],
                   active_neurons=analysis.active_neurons)
    else:  # a diverged member: no graph to read; the others of its chunk are unaffected
        row.update(modularity=None, n_modules=None, modules=None, active_neurons=None)
    row.update(swaps=result.swaps[i], chunk_members=ens.size, chunk_seconds=seconds)
    return row


def train_chunk(chunk: Sequence[Mapping[str, Any]], dtype: str = "float32",
                device: str = "cpu", threads: int = 1,
                settings: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """Train one chunk of members as one batched ensemble; one row per member, in order.

    Parameters
    ----------
    chunk : sequence of dict
        Members from :func:`sweep_grid`, all of one task and step count.
    dtype : "float32" or "float64"
    device : str
        Where the ensemble trains (``"cpu"``, ``"cuda"``, ``"auto"``).
    threads : int
        torch CPU threads while training (0: leave torch's setting).
    settings : mapping, optional
        :class:`BIMTConfig` fields other than the grid's (e.g. ``swap_every``).

    Returns
    -------
    list of dict
        The rows (see the module docstring).
    """
    t0 = time.perf_counter()
    first = chunk[0]
    task = get_task(first["task"])
    if any((m["task"], m["steps"]) != (first["task"], first["steps"]) for m in chunk):
        raise ValueError("The members of one chunk must share task and steps; group them "
                         "(traincore.run_chunks group_by=('task', 'steps')).")
    base = _config(task, settings or {}, int(first["steps"]))
    dev = traincore.resolve_device(device)
    dt = getattr(torch, traincore.check_choice(dtype, "dtype", DTYPES))
    with traincore.cpu_threads(threads, dev):
        data = [task.make(int(m["seed"])) for m in chunk]
        models = [build_model(task, int(m["seed"])).to(dev, dt) for m in chunk]
        ens = Ensemble(models, [dataclasses.replace(base, lam=float(m["lam"])) for m in chunk])
        stack = [torch.stack([getattr(d, f) for d in data])
                 for f in ("x_train", "y_train", "x_test", "y_test")]
        result = fit_ensemble(ens, *stack, kind=task.kind)
        seconds = time.perf_counter() - t0
        return [_row(m, i, ens, result, base.prune_threshold, seconds, task.kind)
                for i, m in enumerate(chunk)]


# -- the table --------------------------------------------------------------------------------
def _cell(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, list | dict) else value


def write_csv(rows: Sequence[Mapping[str, Any]], path: str | os.PathLike[str]) -> Path:
    """The rows as CSV (lists and dicts as JSON text), written atomically."""
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(v) for k, v in row.items()})
    with traincore.atomic_write(path, "w") as fh:
        fh.write(buffer.getvalue())
    return Path(path)


def load_sweep(out: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The rows of a sweep directory's ``results.jsonl`` (or of that file itself)."""
    path = Path(out)
    path = path / RESULTS_NAME if path.is_dir() else path
    if not path.is_file():
        raise ValueError(f"No sweep results at {str(path)!r}; run `bimt sweep TASK --seeds A:B "
                         f"--out DIR` first.")
    return traincore.ResultTable(path, KEY_FIELDS).rows()


def sweep_frame(rows: Sequence[Mapping[str, Any]]) -> pandas.DataFrame:
    """The rows as a pandas DataFrame (needs pandas)."""
    return traincore.rows_to_frame(rows)


# -- the sweep --------------------------------------------------------------------------------
@contextlib.contextmanager
def _client(client: Client | None, scheduler: str | None, workers: int, processes: bool
            ) -> Iterator[Client | None]:
    if client is not None:
        yield client
        return
    local = workers > 0  # checked by _check_run
    with traincore.cluster(scheduler, n_workers=workers or None, local=local,
                           processes=processes) as c:
        yield c


def chunk_size(members: int, client: Client | None, chunk: int | None) -> int:
    """Networks per chunk: ``chunk``, or by default the members split evenly over the
    cluster's worker threads (all in one chunk without a cluster), at most
    :data:`MAX_CHUNK`.

    Examples
    --------
    >>> chunk_size(64, None, None), chunk_size(64, None, 16), chunk_size(1000, None, None)
    (64, 16, 64)
    """
    if chunk is not None:
        return traincore.check_int(chunk, "chunk", ge=1, fix="members per batched chunk")
    slots = 1 if client is None else max(1, sum(
        w.get("nthreads", 1) for w in client.scheduler_info()["workers"].values()))
    return max(1, min(MAX_CHUNK, -(-members // slots)))


@contextlib.contextmanager
def _table(out: str | os.PathLike[str] | None) -> Iterator[tuple[traincore.ResultTable,
                                                                  Path | None]]:
    if out is None:  # no directory: a table that lives as long as the call
        with tempfile.TemporaryDirectory(prefix="bimt-sweep-") as tmp:
            yield traincore.ResultTable(Path(tmp) / RESULTS_NAME, KEY_FIELDS), None
        return
    folder = traincore.ensure_writable_dir(Path(out))
    with traincore.lock_directory(folder, what="sweep directory",
                                  fix="wait for that sweep to finish or stop it, or give "
                                      "this one another output directory (--out)"):
        yield traincore.ResultTable(folder / RESULTS_NAME, KEY_FIELDS), folder


def _written(table: traincore.ResultTable, folder: Path | None,
             on_chunk: Callable[[int, int], None] | None, done: int, total: int) -> None:
    """After a chunk: the CSV rewritten from the table (with a folder), then ``on_chunk``."""
    if folder is not None:
        write_csv(table.rows(), folder / CSV_NAME)
    if on_chunk is not None:
        on_chunk(done, total)


def _check_run(members: list[dict[str, Any]], settings: Mapping[str, Any], chunk: int | None,
               dtype: str, processes: bool, workers: int) -> bool:
    """Refuse bad settings before anything runs; True when the chunks will run on threads
    of this process (which share torch's thread setting: it is set once for the sweep)."""
    _config(get_task(members[0]["task"]), settings, members[0]["steps"])
    if chunk is not None:
        traincore.check_int(chunk, "chunk", ge=1, fix="members per batched chunk")
    traincore.check_choice(dtype, "dtype", DTYPES)
    traincore.check_bool(processes, "processes")
    traincore.check_int(workers, "workers", ge=0, fix="0 runs in this process")
    return not processes and workers > 0


def sweep(task: str | Task, seeds: Iterable[int] | int = range(8),
          lam: Iterable[float] | float | None = None, steps: int | None = None, *,
          out: str | os.PathLike[str] | None = None, scheduler: str | None = None,
          workers: int = 0, processes: bool = True, client: Client | None = None,
          chunk: int | None = None, dtype: str = "float32", device: str = "cpu",
          threads: int = 1,
          progress: bool | None = None,
          on_chunk: Callable[[int, int], None] | None = None,
          **settings: Any) -> list[dict[str, Any]]:
    """Train one network per (seed, lam) as batched ensembles; one row per network.

    Parameters
    ----------
    task : str or Task
        A registered task without token embeddings (``bimt.TASKS``).
    seeds : iterable of int
        Seeds of data and initial weights (each as in ``bimt train --seed``).
    lam : float or list of float, optional
        Base penalty strengths (default: the task's).
    steps : int, optional
        Training steps (default: the task's).
    out : path, optional
        Directory for ``results.jsonl`` (rows appended as chunks finish; a rerun skips
        members already there) and ``results.csv``; locked while the sweep runs.
        None: nothing is written.
    scheduler : str, optional
        A Dask scheduler address (``tcp://host:8786``); default ``DASK_SCHEDULER_ADDRESS``.
    workers : int
        With no address: 0 runs the chunks in this process, one after another; ``N`` on a
        local cluster of ``N`` workers.
    processes : bool
        Local cluster only: its workers are processes (True: each starts in a few seconds,
        then the cores work fully in parallel) or threads of this process (False: nothing
        to start, but Python's interpreter lock keeps two threads from quite doubling the
        speed; torch then uses ``threads`` threads in all, set for the whole sweep).
    client : distributed.Client, optional
        An open Dask client to use instead (then ``scheduler`` and ``workers`` are unused).
    chunk : int, optional
        Members per chunk (one batched model, one Dask task); default: the members split
        evenly over the cluster's workers, at most :data:`MAX_CHUNK` (see
        :func:`chunk_size`).
    dtype : "float32" or "float64"
    device : str
        Where each chunk trains (``"cpu"``; ``"cuda"`` on GPU workers).
    threads : int
        torch CPU threads per chunk (0: torch's setting).
    progress : bool, optional
        A bar over members (None: only on a terminal).
    on_chunk : callable, optional
        ``on_chunk(done, total)`` in members after each chunk's rows are written.
    **settings
        Other :class:`BIMTConfig` fields, the same for every member (``swap_every=100``).

    Returns
    -------
    list of dict
        One row per member (see :mod:`bimt.sweeps`), in grid order (lam-major).

    Examples
    --------
    >>> rows = sweep("independence", seeds=range(2), lam=[1e-3], steps=20)
    >>> [(r["seed"], r["lam"]) for r in rows], sorted(rows[0])[:3]
    ([(0, 0.001), (1, 0.001)], ['active_neurons', 'chunk_members', 'chunk_seconds'])
    """
    members = sweep_grid(task, seeds, lam, steps)
    shared = _check_run(members, settings, chunk, dtype, processes, workers) and \
        client is None and traincore.resolve_scheduler(scheduler) is None
    fn = functools.partial(train_chunk, dtype=dtype, device=device,
                           threads=0 if shared else threads, settings=dict(settings))
    with _table(out) as (table, folder), _client(client, scheduler, workers, processes) as c, \
            traincore.cpu_threads(threads if shared else 0):
        rows = traincore.run_chunks(members, fn, table, client=c,
                                    chunk_size=chunk_size(len(members), c, chunk),
                                    group_by=("task", "steps"), show_progress=progress,
                                    progress=functools.partial(_written, table, folder,
                                                               on_chunk))
        _written(table, folder, None, 0, 0)
    return rows
