"""Shared fixtures: every test runs on CPU with a small, seeded setup."""

from __future__ import annotations

import os

import matplotlib
import pytest

matplotlib.use("Agg")  # no display in CI


@pytest.fixture(autouse=True)
def _no_device_override(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests see 'auto' as the machine's real choice unless they set the variable."""
    monkeypatch.delenv("TRAINCORE_DEVICE", raising=False)


@pytest.fixture
def has_cuda() -> bool:
    import torch

    return torch.cuda.is_available() and os.environ.get("TRAINCORE_TEST_CUDA", "1") != "0"
