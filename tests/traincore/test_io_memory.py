import os

import pytest

import traincore.io as tio
from traincore import (
    MemoryBudgetError,
    atomic_write,
    atomic_write_json,
    check_memory,
    ensure_writable_dir,
    memory_budget,
)


def test_atomic_write_keeps_old_file_on_failure(tmp_path):
    target = tmp_path / "out.json"
    atomic_write_json(target, {"a": 1})
    with pytest.raises(RuntimeError):
        with atomic_write(target, "w") as fh:
            fh.write('{"a": 2, "half')
            raise RuntimeError("crash in the middle of writing")
    assert target.read_text() == '{\n  "a": 1\n}\n'
    assert sorted(os.listdir(tmp_path)) == ["out.json"]  # no temp file left behind


def test_atomic_write_crash_at_rename(tmp_path, monkeypatch):
    target = tmp_path / "x.txt"
    target.write_text("old")

    def boom(src, dst):
        raise OSError("disk vanished")

    monkeypatch.setattr(tio.os, "replace", boom)
    with pytest.raises(OSError):
        tio.atomic_write_text(target, "new")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["x.txt"]


def test_atomic_write_bad_mode(tmp_path):
    with pytest.raises(ValueError, match="'mode' must be"):
        with atomic_write(tmp_path / "a", "a"):
            pass


def test_ensure_writable_dir(tmp_path):
    assert ensure_writable_dir(tmp_path / "a" / "b").is_dir()
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ValueError, match="cannot be created"):
        ensure_writable_dir(blocker / "sub")


def test_memory_budget(monkeypatch):
    monkeypatch.setenv("TRAINCORE_MEMORY_BUDGET", "1M")
    assert memory_budget() == 2**20
    check_memory(1000, "a small array", "no hint needed")
    with pytest.raises(MemoryBudgetError, match=r"the big matrix needs about 2\.0 MiB.*lower "
                                                r"--degree \(or raise TRAINCORE_MEMORY_BUDGET\)"):
        check_memory(2 * 2**20, "the big matrix", "lower --degree")
    monkeypatch.setenv("TRAINCORE_MEMORY_BUDGET", "lots")
    with pytest.raises(MemoryBudgetError, match="must be a size such as 2G"):
        memory_budget()
    monkeypatch.delenv("TRAINCORE_MEMORY_BUDGET")
    assert memory_budget() > 2**20
