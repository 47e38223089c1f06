"""The exceptions aipoincare raises on purpose, in one place.

All are ``ValueError`` subclasses (the wrong-kind variant is also a ``TypeError``), so the
command line reports each as one ``error: ...`` line with exit status 2, and Python callers
can catch the builtin classes.
"""

from __future__ import annotations

from traincore import Errors

__all__ = ["SystemFileError", "SystemFileTypeError", "ExpressionError", "DataFileError",
           "NoSamplesError", "ExactNotApplicable", "SYSTEM_ERRORS"]


class SystemFileError(ValueError):
    """A system (file or Python input) with a wrong value: the message says where and the fix."""


class SystemFileTypeError(SystemFileError, TypeError):
    """A system entry of the wrong kind (e.g. a number where a list of names is expected)."""


class ExpressionError(SystemFileError):
    """An expression that cannot be parsed or uses a name that is not allowed."""


class DataFileError(ValueError):
    """A state data file (CSV/NPY) that cannot be used: the message says where and the fix."""


class NoSamplesError(ValueError):
    """Every candidate state was dropped: nothing to build the matrix from."""


class ExactNotApplicable(ValueError):
    """The exact modular path does not apply to this system (the message says why)."""


#: What :mod:`traincore.validate` raises for entries of a system (file or Python input).
SYSTEM_ERRORS = Errors(SystemFileTypeError, SystemFileError)
