"""Names of a package's API index loaded on first use (PEP 562).

A package whose ``__init__`` would otherwise import torch or matplotlib for every user lists
those names with the submodule that defines each, and lets this module build its module-level
``__getattr__`` and ``__dir__``. What needs no heavy import (argument checks, file reading)
then imports fast, and a command line can report bad input before paying for torch.

Imports nothing beyond the standard library, so every package may use it from its
``__init__``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, MutableMapping
from importlib import import_module
from typing import Any

__all__ = ["lazy_attributes"]


def lazy_attributes(namespace: MutableMapping[str, Any], names: Mapping[str, str]
                    ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module ``__getattr__`` and ``__dir__`` that load ``names`` on first access.

    Parameters
    ----------
    namespace : dict
        The package's ``globals()``: its ``__name__`` anchors the relative imports, and a
        loaded name is stored there, so that the next access is a plain attribute.
    names : mapping of str to str
        Public name -> the submodule (relative to the package, without the dot) defining it.

    Returns
    -------
    (getattr, dir) : tuple of callables
        Assign them to the package's ``__getattr__`` and ``__dir__``. An unknown name raises
        ``AttributeError("module 'pkg' has no attribute 'name'")``, as Python's own does;
        ``dir(pkg)`` lists the loaded names and the lazy ones.

    Examples
    --------
    In ``pkg/__init__.py``::

        _LAZY = {"fit": "loop", "History": "state"}
        __getattr__, __dir__ = lazy_attributes(globals(), _LAZY)
    """
    package = namespace["__name__"]

    def module_getattr(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(f".{module}", package), name)
        namespace[name] = value  # the next access is a plain attribute
        return value

    def module_dir() -> list[str]:
        return sorted(set(namespace) | set(names))

    return module_getattr, module_dir
