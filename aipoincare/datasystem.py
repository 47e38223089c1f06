"""A system given by trajectory data: :class:`DataSystem` (with or without equations).

A system file with a ``[data]`` section (``trajectories = "orbits.csv"``) and no
``[equations]`` reads into a :class:`DataSystem`; with ``[equations]`` too, the equations
are kept and every invariant found in the data is then certified against them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sympy

from .errors import SystemFileError, SystemFileTypeError
from .specs import BasisSpec, SamplingSpec
from .system import System
from .trajectories import Trajectories, load_trajectories

__all__ = ["DataSystem", "data_system_from_tables", "DATA_KEYS"]

#: The keys of a ``[data]`` section.
DATA_KEYS = ("trajectories",)


@dataclass(frozen=True)
class DataSystem:
    """Trajectories of a system, with its variables, basis and (optionally) equations.

    Attributes
    ----------
    frame : System
        The variables, parameters, definitions, constraints, ``[basis]``, ``[sampling]`` and
        ``[expected]``, validated by :class:`System`. Without equations its ``equations``
        are placeholders (zeros): never certify against ``frame``; use :attr:`system`.
    data : Trajectories
    system : System or None
        The system with its equations when they were given (then invariants are certified).
    """

    frame: System
    data: Trajectories
    system: System | None = None

    @property
    def has_equations(self) -> bool:
        return self.system is not None

    @property
    def name(self) -> str:
        return self.frame.name

    @property
    def variables(self) -> tuple[sympy.Symbol, ...]:
        return self.frame.variables

    @property
    def variable_names(self) -> list[str]:
        return self.frame.variable_names

    @property
    def n_vars(self) -> int:
        return self.frame.n_vars

    @property
    def constraints(self) -> tuple[sympy.Expr, ...]:
        return self.frame.constraints

    @property
    def basis(self) -> BasisSpec | None:
        return self.frame.basis

    @property
    def sampling(self) -> SamplingSpec:
        return self.frame.sampling

    @property
    def expected(self) -> Mapping[str, Any]:
        return self.frame.expected

    @property
    def source(self) -> str | None:
        return self.frame.source

    @property
    def symbolic(self) -> tuple[sympy.Symbol, ...]:
        return self.frame.symbolic

    def __repr__(self) -> str:
        eqs = "with equations" if self.has_equations else "no equations"
        return (f"DataSystem({self.name!r}: {', '.join(self.variable_names)}; "
                f"{self.data.n_trajectories} trajectories, {self.data.n_samples} samples; "
                f"{eqs})")


def data_system_from_tables(table: Any, source: str | None, frame_args: dict[str, Any],
                            equations: Any) -> DataSystem:
    """The :class:`DataSystem` of a system file with a ``[data]`` section.

    Parameters
    ----------
    table : mapping
        The ``[data]`` section.
    source : str or None
        The system file (relative trajectory paths are taken from its folder).
    frame_args : dict
        Keyword arguments of :class:`System` except ``equations``.
    equations : mapping or None
        The ``[equations]`` section, when there is one.
    """
    src = f" ({source})" if source else ""
    if not isinstance(table, Mapping):
        raise SystemFileTypeError(f"[data]{src} must be a table (a [data] section); got "
                                  f"{type(table).__name__} {table!r}.")
    unknown = [k for k in table if k not in DATA_KEYS]
    if unknown:
        raise SystemFileError(f"Unknown key(s) {', '.join(map(repr, unknown))} in [data]{src};"
                              f" the allowed ones are {', '.join(DATA_KEYS)}.")
    path = table.get("trajectories")
    if not isinstance(path, str) or not path.strip():
        raise SystemFileError(f"[data] trajectories{src} must name a file, e.g. trajectories = "
                              f"\"orbits.csv\"; got {path!r}.")
    p = Path(path).expanduser()
    if not p.is_absolute() and source:
        p = Path(source).resolve().parent / p
    if equations is None:
        variables = frame_args["variables"]
        names = variables if isinstance(variables, list) else []
        # placeholders: the frame only carries the declarations (see DataSystem.frame)
        frame = System(equations={str(v): 0 for v in names} if names else (), **frame_args)
        system = None
    else:
        frame = system = System(equations=equations, **frame_args)
    if frame.symbolic:
        raise SystemFileError(f"Symbolic parameters ({', '.join(map(str, frame.symbolic))})"
                              f"{src} do not apply to trajectory data; give them numbers.")
    return DataSystem(frame, load_trajectories(p, frame.variable_names), system)
