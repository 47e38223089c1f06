"""Consistency of the documentation with the code and the contract.

The site itself is built with warnings as errors by ``make docs`` (part of ``make test``);
these checks catch what a clean build cannot: pages that silently fall behind the
repository (a new example, task or notebook not documented, reference figures lost).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import aipoincare.cli
import aipoincare.parser
import aipoincare.specs
import bimt
import bimt.cli

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def page(name: str) -> str:
    return (DOCS / name).read_text()


def test_every_shipped_example_is_documented() -> None:
    text = page("system-files.md")
    files = list((ROOT / "examples").glob("*.toml"))
    files += list((ROOT / "aipoincare" / "examples").glob("*.toml"))
    assert files, "no example systems found"
    for path in files:
        name = path.name
        assert f"`{name}`" in text, f"{name} missing from the table of docs/system-files.md"
        assert re.search(rf"literalinclude}} \.\./(aipoincare/)?examples/{re.escape(name)}",
                         text), f"{name} not shown in docs/system-files.md"


def test_every_contract_task_and_command_is_documented() -> None:
    text = page("cli.md")
    for task in ("independence", "feature-sharing", "compositionality", "two-moons",
                 "modular-addition", "permutation-s4", "digits"):
        assert f"`{task}`" in text, task
    for usage in ("aipoincare discover FILE", "aipoincare examples", "bimt train TASK",
                  "bimt tasks", "--json PATH", "--plot PATH", "--out DIR"):
        assert usage in text, usage


def test_registered_tasks_are_documented() -> None:
    """Tasks the bimt package registers beyond the contract are documented too."""
    text = page("cli.md")
    assert bimt.TASKS, "bimt registers no task"
    for task in bimt.TASKS:
        assert f"`{task}`" in text, f"task {task!r} missing from docs/cli.md"


def test_every_notebook_is_a_tutorial_page() -> None:
    toc = page("tutorials.md")
    assert ":glob:" in toc and "tutorials/*" in toc  # conf.py mirrors notebooks/ there
    conf = page("conf.py")
    assert 'nb_execution_mode = "off"' in conf  # the tests execute them, not the build
    assert list((ROOT / "notebooks").glob("*.ipynb"))


def test_benchmarks_page_keeps_the_reference_figures() -> None:
    text = page("benchmarks.md")
    for figure in ("1.4 s", "34 s", "40 s", "5.2 GB", "24 GiB", "110 s", "12 s",
                   "7.4 \\times 10^{-3}", "8.5 \\times 10^{-5}", "1.3 \\times 10^{-3}",
                   "0.5 s", "2.9 s", "7.4 s", "**150**", "155 or 158"):
        assert figure in text, f"reference figure {figure!r} lost from docs/benchmarks.md"


def test_every_api_package_is_autodocumented() -> None:
    for package in ("traincore", "aipoincare", "bimt"):
        text = page(f"api/{package}.md")
        # inside eval-rst: autodoc emits reStructuredText, which MyST would misread
        assert re.search(rf"```{{eval-rst}}\n\.\. automodule:: {package}\n   :members:", text), \
            package


def test_concepts_carry_the_equations() -> None:
    sid = page("concepts/aipoincare.md")
    for piece in (r"A_{ji} = \nabla b_i(x_j) \cdot f(x_j)", "Schwartz-Zippel",
                  "Q = (I - K)(I + K)^{-1}", "Jacobian", "confidence",
                  "symbolic-modulo-constraints"):
        assert piece in sid, piece
    bimt = page("concepts/bimt.md")
    for piece in (r"\lvert w_{ij} \rvert \,\bigl(d_{ij} + \ell_0\bigr)", "swap", "lambda",
                  "### Residual streams", "LayerNorm", "### Recurrent matrices",
                  "bimt.Swapper", "bimt.from_torch", "batch_size"):
        assert piece in bimt, piece


def test_run_directory_files_are_documented() -> None:
    """Every file ``bimt train`` writes is in the command-line page's table."""
    runs = pytest.importorskip("bimt.runs")
    text = page("cli.md")
    for name in ("metrics.json", "network.png", "training.gif", runs.SNAPSHOTS_NAME,
                 "checkpoint.pt", "log.jsonl"):
        assert f"| `{name}` |" in text, name


def test_expression_names_match_the_parser() -> None:
    """The functions and constants the format page lists are exactly the parser's."""
    text = page("system-files.md")
    section = text[text.index("## Expressions"):text.index("## The shipped examples")]
    listed = set(re.findall(r"`(\w+)`", section))
    assert set(aipoincare.parser.FUNCTIONS) | set(aipoincare.parser.CONSTANTS) == listed


def test_basis_kinds_and_distributions_are_documented() -> None:
    text = page("system-files.md")
    for kind in aipoincare.specs.BASIS_KINDS:
        assert f'kind = "{kind}"' in text, kind
    for dist in aipoincare.specs.DISTRIBUTIONS:
        assert f'"{dist}"' in text, dist


@pytest.mark.parametrize("cli, command", [(aipoincare.cli, "discover"), (bimt.cli, "train")],
                         ids=["aipoincare", "bimt"])
def test_every_command_line_option_is_documented(cli, command: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """Every option ``--help`` shows is on the command-line page."""
    try:
        status = cli.main([command, "--help"])
    except SystemExit as exc:  # argparse's own exit, if main lets it through
        status = exc.code
    assert status in (0, None)
    options = set(re.findall(r"(--[a-z][a-z-]*)", capsys.readouterr().out)) - {"--help"}
    assert options, "no options found in --help"
    text = page("cli.md")
    missing = sorted(o for o in options if f"`{o}" not in text and f"[{o}" not in text)
    assert not missing, f"{missing} of `{command}` missing from docs/cli.md"
