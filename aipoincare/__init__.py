"""aipoincare: find every conserved quantity of an ODE system in a basis of functions.

The Sparse Invariant Detector (AI Poincare 3.0; Liu et al., arXiv:2305.19525) with exact
counts and certificates.

Reading and checking system files needs no torch: the names whose modules import torch
(discovery, bases, sampling, certificates) or matplotlib (figures) are loaded on first use,
so that ``aipoincare discover bad.toml`` reports a bad file at once.
"""

import sys
import types
from typing import TYPE_CHECKING, Any

from traincore.lazy import lazy_attributes

from .canonical import CanonicalForm, canonical_form
from .datasystem import DataSystem
from .display import certificate_tag
from .errors import DataFileError, ExpressionError, NoSamplesError, SystemFileError
from .parser import parse_expression
from .report import to_latex, to_latex_table, to_text
from .result import Discovery, Exceptional, Family, Invariant, SpecialValue, to_dict, to_json
from .specs import BasisSpec, SamplingSpec
from .system import System
from .systemfile import load_system
from .trajectories import Trajectories, load_trajectories

# Loaded on first use (PEP 562): name -> module.
_LAZY = {
    "BASES": "basis", "Basis": "basis", "ExpressionBasis": "basis",
    "PolynomialBasis": "basis", "ProductBasis": "basis", "make_basis": "basis",
    "Certificate": "certify", "certify": "certify", "certify_many": "certify",
    "DiscoveryConfig": "config",
    "discover": "discover",
    "Samples": "sampling", "sample_states": "sampling",
    "plot_discovery": "plotting", "plot_spectrum": "plotting", "plot_independence": "plotting",
    "plot_coefficients": "plotting", "render_discovery": "plotting",
    "ParetoPoint": "pareto", "pareto_points": "pareto", "plot_pareto": "pareto",
    "discover_from_trajectories": "datamode",
    "simulate": "simulate", "write_trajectories": "simulate",
}

if TYPE_CHECKING:  # for type checkers and readers: the same names, imported eagerly
    from .basis import BASES, Basis, ExpressionBasis, PolynomialBasis, ProductBasis, make_basis
    from .certify import Certificate, certify, certify_many
    from .config import DiscoveryConfig
    from .datamode import discover_from_trajectories
    from .discover import discover
    from .pareto import ParetoPoint, pareto_points, plot_pareto
    from .plotting import (
        plot_coefficients,
        plot_discovery,
        plot_independence,
        plot_spectrum,
        render_discovery,
    )
    from .sampling import Samples, sample_states
    from .simulate import simulate, write_trajectories


__getattr__, __dir__ = lazy_attributes(globals(), _LAZY)


class _Package(types.ModuleType):
    """The package's module type: ``aipoincare.discover`` and ``aipoincare.certify`` stay the
    functions when their submodules of the same names are imported.

    Importing a submodule sets it as an attribute of its package; with the functions loaded
    lazily that would leave the submodule where the function belongs. The submodules stay
    reachable as usual (``sys.modules``, ``from aipoincare.discover import ...``).
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and _LAZY.get(name) == name:
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

__all__ = [
    # input
    "BasisSpec", "SamplingSpec", "System", "load_system", "parse_expression",
    "SystemFileError", "ExpressionError", "DataFileError", "NoSamplesError",
    "Samples", "sample_states",
    # discovery
    "BASES", "Basis", "Certificate", "Discovery", "DiscoveryConfig", "ExpressionBasis",
    "Invariant", "PolynomialBasis", "ProductBasis", "certify", "certify_many", "discover",
    "make_basis",
    # trajectory data (the data mode)
    "DataSystem", "Trajectories", "discover_from_trajectories", "load_trajectories",
    "simulate", "write_trajectories",
    # families (symbolic parameters)
    "Exceptional", "Family", "SpecialValue",
    # output
    "to_dict", "to_json", "to_latex", "to_latex_table", "to_text",
    "plot_discovery", "plot_spectrum", "plot_independence", "plot_coefficients",
    "render_discovery",
    # reading the report
    "CanonicalForm", "canonical_form", "certificate_tag", "ParetoPoint", "pareto_points",
    "plot_pareto",
]
