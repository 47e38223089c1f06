"""aipoincare: find every conserved quantity of an ODE system in a basis of functions.

The Sparse Invariant Detector (AI Poincare 3.0; Liu et al., arXiv:2305.19525) with exact
counts and certificates.
"""

from .basis import BASES, Basis, ExpressionBasis, PolynomialBasis, ProductBasis, make_basis
from .certify import Certificate, certify, certify_many
from .discover import DiscoveryConfig, discover
from .result import Discovery, Invariant
from .system import BasisSpec, SamplingSpec, System, load_system

__all__ = [
    # input (io engineer)
    "BasisSpec", "SamplingSpec", "System", "load_system",
    # discovery (maths engineer)
    "BASES", "Basis", "Certificate", "Discovery", "DiscoveryConfig", "ExpressionBasis",
    "Invariant", "PolynomialBasis", "ProductBasis", "certify", "certify_many", "discover",
    "make_basis",
]
