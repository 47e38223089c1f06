"""The Pareto picture of the conserved basis: terms against coefficient size, the front
checked against a brute-force definition, the figure written atomically."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
import sympy
from matplotlib.figure import Figure

import aipoincare
from aipoincare import Discovery, Invariant, pareto_points, plot_pareto

_spec = importlib.util.spec_from_file_location(
    "fake_discovery", Path(__file__).parent / "data" / "fake_discovery.py")
fake = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fake)  # type: ignore[union-attr]

x, y, z = sympy.symbols("x y z")


def test_points_of_lotka_volterra() -> None:
    pts = pareto_points(fake.lotka_volterra())
    got = {p.text: (p.terms, p.size, p.invariant, p.conserved, p.front) for p in pts}
    assert got == {
        "x*y*z": (1, 1.0, 2, 1, True),      # one term, coefficient 1: beats every other
        "x + y + z": (3, 1.0, 1, 0, False),
        "x**2 + 2*x*y + 2*x*z + y**2 + 2*y*z + z**2": (6, 2.0, None, 2, False),
        "x**3 + 3*x**2*y + 3*x**2*z + 3*x*y**2 + 6*x*y*z + 3*x*z**2 + y**3 + 3*y**2*z "
        "+ 3*y*z**2 + z**3": (10, 6.0, None, 3, False),
    }
    assert [p.terms for p in pts] == [1, 3, 6, 10]  # sorted for reading
    assert pts[3].log10_size == pytest.approx(np.log10(6))


def _brute_front(points: list[tuple[int, float]]) -> set[tuple[int, float]]:
    """The front by its definition, in another way: sweep by terms with a running minimum."""
    best = np.inf
    front = set()
    for t in sorted({p[0] for p in points}):
        here = min(s for tt, s in points if tt == t)
        if here < best:
            front.add((t, here))
            best = here
    return front


@pytest.mark.parametrize("seed", range(5))
def test_front_matches_its_definition(seed: int) -> None:
    rng = np.random.default_rng(seed)
    syms = sympy.symbols("a0:12")
    conserved = []
    for _ in range(25):
        k = int(rng.integers(1, 8))
        cols = rng.choice(12, size=k, replace=False)
        coefs = rng.integers(1, 40, size=k) * rng.choice([-1, 1], size=k)
        conserved.append(sympy.Add(*[int(c) * syms[j] for c, j in zip(coefs, cols,
                                                                       strict=True)]))
    d = Discovery("random", [s.name for s in syms], [s.name for s in syms], 10, 25, 0, [],
                  spectrum=np.zeros(0), conserved=conserved)
    pts = pareto_points(d)
    want = _brute_front([(p.terms, p.size) for p in pts])
    assert {(p.terms, p.size) for p in pts if p.front} == want


def test_scaled_duplicates_count_once_and_invariants_outside_the_basis_are_added() -> None:
    inv = [Invariant(-2 * x - 2 * y, True, "symbolic"), Invariant(x * y + 5 * z, True,
                                                                 "symbolic")]
    d = Discovery("dup", ["x", "y", "z"], ["x", "y", "z", "x*y"], 10, 2, 2, inv,
                  spectrum=np.zeros(0), conserved=[x + y, 3 * x + 3 * y])
    pts = pareto_points(d)
    assert [(p.text, p.invariant, p.conserved) for p in pts] == [
        ("x + y", 1, 0), ("x*y + 5*z", 2, None)]


def test_float_coefficients_use_the_ratio() -> None:
    d = Discovery("float", ["x", "y"], ["x", "y"], 10, 1, 1,
                  [Invariant(0.5 * x - 0.125 * y, False, "numerical")], spectrum=np.zeros(0))
    (p,) = pareto_points(d)
    assert not p.exact and p.size == pytest.approx(4.0) and p.terms == 2


def test_plot_files_and_axes(tmp_path: Path) -> None:
    path = tmp_path / "pareto.png"
    plot_pareto(fake.lotka_volterra(), path, dpi=60)
    img = matplotlib.image.imread(path)
    assert img.shape[0] > 150 and img[..., :3].std() > 0.05
    plot_pareto(fake.large(), tmp_path / "big.svg")
    assert (tmp_path / "big.svg").read_text().lstrip().startswith("<?xml")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.svg", "pareto.png"]
    fig = Figure()
    ax = fig.add_subplot()
    assert plot_pareto(fake.lotka_volterra(), ax=ax) is fig
    assert any(t.get_text().startswith("H") for t in ax.texts)
    assert ax.get_yscale() == "log"
    empty = Discovery("none", ["x"], ["x"], 5, 0, 0, [], spectrum=np.zeros(0))
    assert isinstance(plot_pareto(empty, ax=Figure().add_subplot()), Figure)


def test_plot_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"must end in \.png, \.svg or \.pdf; got '.*x\.gif'"):
        plot_pareto(fake.lotka_volterra(), tmp_path / "x.gif")
    with pytest.raises(ValueError, match="either 'ax'"):
        plot_pareto(fake.lotka_volterra(), tmp_path / "x.png", ax=Figure().add_subplot())
    assert not list(tmp_path.iterdir())


def test_public_names() -> None:
    assert aipoincare.plot_pareto is plot_pareto and "pareto_points" in aipoincare.__all__
