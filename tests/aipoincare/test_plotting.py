"""Figures: formats, atomic writes, the cut and gap marked, heat map of used columns only."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
from matplotlib.figure import Figure

from aipoincare.plotting import (
    plot_coefficients,
    plot_discovery,
    plot_independence,
    plot_spectrum,
    pretty_label,
    render_discovery,
)
from aipoincare.result import Discovery

_spec = importlib.util.spec_from_file_location(
    "fake_discovery", Path(__file__).parent / "data" / "fake_discovery.py")
fake = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fake)  # type: ignore[union-attr]


def _texts(ax) -> list[str]:  # noqa: ANN001
    return [t.get_text() for t in ax.texts]


def test_png_written_and_not_blank(tmp_path: Path) -> None:
    path = tmp_path / "lv.png"
    plot_discovery(fake.lotka_volterra(), path, dpi=50)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    img = matplotlib.image.imread(path)
    assert img.shape[0] > 200 and img.shape[1] > 400
    assert img[..., :3].std() > 0.05  # something is drawn
    assert [p.name for p in tmp_path.iterdir()] == ["lv.png"]  # no temporary left behind


@pytest.mark.parametrize("fmt, magic", [("svg", b"<?xml"), ("pdf", b"%PDF")])
def test_other_formats(tmp_path: Path, fmt: str, magic: bytes) -> None:
    path = tmp_path / f"lv.{fmt}"
    plot_discovery(fake.lotka_volterra(), path)
    assert path.read_bytes()[:len(magic)] == magic


def test_bad_extension_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"must end in \.png, \.svg or \.pdf; got '.*lv\.gif'"):
        plot_discovery(fake.lotka_volterra(), tmp_path / "lv.gif")
    with pytest.raises(ValueError, match=r"The 'fmt' \(figure format\) must be one of 'png', "
                                         r"'svg', 'pdf'; got 'bmp'"):
        render_discovery(fake.lotka_volterra(), "bmp")
    assert list(tmp_path.iterdir()) == []


def test_failed_render_keeps_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "lv.png"
    path.write_bytes(b"old")
    import aipoincare.plotting as plotting

    def boom(*args: object, **kwargs: object) -> bytes:
        raise RuntimeError("render failed")

    monkeypatch.setattr(plotting, "render_discovery", boom)
    with pytest.raises(RuntimeError):
        plot_discovery(fake.lotka_volterra(), path)
    assert path.read_bytes() == b"old" and len(list(tmp_path.iterdir())) == 1


def test_spectrum_panel_marks_cut_and_gap() -> None:
    fig = Figure()
    ax = fig.add_subplot()
    assert plot_spectrum(fake.lotka_volterra(), ax) is fig
    assert ax.get_yscale() == "log"
    cut_lines = [ln for ln in ax.lines if ln.get_linestyle() == "--"]
    assert len(cut_lines) == 1 and cut_lines[0].get_xdata()[0] == pytest.approx(15.5)
    assert any("gap 14.2 decades" in t and "cut: 4 conserved" in t for t in _texts(ax))
    # the zero singular value is drawn at the floor, not dropped
    red = [ln for ln in ax.lines if ln.get_label() == "4 (near) zero"][0]
    assert len(red.get_ydata()) == 4 and np.all(np.asarray(red.get_ydata()) > 0)
    assert "nullity 4 (exact count)" in ax.get_title()


def test_long_spectrum_gets_a_zoom_inset() -> None:
    fig = Figure()
    ax = fig.add_subplot()
    assert plot_spectrum(fake.large(), ax) is fig
    insets = [c for c in ax.child_axes]
    assert len(insets) == 1
    assert any("gap 6.0 decades" in t for t in _texts(insets[0]))
    assert not any("gap" in t for t in _texts(ax))  # annotated once, where it is visible


def test_independence_panel() -> None:
    fig = Figure()
    ax = fig.add_subplot()
    assert plot_independence(fake.lotka_volterra(), ax) is fig
    assert "2 independent (exact)" in ax.get_title()
    assert any("cut: 2 dependent" in t for t in _texts(ax))


def test_heat_map_shows_only_used_columns_with_pretty_labels() -> None:
    d = fake.large()
    used = np.nonzero(np.abs(d.coefficients).sum(0))[0]
    fig = Figure()
    ax = fig.add_subplot()
    assert plot_coefficients(d, ax) is fig
    image = ax.images[0]
    assert image.get_array().shape == (60, used.size)
    assert f"{used.size} of 2924 basis functions used" in ax.get_title()
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels[0] == pretty_label(d.basis_labels[used[0]])
    assert len(labels) <= 90  # readable: at most ~90 labels however many columns
    rows = [t.get_text() for t in ax.get_yticklabels()]
    assert rows[0] == "H1" and rows[-1].startswith("C")


def test_heat_map_lv_values() -> None:
    d = fake.lotka_volterra()
    fig = Figure()
    ax = fig.add_subplot()
    assert plot_coefficients(d, ax) is fig
    arr = np.ma.filled(ax.images[0].get_array(), np.nan)
    assert arr.shape == (4, 19)
    np.testing.assert_array_equal(arr[0, :3], [1, 1, 1])           # x + y + z
    assert np.isnan(arr[0, 3:]).all()                              # zeros are blank
    assert arr[1, d.basis_labels.index("x*y*z")] == 1               # x*y*z
    assert [t.get_text() for t in ax.get_xticklabels()][:4] == ["$x$", "$y$", "$z$", "$x^{2}$"]


def test_nothing_conserved_still_plots(tmp_path: Path) -> None:
    d = Discovery(name="Rossler", variables=["x", "y", "z"], basis_labels=["x", "y", "z"],
                  points=10, nullity=0, independent=0, invariants=[],
                  spectrum=np.array([1.0, 0.5, 0.2]))
    plot_discovery(d, tmp_path / "r.png", dpi=40)
    assert (tmp_path / "r.png").stat().st_size > 1000


def test_non_finite_values_do_not_crash() -> None:
    d = fake.lotka_volterra()
    d.spectrum = np.array([1.0, np.nan, np.inf, 0.1, 0.0])
    d.nullity = 1
    d.coefficients = np.array([[np.nan, 1.0, 0.0, 2.0, 0.0]])
    data = render_discovery(d, "png", dpi=40)
    assert data[:4] == b"\x89PNG"


@pytest.mark.parametrize("label, expected", [
    ("x", "$x$"), ("x**3", "$x^{3}$"), ("x1**2*u2", "$x_{1}^{2}u_{2}$"),
    ("NO2*HO2", "$\\mathrm{NO}_{2}\\mathrm{HO}_{2}$"), ("log(x)", "log(x)"), ("x_a*y", "x_a*y"),
])
def test_pretty_label(label: str, expected: str) -> None:
    assert pretty_label(label) == expected


def test_wide_conserved_basis_shows_the_invariants_only() -> None:
    # 60 rows using > 200 columns (like the 3D fluid): draw the independent invariants only,
    # built from their coefficient dicts, so that the labels stay readable
    d = fake.large()
    rng = np.random.default_rng(1)
    d.coefficients = d.coefficients.copy()
    d.coefficients[20:, rng.choice(2924, 400, replace=False)] = 1.0
    d.invariants = [type(inv)(inv.expr, True, "identity-test", 0.0, "",
                              {d.basis_labels[j]: int(c) for j, c in
                               enumerate(d.coefficients[r]) if c})
                    for r, inv in enumerate(d.invariants)]
    fig = Figure()
    ax = fig.add_subplot()
    assert plot_coefficients(d, ax) is fig
    used = np.nonzero(np.abs(d.coefficients[:14]).sum(0))[0]
    assert ax.images[0].get_array().shape == (14, used.size)
    assert "of the 14 independent invariants (the whole conserved basis of 60 uses" \
        in ax.get_title()
    assert [t.get_text() for t in ax.get_yticklabels()][:2] == ["H1", "H2"]


def test_rows_matching_invariants_are_named_and_first() -> None:
    d = fake.lotka_volterra()
    # the invariants are rows 0 and 1 of the conserved basis; swap the order of invariants
    d.invariants = d.invariants[::-1]
    fig = Figure()
    ax = fig.add_subplot()
    assert plot_coefficients(d, ax) is fig
    assert [t.get_text() for t in ax.get_yticklabels()] == ["H1", "H2", "C3", "C4"]
    arr = np.ma.filled(ax.images[0].get_array(), np.nan)
    assert arr[0, d.basis_labels.index("x*y*z")] == 1  # H1 is now x*y*z
    np.testing.assert_array_equal(arr[1, :3], [1, 1, 1])


def test_species_names_are_roman() -> None:
    assert pretty_label("HO2H*NO", roman=True) == "$\\mathrm{HO}_{2}\\mathrm{H}\\,\\mathrm{NO}$"
    assert pretty_label("O3**2", roman=True) == "$\\mathrm{O}_{3}^{2}$"


def test_standalone_figures_and_no_backend_change() -> None:
    import sys

    backend = __import__("matplotlib").get_backend()
    d = fake.lotka_volterra()
    for fn in (plot_spectrum, plot_independence, plot_coefficients):
        fig = fn(d)
        assert isinstance(fig, Figure) and fig.axes
    fig = plot_discovery(d)
    assert fig is not None and len(fig.axes) >= 3
    assert __import__("matplotlib").get_backend() == backend  # importing us changes nothing
    if "matplotlib.pyplot" in sys.modules:
        import matplotlib.pyplot as plt

        plt.close("all")
