"""Files written atomically get the usual permissions under the user's umask (0o666 & ~umask),
not the 0o600 of a private temporary file; through the API and aipoincare's command line."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from traincore import atomic_write, atomic_write_json, atomic_write_many, atomic_write_text


@pytest.fixture
def umask() -> Iterator[object]:
    old = os.umask(0o022)
    try:
        yield os.umask
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077, 0o027])
def test_atomic_writes_follow_the_umask(tmp_path: Path, umask, mask: int) -> None:  # noqa: ANN001
    umask(mask)
    want = 0o666 & ~mask
    atomic_write_text(tmp_path / "a.txt", "x")
    atomic_write_json(tmp_path / "b.json", {"a": 1})
    with atomic_write(tmp_path / "c.bin", "wb") as fh:
        fh.write(b"\0")
    atomic_write_many({tmp_path / "d.txt": "y", tmp_path / "e.bin": b"z"})
    for name in ("a.txt", "b.json", "c.bin", "d.txt", "e.bin"):
        assert _mode(tmp_path / name) == want, (name, oct(_mode(tmp_path / name)), oct(want))


def test_replacing_a_file_gives_the_usual_mode(tmp_path: Path, umask) -> None:  # noqa: ANN001
    path = tmp_path / "out.json"
    path.write_text("old")
    path.chmod(0o600)  # e.g. written by an older version
    umask(0o022)
    atomic_write_text(path, "new")
    assert path.read_text() == "new" and _mode(path) == 0o644


def test_cli_outputs_have_the_usual_mode(tmp_path: Path, umask,  # noqa: ANN001
                                         capsys: pytest.CaptureFixture[str]) -> None:
    from aipoincare.cli import main

    umask(0o022)
    paths = [tmp_path / "r.json", tmp_path / "r.tex", tmp_path / "r.png"]
    assert main(["discover", "lotka_volterra_3", "--quiet", "--json", str(paths[0]),
                 "--latex", str(paths[1]), "--plot", str(paths[2])]) == 0
    assert [_mode(p) for p in paths] == [0o644] * 3
