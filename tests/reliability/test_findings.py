"""Every finding of the fuzzing (docs/reliability.md, F1-F9), pinned as a regression test.

Each test feeds the input that broke a property and checks the behaviour that replaced it:
one clear error naming the input and the fix, or a correct result, within seconds.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import sympy
import torch

import aipoincare
import bimt
import traincore
from aipoincare.systemfile import SystemFileError, load_system

pytestmark = pytest.mark.reliability


def _system_file(tmp_path, text: str):
    path = tmp_path / "system.toml"
    path.write_text(text)
    return path


def test_f1_tower_of_numeric_powers_is_refused_at_once(tmp_path):
    path = _system_file(tmp_path, 'variables = ["x"]\n[equations]\n'
                                  'x = "((2**1000)**1000)**1000"\n')
    start = time.perf_counter()
    with pytest.raises(SystemFileError, match=r"The numeric power 107150860718\.\.\.\(302 "
                                              r"characters\)\*\*1000 is too large .*results "
                                              r"under 100000 bits\."):
        load_system(path)
    assert time.perf_counter() - start < 5
    # ordinary powers of numbers still work, exactly
    ok = _system_file(tmp_path, 'variables = ["x"]\n[equations]\nx = "-x*10**300 + 2**-1000"\n')
    assert load_system(ok).equations[0] == -sympy.Integer(10)**300 * sympy.Symbol("x") \
        + sympy.Rational(1, 2**1000)


def test_f2_integers_over_the_digit_limit_are_one_clear_error(tmp_path):
    path = _system_file(tmp_path, 'variables = ["x"]\n[equations]\nx = "x"\n[sampling]\n'
                                  f'points = {"9" * 5000}\n')
    with pytest.raises(SystemFileError, match=r"has an integer of more than 4300 digits; no "
                                              r"setting needs one, write a smaller number\.$"):
        load_system(path)
    expr = _system_file(tmp_path, f'variables = ["x"]\n[equations]\nx = "{"1" * 5000}*x"\n')
    with pytest.raises(SystemFileError, match=r"has an integer of more than 4300 digits; "
                                              r"write it in scientific notation"):
        load_system(expr)


def test_f3_huge_points_on_the_numerical_path_are_refused_before_allocating(tmp_path):
    path = _system_file(tmp_path, 'variables = ["x", "y"]\n[equations]\nx = "sin(y)"\n'
                                  'y = "-x"\n[sampling]\npoints = 1000000000000\n')
    with pytest.raises(traincore.MemoryBudgetError, match=r"Sampling 1000000000000 points of "
                                                          r"2 variables .* ask for fewer points "
                                                          r"\(about 21 are enough"):
        aipoincare.discover(load_system(path), device="cpu")


def test_f4_one_variable_systems_with_a_scaling_symmetry(tmp_path):
    for rhs, nullity in (("x", 0), ("0", 3), ("x**2", 0)):
        path = _system_file(tmp_path, f'variables = ["x"]\n[equations]\nx = "{rhs}"\n')
        result = aipoincare.discover(load_system(path), degree=3, device="cpu")
        assert result.nullity == nullity, rhs  # x' = 0: x, x**2, x**3 are all conserved


def test_f10_states_where_the_basis_overflows_are_dropped(tmp_path):
    text = ('variables = ["w", "z"]\n[equations]\nw = "tan(w)"\nz = "-1"\n[sampling]\n'
            'points = 3\nscale = 1e150\n')
    with pytest.raises(ValueError, match=r"^No usable sample points: the polynomial basis of "
                                         r"degree 3 overflows float64 at every state drawn .*"
                                         r"lower the \[sampling\] scale"):
        aipoincare.discover(load_system(_system_file(tmp_path, text)), device="cpu")
    mixed = ('variables = ["x", "y"]\n[equations]\nx = "y"\ny = "-x"\n[sampling]\n'
             'points = 40\nscale = 2e72\n')  # |x|**3 * |f| near 1e290: some states overflow
    result = aipoincare.discover(load_system(_system_file(tmp_path, mixed)), degree=3,
                                 device="cpu", exact=False)
    assert any("sample states dropped: the degree-3 basis overflows" in n
               for n in result.notes)
    assert np.isfinite(result.spectrum).all()


def test_f7_points_1e8_with_exact_counts_takes_a_moment_not_minutes(tmp_path):
    path = _system_file(tmp_path, 'variables = ["x", "y", "z", "w"]\n[equations]\nx = "y"\n'
                                  'y = "-x"\nz = "w"\nw = "-z"\n[sampling]\npoints = 100000000\n')
    start = time.perf_counter()
    result = aipoincare.discover(load_system(path), degree=2, device="cpu")
    assert time.perf_counter() - start < 30  # was 262 s and 3.7 GB
    assert (result.nullity, result.independent, result.exact) == (4, 3, True)
    assert any("uses 27 of the 100000000 sample points" in n for n in result.notes)
    assert any(n.startswith("Plan: 14 basis functions in") for n in result.notes)


def test_time_limit_stops_a_long_discovery_with_the_stage_named(tmp_path):
    path = _system_file(tmp_path, 'variables = ["x", "y"]\n[equations]\nx = "sin(y)"\n'
                                  'y = "-x"\n[sampling]\npoints = 3000000\n')
    start = time.perf_counter()
    with pytest.raises(traincore.TimeLimitError, match=r"^The discovery stopped at its time "
                                                       r"limit of 1 s during the \w+"):
        aipoincare.discover(load_system(path), device="cpu", time_limit=1)
    assert time.perf_counter() - start < 15


def test_f5_f6_f8_training_on_complex_data_no_data_and_a_scalar_target():
    model = bimt.BioMLP([2, 3, 1], seed=0)
    with pytest.raises(TypeError, match=r"The 'x_train' must hold real numbers; got dtype "
                                        r"torch\.complex64\."):
        bimt.train(model, torch.zeros(5, 2, dtype=torch.complex64), torch.zeros(5, 1),
                   steps=2, progress=False)
    with pytest.raises(ValueError, match=r"^The 'x_train' must hold at least one example "
                                         r"\(one per row\); got shape \(0, 2\)\.$"):
        bimt.train(model, torch.zeros(0, 2), torch.zeros(0, 1), steps=2, progress=False)
    with pytest.raises(ValueError, match=r"got a single number \(shape \(\)\)\.$"):
        bimt.train(model, np.zeros((5, 2), np.float32), np.array(0.5, np.float32), steps=2,
                   progress=False)


def test_f9_networks_over_the_memory_budget_are_refused_before_allocating(monkeypatch):
    with pytest.raises(traincore.MemoryBudgetError, match=r"The BioMLP with widths \[2, 100000, "
                                                          r"100000, 1\] \(10000300000 "
                                                          r"connections\) needs about 74\.5 GiB"):
        bimt.BioMLP([2, 100000, 100000, 1])
    monkeypatch.setenv("TRAINCORE_MEMORY_BUDGET", "4M")
    model = bimt.BioMLP([2, 300, 300, 1], seed=0)  # 2.2 MiB: fits, training it does not
    with pytest.raises(traincore.MemoryBudgetError, match=r"Training this network .* use "
                                                          r"smaller widths, or fewer snapshots"):
        bimt.train(model, torch.zeros(4, 2), torch.zeros(4, 1), steps=20000, progress=False)
