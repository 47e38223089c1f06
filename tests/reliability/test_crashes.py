"""Real crashes: processes killed with SIGKILL at seeded random moments, and SIGTERM.

Only the stable command lines and the public API are driven here:

- ``bimt train`` killed at random moments and run again until it finishes ends with the
  same checkpoint (weights, optimizer moments, RNG-dependent history) and the same metrics
  as a run that was never interrupted, bit for bit;
- ``bimt.train`` with frequent checkpoints, killed at random steps and inside a checkpoint
  write, resumes to the same bits;
- ``aipoincare discover --json X --plot Y`` killed at random moments leaves either no
  output or complete outputs, never half a file;
- ``SIGTERM`` works like Ctrl-C: a checkpoint is written, exit status 143.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from traincore import load_checkpoint

pytestmark = [pytest.mark.reliability, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
#: Keys of metrics.json that describe the run, not its result.
RUN_KEYS = {"seconds", "total_seconds", "resumed_from", "swap_seconds", "status"}


def _same(a, b, where="state") -> None:
    """Assert two checkpoint payloads are equal bit for bit (tensors with torch.equal)."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for k in a:
            _same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{where}[{i}]")
    else:
        assert a == b or (a != a and b != b), f"{where}: {a!r} != {b!r}"


def _payload(path: Path) -> dict:
    """A checkpoint without its wall-clock times (the only thing a resume may change)."""
    ck = load_checkpoint(path)
    ck.pop("seconds")
    ck["states"].get("bimt", {}).pop("swap_seconds", None)
    return ck


def _wait_for_handler(proc: subprocess.Popen, signum: int, timeout: float = 120) -> None:
    """Wait until ``proc`` catches ``signum`` (Linux: the SigCgt mask in /proc/PID/status),
    i.e. until it is past its imports and inside the command."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        status = Path(f"/proc/{proc.pid}/status").read_text()
        caught = int(next(line.split()[1] for line in status.splitlines()
                          if line.startswith("SigCgt:")), 16)
        if caught & (1 << (signum - 1)):
            return
        time.sleep(0.05)
    raise AssertionError(f"the process never installed a handler for signal {signum}")


def _result(out: Path) -> tuple[dict, dict]:
    ck = _payload(out / "checkpoint.pt")
    metrics = json.loads((out / "metrics.json").read_text())
    return ck, {k: v for k, v in metrics.items() if k not in RUN_KEYS}


def _temps(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.name.endswith(".tmp"))


# ------------------------------------------------------------------ bimt train (command line)

def test_bimt_train_killed_at_random_moments_resumes_bit_identically(tmp_path):
    cmd = [str(BIN / "bimt"), "train", "independence", "--steps", "600", "--seed", "3"]
    start = time.perf_counter()
    ref = subprocess.run([*cmd, "--out", str(tmp_path / "ref")], capture_output=True,
                         text=True, timeout=300)
    full = time.perf_counter() - start
    assert ref.returncode == 0, ref.stderr
    rng = random.Random(13)
    out = tmp_path / "run"
    kills = 0
    for _ in range(2):
        delay = rng.uniform(0.3, full)
        proc = subprocess.Popen([*cmd, "--out", str(out)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        time.sleep(delay)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
        if (out / "checkpoint.pt").exists():  # whatever is there is whole and loadable
            load_checkpoint(out / "checkpoint.pt")
        if (out / "metrics.json").exists():
            json.loads((out / "metrics.json").read_text())
    assert kills >= 1
    final = subprocess.run([*cmd, "--out", str(out)], capture_output=True, text=True,
                           timeout=300)
    assert final.returncode == 0, final.stderr
    ck_ref, m_ref = _result(tmp_path / "ref")
    ck, m = _result(out)
    _same(ck, ck_ref)
    assert m == m_ref
    assert _temps(out) == []


# ------------------------------------------------------- bimt.train, frequent checkpoints

TRAIN = textwrap.dedent("""
    import sys, time, bimt, traincore
    import traincore.io as tio
    out, kill_at, in_write = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"

    if in_write:  # announce the checkpoint write and linger inside it, for the kill
        flush = tio._Staged.flush
        def slow_flush(self):
            if self.path.name == "checkpoint.pt" and kill_at >= 0:
                print("writing", flush=True)
                time.sleep(30)
            flush(self)
        tio._Staged.flush = slow_flush

    class Beacon(traincore.Callback):
        def on_step_end(self, loop):
            if loop.step == kill_at and not in_write:
                print("step", loop.step, flush=True)
                time.sleep(30)

    task = bimt.get_task("independence")
    data = task.make(0)
    model = bimt.BioMLP([4, 20, 20, 2], seed=0)
    bimt.train(model, data.x_train, data.y_train, steps=800, seed=0, x_test=data.x_test,
               y_test=data.y_test, checkpoint_dir=out, log_path=f"{out}/log.jsonl",
               checkpoint_every=50, progress=False, callbacks=[Beacon()])
    print("done", flush=True)
""")


def _train(out: Path, kill_at: int, in_write: bool = False) -> None:
    """Run TRAIN; SIGKILL it when it reaches ``kill_at`` (or its next checkpoint write)."""
    proc = subprocess.Popen([sys.executable, "-c", TRAIN, str(out), str(kill_at),
                             "1" if in_write else "0"], stdout=subprocess.PIPE, text=True,
                            cwd=ROOT)
    line = proc.stdout.readline().strip()
    if kill_at >= 0:
        assert line in ("writing", f"step {kill_at}"), line
        proc.send_signal(signal.SIGKILL)
    else:
        assert line == "done", line
    proc.wait(timeout=300)
    proc.stdout.close()


def test_bimt_train_api_killed_mid_run_and_mid_checkpoint_write(tmp_path):
    _train(tmp_path / "ref", -1)
    rng = random.Random(7)
    first = rng.randrange(1, 500)  # random moments, seeded
    second = rng.randrange(first + 101, 800)  # past the checkpoint the next runs resume from
    out = tmp_path / "run"
    _train(out, first)
    _train(out, first, in_write=True)  # killed inside its first checkpoint write
    leftovers = _temps(out)
    assert len(leftovers) == 1 and leftovers[0].startswith(".checkpoint.pt.")
    _train(out, second)
    _train(out, -1)
    _same(_payload(out / "checkpoint.pt"), _payload(tmp_path / "ref" / "checkpoint.pt"))
    assert (out / "log.jsonl").read_text() == (tmp_path / "ref" / "log.jsonl").read_text()
    assert _temps(out) == []  # the dead writer's temporary file was cleaned up


# ------------------------------------------------------------------ aipoincare discover

def test_aipoincare_discover_killed_leaves_no_partial_output(tmp_path):
    base = [str(BIN / "aipoincare"), "discover", "lotka_volterra_3", "--quiet"]
    start = time.perf_counter()
    ref = subprocess.run([*base, "--json", str(tmp_path / "ref.json"), "--plot",
                          str(tmp_path / "ref.png")], capture_output=True, text=True,
                         timeout=300)
    full = time.perf_counter() - start
    assert ref.returncode == 0, ref.stderr
    rng = random.Random(11)
    for k in range(3):
        out = tmp_path / f"kill{k}"
        out.mkdir()
        proc = subprocess.Popen([*base, "--json", str(out / "x.json"), "--plot",
                                 str(out / "y.png")], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.2, full * 1.05))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        names = sorted(os.listdir(out))
        # nothing, or everything whole: never half a file, never one output without the other
        assert names in ([], ["x.json", "y.png"]), names
        if names:
            assert json.loads((out / "x.json").read_text())["nullity"] == 4
            assert (out / "y.png").read_bytes()[:4] == b"\x89PNG"


# ------------------------------------------------------------------ SIGTERM

def test_sigterm_bimt_train_writes_checkpoint_and_exits_143(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen([str(BIN / "bimt"), "train", "independence", "--steps", "200000",
                             "--out", str(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().startswith("bimt: training independence")
    time.sleep(1.0)  # inside the training loop
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 143, stderr
    assert stderr == ("error: terminated by SIGTERM: interrupted; the checkpoint of the last "
                      "completed step is kept (run the same command again to resume)\n")
    step = load_checkpoint(out / "checkpoint.pt")["step"]
    assert 0 < step < 200000
    assert not (out / "metrics.json").exists() and _temps(out) == []


def test_sigterm_aipoincare_discover_exits_143_without_output(tmp_path):
    proc = subprocess.Popen([str(BIN / "aipoincare"), "discover", "fluid_3d", "--json",
                             str(tmp_path / "x.json")], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    _wait_for_handler(proc, signal.SIGTERM)
    time.sleep(0.5)  # inside the discovery
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 143, stderr
    assert stderr == ("error: terminated by SIGTERM: interrupted; no output files were "
                      "written.\n")
    assert os.listdir(tmp_path) == []
