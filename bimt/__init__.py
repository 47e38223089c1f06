"""bimt: brain-inspired modular training (Liu, Gan & Tegmark, arXiv:2305.08746)."""

__all__: list[str] = []
