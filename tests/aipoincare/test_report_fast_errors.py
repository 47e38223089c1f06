"""Bad input is reported fast: ``aipoincare discover bad.toml`` checks the file before torch
(or matplotlib) is imported; the messages point to the documentation page, not to files
users do not have."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import aipoincare
from aipoincare.cli import build_parser, main

CHECK = """
import sys
from aipoincare.cli import main
status = main(["discover", sys.argv[1]])
print(status, "torch" in sys.modules, "matplotlib" in sys.modules)
"""

BAD = {
    "syntax": 'name = "s"\nvariables = ["x"]\n[equations]\nx = "x**"\n',
    "unknown name": 'name = "s"\nvariables = ["x"]\n[equations]\nx = "y*x"\n',
    "not toml": 'name = "s\nvariables = [x\n',
    "missing equation": 'name = "s"\nvariables = ["x", "y"]\n[equations]\nx = "y"\n',
}


def _run(path: Path) -> tuple[str, str]:
    proc = subprocess.run([sys.executable, "-c", CHECK, str(path)], capture_output=True,
                          text=True, timeout=300)
    lines = proc.stdout.strip().splitlines()  # the report, then the probe's line
    return (lines[-1] if lines else ""), proc.stderr.strip()


@pytest.mark.parametrize("what", sorted(BAD))
def test_bad_file_is_reported_before_torch_is_imported(tmp_path: Path, what: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(BAD[what])
    out, err = _run(path)
    assert out == "2 False False", (out, err)
    assert err.startswith("error: ") and len(err.splitlines()) == 1


def test_missing_file_is_reported_before_torch_is_imported(tmp_path: Path) -> None:
    out, err = _run(tmp_path / "nowhere.toml")
    assert out == "2 False False" and "does not exist" in err


def test_a_good_file_does_load_torch(tmp_path: Path) -> None:
    """The check above can fail: a discovery needs torch, and the same probe sees it."""
    path = tmp_path / "good.toml"
    path.write_text('name = "decay"\nvariables = ["x", "y"]\n[equations]\nx = "y"\n'
                    'y = "-x"\n[basis]\ndegree = 2\n')
    out, _ = _run(path)
    assert out == "0 True False"


def test_lazy_names_are_the_functions_also_after_their_submodules_load() -> None:
    import aipoincare.certify
    import aipoincare.discover  # noqa: F401

    assert callable(aipoincare.discover) and aipoincare.discover.__name__ == "discover"
    assert callable(aipoincare.certify) and aipoincare.certify.__name__ == "certify"
    assert sys.modules["aipoincare.discover"].discover is aipoincare.discover
    assert {"discover", "plot_pareto", "Basis"} <= set(dir(aipoincare))
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        aipoincare.nothing_here  # noqa: B018


def test_messages_point_to_the_documentation_page(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(BAD["not toml"])
    assert main(["discover", str(path)]) == 2
    err = capsys.readouterr().err
    assert "documentation page 'System files' (docs/system-files.md)" in err
    assert "CONTRACT" not in err
    help_text = build_parser()._subparsers._group_actions[0].choices["discover"].format_help()
    assert "CONTRACT" not in help_text and "docs/system-files.md" in help_text


def test_no_message_mentions_contract_md() -> None:
    """CONTRACT.md is the project's internal file: users have the documentation pages."""
    root = Path(aipoincare.__file__).parent
    assert [p.name for p in root.glob("*.py") if "CONTRACT" in p.read_text()] == []
