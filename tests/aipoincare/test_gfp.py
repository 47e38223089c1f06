"""Exact elimination on float64 BLAS (aipoincare.gfp) and the block tasks (aipoincare.workers)."""

from __future__ import annotations

import numpy as np
import pytest
import sympy

from aipoincare import gfp, workers
from aipoincare.basis import PolynomialBasis
from aipoincare.constraints import constraint_solver
from aipoincare.evaluate import eval_mod_p
from aipoincare.exact import exact_null_space, random_gfp_prime, rref_mod_p
from aipoincare.scaling import scaling_blocks
from traincore import MemoryBudgetError

P = int(sympy.prevprime(gfp.PRIME_HIGH - 1000))


def _low_rank(rng: np.random.Generator, m: int, n: int, r: int) -> np.ndarray:
    """A random m x n matrix mod P of rank r (at most), with a zero and a repeated column."""
    a = matmul(rng.integers(0, P, (m, r)), rng.integers(0, P, (r, n)))
    if n > 3:
        a[:, 2] = 0
        a[:, 1] = a[:, 0] * 5 % P
    return a


def matmul(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return (u.astype(object) @ v.astype(object) % P).astype(np.int64)


@pytest.mark.parametrize("shape", [(1, 1), (5, 3), (3, 5), (40, 40), (90, 70), (70, 130),
                                   (200, 180)])
def test_null_basis_equals_flint_rref(shape):
    """Pivots, free columns and the canonical null vectors equal FLINT's RREF, whatever the
    shape and rank (the recursion runs on blocks above 16 columns)."""
    rng = np.random.default_rng(sum(shape))
    m, n = shape
    for r in sorted({0, 1, min(m, n) // 2, min(m, n)}):
        a = _low_rank(rng, m, n, r)
        ref = rref_mod_p(a, P)
        pivots, free, values = gfp.null_basis(gfp.centre(a.astype(np.float64), P), P)
        assert pivots.tolist() == ref.pivots.tolist()
        assert free.tolist() == ref.free.tolist()
        np.testing.assert_array_equal(values, ref.values)


def test_null_vectors_are_null():
    rng = np.random.default_rng(3)
    a = _low_rank(rng, 300, 260, 230)
    pivots, free, values = gfp.null_basis(gfp.centre(a.astype(np.float64), P), P)
    assert len(free) == 260 - 230
    theta = np.zeros((260, len(free)), dtype=np.int64)
    theta[free, np.arange(len(free))] = 1
    theta[pivots] = values.T
    assert not matmul(a, theta).any()


def test_matmul_mod_is_exact_for_the_largest_residues():
    """4096-term products of residues near p/2: float64 would round without the bound."""
    k = gfp.INNER * 2 + 5  # more than one slice
    a = np.full((3, k), (P - 1) // 2, dtype=np.float64)
    b = np.full((k, 2), -((P - 1) // 2), dtype=np.float64)
    got = np.mod(gfp.matmul_mod(a, b, P), P).astype(np.int64)
    want = (k * ((P - 1) // 2) * (-((P - 1) // 2))) % P
    assert (got == want).all()


def test_prime_out_of_range_is_refused():
    with pytest.raises(ValueError, match=r"prime in \[2\*\*20, 2\*\*21\)"):
        gfp.null_basis(np.zeros((2, 2)), 2147483647)


def test_random_gfp_prime_in_range():
    rng = np.random.default_rng(0)
    ps = {random_gfp_prime(rng) for _ in range(5)}
    assert all(gfp.PRIME_LOW <= p < gfp.PRIME_HIGH and sympy.isprime(p) for p in ps)


@pytest.mark.parametrize("engine", ["flint", "blas"])
def test_block_matrix_equals_the_basis_lie_derivative(fluid2d, engine):
    """A polynomial block built from its exponents alone equals the basis's A mod p there."""
    basis = PolynomialBasis(fluid2d.variables, 3)
    _, blocks = scaling_blocks(fluid2d, basis)
    block = max(blocks, key=len)
    p = P if engine == "blas" else 2147483629
    solver = constraint_solver(tuple(fluid2d.variables), tuple(fluid2d.constraints))
    pts, ok = solver.sample_mod_p(30, p, np.random.default_rng(1))
    f, ok_f = eval_mod_p(fluid2d.equations, fluid2d.variables, pts, p)
    pts, f = pts[ok & ok_f], f[ok & ok_f]
    task = workers.BlockTask(0, p, engine, exponents=basis.exponents[block], points=pts, f=f)
    want, _ = basis.lie_mod_p(pts, f, p)
    got = np.mod(workers.build_matrix(task), p).astype(np.int64)
    np.testing.assert_array_equal(got, want[:, block])


def _tasks(rng: np.random.Generator) -> list[workers.BlockTask]:
    out = []
    for k, (m, n, r) in enumerate([(60, 50, 40), (150, 140, 120), (20, 10, 3), (80, 80, 80)]):
        a = _low_rank(rng, m, n, r)
        out.append(workers.BlockTask(k, P, workers.engine_for(n), matrix=a))
    return out


def test_threads_give_the_sequential_results():
    tasks = _tasks(np.random.default_rng(5))
    seen: list[int] = []
    one = workers.run_tasks(tasks, workers=1)
    two = workers.run_tasks(tasks, workers=2, done=lambda t: seen.append(t.block))
    assert sorted(seen) == [0, 1, 2, 3]
    for a, b in zip(one, two, strict=True):
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x, y)


def test_exact_null_space_same_with_two_workers(fluid2d):
    basis = PolynomialBasis(fluid2d.variables, 3)
    _, blocks = scaling_blocks(fluid2d, basis)
    one = exact_null_space(fluid2d, basis, blocks, np.random.default_rng(0))
    two = exact_null_space(fluid2d, basis, blocks, np.random.default_rng(0), workers=2)
    assert one.vectors == two.vectors and one.nullity == 37


def test_exact_memory_is_estimated_before_allocating(fluid2d, monkeypatch):
    basis = PolynomialBasis(fluid2d.variables, 3)
    _, blocks = scaling_blocks(fluid2d, basis)
    monkeypatch.setenv("TRAINCORE_MEMORY_BUDGET", "100K")
    with pytest.raises(MemoryBudgetError, match=r"exact ranks of \d+ block\(s\) \(largest "):
        exact_null_space(fluid2d, basis, blocks, np.random.default_rng(0), workers=2)


def test_monomial_labels_and_lazy_exprs_match_sympy():
    """Labels written from the exponents equal SymPy's str of the product, and the lazily
    built expressions equal the eager ones (names that sort in unusual ways included)."""
    from aipoincare.basis import _monomial_expr, monomial_labels

    names = ["x10", "x2", "X", "a_b", "E", "lam", "zeta", "y1"]
    basis = PolynomialBasis(sympy.symbols(names), 3)
    eager = [_monomial_expr(basis.variables, e) for e in basis.exponents.tolist()]
    assert basis.labels == [str(e) for e in eager]
    assert basis.exprs[-1] == eager[-1] and list(basis.exprs) == eager
    assert basis.exprs[3:5] == eager[3:5] and len(basis.exprs) == basis.size
    assert monomial_labels(["b", "a"], np.array([[2, 1]])) == ["a*b**2"]
