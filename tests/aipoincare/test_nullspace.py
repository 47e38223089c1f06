"""The float matrix: scaling by gradient size (never by A's column), blocks, spectrum, memory."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aipoincare.basis import PolynomialBasis
from aipoincare.evaluate import compile_torch
from aipoincare.nullspace import numerical_null_space, scaled_matrix
from aipoincare.scaling import scaling_weights, weight_blocks
from traincore import MemoryBudgetError


def _setup(system, degree, n=60, seed=0):
    b = PolynomialBasis(system.variables, degree)
    f = compile_torch(system.equations, system.variables)
    x = torch.tensor(np.random.default_rng(seed).normal(size=(n, len(system.variables))))
    return b, f, x


def test_conserved_basis_function_keeps_its_zero_column(lv):
    b, f, x = _setup(lv, 3)
    a, scale = scaled_matrix(b, f, x, np.arange(b.size))
    xyz = b.labels.index("x*y*z")
    assert float(a[:, xyz].abs().max()) < 1e-14  # the column is zero ...
    assert float(scale[xyz]) > 0.1  # ... but its scale comes from |grad(xyz)|, not from A
    np.testing.assert_allclose(torch.linalg.vector_norm(a, dim=1).numpy(), 1.0)
    ns = numerical_null_space(b, f, x, [np.arange(b.size)])
    assert ns.nullity == 4 and ns.gap > 10
    assert np.abs(ns.vectors[xyz]).max() > 0.5  # x*y*z is found


def test_vectors_annihilate_the_matrix_and_blocks_agree(lv):
    b, f, x = _setup(lv, 3)
    blocks = weight_blocks(b.exponents, scaling_weights(lv.equations, lv.variables))
    whole = numerical_null_space(b, f, x, [np.arange(b.size)])
    split = numerical_null_space(b, f, x, blocks)
    assert whole.nullity == split.nullity == 4 and split.block_nullities == [1, 1, 2]
    a = b.lie_torch(x, f(x)).numpy()
    assert np.abs(a @ split.vectors).max() < 1e-10 * np.abs(a).max()
    assert split.spectrum.shape == (b.size,) and np.all(np.diff(split.spectrum) <= 0)


@pytest.mark.parametrize("degree", [2, 3])
def test_nothing_found_where_nothing_exists(rossler, degree):
    b, f, x = _setup(rossler, degree, n=80)
    ns = numerical_null_space(b, f, x, [np.arange(b.size)])
    assert ns.nullity == 0 and ns.vectors.shape == (b.size, 0)


def test_fixed_tolerance_and_spectrum_only(lv):
    b, f, x = _setup(lv, 3)
    ns = numerical_null_space(b, f, x, [np.arange(b.size)], rtol=1e-10, vectors=False)
    assert ns.nullity == 4 and ns.vectors.shape[1] == 0


def test_memory_budget_refusal(lv, monkeypatch):
    monkeypatch.setenv("TRAINCORE_MEMORY_BUDGET", "1K")
    b, f, x = _setup(lv, 3)
    with pytest.raises(MemoryBudgetError, match="lower the degree or the number of points"):
        numerical_null_space(b, f, x, [np.arange(b.size)])


def test_streamed_tsqr_matches_the_whole_matrix(lv):
    b, f, x = _setup(lv, 3, n=90)
    blocks = weight_blocks(b.exponents, scaling_weights(lv.equations, lv.variables))
    whole = numerical_null_space(b, f, x, blocks)
    streamed = numerical_null_space(b, f, x, blocks, chunk_rows=16)
    assert streamed.nullity == whole.nullity == 4
    big = whole.spectrum > 1e-8
    np.testing.assert_allclose(streamed.spectrum[big], whole.spectrum[big], rtol=1e-10)
    a = b.lie_torch(x, f(x)).numpy()
    assert np.abs(a @ streamed.vectors).max() < 1e-10 * np.abs(a).max()
