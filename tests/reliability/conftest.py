"""Fixtures for the fault tests: a really full disk (a tiny tmpfs when this process may
mount one) and a child Python process under a file-size limit (always possible)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _mount(args: list[str], where: Path) -> bool:
    where.mkdir(parents=True, exist_ok=True)
    try:
        proc = subprocess.run(["mount", *args, str(where)], capture_output=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return False
    return proc.returncode == 0


def _umount(where: Path) -> None:
    subprocess.run(["umount", "-l", str(where)], capture_output=True, timeout=20)


@pytest.fixture
def tiny_tmpfs(tmp_path):
    """A 256 KiB tmpfs (needs the privilege to mount: skipped without it)."""
    where = tmp_path / f"tmpfs-{uuid.uuid4().hex[:6]}"
    if not _mount(["-t", "tmpfs", "-o", "size=256k", "tmpfs"], where):
        pytest.skip("cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN); the file-size "
                    "limit tests cover the full disk instead")
    yield where
    _umount(where)


@pytest.fixture
def readonly_mount(tmp_path):
    """A read-only file system (a tmpfs mounted ro; root-dependent: skipped without it)."""
    where = tmp_path / f"ro-{uuid.uuid4().hex[:6]}"
    if not _mount(["-t", "tmpfs", "-o", "ro,size=64k", "tmpfs"], where):
        pytest.skip("cannot mount a read-only tmpfs here (needs root or CAP_SYS_ADMIN)")
    yield where
    _umount(where)


def run_python(code: str, *, fsize: int | None = None, timeout: float = 120,
               env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter, under RLIMIT_FSIZE=``fsize`` bytes if given.

    SIGXFSZ is ignored in the child, so a write past the limit fails with EFBIG (as on a
    disk that has hit a quota) instead of killing the process.
    """
    prelude = ""
    if fsize is not None:
        prelude = textwrap.dedent(f"""
            import resource, signal
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, ({fsize}, {fsize}))
        """)
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=timeout, env=full_env,
                          cwd=ROOT)


def last_json(proc: subprocess.CompletedProcess) -> dict:
    """The JSON object a child printed on its last stdout line."""
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture
def py():
    """``py(code, fsize=None, timeout=120, env=None)``: :func:`run_python`; ``py.json(proc)``
    gives the JSON object of the child's last line."""
    run_python.json = last_json  # type: ignore[attr-defined]
    return run_python
