"""traincore.native: compile once per machine, cache, load; fall back with a warning."""

from __future__ import annotations

import ctypes

import pytest

import traincore.native as native

SOURCE = """
#include <stdint.h>
int64_t twice(int64_t x) { return 2 * x + OFFSET; }
"""

needs_cc = pytest.mark.skipif(native.compiler() is None, reason="needs a C compiler")


@pytest.fixture()
def fresh(tmp_path, monkeypatch):
    monkeypatch.setenv("TRAINCORE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv(native.NATIVE_ENV, "1")
    monkeypatch.setattr(native, "_LOADED", {})
    src = tmp_path / "twice.c"
    src.write_text(SOURCE, encoding="utf-8")
    return src


@needs_cc
def test_compiles_caches_and_loads(fresh, monkeypatch):
    lib = native.load(fresh, ["OFFSET=1"])
    lib.twice.restype = ctypes.c_int64
    lib.twice.argtypes = [ctypes.c_int64]
    assert lib.twice(20) == 41
    built = list(native.cache_dir().glob("twice-*.so"))
    assert len(built) == 1 and not list(native.cache_dir().glob("tmp*"))
    assert native.load(fresh, ["OFFSET=1"]) is lib  # once per process
    # a new process (the memo emptied) finds the cached library: no compiling
    monkeypatch.setattr(native, "_LOADED", {})
    monkeypatch.setattr(native, "_compile", lambda *a: pytest.fail("compiled again"))
    assert native.load(fresh, ["OFFSET=1"]) is not None
    # other defines are another library
    monkeypatch.undo()
    monkeypatch.setenv("TRAINCORE_CACHE", str(fresh.parent / "cache"))
    monkeypatch.setattr(native, "_LOADED", {})
    other = native.load(fresh, ["OFFSET=5"])
    other.twice.restype = ctypes.c_int64
    other.twice.argtypes = [ctypes.c_int64]
    assert other.twice(20) == 45
    assert len(list(native.cache_dir().glob("twice-*.so"))) == 2


@needs_cc
def test_a_failed_compile_warns_and_leaves_nothing(fresh):
    fresh.write_text("this is not C", encoding="utf-8")
    with pytest.warns(RuntimeWarning, match="Could not build the native kernel twice.c"):
        assert native.load(fresh) is None
    assert not list(native.cache_dir().glob("*"))


def test_no_compiler_warns_and_falls_back(fresh, monkeypatch):
    monkeypatch.setattr(native, "compiler", lambda: None)
    with pytest.warns(RuntimeWarning, match="No C compiler found"):
        assert native.load(fresh) is None


def test_turned_off_loads_nothing(fresh, monkeypatch):
    monkeypatch.setenv(native.NATIVE_ENV, "0")
    assert not native.enabled()
    monkeypatch.setattr(native, "_build", lambda *a: pytest.fail("tried to build"))
    assert native.load(fresh) is None


def test_compiler_choice(monkeypatch):
    monkeypatch.setenv("CC", "/no/such/compiler --flag")
    found = native.compiler()
    assert found is None or "no/such" not in found


@needs_cc
def test_a_compiler_without_march_native_gets_the_portable_flags(fresh, monkeypatch):
    real = native._compile

    def picky(source, target, cc, flags):
        if "-march=native" in flags:
            raise RuntimeError("unknown option -march=native")
        real(source, target, cc, flags)

    monkeypatch.setattr(native, "_compile", picky)
    lib = native.load(fresh, ["OFFSET=2"])
    lib.twice.restype = ctypes.c_int64
    lib.twice.argtypes = [ctypes.c_int64]
    assert lib.twice(1) == 4


@pytest.mark.reliability
def test_an_unusable_cache_directory_falls_back(fresh, monkeypatch, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory", encoding="utf-8")
    monkeypatch.setenv("TRAINCORE_CACHE", str(blocker))  # even root cannot mkdir under a file
    with pytest.warns(RuntimeWarning, match="Could not build the native kernel"):
        assert native.load(fresh) is None


@needs_cc
def test_a_missing_source_falls_back(fresh):
    with pytest.warns(RuntimeWarning, match="Could not build"):
        assert native.load(fresh.with_name("gone.c")) is None
