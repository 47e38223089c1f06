"""The package layout and the public names that outside checks rely on (CONTRACT.md)."""

from __future__ import annotations

import ast
import importlib
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ["traincore", "aipoincare", "bimt"]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_names_exist(name):
    module = importlib.import_module(name)
    assert module.__all__, f"{name}.__all__ is empty"
    missing = [n for n in module.__all__ if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ names missing: {missing}"
    assert len(set(module.__all__)) == len(module.__all__)
    assert (ROOT / name / "py.typed").exists()


def test_contract_names():
    import aipoincare
    import bimt

    for n in ["load_system", "System", "discover", "Discovery", "Invariant"]:
        assert n in aipoincare.__all__, n
    for n in ["BioMLP", "train", "modules", "to_networkx", "draw", "from_torch",
              "connection_cost", "Swapper", "relocate"]:
        assert n in bimt.__all__, n


def _imports(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package,forbidden", [("traincore", {"aipoincare", "bimt"}),
                                               ("aipoincare", {"bimt"}),
                                               ("bimt", {"aipoincare"})])
def test_imports_go_one_way(package, forbidden):
    for path in (ROOT / package).rglob("*.py"):
        bad = _imports(path) & forbidden
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


DEVICE_PICKING = re.compile(r"cuda\.is_available\(\)|torch\.device\(\s*['\"]cuda")


@pytest.mark.parametrize("package", ["aipoincare", "bimt"])
def test_only_traincore_picks_devices(package):
    for path in (ROOT / package).rglob("*.py"):
        assert not DEVICE_PICKING.search(path.read_text()), (
            f"{path.relative_to(ROOT)} picks a device itself; use traincore.resolve_device")


@pytest.mark.parametrize("package", ["aipoincare", "bimt"])
def test_no_eval_or_exec_of_strings(package):
    for path in (ROOT / package).rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id not in {"eval", "exec", "sympify", "lambdify",
                                            "parse_expr"}, f"{path}: {node.func.id}()"
            if isinstance(node, ast.Attribute) and node.attr in {"lambdify", "sympify",
                                                                 "parse_expr"}:
                pytest.fail(f"{path.relative_to(ROOT)} uses {node.attr}, which can execute text")
