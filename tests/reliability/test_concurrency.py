"""Two runs with the same output directory: the second is refused at once, with a clear
error naming the first; the first's log is never interleaved; no stale lock afterwards."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from traincore import LOCK_NAME, load_checkpoint

pytestmark = [pytest.mark.reliability, pytest.mark.slow]

BIN = Path(sys.executable).parent


def _wait_for_lock(proc: subprocess.Popen, out: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        lock = out / LOCK_NAME
        if lock.exists() and f"pid={proc.pid}" in lock.read_text():
            return
        time.sleep(0.05)
    raise AssertionError("the first run never took the lock")


def test_second_bimt_train_in_the_same_out_is_refused(tmp_path):
    out = tmp_path / "run"
    cmd = [str(BIN / "bimt"), "train", "independence", "--out", str(out)]
    first = subprocess.Popen([*cmd, "--steps", "200000"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_lock(first, out)
        second = subprocess.run([*cmd, "--steps", "300"], capture_output=True, text=True,
                                timeout=300)
        assert second.returncode == 2
        assert second.stderr.startswith(f"error: The output directory '{out}' is in use by "
                                        f"another run (pid {first.pid}, ")
        assert "bimt train independence --out" in second.stderr
        assert second.stderr.endswith("or give this run another output directory (--out).\n")
        assert second.stderr.count("\n") == 1
    finally:
        first.send_signal(signal.SIGTERM)
        _, err = first.communicate(timeout=120)
    assert first.returncode == 143, err
    # the first run's log: its own rows only, in order, each line whole
    steps = [json.loads(line)["step"] for line in (out / "log.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps)) and steps
    assert not (out / LOCK_NAME).exists()  # released on the way out
    assert load_checkpoint(out / "checkpoint.pt")["step"] > 0  # SIGTERM kept the work
    # the lock went with its holder: a new run can use the directory at once
    again = subprocess.run([*cmd, "--steps", "300", "--fresh"], capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 0, again.stderr
    assert json.loads((out / "metrics.json").read_text())["steps"] == 300
