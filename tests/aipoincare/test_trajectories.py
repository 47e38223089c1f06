"""Trajectory data: the CSV/NPY/NPZ layouts, their one-line errors, and `simulate`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import sympy

import aipoincare
from aipoincare.errors import DataFileError
from aipoincare.simulate import simulate, write_trajectories
from aipoincare.trajectories import Trajectories, load_trajectories

OSC = aipoincare.System("x v", ["v", "-x"], name="oscillator")


def small() -> Trajectories:
    return simulate(OSC, 5, 2.0, samples=9, seed=3)


@pytest.mark.parametrize("suffix", [".csv", ".npy", ".npz"])
def test_round_trip(tmp_path: Path, suffix: str) -> None:
    data = small()
    path = write_trajectories(data, tmp_path / f"orbits{suffix}")
    back = load_trajectories(path, ["x", "v"])
    assert back.ids == data.ids and back.variables == ("x", "v")
    np.testing.assert_array_equal(back.offsets, data.offsets)
    np.testing.assert_array_equal(back.t, data.t)
    np.testing.assert_array_equal(back.states, data.states)  # 17 digits: exact
    assert not list(tmp_path.glob("*.tmp*")) and len(list(tmp_path.iterdir())) == 1


def test_csv_layout_rows_any_order_and_columns_by_name(tmp_path: Path) -> None:
    # rows of trajectories interleaved and out of time order, variable columns swapped
    rows = ["t,v,trajectory,x"]
    for k in range(4):
        for t in (0.2, 0.0, 0.1):
            rows.append(f"{t},{k + t},traj{k},{10 * k + t}")
    p = tmp_path / "d.csv"
    p.write_text("\n".join(rows[:1] + rows[1:][::-1]) + "\n")
    d = load_trajectories(p, ["x", "v"])
    assert d.ids == ("traj3", "traj2", "traj1", "traj0")
    first = d.states[d.offsets[0]:d.offsets[1]]
    np.testing.assert_allclose(d.t[:3], [0.0, 0.1, 0.2])
    np.testing.assert_allclose(first[:, 0], [30.0, 30.1, 30.2])  # x, in variable order
    np.testing.assert_allclose(first[:, 1], [3.0, 3.1, 3.2])


def test_npz_with_one_array_per_variable(tmp_path: Path) -> None:
    data = small()
    p = tmp_path / "d.npz"
    np.savez(p, trajectory=data.trajectory_index, t=data.t, x=data.states[:, 0],
             v=data.states[:, 1])
    np.testing.assert_array_equal(load_trajectories(p, ["x", "v"]).states, data.states)


GOOD = "trajectory,t,x,v\n" + "".join(f"{k},{t},{k + t},{t}\n" for k in range(4)
                                      for t in (0, 1, 2))


@pytest.mark.parametrize("text, pattern", [
    (GOOD.replace("1,1,2,1\n", "1,1,2\n"), r"Line \d+ .* has 3 fields; the header has 4"),
    (GOOD.replace("1,1,2,1\n", "1,1,nan,1\n"), r"column 'x' .* is nan; every time and state "
                                               "must be a finite number"),
    (GOOD.replace("1,1,2,1\n", "1,1,abc,1\n"), r"column 'x' .* is not a number: 'abc'"),
    (GOOD + "9,0,1,1\n", r"Trajectory '9' .* has 1 sample; each trajectory needs at least 2"),
    (GOOD.replace("trajectory,t,x,v", "trajectory,t,x,v,w").replace("\n0", ",1\n0")
     .replace("\n1", ",1\n1").replace("\n2", ",1\n2").replace("\n3", ",1\n3") + "",
     r"unknown column\(s\) 'w'"),
    (GOOD.replace("trajectory,t,x,v", "trajectory,t,x,y"), r"unknown column\(s\) 'y'"),
    (GOOD.replace("trajectory,t,x,v", "trajectory,x,v,t"), None),  # columns by name: fine
    ("trajectory,t,x\n" + "".join(f"{k},{t},{t}\n" for k in range(4) for t in (0, 1)),
     r"no column 'v'"),
    ("trajectory,t,x,v\n" + "".join(f"{k},{t},1,1\n" for k in range(3) for t in (0, 1)),
     r"has 3 trajectories; at least 4 are needed"),
    (GOOD + "0,1,5,5\n", r"Trajectory '0' .* has two samples at t = 1"),
    ("", r"is empty"),
    ("trajectory,t,x,v\n", r"has a header but no rows"),
])
def test_bad_csv(tmp_path: Path, text: str, pattern: str | None) -> None:
    p = tmp_path / "bad.csv"
    p.write_text(text)
    if pattern is None:
        assert load_trajectories(p, ["x", "v"]).n_trajectories == 4
        return
    with pytest.raises(DataFileError, match=pattern) as err:
        load_trajectories(p, ["x", "v"])
    assert "\n" not in str(err.value)


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match=r"does not exist; check the path"):
        load_trajectories(tmp_path / "nope.csv", ["x"])
    (tmp_path / "d.json").write_text("{}")
    with pytest.raises(DataFileError, match=r"must end in \.csv"):
        load_trajectories(tmp_path / "d.json", ["x"])
    np.save(tmp_path / "w.npy", np.zeros((8, 3)))
    with pytest.raises(DataFileError, match=r"shape \(n_samples, 4\).*got shape \(8, 3\)"):
        load_trajectories(tmp_path / "w.npy", ["x", "v"])
    np.savez(tmp_path / "u.npz", trajectory=np.zeros(3), t=np.zeros(3), states=np.zeros((3, 2)),
             extra=np.zeros(3))
    with pytest.raises(DataFileError, match=r"unknown array\(s\) 'extra'"):
        load_trajectories(tmp_path / "u.npz", ["x", "v"])
    np.savez(tmp_path / "m.npz", trajectory=np.zeros(3), t=np.zeros(3))
    with pytest.raises(DataFileError, match=r"neither 'states' nor an array for 'x'"):
        load_trajectories(tmp_path / "m.npz", ["x", "v"])
    (tmp_path / "p.npy").write_bytes(b"not numpy")
    with pytest.raises(DataFileError, match=r"not a readable numpy file"):
        load_trajectories(tmp_path / "p.npy", ["x", "v"])


def test_from_arrays_checks_shapes() -> None:
    with pytest.raises(DataFileError, match=r"shape \(n_samples, 2\)"):
        Trajectories.from_arrays(np.zeros(4), np.arange(4), np.zeros((4, 3)), ["x", "v"])
    with pytest.raises(DataFileError, match=r"one entry per sample \(4\)"):
        Trajectories.from_arrays(np.zeros(3), np.arange(4), np.zeros((4, 2)), ["x", "v"])


# ---------------------------------------------------------------- simulate

def test_simulate_is_seeded_and_solves_the_equations() -> None:
    a, b = simulate(OSC, 6, 3.0, samples=31, seed=1), simulate(OSC, 6, 3.0, samples=31, seed=1)
    np.testing.assert_array_equal(a.states, b.states)
    assert not np.array_equal(a.states, simulate(OSC, 6, 3.0, samples=31, seed=2).states)
    # oracle: x(t) = x0 cos t + v0 sin t
    for k in range(6):
        rows = slice(a.offsets[k], a.offsets[k + 1])
        t, x0, v0 = a.t[rows], *a.states[a.offsets[k]]
        np.testing.assert_allclose(a.states[rows, 0], x0 * np.cos(t) + v0 * np.sin(t),
                                   atol=1e-8)


def test_simulate_noise_is_relative_to_each_spread() -> None:
    s = aipoincare.System("x v", ["v", "-100*x"], sampling={"scale": 1.0})  # v spreads 10x
    clean = simulate(s, 8, 2.0, samples=200, seed=0)
    noisy = simulate(s, 8, 2.0, samples=200, seed=0, noise=0.05)
    ratio = (noisy.states - clean.states).std(0) / clean.states.std(0)
    np.testing.assert_allclose(ratio, 0.05, rtol=0.1)


def test_simulate_respects_constraints() -> None:
    x, y, z = sympy.symbols("x y z")
    s = aipoincare.System([x, y, z], [-y, x, 0 * z], constraints=[x**2 + y**2 + z**2 - 1])
    d = simulate(s, 5, 2.0, samples=10, seed=0)
    np.testing.assert_allclose((d.states ** 2).sum(1), 1.0, atol=1e-8)


def test_simulate_drops_trajectories_that_blow_up() -> None:
    s = aipoincare.System("x", ["x**2"], sampling={"distribution": "uniform", "low": -1,
                                                    "high": 1})
    d = simulate(s, 12, 1.5, samples=5, seed=0)   # x0 > 2/3 blows up before t = 1.5
    assert 4 <= d.n_trajectories < 12
    assert np.isfinite(d.states).all()


def test_simulate_bad_arguments() -> None:
    with pytest.raises(ValueError, match=r"'trajectories' must be an integer of at least 4"):
        simulate(OSC, 3, 1.0)
    with pytest.raises(ValueError, match=r"'duration' must be"):
        simulate(OSC, 5, 0.0)
    with pytest.raises(ValueError, match=r"'noise' must be"):
        simulate(OSC, 5, 1.0, noise=-1)
