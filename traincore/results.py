"""An append-only JSONL table of results that survives crashes and reruns.

One JSON object per line, one line per result row; each row is identified by the values of
the table's key fields (``("seed", "lam")`` for a sweep). Rows are appended with one write,
a flush and an fsync per batch, so a crash loses at most the batch being written; a torn
last line (the writer killed mid-line) is cut off when the table is opened, and rows whose
key is already present are never written twice (nor returned twice, should a file hold
duplicates made by hand).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from .io import write_error

try:  # POSIX: an advisory lock keeps two writers from interleaving their lines
    import fcntl
except ImportError:  # pragma: no cover - Windows: no lock, single writer assumed
    fcntl = None  # type: ignore[assignment]

if TYPE_CHECKING:  # pragma: no cover
    import pandas

__all__ = ["ResultTable", "rows_to_frame"]

Key = tuple[str, ...]


def _clean(value: Any) -> Any:
    """``value`` with non-finite floats as None (JSON has no NaN) and tuples as lists."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0 and hasattr(value, "dtype"):
        return _clean(value.item())  # numpy or torch scalar
    if hasattr(value, "tolist") and hasattr(value, "dtype"):
        return _clean(value.tolist())  # numpy array or torch tensor
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def _unsupported(value: Any) -> Any:
    raise TypeError(f"A result row must hold numbers, strings, lists, dicts, booleans or None; "
                    f"got {type(value).__name__} {value!r:.60}; convert it in the task "
                    "before returning the row.")


def _dumps(value: Any) -> str:
    return json.dumps(_clean(value), allow_nan=False, default=_unsupported)


def _key_text(value: Any) -> str:
    # JSON text as the identity: 3 and numpy.int64(3) match, 1 and 1.0 do not
    return json.dumps(_clean(value), sort_keys=True, allow_nan=False, default=str)


class ResultTable:
    """Rows of results in a JSONL file, keyed by ``key_fields``; appends are crash-safe.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.jsonl`` file; created (with its folder) on the first append.
    key_fields : sequence of str
        The fields that identify a row, e.g. ``("seed", "lam")``. Every row must have them;
        values are compared as JSON text, so ``1`` and ``1.0`` are different keys.

    Notes
    -----
    Format: UTF-8 text, one JSON object per line, each ending in ``\\n``; non-finite floats
    are stored as ``null``. Opening the table checks every line: a torn last line (no
    newline and not valid JSON) is removed; a damaged line elsewhere is an error naming it.
    When a key appears twice, the first row wins.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> table = ResultTable(pathlib.Path(tempfile.mkdtemp()) / "r.jsonl", key_fields=["seed"])
    >>> table.append([{"seed": 0, "loss": 0.5}, {"seed": 1, "loss": float("nan")}])
    2
    >>> table.append([{"seed": 0, "loss": 0.1}])   # already there: not written again
    0
    >>> table.rows()
    [{'seed': 0, 'loss': 0.5}, {'seed': 1, 'loss': None}]
    >>> {"seed": 1} in table, len(table)
    (True, 2)
    """

    def __init__(self, path: str | os.PathLike[str], key_fields: Sequence[str]) -> None:
        if isinstance(path, bytes) or not isinstance(path, str | os.PathLike):
            raise TypeError(f"The result table 'path' must be a str or path; got "
                            f"{type(path).__name__}.")
        if isinstance(key_fields, str) or not isinstance(key_fields, Sequence) or \
                not key_fields or not all(isinstance(f, str) and f for f in key_fields):
            raise TypeError(f"The 'key_fields' must be a non-empty sequence of field names, "
                            f"e.g. ('seed', 'lam'); got {key_fields!r}.")
        if len(set(key_fields)) != len(key_fields):
            raise ValueError(f"The 'key_fields' must be distinct; got {list(key_fields)}.")
        self.path = Path(path)
        self.key_fields: tuple[str, ...] = tuple(key_fields)
        if self.path.is_dir():
            raise ValueError(f"The result table {str(self.path)!r} is a folder; give a file "
                             "path such as OUT/results.jsonl.")
        self._keys: set[Key] = set()
        self._size = -1  # bytes of the file already scanned into _keys; -1: not yet
        if self.path.exists():
            with self._locked() as fh:
                self._rescan(fh)

    def __repr__(self) -> str:
        return f"ResultTable({str(self.path)!r}, key_fields={self.key_fields!r}): " \
               f"{len(self)} rows"

    # -- keys ---------------------------------------------------------------------------
    def key(self, row: Mapping[str, Any]) -> Key:
        """The identity of ``row``: the JSON text of each key field, in order."""
        if not isinstance(row, Mapping):
            raise TypeError(f"A result row must be a dict; got {type(row).__name__}.")
        missing = [f for f in self.key_fields if f not in row]
        if missing:
            raise ValueError(f"A result row must have the key fields {list(self.key_fields)}; "
                             f"{missing} missing from {dict(row)!r:.120}.")
        return tuple(_key_text(row[f]) for f in self.key_fields)

    def __contains__(self, row: object) -> bool:
        if not isinstance(row, Mapping):
            return False
        self._refresh()
        return self.key(row) in self._keys

    def __len__(self) -> int:
        self._refresh()
        return len(self._keys)

    def missing(self, members: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
        """The members (dicts with the key fields) that have no row yet, in their order."""
        self._refresh()
        return [m for m in members if self.key(m) not in self._keys]

    # -- reading ------------------------------------------------------------------------
    def rows(self) -> list[dict[str, Any]]:
        """Every row, in the order written, the first row of each key only."""
        if not self.path.exists():
            return []
        seen: set[Key] = set()
        out = []
        with open(self.path, encoding="utf-8") as fh:
            for number, row in self._parse(fh):
                key = self._row_key(row, number)
                if key not in seen:
                    seen.add(key)
                    out.append(row)
        return out

    def to_frame(self) -> pandas.DataFrame:
        """The rows as a pandas DataFrame (pandas must be installed)."""
        return rows_to_frame(self.rows())

    # -- writing ------------------------------------------------------------------------
    def append(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Append the rows whose key is not in the table yet; return how many were written.

        All lines go out in one write followed by a flush and an fsync: after a crash the
        file holds the rows appended before, and at worst a torn last line that the next
        open removes.
        """
        rows = list(rows)
        lines, batch_keys = [], set()
        with self._locked() as fh:
            self._rescan(fh)  # another writer may have appended since we last looked
            for row in rows:
                key = self.key(row)
                if key in self._keys or key in batch_keys:
                    continue
                batch_keys.add(key)
                lines.append(_dumps(dict(row)) + "\n")
            if lines:
                # unbuffered on the descriptor (opened for appending): after a failed write
                # there is no buffer left that a later flush would try to write again
                fd = fh.fileno()
                view = memoryview("".join(lines).encode("utf-8"))
                try:
                    while view:
                        view = view[os.write(fd, view):]
                    os.fsync(fd)
                except OSError as exc:  # disk full, quota, size limit: no partial batch stays
                    with contextlib.suppress(OSError):
                        os.ftruncate(fd, self._size)
                    raise write_error(exc, self.path) from None
                self._keys |= batch_keys
                self._size = os.fstat(fd).st_size
        return len(lines)

    # -- internals ----------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[IO[bytes]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a+b") as fh:
            if fcntl is not None:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield fh
            finally:
                if fcntl is not None:
                    fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def _refresh(self) -> None:
        """Pick up rows another writer appended (cheap: compares the file's size)."""
        size = self.path.stat().st_size if self.path.exists() else 0
        if size != self._size and self.path.exists():
            with self._locked() as fh:
                self._rescan(fh)
        elif not self.path.exists():
            self._keys, self._size = set(), 0

    def _rescan(self, fh: IO[bytes]) -> None:
        """Under the lock: repair a torn tail, then read every key."""
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        if size == self._size:
            return
        fh.seek(0)
        data = fh.read()
        if data and not data.endswith(b"\n"):
            cut = data.rfind(b"\n") + 1
            tail = data[cut:]
            try:
                complete = isinstance(json.loads(tail), dict)
            except ValueError:
                complete = False
            if complete:  # only the newline was lost: keep the row
                fh.write(b"\n")
                data += b"\n"
            else:  # the writer died mid-line: that row was never recorded
                fh.truncate(cut)
                data = data[:cut]
            fh.flush()
            os.fsync(fh.fileno())
        self._keys = {self._row_key(row, n)
                      for n, row in self._parse(data.decode("utf-8").splitlines(keepends=True))}
        self._size = len(data)

    def _parse(self, lines: Iterable[str]) -> Iterator[tuple[int, dict[str, Any]]]:
        lines = list(lines)
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:
                if number == len(lines) and not line.endswith("\n"):
                    continue  # a torn tail being written right now: not a row yet
                raise ValueError(f"Line {number} of the result table {str(self.path)!r} is "
                                 f"not JSON ({line[:60]!r}); remove or fix that line.") from None
            if not isinstance(row, dict):
                raise ValueError(f"Line {number} of the result table {str(self.path)!r} is "
                                 f"not a JSON object; remove or fix that line.")
            yield number, row

    def _row_key(self, row: dict[str, Any], number: int) -> Key:
        try:
            return self.key(row)
        except ValueError:
            raise ValueError(f"Line {number} of the result table {str(self.path)!r} lacks "
                             f"the key fields {list(self.key_fields)}: it belongs to another "
                             "table; choose another output path.") from None


def rows_to_frame(rows: Sequence[Mapping[str, Any]]) -> pandas.DataFrame:
    """Rows (dicts) as a pandas DataFrame, one row each; needs pandas.

    Raises
    ------
    ModuleNotFoundError
        pandas is not installed (the rows stay available as a list of dicts).
    """
    try:
        import pandas
    except ImportError:
        raise ModuleNotFoundError("A DataFrame needs pandas, which is not installed: "
                                  "pip install pandas (the rows are also a list of dicts).") \
            from None
    return pandas.DataFrame.from_records([dict(r) for r in rows])
