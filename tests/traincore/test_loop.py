import json
import os
import signal

import pytest
import torch

from traincore import (
    CheckpointError,
    Every,
    NonFiniteError,
    fit,
    load_checkpoint,
    seed_everything,
)


class Job:
    """A tiny regression whose every step consumes RNG (batch choice and dropout)."""

    def __init__(self, seed=0):
        seed_everything(seed)
        self.x = torch.randn(64, 3)
        self.y = self.x[:, :1] * 2 - self.x[:, 1:2]
        self.model = torch.nn.Sequential(torch.nn.Linear(3, 16), torch.nn.Dropout(0.2),
                                         torch.nn.SiLU(), torch.nn.Linear(16, 1))
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=1e-2)
        self.state = {"model": self.model, "optimizer": self.opt}

    def step(self, i, values):
        idx = torch.randint(0, 64, (16,))
        loss = ((self.model(self.x[idx]) - self.y[idx]) ** 2).mean() * values.get("scale", 1.0)
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        return {"loss": loss.detach()}

    def params(self):
        return [p.detach().clone() for p in self.model.parameters()]


def test_history_logging_and_schedules(tmp_path):
    job = Job()
    seen = []
    hist = fit(job.step, 50, state=job.state, log_every=10, log_path=tmp_path / "log.jsonl",
               schedules={"scale": lambda s: 1.0 if s < 25 else 0.5},
               callbacks=[Every(20, lambda loop: seen.append(loop.step))])
    assert hist.steps == 50 and hist.status == "finished"
    assert [r["step"] for r in hist.rows] == [10, 20, 30, 40, 50]
    assert hist["scale"] == [1.0, 1.0, 0.5, 0.5, 0.5]
    assert seen == [20, 40]
    rows = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [10, 20, 30, 40, 50]
    assert rows[-1]["loss"] == pytest.approx(hist.last("loss"))
    assert "History(steps=50" in repr(hist)


def test_resume_after_interruption_is_bit_identical(tmp_path):
    ref = Job(seed=1)
    fit(ref.step, 60, state=ref.state, log_every=10)
    expected = ref.params()

    def crash(loop):
        raise KeyboardInterrupt  # as if Ctrl-C arrived between steps 30 and 31

    job = Job(seed=1)
    with pytest.raises(KeyboardInterrupt):
        fit(job.step, 60, state=job.state, log_every=10, checkpoint_dir=tmp_path,
            checkpoint_every=10, callbacks=[Every(35, crash)], log_path=tmp_path / "log.jsonl")
    assert load_checkpoint(tmp_path / "checkpoint.pt")["step"] == 30

    # a brand-new process: fresh objects, different global RNG, then resume
    seed_everything(999)
    job2 = Job(seed=1)
    seed_everything(12345)
    hist = fit(job2.step, 60, state=job2.state, log_every=10, checkpoint_dir=tmp_path,
               checkpoint_every=10, log_path=tmp_path / "log.jsonl")
    assert hist.resumed_from == 30
    for a, b in zip(job2.params(), expected, strict=True):
        assert torch.equal(a, b)
    # the log holds each step once, the steps logged before the crash past 30 dropped
    steps = [json.loads(line)["step"] for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert steps == [10, 20, 30, 40, 50, 60]
    assert [r["step"] for r in hist.rows] == [10, 20, 30, 40, 50, 60]


def test_sigint_saves_checkpoint_then_exits(tmp_path):
    job = Job()

    def press_ctrl_c(loop):
        os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        fit(job.step, 100, state=job.state, checkpoint_dir=tmp_path,
            callbacks=[Every(17, press_ctrl_c)])
    assert load_checkpoint(tmp_path / "checkpoint.pt")["step"] == 17
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_nan_guard_stops_and_keeps_last_good_checkpoint(tmp_path):
    job = Job()

    def step(i, values):
        out = job.step(i, values)
        return {"loss": out["loss"] * (float("nan") if i >= 25 else 1.0)}

    with pytest.raises(NonFiniteError, match=r"step 30: metric 'loss' is nan; the last good "
                                             r"checkpoint .* \(step 20\) is kept"):
        fit(step, 100, state=job.state, log_every=10, checkpoint_dir=tmp_path,
            checkpoint_every=10)
    assert load_checkpoint(tmp_path / "checkpoint.pt")["step"] == 20


def test_nan_guard_without_checkpoints():
    with pytest.raises(NonFiniteError, match="no checkpoint was written"):
        fit(lambda i, v: {"loss": torch.tensor(float("inf"))}, 5, log_every=1)


def test_stop_request_saves(tmp_path):
    job = Job()
    hist = fit(job.step, 100, state=job.state, checkpoint_dir=tmp_path,
               callbacks=[Every(7, lambda loop: loop.stop("converged"))])
    assert hist.status == "stopped: converged" and hist.steps == 7
    assert load_checkpoint(tmp_path / "checkpoint.pt")["step"] == 7


def test_crash_during_checkpoint_save_keeps_previous(tmp_path, monkeypatch):
    job = Job()
    fit(job.step, 10, state=job.state, checkpoint_dir=tmp_path)
    before = (tmp_path / "checkpoint.pt").read_bytes()

    def dying_replace(src, dst):
        raise OSError("power cut")  # the temp file is complete, the rename never happens

    job2 = Job()
    with monkeypatch.context() as m:
        m.setattr(os, "replace", dying_replace)
        with pytest.raises(OSError, match="power cut"):
            fit(job2.step, 20, state=job2.state, checkpoint_dir=tmp_path)
    assert (tmp_path / "checkpoint.pt").read_bytes() == before
    assert os.listdir(tmp_path) == ["checkpoint.pt"]


def test_corrupt_and_foreign_checkpoints(tmp_path):
    (tmp_path / "checkpoint.pt").write_bytes(b"PK\x03\x04 truncated garbage")
    job = Job()
    with pytest.raises(CheckpointError, match="corrupt or unreadable"):
        fit(job.step, 5, state=job.state, checkpoint_dir=tmp_path)
    torch.save({"weights": torch.zeros(2)}, tmp_path / "checkpoint.pt")
    with pytest.raises(CheckpointError, match="not a traincore checkpoint"):
        fit(job.step, 5, state=job.state, checkpoint_dir=tmp_path)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")


def test_resume_with_other_config_is_refused(tmp_path):
    job = Job()
    fit(job.step, 5, state=job.state, checkpoint_dir=tmp_path, config={"lr": 0.01, "w": 3})
    with pytest.raises(CheckpointError, match="different config.*differs in lr"):
        fit(job.step, 10, state=job.state, checkpoint_dir=tmp_path, config={"lr": 0.1, "w": 3})
    hist = fit(job.step, 10, state=job.state, checkpoint_dir=tmp_path, resume=False,
               config={"lr": 0.1, "w": 3})
    assert hist.resumed_from is None and hist.steps == 10


@pytest.mark.parametrize("kwargs,match", [({"steps": -1}, "'steps'"),
                                          ({"steps": 3, "log_every": -2}, "'log_every'")])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        fit(lambda i, v: {}, **kwargs)
