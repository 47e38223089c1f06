"""aipoincare: find every conserved quantity of an ODE system in a basis of functions.

The Sparse Invariant Detector (AI Poincare 3.0; Liu et al., arXiv:2305.19525) with exact
counts and certificates.
"""

from typing import Any

from .basis import BASES, Basis, ExpressionBasis, PolynomialBasis, ProductBasis, make_basis
from .canonical import CanonicalForm, canonical_form
from .certify import Certificate, certify, certify_many
from .config import DiscoveryConfig
from .discover import discover
from .display import certificate_tag
from .errors import DataFileError, ExpressionError, NoSamplesError, SystemFileError
from .parser import parse_expression
from .report import to_latex, to_latex_table, to_text
from .result import Discovery, Exceptional, Family, Invariant, SpecialValue, to_dict, to_json
from .sampling import Samples, sample_states
from .specs import BasisSpec, SamplingSpec
from .system import System
from .systemfile import load_system

# Plotting pulls in matplotlib: loaded on first use, so `import aipoincare` stays light.
_PLOTTING = ("plot_discovery", "plot_spectrum", "plot_independence", "plot_coefficients",
             "render_discovery")


def __getattr__(name: str) -> Any:
    if name in _PLOTTING:
        from . import plotting

        return getattr(plotting, name)
    raise AttributeError(f"module 'aipoincare' has no attribute {name!r}")


__all__ = [
    # input
    "BasisSpec", "SamplingSpec", "System", "load_system", "parse_expression",
    "SystemFileError", "ExpressionError", "DataFileError", "NoSamplesError",
    "Samples", "sample_states",
    # discovery
    "BASES", "Basis", "Certificate", "Discovery", "DiscoveryConfig", "ExpressionBasis",
    "Invariant", "PolynomialBasis", "ProductBasis", "certify", "certify_many", "discover",
    "make_basis",
    # families (symbolic parameters)
    "Exceptional", "Family", "SpecialValue",
    # output
    "to_dict", "to_json", "to_latex", "to_latex_table", "to_text", *_PLOTTING,
    # reading the report
    "CanonicalForm", "canonical_form", "certificate_tag",
]
