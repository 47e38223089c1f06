"""Lazy package attributes (PEP 562): loaded on first access, cached, listed by dir()."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import aipoincare
import traincore


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A throwaway package whose ``heavy`` submodule counts how often it is imported."""
    pkg = tmp_path / "lazypkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(
        "from traincore.lazy import lazy_attributes\n"
        "LOADS = []\n"
        "_LAZY = {'answer': 'heavy', 'Thing': 'heavy'}\n"
        "__getattr__, __dir__ = lazy_attributes(globals(), _LAZY)\n")
    (pkg / "heavy.py").write_text(
        "from . import LOADS\nLOADS.append(1)\nanswer = 42\nclass Thing:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield importlib.import_module("lazypkg")
    for name in ("lazypkg", "lazypkg.heavy"):
        sys.modules.pop(name, None)


def test_a_lazy_name_loads_its_submodule_once_and_is_then_a_plain_attribute(package) -> None:
    assert "lazypkg.heavy" not in sys.modules and package.LOADS == []
    assert "answer" not in vars(package)
    assert package.answer == 42
    assert "lazypkg.heavy" in sys.modules and package.LOADS == [1]
    assert vars(package)["answer"] == 42  # cached: __getattr__ is not asked again
    assert package.Thing is sys.modules["lazypkg.heavy"].Thing
    assert package.LOADS == [1]


def test_unknown_names_and_dir(package) -> None:
    with pytest.raises(AttributeError, match=r"^module 'lazypkg' has no attribute 'nope'$"):
        package.nope  # noqa: B018
    assert not hasattr(package, "nope")
    listed = dir(package)
    assert {"answer", "Thing", "LOADS"} <= set(listed) and listed == sorted(listed)
    assert "lazypkg.heavy" not in sys.modules  # dir() lists without loading


@pytest.mark.parametrize("module", [traincore, aipoincare])
def test_the_packages_use_it(module) -> None:
    lazy = module._LAZY
    assert set(lazy) <= set(dir(module))
    for name in lazy:
        assert getattr(module, name) is getattr(
            importlib.import_module(f"{module.__name__}.{lazy[name]}"), name)
    with pytest.raises(AttributeError, match=f"module '{module.__name__}' has no attribute 'x_'"):
        module.x_  # noqa: B018


def test_importing_traincore_does_not_import_torch() -> None:
    """What the lazy names are for; the probe can fail: one lazy name does import torch."""
    probe = ("import sys, traincore; a = 'torch' in sys.modules; traincore.fit; "
             "print(a, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         timeout=300, check=True).stdout.split()
    assert out == ["False", "True"]
