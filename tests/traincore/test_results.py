"""The JSONL result table: appends once per key, survives torn writes, reads back exactly."""

from __future__ import annotations

import json
import math
import sys

import numpy as np
import pytest

from traincore import ResultTable, rows_to_frame


def lines(path):
    return path.read_text().splitlines()


def test_append_dedupes_by_key_and_keeps_first(tmp_path):
    table = ResultTable(tmp_path / "sub" / "r.jsonl", key_fields=("seed", "lam"))
    assert len(table) == 0 and table.rows() == []
    assert table.append([{"seed": 0, "lam": 0.1, "loss": 1.0},
                         {"seed": 0, "lam": 0.1, "loss": 9.0},     # same key in one batch
                         {"seed": 1, "lam": 0.1, "loss": 2.0}]) == 2
    assert table.append([{"seed": 1, "lam": 0.1, "loss": 3.0}]) == 0
    assert table.rows() == [{"seed": 0, "lam": 0.1, "loss": 1.0},
                            {"seed": 1, "lam": 0.1, "loss": 2.0}]
    assert len(lines(table.path)) == 2
    assert {"seed": 1, "lam": 0.1} in table and {"seed": 1, "lam": 0.2} not in table
    assert table.missing([{"seed": s, "lam": 0.1} for s in range(3)]) == [{"seed": 2, "lam": 0.1}]
    # 1 and 1.0 are different keys (compared as JSON text), numpy scalars match Python ones
    assert {"seed": np.int64(1), "lam": np.float64(0.1)} in table
    assert {"seed": 1.0, "lam": 0.1} not in table


def test_values_are_stored_as_plain_json(tmp_path):
    table = ResultTable(tmp_path / "r.jsonl", ["seed"])
    table.append([{"seed": np.int64(3), "loss": float("nan"), "big": math.inf,
                   "x": np.arange(3), "pair": (1, 2), "ok": np.bool_(True),
                   "nested": {"q": np.float32(0.5)}}])
    text = table.path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"seed": 3, "loss": None, "big": None, "x": [0, 1, 2],
                                "pair": [1, 2], "ok": True, "nested": {"q": 0.5}}
    with pytest.raises(TypeError, match="must hold numbers.*got object <object"):
        table.append([{"seed": 4, "thing": object()}])
    assert len(lines(table.path)) == 1  # nothing half-written


def test_torn_last_line_is_cut_on_open(tmp_path):
    path = tmp_path / "r.jsonl"
    good = '{"seed": 0, "y": 0}\n{"seed": 1, "y": 1}\n'
    path.write_text(good + '{"seed": 2, "y"')  # the writer was killed mid-line
    table = ResultTable(path, ["seed"])
    assert path.read_text() == good
    assert [r["seed"] for r in table.rows()] == [0, 1]
    assert table.append([{"seed": 2, "y": 4}]) == 1
    assert [json.loads(ln)["seed"] for ln in lines(path)] == [0, 1, 2]


def test_last_row_without_newline_is_kept(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text('{"seed": 0}\n{"seed": 1}')  # killed after the row, before its newline
    table = ResultTable(path, ["seed"])
    assert path.read_text() == '{"seed": 0}\n{"seed": 1}\n'
    assert len(table) == 2


def test_reading_ignores_a_tail_being_written(tmp_path):
    path = tmp_path / "r.jsonl"
    table = ResultTable(path, ["seed"])
    table.append([{"seed": 0}])
    with open(path, "a") as fh:  # another writer, mid-line right now
        fh.write('{"se')
    assert table.rows() == [{"seed": 0}]


def test_duplicate_lines_made_by_hand_are_read_once(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text('{"seed": 0, "y": 1}\n\n{"seed": 0, "y": 2}\n{"seed": 1, "y": 3}\n')
    table = ResultTable(path, ["seed"])
    assert table.rows() == [{"seed": 0, "y": 1}, {"seed": 1, "y": 3}]
    assert len(table) == 2


def test_two_tables_on_one_file_see_each_others_rows(tmp_path):
    a = ResultTable(tmp_path / "r.jsonl", ["seed"])
    b = ResultTable(tmp_path / "r.jsonl", ["seed"])
    a.append([{"seed": 0}])
    assert {"seed": 0} in b and len(b) == 1
    assert b.append([{"seed": 0}, {"seed": 1}]) == 1
    assert len(a) == 2 and len(lines(a.path)) == 2


def test_damaged_or_foreign_files_are_refused(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text('{"seed": 0}\nnot json\n{"seed": 1}\n')
    with pytest.raises(ValueError, match=r"Line 2 of the result table .* is not JSON"):
        ResultTable(path, ["seed"])
    path.write_text('{"seed": 0}\n[1, 2]\n')
    with pytest.raises(ValueError, match="Line 2 .* not a JSON object"):
        ResultTable(path, ["seed"])
    path.write_text('{"epoch": 0}\n')
    with pytest.raises(ValueError, match=r"Line 1 .* lacks the key fields \['seed'\]"):
        ResultTable(path, ["seed"])


def test_bad_arguments(tmp_path):
    with pytest.raises(TypeError, match="'key_fields' must be a non-empty sequence"):
        ResultTable(tmp_path / "r.jsonl", "seed")
    with pytest.raises(TypeError, match="'key_fields'"):
        ResultTable(tmp_path / "r.jsonl", [])
    with pytest.raises(ValueError, match="must be distinct"):
        ResultTable(tmp_path / "r.jsonl", ["seed", "seed"])
    with pytest.raises(TypeError, match="'path' must be a str or path; got int"):
        ResultTable(3, ["seed"])
    with pytest.raises(ValueError, match="is a folder"):
        ResultTable(tmp_path, ["seed"])
    table = ResultTable(tmp_path / "r.jsonl", ["seed"])
    with pytest.raises(ValueError, match=r"key fields \['seed'\]; \['seed'\] missing"):
        table.append([{"loss": 1.0}])
    with pytest.raises(TypeError, match="must be a dict; got list"):
        table.append([[1, 2]])


def test_data_frame(tmp_path):
    pandas = pytest.importorskip("pandas")
    table = ResultTable(tmp_path / "r.jsonl", ["seed"])
    table.append([{"seed": 0, "loss": 0.5}, {"seed": 1, "loss": float("nan")}])
    frame = table.to_frame()
    assert isinstance(frame, pandas.DataFrame)
    assert list(frame.columns) == ["seed", "loss"] and list(frame["seed"]) == [0, 1]
    assert frame["loss"].iloc[0] == 0.5 and pandas.isna(frame["loss"].iloc[1])


def test_data_frame_without_pandas(monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)  # as if not installed
    with pytest.raises(ModuleNotFoundError, match=r"needs pandas.*pip install pandas"):
        rows_to_frame([{"seed": 0}])
