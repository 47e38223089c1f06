"""Sampling: distributions, seeding, projection onto constraints, drops, data files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import sympy
import torch

from aipoincare.errors import DataFileError, NoSamplesError
from aipoincare.sampling import load_states, project_onto_constraints, sample_states
from aipoincare.specs import SamplingSpec
from aipoincare.system import System
from aipoincare.systemfile import load_system
from traincore import DeviceError

DATA = Path(__file__).parent / "data"
EXAMPLES = Path(__file__).parents[2] / "aipoincare" / "examples"
LV = System("x y z", ["x*(y - z)", "y*(z - x)", "z*(x - y)"], name="LV")
x, y, z = LV.variables


def test_seeded_and_reproducible() -> None:
    a = sample_states(LV, 50, seed=3, device="cpu")
    b = sample_states(LV, 50, seed=3, device="cpu")
    c = sample_states(LV, 50, seed=4, device="cpu")
    assert a.states.shape == (50, 3) and a.states.dtype == np.float64
    np.testing.assert_array_equal(a.states, b.states)
    assert not np.allclose(a.states, c.states)
    assert a.dropped == 0 and a.requested == 50 and a.notes == []


def test_normal_moments() -> None:
    spec = SamplingSpec("normal", scale=2.5)
    s = sample_states(LV, 20000, seed=0, spec=spec, device="cpu").states
    assert abs(s.mean()) < 0.05
    assert abs(s.std() - 2.5) < 0.05


def test_uniform_range() -> None:
    spec = SamplingSpec("uniform", low=-0.5, high=3.0)
    s = sample_states(LV, 5000, seed=0, spec=spec, device="cpu").states
    assert s.min() >= -0.5 and s.max() <= 3.0
    assert s.min() < -0.45 and s.max() > 2.95
    assert abs(s.mean() - 1.25) < 0.05


def test_points_default_from_spec() -> None:
    s = System("x", ["-x"], sampling=SamplingSpec(points=17))
    assert sample_states(s, seed=0, device="cpu").n_points == 17
    with pytest.raises(ValueError, match="The number of points is not set"):
        sample_states(LV, seed=0, device="cpu")
    with pytest.raises(ValueError, match="must be a positive integer; got 0"):
        sample_states(LV, 0, device="cpu")


def test_projection_onto_sphere_is_radial() -> None:
    # oracle: for g = |x|^2 - 1 the Jacobian is 2 x^T, so every minimum-norm step is radial
    # and the projection of x is x / |x|
    a, b, c = sympy.symbols("a b c")
    pts = torch.tensor(np.random.default_rng(0).normal(size=(200, 3)))
    proj, ok = project_onto_constraints(pts, [a**2 + b**2 + c**2 - 1], [a, b, c])
    assert bool(ok.all())
    expected = pts / pts.norm(dim=1, keepdim=True)
    torch.testing.assert_close(proj, expected, rtol=0, atol=1e-13)


def test_constrained_sampling_two_constraints() -> None:
    s = System("x y z", ["y - z", "z - x", "x - y"],
               constraints=["x**2 + y**2 + z**2 - 4", "x + y + z - 1"])
    out = sample_states(s, 300, seed=1, device="cpu")
    st = out.states
    assert st.shape == (300, 3) and out.projected
    np.testing.assert_allclose((st**2).sum(1), 4.0, atol=1e-12)
    np.testing.assert_allclose(st.sum(1), 1.0, atol=1e-12)
    assert any("projected onto 2 constraint(s)" in n for n in out.notes)


@pytest.mark.parametrize("stem", ["fluid_2d", "fluid_3d"])
def test_fluid_examples_on_their_constraint(stem: str) -> None:
    s = load_system(EXAMPLES / f"{stem}.toml")
    out = sample_states(s, 500, seed=0, device="cpu")
    assert out.n_points == 500
    from aipoincare.evaluate import compile_torch
    g = compile_torch(s.constraints, s.variables)(torch.from_numpy(out.states))
    assert float(g.abs().max()) < 1e-12
    # projected states stay ordinary-sized (no blow-up to far away points)
    assert np.abs(out.states).max() < 20


def test_drops_where_f_not_finite_and_oversamples() -> None:
    s = System("x y", ["1/x", "log(y)"])
    out = sample_states(s, 400, seed=0, device="cpu")
    assert out.n_points == 400 and out.requested == 400
    assert (out.states[:, 1] > 0).all()
    assert out.dropped > 100  # about half of the normal draws have y < 0
    assert "drawn states were dropped" in out.notes[0]


def test_extra_finite_expressions() -> None:
    out = sample_states(LV, 100, seed=0, device="cpu", finite=[sympy.log(x), sympy.sqrt(z)])
    assert (out.states[:, 0] > 0).all() and (out.states[:, 2] >= 0).all()
    assert out.dropped > 0


def test_no_usable_points() -> None:
    s = System("x", ["sqrt(-x**2 - 1)"])
    with pytest.raises(NoSamplesError,
                       match=r"No usable sample points: all \d+ drawn states were "
                             r"dropped \(f \(or a basis function\) was not finite\)"):
        sample_states(s, 20, seed=0, device="cpu")


def test_projection_failure_drops_points() -> None:
    s = System("x y", ["y", "-x"], constraints=["x**2 + y**2 + 1"])  # no real solution
    with pytest.raises(NoSamplesError, match="constraint projection did not converge"):
        sample_states(s, 10, seed=0, device="cpu", max_rounds=2)


def test_cuda_unavailable_is_an_error() -> None:
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(DeviceError, match="CUDA is not available"):
        sample_states(LV, 5, device="cuda")


# ---------------------------------------------------------------- data files


def test_data_file_relative_to_system_with_header_reordered() -> None:
    s = load_system(DATA / "lv_with_data.toml")
    out = sample_states(s, seed=0, device="cpu")
    expected = np.array([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6], [0.7, 0.8, 0.9], [1.0, 1.1, 1.2]])
    np.testing.assert_array_equal(out.states, expected)
    assert out.source.startswith("data:") and out.requested == 4 and out.dropped == 0
    assert sample_states(s, 2, device="cpu").n_points == 2


def test_csv_without_header_and_whitespace(tmp_path: Path) -> None:
    p = tmp_path / "s.csv"
    p.write_text("1,2,3\n4,5,6\n")
    np.testing.assert_array_equal(load_states(p, "xyz"), [[1, 2, 3], [4, 5, 6]])
    p2 = tmp_path / "s.txt"
    p2.write_text("# comment\n1 2 3\n4\t5 6\n")
    np.testing.assert_array_equal(load_states(p2, "xyz"), [[1, 2, 3], [4, 5, 6]])


def test_npy(tmp_path: Path) -> None:
    arr = np.arange(12.0).reshape(4, 3)
    np.save(tmp_path / "s.npy", arr)
    np.testing.assert_array_equal(load_states(tmp_path / "s.npy", "xyz"), arr)
    np.save(tmp_path / "w.npy", np.zeros((4, 2)))
    with pytest.raises(DataFileError, match=r"has 2 columns; expected 3 \(x, y, z\)"):
        load_states(tmp_path / "w.npy", "xyz")
    np.save(tmp_path / "o.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DataFileError, match=r"is not a readable \.npy array"):
        load_states(tmp_path / "o.npy", "xyz")  # pickles are refused, never loaded


@pytest.mark.parametrize("text, message", [
    ("1,2\n3,4\n", r"Row 1 of the data file '.*' has 2 columns; expected 3 \(x, y, z\)"),
    ("1,2,3\n4,5\n", r"Row 2 of the data file .* has 2 columns; expected 3"),
    ("1,2,3\n4,five,6\n", r"Row 2, column 2 of the data file .* is not a number: 'five'"),
    ("a,b,c\n1,2,3\n", r"The header row of the data file .* names a, b, c; expected the variables "
                       r"x, y, z"),
    ("x,y,z\n", r"has a header but no rows"),
    ("\n\n", r"is empty"),
])
def test_bad_csv(tmp_path: Path, text: str, message: str) -> None:
    p = tmp_path / "bad.csv"
    p.write_text(text)
    with pytest.raises(DataFileError, match=message) as info:
        load_states(p, ["x", "y", "z"])
    assert "\n" not in str(info.value)


def test_missing_data_file(tmp_path: Path) -> None:
    s = System("x y z", ["1", "1", "1"], sampling=SamplingSpec(data=str(tmp_path / "no.csv")))
    with pytest.raises(DataFileError, match=r"The data file '.*no\.csv' from \[sampling\] data "
                                            r"does not exist"):
        sample_states(s, device="cpu")


def test_too_few_rows(tmp_path: Path) -> None:
    p = tmp_path / "s.csv"
    p.write_text("1,2,3\n4,5,6\n")
    s = System("x y z", ["1", "1", "1"], sampling=SamplingSpec(data=str(p)))
    with pytest.raises(DataFileError, match=r"has 2 usable rows but 5 are needed; add rows, or "
                                            r"ask for fewer points \(--points 2\)"):
        sample_states(s, 5, device="cpu")
    with pytest.raises(DataFileError, match="has 2 usable rows but 3 are needed"):
        sample_states(s, device="cpu", min_points=3)


def test_data_rows_where_f_not_finite_are_dropped(tmp_path: Path) -> None:
    p = tmp_path / "s.csv"
    p.write_text("x,y\n1,2\n0,3\n4,nan\n5,6\n")
    s = System("x y", ["1/x", "y"], sampling=SamplingSpec(data=str(p)))
    out = sample_states(s, device="cpu")
    np.testing.assert_array_equal(out.states, [[1, 2], [5, 6]])
    assert out.dropped == 2 and "2 of 4 data states were dropped" in out.notes[0]
    p.write_text("0,1\n0,2\n")
    with pytest.raises(NoSamplesError, match="No usable sample points: f"):
        sample_states(s, device="cpu")


def test_data_off_constraint_noted(tmp_path: Path) -> None:
    p = tmp_path / "s.csv"
    p.write_text("1,0\n0.6,0.8\n3,4\n")
    s = System("x y", ["y", "-x"], constraints=["x**2 + y**2 - 1"],
               sampling=SamplingSpec(data=str(p)))
    out = sample_states(s, device="cpu")
    assert out.n_points == 3
    assert "1 of 3 data states violate the constraints" in out.notes[0]
