"""The ``bimt`` command line, through ``main(argv)`` and one real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import bimt
from bimt.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_tasks_lists_every_contract_task(capsys) -> None:
    assert main(["tasks"]) == 0
    out = capsys.readouterr().out
    for name in ("independence", "feature-sharing", "compositionality", "two-moons",
                 "modular-addition", "permutation-s4", "digits"):
        assert any(line.startswith(name + " ") for line in out.splitlines())


def test_train_independence_writes_contract_files(tmp_path, capsys) -> None:
    out = tmp_path / "run"
    assert main(["train", "independence", "--steps", "400", "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("test_loss", "connection_cost", "modules", "seconds"):
        assert key in metrics
    assert metrics["task"] == "independence" and metrics["steps"] == 400
    assert all(set(m) >= {"inputs", "outputs"} for m in metrics["modules"])
    assert (out / "network.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "training.gif").read_bytes()[:3] == b"GIF"
    assert (out / "checkpoint.pt").is_file()
    assert "test loss" in capsys.readouterr().out
    # the snapshots the animation used, plain data for an explorer to scrub
    doc = torch.load(out / "snapshots.pt", weights_only=True)
    assert doc["format"] == "bimt-snapshots" and doc["model"]["class"] == "BioMLP"
    assert [s["step"] for s in doc["snapshots"]] == [0, 200, 400]
    model = bimt.BioMLP(doc["model"]["widths"])
    model.load_state_dict(doc["snapshots"][-1]["state"], strict=False)
    assert bimt.modules(model) == [bimt.Module(frozenset(m["inputs"]), frozenset(m["outputs"]),
                                               m["neurons"]) for m in metrics["modules"]]
    # same command again: resumes from the finished checkpoint, same result
    assert main(["train", "independence", "--steps", "400", "--out", str(out)]) == 0
    again = json.loads((out / "metrics.json").read_text())
    assert again["resumed_from"] == 400 and again["test_loss"] == metrics["test_loss"]


@pytest.mark.parametrize("argv,message", [
    (["train", "sudoku"], "Unknown task 'sudoku'; choose one of: independence"),
    (["train", "independence", "--steps", "-3"], "--steps: must be a positive integer"),
    (["train", "independence", "--steps", "ten"], "--steps: must be a positive integer"),
    (["train", "independence", "--device", "quantum"], "must be 'auto', 'cpu', 'cuda'"),
    (["fly"], "invalid choice"),
    ([], "required"),
])
def test_bad_input_is_one_error_line_and_status_2(argv, message, capsys, tmp_path) -> None:
    assert main([*argv, *(["--out", str(tmp_path / "o")] if argv[:1] == ["train"] else [])]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "o").exists()


def test_unwritable_out_dir_writes_nothing(tmp_path, capsys) -> None:
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a directory")
    assert main(["train", "independence", "--steps", "10", "--out",
                 str(blocker / "run")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: The output directory") and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]


def test_corrupt_checkpoint_in_out_dir_is_refused(tmp_path, capsys) -> None:
    (tmp_path / "checkpoint.pt").write_bytes(b"garbage")
    assert main(["train", "independence", "--steps", "10", "--out", str(tmp_path)]) == 2
    assert "is corrupt or unreadable" in capsys.readouterr().err
    assert not (tmp_path / "metrics.json").exists()


def test_console_script_runs_as_a_process(tmp_path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "bimt.cli", "train", "nope"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.startswith("error: Unknown task 'nope'")
    assert "Traceback" not in proc.stderr


def test_run_task_analyses_once_and_reads_back(tmp_path) -> None:
    run = bimt.run_task("two-moons", tmp_path, steps=200, progress=False)
    assert run.metrics["modules"] == [m.to_dict() for m in run.analysis.modules]
    assert run.metrics["test_accuracy"] == run.history.test_accuracy
    assert run.metrics["active_neurons"] == run.analysis.active_neurons
    assert run.metrics["model"]["widths"] == [2, 20, 20, 2]
    doc = bimt.load_snapshots(tmp_path)
    assert len(doc["snapshots"]) == len(run.history.snapshots) == 2
    with pytest.raises(ValueError, match="does not exist"):
        bimt.load_snapshots(tmp_path / "nowhere")
    (tmp_path / "bad.pt").write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="is unreadable"):
        bimt.load_snapshots(tmp_path / "bad.pt")
    torch.save({"format": "other"}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a bimt snapshots file"):
        bimt.load_snapshots(tmp_path / "other.pt")
