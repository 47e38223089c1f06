"""Reading numeric data files: the rules shared by state files and trajectory files.

:func:`aipoincare.sampling.load_states` (``[sampling] data``) and
:func:`aipoincare.trajectories.load_trajectories` (``[data] trajectories``) read different
layouts, but the same way: text as UTF-8 (a byte-order mark allowed) with blank lines and
``#`` comments skipped, numpy files never unpickled, arrays of numbers only. Each error is a
:class:`~aipoincare.errors.DataFileError` whose wording the caller chooses (which file, what
it may be), so every message names its own file kind and fix. No torch: this is read before
anything heavy is imported.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .errors import DataFileError

__all__ = ["as_numbers", "load_array", "read_lines"]


def read_lines(path: Path, what: str, kinds: str) -> list[tuple[int, str]]:
    """The lines of a text data file that hold data, with their line numbers.

    Parameters
    ----------
    path : Path
    what : str
        The file's kind in messages, e.g. ``"data file"``.
    kinds : str
        The file types the caller reads, for the fix, e.g. ``"CSV or .npy"``.

    Returns
    -------
    list of (int, str)
        ``(line number counted from 1, line)`` for every line that is neither blank nor a
        ``#`` comment, in order.

    Raises
    ------
    DataFileError
        The file cannot be read (the system's reason) or is not UTF-8 text.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise DataFileError(f"The {what} {str(path)!r} cannot be read: {why}; give a {kinds} "
                            "file.") from None
    return [(i + 1, ln) for i, ln in enumerate(text.splitlines())
            if ln.strip() and not ln.lstrip().startswith("#")]


def load_array(path: Path, what: str, kind: str, save: str) -> Any:
    """``numpy.load`` without pickles: an ndarray (``.npy``) or an NpzFile (``.npz``).

    Parameters
    ----------
    path : Path
    what : str
        The file's kind in messages, e.g. ``"trajectory file"``.
    kind : str
        What it should be, e.g. ``".npy array"``.
    save : str
        The numpy function(s) that write one, for the fix, e.g. ``"numpy.save"``.

    Raises
    ------
    DataFileError
        Unreadable, not a numpy file, or holding Python objects (refused, never loaded).
    """
    try:
        return np.load(path, allow_pickle=False)  # never unpickle: that could run code
    except (OSError, ValueError) as exc:
        raise DataFileError(f"The {what} {str(path)!r} is not a readable {kind} ({exc}); save "
                            f"it with {save}.") from None


def as_numbers(arr: np.ndarray, subject: str) -> np.ndarray:
    """``arr`` as float64, if it holds numbers (integers or floats).

    Parameters
    ----------
    arr : ndarray
    subject : str
        The start of the message, naming the array and its file, e.g.
        ``"The array 't' of the trajectory file 'orbits.npz'"``.

    Raises
    ------
    DataFileError
        Any other dtype (strings, objects, booleans, complex numbers).
    """
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise DataFileError(f"{subject} must hold numbers; got dtype {arr.dtype}.")
    return np.asarray(arr, dtype=np.float64)
