"""aipoincare: find every conserved quantity of an ODE system in a basis of functions.

The Sparse Invariant Detector (AI Poincare 3.0; Liu et al., arXiv:2305.19525) with exact
counts and certificates.
"""

from .result import Discovery, Invariant
from .system import BasisSpec, SamplingSpec, System, load_system

__all__ = ["BasisSpec", "Discovery", "Invariant", "SamplingSpec", "System", "load_system"]
