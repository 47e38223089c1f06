"""``bimt train --html``: the interactive explorer beside network.png."""

from __future__ import annotations

import sys

import pytest

from bimt.cli import main


def test_html_writes_the_explorer_beside_the_png(tmp_path, capsys) -> None:
    pytest.importorskip("plotly", reason="the explorer needs the optional extra 'explore'")
    out = tmp_path / "run"
    assert main(["train", "independence", "--steps", "200", "--out", str(out), "--html"]) == 0
    page = (out / "network.html").read_text()
    assert (out / "network.png").is_file() and 'id="bimt-explorer"' in page
    assert '"sliders"' in page and "independence, step 200" in page  # the snapshots' slider
    assert "network.html" in capsys.readouterr().out


def test_html_without_plotly_is_one_error_line_before_training(tmp_path, capsys,
                                                               monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "plotly", None)
    monkeypatch.setitem(sys.modules, "plotly.graph_objects", None)
    out = tmp_path / "run"
    assert main(["train", "independence", "--steps", "200", "--out", str(out), "--html"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert "pip install 'physics-of-ai[explore]'" in err
    assert not out.exists()  # nothing trained, nothing written
