import math

import pytest
import torch

from traincore import (
    TSQR,
    MemoryBudgetError,
    accumulate_gram,
    accumulate_r,
    batched_gradient,
    choose_cut,
    normalised_spectrum,
    null_space,
    row_chunk_size,
)


def _rank_deficient(n_rows, n_cols, rank, seed=0):
    g = torch.Generator().manual_seed(seed)
    left = torch.randn(n_rows, rank, generator=g, dtype=torch.float64)
    right = torch.randn(rank, n_cols, generator=g, dtype=torch.float64)
    return left @ right


def test_chunked_gram_equals_full():
    a = torch.randn(1003, 37, dtype=torch.float64)
    chunks = torch.split(a, row_chunk_size(37, budget_bytes=8 * 37 * 100))
    assert len(chunks) == 11
    torch.testing.assert_close(accumulate_gram(chunks), a.T @ a, rtol=1e-12, atol=1e-10)
    a32 = a.float()
    torch.testing.assert_close(accumulate_gram(a32), a32.double().T @ a32.double())


def test_tsqr_r_has_same_gram_and_spectrum():
    a = _rank_deficient(500, 20, 20, seed=1)
    r = accumulate_r(torch.split(a, 64))
    assert r.shape == (20, 20)
    torch.testing.assert_close(r.T @ r, a.T @ a, rtol=1e-10, atol=1e-8)
    torch.testing.assert_close(torch.linalg.svdvals(r), torch.linalg.svdvals(a))


def test_empty_blocks_are_an_error():
    with pytest.raises(ValueError, match="at least one block"):
        accumulate_gram([])
    with pytest.raises(ValueError, match="at least one block"):
        accumulate_r([])


@pytest.mark.parametrize("rank", [0, 3, 7, 10])
def test_null_space_dimension_and_vectors(rank):
    a = _rank_deficient(200, 10, rank, seed=rank) if rank else torch.zeros(200, 10)
    for ns in (null_space(a), null_space(blocks=torch.split(a, 33))):
        assert ns.nullity == 10 - rank
        assert ns.basis.shape == (10, 10 - rank)
        if 0 < rank < 10:
            assert float((a @ ns.basis).abs().max()) < 1e-9
            assert ns.gap > 8 and 0.5 < ns.confidence <= 1
        torch.testing.assert_close(ns.basis.T @ ns.basis, torch.eye(10 - rank,
                                                                    dtype=torch.float64))
        assert float(ns.spectrum[0]) == pytest.approx(1.0) or rank == 0


def test_wide_matrix_spectrum_padded_with_zeros():
    a = _rank_deficient(4, 9, 4)
    ns = null_space(a)
    assert ns.spectrum.shape == (9,) and ns.nullity == 5


def test_small_but_genuine_singular_values_are_not_null():
    # singular values 1 .. 1e-9 are all genuine: the Gram route squares 1e-9 to 1e-18 and
    # cannot see it, the SVD route can
    u, _ = torch.linalg.qr(torch.randn(300, 12, dtype=torch.float64))
    v, _ = torch.linalg.qr(torch.randn(12, 12, dtype=torch.float64))
    s = torch.tensor([1, .5, .1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-9, 0, 0],
                     dtype=torch.float64)
    a = u @ torch.diag(s) @ v.T
    ns = null_space(a)
    assert ns.nullity == 2
    assert ns.gap > 5
    gram_eigs = torch.linalg.eigvalsh(a.T @ a).clamp_min(0).sqrt().flip(0)
    assert float(gram_eigs[9]) / float(gram_eigs[0]) != pytest.approx(1e-9, rel=0.01)


def test_choose_cut_rules():
    spec = torch.tensor([1.0, 0.2, 0.05, 1e-14, 3e-16])
    nullity, gap, conf = choose_cut(spec)
    assert nullity == 2 and gap == pytest.approx(math.log10(0.05 / 1e-14))
    assert conf == pytest.approx(gap / 14)
    assert choose_cut(torch.tensor([1.0, 0.5, 0.1, 0.01]))[0] == 0  # no tiny values: none null
    assert choose_cut(spec, rtol=0.1)[0] == 3
    with pytest.raises(ValueError, match=r"'rtol' must be a number in \(0, 1\); got 2.0"):
        choose_cut(spec, rtol=2.0)


def test_null_space_refuses_over_budget(monkeypatch):
    monkeypatch.setenv("TRAINCORE_MEMORY_BUDGET", "10K")
    with pytest.raises(MemoryBudgetError, match="SVD of a 100 x 50 matrix"):
        null_space(torch.zeros(100, 50))


def test_null_space_argument_errors():
    with pytest.raises(ValueError, match="exactly one"):
        null_space()
    with pytest.raises(ValueError, match="2D matrix"):
        null_space(torch.zeros(3))


def test_batched_gradient_matches_autograd():
    x = torch.randn(1000, 4, dtype=torch.float64)

    def fn(z):
        return torch.sin(z[:, 0]) * z[:, 1] + z[:, 2] ** 3 - z[:, 3]

    g = batched_gradient(fn, x, chunk_size=128)
    expected = torch.stack([torch.cos(x[:, 0]) * x[:, 1], torch.sin(x[:, 0]),
                            3 * x[:, 2] ** 2, -torch.ones(1000, dtype=torch.float64)], 1)
    torch.testing.assert_close(g, expected)
    with pytest.raises(ValueError, match="return shape"):
        batched_gradient(lambda z: z, x)


def test_tsqr_is_one_pass_however_small_the_chunks(monkeypatch):
    """Each QR takes in at least n_cols new rows: 1-row chunks cost m/n QRs, not m."""
    a = _rank_deficient(400, 20, 15, seed=3)
    calls = []
    qr = torch.linalg.qr

    def counting_qr(m, mode="reduced"):
        calls.append(m.shape[0])
        return qr(m, mode=mode)

    monkeypatch.setattr(torch.linalg, "qr", counting_qr)
    acc = TSQR(20)
    for row in torch.split(a, 1):
        acc.add(row)
    r = acc.r
    assert len(calls) == 400 // 20 and max(calls) <= 2 * 20  # each QR: R plus n_cols rows
    assert acc.rows == 400 and r.shape == (20, 20)
    torch.testing.assert_close(torch.linalg.svdvals(r), torch.linalg.svdvals(a))


def test_tsqr_merge_equals_the_whole():
    a = _rank_deficient(300, 12, 12, seed=4)
    left, right = TSQR(12), TSQR(12)
    for chunk in torch.split(a[:170], 50):
        left.add(chunk)
    for chunk in torch.split(a[170:], 33):
        right.add(chunk)
    left.merge(right)
    assert left.rows == 300
    torch.testing.assert_close(left.r.T @ left.r, a.T @ a, rtol=1e-10, atol=1e-8)
    with pytest.raises(ValueError, match=r"rows of shape \(k, 12\); got \(3, 4\)"):
        left.add(torch.zeros(3, 4))
    with pytest.raises(ValueError, match="no rows yet"):
        _ = TSQR(3).r


def test_normalised_spectrum_pads_and_gives_vectors():
    s, vh = normalised_spectrum(torch.tensor([[3.0, 0.0, 0.0], [0.0, 1.5, 0.0]]), 4,
                                vectors=True)
    assert s.tolist() == [1.0, 0.5, 0.0, 0.0] and vh.shape == (3, 3)
    assert normalised_spectrum(torch.zeros(2, 2))[0].tolist() == [0.0, 0.0]


def test_rounding_level_values_and_structural_zeros_are_one_null_space():
    # 5e-17 is rounding, 0 is structural: both null, no artificial 280-decade gap between them
    assert choose_cut(torch.tensor([1.0, 0.3, 5e-17, 0.0]))[0] == 2
