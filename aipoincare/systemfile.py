"""System files (TOML): read one into a :class:`~aipoincare.system.System`.

This module only reads the file and checks its layout (sections, their kinds); every entry
is then validated by :class:`~aipoincare.system.System` itself, the one place that does it.
The format is documented in ``docs/system-files.md``.
"""

from __future__ import annotations

import difflib
import os
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from traincore import check_type

from .datasystem import DataSystem, data_system_from_tables
from .errors import SYSTEM_ERRORS, SystemFileError, SystemFileTypeError
from .system import SYMBOLIC, System

__all__ = ["load_system", "system_from_dict"]

_TOP_KEYS = ("name", "variables", "parameters", "definitions", "equations", "constraints",
             "basis", "sampling", "expected", "data")
_TABLES = ("parameters", "definitions", "equations", "constraints", "basis", "sampling",
           "expected")


def load_system(path: str | os.PathLike[str], symbolic: Iterable[str] = (),
                data: bool = True) -> System | DataSystem:
    """Read a system file (TOML, format in the documentation's "System files" page).

    Parameters
    ----------
    path : str or path-like
        The ``.toml`` file. A relative ``[sampling] data`` path is taken relative to it.
    symbolic : iterable of str
        Parameters of the file that stay symbols, as if the file said ``k = "symbolic"``
        (a number given in the file is replaced); what ``aipoincare discover --symbolic``
        passes.
    data : bool
        Read the ``[data]`` section (trajectories) when there is one; False ignores it (what
        ``aipoincare simulate`` does: it needs the equations, not the data).

    Returns
    -------
    System or DataSystem
        A :class:`~aipoincare.datasystem.DataSystem` when the file has a ``[data]`` section
        (and ``data`` is true); a :class:`System` otherwise.

    Raises
    ------
    SystemFileError
        (a ``ValueError``) for a missing/unreadable file, TOML syntax errors (with the line),
        and every invalid entry; the message names the file, section and key, and the fix.
    SystemFileTypeError
        (also a ``TypeError``) for entries of the wrong kind.

    Examples
    --------
    >>> from importlib.resources import files
    >>> s = load_system(files("aipoincare") / "examples" / "lotka_volterra_3.toml")
    >>> s.variable_names, s.expected["independent"]
    (['x', 'y', 'z'], 2)
    """
    check_type(path, "path", (str, os.PathLike), "a string or path to a .toml file",
               where="of the system file", errors=SYSTEM_ERRORS)
    p = Path(path)
    if not p.exists():
        raise SystemFileError(f"The system file {str(p)!r} does not exist; check the path "
                              "(`aipoincare examples` lists the shipped ones).")
    if p.is_dir():
        raise SystemFileError(f"The system file {str(p)!r} is a directory; give a .toml file.")
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise SystemFileError(f"The system file {str(p)!r} cannot be read: "
                              f"{exc.strerror or exc}; check its permissions.") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SystemFileError(f"The system file {str(p)!r} is not UTF-8 text (byte "
                              f"{exc.start}); save it as a UTF-8 TOML file.") from None
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:  # its message ends with "(at line L, column C)"
        raise SystemFileError(f"The system file {str(p)!r} is not valid TOML: {exc}; see "
                              "the format in the documentation page 'System files' "
                              "(docs/system-files.md).") from None
    except ValueError:  # tomllib reads integers with int(): Python's digit limit applies
        raise SystemFileError(f"The system file {str(p)!r} has an integer of more than "
                              f"{sys.get_int_max_str_digits()} digits; no setting needs one, "
                              "write a smaller number.") from None
    return system_from_dict(table, source=str(p), symbolic=symbolic, data_section=data)


def _make_symbolic(parameters: Mapping[str, Any], names: Iterable[str], variables: Any,
                   src: str) -> dict[str, Any]:
    """The [parameters] table with ``names`` declared symbolic (checked one by one)."""
    if isinstance(names, str) or not isinstance(names, Iterable):
        raise SystemFileTypeError(f"The 'symbolic' parameters{src} must be a list of parameter "
                                  f"names such as [\"k1\", \"k2\"]; got "
                                  f"{type(names).__name__} {names!r}.")
    out = dict(parameters)
    declared = ", ".join(parameters) or "none"
    seen: set[str] = set()
    for name in names:
        if not isinstance(name, str) or not name.strip():
            raise SystemFileError(f"The 'symbolic' parameters{src} must be non-empty names; got "
                                  f"{name!r}; write e.g. --symbolic k1,k2.")
        name = name.strip()
        if name in seen:
            raise SystemFileError(f"The symbolic parameter {name!r}{src} is named twice; name "
                                  "each parameter once.")
        seen.add(name)
        if name not in parameters:
            kind = ("a variable" if isinstance(variables, list) and name in variables
                    else "not a parameter")
            raise SystemFileError(f"The symbolic parameter {name!r}{src} is {kind} of the "
                                  f"system (its [parameters]: {declared}); name a parameter "
                                  "declared under [parameters].")
        out[name] = SYMBOLIC
    return out


def system_from_dict(data: Mapping[str, Any], source: str | None = None,
                     symbolic: Iterable[str] = (), data_section: bool = True
                     ) -> System | DataSystem:
    """Build a :class:`System` (a :class:`DataSystem` with ``[data]``) from the parsed TOML
    table (the file layout as a dict); ``symbolic``, and ``data_section`` as ``data``, as in
    :func:`load_system`."""
    src = f" ({source})" if source else ""
    if not isinstance(data, Mapping):
        raise SystemFileTypeError(f"A system must be a table; got {type(data).__name__}.")
    # Unrelated extra keys (a description, a [metadata] table) are tolerated so that files
    # written for other tools still load; a near-miss of a known key is a typo and an error.
    for key in data:
        if key not in _TOP_KEYS and difflib.get_close_matches(key, _TOP_KEYS, n=1, cutoff=0.75):
            raise SystemFileError(
                f"Unknown key or section {key!r}{src}; the allowed ones are "
                f"{', '.join(_TOP_KEYS)}.")
    if "variables" not in data:
        raise SystemFileError(f"The system{src} has no 'variables'; add e.g. "
                              "variables = [\"x\", \"y\"] at the top of the file.")
    variables = data["variables"]
    if not isinstance(variables, list):
        raise SystemFileTypeError(f"'variables'{src} must be a list of names such as "
                                  f"[\"x\", \"y\"]; got {type(variables).__name__} "
                                  f"{variables!r}.")
    with_data = data_section and "data" in data
    if "equations" not in data and not with_data:
        hint = ("; simulating needs the equations" if "data" in data else
                ", or a [data] section with trajectories = \"orbits.csv\"")
        raise SystemFileError(f"The system{src} has no [equations] section; add one line "
                              f"per variable, e.g. x = \"x*(y - z)\"{hint}.")
    tables: dict[str, Mapping[str, Any]] = {}
    for key in _TABLES:
        value = data.get(key, {})
        if key == "constraints" and isinstance(value, list):
            value = {str(i): v for i, v in enumerate(value)}
        if not isinstance(value, Mapping):
            raise SystemFileTypeError(f"[{key}]{src} must be a table (a [{key}] section); got "
                                      f"{type(value).__name__} {value!r}.")
        tables[key] = value
    if not isinstance(symbolic, (list, tuple)) or symbolic:
        tables["parameters"] = _make_symbolic(tables["parameters"], symbolic, variables, src)
    sampling = dict(tables["sampling"])
    data_file = sampling.get("data")
    if isinstance(data_file, str) and data_file.strip() and source:
        path = Path(data_file).expanduser()
        sampling["data"] = str(path if path.is_absolute()
                               else Path(source).resolve().parent / path)
    args = dict(variables=variables, name=data.get("name", Path(source).stem
                                                    if source else "system"),
                constraints=tables["constraints"], parameters=tables["parameters"],
                basis=tables["basis"] or None, sampling=sampling, expected=tables["expected"],
                source=source, definitions=tables["definitions"])
    if with_data:
        return data_system_from_tables(data["data"], source, args,
                                       data["equations"] if "equations" in data else None)
    return System(equations=tables["equations"], **args)
