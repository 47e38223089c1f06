"""Run a grid of members in chunks, one row per member into a crash-safe result table.

A chunk is one task (on a Dask worker, or in this process without a client): for a sweep of
networks, one batched model of up to ``chunk_size`` members. Rows are written as chunks
finish, so an interrupted run keeps every finished chunk, and a rerun builds its chunks from
the members that have no row yet.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .distributed import _check_callable, _check_int, _progress_bar, _results
from .results import ResultTable, _key_text

if TYPE_CHECKING:  # pragma: no cover
    from distributed import Client

__all__ = ["run_chunks"]

Row = dict[str, Any]


def _check_args(fn: object, table: object, chunk_size: object, group_by: object,
                retries: object) -> int:
    if not isinstance(table, ResultTable):
        raise TypeError(f"The 'table' must be a traincore.ResultTable; got "
                        f"{type(table).__name__}.")
    _check_callable(fn, "chunk function 'fn'")
    _check_int(chunk_size, "chunk_size", minimum=1)
    if isinstance(group_by, str) or not all(isinstance(f, str) for f in group_by):
        raise TypeError(f"The 'group_by' must be a sequence of field names; got {group_by!r}.")
    return _check_int(retries, "retries", minimum=0)


def _check_members(members: object, table: ResultTable,
                   group_by: Sequence[str]) -> list[Row]:
    if isinstance(members, Mapping | str | bytes) or not isinstance(members, Iterable):
        raise TypeError(f"The 'members' must be a list of dicts (one per member, with the "
                        f"fields {list(table.key_fields)}); got {type(members).__name__}.")
    out: list[Row] = []
    seen: dict[tuple[str, ...], int] = {}
    for i, member in enumerate(members):
        if not isinstance(member, Mapping):
            raise TypeError(f"Member {i} must be a dict of settings; got "
                            f"{type(member).__name__}.")
        key = table.key(member)
        if key in seen:
            raise ValueError(f"Members {seen[key]} and {i} have the same key "
                             f"{dict(zip(table.key_fields, key, strict=True))}; every member "
                             f"needs its own values of {list(table.key_fields)}.")
        seen[key] = i
        lacking = [f for f in group_by if f not in member]
        if lacking:
            raise ValueError(f"Member {i} lacks the 'group_by' fields {lacking}.")
        out.append(dict(member))
    return out


def _plan_chunks(members: list[Row], chunk_size: int, group_by: Sequence[str]) -> list[list[Row]]:
    """Members in chunks of at most ``chunk_size``, each within one group, in input order."""
    groups: dict[str, list[Row]] = {}
    for member in members:  # dicts keep the order in which groups first appear
        groups.setdefault(_key_text([member[f] for f in group_by]), []).append(member)
    return [group[i:i + chunk_size] for group in groups.values()
            for i in range(0, len(group), chunk_size)]


def _chunk_rows(chunk: list[Row], rows: object, table: ResultTable) -> list[Row]:
    """The rows a chunk returned, checked one per member, with the key fields filled in."""
    if isinstance(rows, Mapping | str | bytes) or not isinstance(rows, Sequence):
        raise TypeError(f"The chunk function must return a list of row dicts, one per member; "
                        f"got {type(rows).__name__}.")
    if len(rows) != len(chunk):
        raise ValueError(f"The chunk function returned {len(rows)} rows for a chunk of "
                         f"{len(chunk)} members; it must return one row per member, in order.")
    out = []
    for j, (member, row) in enumerate(zip(chunk, rows, strict=True)):
        if not isinstance(row, Mapping):
            raise TypeError(f"Row {j} of a chunk must be a dict; got {type(row).__name__}.")
        for f in table.key_fields:
            if f in row and _key_text(row[f]) != _key_text(member[f]):
                raise ValueError(f"Row {j} of a chunk has {f}={row[f]!r} but its member has "
                                 f"{f}={member[f]!r}; return the rows in the members' order.")
        out.append({**{f: member[f] for f in table.key_fields}, **row})
    return out


def run_chunks(members: Iterable[Mapping[str, Any]],
               fn: Callable[[list[Row]], Sequence[Mapping[str, Any]]],
               table: ResultTable, *, client: Client | None = None, chunk_size: int = 1,
               group_by: Sequence[str] = (), retries: int = 0,
               show_progress: bool | None = None, desc: str = "members",
               progress: Callable[[int, int], None] | None = None) -> list[Row]:
    """Compute one row per member, in chunks, into ``table``; skip members already there.

    Parameters
    ----------
    members : iterable of dict
        The grid: one dict of settings per member, each with the table's key fields (e.g.
        ``{"seed": 3, "lam": 1e-3, "task": "independence"}``); keys must be distinct.
    fn : callable
        ``fn(chunk) -> rows``: given a list of member dicts (a chunk), returns a list of row
        dicts, one per member and in the same order. Key fields missing from a row are
        copied from its member; present ones must agree. Must be picklable for a cluster.
    table : ResultTable
        Where rows go, as each chunk finishes (one write and fsync per chunk).
    client : distributed.Client, optional
        None: chunks run one after another in this process, no Dask needed.
    chunk_size : int
        At most this many members per chunk (a chunk is one task: e.g. one batched model).
    group_by : sequence of str
        Fields whose values all members of one chunk share (e.g. ``("task", "steps")`` when
        only those can be stacked in one model).
    retries : int
        Cluster only: times a chunk whose function raised is run again. A worker that dies
        mid-chunk is handled by the scheduler, which reruns the chunk elsewhere.
    show_progress : bool, optional
        A tqdm bar over members on stderr; None: only when stderr is a terminal.
    desc : str
        The bar's label.
    progress : callable, optional
        ``progress(done, total)`` in members, after each chunk is written.

    Returns
    -------
    list of dict
        The row of every member (computed now or found in the table), in members' order.

    Raises
    ------
    Exception
        The first error raised by ``fn``; the other chunks are cancelled, the rows of the
        finished ones are in the table and a rerun computes only what is missing.
    WorkerLostError
        A chunk killed its workers ``allowed-failures + 1`` times (out of memory?).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> table = ResultTable(pathlib.Path(tempfile.mkdtemp()) / "r.jsonl", ["seed"])
    >>> square = lambda chunk: [{"y": m["seed"] ** 2} for m in chunk]
    >>> run_chunks([{"seed": s} for s in range(3)], square, table, chunk_size=2)
    [{'seed': 0, 'y': 0}, {'seed': 1, 'y': 1}, {'seed': 2, 'y': 4}]
    """
    retries = _check_args(fn, table, chunk_size, group_by, retries)
    wanted = _check_members(members, table, group_by)
    chunks = _plan_chunks([dict(m) for m in table.missing(wanted)], chunk_size, group_by)
    total = len(wanted)
    done = total - sum(len(c) for c in chunks)
    bar = _progress_bar(total, done, show_progress, desc)
    try:
        # closing: an error here cancels the chunks still queued on the cluster at once
        with contextlib.closing(_results(fn, chunks, client, retries)) as finished:
            for i, rows in finished:
                table.append(_chunk_rows(chunks[i], rows, table))
                done += len(chunks[i])
                bar.update(len(chunks[i]))
                if progress is not None:
                    progress(done, total)
    finally:
        bar.close()
    found = {table.key(row): row for row in table.rows()}
    return [found[table.key(member)] for member in wanted]
