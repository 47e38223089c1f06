"""Trajectory data: :class:`Trajectories`, read from CSV, NPY or NPZ files and checked.

The layout (one row per sample) is documented in ``docs/system-files.md``:

* **CSV**: a header row ``trajectory,t,<variables>``, then one row per sample: the
  trajectory's id (any text or number), the time, the state. Lines starting with ``#``
  and blank lines are skipped.
* **NPY**: a 2-D float array, shape ``(n_samples, 2 + n_vars)``, columns in the CSV order
  (trajectory id as a number, time, the variables in the declared order).
* **NPZ**: arrays ``trajectory`` and ``t`` of shape ``(n_samples,)``, and the states either
  as ``states`` of shape ``(n_samples, n_vars)`` or as one array per variable name.

Every file is checked as a whole before use: a ragged row, a non-number, NaN or infinity, an
unknown or missing column, a trajectory with fewer than :data:`MIN_SAMPLES` samples or a
repeated time, and fewer than :data:`MIN_TRAJECTORIES` trajectories are each one
:class:`~aipoincare.errors.DataFileError` naming the row or the column and the fix.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .datafile import as_numbers, load_array, read_lines
from .errors import DataFileError

__all__ = ["Trajectories", "load_trajectories", "MIN_SAMPLES", "MIN_TRAJECTORIES",
           "SUFFIXES"]

#: Fewest samples per trajectory: one sample has no along-trajectory variation.
MIN_SAMPLES = 2
#: Fewest trajectories: half are held out, and each half needs two to compare across.
MIN_TRAJECTORIES = 4
#: The file kinds read by :func:`load_trajectories`.
SUFFIXES = (".csv", ".txt", ".npy", ".npz")


@dataclass(frozen=True)
class Trajectories:
    """Samples of trajectories of one system, grouped and time-ordered.

    Attributes
    ----------
    variables : tuple of str
        The state variables, in order (the columns of ``states``).
    ids : tuple of str
        One label per trajectory, in order of first appearance in the file.
    t : ndarray, shape (n_samples,)
        Times, increasing within each trajectory.
    states : ndarray, shape (n_samples, n_vars)
        The states, trajectory after trajectory.
    offsets : ndarray, shape (n_trajectories + 1,)
        Trajectory ``k`` is the rows ``offsets[k]:offsets[k + 1]``.
    source : str
        Where the data came from (a path, or "arrays").

    Examples
    --------
    >>> t = np.tile(np.linspace(0, 1, 3), 4)
    >>> x = np.column_stack([t, -t])
    >>> d = Trajectories.from_arrays(np.repeat(np.arange(4), 3), t, x, ["x", "y"])
    >>> d.n_trajectories, d.n_samples, d.lengths.tolist()
    (4, 12, [3, 3, 3, 3])
    """

    variables: tuple[str, ...]
    ids: tuple[str, ...]
    t: np.ndarray
    states: np.ndarray
    offsets: np.ndarray
    source: str = "arrays"

    @classmethod
    def from_arrays(cls, trajectory: Any, t: Any, states: Any, variables: Sequence[str],
                    source: str = "arrays") -> Trajectories:
        """Group samples by trajectory id and check them.

        Parameters
        ----------
        trajectory : array-like, shape (n_samples,)
            The trajectory id of each sample (numbers or strings).
        t : array-like, shape (n_samples,)
            The time of each sample.
        states : array-like, shape (n_samples, n_vars)
        variables : sequence of str, length n_vars
        source : str
            For messages.

        Raises
        ------
        DataFileError
            Wrong shapes, non-finite values, too few samples or trajectories, repeated times.
        """
        names = tuple(str(v) for v in variables)
        where = f"the trajectory data {source!r}"
        try:
            x = np.asarray(states, dtype=np.float64)
            tt = np.asarray(t, dtype=np.float64)
        except (TypeError, ValueError):
            raise DataFileError(f"The states and times of {where} must be numbers; convert "
                                "them to float arrays.") from None
        ids = np.asarray(trajectory)
        if ids.dtype.kind == "f" and np.isfinite(ids).all() and (ids == np.round(ids)).all():
            ids = ids.astype(np.int64)  # a .npy column of ids: 3.0 is trajectory "3"
        if x.ndim == 1 and len(names) == 1:
            x = x[:, None]
        if x.ndim != 2 or x.shape[1] != len(names):
            raise DataFileError(f"The states of {where} must have shape (n_samples, "
                                f"{len(names)}) for the variables {', '.join(names)}; got "
                                f"shape {x.shape}.")
        n = x.shape[0]
        if ids.shape != (n,) or tt.shape != (n,):
            raise DataFileError(f"The trajectory ids and times of {where} must each have one "
                                f"entry per sample ({n}); got shapes {ids.shape} and "
                                f"{tt.shape}.")
        _check_finite(tt[:, None], ("t",), where)
        _check_finite(x, names, where)
        labels = np.array([str(i) for i in ids.tolist()], dtype=object) if n else ids
        uniq, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
        order_of_first = np.argsort(first, kind="stable")   # trajectories as they appear
        rank = np.empty(len(uniq), dtype=np.int64)
        rank[order_of_first] = np.arange(len(uniq))
        key = rank[inverse]
        perm = np.lexsort((tt, key))                         # by trajectory, then time
        counts = np.bincount(key, minlength=len(uniq))
        out_ids = tuple(str(uniq[i]) for i in order_of_first)
        if len(out_ids) < MIN_TRAJECTORIES:
            raise DataFileError(f"{where[0].upper() + where[1:]} has {len(out_ids)} "
                                f"trajector{'y' if len(out_ids) == 1 else 'ies'}; at least "
                                f"{MIN_TRAJECTORIES} are needed (half are held out to test "
                                "each invariant); add trajectories.")
        short = np.nonzero(counts < MIN_SAMPLES)[0]
        if len(short):
            k = int(short[0])
            raise DataFileError(f"Trajectory {out_ids[k]!r} of {where} has {counts[k]} "
                                f"sample; each trajectory needs at least {MIN_SAMPLES} "
                                "(conservation is constancy along a trajectory); remove it "
                                "or add samples.")
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        t_sorted, x_sorted = tt[perm], x[perm]
        same = np.nonzero(np.diff(t_sorted) == 0)[0]
        same = same[~np.isin(same + 1, offsets)]             # not across a boundary
        if len(same):
            k = int(np.searchsorted(offsets, same[0], side="right") - 1)
            raise DataFileError(f"Trajectory {out_ids[k]!r} of {where} has two samples at "
                                f"t = {t_sorted[same[0]]:g}; give one state per time.")
        return cls(names, out_ids, np.ascontiguousarray(t_sorted),
                   np.ascontiguousarray(x_sorted), offsets, source)

    @property
    def n_trajectories(self) -> int:
        return len(self.ids)

    @property
    def n_samples(self) -> int:
        return int(self.states.shape[0])

    @property
    def lengths(self) -> np.ndarray:
        """Samples per trajectory, shape (n_trajectories,)."""
        return np.diff(self.offsets)

    @property
    def trajectory_index(self) -> np.ndarray:
        """The trajectory index (0..n_trajectories-1) of each sample, shape (n_samples,)."""
        return np.repeat(np.arange(self.n_trajectories), self.lengths)

    def subset(self, keep: np.ndarray) -> Trajectories:
        """The trajectories with the given indices (in that order)."""
        rows = np.concatenate([np.arange(self.offsets[k], self.offsets[k + 1]) for k in keep])
        lengths = self.lengths[keep]
        return Trajectories(self.variables, tuple(self.ids[k] for k in keep), self.t[rows],
                            self.states[rows], np.concatenate([[0], np.cumsum(lengths)]),
                            self.source)

    def __repr__(self) -> str:
        return (f"Trajectories({self.n_trajectories} trajectories, {self.n_samples} samples "
                f"of {', '.join(self.variables)}; from {self.source})")


def _check_finite(x: np.ndarray, names: Sequence[str], where: str) -> None:
    bad = ~np.isfinite(x)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise DataFileError(f"Sample {r + 1}, column {names[c]!r} of {where} is "
                            f"{x[r, c]}; every time and state must be a finite number; "
                            "remove or repair that sample.")


# ----------------------------------------------------------------------------------------
# Files
# ----------------------------------------------------------------------------------------

def load_trajectories(path: str | os.PathLike[str], variables: Sequence[str]) -> Trajectories:
    """Read trajectory data (CSV, NPY or NPZ; layout in the module docstring).

    Parameters
    ----------
    path : str or path-like
    variables : sequence of str
        The system's variables, in order.

    Returns
    -------
    Trajectories

    Raises
    ------
    DataFileError
        A missing or unreadable file, a wrong layout (the message names the row or column),
        non-finite values, too few samples or trajectories.
    """
    p = Path(path).expanduser()
    names = [str(v) for v in variables]
    shown = str(p)
    if not p.is_file():
        raise DataFileError(f"The trajectory file {shown!r} does not exist; check the path "
                            "([data] trajectories is relative to the system file's folder; "
                            "`aipoincare simulate` writes one).")
    suffix = p.suffix.lower()
    if suffix not in SUFFIXES:
        raise DataFileError(f"The trajectory file {shown!r} must end in "
                            f"{', '.join(SUFFIXES)}; got {suffix or 'no extension'!r}.")
    if suffix == ".npy":
        ids, t, x = _read_npy(p, names)
    elif suffix == ".npz":
        ids, t, x = _read_npz(p, names)
    else:
        ids, t, x = _read_csv(p, names)
    return Trajectories.from_arrays(ids, t, x, names, source=shown)


def _read_csv(p: Path, names: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    shown = str(p)
    numbered = read_lines(p, "trajectory file", "CSV, .npy or .npz")
    expected = ["trajectory", "t", *names]
    if not numbered:
        raise DataFileError(f"The trajectory file {shown!r} is empty; write the header "
                            f"{','.join(expected)} and one row per sample.")
    rows = list(csv.reader([ln for _, ln in numbered]))
    header = [c.strip() for c in rows[0]]
    unknown = [c for c in header if c not in expected]
    if unknown:
        raise DataFileError(f"The trajectory file {shown!r} has the unknown column(s) "
                            f"{', '.join(map(repr, unknown))}; the header must be "
                            f"{','.join(expected)} (the system's variables).")
    missing = [c for c in expected if c not in header]
    if missing or len(set(header)) != len(header):
        what = (f"no column {missing[0]!r}" if missing else "a column named twice")
        raise DataFileError(f"The trajectory file {shown!r} has {what}; the header must be "
                            f"{','.join(expected)}.")
    order = [header.index(c) for c in expected]
    width = len(header)
    ids: list[str] = []
    values = np.empty((len(rows) - 1, len(expected) - 1))
    for r, row in enumerate(rows[1:]):
        line = numbered[r + 1][0]
        if len(row) != width:
            raise DataFileError(f"Line {line} of the trajectory file {shown!r} has {len(row)} "
                                f"fields; the header has {width} ({','.join(header)}); "
                                "repair that row.")
        ids.append(row[order[0]].strip())
        for c, pos in enumerate(order[1:]):
            cell = row[pos].strip()
            try:
                values[r, c] = float(cell)
            except ValueError:
                raise DataFileError(f"Line {line}, column {expected[c + 1]!r} of the "
                                    f"trajectory file {shown!r} is not a number: {cell!r}; "
                                    "write plain decimal numbers.") from None
    if not ids:
        raise DataFileError(f"The trajectory file {shown!r} has a header but no rows; add "
                            "one row per sample.")
    return np.array(ids, dtype=object), values[:, 0], values[:, 1:]


def _load_array(p: Path) -> Any:
    return load_array(p, "trajectory file", "numpy file", "numpy.save or numpy.savez")


def _numeric(arr: np.ndarray, what: str, p: Path) -> np.ndarray:
    return as_numbers(arr, f"{what} of the trajectory file {str(p)!r}")


def _read_npy(p: Path, names: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    arr = _numeric(np.asarray(_load_array(p)), "The array", p)
    width = 2 + len(names)
    if arr.ndim != 2 or arr.shape[1] != width:
        raise DataFileError(f"The trajectory file {str(p)!r} must hold a 2-D array of shape "
                            f"(n_samples, {width}): columns trajectory, t, "
                            f"{', '.join(names)}; got shape {arr.shape}.")
    return arr[:, 0], arr[:, 1], arr[:, 2:]


def _read_npz(p: Path, names: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    with _load_array(p) as z:
        keys = list(z.files)
        allowed = {"trajectory", "t", "states", *names}
        unknown = [k for k in keys if k not in allowed]
        if unknown:
            raise DataFileError(f"The trajectory file {str(p)!r} has the unknown array(s) "
                                f"{', '.join(map(repr, unknown))}; expected trajectory, t, "
                                f"and states or {', '.join(names)}.")
        for k in ("trajectory", "t"):
            if k not in keys:
                raise DataFileError(f"The trajectory file {str(p)!r} has no array {k!r}; "
                                    "save trajectory, t and states with numpy.savez.")
        if "states" in keys:
            x = _numeric(z["states"], "The array 'states'", p)
        else:
            missing = [v for v in names if v not in keys]
            if missing:
                raise DataFileError(f"The trajectory file {str(p)!r} has neither 'states' nor "
                                    f"an array for {missing[0]!r}; add states (n_samples, "
                                    f"{len(names)}) or one array per variable.")
            x = np.column_stack([_numeric(z[v], f"The array {v!r}", p) for v in names])
        return z["trajectory"], _numeric(z["t"], "The array 't'", p), x
