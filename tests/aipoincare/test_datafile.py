"""The reading rules that state files (load_states) and trajectory files (load_trajectories)
share through aipoincare.datafile, each with its own wording."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from aipoincare.datafile import as_numbers, load_array, read_lines
from aipoincare.errors import DataFileError
from aipoincare.sampling import load_states
from aipoincare.trajectories import load_trajectories


def test_read_lines_skips_blank_and_comment_lines_and_a_bom(tmp_path: Path) -> None:
    p = tmp_path / "d.csv"
    p.write_bytes("\ufeff# head\n1,2\n\n   \n  # indented comment\n3,4\n".encode())
    assert read_lines(p, "data file", "CSV") == [(2, "1,2"), (6, "3,4")]
    p.write_text("\n# only comments\n")
    assert read_lines(p, "data file", "CSV") == []


@pytest.mark.parametrize("loader, message", [
    (lambda p: load_states(p, ["x", "y"]),
     r"^The data file '.*d\.csv' cannot be read: not UTF-8 text; give a CSV or \.npy file\.$"),
    (lambda p: load_trajectories(p, ["x", "y"]),
     r"^The trajectory file '.*d\.csv' cannot be read: not UTF-8 text; give a CSV, \.npy or "
     r"\.npz file\.$"),
])
def test_both_loaders_refuse_text_that_is_not_utf8(tmp_path: Path, loader, message) -> None:
    p = tmp_path / "d.csv"
    p.write_bytes(b"x,y\n1,\xff\n")
    with pytest.raises(DataFileError, match=message):
        loader(p)


def test_both_loaders_skip_comments_the_same_way(tmp_path: Path) -> None:
    states = tmp_path / "s.csv"
    states.write_text("# states\nx,y\n\n1,2\n  # more\n3,4\n")
    np.testing.assert_array_equal(load_states(states, ["x", "y"]), [[1, 2], [3, 4]])
    orbits = tmp_path / "o.csv"
    orbits.write_text("# orbits\ntrajectory,t,x,y\n\n"
                      + "".join(f"{k},{t},{k},{t}\n# c\n" for k in range(4) for t in (0, 1)))
    assert load_trajectories(orbits, ["x", "y"]).n_samples == 8


def test_both_loaders_refuse_pickles_without_loading_them(tmp_path: Path) -> None:
    p = tmp_path / "o.npy"
    np.save(p, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DataFileError, match=r"^The data file .* is not a readable \.npy array "
                                            r"\(.*\); save it with numpy\.save\.$"):
        load_states(p, ["x"])
    with pytest.raises(DataFileError, match=r"^The trajectory file .* is not a readable numpy "
                                            r"file \(.*\); save it with numpy\.save or "
                                            r"numpy\.savez\.$"):
        load_trajectories(p, ["x"])


def test_both_loaders_want_numbers(tmp_path: Path) -> None:
    p = tmp_path / "b.npy"
    np.save(p, np.zeros((4, 3), dtype=bool))
    with pytest.raises(DataFileError,
                       match=r"^The data file '.*b\.npy' must hold numbers; got dtype bool\.$"):
        load_states(p, ["x", "y", "z"])
    with pytest.raises(DataFileError, match=r"^The array of the trajectory file '.*b\.npy' "
                                            r"must hold numbers; got dtype bool\.$"):
        load_trajectories(p, ["x"])
    z = tmp_path / "s.npz"
    np.savez(z, trajectory=np.zeros(4), t=np.array(["a", "b", "c", "d"]), x=np.zeros(4))
    with pytest.raises(DataFileError, match=r"^The array 't' of the trajectory file .* must "
                                            r"hold numbers; got dtype <U1\.$"):
        load_trajectories(z, ["x"])


def test_the_helpers_directly(tmp_path: Path) -> None:
    out = as_numbers(np.arange(3, dtype=np.int32), "The array")
    assert out.dtype == np.float64 and out.tolist() == [0.0, 1.0, 2.0]
    with pytest.raises(DataFileError, match=r"^The array must hold numbers; got dtype complex"):
        as_numbers(np.ones(2, dtype=complex), "The array")
    p = tmp_path / "a.npy"
    np.save(p, np.eye(2))
    np.testing.assert_array_equal(load_array(p, "data file", ".npy array", "numpy.save"),
                                  np.eye(2))
    with pytest.raises(DataFileError, match=r"^The data file '.*nothing\.npy' is not a "
                                            r"readable \.npy array"):
        load_array(tmp_path / "nothing.npy", "data file", ".npy array", "numpy.save")
