"""Fuzzing the system-file loader and ``aipoincare discover`` with hostile input.

Inputs: system files built from random tables and random expressions (deep nesting, huge
exponents and integers, unusual unicode, NaN/inf, division by zero, empty or singular
constraint sets, basis functions undefined everywhere, thousands of variables, huge
``points``/``degree``), and the shipped examples with random mutations.

Properties:
- the loader raises only its documented errors (``SystemFileError``: a ``ValueError``, or
  ``SystemFileTypeError``: also a ``TypeError``) with a one-line message, within seconds;
- ``aipoincare discover`` exits 0, or 2 with exactly one ``error: ...`` line and no output
  file; never a traceback; its peak memory stays within the budget it is given
  (TRAINCORE_MEMORY_BUDGET) plus a fixed slack; it ends within the time limit.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import string
import time
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.fuzz

SCALE = int(os.environ.get("FUZZ_SCALE", "1"))
#: Wall-clock seconds one loader call may take (it parses; it never computes).
LOAD_LIMIT = 10.0
#: Seconds the command line is given per input (--time-limit) and the worker's own bound.
CLI_LIMIT = 30
EXAMPLES = sorted(str(p) for p in (files("aipoincare") / "examples").iterdir()
                  if str(p).endswith(".toml"))

# ---------------------------------------------------------------------- expressions

def chance(draw: st.DrawFn, one_in: int) -> bool:
    """True about once in ``one_in`` draws. (Not ``integers(0, n) == 0``: hypothesis favours
    the bounds of a range, which would make a rare case the most common one.)"""
    return draw(st.integers(0, 4 * one_in - 1)) % one_in == 1 % one_in


FUNCS = ["sqrt", "exp", "log", "sin", "cos", "tan", "sinh", "cosh", "tanh", "atan", "Abs"]
HOSTILE = ["__import__('os').system('true')", "x.real", "x[0]", "lambda: 0", "'text'",
           "x if y else z", "x^2", "x @ y", "x // y", "x % 2", "[x]", "(x, y)", "x == y",
           "f(x)", "sqrt(x, y)", "sqrt()", "exp(x=1)", "*x", "x;y", "x\ny", "", "   ", "()",
           "1e999", "-1e999", "nan", "inf", "x/0", "1/(x - x)", "log(0)", "0**-1",
           "log(-1 - x**2)", "sqrt(-1 - x**2)", "sqrt(-1)", "exp(exp(exp(exp(1000))))",
           "((2**1000)**1000)**1000", "x**1000000000", "x**-1000000", "x**(1/3)",
           "(x + 1)**100000", "2**2**2**2**2", "10**100000", "1" * 5000, "(" * 300 + "x"
           + ")" * 300, "-" * 20000 + "x", " + ".join(["x"] * 3000), "E**pi**E",
           "ξ + x", "x\u200b", "ｘ", "x\x00", "\ud800"]
NUMBERS = st.one_of(
    st.integers(-5, 5).map(str),
    st.integers(min_value=-10**40, max_value=10**40).map(str),
    st.sampled_from(["1e308", "1e-320", "0.1", "-0.0", "3.0e-5", "12345678901234567890.5",
                     "0", "1/3", "pi", "E"]),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
)


def expressions(names: list[str]) -> st.SearchStrategy[str]:
    """Random expression text over ``names`` (and some names that are not declared)."""
    leaves = st.one_of(st.sampled_from(names or ["x"]), st.sampled_from(names or ["x"]),
                       st.sampled_from(names or ["x"]), NUMBERS,
                       st.sampled_from(["x", "y", "k", "undeclared", "_x", "sin", "I"]))

    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.one_of(
            st.tuples(inner, st.sampled_from(["+", "-", "*", "/", "**"]), inner)
            .map(lambda t: f"({t[0]}) {t[1]} ({t[2]})"),
            st.tuples(st.sampled_from(FUNCS), inner).map(lambda t: f"{t[0]}({t[1]})"),
            inner.map(lambda e: f"-({e})"),
            st.tuples(inner, st.sampled_from(["2", "3", "-1", "0.5", "1000", "10**6",
                                              "1000000001", "-(10**9)", "x"]))
            .map(lambda t: f"({t[0]})**{t[1]}"),
        )

    tree = st.recursive(leaves, extend, max_leaves=12)
    return st.one_of(tree, tree, tree, st.sampled_from(HOSTILE))


# ---------------------------------------------------------------------- TOML

def toml_value(value: Any) -> str:
    """A value as TOML text (floats nan/inf as TOML's nan/inf; strings escaped)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") \
            if math.isinf(value) else repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))} = {toml_value(v)}"
                               for k, v in value.items()) + "}"
    return json.dumps(str(value))


def to_toml(doc: dict[str, Any]) -> str:
    lines, tables = [], []
    for key, value in doc.items():
        (tables if isinstance(value, dict) else lines).append((key, value))
    out = [f"{json.dumps(k)} = {toml_value(v)}" for k, v in lines]
    for key, table in tables:
        out.append(f"[{json.dumps(key)}]")
        out.extend(f"{json.dumps(str(k))} = {toml_value(v)}" for k, v in table.items())
    return "\n".join(out) + "\n"


NAMES = st.one_of(
    st.sampled_from(["x", "y", "z", "w", "q1", "NO2", "k", "E", "pi", "sin", "for", "_a",
                     "1x", "x y", "", "ξ", "ｘ", "x\u200b", "a" * 300]),
    st.text(string.ascii_letters + string.digits + "_", min_size=1, max_size=6),
)
ODD_VALUES = st.one_of(st.floats(), st.integers(min_value=-10**30, max_value=10**30),
                       st.booleans(), st.text(max_size=8), st.lists(st.integers(), max_size=3),
                       st.just({"a": 1}))


@st.composite
def systems(draw: st.DrawFn) -> dict[str, Any]:
    """A system table: mostly sane in shape, hostile in its details."""
    if chance(draw, 31):  # thousands of variables
        n = draw(st.sampled_from([1000, 3000]))
        names = [f"v{i}" for i in range(n)]
        doc: dict[str, Any] = {"variables": names,
                               "equations": {v: names[(i + 1) % n] for i, v in
                                             enumerate(names)}}
    else:
        sane = st.lists(st.sampled_from(["x", "y", "z", "w", "q1", "NO2"]), min_size=1,
                        max_size=4, unique=True)
        names = draw(st.one_of(sane, sane, st.lists(NAMES, min_size=0, max_size=5)))
        expr = expressions([n for n in names if n])
        eqs = {n: draw(expr) for n in names}
        if chance(draw, 7):
            eqs[draw(NAMES)] = draw(expr)  # an equation for an undeclared name
        if names and chance(draw, 7):
            eqs.pop(names[0], None)  # a missing equation
        doc = {"variables": names, "equations": eqs}
        if chance(draw, 13):
            doc["variables"] = draw(ODD_VALUES)
    expr = expressions(list(doc["variables"]) if isinstance(doc["variables"], list) else [])
    if draw(st.booleans()):
        doc["name"] = draw(st.one_of(st.text(max_size=30), ODD_VALUES))
    if chance(draw, 3):
        doc["parameters"] = draw(st.dictionaries(NAMES, st.one_of(ODD_VALUES, NUMBERS),
                                                 max_size=3))
    if chance(draw, 4):
        doc["definitions"] = draw(st.dictionaries(NAMES, expr, max_size=2))
    if chance(draw, 3):
        doc["constraints"] = draw(st.one_of(
            st.lists(expr, max_size=3),
            st.sampled_from([["x - x"], ["1"], ["x**2 + 1"], ["x - 1", "x - 2"], ["x*y"],
                             ["x", "y", "z"], []]),
            st.dictionaries(st.text(max_size=4), expr, max_size=2)))
    if chance(draw, 2):
        basis: dict[str, Any] = {"kind": draw(st.sampled_from(
            ["polynomial", "expressions", "product", "fourier", "", "Polynomial"]))}
        if draw(st.booleans()):
            basis["degree"] = draw(st.one_of(st.integers(1, 4), st.sampled_from(
                [0, -1, 8, 9, 100, 10**20, 2.5, 3.0, "3", True])))
        if draw(st.booleans()):
            basis["expressions"] = draw(st.one_of(
                st.lists(expr, max_size=4),
                st.sampled_from([["log(-1 - x**2)"], ["sqrt(-1 - x**2)"], ["1/(x - x)"],
                                 ["x", "x"], ["1"], ["log(x)"]]), ODD_VALUES))
        doc["basis"] = basis
    if chance(draw, 2):
        sampling: dict[str, Any] = {}
        for key, values in (("distribution", st.sampled_from(["normal", "uniform", "cauchy",
                                                              ""])),
                            ("scale", st.one_of(st.floats(), st.sampled_from([1e-300, 1e300]))),
                            ("low", st.floats()), ("high", st.floats()),
                            ("points", st.one_of(st.integers(1, 200), st.sampled_from(
                                [0, -5, 2.5, 10**8, 10**30, 100_000_000]))),
                            ("data", st.sampled_from(["states.csv", "missing.csv", "/etc/passwd",
                                                      ".", "", "states.npy"]))):
            if chance(draw, 3):
                sampling[key] = draw(values)
        doc["sampling"] = sampling
    if chance(draw, 5):
        doc["expected"] = draw(st.dictionaries(st.sampled_from(["nullity", "independent",
                                                                "other"]), ODD_VALUES))
    if chance(draw, 9):
        doc[draw(NAMES)] = draw(ODD_VALUES)  # an extra key (tolerated, or a typo caught)
    return doc


@st.composite
def mutated_examples(draw: st.DrawFn) -> str:
    """A shipped example file with a few random edits (lines, numbers, characters)."""
    text = Path(draw(st.sampled_from(EXAMPLES))).read_text()
    for _ in range(draw(st.integers(1, 4))):
        lines = text.splitlines()
        if not lines:
            break
        i = draw(st.integers(0, len(lines) - 1))
        kind = draw(st.integers(0, 6))
        if kind == 0:
            del lines[i]
        elif kind == 1:
            lines.insert(i, lines[draw(st.integers(0, len(lines) - 1))])
        elif kind == 2:  # a number becomes an extreme one
            nums = list(re.finditer(r"\d+(\.\d+)?", lines[i]))
            if nums:
                m = nums[draw(st.integers(0, len(nums) - 1))]
                lines[i] = lines[i][:m.start()] + draw(st.sampled_from(
                    ["100000000", "0", "1e308", "nan", "inf", "99999999999999999999",
                     "-1", "2.5"])) + lines[i][m.end():]
        elif kind == 3:  # one random character in
            pos = draw(st.integers(0, len(lines[i])))
            lines[i] = lines[i][:pos] + draw(st.characters(exclude_categories=["Cs"])) \
                + lines[i][pos:]
        elif kind == 4:
            lines[i] = lines[i][:draw(st.integers(0, len(lines[i])))]
        elif kind == 5:
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        else:  # an expression replaced by a hostile one
            if "=" in lines[i] and '"' in lines[i]:
                key = lines[i].split("=", 1)[0]
                lines[i] = f"{key}= {json.dumps(draw(st.sampled_from(HOSTILE)))}"
        text = "\n".join(lines) + "\n"
    return text


SYSTEM_TEXT = st.one_of(systems().map(to_toml), mutated_examples())

#: Pieces that are valid syntax but make the mathematics hard, undefined or huge.
HARD = ["x**1000000000", "(x + 1)**100000", "x**-1000000", "1/(x - x + 1e-300)", "exp(x**50)",
        "log(-1 - x**2)", "sqrt(-1 - x**2)", "x**(1/3)", "1e300*x", "1e-300*x", "Abs(x)",
        "tan(x)", "exp(exp(x))", "atan(x)/x", "sqrt(x)"]


@st.composite
def plausible_systems(draw: st.DrawFn) -> str:
    """A system that loads, mostly: small polynomial or rational equations, with one hard
    piece now and then, odd constraints, bases and sampling (huge points included)."""
    names = draw(st.lists(st.sampled_from(["x", "y", "z", "w"]), min_size=1, max_size=4,
                          unique=True))
    term = st.tuples(st.integers(-3, 3), st.lists(st.sampled_from(names), max_size=3)).map(
        lambda t: "*".join([str(t[0]), *t[1]]))
    poly = st.lists(term, min_size=1, max_size=4).map(" + ".join)
    expr = st.one_of(poly, poly, poly, st.tuples(poly, poly).map(lambda t: f"({t[0]})/(1 + "
                                                                              f"({t[1]})**2)"),
                     st.sampled_from(HARD).map(lambda h: h.replace("x", names[0])))
    doc: dict[str, Any] = {"variables": names, "equations": {n: draw(expr) for n in names}}
    if chance(draw, 4):
        doc["constraints"] = draw(st.sampled_from(
            [[], [f"{names[0]} - {names[0]}"], [f"{names[0]}**2 + 1"], [f"{names[0]} - 1",
             f"{names[0]} - 2"], [f"{names[0]}*{names[-1]}"], [f"{names[0]} - 1"], names]))
    if draw(st.booleans()):
        kind = draw(st.sampled_from(["polynomial", "expressions", "product"]))
        basis: dict[str, Any] = {"kind": kind, "degree": draw(st.integers(1, 4))}
        if kind != "polynomial":
            basis["expressions"] = draw(st.lists(st.one_of(
                st.sampled_from(names), st.sampled_from(["log(-1 - x**2)", "sqrt(-1 - x**2)",
                                                         "1/x", "exp(x)", "log(x)", "1",
                                                         "x**1000000000"])
                .map(lambda h: h.replace("x", names[0]))), min_size=1, max_size=4))
        doc["basis"] = basis
    if draw(st.booleans()):
        doc["sampling"] = {k: v for k, v in (
            ("distribution", draw(st.sampled_from(["normal", "uniform"]))),
            ("points", draw(st.sampled_from([None, 1, 3, 50, 5000, 100_000_000, 10**12]))),
            ("scale", draw(st.sampled_from([1.0, 1e-6, 1e6, 1e150]))),
            ("low", -1.0), ("high", draw(st.sampled_from([1.0, 1e-12, 1e200])))) if v is not None}
    return to_toml(doc)


CLI_SYSTEM_TEXT = st.one_of(plausible_systems(), plausible_systems(), plausible_systems(),
                            systems().map(to_toml), mutated_examples())


# ---------------------------------------------------------------------- the loader

class Hang(BaseException):
    """The per-input watchdog of the test (a BaseException: no `except Exception` hides it)."""


def _alarm(signum, frame):
    raise Hang()


@settings(max_examples=60 * SCALE)
@given(text=SYSTEM_TEXT)
@example(text=to_toml({"variables": ["x"], "equations": {"x": "((2**1000)**1000)**1000"}}))
@example(text=to_toml({"variables": ["x"], "equations": {"x": "1" * 5000}}))
@example(text="variables = [\"x\"]\n[equations]\nx = \"x\"\n[sampling]\npoints = "
              + "9" * 5000 + "\n")
def test_loader_raises_only_documented_errors(text, tmp_path_factory, tally):
    from aipoincare import load_system
    from aipoincare.system import SystemFileError

    path = tmp_path_factory.mktemp("sys") / "system.toml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, LOAD_LIMIT)
    start = time.perf_counter()
    outcome, detail = "loaded", None
    try:
        load_system(path)
    except SystemFileError as exc:
        outcome = type(exc).__name__
        msg = detail = str(exc)
        if not msg or "\n" in msg:
            outcome = tally.fail("load_system", f"not a one-line message: {msg!r}", text)
    except Hang:
        outcome = tally.fail("load_system", f"load_system ran over {LOAD_LIMIT} s", text)
    except Exception as exc:  # noqa: BLE001 - anything else is the finding
        outcome = tally.fail("load_system", f"undocumented {type(exc).__name__}: {exc}", text)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    tally.add("load_system", outcome, time.perf_counter() - start, detail=detail)


# ---------------------------------------------------------------------- the command line

def _mostly(valid: st.SearchStrategy[str], junk: list[str]) -> st.SearchStrategy[str]:
    """Valid values most of the time (so that inputs reach deep), junk now and then."""
    return st.one_of(valid, valid, valid, valid, st.sampled_from(junk))


OPTIONS = {
    "--degree": _mostly(st.integers(1, 4).map(str), ["0", "9", "8", "-1", "three", "1e3",
                                                     "99999999999999999999"]),
    "--points": _mostly(st.sampled_from(["1", "5", "40", "300", "100000000"]),
                        ["0", "-3", "10**8", "1e9", "99999999999999999999"]),
    "--seed": _mostly(st.integers(0, 2**31).map(str), ["-1", "x", str(2**70)]),
    "--tol": _mostly(st.sampled_from(["1e-9", "1e-6"]), ["0", "1", "nan", "-1", "1e-300"]),
    "--device": _mostly(st.sampled_from(["cpu", "auto"]), ["cuda", "cuda:7", "tpu", ""]),
    "--json": _mostly(st.sampled_from(["out.json", "sub/dir/out.json"]),
                      ["system.toml/x.json", ".", "/sys/x.json"]),
    "--plot": _mostly(st.sampled_from(["out.png", "out.svg"]), ["out.txt", "/proc/x.png"]),
    "--latex": _mostly(st.just("out.tex"), ["/sys/out.tex"]),
}


@st.composite
def discover_argv(draw: st.DrawFn) -> list[str]:
    argv = ["discover", draw(st.sampled_from(["system.toml"] * 15 + ["missing.toml", ".",
                                                                     "lotka_volterra_3"]))]
    for option in draw(st.lists(st.sampled_from(sorted(OPTIONS)), max_size=3, unique=True)):
        argv += [option, draw(OPTIONS[option])]
    if draw(st.booleans()):
        argv.append("--quiet")
    if chance(draw, 16):
        argv.append(draw(st.sampled_from(["--bogus", "extra", "--degree"])))
    return argv


def check_cli_reply(reply: dict, argv: list[str], worker: Any, outputs: tuple[str, ...] = ()
                    ) -> str:
    """Assert what every command-line run must satisfy; return the kind of outcome."""
    rc, err = reply["rc"], reply["stderr"]
    assert rc != "timeout", f"no answer within the worker's bound for {argv}"
    assert isinstance(rc, int), f"an exception escaped main(): {rc}"
    assert "Traceback" not in err, err
    assert not re.search(r"^\S+:\d+: \w*Warning: ", err, re.M), f"a warning leaked: {err}"
    assert rc in (0, 2), f"exit status {rc}: {err}"
    assert reply["over_idle_mib"] <= worker.budget_mib + worker.slack_mib, (
        f"peak memory {reply['over_idle_mib']:.0f} MiB over the idle worker, budget "
        f"{worker.budget_mib} MiB")
    if rc == 2:
        assert err.startswith("error: ") and err.count("\n") == 1, err
        # the house format is a sentence that ends with its fix; a bare message of a
        # library (e.g. "ilcm() takes at least 2 arguments") is an internal error in disguise
        assert err.rstrip().endswith((".", ".)")), f"not one of the toolkit's messages: {err}"
        written = [f for f in reply["files"] if f in outputs or f.endswith(".tmp")]
        assert not written, f"bad input, yet files were written: {written}"
    return "ok" if rc == 0 else "exit 2"


def _outputs(argv: list[str]) -> tuple[str, ...]:
    return tuple(argv[i + 1] for i, a in enumerate(argv[:-1])
                 if a in ("--json", "--plot", "--latex"))


@settings(max_examples=25 * SCALE)
@given(text=CLI_SYSTEM_TEXT, argv=discover_argv())
@example(text=Path(EXAMPLES[0]).read_text(), argv=["discover", "system.toml", "--json",
                                                   "out.json", "--plot", "out.png"])
def test_discover_command_line(text, argv, worker, tally):
    argv = [*argv, "--time-limit", str(CLI_LIMIT)] if worker.time_limit_option else argv
    reply = worker.run("aipoincare", argv, {"system.toml": text}, timeout=CLI_LIMIT + 30)
    try:
        outcome = check_cli_reply(reply, argv, worker, _outputs(argv))
        if reply["rc"] == 0 and "--json" in argv:
            doc = json.loads(reply["json"][argv[argv.index("--json") + 1]])
            assert isinstance(doc["nullity"], int), doc
            assert doc["independent"] == len(doc["invariants"]), doc
    except AssertionError as exc:
        outcome = tally.fail("aipoincare discover", str(exc), {"argv": argv, "file": text})
    tally.add("aipoincare discover", outcome, reply["seconds"], reply["over_idle_mib"],
              reply["stderr"] or None)
