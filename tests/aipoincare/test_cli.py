"""The `aipoincare` command line: exit codes, one-line errors, outputs written only on success."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sympy
from sympy.parsing.sympy_parser import parse_expr

from aipoincare import cli
from aipoincare.cli import example_paths, main

SCRIPT = Path(sys.executable).parent / "aipoincare"
LV = """
name = "LV"
variables = ["x", "y", "z"]

[equations]
x = "x*(y - z)"
y = "y*(z - x)"
z = "z*(x - y)"
"""


def write(tmp_path: Path, text: str, name: str = "sys.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def assert_bad_input(code: int, out: str, err: str, pattern: str) -> None:
    import re

    assert code == 2, (code, out, err)
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    assert re.search(pattern, lines[0]), lines[0]
    assert "Traceback" not in err and out == ""


# ---------------------------------------------------------------- examples


def test_examples_lists_shipped_systems(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["examples"], capsys)
    assert code == 0 and err == ""
    assert set(example_paths()) >= {"lotka_volterra_3", "atmospheric_chemistry", "fluid_2d",
                                    "fluid_3d", "rossler", "pendulum", "rigid_body"}
    for stem, n_vars, nullity, ind in [("lotka_volterra_3", 3, 4, 2),
                                       ("atmospheric_chemistry", 11, 3, 3),
                                       ("fluid_2d", 12, 150, 8), ("fluid_3d", 24, 60, 14)]:
        line = next(ln for ln in out.splitlines() if ln.startswith(stem + " "))
        cells = line.split()
        assert int(cells[1]) == n_vars
        assert [int(cells[-3]), int(cells[-2])] == [nullity, ind]
        assert Path(cells[-1]).is_file()


def test_examples_copy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["examples", "--copy", str(tmp_path / "ex")], capsys)
    assert code == 0
    assert sorted(p.name for p in (tmp_path / "ex").iterdir()) == sorted(
        f"{stem}.toml" for stem in example_paths())
    assert f"copied {tmp_path / 'ex' / 'fluid_2d.toml'}" in out
    (tmp_path / "f").write_text("")
    assert_bad_input(*run(["examples", "--copy", str(tmp_path / "f")], capsys), r"is a file")


# ---------------------------------------------------------------- usage errors


@pytest.mark.parametrize("argv, pattern", [
    ([], r"required: COMMAND; see `aipoincare --help`"),
    (["frobnicate"], r"invalid choice: 'frobnicate'"),
    (["discover"], r"required: FILE"),
    (["discover", "x.toml", "--degree", "three"], r"argument --degree: must be an integer from 1 "
                                                  r"to 8; got 'three'"),
    (["discover", "x.toml", "--degree", "9"], r"must be an integer from 1 to 8; got 9"),
    (["discover", "x.toml", "--points", "0"], r"--points: must be a positive integer; got 0"),
    (["discover", "x.toml", "--seed", "-1"], r"--seed: must be a non-negative integer; got -1"),
    (["discover", "x.toml", "--tol", "2"],
     r"--tol: must be a number in \(0, 1\) \(e\.g\. 1e-9\); got 2"),
    (["discover", "x.toml", "--bogus"], r"unrecognized arguments: --bogus"),
    (["discover", "x.toml", "--plot", "fig.gif"], r"--plot 'fig.gif' must end in \.png, \.svg, "
                                                  r"\.pdf"),
])
def test_usage_errors(argv: list[str], pattern: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert_bad_input(*run(argv, capsys), pattern)


def test_help_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "discover" in capsys.readouterr().out
    assert main(["discover", "--help"]) == 0
    assert "--json PATH" in capsys.readouterr().out


# ---------------------------------------------------------------- bad input files


BAD = [
    (LV.replace('x = "x*(y - z)"', 'x = "x*(y - q)"'), r"Unknown name 'q' in \[equations\] x"),
    (LV.replace('z = "z*(x - y)"\n', ""), r"The variable\(s\) 'z' .* have no equation"),
    (LV + 'w = "1"\n', r"has an equation for 'w', which is not a declared variable"),
    (LV.replace('x = "x*(y - z)"', 'x = "x*(y - z"'), r"Syntax error in \[equations\] x .* at "
                                                      r"column 3"),
    (LV.replace('x = "x*(y - z)"', 'x = "x^2"'), r"use \*\* for powers"),
    (LV + '\n[parameters]\nk = "fast"\n', r"The parameter .* 'k' must be a number"),
    (LV.replace('y = "y*(z - x)"', 'y = "y*(z - x)'), r"is not valid TOML: .*line 7"),
    (LV + '\n[basis]\ndegree = 12\n', r"The 'degree' of \[basis\] must be an integer from 1 "
                                      r"to 8; got 12"),
]


@pytest.mark.parametrize("text, pattern", BAD)
def test_bad_system_files(tmp_path: Path, text: str, pattern: str,
                          capsys: pytest.CaptureFixture[str]) -> None:
    out_json = tmp_path / "out.json"
    path = write(tmp_path, text)
    assert_bad_input(*run(["discover", str(path), "--json", str(out_json)], capsys), pattern)
    assert not out_json.exists()


def test_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert_bad_input(*run(["discover", str(tmp_path / "nope.toml")], capsys),
                     r"The system file '.*nope\.toml' does not exist")


def test_injection_rejected_without_running(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    marker = tmp_path / "pwned"
    path = write(tmp_path, LV.replace('x = "x*(y - z)"',
                                      f'x = "__import__(\'os\').system(\'touch {marker}\')"'))
    assert_bad_input(*run(["discover", str(path)], capsys), r"Attribute access \('\.'\) is not "
                                                             r"allowed")
    assert not marker.exists()
    path = write(tmp_path, LV.replace('x = "x*(y - z)"', 'x = "x.__class__"'))
    assert_bad_input(*run(["discover", str(path)], capsys), r"Attribute access")


def test_data_file_wrong_columns(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "states.csv").write_text("1,2\n3,4\n")
    path = write(tmp_path, LV + '\n[sampling]\ndata = "states.csv"\n')
    assert_bad_input(*run(["discover", str(path)], capsys),
                     r"Row 1 of the data file '.*states\.csv' has 2 columns; expected 3 "
                     r"\(x, y, z\)")


def test_no_usable_points(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, 'variables = ["x"]\n[equations]\nx = "sqrt(-x**2 - 1)"\n'
                           '[basis]\ndegree = 2\n')
    assert_bad_input(*run(["discover", str(path)], capsys), r"No usable sample points")


def test_memory_budget(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAINCORE_MEMORY_BUDGET", "1K")
    out_json = tmp_path / "out.json"
    code, out, err = run(["discover", "lotka_volterra_3", "--json", str(out_json)], capsys)
    assert_bad_input(code, out, err, r"memory budget")
    assert not out_json.exists()


def test_device_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_json = tmp_path / "out.json"
    assert_bad_input(*run(["discover", "lotka_volterra_3", "--device", "tpu", "--json",
                           str(out_json)], capsys), r"must be 'auto', 'cpu', 'cuda'")
    if not __import__("torch").cuda.is_available():
        assert_bad_input(*run(["discover", "lotka_volterra_3", "--device", "cuda"], capsys),
                         r"CUDA is not available")
    assert not out_json.exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_output_refused_before_work(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        assert_bad_input(*run(["discover", "lotka_volterra_3", "--json", str(ro / "a.json")],
                              capsys), r"is not writable")
    finally:
        ro.chmod(0o700)


def test_output_is_a_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert_bad_input(*run(["discover", "lotka_volterra_3", "--json", str(tmp_path)], capsys),
                     r"--json '.*' is a directory; give a file name")


def test_internal_error_one_line_exit_1(capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import aipoincare.discover  # noqa: F401  (the package may re-export the function)

    disc = sys.modules["aipoincare.discover"]

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("kaput\nsecond line")

    monkeypatch.setattr(disc, "discover", boom)
    out_json = tmp_path / "o.json"
    code = main(["discover", "lotka_volterra_3", "--json", str(out_json)])
    out, err = capsys.readouterr()
    assert code == 1 and len(err.splitlines()) == 1
    assert err.startswith("error: internal error (RuntimeError: kaput second line); rerun with "
                          "AIPOINCARE_DEBUG=1")
    assert not out_json.exists()
    monkeypatch.setenv("AIPOINCARE_DEBUG", "1")
    with pytest.raises(RuntimeError, match="kaput"):
        main(["discover", "lotka_volterra_3"])


def test_interrupt(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import aipoincare.discover  # noqa: F401  (the package may re-export the function)

    disc = sys.modules["aipoincare.discover"]

    def stop(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(disc, "discover", stop)
    assert main(["discover", "lotka_volterra_3"]) == 130
    assert capsys.readouterr().err == "error: interrupted; no output files were written.\n"


def test_plot_failure_writes_no_outputs(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import aipoincare.plotting as plotting

    def fail(*args: object, **kwargs: object) -> bytes:
        raise ValueError("cannot draw")

    monkeypatch.setattr(plotting, "render_discovery", fail)
    out_json, out_png = tmp_path / "o.json", tmp_path / "o.png"
    assert_bad_input(*run(["discover", "lotka_volterra_3", "--json", str(out_json), "--plot",
                           str(out_png)], capsys), "cannot draw")
    assert list(tmp_path.iterdir()) == []  # JSON is not written when the plot fails


# ---------------------------------------------------------------- success


def test_discover_lotka_volterra(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_json, out_png, out_tex = tmp_path / "lv.json", tmp_path / "lv.png", tmp_path / "lv.tex"
    code, out, err = run(["discover", "lotka_volterra_3", "--seed", "1", "--json",
                          str(out_json), "--plot", str(out_png), "--latex", str(out_tex)], capsys)
    assert code == 0, err
    assert "nullity      4" in out and "(expected 4: matches)" in out
    assert "independent  2" in out and "H1 = " in out and "H2 = " in out
    assert f"wrote {out_json}" in out
    doc = json.loads(out_json.read_text())
    assert doc["nullity"] == 4 and doc["independent"] == 2 and doc["basis_size"] == 19
    assert doc["variables"] == ["x", "y", "z"]
    assert all(inv["verified"] for inv in doc["invariants"])
    names = {v: sympy.Symbol(v) for v in doc["variables"]}
    x, y, z = names["x"], names["y"], names["z"]
    found = {sympy.expand(parse_expr(inv["expr"], local_dict=names)) for inv in doc["invariants"]}
    # oracle: both invariants are conserved by the LV flow, checked here independently
    f = {x: x * (y - z), y: y * (z - x), z: z * (x - y)}
    for h in found:
        assert sympy.expand(sum(sympy.diff(h, v) * fv for v, fv in f.items())) == 0
    assert out_png.read_bytes()[:4] == b"\x89PNG"
    assert out_tex.read_text().startswith("\\documentclass")


def test_quiet_and_file_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, LV)
    code, out, err = run(["discover", str(path), "--quiet", "--degree", "1", "--json",
                          str(tmp_path / "o.json")], capsys)
    assert code == 0 and out == "" and err == ""
    doc = json.loads((tmp_path / "o.json").read_text())
    assert doc["basis_size"] == 3 and doc["nullity"] == 1
    assert sympy.expand(parse_expr(doc["invariants"][0]["expr"]) - sympy.Symbol("x")
                        - sympy.Symbol("y") - sympy.Symbol("z")) == 0 or \
        doc["invariants"][0]["expr"].replace(" ", "") in ("x+y+z", "-x-y-z")


def test_tol_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_json = tmp_path / "o.json"
    code, _, err = run(["discover", "lotka_volterra_3", "--tol", "1e-8", "--quiet", "--json",
                        str(out_json)], capsys)
    assert code == 0, err
    doc = json.loads(out_json.read_text())
    assert (doc["nullity"], doc["independent"]) == (4, 2)


def test_rossler_nothing_found(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # negative control: the chaotic Rossler system has no polynomial invariant
    out_json = tmp_path / "r.json"
    code, out, err = run(["discover", "rossler", "--json", str(out_json)], capsys)
    assert code == 0, err
    doc = json.loads(out_json.read_text())
    assert doc["nullity"] == 0 and doc["independent"] == 0 and doc["invariants"] == []
    assert "No conserved quantity in this basis." in out


@pytest.mark.parametrize("stem, nullity, independent", [("rigid_body", 2, 2),
                                                         ("pendulum", 1, 1)])
def test_added_examples(stem: str, nullity: int, independent: int, tmp_path: Path,
                        capsys: pytest.CaptureFixture[str]) -> None:
    out_json = tmp_path / "o.json"
    code, out, err = run(["discover", stem, "--quiet", "--json", str(out_json)], capsys)
    assert code == 0, err
    doc = json.loads(out_json.read_text())
    assert (doc["nullity"], doc["independent"]) == (nullity, independent)
    assert all(inv["verified"] for inv in doc["invariants"])


# ---------------------------------------------------------------- the installed script


def _script() -> list[str]:
    # the contract installs it (`make test` does): a missing script is a failure, not a skip
    assert SCRIPT.exists(), f"the console script {SCRIPT} is not installed; run make test"
    return [str(SCRIPT)]


@pytest.mark.slow  # a fresh interpreter imports torch: a few seconds
def test_installed_script_success_and_json(tmp_path: Path) -> None:
    out_json = tmp_path / "lv.json"
    proc = subprocess.run([*_script(), "discover", "lotka_volterra_3", "--json", str(out_json)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "independent  2" in proc.stdout
    doc = json.loads(out_json.read_text())
    assert {"name", "variables", "basis_size", "points", "nullity", "independent", "invariants",
            "spectrum", "seconds"} <= set(doc)
    assert doc["nullity"] == 4 and doc["independent"] == 2
    assert all(i["verified"] and i["method"] for i in doc["invariants"])


@pytest.mark.slow  # a fresh interpreter imports torch: a few seconds
def test_installed_script_bad_input(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = write(tmp_path, LV.replace('x = "x*(y - z)"',
                                      f'x = "__import__(\'os\').system(\'touch {marker}\')"'))
    proc = subprocess.run([*_script(), "discover", str(path), "--json", str(tmp_path / "o.json")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert len(proc.stderr.splitlines()) == 1 and proc.stderr.startswith("error: ")
    assert not marker.exists() and not (tmp_path / "o.json").exists()


@pytest.mark.slow  # a fresh interpreter imports torch: a few seconds
def test_python_dash_m(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "aipoincare", "discover",
                           str(tmp_path / "missing.toml")], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: The system file") and len(proc.stderr.splitlines()) == 1


def test_module_exports() -> None:
    assert cli.__all__ == ["main", "example_paths"]


# ---------------------------------------------------------------- symbolic parameters


def test_symbolic_option_on_a_numeric_file(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    out_json = tmp_path / "chem.json"
    names = ",".join(f"k{i}" for i in range(1, 11))
    code, out, err = run(["discover", "atmospheric_chemistry", "--symbolic", names, "--json",
                          str(out_json)], capsys)
    assert code == 0, err
    assert "Symbolic parameters k1, k2" in out and "where k4 = 0, k5 = 0" in out
    doc = json.loads(out_json.read_text())
    assert doc["symbolic"] == names.split(",") and doc["family"]["parameter_degree"] == 1
    local = {n: sympy.Symbol(n) for n in doc["variables"] + doc["symbolic"]}
    exprs = [parse_expr(inv["expr"], local_dict=local) for inv in doc["invariants"]]
    k4, k5 = local["k4"], local["k5"]
    third = [e for e in exprs if e.has(k4)][0]
    # the same as the file form (k = "symbolic"), and conserved for every k: checked here
    formula = (2 * (2 * k4 - k5) * local["H2"] + k5 * (
        3 * local["NO"] + local["NO2"] - 2 * local["O3"] - 2 * local["HCHO"]
        - 3 * local["HO2"] - 2 * local["HO2H"] - local["OH"] - 2 * local["O"]))
    assert sympy.simplify(third / formula) in (1, -1)


@pytest.mark.parametrize("argv, pattern", [
    (["--symbolic", "k11"], r"The symbolic parameter 'k11' \(.*\) is not a parameter of the "
                            r"system \(its \[parameters\]: k1, .*k10\); name a parameter"),
    (["--symbolic", "O3"], r"The symbolic parameter 'O3' .* is a variable of the system"),
    (["--symbolic", "k1,k1"], r"The symbolic parameter 'k1' .* is named twice"),
    (["--symbolic", "k1,,k2"], r"argument --symbolic: expected parameter names separated by "
                               r"commas, e\.g\. k1,k2; got 'k1,,k2'"),
    (["--symbolic", ""], r"argument --symbolic: expected parameter names"),
    (["--parameter-degree", "2"], r"--parameter-degree applies to symbolic parameters, and "
                                  r"this system has none"),
    (["--symbolic", "k1,k2,k3,k4,k5,k6,k7,k8,k9,k10", "--parameter-degree", "0"],
     r"only 2 have coefficients polynomial of degree <= 0 in the parameters .*raise "
     r"parameter_degree \(--parameter-degree\)"),
])
def test_symbolic_bad_input(argv: list[str], pattern: str, tmp_path: Path,
                            capsys: pytest.CaptureFixture[str]) -> None:
    out_json = tmp_path / "o.json"
    assert_bad_input(*run(["discover", "atmospheric_chemistry", *argv, "--json",
                           str(out_json)], capsys), pattern)
    assert not out_json.exists()


def test_a_parameter_both_numeric_and_symbolic_in_a_file(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, LV + '\n[parameters]\nk = 0.5\nk = "symbolic"\n')
    assert_bad_input(*run(["discover", str(path)], capsys),
                     r"is not valid TOML: .*(Cannot overwrite|duplicate|already).*line")


def test_symbolic_value_in_the_file_and_names_of_constants(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """SIR with rates symbolic and a variable I; a parameter named pi; E as an enzyme."""
    sir = ('name = "SIR"\nvariables = ["S", "I", "R"]\n[parameters]\nb = "symbolic"\n'
           'pi = 2\n[equations]\nS = "-pi*b*S*I"\nI = "pi*b*S*I - I"\nR = "I"\n'
           '[basis]\ndegree = 1\n')
    out_json = tmp_path / "sir.json"
    code, out, err = run(["discover", str(write(tmp_path, sir)), "--json", str(out_json)],
                         capsys)
    assert code == 0, err
    assert out.count("shadows the built-in constant pi") == 1
    doc = json.loads(out_json.read_text())
    assert doc["symbolic"] == ["b"] and doc["nullity"] == 1
    local = {n: sympy.Symbol(n) for n in doc["variables"] + doc["symbolic"]}
    h = parse_expr(doc["invariants"][0]["expr"], local_dict=local)
    assert sympy.expand(h - local["S"] - local["I"] - local["R"]) == 0
    assert parse_expr("I", local_dict=local) == sympy.Symbol("I")  # not the imaginary unit
    assert parse_expr("I") == sympy.I  # why local_dict is needed
    code, out, err = run(["discover", "michaelis_menten", "--quiet", "--json",
                          str(out_json)], capsys)
    assert code == 0, err
    doc = json.loads(out_json.read_text())
    assert sum("shadows the built-in constant E" in n for n in doc["notes"]) == 1
    local = {n: sympy.Symbol(n) for n in doc["variables"] + doc["symbolic"]}
    for inv in doc["invariants"]:
        assert not parse_expr(inv["expr"], local_dict=local).has(sympy.E)
