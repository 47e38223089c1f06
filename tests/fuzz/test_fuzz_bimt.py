"""Fuzzing ``bimt train``: its options on the command line, and data, shapes and settings
through ``bimt.train``.

Properties: the command line exits 0, or 2 with one ``error: ...`` line (never a
traceback, never files from a refused run, memory within the budget); ``bimt.train`` raises
only ``ValueError``/``TypeError`` (or :class:`traincore.NonFiniteError` when training
diverges) with one-line messages.
"""

from __future__ import annotations

import math
import os
import signal
import time

import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.fuzz

SCALE = int(os.environ.get("FUZZ_SCALE", "1"))
#: Seconds one bimt.train call on these tiny inputs may take.
TRAIN_LIMIT = 60.0


def chance(draw: st.DrawFn, one_in: int) -> bool:
    """True about once in ``one_in`` draws (hypothesis favours the bounds of a range)."""
    return draw(st.integers(0, 4 * one_in - 1)) % one_in == 1 % one_in


# ---------------------------------------------------------------------- command line

TASKS = ["independence", "feature-sharing", "compositionality", "two-moons",
         "modular-addition", "permutation-s4", "digits"]


@st.composite
def train_argv(draw: st.DrawFn) -> list[str]:
    task = draw(st.sampled_from(TASKS)) if not chance(draw, 6) else draw(st.sampled_from(
        ["sudoku", "", "Independence", "independence ", "-x", "ξ"]))
    argv = ["train", task]
    steps = draw(st.integers(1, 12).map(str)) if not chance(draw, 5) else draw(
        st.sampled_from(["0", "-5", "ten", "1e3", "99999999999999999999999", ""]))
    argv += ["--steps", steps]
    if draw(st.booleans()):
        argv += ["--seed", draw(st.sampled_from(["0", "7", "-1", str(2**63), "x"]))]
    argv += ["--out", draw(st.sampled_from(["run", "run", "run", "a/b/c", "/sys/run",
                                            "log.txt/run", ""]))]
    if draw(st.booleans()):
        argv += ["--device", draw(st.sampled_from(["cpu", "auto", "cuda", "gpu", "cuda:9"]))]
    if chance(draw, 4):
        argv.append(draw(st.sampled_from(["--fresh", "--progress", "--bogus", "extra"])))
    return argv


@settings(max_examples=4 * SCALE)
@given(argv=train_argv())
@example(argv=["train", "independence", "--steps", "5", "--out", "run"])
def test_bimt_train_command_line(argv, worker, tally):
    files = {"log.txt": "a file where a folder is expected\n"}
    reply = worker.run("bimt", argv, files, timeout=300)
    outcome = "ok" if reply["rc"] == 0 else "exit 2"
    try:
        rc, err = reply["rc"], reply["stderr"]
        assert isinstance(rc, int), f"no exit status: {rc}"
        assert "Traceback" not in err, err
        assert rc in (0, 2), f"exit status {rc}: {err}"
        assert reply["over_idle_mib"] <= worker.budget_mib + worker.slack_mib, reply
        if rc == 2:
            assert err.startswith("error: ") and err.count("\n") == 1, err
            assert err.rstrip().endswith((".", ")")), f"not a toolkit message: {err}"
            assert not any(f.endswith(("metrics.json", ".png", ".gif")) for f in
                           reply["files"]), reply["files"]
        else:
            assert any(f.endswith("metrics.json") for f in reply["files"]), reply["files"]
    except AssertionError as exc:
        outcome = tally.fail("bimt train (CLI)", str(exc), argv)
    tally.add("bimt train (CLI)", outcome, reply["seconds"], reply["over_idle_mib"],
              reply["stderr"] or None)


# ---------------------------------------------------------------------- bimt.train

DTYPES = [np.float32, np.float64, np.int64, np.bool_, np.complex64, np.float16, object]
SPECIAL = [math.nan, math.inf, -math.inf, 1e300, -1e300, 1e-300, 0.0]


@st.composite
def arrays(draw: st.DrawFn, rows: int, cols: int) -> object:
    """An array-like of about (rows, cols): odd dtypes, specials, wrong shapes, lists."""
    shape = (rows, cols)
    if chance(draw, 6):
        shape = draw(st.sampled_from([(rows,), (rows, cols, 2), (0, cols), (rows, 0),
                                      (rows + 1, cols), ()]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    values = rng.uniform(-1, 1, shape)
    if values.size and chance(draw, 5):
        values.flat[draw(st.integers(0, values.size - 1))] = draw(st.sampled_from(SPECIAL))
    dtype = draw(st.sampled_from(DTYPES)) if chance(draw, 4) else np.float32
    with np.errstate(all="ignore"):
        arr = values.astype(dtype) if dtype is not object else values.astype(object)
    kind = draw(st.integers(0, 9))
    if kind == 1:
        return arr.tolist()
    if kind == 2:
        return draw(st.sampled_from([None, "data.csv", 3.5, {"x": 1}, [[1, "a"]]]))
    return torch.from_numpy(arr) if kind < 6 and dtype not in (object,) else arr


CONFIG = {
    "lr": st.sampled_from([2e-3, 0.0, -1.0, math.nan, math.inf, 1e6, "0.01", True]),
    "lam": st.sampled_from([1e-3, 0.0, -1e-3, math.nan, 1e30]),
    "swap_every": st.sampled_from([1, 2, 200, 0, -1, 2.5]),
    "swap_top_k": st.sampled_from([1, 5, 100, 0]),
    "log_every": st.sampled_from([1, 3, 200, 0]),
    "eval_every": st.sampled_from([1, 200, 0]),
    "analysis_every": st.sampled_from([1, 2000, 0]),
    "snapshot_every": st.sampled_from([0, 1, 200, -1]),
    "betas": st.sampled_from([(0.9, 0.999), (1.0, 0.5), (0.9,), "x", (math.nan, 0.9)]),
    "lam_phases": st.sampled_from([(0.25, 0.75), (0.9, 0.1), (0.0, 1.0), (-1, 2)]),
    "lam_factors": st.sampled_from([(1.0, 10.0, 1.0), (1.0,), (-1.0, 1.0, 1.0)]),
    "task": st.sampled_from(["auto", "regression", "classification", "ranking"]),
    "engine": st.sampled_from(["auto", "analytic", "autograd", "jit"]),
    "threads": st.sampled_from([0, 1, 2, -3]),
    "prune_threshold": st.sampled_from([0.05, 0.0, 1.0, 2.0, math.nan]),
    "swap_io": st.sampled_from([True, False, 1, "yes"]),
    "not_a_setting": st.just(1),
}


@st.composite
def train_calls(draw: st.DrawFn) -> dict:
    d_in, d_out = draw(st.integers(1, 5)), draw(st.integers(1, 3))
    hidden = draw(st.lists(st.integers(1, 12), max_size=2))
    widths: object = [d_in, *hidden, d_out]
    if chance(draw, 8):
        widths = draw(st.sampled_from([[], [d_in], [d_in, 0, d_out], [d_in, -3, d_out],
                                       [d_in, 2.5, d_out], "4,2", [d_in, (2, 3), d_out],
                                       [d_in, 10**6, 10**6, d_out], [d_in, 10**12, d_out]]))
    n = draw(st.integers(1, 40))
    call = {"widths": widths, "x": draw(arrays(n, d_in)),
            "y": draw(arrays(n, d_out)) if not chance(draw, 3) else
            np.random.default_rng(n).integers(0, d_out, n),
            "steps": draw(st.integers(0, 15)) if not chance(draw, 8) else draw(
                st.sampled_from([-1, 2.5, "10", None]))}
    if draw(st.booleans()):
        call["x_test"], call["y_test"] = draw(arrays(n, d_in)), draw(arrays(n, d_out))
        if chance(draw, 5):
            call.pop(draw(st.sampled_from(["x_test", "y_test"])))
    call["overrides"] = {k: draw(CONFIG[k]) for k in draw(st.lists(
        st.sampled_from(sorted(CONFIG)), max_size=3, unique=True))}
    return call


class Hang(BaseException):
    pass


def _alarm(signum, frame):
    raise Hang()


@settings(max_examples=50 * SCALE)
@given(call=train_calls())
@example(call={"widths": [2, 4, 1], "x": np.zeros((8, 2), np.float32),
               "y": np.full((8, 1), 1e300), "steps": 5, "overrides": {}})
def test_bimt_train_api(call, tally):
    import bimt
    from traincore import NonFiniteError

    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, TRAIN_LIMIT)
    start = time.perf_counter()
    outcome, detail = "trained", None
    try:
        model = bimt.BioMLP(call["widths"], seed=0)
        kwargs = {k: call[k] for k in ("x_test", "y_test") if k in call}
        bimt.train(model, call["x"], call["y"], steps=call["steps"], seed=0, device="cpu",
                   progress=False, **kwargs, **call["overrides"])
    except (ValueError, TypeError, NonFiniteError) as exc:
        outcome, detail = type(exc).__name__, str(exc)
        if not detail or "\n" in detail or not detail.rstrip().endswith((".", ".)")):
            outcome = tally.fail("bimt.train", f"not a one-line toolkit message: {detail!r}", call)
    except Hang:
        outcome = tally.fail("bimt.train", f"ran over {TRAIN_LIMIT} s", call)
    except Exception as exc:  # noqa: BLE001 - anything else is the finding
        outcome = tally.fail("bimt.train", f"undocumented {type(exc).__name__}: {exc}", call)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    tally.add("bimt.train", outcome, time.perf_counter() - start, detail=detail)
