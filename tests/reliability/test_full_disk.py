"""Full disks and read-only places: one clear error, the previous file intact, no temp file.

Two ways to fill a disk for real: a file-size limit (RLIMIT_FSIZE in a child process: a
write past it fails with EFBIG, always available) and a 256 KiB tmpfs (ENOSPC; needs the
privilege to mount, skipped without it). Read-only places: a path under a regular file
(ENOTDIR) and /sys (EACCES even for root) always; a read-only mount (EROFS) and a chmod'ed
folder (EACCES) where the privileges allow.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
from pathlib import Path

import pytest
import torch

import traincore
from traincore import (
    WriteError,
    atomic_write,
    atomic_write_json,
    atomic_write_text,
    fit,
    load_checkpoint,
    save_checkpoint,
)

pytestmark = pytest.mark.reliability


def _listing(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))


# ---------------------------------------------------------------- file-size limit (EFBIG)

FSIZE_SCENARIOS = """
import json, os, sys, torch, traincore
from pathlib import Path
out = {{}}
d = Path(sys.argv[1]) if len(sys.argv) > 1 else Path({dir!r})

# 1. a checkpoint over the limit: one WriteError, the previous checkpoint intact
traincore.save_checkpoint(d / "checkpoint.pt", {{"w": torch.zeros(10)}})
try:
    traincore.save_checkpoint(d / "checkpoint.pt", {{"w": torch.zeros(100_000)}})
    out["ckpt"] = "no error"
except traincore.WriteError as exc:
    out["ckpt"] = [exc.errno, str(exc)]
out["ckpt_after"] = traincore.load_checkpoint(d / "checkpoint.pt")["w"].numel()

# 2. a text output and several outputs at once
traincore.atomic_write_text(d / "report.txt", "old report")
try:
    traincore.atomic_write_many({{d / "a.json": "{{}}", d / "report.txt": "x" * 200_000}})
    out["many"] = "no error"
except OSError as exc:
    out["many"] = [type(exc).__name__, exc.errno, str(exc)]
out["report_after"] = (d / "report.txt").read_text()
out["a_exists"] = (d / "a.json").exists()

# 3. training: checkpoints that grow until one no longer fits
class Growing:
    def __init__(self):
        self.data = []
    def state_dict(self):
        return {{"data": torch.tensor(self.data, dtype=torch.float64)}}
    def load_state_dict(self, s):
        self.data = s["data"].tolist()
g = Growing()
def step(i, values):
    g.data.extend([float(i)] * 1000)
    return {{"loss": 1.0 / (i + 1)}}
try:
    traincore.fit(step, 100, state={{"g": g}}, checkpoint_dir=d / "run", checkpoint_every=2,
                  log_every=1, log_path=d / "run" / "log.jsonl")
    out["fit"] = "no error"
except OSError as exc:
    out["fit"] = [type(exc).__name__, exc.errno, str(exc)]
ck = traincore.load_checkpoint(d / "run" / "checkpoint.pt")
out["fit_ckpt_step"] = ck["step"]
out["fit_ckpt_len"] = len(ck["states"]["g"]["data"])
# 4. a result table (sweeps): a batch that does not fit leaves the earlier rows, whole
t = traincore.ResultTable(d / "rows.jsonl", ("seed",))
t.append([{{"seed": 0, "x": 1.0}}])
try:
    t.append([{{"seed": i, "pad": "x" * 1000}} for i in range(1, 200)])
    out["table"] = "no error"
except OSError as exc:
    out["table"] = [type(exc).__name__, exc.errno, str(exc)]
out["table_rows"] = [r["seed"] for r in traincore.ResultTable(d / "rows.jsonl", ("seed",)).rows()]
out["listing"] = sorted(os.listdir(d))
out["run_listing"] = sorted(os.listdir(d / "run"))
print(json.dumps(out))
"""


def test_file_size_limit_gives_one_error_and_keeps_previous_files(tmp_path, py):
    limit = 64 * 1024
    proc = py(FSIZE_SCENARIOS.format(dir=str(tmp_path)), fsize=limit)
    res = py.json(proc)
    code, msg = res["ckpt"]
    assert code == errno.EFBIG
    assert msg == (f"Cannot write '{tmp_path / 'checkpoint.pt'}': the file is over the "
                   "file-size limit (File too large); raise the limit (ulimit -f) or write "
                   "elsewhere. Any previous file of that name is unchanged.")
    assert res["ckpt_after"] == 10  # the previous checkpoint, whole
    kind, code, msg = res["many"]
    assert (kind, code) == ("WriteError", errno.EFBIG) and "report.txt" in msg
    assert res["report_after"] == "old report" and not res["a_exists"]  # all or nothing
    kind, code, msg = res["fit"]
    assert (kind, code) == ("WriteError", errno.EFBIG) and "checkpoint.pt" in msg
    # the last checkpoint that fitted is intact and consistent with its step
    assert res["fit_ckpt_len"] == 1000 * res["fit_ckpt_step"] and res["fit_ckpt_step"] >= 2
    kind, code, msg = res["table"]
    assert (kind, code) == ("WriteError", errno.EFBIG) and "rows.jsonl" in msg
    assert res["table_rows"] == [0]  # the earlier row, and no torn batch
    assert res["listing"] == ["checkpoint.pt", "report.txt", "rows.jsonl", "run"]  # no temp
    assert res["run_listing"] == ["checkpoint.pt", "log.jsonl"]
    rows = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text()
            .splitlines()]
    assert rows and all(set(r) == {"step", "loss"} for r in rows)  # whole lines only


RESUMABLE = """
import json, sys, torch, traincore
from pathlib import Path
d = Path({dir!r})
torch.manual_seed(0)
w = torch.nn.Parameter(torch.zeros(400, dtype=torch.float64))
opt = torch.optim.Adam([w], lr=0.01)
target = torch.linspace(-1, 1, 400, dtype=torch.float64)

class Trace:  # the weights after every step: a checkpoint grows by 3.2 KB a step
    def __init__(self):
        self.rows = []
    def state_dict(self):
        return {{"rows": torch.stack(self.rows) if self.rows else torch.zeros(0, 400)}}
    def load_state_dict(self, s):
        self.rows = list(s["rows"].to(torch.float64))
trace = Trace()

def step(i, values):
    opt.zero_grad()
    loss = ((w - target) ** 2).mean() + 1e-3 * torch.randn(()).double()  # uses the RNG
    loss.backward()
    opt.step()
    trace.rows.append(w.detach().clone())
    return {{"loss": loss.detach()}}

try:
    traincore.fit(step, 40, state={{"opt": opt, "w": torch.nn.ParameterList([w]),
                                   "trace": trace}},
                  checkpoint_dir=d, checkpoint_every=10, log_every=5, log_path=d / "log.jsonl")
    status = "finished"
except OSError as exc:
    status = type(exc).__name__
ck = traincore.load_checkpoint(d / "checkpoint.pt")
print(json.dumps({{"status": status, "step": ck["step"], "w": w.detach().tolist(),
                  "trace": torch.stack(trace.rows).sum().item()}}))
"""


def test_resume_after_full_disk_is_bit_identical(tmp_path, py):
    """A run stopped by a full disk resumes, once space is freed, to the very same result."""
    ref = py.json(py(RESUMABLE.format(dir=str(tmp_path / "ref"))))
    assert ref["status"] == "finished" and ref["step"] == 40
    # checkpoints of steps 10 and 20 fit under 107 KB (59, 91 KB); the one of step 30 (123 KB)
    # does not
    first = py.json(py(RESUMABLE.format(dir=str(tmp_path / "run")), fsize=107_000))
    assert (first["status"], first["step"]) == ("WriteError", 20)
    second = py.json(py(RESUMABLE.format(dir=str(tmp_path / "run"))))
    assert (second["status"], second["step"]) == ("finished", 40)
    assert second["w"] == ref["w"] and second["trace"] == ref["trace"]  # bit-identical
    assert _listing(tmp_path / "run") == ["checkpoint.pt", "log.jsonl"]
    assert (tmp_path / "run" / "log.jsonl").read_text() == \
        (tmp_path / "ref" / "log.jsonl").read_text()


# ---------------------------------------------------------------- a really full tmpfs (ENOSPC)

def _fill(path: Path) -> None:
    """Fill the file system of ``path`` to the last byte (unbuffered: nothing left to flush)."""
    with open(path, "wb", buffering=0) as fh:
        with contextlib.suppress(OSError):
            while True:
                fh.write(b"\0" * 4096)
        with contextlib.suppress(OSError):
            while True:
                if not fh.write(b"\0"):
                    break


def test_full_tmpfs_checkpoint_and_outputs(tiny_tmpfs):
    save_checkpoint(tiny_tmpfs / "checkpoint.pt", {"w": torch.arange(10.0)})
    with pytest.raises(WriteError, match=r"^Cannot write '.*checkpoint\.pt': the disk is full "
                                         r"\(No space left on device\); free some space or "
                                         r"write elsewhere\. Any previous file of that name "
                                         r"is unchanged\.$") as info:
        save_checkpoint(tiny_tmpfs / "checkpoint.pt", {"w": torch.zeros(200_000)})
    assert info.value.errno == errno.ENOSPC
    assert torch.equal(load_checkpoint(tiny_tmpfs / "checkpoint.pt")["w"], torch.arange(10.0))
    with pytest.raises(WriteError, match="the disk is full"):
        atomic_write_text(tiny_tmpfs / "big.txt", "x" * 400_000)
    with pytest.raises(WriteError, match="the disk is full"):
        with atomic_write(tiny_tmpfs / "big.bin", "wb") as fh:
            for _ in range(100):
                fh.write(b"\0" * 8192)
    assert _listing(tiny_tmpfs) == ["checkpoint.pt"]  # no temporary file, no partial output


def test_full_tmpfs_during_training_keeps_last_checkpoint_and_whole_log_lines(tiny_tmpfs):
    torch.manual_seed(0)
    w = torch.nn.Parameter(torch.zeros(1000))
    opt = torch.optim.SGD([w], lr=0.1)
    filler = tiny_tmpfs / "filler"
    filled = []

    def step(i, values):
        if i == 12 and not filled:  # something else fills the disk mid-run (once)
            _fill(filler)
            filled.append(i)
        opt.zero_grad()
        loss = ((w - 1) ** 2).sum()
        loss.backward()
        opt.step()
        return {"loss": loss.detach()}

    with pytest.raises(WriteError, match="the disk is full") as info:
        fit(step, 50, state={"opt": opt}, checkpoint_dir=tiny_tmpfs / "run",
            checkpoint_every=5, log_every=1, log_path=tiny_tmpfs / "run" / "log.jsonl")
    assert info.value.errno == errno.ENOSPC
    assert load_checkpoint(tiny_tmpfs / "run" / "checkpoint.pt")["step"] == 10
    lines = (tiny_tmpfs / "run" / "log.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == list(range(1, len(lines) + 1))
    assert _listing(tiny_tmpfs / "run") == ["checkpoint.pt", "log.jsonl"]
    filler.unlink()
    hist = fit(step, 50, state={"opt": opt}, checkpoint_dir=tiny_tmpfs / "run",
               checkpoint_every=5, log_every=1, log_path=tiny_tmpfs / "run" / "log.jsonl")
    assert hist.resumed_from == 10 and hist.steps == 50


def test_lock_on_full_tmpfs_still_locks(tiny_tmpfs):
    _fill(tiny_tmpfs / "filler")
    with traincore.lock_directory(tiny_tmpfs) as lock:  # the note may not fit; the lock does
        assert lock.held
        with pytest.raises(traincore.DirectoryLockedError):
            traincore.DirectoryLock(tiny_tmpfs).acquire()


# ---------------------------------------------------------------- read-only places

def test_path_under_a_regular_file(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("keep")
    with pytest.raises(WriteError, match=r"^Cannot write '.*file/out\.json': a part of the "
                                         r"path is a file, not a folder") as info:
        atomic_write_json(blocker / "out.json", {"a": 1})
    assert info.value.errno in (errno.ENOTDIR, errno.EEXIST)
    with pytest.raises(WriteError, match="a part of the path is a file"):
        save_checkpoint(blocker / "sub" / "checkpoint.pt", {"a": 1})
    assert blocker.read_text() == "keep" and _listing(tmp_path) == ["file"]


def test_sys_is_not_writable_even_for_root():
    with pytest.raises(WriteError, match=r"^Cannot write '/sys/traincore-probe\.json': "
                                         r"(permission denied|the file system is read-only)"):
        atomic_write_text("/sys/traincore-probe.json", "{}")


def test_read_only_mount(readonly_mount):
    """Root-dependent: needs the privilege to mount (skipped without it)."""
    with pytest.raises(WriteError, match=r"the file system is read-only \(Read-only file "
                                         r"system\); choose a writable directory") as info:
        save_checkpoint(readonly_mount / "checkpoint.pt", {"a": 1})
    assert info.value.errno == errno.EROFS
    with pytest.raises(OSError, match="cannot be locked"):
        traincore.DirectoryLock(readonly_mount).acquire()


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="root ignores permission bits (the /sys and mount cases cover it)")
def test_read_only_folder_for_a_normal_user(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    atomic_write_text(folder / "old.txt", "old")
    folder.chmod(0o555)
    try:
        with pytest.raises(WriteError, match="permission denied"):
            atomic_write_text(folder / "old.txt", "new")
        assert (folder / "old.txt").read_text() == "old"
    finally:
        folder.chmod(0o755)
