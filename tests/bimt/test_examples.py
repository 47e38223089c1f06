"""The bimt example scripts run end to end (few steps) and print what they promise."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.parametrize("script,expect", [
    ("bimt_independence.py", ["test MSE", "Module({", "pruning weights", "snapshots"]),
    ("bimt_own_loop.py", ["test MSE", "swaps"]),
])
def test_example_script_runs(script, expect, tmp_path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / script), "400"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    for piece in expect:
        assert piece in proc.stdout, (piece, proc.stdout)
    if script == "bimt_independence.py":
        files = {p.name for p in (tmp_path / "out" / "bimt-example").iterdir()}
        assert files >= {"metrics.json", "network.png", "training.gif", "snapshots.pt"}
