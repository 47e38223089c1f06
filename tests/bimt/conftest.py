"""Tiny seeded fixtures for the bimt tests."""

from __future__ import annotations

import math

import pytest
import torch


def independence_data(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 4, generator=g) * 2 - 1
    y = torch.stack([(x[:, 0] + x[:, 2]) ** 3, x[:, 1] ** 2 + torch.sin(math.pi * x[:, 3])], 1)
    return x, y


@pytest.fixture
def indep() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    x, y = independence_data(100, 0)
    xt, yt = independence_data(100, 1)
    return x, y, xt, yt


@pytest.fixture(autouse=True)
def _one_thread():
    """The networks here are tiny: one thread is fastest and does not thrash a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
